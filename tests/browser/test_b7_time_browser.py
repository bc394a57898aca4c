"""B7 in Chromium: the buyer's confirmation, the merchant's payment panel and the receipt PDF show one payment's
time the same way (the account's zone, each reader's language; the buyer sees the zone named)."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.support.browser import SCREENSHOTS, assert_accessible, log_in_page, pay_in_browser, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_b7_confirmation_panel_and_receipt_pdf_show_the_same_time(live_server, new_page):
    from kassa.extensions import db
    from kassa.models import Payment
    from kassa.services.payments.receipts import render_payment_receipt
    from kassa.timefmt import DATETIME, DATETIME_ZONE, format_when
    from tests.factories import make_merchant
    from tests.support.checkout_flow import item, make_link, plain

    app = live_server.app
    with app.app_context():
        owner = make_merchant(company="Bakkerij Bol", email="owner@bol.example", password=PASSWORD,
                              timezone="America/New_York", language="nl", currency="EUR")
        slug = make_link(owner, name="Taart", currency="EUR", items=[item("Appeltaart", "18.50")]).slug
        db.session.remove()

    buyer = new_page()
    pay_in_browser(buyer, live_server.url, slug, "ann@example.com")  # the buyer's page is in English
    with app.app_context():
        payment = db.session.scalars(select(Payment)).one()
        for_buyer = format_when(payment.created_at, DATETIME_ZONE, locale="en", timezone="America/New_York")
        for_merchant = format_when(payment.created_at, DATETIME, locale="nl", timezone="America/New_York")
        _name, _type, pdf = render_payment_receipt(payment)
        db.session.remove()
    assert for_buyer.endswith((" EST", " EDT"))
    expect(buyer.locator("dt:has-text('Date') + dd")).to_have_text(for_buyer)

    merchant = new_page()
    log_in_page(merchant, live_server.url, "owner@bol.example", PASSWORD)
    merchant.goto(f"{live_server.url}/payments/{payment.id}")
    expect(merchant.locator("dt:text-is('Datum') + dd").first).to_have_text(for_merchant)
    assert_accessible(merchant, "payment panel (nl, New York)")
    screenshot(merchant, "b7_payment_panel")

    # The receipt PDF, as the buyer gets it: in English, the same time with its zone; and as a picture.
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    assert f"Date paid {plain(for_buyer)}".upper() in plain(done.stdout.decode()).upper()
    SCREENSHOTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", "-", str(SCREENSHOTS / "b7_receipt_pdf")],
                   input=pdf, check=True)
    assert (SCREENSHOTS / "b7_receipt_pdf.png").stat().st_size > 10_000
