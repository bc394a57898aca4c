"""The payments index and panel in Chromium at 1440×900 (P1–P6, F1–F3, E5): filter, build a two-group
advanced filter, save it as a view, refund part of a payment, watch it settle, resend the receipt."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from playwright.sync_api import expect
from sqlalchemy import select

from tests.support.browser import (
    SLOW_HTMX,
    assert_accessible,
    htmx_swap,
    log_in_page,
    pay_in_browser,
    screenshot,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(live_server, new_page):
    """A merchant with payments made through the real checkout (and one old failed bank debit)."""
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import Payment
    from tests.factories import make_merchant, make_payment
    from tests.support.checkout_flow import item, make_link

    app = live_server.app
    with app.app_context():
        owner = make_merchant(company="Harbour Books", email="owner@harbour.example", password=PASSWORD)
        slugs = [make_link(owner, name="Book club", items=[item("Book box", "25.00")]).slug,
                 make_link(owner, name="Signed edition", items=[item("Signed edition", "60.00")]).slug]
        make_payment(owner.account_id, status="failed", method="ach", amount_minor=4500,
                     email="dee@readers.example", created_at=now() - timedelta(days=40))
        db.session.remove()
    buyer = new_page()
    for slug, email in ((slugs[0], "ann@readers.example"), (slugs[1], "bob@readers.example"),
                        (slugs[1], "cy@readers.example")):
        pay_in_browser(buyer, live_server.url, slug, email)
    with app.app_context():
        ids = {p.buyer_email.split("@")[0]: p.id for p in db.session.scalars(select(Payment))}
        db.session.remove()
    return {"ids": ids}


def _log_in(page, base: str) -> None:
    log_in_page(page, base, "owner@harbour.example", PASSWORD)


def _rows(page) -> list[str]:
    return page.locator("table.table--payments tbody tr").all_inner_texts()


def _wait_rows(page, n: int) -> None:
    expect(page.locator("table.table--payments tbody tr")).to_have_count(n)


def _build_two_group_filter(page):
    """Open the advanced filter panel and build "Status is any of Succeeded AND Gross amount > 50" OR "Contact
    email contains ann@" (not applied yet); returns the panel.

    The panel posts itself back on every change of a property or condition and redraws (htmx): each such step
    waits until the new panel has settled, and locators re-resolve, so the next step acts on the new,
    wired-up controls, never on detached ones or ones htmx has not yet wired (issue 13, "Also")."""
    with htmx_swap(page):
        page.get_by_role("link", name=re.compile("^Advanced filters")).click()
    panel = page.locator("#filter-panel")
    panel.get_by_label("Succeeded").check()  # group 1: Status is any of Succeeded …
    with htmx_swap(page):
        panel.get_by_role("button", name="+ Add filter", exact=True).click()
    page.locator("#c-0-1-prop").focus()
    with htmx_swap(page):
        page.locator("#c-0-1-prop").select_option("amount")
    # The panel redrew for the new property; the keyboard user is still on the control they changed.
    assert page.evaluate("document.activeElement.id") == "c-0-1-prop"
    with htmx_swap(page):
        page.locator("#c-0-1-op").select_option("gt")
    expect(page.locator("#c-0-1-op")).to_have_value("gt")
    page.locator("#c-0-1-v1").fill("50")
    with htmx_swap(page):
        panel.get_by_role("button", name="+ Add filter group (OR)").click()
    expect(page.locator("#c-0-1-v1")).to_have_value("50")  # the redraw kept what was typed
    with htmx_swap(page):
        page.locator("#c-1-0-prop").select_option("email")
    with htmx_swap(page):
        page.locator("#c-1-0-op").select_option("contains")
    expect(page.locator("#c-1-0-op")).to_have_value("contains")
    page.locator("#c-1-0-v1").fill("ann@")
    return panel


def _apply_filters(page, panel) -> None:
    with page.expect_response(lambda r: r.url.endswith("/payments/filters")) as applied:
        panel.get_by_role("button", name="Apply filters").click()
    assert applied.value.status == 204, page.locator("#filter-panel").inner_text()
    page.wait_for_url(re.compile(r"adv="))


def test_p2_p3_p4_f1_f3_e5_filter_save_a_view_refund_and_resend_the_receipt(live_server, desktop_page, shop):
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import EmailMessage
    from kassa.services.platform.ticks import run_tick

    page, base = desktop_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/payments/")
    _wait_rows(page, 4)
    assert_accessible(page, "payments index")
    screenshot(page, "payments-index")
    # Playwright's screenshot leaves empty style="" attributes behind; htmx would copy them while settling
    # a swap, which this CSP (rightly) reports. A fresh page after each screenshot keeps js_errors honest.
    page.reload()

    # P2: status and date quick filters, applied by htmx; the URL follows.
    filters = page.get_by_role("form", name="Filters")
    filters.locator("summary", has_text="Status").click()
    filters.get_by_label("Succeeded", exact=True).check()
    filters.get_by_label("Payment date").select_option("last_7")
    with htmx_swap(page):
        filters.get_by_role("button", name="Apply", exact=True).click()
    page.wait_for_url(re.compile(r"status=succeeded.*date=last_7|date=last_7.*status=succeeded"))
    _wait_rows(page, 3)
    assert "3 payments" in page.locator(".results__count").inner_text()

    # P3: a two-group advanced filter in the side panel.
    panel = _build_two_group_filter(page)
    assert_accessible(page, "advanced filter panel")
    screenshot(page, "payments-filter-panel")
    _apply_filters(page, panel)
    chips = page.locator(".chips .chip__label").all_inner_texts()
    # B4: the quick filters it kept are chips too, then each advanced condition.
    assert chips == ["Status: Succeeded", "Payment date: Last 7 days", "Status is any of Succeeded",
                     "Gross amount > 50", "Contact email contains ann@"]
    _wait_rows(page, 3)  # two signed editions ($60) and Ann's book box
    assert "date=last_7" in page.url  # the quick filters stayed

    # Save it as a view; a reload keeps it.
    page.locator("summary", has_text="Save view").click()
    page.get_by_label("View name").fill("Big or Ann")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"view=\d+"))
    page.reload()
    assert page.locator('nav.tabs a[aria-current="page"]').inner_text().startswith("Big or Ann")
    assert page.locator(".chips .chip__label").all_inner_texts() == chips
    _wait_rows(page, 3)

    # P4: the gross amount opens the panel.
    ann_id = shop["ids"]["ann"]
    with htmx_swap(page):
        page.locator(f'a.amount-link[href="/payments/{ann_id}"]').click()
    side = page.locator("#payment-panel")
    assert "$25.00" in side.locator(".pp__amount").inner_text()
    for card in ("History", "Line items", "Refunds", "Subscriptions", "Associations"):
        assert side.locator("details > summary", has_text=card).is_visible(), card
    assert_accessible(page, "payment panel")

    # F1: refund part of it.
    with htmx_swap(page):
        side.get_by_role("link", name="Refund", exact=True).click()
    dialog = page.locator("dialog#refund-dialog")
    expect(dialog).to_be_visible()
    assert dialog.get_by_label(re.compile(r"^Amount")).input_value() == "25.00"
    assert "The processing fee of $1.03 is not returned." in dialog.inner_text()
    assert_accessible(page, "refund dialog")
    dialog.get_by_label(re.compile(r"^Amount")).fill("10.00")
    with htmx_swap(page):
        dialog.get_by_role("button", name="Refund", exact=True).click()
    expect(page.locator("dialog#refund-dialog")).to_have_count(0)
    expect(side.locator(".pp__amount .badge").first).to_have_text("Refund processing")
    expect(side.locator("#card-history")).to_contain_text("Refund submitted · $10.00")

    # F3: the sandbox settles card refunds a minute later, at a tick.
    with live_server.app.app_context(), time_machine.travel(now() + timedelta(minutes=2), tick=False):
        assert run_tick().failed == {}
    page.goto(f"{base}/payments/{ann_id}")
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Partially refunded")

    # E5: send the receipt to a second address as well.
    with htmx_swap(page):
        page.get_by_role("link", name="Send receipt").click()
    dialog = page.locator("dialog#receipt-dialog[open]")
    expect(dialog).to_be_visible()
    recipients = dialog.get_by_label("Email addresses")
    assert recipients.input_value() == "ann@readers.example"
    assert_accessible(page, "send receipt dialog")
    recipients.fill("ann@readers.example, office@readers.example")
    with htmx_swap(page):
        dialog.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".toast", has_text="Receipt sent to ann@readers.example, office@readers.example.")
           ).to_be_visible()
    expect(page.locator("dialog#receipt-dialog")).to_have_count(0)
    expect(page.locator("#payment-panel")).to_have_count(1)  # the page's panel refreshed, not a second one
    expect(page.locator("#card-history")).to_contain_text("Receipt sent · ann@readers.example, office@readers.example")
    with live_server.app.app_context():
        email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "receipt_resent"))
        assert email.to_addrs == ["ann@readers.example", "office@readers.example"]

    # Back on the index, the refunded payment shows its new status; its panel opens over the table.
    page.goto(f"{base}/payments/?status=partially_refunded")
    _wait_rows(page, 1)
    assert "Partially refunded" in _rows(page)[0]
    with htmx_swap(page):
        page.locator(f'a.amount-link[href="/payments/{ann_id}"]').click()
    expect(page.locator("#panel-slot #payment-panel")).to_be_visible()
    assert_accessible(page, "payment panel after the refund")
    screenshot(page, "payments-panel")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_p4_e5_panel_opens_over_the_index_and_dialogs_open_as_modals(live_server, desktop_page, shop):
    """With htmx the panel slides in beside the table and Send receipt opens as a modal dialog."""
    page, base = desktop_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/payments/")
    bob_id = shop["ids"]["bob"]
    with htmx_swap(page):
        page.locator(f'a.amount-link[href="/payments/{bob_id}"]').click()
    expect(page.locator("#panel-slot #payment-panel")).to_be_visible()
    assert page.url.endswith("/payments/")  # the table stays under the panel
    with htmx_swap(page):
        page.locator("#payment-panel").get_by_role("link", name="Send receipt").click()
    dialog = page.locator("dialog#receipt-dialog[open]")
    expect(dialog).to_be_visible()
    assert_accessible(page, "send receipt modal")
    dialog.get_by_label("Email addresses").fill("bob@readers.example, x")
    with htmx_swap(page):
        dialog.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#f-recipients-error")).to_contain_text("“x” is not a valid email address.")
    assert_accessible(page, "send receipt modal with an error")
    screenshot(page, "payments-send-receipt-dialog")
    assert page.js_errors == [], sorted(set(page.js_errors))


# -- a slow machine, made deterministic -----------------------------------------------------------------

@pytest.fixture
def quick_shop(live_server):
    """The shop's payments straight from the factory: Ann's $25, Bob's and Cy's $60, Dee's failed $45."""
    from kassa.extensions import db
    from tests.factories import make_merchant, make_payment

    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email="owner@harbour.example", password=PASSWORD)
        for email, amount in (("ann", 2500), ("bob", 6000), ("cy", 6000)):
            make_payment(owner.account_id, amount_minor=amount, email=f"{email}@readers.example")
        make_payment(owner.account_id, status="failed", method="ach", amount_minor=4500, email="dee@readers.example")
        db.session.remove()


