"""B5: the dispute wizard loses nothing, on SQLite and PostgreSQL.

The three losses the requirement names, each tested where it happened: pressing Upload wiped the "Additional
information" text; a file chosen but not uploaded was dropped on "Save and review"; submitting said nothing.
Now every step autosaves (POST /disputes/<id>/draft/<step>, htmx as the merchant types) and every button of a
step submits the whole form; a chosen file is added on any save, or the step says at the field why it wasn't
(the text kept); the payment page confirms what was sent and when the bank's decision is due.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import func, select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, TimelineEntry, User
from kassa.services.disputes.disputes import evidence_text
from tests.factories import make_merchant
from tests.support.payments import login, soup_of, text_of
from tests.web.test_dispute_evidence import file_error, files_of, image_bytes, pdf_bytes, step
from tests.web.test_disputes import dispute_of, form_fields, pay_disputed

HTMX = {"HX-Request": "true"}


@pytest.fixture
def owner(client):
    owner = make_merchant(company="Bakkerij Brood")
    login(client, owner)
    return owner


@pytest.fixture
def disputed(client, owner):
    return pay_disputed(client, owner)


def step3(client, dispute_id: int, text: str, file: tuple[str, bytes] | None = None, go: str | None = None,
          url: str | None = None):
    """Step 3's form as the browser sends it: the text, the chosen file (or an empty file field) and the button."""
    import io

    data: dict = {"additional_information": text}
    data["file"] = (io.BytesIO(file[1]), file[0]) if file else (io.BytesIO(b""), "")
    if go:
        data["go"] = go
    return client.post(url or f"/disputes/{dispute_id}/counter/3", data=data, content_type="multipart/form-data")


def shown_text(client, dispute_id: int) -> str:
    return soup_of(step(client, dispute_id, 3)).select_one("textarea[name=additional_information]").get_text()


def draft_saves(payment_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(TimelineEntry).where(
        TimelineEntry.payment_id == payment_id, TimelineEntry.kind == "dispute.draft_saved",
        TimelineEntry.subject_type == "payment"))


# -- every step autosaves ----------------------------------------------------------------------------------


def test_b5_autosave_keeps_each_steps_text_without_a_button(client, owner, disputed):
    payment, dispute = disputed
    page = soup_of(step(client, dispute.id, 1))
    form = page.select_one("form#wizard-form")
    assert form["hx-post"] == f"/disputes/{dispute.id}/draft/1" and "delay" in form["hx-trigger"]
    assert form["action"] == f"/disputes/{dispute.id}/counter/1"  # the buttons still post the whole form
    assert text_of(page.select_one("#draft-status")) == "Your answers are saved as you type."

    response = client.post(f"/disputes/{dispute.id}/draft/1", headers=HTMX,
                           data={"why_legitimate": "Signed for at the door.", "customer_communication": "",
                                 "prior_payments": "Three before."})
    assert response.status_code == 200
    assert re.fullmatch(r"Draft saved at \d{1,2}:\d{2}\s?[AP]M\.", text_of(soup_of(response).select_one(
        "#draft-status")))
    details = form_fields(step(client, dispute.id, 2))
    details["customer_name"] = "Ann B. Buyer"
    assert client.post(f"/disputes/{dispute.id}/draft/2", headers=HTMX, data=details).status_code == 200
    assert client.post(f"/disputes/{dispute.id}/draft/3", headers=HTMX,
                       data={"additional_information": "Typed, never saved by a button."}).status_code == 200

    # a reload of each step shows what was typed; nothing was pressed
    assert form_fields(step(client, dispute.id, 1))["why_legitimate"] == "Signed for at the door."
    assert form_fields(step(client, dispute.id, 2))["customer_name"] == "Ann B. Buyer"
    assert shown_text(client, dispute.id) == "Typed, never saved by a button."
    draft = dispute_of(payment.id).draft
    assert draft["questions"] == {"why_legitimate": "Signed for at the door.", "customer_communication": "",
                                  "prior_payments": "Three before."}
    assert draft["evidence"] == {"additional_information": "Typed, never saved by a button."}
    assert draft_saves(payment.id) == 0  # typing doesn't fill the payment's history; the buttons' saves do


def test_b5_autosave_without_javascript_goes_back_to_the_step(client, owner, disputed):
    payment, dispute = disputed
    response = client.post(f"/disputes/{dispute.id}/draft/3", data={"additional_information": "No htmx."})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/disputes/{dispute.id}/counter/3")
    assert dispute_of(payment.id).draft["evidence"]["additional_information"] == "No htmx."
    assert client.post(f"/disputes/{dispute.id}/draft/4", data={}).status_code == 404


