"""Counter a dispute (D4): the four-step wizard, its saved drafts, the evidence files (type by content,
size, pages, budget, removal, who may download them), and submitting once.

Disputes are opened as a merchant gets them: a test-mode payment with a dispute card through the real
checkout, then a tick (see tests/web/test_disputes.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Account, DisputeFile
from tests.factories import make_merchant
from tests.support.payments import login, soup_of, text_of
from tests.web.test_disputes import (
    NOT_RECEIVED_CARD,
    QUESTION_FIELDS,
    counter,
    dispute_of,
    form_fields,
    panel_status,
    pay_disputed,
)

MB = 1024 * 1024


# -- real files of each kind ---------------------------------------------------------------------------


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), *, noise: bool = False) -> bytes:
    """A real PNG/JPEG/GIF; with `noise`, random pixels that don't compress (for size limits)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def upload(client, dispute_id: int, name: str, data: bytes):
    return client.post(f"/disputes/{dispute_id}/files", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def file_error(response) -> str:
    """The message under the file field (without its "Error:" prefix for screen readers)."""
    node = soup_of(response).find(id="f-file-error")
    if node is None or node.has_attr("hidden"):
        return ""
    for hidden in node.select(".visually-hidden"):
        hidden.decompose()
    return text_of(node)


def files_of(dispute_id: int) -> list[DisputeFile]:
    db.session.rollback()
    return list(db.session.scalars(select(DisputeFile).where(DisputeFile.dispute_id == dispute_id)
                                   .order_by(DisputeFile.id)))


def stored_path(file: DisputeFile) -> Path:
    return Path(current_app.config["KASSA_UPLOAD_DIR"]) / "evidence" / file.stored_name


def budget_text(client, dispute_id: int) -> str:
    return text_of(soup_of(client.get(f"/disputes/{dispute_id}/counter/3")).select_one(".budget"))


def budget_left(client, dispute_id: int) -> tuple[float, int]:
    """(MB left, pages left) as the budget line shows them: "3.3 MB of 4.5 MB left · 47 of 50 pages left"."""
    text = budget_text(client, dispute_id)
    match = re.fullmatch(r"([\d.]+) MB of 4\.5 MB left · (\d+) of 50 pages left", text)
    assert match, text
    return float(match[1]), int(match[2])


def step(client, dispute_id: int, number: int):
    response = client.get(f"/disputes/{dispute_id}/counter/{number}")
    assert response.status_code == 200
    return response


@pytest.fixture
def owner(client):
    owner = make_merchant(company="Bakkerij Brood")
    login(client, owner)
    return owner


@pytest.fixture
def disputed(client, owner):
    return pay_disputed(client, owner)


# -- D4 step 1: questions by reason -----------------------------------------------------------------


@pytest.mark.parametrize("card", ["4000000000000259", NOT_RECEIVED_CARD])
def test_d4_step_one_asks_the_questions_of_the_disputes_reason(client, owner, card):
    _payment, dispute = pay_disputed(client, owner, card)
    page = soup_of(step(client, dispute.id, 1))
    names = [t["name"] for t in page.select("#wizard form textarea")]
    assert names == QUESTION_FIELDS[dispute.reason]
    labels = [text_of(label) for label in page.select("#wizard form label")]
    if dispute.reason == "fraudulent":
        assert labels[0] == "Why is this payment legitimate?"
    else:
        assert labels[:3] == ["Was the product delivered? Say how and when.", "Delivery date", "Tracking number"]
    steps = [text_of(li) for li in page.select("ol.steps-bar li")]
    assert steps == ["1. Questions", "2. Details", "3. Evidence", "4. Review"]
    assert page.select_one("ol.steps-bar li[aria-current=step]") is not None


# -- D4 step 2: pre-filled from what Kassa knows -----------------------------------------------------


def test_d4_step_two_is_prefilled_from_the_payment_and_the_refund_policy_setting(client, owner):
    account = db.session.get(Account, owner.account_id)
    policy = "Full refund within 30 days; tickets can be exchanged until the day before."
    response = client.post("/settings/account", data={
        "name": account.name, "country": account.country, "default_currency": account.default_currency,
        "timezone": account.timezone, "language": account.language, "address": "", "support_email": "",
        "refund_policy": policy})
    assert response.status_code == 303
    payment, dispute = pay_disputed(client, owner, NOT_RECEIVED_CARD)

    values = form_fields(step(client, dispute.id, 2))

    assert values["customer_name"] == "Ann Buyer"
    assert values["customer_email"] == "ann.buyer@example.com"
    assert values["billing_address"].split("\n") == ["Main Street 1", "12345 Springfield", "US"]
    assert values["purchase_ip"] == "127.0.0.1"
    assert values["product_description"] == "1 × Concert ticket (Front row)"
    assert values["receipt"] == f"R-{payment.receipt_number:06d}"
    assert values["refund_policy"] == policy


# -- D4 drafts: saved at every step, shown again when the merchant comes back --------------------------


def test_d4_draft_is_saved_at_each_step_and_shown_when_coming_back(client, owner, disputed):
    payment, dispute = disputed
    answers = {"why_legitimate": "The buyer signed for it.", "customer_communication": "Emails on 3 May.",
               "prior_payments": ""}

    assert client.post(f"/disputes/{dispute.id}/counter/1", data=answers).status_code == 303
    assert dispute_of(payment.id).draft["questions"] == answers
    details = form_fields(step(client, dispute.id, 2))
    details["customer_name"] = "Ann B. Buyer"
    details["purchase_ip"] = ""  # cleared on purpose
    back = client.post(f"/disputes/{dispute.id}/counter/2", data={**details, "go": "back"})
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/disputes/{dispute.id}/counter/1")
    assert client.post(f"/disputes/{dispute.id}/counter/3",
                       data={"additional_information": "See the signed note."}).status_code == 303

    # leave (the payment), and come back to each step
    client.get(f"/payments/{payment.id}")
    assert form_fields(step(client, dispute.id, 1)) == answers
    again = form_fields(step(client, dispute.id, 2))
    assert again["customer_name"] == "Ann B. Buyer" and again["purchase_ip"] == ""
    assert again["customer_email"] == "ann.buyer@example.com"
    step3 = soup_of(step(client, dispute.id, 3))
    assert step3.select_one("textarea[name=additional_information]").get_text() == "See the signed note."
    review = text_of(soup_of(step(client, dispute.id, 4)).select_one("#wizard"))
    for text in ("The buyer signed for it.", "Emails on 3 May.", "Ann B. Buyer", "See the signed note."):
        assert text in review
    assert "127.0.0.1" not in review  # what was cleared is not shown as if it were sent
    db.session.rollback()
    assert [e for e in dispute_of(payment.id).draft] == ["questions", "details", "evidence"]


def test_d4_prefilled_details_are_sent_even_when_step_two_was_skipped(client, owner, disputed):
    payment, dispute = disputed
    client.post(f"/disputes/{dispute.id}/counter/1", data={"why_legitimate": "Known customer."})
    client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "winning_evidence"})
    review = text_of(soup_of(step(client, dispute.id, 4)).select_one("#wizard"))
    assert "ann.buyer@example.com" in review

    assert client.post(f"/disputes/{dispute.id}/submit").status_code == 303

    sent = dispute_of(payment.id).evidence_text
    assert "why_legitimate: Known customer." in sent
    assert "customer_email: ann.buyer@example.com" in sent  # what the review showed is what was sent
    assert "additional_information: winning_evidence" in sent


