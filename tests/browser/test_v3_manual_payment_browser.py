"""V3 in Chromium at 1440×900: on an open invoice's page the merchant records a bank transfer received outside
Kassa in the "Record a payment" dialog; the invoice shows paid, and the payments index lists the payment with
method "Manual" and source "Manual payment" (V6). axe on the dialog, the paid invoice and the index; screenshots."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import DESKTOP, assert_accessible, log_in_page, new_context, screenshot
from tests.support.invoices import editor_form

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "shots"


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_v3_merchant_records_a_manual_payment_and_sees_it_paid_and_manual(live_server, browser):
    with live_server.app.app_context():
        from kassa.actor import Actor
        from kassa.services.payments import invoice_drafts
        from kassa.services.payments.invoice_drafts import InvoiceDraft, LineDraft

        owner = make_merchant(company="Fietsenmaker", currency="EUR", country="NL")
        email = owner.email
        form = editor_form()
        draft = InvoiceDraft(customer_email=form["customer_email"], customer_name=form["customer_name"],
                             company_name=form["company_name"], language="en", currency="EUR",
                             issue_date=form["issue_date"], due_date=form["due_date"], notes="", terms="",
                             lines=[LineDraft(description="Bicycle repair", quantity="2", unit_price="45.00",
                                              discount_type="percent", discount_value="10"),
                                    LineDraft(description="Parts", quantity="1", unit_price="12.50")])
        actor = Actor(user=owner, account_id=owner.account_id)
        invoice_id = invoice_drafts.save_draft(actor, None, draft, "en").id
        invoice_drafts.finalize(actor, invoice_id)
        db.session.remove()
    base = live_server.url
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/invoices/{invoice_id}")
        expect(page.get_by_role("heading", name=re.compile(r"Invoice INV-000001"))).to_be_visible()
        page.get_by_role("link", name="Record a payment").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_label(re.compile(r"^Amount"))).to_have_value("93.50")
        dialog.get_by_label(re.compile(r"^Paid by")).select_option("bank_transfer")
        dialog.get_by_label(re.compile(r"^Reference")).fill("NL-TRF-0042")
        assert_accessible(page, "record a payment dialog")
        _keep(screenshot(page, "v3-record-payment-dialog-1440"))
        dialog.get_by_role("button", name="Record payment").click()
        expect(page.get_by_text("Manual payment of €93.50 recorded.")).to_be_visible()
        expect(page.locator("h1 .badge")).to_have_text("Paid")
        expect(page.get_by_role("cell", name=re.compile(r"Manual · Bank transfer · NL-TRF-0042"))).to_be_visible()
        expect(page.get_by_role("link", name="Record a payment")).to_have_count(0)
        assert_accessible(page, "paid invoice")
        _keep(screenshot(page, "v3-invoice-paid-1440"))
        page.goto(f"{base}/payments/?method=manual")  # the quick filter's "Payment method: Manual"
        row = page.locator("table tbody tr")
        expect(row).to_have_count(1)
        expect(row.first).to_contain_text("Manual")
        expect(row.first).to_contain_text("Manual payment")
        expect(row.first).to_contain_text("INV-000001")
        expect(row.first).to_contain_text("€93.50")
        assert_accessible(page, "payments index, manual")
        _keep(screenshot(page, "v3-payments-index-manual-1440"))