@pytest.mark.parametrize(("go", "target"), [("3", 3), ("1", 1), ("back", 1), ("", 3)])
def test_b5_leaving_a_step_by_any_button_saves_it(client, owner, disputed, go, target):
    """The steps bar's steps are submit buttons of the step's form: going to another step saves this one."""
    payment, dispute = disputed
    page = soup_of(step(client, dispute.id, 2))
    bar = page.select("ol.steps-bar button[form=wizard-form][name=go]")
    assert [b["value"] for b in bar] == ["1", "2", "3", "4"]
    details = {**form_fields(step(client, dispute.id, 2)), "receipt": "R-123 (by hand)", "go": go}
    response = client.post(f"/disputes/{dispute.id}/counter/2", data=details)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/disputes/{dispute.id}/counter/{target}")
    assert dispute_of(payment.id).draft["details"]["receipt"] == "R-123 (by hand)"


# -- Upload keeps the typed text ----------------------------------------------------------------------------


def test_b5_upload_keeps_the_additional_information_typed(client, owner, disputed):
    payment, dispute = disputed
    form = soup_of(step(client, dispute.id, 3)).select_one("form#wizard-form")
    # one form: the file, its Upload button and the text go together
    assert form["enctype"] == "multipart/form-data"
    assert form.select_one("input[type=file][name=file]") and form.select_one("textarea[name=additional_information]")
    assert form.select_one("button[name=go][value=upload]").get_text(strip=True) == "Upload"

    response = step3(client, dispute.id, "Signed delivery note, see the file.", ("note.pdf", pdf_bytes(1)),
                     go="upload")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/counter/{3}")
    assert [f.filename for f in files_of(dispute.id)] == ["note.pdf"]
    assert shown_text(client, dispute.id) == "Signed delivery note, see the file."
    assert dispute_of(payment.id).draft["evidence"]["additional_information"] == "Signed delivery note, see the file."


def test_b5_the_upload_endpoint_keeps_the_text_sent_with_the_file(client, owner, disputed):
    _payment, dispute = disputed
    response = step3(client, dispute.id, "Sent with the file.", ("photo.png", image_bytes("PNG")),
                     url=f"/disputes/{dispute.id}/files")
    assert response.status_code == 303
    assert [f.filename for f in files_of(dispute.id)] == ["photo.png"]
    assert shown_text(client, dispute.id) == "Sent with the file."


def test_b5_upload_with_no_file_chosen_says_so_and_keeps_the_text(client, owner, disputed):
    payment, dispute = disputed
    response = step3(client, dispute.id, "Still here.", go="upload")
    assert response.status_code == 422
    assert file_error(response) == "Choose a file to upload."
    assert soup_of(response).select_one("textarea[name=additional_information]").get_text() == "Still here."
    assert dispute_of(payment.id).draft["evidence"]["additional_information"] == "Still here."


# -- a chosen file is uploaded on Save and review -------------------------------------------------------------


def test_b5_save_and_review_uploads_the_chosen_file(client, owner, disputed):
    _payment, dispute = disputed
    response = step3(client, dispute.id, "The note is attached.", ("delivery-note.pdf", pdf_bytes(2)))
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/disputes/{dispute.id}/counter/4")
    [file] = files_of(dispute.id)
    assert (file.filename, file.pages) == ("delivery-note.pdf", 2)
    review = text_of(soup_of(step(client, dispute.id, 4)).select_one("#wizard"))
    assert "delivery-note.pdf" in review and "The note is attached." in review


def test_b5_back_from_step_3_also_uploads_the_chosen_file(client, owner, disputed):
    _payment, dispute = disputed
    response = step3(client, dispute.id, "", ("photo.jpg", image_bytes("JPEG")), go="back")
    assert response.status_code == 303 and response.headers["Location"].endswith("/counter/2")
    assert [f.filename for f in files_of(dispute.id)] == ["photo.jpg"]


def test_b5_save_and_review_without_a_file_just_saves_the_text(client, owner, disputed):
    payment, dispute = disputed
    response = step3(client, dispute.id, "No file this time.")
    assert response.status_code == 303 and response.headers["Location"].endswith("/counter/4")
    assert files_of(dispute.id) == []
    assert dispute_of(payment.id).draft["evidence"]["additional_information"] == "No file this time."


