"""B12 in Chromium: every merchant page (each GET route of the merchant blueprints, from the app's url_map) with a
seeded account that has data on it, at 390×844 and 1440×900: nothing scrolls sideways, axe finds nothing, and a
screenshot of each lands in tests/.screenshots (b12-<endpoint>-<size>.png). Also the phone menu: one row with a
menu button (aria-expanded, keyboard), and the menu still reachable without JavaScript."""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    log_in_page,
    new_context,
    screenshot,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser

EMAIL = "owner@northwind.example"
PASSWORD = "demo password 2026"

# Blueprints that are not the merchant's back office (buyers, sign-in, machines).
NOT_MERCHANT = {"static", "assets", "checkout", "embed", "billing_portal", "auth", "health", "media", "webhooks",
                "invoice_pay", "quote_page", "api", "api_docs"}
# Merchant GET routes that are not pages: files, frames and fragments, each for its reason.
NOT_PAGES = {
    "links.qr": "a QR code image download",
    "links.embed_preview": "the blank page framed inside the Embed dialog (visited through links.embed)",
    "disputes.file": "an evidence file download",
    "exports.download": "an export file download",
    "exports.notifications": "the bell's htmx fragment",
    "payments.invoice_pdf": "a PDF",
    "invoices.pdf": "a PDF (V1)",
    "quotes.pdf": "a PDF (V4)",
    "invoices.credit_note_pdf": "a credit note's PDF (V1)",
    "settings.email_html": "an email's body, framed inside settings.email_detail (visited through it)",
    "settings.disconnect_stripe": "needs a live Stripe connection; its dialog is checked in the K5 browser test",
}


def merchant_get_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and rule.endpoint.split(".")[0] not in NOT_MERCHANT}


@pytest.fixture
def shop(live_server):
    return seed_shop(live_server)


def seed_shop(live_server) -> dict[str, int]:
    """The demo merchant (products, links, real test checkouts by card and bank, subscriptions, a refund, a
    dispute, CRM contacts, deals and companies) plus one of every attention item (failed payout and renewal,
    paused link, failed export) and a second team member: every merchant page has something on it."""
    from kassa.extensions import db
    from kassa.models import (
        Company,
        Contact,
        Deal,
        Dispute,
        EmailMessage,
        Export,
        Payment,
        PaymentLink,
        Product,
        Subscription,
        User,
    )
    from kassa.seed import seed_demo
    from tests.factories import make_user
    from tests.support.app import run_outbox
    from tests.support.home import attention_items

    with live_server.app.app_context():
        assert seed_demo(EMAIL, PASSWORD)
        run_outbox()
        owner = db.session.scalar(select(User).where(User.email == EMAIL))
        items = attention_items(owner)
        member = make_user(owner.account_id)
        account_id = owner.account_id

        def first(model, *where):
            return db.session.scalars(select(model).where(model.account_id == account_id, *where)
                                      .order_by(model.id)).first()

        payment = first(Payment, Payment.status == "succeeded", Payment.method == "card")
        ach = first(Payment, Payment.method.in_(("ach", "sepa")))  # the demo shop (EUR) debits by SEPA (Q10)
        link = first(PaymentLink)
        subscription = first(Subscription, Subscription.id != items.subscription.id) or items.subscription
        email = db.session.scalars(select(EmailMessage).where(EmailMessage.account_id == account_id)
                                   .order_by(EmailMessage.id)).first()
        from kassa.services.accounts.tax_rates import create_rate
        from tests.support.checkout_flow import actor_for

        tax_rate = create_rate(actor_for(owner), name="BTW hoog", percentage="21", inclusive=True, countries="NL")
        from kassa.services.api.keys import create_key

        api_key, _secret = create_key(actor_for(owner), "Webshop", "live")  # I1
        from kassa import secrets_box
        from kassa.database import write_transaction
        from kassa.models import WebhookEndpoint

        with write_transaction(db.session) as session:  # I6 (a row: the URL check would resolve its name)
            hook = WebhookEndpoint(account_id=account_id, url="https://shop.example.com/kassa/webhooks", mode="live",
                                   event_types=["payment.succeeded", "payment.refunded"],
                                   secret_encrypted=secrets_box.encrypt("whsec_b12"))
            session.add(hook)
            session.flush()
            webhook_endpoint = hook.id
        ids = {
            "payment": payment.id, "ach": ach.id, "link": link.id, "dispute": items.dispute.id,
            "seed_dispute": (first(Dispute, Dispute.id != items.dispute.id) or items.dispute).id,
            "subscription": subscription.id, "payout": items.payout.id, "product": first(Product).id,
            "contact": first(Contact).id, "company": first(Company).id, "deal": first(Deal).id,
            "export": first(Export).id, "member": member.id, "email": email.id, "tax_rate": tax_rate.id,
            "promo": _promo_code(owner, link.id), **_invoices(owner), **_quotes(owner), "api_key": api_key.id,
            "webhook_endpoint": webhook_endpoint, "workflow": _workflows(owner, payment.id), "segment": _segment(owner),
        }
        db.session.remove()
    return ids