# -- D4 step 3: evidence files -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "maker", "content_type"), [
    ("delivery.pdf", lambda: pdf_bytes(2), "application/pdf"),
    ("photo.png", lambda: image_bytes("PNG"), "image/png"),
    ("receipt.jpg", lambda: image_bytes("JPEG"), "image/jpeg"),
    ("scan-without-extension", lambda: image_bytes("PNG"), "image/png"),  # the content decides, not the name
])
def test_d4_pdf_png_and_jpeg_are_accepted_by_their_content(client, owner, disputed, name, maker, content_type):
    _payment, dispute = disputed
    data = maker()
    response = upload(client, dispute.id, name, data)
    assert response.status_code == 303
    [file] = files_of(dispute.id)
    assert (file.filename, file.content_type, file.size_bytes) == (name, content_type, len(data))
    assert file.pages == (2 if content_type == "application/pdf" else 1)
    assert stored_path(file).read_bytes() == data
    listed = [text_of(a) for a in soup_of(step(client, dispute.id, 3)).select("ul.files a")]
    assert listed == [name]


@pytest.mark.parametrize(("name", "data"), [
    ("animation.gif", image_bytes("GIF")),
    ("notes.pdf", b"These are my notes, not a PDF at all.\n" * 20),
    ("photo.png", b"GIF89a" + image_bytes("GIF")[6:]),  # a GIF with a PNG's name
])
def test_d4_a_file_whose_content_is_not_pdf_png_or_jpeg_is_refused_with_a_message(
        client, owner, disputed, name, data):
    _payment, dispute = disputed
    response = upload(client, dispute.id, name, data)
    assert response.status_code == 422
    assert file_error(response) == (f"Upload a PDF, PNG or JPEG file. “{name}” is none of these, "
                                    "whatever its name says.")
    assert files_of(dispute.id) == []


