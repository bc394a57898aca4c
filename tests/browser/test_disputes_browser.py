"""Disputes in Chromium at 1440×900 (D2–D5, T5): a buyer pays with the dispute card 4000 0000 0000 0259 on
the real checkout page, the tick opens the dispute, and the merchant finds it in the Disputes tab and
counters it through the four-step wizard with an uploaded PDF. The next tick after the decision time
shows it won (or, with `losing_evidence`, lost). axe on the tab, every step and the accept dialog.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from playwright.sync_api import expect
from pypdf import PdfWriter

from tests.support.browser import (
    assert_accessible,
    htmx_swap,
    log_in_page,
    pay_in_browser,
    screenshot,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
OWNER = "owner@harbour.example"


def _tick(live_server, ahead: timedelta | None = None) -> None:
    """`flask kassa tick`, in the app (optionally `ahead` of now, where the sandbox's decision is due)."""
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.services.platform.ticks import run_tick

    with live_server.app.app_context():
        if ahead is None:
            assert run_tick().failed == {}
        else:
            with time_machine.travel(now() + ahead, tick=False):
                assert run_tick().failed == {}
        db.session.remove()


@pytest.fixture
def disputed(live_server, new_page):
    """A merchant whose buyer paid $25.00 with 4000 0000 0000 0259 on the checkout page; the tick ran."""
    from kassa.extensions import db
    from tests.factories import make_merchant
    from tests.support.checkout_flow import item, make_link

    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email=OWNER, password=PASSWORD)
        slug = make_link(owner, name="Book club", items=[item("Book box", "25.00", description="Monthly")]).slug
        db.session.remove()

    buyer, base = new_page(), live_server.url
    pay_in_browser(buyer, base, slug, "ann@readers.example", card="4000 0000 0000 0259", names=("Ann", "Reader"))

    _tick(live_server)  # delivers the sandbox's dispute.created
    return base


@pytest.fixture
def evidence_pdf(tmp_path):
    path = tmp_path / "delivery-note.pdf"
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    with path.open("wb") as out:
        writer.write(out)
    return path


def _log_in(page, base: str) -> None:
    log_in_page(page, base, OWNER, PASSWORD)


def _open_from_disputes_tab(page, base: str, *, shots: bool) -> None:
    """Disputes tab → the row → the payment's panel with its Dispute details."""
    page.goto(f"{base}/payments/")
    page.get_by_role("navigation", name="Views").get_by_role("link", name="Disputes").click()
    page.wait_for_url(f"{base}/payments/disputes")
    rows = page.locator("table.table--payments tbody tr")
    expect(rows).to_have_count(1)
    headers = page.locator("table.table--payments thead th").all_inner_texts()
    assert headers == ["Gross amount", "Payment date", "Contact", "Payment method", "Status", "Dispute created",
                       "Dispute reason", "Dispute amount", "Dispute deadline", "Dispute closed"]
    row = rows.first.inner_text()
    assert "Disputed (action required)" in row and "Fraudulent" in row and "6 days left" in row
    if shots:
        assert_accessible(page, "disputes tab")
        screenshot(page, "disputes-tab")
    with htmx_swap(page):  # the panel opens over the table (htmx); its buttons work once it has settled
        rows.first.locator("a.amount-link").click()
    panel = page.locator("#payment-panel")
    expect(panel.locator(".pp__amount")).to_contain_text("Disputed (action required)")
    expect(panel).to_contain_text("Dispute details")
    if shots:
        assert_accessible(page, "payment panel with a dispute")
        screenshot(page, "disputes-panel")


