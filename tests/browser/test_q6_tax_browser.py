"""Q6 in Chromium: a taxed purchase on a phone (390×844) in Dutch — the country select and the VAT number
re-price the order without a page load (with checkout.js) or with "Totaal bijwerken" (without it), a wrong VAT
number is refused at its field, a valid one of another EU country is a reverse charge — and the merchant's
Tax rates settings page at 1440×900. axe on each page; screenshots (and the receipt PDF's first page)."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Payment
from kassa.services.accounts.tax_rates import create_rate, set_vat_number
from kassa.services.links.link_drafts import ItemDraft
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import (
    DESKTOP,
    SCREENSHOTS,
    assert_accessible,
    log_in_page,
    new_context,
    phone_checkout,
    screenshot,
)
from tests.support.checkout_flow import actor_for, make_link

pytestmark = pytest.mark.browser

MERCHANT = "Koffiebranderij De Boon"


@pytest.fixture
def shop(live_server):
    with live_server.app.app_context():
        owner = make_merchant(company=MERCHANT, currency="EUR", country="NL", language="nl")
        create_rate(actor_for(owner), name="BTW hoog", percentage="21", inclusive=False, countries="NL")
        create_rate(actor_for(owner), name="MwSt", percentage="19", inclusive=False, countries="DE")
        set_vat_number(actor_for(owner), "NL123456789B01")
        link = make_link(owner, currency="EUR", collect_tax=True, collect_billing_address=False,
                         items=[ItemDraft(name="Koffiebonen 1 kg", unit_price="20.00", quantity="1")])
        email, slug = owner.email, link.slug
        db.session.remove()
    return email, slug


def _payments(live_server) -> list[tuple[int, int, str, bool]]:
    with live_server.app.app_context():
        rows = [(p.amount_minor, p.tax_minor, p.buyer_country, p.reverse_charge)
                for p in db.session.scalars(select(Payment))]
        db.session.remove()
    return rows


@pytest.mark.parametrize("script", ["with-script", "script-blocked"])
def test_q6_taxed_purchase_in_dutch_on_a_phone(live_server, browser, shop, script):
    _email, slug = shop
    with phone_checkout(browser, live_server.url, slug, script=script == "with-script") as page:
        total, tax = page.locator("#summary-total"), page.locator("#tax")
        expect(total).to_have_text(re.compile(r"€\s?24,20"))
        expect(tax).to_contain_text("BTW hoog (21%)")

        def update():
            if script == "script-blocked":
                page.get_by_role("button", name="Totaal bijwerken").click()  # a page load, nothing charged

        page.locator("#f-tax_country").select_option("DE")
        update()
        expect(total).to_have_text(re.compile(r"€\s?23,80"))
        expect(tax).to_contain_text("MwSt (19%)")
        if script == "with-script":
            expect(page.get_by_role("button", name="Totaal bijwerken")).to_have_count(0)
            page.get_by_role("button", name="+ Btw-nummer toevoegen").click()
        vat = page.locator("#f-vat_id")
        vat.fill("DE12345")
        update()
        expect(page.locator("#f-vat_id-error")).to_contain_text("Dit is geen geldig DE-btw-nummer")
        expect(total).to_have_text(re.compile(r"€\s?23,80"))
        page.locator("#f-vat_id").fill("DE123456789")
        update()
        expect(tax).to_contain_text("Btw verlegd")
        expect(total).to_have_text(re.compile(r"€\s?20,00"))
        expect(page.locator("#pay-button")).to_have_text(re.compile(r"Betaal €\s?20,00"))
        assert _payments(live_server) == []

        page.locator("#f-email").fill("inkoop@example.de")
        page.locator("#f-card_number").fill("4242424242424242")
        page.locator("#f-card_expiry").fill("12 / 34")
        page.locator("#f-card_cvc").fill("123")
        page.locator("#f-card_name").fill("Anna Schmidt")
        assert_accessible(page, f"taxed checkout in Dutch ({script})")
        if script == "with-script":
            screenshot(page, "q6-tax-checkout-nl-phone")
        page.locator("#pay-button").click()
        expect(page.get_by_role("heading", name=re.compile("Uw bestelling|Je bestelling"))).to_be_visible()
        expect(page.get_by_text("Btw verlegd: de btw wordt door de afnemer voldaan")).to_be_visible()
        assert_accessible(page, f"confirmation with a reverse charge ({script})")
        if script == "with-script":
            screenshot(page, "q6-tax-confirmation-nl-phone")
            with live_server.app.app_context(), live_server.app.test_request_context():
                from kassa.services.payments.receipts import render_payment_receipt

                payment = db.session.scalars(select(Payment)).one()
                pdf = render_payment_receipt(payment)[2]
                db.session.remove()
            SCREENSHOTS.mkdir(exist_ok=True)
            (SCREENSHOTS / "q6-tax-receipt.pdf").write_bytes(pdf)
            subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                            str(SCREENSHOTS / "q6-tax-receipt.pdf"), str(SCREENSHOTS / "q6-tax-receipt")], check=True)
        assert _payments(live_server) == [(2000, 0, "DE", True)]


def test_q6_tax_rates_settings_page(live_server, browser, shop):
    email, _slug = shop
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.goto(f"{live_server.url}/settings/tax-rates/new")
        page.get_by_role("button", name="Tarief opslaan").click()
        expect(page.locator("#f-name-error")).to_be_visible()
        page.locator("#f-name").fill("BTW laag")
        page.locator("#f-percentage").fill("9")
        page.locator("#f-countries").fill("NL, BE")
        page.get_by_label("Prijzen zijn inclusief deze btw").check()
        page.get_by_role("button", name="Tarief opslaan").click()
        expect(page.get_by_role("cell", name="BTW laag", exact=True)).to_be_visible()
        expect(page.locator("#f-vat_number")).to_have_value("NL123456789B01")
        assert_accessible(page, "tax rates settings")
        screenshot(page, "q6-tax-rates-settings")
        page.get_by_role("link", name=re.compile("Archiveren BTW laag")).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("BTW laag archiveren?")
        dialog.get_by_role("button", name="Tarief archiveren").click()
        expect(page.locator(".badge", has_text="Gearchiveerd")).to_be_visible()

        # The link editor: "Btw berekenen" shows the tax row on the live preview (the merchant's country, NL).
        page.goto(f"{live_server.url}/links/new")
        page.locator("#f-items-0-name").fill("Koffiebonen 1 kg")
        page.locator("#f-items-0-unit_price").fill("20,00")
        page.get_by_label("Btw berekenen").check()
        preview = page.locator("#link-preview")
        expect(preview).to_contain_text("BTW hoog (21%)")
        expect(preview).to_contain_text(re.compile(r"Vandaag te betalen\s+€\s?24,20"), use_inner_text=True)
        assert_accessible(page, "editor with tax")
        screenshot(page, "q6-tax-editor-preview-desktop")
    finally:
        context.close()
