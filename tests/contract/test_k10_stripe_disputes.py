"""K10: dispute answers through Stripe — files through the File API, evidence fields mapped from the wizard,
accept = close, Stripe's statuses as the Protocol's, and the Protocol's refusals from Stripe's answers. Through a
recording fixture transport answering objects shaped like Stripe's own examples (tests/fixtures/stripe)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe

from kassa.processors.base import DisputeEvidence, EvidenceFile, ProcessorFailure, ProcessorUnavailable
from kassa.processors.stripe import StripeProcessor, evidence_fields, file_slots
from tests.support.stripe_doubles import FixtureTransport

OBJECTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe_objects.json")
                     .read_text(encoding="utf-8"))
SHOP, OTHER = 101, 202
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
DUE_BY = int((NOW + timedelta(days=7)).timestamp())
INTENT = {"id": "pi_1", "object": "payment_intent", "amount": 3000, "currency": "usd", "status": "succeeded",
          "metadata": {"kassa_account": str(SHOP), "kassa_key": "order-7", "kassa_request": "3000|USD|pm_1|0"}}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def dispute(status: str = "needs_response", **kw: Any) -> dict[str, Any]:
    """Stripe's example dispute (fixtures3.json) on Kassa's PaymentIntent."""
    base = OBJECTS["dispute"]
    return {**base, "id": "dp_1", "amount": 3000, "currency": "usd", "reason": "product_not_received",
            "status": status, "charge": "ch_1", "payment_intent": INTENT, "created": int(NOW.timestamp()) - 60,
            "evidence_details": {**base["evidence_details"], "due_by": DUE_BY}, **kw}


def file_object(file_id: str) -> dict[str, Any]:
    return {**OBJECTS["file"], "id": file_id, "purpose": "dispute_evidence"}


def processor_on(answers, account_id: int = SHOP) -> tuple[StripeProcessor, FixtureTransport]:
    transport = FixtureTransport(answers)
    client = stripe.StripeClient("sk_test_kassa", http_client=transport, max_network_retries=0,
                                 base_addresses={"api": "http://api.fixture", "files": "http://files.fixture",
                                                 "connect": "http://connect.fixture"})
    return StripeProcessor(client, account_id), transport


def wizard_evidence() -> DisputeEvidence:
    """What the wizard sends for a product-not-received dispute: step 1's answers, step 2's details, step 3's
    text and two files."""
    return DisputeEvidence(
        fields={"delivered": "yes", "delivery_date": "2027-02-20", "tracking_number": "1Z999AA10123456784",
                "carrier": "UPS", "customer_name": "Ada Lovelace", "customer_email": "ada@example.com",
                "billing_address": "Main St 1, 10115 Berlin, DE", "purchase_ip": "203.0.113.7",
                "product_description": "1 × Walnut desk", "receipt": "R-2027-0001",
                "refund_policy": "Returns within 30 days.", "additional_information": "Signed for by A. L."},
        text="delivered: yes\n…", files=(EvidenceFile("tracking.pdf", "application/pdf", data=PDF),
                                         EvidenceFile("photo.png", "image/png", data=PNG)))


def test_k10_evidence_goes_to_stripe_as_uploaded_files_and_mapped_fields_submitted_once():
    processor, transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute())],
        ("POST", "/v1/files"): [(200, file_object("file_tracking")), (200, file_object("file_photo"))],
        ("POST", "/v1/disputes/dp_1"): [(200, dispute("under_review"))],
    })
    answered = processor.submit_dispute_evidence(SHOP, "dp_1", wizard_evidence(), NOW)

    assert [(sent.method, sent.host, sent.path) for sent in transport.sent] == [
        ("GET", "api.fixture", "/v1/disputes/dp_1"),
        ("POST", "files.fixture", "/v1/files"), ("POST", "files.fixture", "/v1/files"),
        ("POST", "api.fixture", "/v1/disputes/dp_1")]
    assert transport.sent[0].params == [("expand[0]", "payment_intent")]
    tracking, photo = transport.sent[1], transport.sent[2]
    # Each file is one multipart upload: purpose dispute_evidence, the file's own name and its exact bytes.
    assert tracking.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert tracking.parts == [("file", "tracking.pdf", PDF), ("purpose", None, b"dispute_evidence")]
    assert photo.parts == [("file", "photo.png", PNG), ("purpose", None, b"dispute_evidence")]
    assert tracking.headers["Idempotency-Key"].startswith(f"kassa-{SHOP}-dp_1-file-")
    assert tracking.headers["Idempotency-Key"] != photo.headers["Idempotency-Key"]

    submit = transport.sent[-1]
    assert submit.headers["Idempotency-Key"].startswith(f"kassa-{SHOP}-dp_1-evidence-")
    assert submit.params == [
        ("evidence[shipping_date]", "2027-02-20"),
        ("evidence[shipping_tracking_number]", "1Z999AA10123456784"),
        ("evidence[shipping_carrier]", "UPS"),
        ("evidence[customer_name]", "Ada Lovelace"),
        ("evidence[customer_email_address]", "ada@example.com"),
        ("evidence[billing_address]", "Main St 1, 10115 Berlin, DE"),
        ("evidence[customer_purchase_ip]", "203.0.113.7"),
        ("evidence[product_description]", "1 × Walnut desk"),
        ("evidence[refund_policy_disclosure]", "Returns within 30 days."),
        ("evidence[uncategorized_text]", "Delivered: yes\nReceipt: R-2027-0001\nAdditional information: Signed for by "
                                         "A. L."),
        # The tracking page goes where its name says; the photo to the next field the reason calls for.
        ("evidence[shipping_documentation]", "file_tracking"),
        ("evidence[receipt]", "file_photo"),
        ("submit", "true"), ("metadata[kassa_account]", str(SHOP)), ("expand[0]", "payment_intent")]
    assert (answered.dispute_ref, answered.charge_ref, answered.status, answered.amount_minor, answered.currency,
            answered.reason, answered.is_inquiry) == ("dp_1", "pi_1", "under_review", 3000, "USD",
                                                      "product_not_received", False)
    assert answered.evidence_due_by == datetime.fromtimestamp(DUE_BY, UTC)  # Stripe's evidence_details.due_by


def test_k10_files_are_read_from_their_path_when_sent(tmp_path):
    stored = tmp_path / "abc.bin"
    stored.write_bytes(PDF)
    processor, transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute(reason="general"))],
        ("POST", "/v1/files"): [(200, file_object("file_1"))],
        ("POST", "/v1/disputes/dp_1"): [(200, dispute("under_review"))],
    })
    processor.submit_dispute_evidence(SHOP, "dp_1", DisputeEvidence(
        files=(EvidenceFile("scan.pdf", "application/pdf", path=stored),)), NOW)
    assert transport.sent[1].parts[0] == ("file", "scan.pdf", PDF)
    assert ("evidence[receipt]", "file_1") in transport.sent[-1].params


@pytest.mark.parametrize(("stripe_status", "status", "is_inquiry"), [
    ("warning_needs_response", "needs_response", True),
    ("warning_under_review", "under_review", True),
    ("warning_closed", "won", True),
    ("needs_response", "needs_response", False),
    ("under_review", "under_review", False),
    ("won", "won", False),
    ("lost", "lost", False),
    ("prevented", "won", False),
])
def test_k10_every_stripe_dispute_status_maps_to_the_protocols(stripe_status, status, is_inquiry):
    processor, _transport = processor_on({("GET", "/v1/disputes/dp_1"): [(200, dispute(stripe_status))]})
    found = processor.lookup_dispute(SHOP, "dp_1", NOW)
    assert (found.status, found.is_inquiry, found.charge_ref, found.amount_minor) == (status, is_inquiry, "pi_1",
                                                                                     3000)


@pytest.mark.parametrize(("stripe_status", "code"), [
    ("under_review", "dispute_already_answered"), ("warning_under_review", "dispute_already_answered"),
    ("won", "dispute_closed"), ("lost", "dispute_closed"), ("warning_closed", "dispute_closed"),
])
def test_k10_an_answered_or_closed_dispute_is_refused_before_anything_is_sent(stripe_status, code):
    processor, transport = processor_on({("GET", "/v1/disputes/dp_1"): [(200, dispute(stripe_status))]})
    with pytest.raises(ProcessorFailure) as refused:
        processor.submit_dispute_evidence(SHOP, "dp_1", wizard_evidence(), NOW)
    assert refused.value.code == code
    with pytest.raises(ProcessorFailure) as not_accepted:
        processor.accept_dispute(SHOP, "dp_1", NOW)
    assert not_accepted.value.code == code
    assert {sent.method for sent in transport.sent} == {"GET"}


def test_k10_past_its_due_date_a_dispute_is_closed_and_empty_evidence_is_required():
    processor, transport = processor_on({("GET", "/v1/disputes/dp_1"): [(200, dispute())]})
    with pytest.raises(ProcessorFailure) as late:
        processor.submit_dispute_evidence(SHOP, "dp_1", wizard_evidence(), NOW + timedelta(days=8))
    assert late.value.code == "dispute_closed"
    with pytest.raises(ProcessorFailure) as empty:
        processor.submit_dispute_evidence(SHOP, "dp_1", DisputeEvidence(fields={"explanation": "  "}), NOW)
    assert empty.value.code == "evidence_required"
    assert {sent.method for sent in transport.sent} == {"GET"}


def test_k10_stripes_400_on_a_second_submission_is_dispute_already_answered():
    """Another answer got in first (Stripe answers 400): Stripe's record then says it is under review."""
    refused = {"error": {"type": "invalid_request_error", "code": "resource_already_exists",
                         "message": "This dispute has already been submitted."}}
    processor, transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute()), (200, dispute("under_review"))],
        ("POST", "/v1/disputes/dp_1"): [(400, refused)],
    })
    with pytest.raises(ProcessorFailure) as twice:
        processor.submit_dispute_evidence(SHOP, "dp_1", DisputeEvidence(text="Signed receipt."), NOW)
    assert twice.value.code == "dispute_already_answered"
    assert [sent.method for sent in transport.sent] == ["GET", "POST", "GET"]