def test_also_advanced_filter_waits_for_each_redraw_on_a_slow_machine(live_server, desktop_page, quick_shop):
    """Issue 13 ("Also"): the advanced-filter steps that once timed out on a loaded machine wait on htmx's
    state, not on timing, so they pass however late htmx swaps and settles each redraw."""
    page, base = desktop_page, live_server.url
    page.add_init_script(SLOW_HTMX)
    _log_in(page, base)
    page.goto(f"{base}/payments/")
    _wait_rows(page, 4)
    panel = _build_two_group_filter(page)
    _apply_filters(page, panel)
    assert page.locator(".chips .chip__label").all_inner_texts() == [
        "Status is any of Succeeded", "Gross amount > 50", "Contact email contains ann@"]
    _wait_rows(page, 3)  # Bob's and Cy's $60 and Ann's $25
    assert page.js_errors == [], sorted(set(page.js_errors))


# -- layout at desktop and phone widths: 50 rows, the filter panel, a saved view, the Disputes tab ---------

DISPUTES = [("disputed_action_required", "fraudulent"), ("disputed_awaiting_decision", "product_not_received"),
            ("disputed_won", "duplicate"), ("disputed_lost", "subscription_canceled")]


@pytest.fixture
def busy_shop(live_server):
    """130 payments (cards, failed bank debits, disputes in every state) and a saved view with two pages."""
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.services.backoffice import saved_views
    from tests.factories import make_merchant
    from tests.support.checkout_flow import make_link
    from tests.support.payments import actor_for, bulk_payments

    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email="owner@harbour.example", password=PASSWORD)
        link = make_link(owner, name="Signed edition of the harbour master's logbook")
        start = now() - timedelta(days=20)
        rows = []
        for i in range(130):
            row = {"amount_minor": 1500 + (i * 737) % 250_000, "created_at": start + timedelta(hours=3 * i),
                   "buyer_email": f"reader{i}@harbour-readers.example", "buyer_name": f"Reader Number {i}",
                   "link_id": link.id, "mode": "test", "bank_last4": None, "dispute_created_at": None,
                   "dispute_reason": None, "dispute_amount_minor": None, "dispute_due_by": None,
                   "dispute_closed_at": None}
            if i % 5 == 0:
                row.update(status="failed", display_status="failed", method="ach", card_brand=None,
                           card_last4=None, bank_last4="6789")
            if i % 9 == 0:
                status, reason = DISPUTES[(i // 9) % 4]
                row.update(display_status=status, dispute_created_at=row["created_at"] + timedelta(days=1),
                           dispute_reason=reason, dispute_amount_minor=row["amount_minor"],
                           dispute_due_by=now() + timedelta(days=5),
                           dispute_closed_at=None if status.endswith(("required", "decision")) else now())
            rows.append(row)
        bulk_payments(owner.account_id, rows)
        view = saved_views.save_view(actor_for(owner), tab="payments", name="Cards, largest first", shared=True,
                                     state={"method": ["card"], "sort": ["amount_desc"]})
        view_id = view.id
        db.session.remove()
    return {"view": view_id}


def _no_page_overflow(page) -> None:
    """Nothing sticks out sideways: wide tables scroll in their own box, not the whole page; at 1440 px the
    table fits without scrolling (long link names, emails and dispute badges included)."""
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    if widths[1] >= 1440 and page.locator(".table-wrap").count():
        table = page.locator(".table-wrap").evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert table[0] <= table[1], table


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_p1_p3_d3_index_layout_with_50_rows_filter_panel_saved_view_and_disputes(live_server, new_page, busy_shop,
                                                                                  size):
    from tests.support.browser import DESKTOP, PHONE

    page, base = new_page(DESKTOP if size == "desktop" else PHONE), live_server.url
    _log_in(page, base)
    page.goto(f"{base}/payments/")
    _wait_rows(page, 50)
    screenshot(page, f"layout-{size}-index")
    _no_page_overflow(page)
    assert_accessible(page, f"payments index, 50 rows ({size})")
    page.reload()

    # Quick status filter over htmx: the dropdown closes once the results are in.
    filters = page.get_by_role("form", name="Filters")
    filters.locator("summary", has_text="Status").click()
    filters.get_by_label("Disputed (action required)", exact=True).check()
    if size == "phone":  # the open list covers Apply on a phone: a tap on Status closes it
        filters.locator("summary", has_text="Status").click()
    with htmx_swap(page):
        filters.get_by_role("button", name="Apply", exact=True).click()
    page.wait_for_url(re.compile(r"status=disputed_action_required"))
    expect(page.locator(".results__count")).to_have_text("4 payments")
    expect(page.locator("form.quickfilters details[open]")).to_have_count(0)

    # The advanced filter panel with an enum condition.
    with htmx_swap(page):
        page.get_by_role("link", name=re.compile("^Advanced filters")).click()
    panel = page.locator("#filter-panel")
    # The enum condition's row: Property and Condition on top, the ten statuses below in a box that scrolls
    # past about eight, and checkboxes keep their size beside long labels.
    prop, op = page.locator("#c-0-0-prop").bounding_box(), page.locator("#c-0-0-op").bounding_box()
    values = panel.locator(".filters__values")
    box = values.bounding_box()
    assert abs(prop["y"] - op["y"]) < 1 and prop["y"] + prop["height"] <= box["y"], (prop, box)
    assert 8 * 32 <= box["height"] <= 9 * 32 + 16, box
    assert values.evaluate("el => el.scrollHeight > el.clientHeight")
    tick = panel.get_by_label("Disputed (action required)").bounding_box()
    assert (round(tick["width"]), round(tick["height"])) == (18, 18), tick
    remove = panel.get_by_role("button", name="Remove this condition").bounding_box()
    assert abs((remove["y"] + remove["height"]) - (op["y"] + op["height"])) < 1  # on the selects' line
    screenshot(page, f"layout-{size}-filter-panel")
    _no_page_overflow(page)
    assert_accessible(page, f"filter panel ({size})")
    page.keyboard.press("Escape")
    expect(page.locator("#filter-panel")).to_have_count(0)

    # A saved view, on its second page.
    page.goto(f"{base}/payments/?view={busy_shop['view']}")
    _wait_rows(page, 50)
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r"after="))
    assert f"view={busy_shop['view']}" in page.url
    expect(page.locator('nav.tabs a[aria-current="page"]')).to_contain_text("Cards, largest first")
    screenshot(page, f"layout-{size}-view-page-2")
    # Every menu of the quick filters and the result tools opens fully on screen.
    width = page.viewport_size["width"]
    for summary in page.locator(".quickfilters details.dropdown > summary, .results__tools details.dropdown > summary"
                                ).all():
        summary.click()
        menu = summary.locator("xpath=..").locator(".dropdown__panel")
        expect(menu).to_be_visible()
        box = menu.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (summary.inner_text(), box)
        if summary.inner_text() == "Manage view":
            screenshot(page, f"layout-{size}-manage-view")
        page.keyboard.press("Escape")
        expect(menu).to_be_hidden()
    page.reload()
    _no_page_overflow(page)
    assert_accessible(page, f"saved view, page 2 ({size})")
    page.reload()

    # The Disputes tab.
    page.goto(f"{base}/payments/disputes")
    _wait_rows(page, 15)
    screenshot(page, f"layout-{size}-disputes")
    _no_page_overflow(page)
    assert_accessible(page, f"disputes tab ({size})")
    assert page.js_errors == [], sorted(set(page.js_errors))