def _promo_code(owner, link_id: int) -> int:
    """Q2: two codes on the promo codes page: one for every link, one limited to a link with a limit of uses."""
    from kassa.actor import Actor
    from kassa.services.links import promo_codes

    actor = Actor(user=owner, account_id=owner.account_id)
    promo_codes.create_code(actor, {"code": "WELCOME5", "kind": "amount", "amount": "5.00", "currency": "EUR",
                                    "first_time_only": True}, "en")
    return promo_codes.create_code(actor, {"code": "SUMMER10", "kind": "percent", "percent": "10",
                                           "max_redemptions": "10", "link_ids": [str(link_id)]}, "en").id


def _workflows(owner, payment_id: int) -> int:
    """W1/W2: a welcome-email workflow (on) and an open task in the Tasks inbox; the workflow's id."""
    from kassa.actor import Actor
    from kassa.database import write_transaction
    from kassa.extensions import db
    from kassa.models import Task
    from kassa.services.workflows import definitions

    actor = Actor(user=owner, account_id=owner.account_id)
    workflow = definitions.create_workflow(actor, {"name": "Welcome buyers", "trigger": "payment.succeeded",
                                                   "action": "email", "subject": "Welcome, {first_name}!",
                                                   "body": "Thank you for {amount}.", "min_amount": "10"})
    definitions.set_enabled(actor, workflow.id, True)
    with write_transaction(db.session) as session:
        session.add(Task(account_id=owner.account_id, title="Call the buyer about a failed payment",
                         payment_id=payment_id, assignee_id=owner.id))
    return workflow.id


def _segment(owner) -> int:
    """W3: a segment of card payers (its members are the shop's card payments' contacts)."""
    from kassa.actor import Actor
    from kassa.services.backoffice import segments
    from kassa.services.backoffice.payment_filters import parse_filter

    actor = Actor(user=owner, account_id=owner.account_id)
    return segments.create_segment(actor, "Card payers", parse_filter('[[["method","any_of",["card"]]]]')).id


def _invoices(owner) -> dict[str, int]:
    """V1: a draft and an open invoice (finalized, numbered)."""
    from kassa.actor import Actor
    from kassa.services.payments import invoice_drafts
    from kassa.services.payments.invoice_drafts import InvoiceDraft, LineDraft

    actor = Actor(user=owner, account_id=owner.account_id)
    draft = InvoiceDraft(customer_email="anna@example.com", customer_name="Anna de Vries", company_name="Fietsen BV",
                         language="nl", currency="EUR", issue_date="2026-12-01", due_date="2026-12-31",
                         notes="Thanks.", lines=[LineDraft(description="Bicycle repair", quantity="2",
                                                           unit_price="45.00", discount_type="percent",
                                                           discount_value="10")])
    first = invoice_drafts.save_draft(actor, None, draft, "en").id
    second = invoice_drafts.save_draft(actor, None, draft, "en").id
    invoice_drafts.finalize(actor, second)
    # V3: a third invoice, partly paid by a manual bank transfer (the edit and delete dialogs show it)
    from kassa.clock import account_today
    from kassa.services.payments import manual_payments

    third = invoice_drafts.save_draft(actor, None, draft, "en").id
    invoice_drafts.finalize(actor, third)
    manual = manual_payments.record(actor, third, manual_payments.ManualEntry(
        method="bank_transfer", day=account_today(owner.account), amount="20.00", reference="NL-TRF-0042"), "en")
    return {"draft_invoice": first, "invoice": second, "manual_payment": manual.id}