@pytest.mark.parametrize(("name", "make", "message"), [
    ("animation.gif", lambda: image_bytes("GIF"),
     "Upload a PDF, PNG or JPEG file. “animation.gif” is none of these, whatever its name says."),
    ("pack.pdf", lambda: pdf_bytes(51), "All files together may have at most 50 pages; 50 are left."),
    ("huge.png", lambda: image_bytes("PNG", (1300, 1300), noise=True),
     None),  # ~4.8 MB: over the 4.5 MB budget
])
@pytest.mark.parametrize("go", ["", "upload"])
def test_b5_a_refused_file_is_reported_at_its_field_and_the_text_is_kept(client, owner, disputed, name, make,
                                                                        message, go):
    payment, dispute = disputed
    response = step3(client, dispute.id, "Please keep me.", (name, make()), go=go or None)
    assert response.status_code == 422
    page = soup_of(response)
    error = file_error(response)
    assert error == message if message else re.fullmatch(r"All files together may be at most 4\.5 MB; .+ is left\.",
                                                          error)
    assert page.select_one("#f-file")["aria-invalid"] == "true"
    assert text_of(page.select_one("[role=alert]")) == (
        "Your text is saved, but the file was not added. Choose another file, or continue without it.")
    assert page.select_one("textarea[name=additional_information]").get_text() == "Please keep me."
    assert files_of(dispute.id) == []
    assert dispute_of(payment.id).draft["evidence"]["additional_information"] == "Please keep me."
    assert shown_text(client, dispute.id) == "Please keep me."  # and on a reload


# -- submitting confirms what was sent and when the decision is due ------------------------------------------


def test_b5_submit_confirms_what_was_sent_and_when_the_decision_is_due(client, owner, disputed):
    payment, dispute = disputed
    client.post(f"/disputes/{dispute.id}/counter/1", data={"why_legitimate": "Known customer since 2024."})
    step3(client, dispute.id, "winning_evidence", ("delivery-note.pdf", pdf_bytes(1)))
    response = client.post(f"/disputes/{dispute.id}/submit")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/payments/{payment.id}")

    sent = dispute_of(payment.id)
    assert sent.status == "under_review"
    account = db.session.get(Account, owner.account_id)
    due = (sent.submitted_at + timedelta(days=75)).astimezone(ZoneInfo(account.timezone))
    due_text = format_date(due, "medium", locale="en")
    page = soup_of(client.get(f"/payments/{payment.id}"))
    assert text_of(page.select_one("#toasts .toast--success")) == (
        f"Evidence submitted. The bank's decision is due by {due_text}.")
    box = text_of(page.select_one("#card-dispute .dispute-sent"))
    assert f"The bank's decision is due by {due_text}." in box
    assert box.startswith("Evidence submitted on ")
    assert "Answers: Why is this payment legitimate?" in box
    # the pre-filled details went too (step 2 was never saved): each named
    assert "Details: Customer name, Customer email, Billing address, Purchase IP address, Product description, " \
           "Receipt" in box
    assert "Evidence: Additional information" in box
    assert "Files: delivery-note.pdf" in box
    assert "Customer communication" not in box  # what was left empty is not said to be sent

    # the toast is said once; the Dispute details keep saying it
    again = soup_of(client.get(f"/payments/{payment.id}"))
    assert again.select_one("#toasts .toast--success") is None
    assert f"The bank's decision is due by {due_text}." in text_of(again.select_one("#card-dispute .dispute-sent"))
    # the read-only review shows the same details that were sent
    review = text_of(soup_of(step(client, dispute.id, 4)).select_one("#wizard"))
    assert "ann.buyer@example.com" in review and "delivery-note.pdf" in review


def test_b5_a_decided_dispute_still_says_what_was_sent_but_no_due_date(client, owner, disputed):
    from tests.web.test_disputes import tick

    payment, dispute = disputed
    client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "winning_evidence"})
    assert client.post(f"/disputes/{dispute.id}/submit").status_code == 303
    import time_machine

    from kassa.clock import now
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        tick()
    assert dispute_of(payment.id).status == "won"
    box = text_of(soup_of(client.get(f"/payments/{payment.id}")).select_one("#card-dispute .dispute-sent"))
    assert "Additional information" in box and "Files: none" in box
    assert "decision is due" not in box


# -- who may use the new routes, and when ----------------------------------------------------------------------


def test_b5_another_merchants_dispute_is_404_on_every_new_route(client, app, owner, disputed):
    payment, dispute = disputed
    client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "Mine."})
    outsider = make_merchant(company="Someone Else")
    other = app.test_client()
    login(other, outsider)
    for number in (1, 2, 3):
        assert other.post(f"/disputes/{dispute.id}/draft/{number}", headers=HTMX,
                          data={"additional_information": "Theirs.", "why_legitimate": "Theirs."}).status_code == 404
    assert step3(other, dispute.id, "Theirs.", ("x.pdf", pdf_bytes(1)), go="upload").status_code == 404
    assert step3(other, dispute.id, "Theirs.", ("x.pdf", pdf_bytes(1)),
                 url=f"/disputes/{dispute.id}/files").status_code == 404
    draft = dispute_of(payment.id).draft
    assert draft == {"evidence": {"additional_information": "Mine."}} and files_of(dispute.id) == []