def test_k10_a_lost_answer_is_processor_unavailable():
    processor, _transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute())],
        ("POST", "/v1/disputes/dp_1"): [(500, {"error": {"type": "api_error", "message": "boom"}})],
    })
    with pytest.raises(ProcessorUnavailable):
        processor.submit_dispute_evidence(SHOP, "dp_1", DisputeEvidence(text="Signed receipt."), NOW)


def test_k10_accept_closes_the_dispute_and_it_is_lost():
    processor, transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute())],
        ("POST", "/v1/disputes/dp_1/close"): [(200, dispute("lost"))],
    })
    closed = processor.accept_dispute(SHOP, "dp_1", NOW)
    assert (closed.dispute_ref, closed.status) == ("dp_1", "lost")
    assert [(sent.method, sent.path, sent.params) for sent in transport.sent][-1] == (
        "POST", "/v1/disputes/dp_1/close", [("expand[0]", "payment_intent")])


def test_k10_an_inquiry_accepted_closes_as_lost_though_stripe_says_warning_closed():
    processor, _transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute("warning_needs_response"))],
        ("POST", "/v1/disputes/dp_1/close"): [(200, dispute("warning_closed"))],
    })
    closed = processor.accept_dispute(SHOP, "dp_1", NOW)
    assert (closed.status, closed.is_inquiry) == ("lost", True)


