"""V1 tax and V7 in Chromium at 1440×900: the invoice editor with a tax rate per line (totals with the tax per
rate, after an htmx "Add line"), the invoice page with its tax, the Invoices index filtered by status, customer,
due date and amount and saved as a view; axe 0 on each. Screenshots in shots/ (not committed): the editor with
tax, the filtered index, and a credit note PDF rendered to PNG."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import CreditNote, Refund, TaxRate
from kassa.services.payments import invoice_drafts
from kassa.services.payments.credit_notes import render_credit_note
from kassa.services.payments.invoice_drafts import InvoiceDraft, LineDraft
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    log_in_page,
    new_context,
    screenshot,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "shots"


def _keep(path: Path) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, SHOTS / path.name))


def _seed(owner) -> tuple[int, int]:
    """Tax rates, three finalized invoices of different customers, and a credit note of the first."""
    with write_transaction(db.session) as session:
        high = TaxRate(account_id=owner.account_id, name="BTW hoog", percentage_bp=2100, inclusive=False,
                       countries=[])
        session.add_all([high, TaxRate(account_id=owner.account_id, name="BTW laag", percentage_bp=900,
                                       inclusive=True, countries=["NL"])])
    actor = Actor(user=owner, account_id=owner.account_id)
    ids = []
    for email, name, price, due in (("anna@example.com", "Anna de Vries", "120.00", "2026-12-20"),
                                    ("bram@example.com", "Bram Bakker", "80.00", "2027-01-15"),
                                    ("anna.b@example.com", "Anna Bos", "15.00", "2027-01-10")):
        draft = InvoiceDraft(customer_email=email, customer_name=name, company_name="", language="nl",
                             currency="EUR", issue_date="2026-12-01", due_date=due,
                             lines=[LineDraft(description="Repair", unit_price=price, tax_rate_id=str(high.id))])
        invoice = invoice_drafts.save_draft(actor, None, draft, "en")
        invoice_drafts.finalize(actor, invoice.id)
        ids.append(invoice.id)
    payment = make_payment(owner.account_id, amount_minor=5000, currency="EUR", mode="live", source="invoice",
                           invoice_id=ids[0])
    with write_transaction(db.session) as session:
        refund = Refund(account_id=owner.account_id, payment_id=payment.id, amount_minor=5000, currency="EUR",
                        reason="requested_by_customer", idempotency_key="shot", status="succeeded")
        session.add(refund)
        session.flush()
        note = CreditNote(account_id=owner.account_id, number=1, invoice_id=ids[0], refund_id=refund.id,
                          payment_id=payment.id, amount_minor=5000, currency="EUR")
        session.add(note)
        session.flush()
        return ids[0], note.id


def test_v1_v7_editor_with_tax_and_the_filtered_invoices_index(live_server, browser):
    with live_server.app.app_context():
        owner = make_merchant(company="Fietsenmaker", currency="EUR", country="NL")
        email = owner.email
        first_id, note_id = _seed(owner)
        _name, _type, pdf = render_credit_note(note_id)
        db.session.remove()
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "v1-credit-note.pdf").write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(SHOTS / "v1-credit-note.pdf"),
                        str(SHOTS / "v1-credit-note")], check=True)
    base = live_server.url
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        # The editor: a tax rate per line, the totals with the tax per rate.
        page.goto(f"{base}/invoices/new")
        page.get_by_label("Email").fill("chris@example.com")
        page.locator("#f-lines-0-description").fill("Bicycle repair")
        page.locator("#f-lines-0-quantity").fill("2")
        page.locator("#f-lines-0-unit_price").fill("45.00")
        page.locator("#f-lines-0-tax_rate_id").select_option(label="BTW hoog (21%)")
        page.get_by_role("button", name="Add line").click()
        wait_for_htmx_idle(page)
        page.locator("#f-lines-1-description").fill("Parts")
        page.locator("#f-lines-1-unit_price").fill("12.50")
        page.locator("#f-lines-1-tax_rate_id").select_option(label="Incl. BTW laag (9%)")
        page.get_by_role("button", name="Add line").click()
        wait_for_htmx_idle(page)
        totals = page.locator("#invoice-totals")
        expect(totals).to_contain_text("BTW hoog (21%)")
        expect(totals).to_contain_text("€18.90")  # 21 % of 90.00
        expect(totals).to_contain_text("€1.03")  # the 9 % inside 12.50
        expect(totals).to_contain_text("€121.40")  # 90.00 + 18.90 + 12.50
        page.locator("#f-lines-2-description").fill("Bell")
        page.locator("#f-lines-2-unit_price").fill("5.00")
        assert_accessible(page, "invoice editor with tax")
        _keep(screenshot(page, "v1-invoice-editor-tax-1440"))
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("heading", name=re.compile(r"Invoice Draft"))).to_be_visible()
        expect(page.get_by_text("Total tax").first).to_be_visible()
        assert_accessible(page, "invoice page with tax")
        # The invoice with a credit note lists it.
        page.goto(f"{base}/invoices/{first_id}")
        expect(page.locator("#credit-notes")).to_contain_text("CN-000001")
        assert_accessible(page, "invoice page with a credit note")
        # The index, filtered through its form.
        page.goto(f"{base}/invoices/")
        page.locator("#f-status").select_option("open")
        page.locator("#f-q").fill("anna")
        page.locator("#f-due_from").fill("2026-12-01")
        page.locator("#f-due_to").fill("2027-01-31")
        page.locator("#f-amount_min").fill("10")
        page.locator("#f-amount_max").fill("200")
        page.get_by_role("button", name="Filter", exact=True).click()
        rows = page.locator("#invoice-table tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#invoice-table")).not_to_contain_text("Bram")
        assert_accessible(page, "invoices index filtered")
        page.locator("#f-view-name").fill("Anna, open")
        page.get_by_role("button", name="Save view").click()
        expect(page.get_by_role("link", name="Anna, open")).to_have_attribute("aria-current", "page")
        expect(rows).to_have_count(2)
        assert_accessible(page, "invoices index in a saved view")
        _keep(screenshot(page, "v7-invoices-index-filtered-1440"))
        page.locator("#f-q").fill("nobody")
        page.get_by_role("button", name="Filter", exact=True).click()
        expect(page.get_by_text("No invoice matches these filters.")).to_be_visible()
        assert_accessible(page, "invoices index, nothing matches")