def test_d4_an_unreadable_pdf_is_refused_with_a_message(client, owner, disputed):
    _payment, dispute = disputed
    response = upload(client, dispute.id, "broken.pdf", b"%PDF-1.7\n this is not really a PDF\n")
    assert response.status_code == 422
    assert "This PDF can't be read" in file_error(response)
    assert files_of(dispute.id) == []


def test_d4_all_files_together_may_be_at_most_4_5_mb(client, owner, disputed):
    _payment, dispute = disputed
    big = image_bytes("PNG", (1000, 1000), noise=True)  # ~2.9 MB of noise
    assert 2.5 * MB < len(big) < 3 * MB
    assert upload(client, dispute.id, "one.png", big).status_code == 303

    response = upload(client, dispute.id, "two.png", image_bytes("PNG", (1000, 1000), noise=True))
    assert response.status_code == 422
    message = re.fullmatch(r"All files together may be at most 4\.5 MB; ([\d.]+) MB is left\.", file_error(response))
    assert message and abs(float(message[1]) - (4.5 * MB - len(big)) / MB) <= 0.05
    assert [f.filename for f in files_of(dispute.id)] == ["one.png"]

    one_file_too_big = image_bytes("PNG", (1300, 1300), noise=True)  # ~4.8 MB on its own
    response = upload(client, dispute.id, "huge.png", one_file_too_big)
    assert response.status_code == 422 and "at most 4.5 MB" in file_error(response)


def test_d4_all_pdfs_together_may_have_at_most_50_pages(client, owner, disputed):
    _payment, dispute = disputed
    response = upload(client, dispute.id, "pack.pdf", pdf_bytes(51))
    assert response.status_code == 422
    assert file_error(response) == "All files together may have at most 50 pages; 50 are left."

    assert upload(client, dispute.id, "first.pdf", pdf_bytes(30)).status_code == 303
    response = upload(client, dispute.id, "second.pdf", pdf_bytes(21))
    assert response.status_code == 422
    assert file_error(response) == "All files together may have at most 50 pages; 20 are left."
    assert upload(client, dispute.id, "second.pdf", pdf_bytes(20)).status_code == 303
    assert [f.pages for f in files_of(dispute.id)] == [30, 20]


def test_d4_the_remaining_budget_is_shown_and_a_file_can_be_removed(client, owner, disputed):
    _payment, dispute = disputed
    assert budget_text(client, dispute.id) == "4.5 MB of 4.5 MB left · 50 of 50 pages left"
    big = image_bytes("PNG", (1000, 1000), noise=True)
    pack = pdf_bytes(3)
    upload(client, dispute.id, "photo.png", big)
    upload(client, dispute.id, "pack.pdf", pack)
    mb_left, pages_left = budget_left(client, dispute.id)
    assert abs(mb_left - (4.5 * MB - len(big) - len(pack)) / MB) <= 0.05
    assert pages_left == 46  # an image goes into the evidence pack as one page
    meter = soup_of(step(client, dispute.id, 3)).select_one("meter")
    assert int(meter["value"]) == len(big) + len(pack) and int(meter["max"]) == int(4.5 * MB)

    photo, _pack = files_of(dispute.id)
    photo_id, photo_path = photo.id, stored_path(photo)
    assert photo_path.exists()
    remove = soup_of(step(client, dispute.id, 3)).select_one(f"form[action$='/files/{photo_id}/delete'] button")
    assert text_of(remove) == "Remove photo.png"
    assert client.post(f"/disputes/{dispute.id}/files/{photo_id}/delete").status_code == 303
    assert [f.filename for f in files_of(dispute.id)] == ["pack.pdf"]
    assert not photo_path.exists()
    assert budget_left(client, dispute.id) == (4.5, 47)  # the photo's page is back
    assert client.get(f"/disputes/{dispute.id}/files/{photo_id}").status_code == 404


def test_d4_evidence_files_are_served_only_to_their_account(client, app, owner, disputed):
    _payment, dispute = disputed
    data = pdf_bytes(1)
    upload(client, dispute.id, "proof.pdf", data)
    [file] = files_of(dispute.id)
    url = f"/disputes/{dispute.id}/files/{file.id}"

    mine = client.get(url)
    assert mine.status_code == 200 and mine.data == data
    assert mine.mimetype == "application/pdf"
    assert "attachment" in mine.headers["Content-Disposition"] and "proof.pdf" in mine.headers["Content-Disposition"]
    assert "no-store" in mine.headers["Cache-Control"]

    outsider = make_merchant(company="Someone Else")
    other = app.test_client()
    login(other, outsider)
    assert other.get(url).status_code == 404
    assert other.get(f"/disputes/{dispute.id}/counter/3").status_code == 404
    assert other.post(f"/disputes/{dispute.id}/files/{file.id}/delete").status_code == 404

    anonymous = app.test_client()
    response = anonymous.get(url)
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
    assert files_of(dispute.id) and stored_path(file).exists()