def test_k10_another_accounts_or_an_unknown_dispute_answers_as_unknown():
    missing = {"error": {"type": "invalid_request_error", "code": "resource_missing",
                         "message": "No such dispute: 'dp_nope'"}}
    theirs = {**INTENT, "metadata": {**INTENT["metadata"], "kassa_account": str(OTHER)}}
    processor, transport = processor_on({
        ("GET", "/v1/disputes/dp_1"): [(200, dispute(payment_intent=theirs))],
        ("GET", "/v1/disputes/dp_nope"): [(404, missing)],
    })
    assert processor.lookup_dispute(SHOP, "dp_1", NOW) is None  # a payment another Kassa account made
    assert processor.lookup_dispute(SHOP, "dp_nope", NOW) is None
    assert processor.lookup_dispute(OTHER, "dp_1", NOW) is None  # not this processor's account: nothing asked
    for call in (lambda: processor.accept_dispute(SHOP, "dp_1", NOW),
                 lambda: processor.submit_dispute_evidence(SHOP, "dp_nope", wizard_evidence(), NOW),
                 lambda: processor.accept_dispute(OTHER, "dp_1", NOW)):
        with pytest.raises(ProcessorFailure) as unknown:
            call()
        assert unknown.value.code == "no_such_dispute"
    assert {sent.method for sent in transport.sent} == {"GET"}
    assert len(transport.sent) == 4


def test_k10_a_dispute_on_a_charge_without_a_payment_intent_is_unknown():
    processor, _transport = processor_on({("GET", "/v1/disputes/dp_1"): [(200, dispute(payment_intent=None))]})
    assert processor.lookup_dispute(SHOP, "dp_1", NOW) is None


def test_k10_wizard_answers_map_to_stripes_fields_and_the_rest_to_uncategorized_text():
    fields = evidence_fields(DisputeEvidence(fields={
        "not_duplicate_reason": "Two different orders.", "cancellation_policy_shown": "At checkout.",
        "no_cancellation_received": "No request came in.", "refund_refusal_reason": "Used item.",
        "why_legitimate": "3-D Secure passed.", "explanation": "", "prior_payments": "4 earlier orders"}))
    assert fields == {"duplicate_charge_explanation": "Two different orders.",
                      "cancellation_policy_disclosure": "At checkout.",
                      "cancellation_rebuttal": "No request came in.", "refund_refusal_explanation": "Used item.",
                      "uncategorized_text": "Why legitimate: 3-D Secure passed.\nPrior payments: 4 earlier orders"}
    assert evidence_fields(DisputeEvidence(text=" Signed receipt. ")) == {"uncategorized_text": "Signed receipt."}


def test_k10_files_go_to_the_field_their_name_or_the_reason_calls_for_and_ten_are_refused():
    assert file_slots("fraudulent", ["chat-with-buyer.png", "scan.pdf", "invoice-7.pdf"]) == [
        "customer_communication", "customer_signature", "receipt"]
    assert file_slots("general", ["a.pdf", "b.pdf", "c.pdf"]) == ["receipt", "service_documentation",
                                                                  "uncategorized_file"]
    slots = file_slots("general", [f"{n}.pdf" for n in range(9)])
    assert len(set(slots)) == 9
    with pytest.raises(ProcessorFailure) as too_many:
        file_slots("general", [f"{n}.pdf" for n in range(10)])
    assert too_many.value.code == "too_many_files"
