"""Q2 in Chromium: a buyer applies a promo code on a phone (390×844) in Dutch — with checkout.js ("Apply"
re-prices without a page load) and without it (the field shows, "Apply" re-renders the page) — then pays the
discounted amount; a wrong code gets its message at the field. The merchant's promo codes page at 1440×900.
axe on each page; screenshots."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Payment, User
from kassa.services.links import promo_codes
from kassa.services.links.link_drafts import ItemDraft
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    log_in_page,
    new_context,
    phone_checkout,
    screenshot,
)
from tests.support.checkout_flow import make_link

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/promo")


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


@pytest.fixture
def shop(live_server):
    with live_server.app.app_context():
        owner = make_merchant(company="Koffiebranderij De Boon", currency="EUR", country="NL", language="nl")
        link = make_link(owner, currency="EUR", items=[
            ItemDraft(name="Koffiebonen 1 kg", unit_price="12.50", quantity="1"),
            ItemDraft(name="Filterzakjes", unit_price="12.50", quantity="1"),
        ])
        actor = Actor(user=db.session.get(User, owner.id), account_id=owner.account_id)
        promo_codes.create_code(actor, {"code": "SUMMER10", "kind": "percent", "percent": "10",
                                        "max_redemptions": "10"}, "en")
        promo_codes.create_code(actor, {"code": "WELCOME5", "kind": "amount", "amount": "5.00", "currency": "EUR",
                                        "first_time_only": True, "link_ids": [str(link.id)]}, "en")
        email, slug = owner.email, link.slug
        db.session.remove()
    return email, slug


def _payments(live_server) -> list[tuple[int, str | None, int]]:
    with live_server.app.app_context():
        rows = [(p.amount_minor, p.promo_code, p.promo_discount_minor) for p in db.session.scalars(select(Payment))]
        db.session.remove()
    return rows


@pytest.mark.parametrize("script", ["with-script", "script-blocked"])
def test_q2_buyer_applies_a_promo_code_on_a_phone_in_dutch(live_server, browser, shop, script):
    _email, slug = shop
    with phone_checkout(browser, live_server.url, slug, script=script == "with-script") as page:
        total = page.locator("#summary-total")
        expect(total).to_have_text(re.compile(r"€\s?25,00"))
        field = page.get_by_label("Kortingscode", exact=True)
        if script == "with-script":
            expect(field).to_be_hidden()
            page.get_by_role("button", name="Kortingscode toevoegen").click()
        expect(field).to_be_visible()
        page.locator("#f-email").fill("koper@example.nl")

        # A wrong code: its message at the field, nothing charged.
        field.fill("WINTER")
        page.get_by_role("button", name="Toepassen").click()
        expect(page.locator("#f-promo-error")).to_have_text(re.compile("niet geldig"))
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(total).to_have_text(re.compile(r"€\s?25,00"))

        field.fill("summer10")
        page.get_by_role("button", name="Toepassen").click()
        expect(page.locator("#promo")).to_have_text(re.compile(r"Korting SUMMER10.*-\s?€\s?2,50|Korting SUMMER10.*€\s?-2,50"))
        expect(total).to_have_text(re.compile(r"€\s?22,50"))
        expect(page.locator("#pay-button")).to_have_text(re.compile(r"Betaal €\s?22,50"))
        expect(page.locator("#f-promo-error")).to_be_hidden()
        expect(page.locator("#f-email")).to_have_value("koper@example.nl")  # nothing typed is lost
        assert _payments(live_server) == []

        page.locator("#f-card_number").fill("4242424242424242")
        page.locator("#f-card_expiry").fill("12 / 34")
        page.locator("#f-card_cvc").fill("123")
        page.locator("#f-card_name").fill("Anna de Vries")
        page.locator("#f-billing_line1").fill("Prinsengracht 1")
        page.locator("#f-billing_postal_code").fill("1015 DT")
        page.locator("#f-billing_city").fill("Amsterdam")
        assert_accessible(page, f"checkout with a promo code ({script})")
        if script == "with-script":
            _keep(screenshot(page, "q2-promo-checkout-nl-phone"))
        page.locator("#pay-button").click()
        expect(page.get_by_role("heading", name=re.compile("Uw bestelling|Je bestelling"))).to_be_visible()
        expect(page.get_by_text("Korting SUMMER10")).to_be_visible()
        assert_accessible(page, f"confirmation with a promo code ({script})")
        if script == "with-script":
            _keep(screenshot(page, "q2-promo-confirmation-nl-phone"))
        assert _payments(live_server) == [(2250, "SUMMER10", 250)]


def test_q2_promo_codes_page_on_a_desktop(live_server, browser, shop):
    email, _slug = shop
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.goto(f"{live_server.url}/promo-codes/")
        expect(page.get_by_text("0 van 10 gebruikt")).to_be_visible()
        expect(page.get_by_text("Alleen nieuwe kopers")).to_be_visible()
        assert_accessible(page, "promo codes page")
        _keep(screenshot(page, "q2-promo-codes-desktop"))
        page.goto(f"{live_server.url}/promo-codes/new")
        page.get_by_role("button", name="Kortingscode maken").click()
        expect(page.locator("#f-code-error")).to_have_text(re.compile("Vul een code in"))
        assert_accessible(page, "promo code form with errors")
        _keep(screenshot(page, "q2-promo-code-form-errors-desktop"))
    finally:
        context.close()