def _quotes(owner) -> dict[str, int]:
    """V4: a draft quote and an open one, each with a one-time and a recurring line."""
    from kassa.actor import Actor
    from kassa.services.payments import quote_drafts
    from kassa.services.payments.quote_drafts import QuoteDraft, QuoteLineDraft

    actor = Actor(user=owner, account_id=owner.account_id)
    draft = QuoteDraft(customer_email="anna@example.com", customer_name="Anna de Vries", company_name="Fietsen BV",
                       language="nl", currency="EUR", issue_date="2026-12-01", expiry_date="2027-01-31",
                       terms="Work starts within a week.",
                       lines=[QuoteLineDraft(description="Website setup", quantity="1", unit_price="400.00"),
                              QuoteLineDraft(description="Hosting", quantity="1", unit_price="25.00",
                                             frequency="monthly")])
    first = quote_drafts.save_draft(actor, None, draft, "en").id
    second = quote_drafts.save_draft(actor, None, draft, "en").id
    quote_drafts.finalize(actor, second)
    return {"draft_quote": first, "quote": second}


def pages(ids: dict) -> dict[str, list[str]]:
    """Every merchant page and the paths that show it (several for pages with states: filters, steps)."""
    p, d = ids["payment"], ids["dispute"]
    return {
        "dashboard.home": ["/"],
        "dashboard.section": ["/section/links", "/section/reports"],
        "links.index": ["/links/"],
        "link_editor.new": ["/links/new"],
        "link_editor.edit": [f"/links/{ids['link']}/edit"],
        "links.share": [f"/links/{ids['link']}/share"],
        "links.embed": [f"/links/{ids['link']}/embed"],
        "links.delete": [f"/links/{ids['link']}/delete"],
        "links.created": [f"/links/{ids['link']}/created"],
        "payments.index": ["/payments/", "/payments/?status=succeeded&method=card", "/payments/?q=ann",
                           "/payments/?status=refunded&amount_min=5"],
        "payments.disputes_tab": ["/payments/disputes"],
        "payments.filters": ["/payments/filters"],
        "payments.setup": ["/payments/setup"],
        "payments.detail": [f"/payments/{p}", f"/payments/{ids['ach']}"],
        "payments.refund": [f"/payments/{p}/refund"],
        "payments.send_receipt": [f"/payments/{p}/send-receipt"],
        "payments.authorization": [f"/payments/{ids['ach']}/authorization"],
        "payments.association": [f"/payments/{p}/associations/contact?q=a"],
        "disputes.show": [f"/disputes/{d}", f"/disputes/{ids['seed_dispute']}"],
        "disputes.counter": [f"/disputes/{d}/counter/{step}" for step in (1, 2, 3, 4)],
        "disputes.accept": [f"/disputes/{d}/accept"],
        "subscriptions.index": ["/subscriptions/"],
        "subscriptions.detail": [f"/subscriptions/{ids['subscription']}"],
        "subscriptions.cancel": [f"/subscriptions/{ids['subscription']}/cancel"],
        "payouts.index": ["/payouts/"],
        "payouts.detail": [f"/payouts/{ids['payout']}"],
        "reports.index": ["/reports/"],
        "exports.index": ["/exports/"],
        "exports.payments": ["/exports/payments"],
        "products.index": ["/products/"],
        "products.new": ["/products/new"],
        "products.edit": [f"/products/{ids['product']}/edit"],
        "products.delete": [f"/products/{ids['product']}/delete"],
        "promo_codes.index": ["/promo-codes/"],
        "promo_codes.new": ["/promo-codes/new"],
        "promo_codes.deactivate": [f"/promo-codes/{ids['promo']}/deactivate"],
        "crm.contact": [f"/contacts/{ids['contact']}"],
        "crm.company": [f"/companies/{ids['company']}"],
        "crm.deal": [f"/deals/{ids['deal']}"],
        "crm.pipelines": ["/settings/pipelines"],
        "settings.index": ["/settings/"],
        "settings.account": ["/settings/account"],
        "settings.branding": ["/settings/branding"],
        "settings.emails": ["/settings/emails"],
        "settings.email_detail": [f"/settings/emails/{ids['email']}"],
        "settings.notifications": ["/settings/notifications"],
        "settings.payments": ["/settings/payments"],
        "settings.profile": ["/settings/profile"],
        "settings.tax_rates_index": ["/settings/tax-rates"],  # Q6
        "settings.new_tax_rate": ["/settings/tax-rates/new"],
        "settings.edit_tax_rate": [f"/settings/tax-rates/{ids['tax_rate']}/edit"],
        "settings.archive_tax_rate": [f"/settings/tax-rates/{ids['tax_rate']}/archive"],
        "settings.api_keys_index": ["/settings/api-keys"],  # I1
        "settings.revoke_api_key": [f"/settings/api-keys/{ids['api_key']}/revoke"],
        "settings.webhooks_index": ["/settings/webhooks"],  # I6
        "settings.webhook_endpoint": [f"/settings/webhooks/{ids['webhook_endpoint']}"],
        "settings.roll_webhook_secret": [f"/settings/webhooks/{ids['webhook_endpoint']}/roll"],  # I6
        "settings.team": ["/settings/users"],
        "settings.remove_user": [f"/settings/users/{ids['member']}/remove"],
        "invoices.index": ["/invoices/", "/invoices/?status=open"],  # V1
        "invoices.new": ["/invoices/new"],
        "invoices.edit": [f"/invoices/{ids['draft_invoice']}/edit"],
        "invoices.detail": [f"/invoices/{ids['draft_invoice']}", f"/invoices/{ids['invoice']}"],
        "invoices.void": [f"/invoices/{ids['invoice']}/void"],
        "invoices.record_payment": [f"/invoices/{ids['invoice']}/payments/new"],  # V3
        "invoices.edit_manual_payment": [f"/invoices/manual-payments/{ids['manual_payment']}/edit"],
        "invoices.delete_manual_payment": [f"/invoices/manual-payments/{ids['manual_payment']}/delete"],
        "quotes.index": ["/quotes/", "/quotes/?status=open"],  # V4
        "quotes.new": ["/quotes/new"],
        "quotes.edit": [f"/quotes/{ids['draft_quote']}/edit"],
        "quotes.detail": [f"/quotes/{ids['draft_quote']}", f"/quotes/{ids['quote']}"],
        "workflows.index": ["/workflows/"],  # W1, W2
        "workflows.new": ["/workflows/new"],
        "workflows.show": [f"/workflows/{ids['workflow']}"],
        "workflows.edit": [f"/workflows/{ids['workflow']}/edit"],
        "workflows.switch": [f"/workflows/{ids['workflow']}/switch"],
        "tasks.inbox": ["/tasks/"],
        "segments.index": ["/segments/"],  # W3, W8
        "segments.new": ["/segments/new"],
        "segments.show": [f"/segments/{ids['segment']}"],
        "segments.edit": [f"/segments/{ids['segment']}/edit"],
        "segments.delete": [f"/segments/{ids['segment']}/delete"],
    }


