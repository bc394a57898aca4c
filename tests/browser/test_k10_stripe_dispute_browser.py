"""K10 in Chromium at 1440×900: a merchant whose live Stripe account has a dispute answers it with two files
through the wizard; the answer goes to Stripe (each file through the File API, then the evidence fields with
the file ids, submitted once), answered by a recording fixture transport shaped like Stripe's objects."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect
from pypdf import PdfWriter

from tests.support.browser import assert_accessible, log_in_page, screenshot, wait_for_htmx_idle
from tests.support.stripe_doubles import FixtureTransport

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
OWNER = "owner@harbour.example"
OBJECTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe_objects.json")
                     .read_text(encoding="utf-8"))
KEY = Fernet.generate_key().decode()
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def transport() -> FixtureTransport:
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return {"KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_ENCRYPTION_KEYS": [KEY],
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://api.stripe.fixture",
                                            "files": "http://files.stripe.fixture",
                                            "connect": "http://connect.stripe.fixture"}}


@pytest.fixture
def stripe_dispute(live_server, transport):
    """A merchant with a live Stripe connection, a $25.00 live payment (pi_1) and Stripe's dispute dp_1 on it."""
    from kassa import secrets_box
    from kassa.clock import now
    from kassa.database import write_transaction
    from kassa.extensions import db
    from kassa.models import Payment, StripeConnection
    from kassa.processors.base import ProcessorEvent
    from kassa.services.disputes.disputes import open_dispute
    from tests.factories import make_merchant, make_payment

    due_by = now() + timedelta(days=6, hours=20)
    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email=OWNER, password=PASSWORD)
        account_id = owner.account_id
        payment = make_payment(account_id, mode="live", amount_minor=2500, processor="stripe",
                               email="ann@readers.example", buyer_name="Ann Reader")
        with write_transaction(db.session) as session:
            session.get(Payment, payment.id).processor_ref = "pi_1"
            session.add(StripeConnection(
                account_id=account_id, mode="live", connected_at=now(),
                secret_key_encrypted=secrets_box.encrypt("sk_live_51Kassa000000000000000000000000000000000000abcd"),
                secret_key_last4="abcd", publishable_key="pk_live_51Kassa", stripe_account_id="acct_1Harbour",
                stripe_account_name="Harbour Books", country="US", default_currency="USD"))
        with write_transaction(db.session):
            dispute = open_dispute(ProcessorEvent(
                id="evt_1", type="dispute.created", account_id=account_id, object_ref="dp_1",
                occurred_at=now(), data={"dispute_ref": "dp_1", "charge_ref": "pi_1", "amount_minor": 2500,
                                         "currency": "USD", "reason": "product_not_received",
                                         "is_inquiry": False, "evidence_due_by": due_by.isoformat()}))
            dispute_id = dispute.id
        db.session.remove()
    intent = {"id": "pi_1", "object": "payment_intent", "amount": 2500, "currency": "usd",
              "status": "succeeded", "metadata": {"kassa_account": str(account_id)}}
    stripe_side = {**OBJECTS["dispute"], "id": "dp_1", "amount": 2500, "currency": "usd", "charge": "ch_1",
                   "payment_intent": intent, "reason": "product_not_received", "status": "needs_response",
                   "evidence_details": {**OBJECTS["dispute"]["evidence_details"],
                                        "due_by": int(due_by.timestamp())}}
    transport.answers.update({
        ("GET", "/v1/disputes/dp_1"): [(200, stripe_side)],
        ("POST", "/v1/files"): [(200, {**OBJECTS["file"], "id": "file_note"}),
                                (200, {**OBJECTS["file"], "id": "file_photo"})],
        ("POST", "/v1/disputes/dp_1"): [(200, {**stripe_side, "status": "under_review"})],
    })
    return dispute_id


def test_k10_a_dispute_on_a_stripe_account_is_answered_with_files_sent_to_stripe(
        live_server, desktop_page, stripe_dispute, transport, tmp_path):
    page, base = desktop_page, live_server.url
    note = tmp_path / "delivery-note.pdf"
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    with note.open("wb") as out:
        writer.write(out)
    photo = tmp_path / "parcel-photo.png"
    photo.write_bytes(PNG)

    log_in_page(page, base, OWNER, PASSWORD)
    page.goto(f"{base}/disputes/{stripe_dispute}/counter/1")
    switch = page.get_by_role("switch", name="View test data")
    if switch.get_attribute("aria-checked") == "true":  # a live payment's dispute: look at live data
        switch.click()
        expect(page.get_by_role("switch", name="View test data")).to_have_attribute("aria-checked", "false")
    page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    page.get_by_label("Carrier").fill("UPS")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(re.compile(r"/counter/2$"))
    expect(page.get_by_label("Customer email")).to_have_value("ann@readers.example")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url(re.compile(r"/counter/3$"))
    for path in (note, photo):
        page.get_by_label("Add a file").set_input_files(str(path))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("ul.files")).to_contain_text(path.name)
        wait_for_htmx_idle(page)
    page.get_by_label("Additional information").fill("Signed for at the door on 20 February.")
    page.get_by_role("button", name="Save and review").click()
    page.wait_for_url(re.compile(r"/counter/4$"))
    page.get_by_role("button", name="Submit evidence").click()
    page.wait_for_url(re.compile(r"/payments/\d+$"))
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Disputed (awaiting decision)")

    # What Stripe received: the dispute read, each file uploaded to the files host, one submission.
    sent = [(s.method, s.host, s.path) for s in transport.sent]
    assert sent == [("GET", "api.stripe.fixture", "/v1/disputes/dp_1"),
                    ("POST", "files.stripe.fixture", "/v1/files"), ("POST", "files.stripe.fixture", "/v1/files"),
                    ("POST", "api.stripe.fixture", "/v1/disputes/dp_1")]
    assert [(s.parts[0][1], s.parts[1]) for s in transport.sent[1:3]] == [
        ("delivery-note.pdf", ("purpose", None, b"dispute_evidence")),
        ("parcel-photo.png", ("purpose", None, b"dispute_evidence"))]
    assert transport.sent[1].parts[0][2] == note.read_bytes() and transport.sent[2].parts[0][2] == PNG
    submitted = dict(transport.sent[-1].params)
    assert submitted["submit"] == "true"
    assert (submitted["evidence[shipping_tracking_number]"], submitted["evidence[shipping_carrier]"]) == (
        "1Z999AA10123456784", "UPS")
    assert submitted["evidence[customer_email_address]"] == "ann@readers.example"
    assert submitted["evidence[shipping_documentation]"] == "file_note"  # "delivery" in its name
    assert submitted["evidence[receipt]"] == "file_photo"
    assert "Signed for at the door" in submitted["evidence[uncategorized_text]"]

    page.get_by_role("link", name="See the evidence you submitted").click()
    page.wait_for_url(re.compile(r"/counter/4$"))
    expect(page.locator("#wizard")).to_contain_text("delivery-note.pdf")
    expect(page.locator("#wizard")).to_contain_text("parcel-photo.png")
    assert_accessible(page, "answered Stripe dispute")
    # The shot shows the details and the evidence files that went to Stripe.
    page.locator("#wizard h3", has_text="Details").evaluate("heading => heading.scrollIntoView({block: 'start'})")
    screenshot(page, "k10-dispute-with-files")
    assert page.js_errors == [], sorted(set(page.js_errors))
