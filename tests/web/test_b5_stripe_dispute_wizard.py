"""B5 on a Stripe dispute (K10), on SQLite and PostgreSQL: the text typed at step 3 is autosaved, a file
chosen and not uploaded is added on "Save and review", and on submit that file goes to Stripe's File API with the
autosaved text in the evidence; the payment page then confirms what was sent and when the decision is due."""

from __future__ import annotations

import io

from kassa.extensions import db
from kassa.models import Dispute
from tests.support.payments import soup_of, text_of
from tests.web.test_k10_stripe_dispute_answers import (  # noqa: F401  (app_config, disputed, transport: fixtures)
    OBJECTS,
    PDF,
    app_config,
    disputed,
    status_of,
    transport,
)


def test_b5_stripe_dispute_autosaved_text_and_a_file_chosen_at_save_go_to_stripe(client, transport, disputed):  # noqa: F811
    dispute_id, stripe_side = disputed
    transport.answers.update({
        ("GET", "/v1/disputes/dp_1"): [(200, stripe_side)],
        ("POST", "/v1/files"): [(200, {**OBJECTS["file"], "id": "file_chat"})],
        ("POST", "/v1/disputes/dp_1"): [(200, {**stripe_side, "status": "under_review"})],
    })
    assert client.post(f"/disputes/{dispute_id}/draft/1", headers={"HX-Request": "true"},
                       data={"why_legitimate": "3-D Secure passed."}).status_code == 200
    assert client.post(f"/disputes/{dispute_id}/draft/3", headers={"HX-Request": "true"},
                       data={"additional_information": "Chat log attached."}).status_code == 200
    response = client.post(f"/disputes/{dispute_id}/counter/3", content_type="multipart/form-data", data={
        "additional_information": "Chat log attached.", "file": (io.BytesIO(PDF), "chat-with-buyer.pdf")})
    assert response.status_code == 303 and response.headers["Location"].endswith("/counter/4")
    assert transport.sent == []  # nothing goes to Stripe before the merchant submits
    assert client.post(f"/disputes/{dispute_id}/submit").status_code == 303

    assert [(s.method, s.host, s.path) for s in transport.sent] == [
        ("GET", "api.fixture", "/v1/disputes/dp_1"), ("POST", "files.fixture", "/v1/files"),
        ("POST", "api.fixture", "/v1/disputes/dp_1")]
    assert transport.sent[1].parts[0] == ("file", "chat-with-buyer.pdf", PDF)
    submitted = dict(transport.sent[2].params)
    assert submitted["evidence[customer_communication]"] == "file_chat"
    assert "Chat log attached." in submitted["evidence[uncategorized_text]"]
    assert status_of(dispute_id) == ("under_review", "evidence")

    dispute = db.session.get(Dispute, dispute_id)
    page = soup_of(client.get(f"/payments/{dispute.payment_id}"))
    box = text_of(page.select_one("#card-dispute .dispute-sent"))
    assert "Answers: Why is this payment legitimate?" in box and "Files: chat-with-buyer.pdf" in box
    assert "The bank's decision is due by" in box
    assert text_of(page.select_one("#toasts .toast--success")).startswith("Evidence submitted. The bank's decision")


def test_b5_stripe_dispute_a_refused_file_keeps_the_text_and_sends_nothing(client, transport, disputed):  # noqa: F811
    dispute_id, _stripe_side = disputed
    response = client.post(f"/disputes/{dispute_id}/counter/3", content_type="multipart/form-data", data={
        "additional_information": "Keep this.", "file": (io.BytesIO(b"GIF89a not evidence"), "chat.gif")})
    assert response.status_code == 422
    assert soup_of(response).select_one("textarea[name=additional_information]").get_text() == "Keep this."
    db.session.rollback()
    assert db.session.get(Dispute, dispute_id).draft["evidence"] == {"additional_information": "Keep this."}
    assert transport.sent == []