def test_b5_a_submitted_dispute_cant_be_changed_by_the_draft_endpoint(client, owner, disputed):
    payment, dispute = disputed
    client.post(f"/disputes/{dispute.id}/counter/3", data={"additional_information": "As sent."})
    assert client.post(f"/disputes/{dispute.id}/submit").status_code == 303
    before = dispute_of(payment.id)
    sent_text, sent_draft = before.evidence_text, dict(before.draft)
    for number in (1, 2, 3):
        response = client.post(f"/disputes/{dispute.id}/draft/{number}", headers=HTMX,
                               data={"additional_information": "Changed later.", "why_legitimate": "Later."})
        assert response.status_code == 409
        assert "already been answered" in text_of(soup_of(response).select_one(".alert"))
    after = dispute_of(payment.id)
    assert after.draft == sent_draft and after.evidence_text == sent_text
    # the read-only wizard has nothing that autosaves
    assert soup_of(step(client, dispute.id, 3)).select("[hx-post*='/draft/']") == []


def test_b5_autosaves_racing_the_submission_never_change_what_was_sent(app, client, owner, disputed):
    """Six autosaves and a submit at once, through the web: each autosave lands before the answer is taken (and
    is sent with it) or is refused after it (409); the draft afterwards is exactly what went to the processor."""
    payment, dispute = disputed
    dispute_id, payment_id = dispute.id, payment.id
    client.post(f"/disputes/{dispute_id}/counter/1", data={"why_legitimate": "Known customer."})
    clients = [app.test_client() for _ in range(7)]
    for each in clients:
        login(each, db.session.get(User, owner.id))
    db.session.remove()
    start = threading.Barrier(7)
    outcomes: list[tuple[str, int]] = []
    lock = threading.Lock()

    def post(each, n: int) -> None:
        start.wait(timeout=60)
        with app.app_context():
            if n == 6:
                response = each.post(f"/disputes/{dispute_id}/submit")
            else:
                response = each.post(f"/disputes/{dispute_id}/draft/3", headers=HTMX,
                                     data={"additional_information": f"version {n}"})
        with lock:
            outcomes.append(("submit" if n == 6 else "autosave", response.status_code))

    threads = [threading.Thread(target=post, args=(each, n)) for n, each in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    print(f"\nB5 autosaves racing a submit on {db.engine.dialect.name}: {sorted(outcomes)}")
    assert ("submit", 303) in outcomes, outcomes
    autosaves = sorted(code for kind, code in outcomes if kind == "autosave")
    assert len(autosaves) == 6 and set(autosaves) <= {200, 409}, outcomes
    done = dispute_of(payment_id)
    assert done.status == "under_review"
    typed = done.draft["evidence"].get("additional_information")
    if typed is None:  # the submission took the answer first: every autosave was refused
        assert autosaves == [409] * 6
    else:
        assert re.fullmatch(r"version [0-5]", typed) and 200 in autosaves
    assert done.evidence_text == evidence_text(done)  # nothing changed after it was sent


def test_b5_autosave_is_legitimately_repeated(client, owner, disputed):
    payment, dispute = disputed
    for n in range(5):
        assert client.post(f"/disputes/{dispute.id}/draft/3", headers=HTMX,
                           data={"additional_information": f"draft {n}"}).status_code == 200
    assert dispute_of(payment.id).draft["evidence"] == {"additional_information": "draft 4"}


@pytest.mark.parametrize(("language", "autosaving", "refused", "confirmed"), [
    ("nl", "Je antwoorden worden opgeslagen terwijl je typt.", "Je tekst is opgeslagen, maar het bestand is niet",
     "Bewijs ingediend. De bank beslist uiterlijk op"),
    ("fr", "Vos réponses sont enregistrées pendant la saisie.", "Votre texte est enregistré, mais le fichier",
     "Preuves envoyées. La banque doit décider au plus tard le"),
])
def test_b5_the_wizard_speaks_the_merchants_language(client, owner, disputed, language, autosaving, refused,
                                                       confirmed):
    payment, dispute = disputed
    with write_transaction(db.session) as session:
        session.get(User, owner.id).language = language
    assert text_of(soup_of(step(client, dispute.id, 1)).select_one("#draft-status")) == autosaving
    response = step3(client, dispute.id, "winning_evidence", ("x.gif", image_bytes("GIF")))
    assert text_of(soup_of(response).select_one("#wizard [role=alert]")).startswith(refused)
    step3(client, dispute.id, "winning_evidence")
    client.post(f"/disputes/{dispute.id}/submit")
    page = soup_of(client.get(f"/payments/{payment.id}"))
    assert text_of(page.select_one("#toasts .toast--success")).startswith(confirmed)
