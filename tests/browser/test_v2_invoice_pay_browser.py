"""V2 in Chromium: a merchant finalizes and sends an invoice (1440×900), the customer opens the emailed pay link on
a phone (390×844, in Dutch, the customer's language), pays the amount due with a test card on Kassa's checkout,
and the pay page then says the invoice is paid. axe on the invoice page and on the pay page before and after;
screenshots of each."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from kassa.processors import registry
from kassa.services.payments import invoice_drafts
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    emailed_link,
    log_in_page,
    new_context,
    screenshot,
)
from tests.support.checkout_flow import actor_for
from tests.support.invoices import editor_form

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/invoices")


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _draft(owner) -> int:
    form = editor_form()
    lines = [invoice_drafts.LineDraft(description=form["lines-0-description"], quantity=form["lines-0-quantity"],
                                      unit_price=form["lines-0-unit_price"], discount_type="percent",
                                      discount_value="10"),
             invoice_drafts.LineDraft(description="Parts", quantity="1", unit_price="12.50")]
    draft = invoice_drafts.InvoiceDraft(
        customer_email="anna@example.com", customer_name="Anna de Vries", company_name="Fietsen BV", language="nl",
        currency="EUR", issue_date="2026-12-01", due_date="2026-12-31", notes=form["notes"], terms=form["terms"],
        lines=lines)
    return invoice_drafts.save_draft(actor_for(owner), None, draft, "en").id


def test_v2_send_an_invoice_and_pay_it_on_a_phone(live_server, browser):
    live_server.app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # live mode, paid through the sandbox
    with live_server.app.app_context():
        owner = make_merchant(company="Fietsenmaker", currency="EUR", country="NL")
        invoice_id, email = _draft(owner), owner.email
        db.session.remove()
    base = live_server.url
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/invoices/{invoice_id}")
        page.get_by_role("button", name="Finalize").click()
        page.get_by_role("button", name="Send invoice").click()
        expect(page.get_by_text(re.compile(r"sent to anna@example.com"))).to_be_visible()
        expect(page.get_by_role("button", name="Send again")).to_be_visible()
        expect(page.get_by_label("Pay link")).to_have_value(re.compile(r"/invoice/"))
        _keep(screenshot(page, "v2-invoice-sent-desktop"))
        assert_accessible(page, "invoice page after sending")
    link = emailed_link(live_server, "invoice", "/invoice/")
    with new_context(browser, viewport=PHONE, locale="nl-NL") as context:
        page = context.new_page()
        page.goto(base + link)
        expect(page.get_by_role("heading", name=re.compile(r"^Factuur INV-"))).to_be_visible()
        pay = page.get_by_role("button", name=re.compile(r"^Betaal € 93,50"))
        expect(pay).to_be_visible()
        _keep(screenshot(page, "v2-invoice-pay-page-phone"))
        assert_accessible(page, "invoice pay page (phone)")
        pay.click()
        page.wait_for_url(re.compile(r"/checkout/"))
        expect(page.get_by_label(re.compile(r"^E-mail"))).to_have_value("anna@example.com")
        _keep(screenshot(page, "v2-invoice-checkout-phone"))
        page.get_by_label(re.compile(r"^Kaartnummer")).fill("4242424242424242")
        page.get_by_label(re.compile(r"^Vervaldatum")).fill("12 / 34")
        page.get_by_label(re.compile(r"CVC")).fill("123")
        page.get_by_label(re.compile(r"^Naam op (de )?kaart")).fill("Anna de Vries")
        page.get_by_role("button", name=re.compile(r"^Betaal ")).click()
        expect(page.get_by_role("heading", name=re.compile(r"Bedankt"))).to_be_visible()
        page.goto(base + link)
        expect(page.get_by_text("Deze factuur is betaald.", exact=False)).to_be_visible()
        expect(page.get_by_role("button", name=re.compile(r"^Betaal"))).to_have_count(0)
        _keep(screenshot(page, "v2-invoice-paid-page-phone"))
        assert_accessible(page, "paid invoice page (phone)")
