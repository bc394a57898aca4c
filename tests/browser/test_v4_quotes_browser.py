"""V4 in Chromium: a merchant writes a quote with a one-time and a recurring line in the editor (1440×900),
finalizes and sends it; the customer opens the emailed link on a phone (390×844, in Dutch, the customer's language),
accepts it with their name and the box, pays with a test card on Kassa's checkout, and the merchant then sees the
subscription the recurring line started. axe on the editor, the quote page and the public page before and after;
screenshots of each (and of the quote PDF) in shots/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Payment, Quote, Subscription
from kassa.processors import registry
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

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "shots"


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_v4_write_send_accept_and_pay_a_quote_with_a_recurring_item(live_server, browser):
    live_server.app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # live mode, paid through the sandbox
    with live_server.app.app_context():
        owner = make_merchant(company="Webbureau", currency="EUR", country="NL")
        email, account_id = owner.email, owner.account_id
        db.session.remove()
    base = live_server.url
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/quotes/new")
        page.get_by_label("Email").fill("anna@example.com")
        page.get_by_label(re.compile(r"^Name")).fill("Anna de Vries")
        page.get_by_label("Quote language").select_option("nl")
        page.get_by_label(re.compile(r"^Currency")).fill("EUR")
        page.get_by_label(re.compile(r"^Description")).fill("Website setup")
        page.get_by_label(re.compile(r"^Unit price")).fill("400.00")
        page.get_by_role("button", name="Add line").click()
        second = page.locator("#f-lines-1-description")
        expect(second).to_be_visible()
        second.fill("Hosting")
        page.locator("#f-lines-1-unit_price").fill("25.00")
        page.locator("#f-lines-1-frequency").select_option("monthly")
        page.get_by_label(re.compile(r"^Terms")).fill("Work starts within a week of acceptance.")
        _keep(screenshot(page, "v4-quote-editor-desktop"))
        assert_accessible(page, "quote editor")
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("heading", name=re.compile(r"^Quote Draft"))).to_be_visible()
        page.get_by_role("button", name="Finalize").click()
        expect(page.get_by_role("heading", name=re.compile(r"^Quote Q-000001"))).to_be_visible()
        page.get_by_role("button", name="Send quote").click()
        expect(page.get_by_text("Quote Q-000001 sent.")).to_be_visible()
        expect(page.get_by_label("Quote link")).to_have_value(re.compile(r"/quote/"))
        _keep(screenshot(page, "v4-quote-sent-desktop"))
        assert_accessible(page, "quote page after sending")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download PDF").click()
        pdf = SHOTS / "v4-quote.pdf"
        SHOTS.mkdir(parents=True, exist_ok=True)
        download.value.save_as(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(SHOTS / "v4-quote-pdf")],
                       check=True)
    link = emailed_link(live_server, "quote", "/quote/")
    with new_context(browser, viewport=PHONE, locale="nl-NL") as context:
        page = context.new_page()
        page.goto(base + link)
        expect(page.get_by_role("heading", name="Offerte Q-000001")).to_be_visible()
        expect(page.get_by_text("Daarna € 25,00 elke maand tot opzegging")).to_be_visible()
        _keep(screenshot(page, "v4-quote-public-phone"))
        assert_accessible(page, "public quote page (phone)")
        page.get_by_role("button", name="Offerte accepteren").click()  # nothing filled in: said at the fields
        expect(page.locator("#f-name-error")).to_be_visible()
        page.get_by_label("Uw volledige naam").fill("Anna de Vries")
        page.get_by_label("Ik accepteer de voorwaarden van deze offerte").check()
        page.get_by_role("button", name="Offerte accepteren").click()
        expect(page.get_by_text("de offerte is geaccepteerd", exact=False)).to_be_visible()
        _keep(screenshot(page, "v4-quote-accepted-phone"))
        assert_accessible(page, "accepted quote (phone)")
        page.get_by_role("button", name="Nu betalen").click()
        page.wait_for_url(re.compile(r"/checkout/"))
        expect(page.get_by_label(re.compile(r"^E-mail"))).to_have_value("anna@example.com")
        _keep(screenshot(page, "v4-quote-checkout-phone"))
        page.get_by_label(re.compile(r"^Kaartnummer")).fill("4242424242424242")
        page.get_by_label(re.compile(r"^Vervaldatum")).fill("12 / 34")
        page.get_by_label(re.compile(r"CVC")).fill("123")
        page.get_by_label(re.compile(r"^Naam op (de )?kaart")).fill("Anna de Vries")
        page.get_by_role("button", name=re.compile(r"^Betaal ")).click()
        expect(page.get_by_role("heading", name=re.compile(r"Bedankt"))).to_be_visible()
        page.goto(base + link)
        expect(page.get_by_text("Deze offerte is geaccepteerd en betaald.", exact=False)).to_be_visible()
        expect(page.locator("button.pay")).to_have_count(0)
        _keep(screenshot(page, "v4-quote-paid-phone"))
        assert_accessible(page, "paid quote (phone)")
    with live_server.app.app_context():
        quote = db.session.scalars(select(Quote).where(Quote.account_id == account_id)).one()
        payment = db.session.get(Payment, quote.payment_id)
        subscription = db.session.scalars(select(Subscription).where(Subscription.account_id == account_id)).one()
        assert (quote.status, quote.accepted_name, payment.source, payment.amount_minor) == (
            "paid", "Anna de Vries", "quote", 42500)
        assert (subscription.frequency, subscription.amount_minor, subscription.status) == ("monthly", 2500, "active")
        subscription_id = subscription.id
        db.session.remove()
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/subscriptions/{subscription_id}")
        expect(page.get_by_text("Hosting").first).to_be_visible()
        _keep(screenshot(page, "v4-quote-subscription-desktop"))
