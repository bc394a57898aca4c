"""Q1, Q3, Q4 in Chromium: a discounted purchase with a quantity change and a pay-what-you-want tip on a phone
(390×844) in Dutch — with checkout.js (totals change without a page load) and without it ("Totaal bijwerken")
— and the link editor's preview of the pricing options at 1440×900. axe on each page; screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Payment
from kassa.services.links.link_drafts import ItemDraft
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    htmx_swap,
    log_in_page,
    new_context,
    phone_checkout,
    screenshot,
)
from tests.support.checkout_flow import make_link

pytestmark = pytest.mark.browser

MERCHANT = "Koffiebranderij De Boon"


@pytest.fixture
def shop(live_server):
    with live_server.app.app_context():
        owner = make_merchant(company=MERCHANT, currency="EUR", country="NL", language="nl")
        link = make_link(owner, currency="EUR", items=[
            ItemDraft(name="Koffiebonen 1 kg", unit_price="12.50", quantity="1", quantity_adjustable="1",
                      quantity_min="1", quantity_max="6", discount_type="percent", discount_value="10"),
            ItemDraft(name="Fooi voor de brander", unit_price="3.00", custom_amount="1", amount_min="1.00",
                      amount_max="50.00"),
        ])
        email, slug = owner.email, link.slug
        db.session.remove()
    return email, slug


def _payments(live_server) -> list[tuple[int, int, int]]:
    with live_server.app.app_context():
        rows = [(p.amount_minor, p.gross_minor, p.discount_minor) for p in db.session.scalars(select(Payment))]
        db.session.remove()
    return rows


@pytest.mark.parametrize("script", ["with-script", "script-blocked"])
def test_q1_q3_q4_discounted_purchase_with_a_quantity_change_in_dutch_on_a_phone(live_server, browser, shop, script):
    _email, slug = shop
    with phone_checkout(browser, live_server.url, slug, script=script == "with-script") as page:
        total = page.locator("#summary-total")
        expect(total).to_have_text(re.compile(r"€\s?14,25"))  # 12,50 − 1,25 + 3,00
        expect(page.get_by_text("Korting (10%)")).to_be_visible()

        page.get_by_label("Aantal").fill("3")
        page.get_by_label(re.compile(r"^Jouw prijs")).fill("5,00")
        if script == "script-blocked":
            page.get_by_role("button", name="Totaal bijwerken").click()  # a page load, nothing charged
        else:
            expect(page.get_by_role("button", name="Totaal bijwerken")).to_have_count(0)
        # 3 × 12,50 = 37,50 − 3,75 = 33,75, plus a tip of 5,00
        expect(total).to_have_text(re.compile(r"€\s?38,75"))
        expect(page.locator("#line-0-discount")).to_have_text(re.compile(r"€\s?-3,75|-\s?€\s?3,75"))
        expect(page.locator("#pay-button")).to_have_text(re.compile(r"Betaal €\s?38,75"))
        expect(page.get_by_label("Aantal")).to_have_value("3")
        assert _payments(live_server) == []

        page.locator("#f-email").fill("koper@example.nl")
        page.locator("#f-card_number").fill("4242424242424242")
        page.locator("#f-card_expiry").fill("12 / 34")
        page.locator("#f-card_cvc").fill("123")
        page.locator("#f-card_name").fill("Anna de Vries")
        page.locator("#f-billing_line1").fill("Prinsengracht 1")
        page.locator("#f-billing_postal_code").fill("1015 DT")
        page.locator("#f-billing_city").fill("Amsterdam")
        assert_accessible(page, f"checkout in Dutch with pricing options ({script})")
        if script == "with-script":
            screenshot(page, "q-pricing-checkout-nl-phone")
        page.locator("#pay-button").click()
        expect(page.get_by_role("heading", name=re.compile("Uw bestelling|Je bestelling"))).to_be_visible()
        expect(page.get_by_text("Korting (10%)")).to_be_visible()
        assert_accessible(page, f"confirmation with a discount ({script})")
        if script == "with-script":
            screenshot(page, "q-pricing-confirmation-nl-phone")
        assert _payments(live_server) == [(3875, 4250, 375)]


def test_q1_q3_q4_editor_preview_of_the_pricing_options(live_server, browser, shop):
    """The merchant's language is Dutch: the editor and its preview are too."""
    email, _slug = shop
    context = new_context(browser, viewport=DESKTOP, locale="en-US")  # the login page; then the user's Dutch
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.goto(f"{live_server.url}/links/new")
        page.locator("#f-items-0-name").fill("Koffiebonen 1 kg")
        page.locator("#f-items-0-unit_price").fill("12,50")
        page.locator("#f-items-0-quantity").fill("2")
        page.get_by_text("Korting, aantal en prijsopties").click()
        page.locator("#f-items-0-discount_type").select_option("percent")
        page.locator("#f-items-0-discount_value").fill("15")
        page.get_by_label("Kopers kunnen het aantal wijzigen").check()
        page.locator("#f-items-0-quantity_max").fill("6")
        preview = page.locator("#link-preview")
        expect(preview).to_contain_text("Korting (15%)")
        expect(preview).to_contain_text("Koper kiest 1 tot 6")
        expect(preview).to_contain_text(re.compile(r"Vandaag te betalen\s+€\s?21,25"), use_inner_text=True)
        assert_accessible(page, "editor with pricing options")
        screenshot(page, "q-pricing-editor-preview-desktop")
        with htmx_swap(page):
            page.get_by_role("button", name="Regelitem toevoegen").click()
        page.locator("#f-items-1-name").fill("Fooi")
        page.locator("#f-items-1-unit_price").fill("3,00")
        page.locator("details.item__pricing").nth(1).locator("summary").click()
        page.locator("#f-items-1-custom_amount").check()
        page.locator("#f-items-1-amount_min").fill("1,00")
        expect(preview).to_contain_text("Koper kiest de prijs")
        expect(preview).to_contain_text(re.compile(r"Vandaag te betalen\s+€\s?24,25"), use_inner_text=True)
        screenshot(page, "q-pricing-editor-preview-two-items-desktop")
    finally:
        context.close()