def _wizard(page, base: str, pdf, text: str, *, shots: bool) -> None:
    """Counter dispute → the four steps → Submit evidence; ends on the payment, awaiting decision."""
    page.locator("#payment-panel").get_by_role("link", name="Counter dispute").click()
    page.wait_for_url(re.compile(r"/disputes/\d+/counter/1$"))
    expect(page.get_by_role("heading", name="1. Questions")).to_be_visible()
    if shots:
        assert_accessible(page, "counter step 1")
        screenshot(page, "disputes-step-1")
    page.get_by_label("Why is this payment legitimate?").fill("Ann has ordered from us every month since 2024.")
    # Each step posts over htmx and the answer sends the browser to the next step's page (HX-Redirect):
    # waiting for its URL waits for it to load, and htmx wires a page up before it has loaded.
    page.get_by_role("button", name="Save and continue").click()

    page.wait_for_url(re.compile(r"/counter/2$"))
    expect(page.get_by_label("Customer email")).to_have_value("ann@readers.example")
    expect(page.get_by_label("Customer name")).to_have_value("Ann Reader")
    expect(page.get_by_label("Product description")).to_have_value("1 × Book box (Monthly)")
    if shots:
        assert_accessible(page, "counter step 2")
        screenshot(page, "disputes-step-2")
    page.get_by_role("button", name="Save and continue").click()

    page.wait_for_url(re.compile(r"/counter/3$"))
    expect(page.locator(".budget")).to_have_text("4.5 MB of 4.5 MB left · 50 of 50 pages left")
    page.get_by_label("Add a file").set_input_files(str(pdf))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("ul.files")).to_contain_text("delivery-note.pdf")  # step 3 again, with the file
    wait_for_htmx_idle(page)  # … and loaded, its forms wired up
    expect(page.locator(".budget")).to_have_text("4.5 MB of 4.5 MB left · 49 of 50 pages left")
    page.get_by_label("Additional information").fill(f"Signed delivery note attached. {text}")
    if shots:
        assert_accessible(page, "counter step 3")
        screenshot(page, "disputes-step-3")
    page.get_by_role("button", name="Save and review").click()

    page.wait_for_url(re.compile(r"/counter/4$"))
    review = page.locator("#wizard")
    expect(review).to_contain_text("Ann has ordered from us every month since 2024.")
    expect(review).to_contain_text("delivery-note.pdf")
    expect(review).to_contain_text(text)
    if shots:
        assert_accessible(page, "counter step 4")
        screenshot(page, "disputes-step-4")
    page.get_by_role("button", name="Submit evidence").click()
    page.wait_for_url(re.compile(r"/payments/\d+$"))
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Disputed (awaiting decision)")
    expect(page.locator("#card-history")).to_contain_text("Dispute evidence submitted")


def test_d2_d4_counter_a_fraud_dispute_with_a_pdf_and_win(live_server, desktop_page, disputed, evidence_pdf):
    page, base = desktop_page, disputed
    _log_in(page, base)
    _open_from_disputes_tab(page, base, shots=True)
    _wizard(page, base, evidence_pdf, "winning_evidence", shots=True)

    _tick(live_server, ahead=timedelta(minutes=2))
    page.reload()
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Disputed (won)")
    expect(page.locator("#card-history")).to_contain_text("Disputed amount returned · $25.00")
    page.goto(f"{base}/payments/disputes")
    expect(page.locator("table.table--payments tbody tr").first).to_contain_text("Disputed (won)")
    screenshot(page, "disputes-tab-won")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_d2_d4_d5_accept_dialog_then_counter_with_losing_evidence_is_lost(
        live_server, desktop_page, disputed, evidence_pdf):
    page, base = desktop_page, disputed
    _log_in(page, base)
    _open_from_disputes_tab(page, base, shots=False)

    # D5: the accept dialog says what is lost; cancel it and counter instead
    with htmx_swap(page):
        page.locator("#payment-panel").get_by_role("link", name="Accept dispute").click()
    dialog = page.locator("dialog#accept-dialog[open]")
    expect(dialog).to_contain_text("the buyer keeps $25.00")
    assert_accessible(page, "accept dispute dialog")
    screenshot(page, "disputes-accept-dialog")
    dialog.get_by_role("link", name="Cancel").click()
    expect(page.locator("dialog#accept-dialog[open]")).to_have_count(0)

    _wizard(page, base, evidence_pdf, "losing_evidence", shots=False)
    _tick(live_server, ahead=timedelta(minutes=2))
    page.reload()
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Disputed (lost)")
    expect(page.locator("#card-history")).to_contain_text("Dispute lost · $25.00")
    assert page.js_errors == [], sorted(set(page.js_errors))