# What sticks out past the right edge, for a readable failure.
WIDE = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
  > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.table-wrap'))).map(e => e.tagName.toLowerCase() + '.'
  + String(e.className).trim().replace(/\\s+/g, '.') + ' →' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)"""


def _name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def test_b12_every_merchant_get_route_is_listed(live_server):
    """B12: the browser walk below covers every merchant GET route; a new one must be added to it (or to
    NOT_PAGES with its reason), so no page escapes the phone check."""
    listed = set(pages({key: 1 for key in ("payment", "ach", "link", "dispute", "seed_dispute", "subscription",
                                           "payout", "product", "contact", "company", "deal", "export", "member",
                                           "email", "promo", "tax_rate", "invoice",
                                           "draft_invoice", "manual_payment", "quote", "draft_quote", "api_key",
                                           "webhook_endpoint", "workflow", "segment")})) | set(NOT_PAGES)
    assert merchant_get_endpoints(live_server.app) == listed


# The walk is split into groups (each size × each group is a test), so xdist spreads ~180 page visits over its
# workers instead of one worker walking them in two tests of minutes each. An endpoint's group is fixed by its
# place in pages(): every page is in exactly one group (checked below).
WALK_GROUPS = 6


def walk_group(ids: dict, group: int) -> dict[str, list[str]]:
    return {endpoint: paths for index, (endpoint, paths) in enumerate(pages(ids).items())
            if index % WALK_GROUPS == group}


@pytest.fixture(scope="module")
def walk_server(browser_database_url, tmp_path_factory) -> Iterator[tuple]:
    """One seeded shop served for the walk's groups on this worker, on a database of its own (the other tests
    here empty theirs): the walk only reads pages (GET), so its groups share it. (server, ids)"""
    from tests.support.browser import running_live_server

    directory = tmp_path_factory.mktemp("b12-walk")
    # A copy of the migrated browser database (its rows are emptied when the server starts).
    with closing(sqlite3.connect(make_url(browser_database_url).database)) as source, \
            closing(sqlite3.connect(directory / "kassa.db")) as copy:
        source.backup(copy)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("KASSA_INSTANCE_PATH", str(directory / "instance"))
        for name in ("KASSA_SMTP_URL", "KASSA_REDIS_URL", "KASSA_DATABASE_URL"):
            monkeypatch.delenv(name, raising=False)
        with running_live_server(f"sqlite:///{directory / 'kassa.db'}", {}) as server:
            yield server, seed_shop(server)


def test_b12_walk_groups_cover_every_page_once():
    """B12: the walk's groups together are exactly pages(), each page in one group."""
    ids = defaultdict(lambda: 1)  # any id: only which paths a group holds matters here
    groups = [walk_group(ids, g) for g in range(WALK_GROUPS)]
    assert all(groups)
    merged = {endpoint: paths for group in groups for endpoint, paths in group.items()}
    assert merged == pages(ids)
    assert sum(len(group) for group in groups) == len(pages(ids))
    assert sum(len(paths) for paths in merged.values()) >= 50


