"""Q10 on a phone (390×844) in Dutch: a EUR link offers SEPA-incasso (no US bank account), the IBAN is checked at its
field, the SEPA Core mandate is accepted, and the debit settles after the sandbox's 5 clearing days."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from kassa.clock import now
from tests.support.app import run_outbox
from tests.support.browser import PHONE, _new_page, assert_accessible, screenshot, signed_test_url
from tests.support.checkout_flow import make_shop, subject_of

pytestmark = pytest.mark.browser

MERCHANT = "Koffiebranderij De Boon"
BUYER = "sepa.phone@example.com"


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def slug(live_server) -> str:
    from kassa.extensions import db

    with live_server.app.app_context():
        _owner, link = make_shop(MERCHANT, currency="EUR", allow_ach=True)
        slug = link.slug
        db.session.remove()
    return slug


@pytest.fixture
def dutch_phone(browser):
    context, page = _new_page(browser, PHONE, locale="nl-NL")
    yield page
    context.close()


def test_q10_sepa_purchase_on_a_phone_in_dutch_settles_after_the_clearing_days(live_server, dutch_phone, slug,
                                                                               mailbox):
    from kassa.services.platform.ticks import run_tick

    page = dutch_phone
    page.goto(signed_test_url(live_server.url, slug))
    page.get_by_role("button", name=re.compile(r"^Betaal ")).wait_for()
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.get_by_label("Bankrekening", exact=True).count() == 0  # no US bank account on a EUR link
    page.get_by_label("SEPA-incasso", exact=True).check()
    page.get_by_label(re.compile(r"^E-mailadres")).fill(BUYER)
    page.get_by_label(re.compile(r"^Naam rekeninghouder")).fill("Pim Koper")
    iban = page.get_by_label(re.compile(r"^IBAN"))
    iban.fill("NL39 RABO 0300 0652 65")  # one digit off: the checksum fails
    iban.blur()
    expect(page.locator("#f-iban-error")).to_have_text("Je IBAN klopt niet. Controleer hem op tikfouten.")
    iban.fill("nl39 rabo 0300 0652 64")  # Stripe's test IBAN that succeeds, typed loosely
    iban.blur()
    expect(page.locator("#f-iban-error")).to_be_hidden()
    expect(page.locator("#mandate-text")).to_contain_text("Machtiging SEPA Core-incasso")
    expect(page.locator("#mandate-text")).to_contain_text(MERCHANT)
    page.get_by_label("Ik ga akkoord met deze SEPA-incassomachtiging").check()
    assert_accessible(page, "SEPA form in Dutch")
    screenshot(page, "checkout-q10-sepa-nl-phone")
    page.get_by_role("button", name=re.compile(r"^Betaal ")).click()

    page.get_by_role("heading", name="Bedankt! Je bankbetaling wordt verwerkt.").wait_for()
    expect(page.locator("main")).to_contain_text("SEPA-incasso •••• 5264")
    assert_accessible(page, "SEPA processing confirmation in Dutch")
    screenshot(page, "checkout-q10-sepa-processing-nl-phone")

    with time_machine.travel(now() + timedelta(days=10)):  # past 5 business days whatever the weekday
        with live_server.app.app_context():
            assert run_tick().failed == {}
            run_outbox()
        page.reload()
        page.get_by_role("heading", name="Deze betaling is afgerond").wait_for()
    subjects = [subject_of(m) for m in mailbox.to(BUYER)]
    assert subjects == [f"Je bankbetaling aan {MERCHANT} wordt verwerkt", f"Je betaalbewijs van {MERCHANT} (R-000001)"]
    assert page.js_errors == []