# -- D4 step 4: review, submit once, read-only after -----------------------------------------------


def test_d4_review_then_submit_once_makes_the_evidence_read_only(client, owner, disputed):
    payment, dispute = disputed
    upload(client, dispute.id, "proof.pdf", pdf_bytes(1))
    client.post(f"/disputes/{dispute.id}/counter/1", data={"why_legitimate": "Signed for it."})
    client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "Note attached."})
    review = soup_of(step(client, dispute.id, 4))
    assert "proof.pdf" in text_of(review.select_one("#wizard"))
    assert text_of(review.select_one("form[action$='/submit'] button")) == "Submit evidence"

    response = client.post(f"/disputes/{dispute.id}/submit")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/payments/{payment.id}")
    submitted = dispute_of(payment.id)
    assert submitted.status == "under_review" and submitted.submitted_at is not None
    assert panel_status(client, payment.id) == "Disputed (awaiting decision)"
    [file] = files_of(dispute.id)

    # read-only: nothing more can be saved, added or removed
    for attempt in (
        client.post(f"/disputes/{dispute.id}/counter/1", data={"why_legitimate": "Changed my mind."}),
        client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "More."}),
        upload(client, dispute.id, "more.pdf", pdf_bytes(1)),
        client.post(f"/disputes/{dispute.id}/files/{file.id}/delete"),
    ):
        assert attempt.status_code == 409
    after = dispute_of(payment.id)
    assert after.draft["questions"]["why_legitimate"] == "Signed for it."
    assert [f.filename for f in files_of(dispute.id)] == ["proof.pdf"]
    for number in (1, 2, 3, 4):
        page = soup_of(step(client, dispute.id, number))
        assert "can no longer be changed" in text_of(page.select_one("[role=status]"))
        assert page.select("#wizard button[type=submit]") == []
        assert page.select("input[type=file]") == []

    # a second submission is refused
    again = client.post(f"/disputes/{dispute.id}/submit")
    assert again.status_code == 409
    assert "already been answered" in text_of(soup_of(again).select_one("[role=alert]"))
    assert dispute_of(payment.id).submitted_at == submitted.submitted_at


def test_d4_a_submission_with_nothing_answered_is_refused(client, owner, disputed):
    payment, dispute = disputed
    response = client.post(f"/disputes/{dispute.id}/submit")
    assert response.status_code == 422
    assert text_of(soup_of(response).select_one("[role=alert]")) == (
        "Answer the questions or add evidence before submitting.")
    assert dispute_of(payment.id).status == "needs_response"


def test_d4_counter_with_files_ends_in_awaiting_decision(client, owner, disputed):
    payment, dispute = disputed
    upload(client, dispute.id, "proof.pdf", pdf_bytes(1))
    assert counter(client, dispute, "winning_evidence").status_code == 303
    assert "file: proof.pdf (application/pdf, 1 page(s))" in dispute_of(payment.id).evidence_text


# -- D4 limits hold when two uploads arrive at once --------------------------------------------------


def test_d4_two_uploads_at_once_never_go_over_the_size_limit(app, owner, disputed, monkeypatch):
    """Two tabs upload a file each that fits the budget alone but not together: one is refused."""
    import threading

    from kassa.actor import Actor
    from kassa.errors import ValidationFailed
    from kassa.models import User
    from kassa.services.disputes import evidence

    _payment, dispute = disputed
    monkeypatch.setattr(evidence, "MAX_TOTAL_BYTES", 3000)
    real_budget = evidence.budget
    both_read = threading.Barrier(2)

    def budget_then_wait(dispute_id):
        used = real_budget(dispute_id)
        # Both uploads read the budget before either writes (the race), unless a lock keeps one out.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=1)
        return used

    monkeypatch.setattr(evidence, "budget", budget_then_wait)
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000
    outcomes: list[str] = []

    def upload_one(name: str) -> None:
        with app.app_context():
            actor = Actor(user=db.session.get(User, owner.id), account_id=owner.account_id)
            try:
                evidence.add_file(actor, dispute.id, name, data)
                outcomes.append("ok")
            except ValidationFailed:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=upload_one, args=(f"tab{n}.png",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    assert len(files_of(dispute.id)) == 1
