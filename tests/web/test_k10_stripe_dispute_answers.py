"""K10 through the app, on SQLite and PostgreSQL: a live payment's dispute on a Stripe-connected account is
answered with a file through the wizard's endpoints (the file goes to Stripe's File API, the answers to Stripe's
evidence fields); a second answer Stripe refuses leaves the dispute as it was; accept closes it at Stripe; a
dispute Stripe says is another account's can't be answered."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pypdf import PdfWriter
from sqlalchemy import select

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Dispute, Payment, StripeConnection
from kassa.processors.base import ProcessorEvent
from kassa.services.disputes.disputes import open_dispute
from tests.factories import make_merchant, make_payment
from tests.support.payments import login
from tests.support.stripe_doubles import FixtureTransport

OBJECTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe_objects.json")
                     .read_text(encoding="utf-8"))
KEY = Fernet.generate_key().decode()


def _pdf() -> bytes:
    writer, out = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(out)
    return out.getvalue()


PDF = _pdf()


@pytest.fixture
def transport() -> FixtureTransport:
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return {"KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_ENCRYPTION_KEYS": [KEY],
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://api.fixture", "files": "http://files.fixture",
                                            "connect": "http://connect.fixture"}}


@pytest.fixture
def disputed(client, transport):
    """(dispute id, Stripe's dispute object) for a live $25.00 payment on a Stripe-connected account."""
    owner = make_merchant(company="Acme")
    login(client, owner)
    account_id = owner.account_id
    payment = make_payment(account_id, mode="live", amount_minor=2500, processor="stripe")
    due_by = now() + timedelta(days=7)
    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).processor_ref = "pi_1"
        session.add(StripeConnection(
            account_id=account_id, mode="live", connected_at=now(), secret_key_encrypted=secrets_box.encrypt(
                "sk_live_51Kassa000000000000000000000000000000000000abcd"), secret_key_last4="abcd",
            publishable_key="pk_live_51Kassa", stripe_account_id="acct_1", stripe_account_name="Acme", country="US",
            default_currency="USD"))
    with write_transaction(db.session):
        dispute_id = open_dispute(ProcessorEvent(
            id="evt_1", type="dispute.created", account_id=account_id, object_ref="dp_1", occurred_at=now(),
            data={"dispute_ref": "dp_1", "charge_ref": "pi_1", "amount_minor": 2500, "currency": "USD",
                  "reason": "fraudulent", "is_inquiry": False, "evidence_due_by": due_by.isoformat()})).id
    stripe_side = {**OBJECTS["dispute"], "id": "dp_1", "amount": 2500, "currency": "usd", "reason": "fraudulent",
                   "status": "needs_response", "payment_intent": {
                       "id": "pi_1", "object": "payment_intent", "metadata": {"kassa_account": str(account_id)}},
                   "evidence_details": {**OBJECTS["dispute"]["evidence_details"], "due_by": int(due_by.timestamp())}}
    return dispute_id, stripe_side


def status_of(dispute_id: int) -> tuple[str, str | None]:
    db.session.rollback()
    dispute = db.session.get(Dispute, dispute_id)
    return dispute.status, dispute.answer


def test_k10_a_stripe_dispute_is_answered_with_a_file_through_the_wizard(client, transport, disputed):
    dispute_id, stripe_side = disputed
    transport.answers.update({
        ("GET", "/v1/disputes/dp_1"): [(200, stripe_side)],
        ("POST", "/v1/files"): [(200, {**OBJECTS["file"], "id": "file_chat"})],
        ("POST", "/v1/disputes/dp_1"): [(200, {**stripe_side, "status": "under_review"})],
    })
    assert client.post(f"/disputes/{dispute_id}/counter/1",
                       data={"why_legitimate": "3-D Secure passed."}).status_code == 303
    assert client.post(f"/disputes/{dispute_id}/files", data={"file": (io.BytesIO(PDF), "chat-with-buyer.pdf")},
                       content_type="multipart/form-data").status_code in (200, 303)
    assert transport.sent == []  # nothing goes to Stripe before the merchant submits
    assert client.post(f"/disputes/{dispute_id}/submit").status_code == 303

    assert [(s.method, s.host, s.path) for s in transport.sent] == [
        ("GET", "api.fixture", "/v1/disputes/dp_1"), ("POST", "files.fixture", "/v1/files"),
        ("POST", "api.fixture", "/v1/disputes/dp_1")]
    assert transport.sent[1].parts == [("file", "chat-with-buyer.pdf", PDF), ("purpose", None, b"dispute_evidence")]
    submitted = dict(transport.sent[2].params)
    assert submitted["evidence[customer_communication]"] == "file_chat"
    assert submitted["evidence[uncategorized_text]"].startswith("Why legitimate: 3-D Secure passed.")
    assert submitted["submit"] == "true"
    assert status_of(dispute_id) == ("under_review", "evidence")


def test_k10_an_answer_stripe_refuses_is_given_back_and_says_why(client, transport, disputed):
    """Stripe answers 400 and its record still needs a response: nothing was taken, the merchant sees Stripe's
    reason and may answer again."""
    dispute_id, stripe_side = disputed
    refused = {"error": {"type": "invalid_request_error", "param": "evidence[customer_purchase_ip]",
                         "message": "Invalid IP address: not-an-ip"}}
    transport.answers.update({
        ("GET", "/v1/disputes/dp_1"): [(200, stripe_side)],
        ("POST", "/v1/disputes/dp_1"): [(400, refused)],
    })
    client.post(f"/disputes/{dispute_id}/counter/1", data={"why_legitimate": "Known customer."})
    response = client.post(f"/disputes/{dispute_id}/submit")
    assert response.status_code == 409
    assert "Invalid IP address: not-an-ip" in response.get_data(as_text=True)
    assert status_of(dispute_id) == ("needs_response", None)
    assert [s.method for s in transport.sent] == ["GET", "POST", "GET", "GET"]  # answer, Stripe's record, lookup


def test_k10_accepting_closes_the_dispute_at_stripe(client, transport, disputed):
    dispute_id, stripe_side = disputed
    transport.answers.update({
        ("GET", "/v1/disputes/dp_1"): [(200, stripe_side)],
        ("POST", "/v1/disputes/dp_1/close"): [(200, {**stripe_side, "status": "lost"})],
    })
    assert client.post(f"/disputes/{dispute_id}/accept").status_code in (200, 303)
    assert [(s.method, s.path) for s in transport.sent][-1] == ("POST", "/v1/disputes/dp_1/close")
    assert status_of(dispute_id) == ("lost", "accept")


def test_k10_a_dispute_stripe_says_is_another_accounts_is_not_answered(client, transport, disputed):
    dispute_id, stripe_side = disputed
    theirs = {**stripe_side, "payment_intent": {**stripe_side["payment_intent"],
                                                "metadata": {"kassa_account": "999999"}}}
    transport.answers.update({("GET", "/v1/disputes/dp_1"): [(200, theirs)]})
    client.post(f"/disputes/{dispute_id}/counter/1", data={"why_legitimate": "Known customer."})
    response = client.post(f"/disputes/{dispute_id}/submit")
    assert response.status_code == 409
    assert "does not exist at the processor" in response.get_data(as_text=True)
    assert {s.method for s in transport.sent} == {"GET"}
    assert status_of(dispute_id) == ("needs_response", None)  # given back: the merchant may try again
    assert db.session.scalar(select(Dispute.submitted_at).where(Dispute.id == dispute_id)) is None