@pytest.mark.parametrize("group", range(WALK_GROUPS))
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_b12_every_merchant_page_fits_the_screen_and_is_axe_clean(walk_server, new_page, size, group):
    live_server, shop = walk_server
    page = new_page(viewport=PHONE if size == "phone" else DESKTOP)
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    problems: list[str] = []
    visited = 0
    walked = walk_group(shop, group)
    for endpoint, paths in walked.items():
        for path in paths:
            response = page.goto(base + path)
            if response.status != 200:
                problems.append(f"{endpoint} {path}: HTTP {response.status}")
                continue
            wait_for_htmx_idle(page)
            visited += 1
            sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if sizes[0] > sizes[1]:
                problems.append(f"{endpoint} {path}: scrollWidth {sizes[0]} > {sizes[1]}: {page.evaluate(WIDE)}")
            try:
                assert_accessible(page, f"{endpoint} {path} ({size})")
            except AssertionError as exc:
                problems.append(str(exc))
            screenshot(page, f"b12-{_name(path)}-{size}")
    assert not problems, "\n".join(problems)
    assert visited == sum(len(paths) for paths in walked.values()) >= 50 // WALK_GROUPS
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_b12_phone_menu_is_one_row_with_a_disclosure_button(live_server, shop, new_page):
    page = new_page(viewport=PHONE)
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    page.goto(f"{base}/payments/")
    wait_for_htmx_idle(page)
    button = page.get_by_role("button", name="Menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    # One row: the brand, the menu button and the tools share the top line.
    top = page.locator(".topbar__inner").bounding_box()
    assert top["height"] <= 64, top
    screenshot(page, "b12-menu-closed-phone")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    expect(nav.get_by_role("link", name="Subscriptions")).to_be_visible()
    assert_accessible(page, "phone menu open")
    screenshot(page, "b12-menu-open-phone")
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    expect(nav).to_be_hidden()
    page.keyboard.press("Space")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Subscriptions").click()
    page.wait_for_url(f"{base}/subscriptions/")
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
    assert page.js_errors == []


def test_b12_phone_menu_without_javascript_is_still_reachable(live_server, shop, browser):
    context = new_context(browser, viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Reports")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    nav.get_by_role("link", name="Subscriptions").click()
    page.wait_for_url(f"{base}/subscriptions/")
    screenshot(page, "b12-menu-nojs-phone")
    context.close()
