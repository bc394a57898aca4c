"""I6 in Chromium (1440×900): a Super admin adds a webhook endpoint in Settings → Webhooks (a private address
is refused at the field), sees its signing secret, a test payment is delivered to a local receiver by the tick and
the worker, and the endpoint's delivery log shows it with its request body; Resend sends it again. axe on each
page; screenshots of the settings page and of the delivery log. Each attempt is listed with its request and answer;
Roll secret asks when the old secret stops working and shows the new one, and deliveries then carry both
signatures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import run_outbox
from tests.support.browser import DESKTOP, assert_accessible, log_in_page, new_context, screenshot
from tests.support.webhook_receiver import Receiver
from tests.support.webhook_verify import verify

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "shots"


@pytest.fixture
def app_config():
    return {"KASSA_WEBHOOK_ALLOW_LOOPBACK": True}


def _shot(page, name: str) -> None:
    path = screenshot(page, name)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _deliver(app) -> None:
    from kassa.services.platform.ticks import run_tick

    with app.app_context():
        assert not run_tick().failed
        run_outbox()
        db.session.remove()


def test_i6_add_an_endpoint_get_a_payment_and_resend_it(live_server, browser):
    receiver = Receiver().start()
    with live_server.app.app_context():
        owner = make_merchant(company="Fietsenmaker")
        email, account_id = owner.email, owner.account_id
        db.session.remove()
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.goto(f"{live_server.url}/settings/webhooks")
        page.locator("#f-url").fill("https://10.0.0.8/hooks")
        page.get_by_label("Payment succeeded (payment.succeeded)").check()
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#f-url-error")).to_contain_text("public internet addresses")
        assert_accessible(page, "webhooks refused url")

        page.locator("#f-url").fill(receiver.url)
        page.locator("#f-description").fill("Webshop")
        expect(page.get_by_label("Payment succeeded (payment.succeeded)")).to_be_checked()
        page.get_by_label("Payment refunded (payment.refunded)").check()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("[data-webhook-secret]").inner_text()
        assert secret.startswith("whsec_")
        assert_accessible(page, "webhook endpoint added")
        _shot(page, "i6-webhooks-settings-desktop")

        with live_server.app.app_context():  # a test payment succeeds (through the payment machine)
            from kassa.clock import now
            from kassa.database import write_transaction
            from kassa.models import Payment, PaymentStatus
            from kassa.services.payments.payment_states import move_payment

            payment_id = make_payment(account_id, amount_minor=4500, status="processing", mode="test").id
            with write_transaction(db.session) as session:
                move_payment(session.get(Payment, payment_id), PaymentStatus.SUCCEEDED, at=now())
            db.session.remove()
        _deliver(live_server.app)
        assert len(receiver.requests) == 1

        page.get_by_role("link", name=receiver.url).click()
        row = page.locator("[data-delivery]")
        expect(row).to_have_count(1)
        expect(row.locator("[data-delivery-status]")).to_have_text("Delivered")
        row.get_by_text("Request and answer").click()
        expect(row.locator("pre").first).to_contain_text('"type": "payment.succeeded"')
        assert_accessible(page, "delivery log")
        _shot(page, "i6-webhook-delivery-log-desktop")
        row.get_by_role("button", name="Resend").click()
        expect(page.get_by_text("The event is being sent again.")).to_be_visible()
        _deliver(live_server.app)
        assert len(receiver.requests) == 2
        page.reload()
        expect(page.locator("[data-delivery] td").nth(3)).to_have_text("2")

        # Every attempt, newest first: the Resend is marked, each with its status and signed request headers.
        row = page.locator("[data-delivery]")
        row.get_by_text("Request and answer").click()
        attempts = row.locator("[data-attempt]")
        expect(attempts).to_have_count(2)
        expect(attempts.first).to_contain_text("Attempt 2")
        expect(attempts.first).to_contain_text("resent")
        expect(attempts.first.locator("[data-attempt-status]")).to_have_text("HTTP 200")
        expect(attempts.nth(1)).to_contain_text("Kassa-Signature: t=")
        assert_accessible(page, "delivery attempts")
        _shot(page, "i6-webhook-attempts-desktop")

        # Roll the secret: asked first (the old one stays valid for 1 hour), the new one shown once.
        page.get_by_role("link", name="Roll secret").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("When should the old secret stop working?")
        dialog.get_by_label("In 1 hour").check()
        assert_accessible(page, "roll secret dialog")
        _shot(page, "i6-webhook-roll-dialog-desktop")
        dialog.get_by_role("button", name="Roll secret").click()
        new_secret = page.locator("[data-webhook-secret]").inner_text()
        assert new_secret.startswith("whsec_") and new_secret != secret
        expect(page.locator("[data-previous-secret]")).to_contain_text("previous secret also signs events until")
        assert_accessible(page, "secret rolled")
        _shot(page, "i6-webhook-secret-rolled-desktop")
        page.get_by_role("button", name="Resend").click()
        _deliver(live_server.app)
        header, body = receiver.requests[-1].headers["Kassa-Signature"], receiver.requests[-1].body
        assert header.count("v1=") == 2 and verify(secret, header, body) and verify(new_secret, header, body)
    finally:
        context.close()
        receiver.stop()
