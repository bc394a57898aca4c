"""Counter a dispute (a four-step wizard whose draft is saved as the merchant types and at every step, B5) or
accept it (D4, D5)."""

from __future__ import annotations

from itertools import chain

from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from wtforms import FileField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required
from kassa.clock import now
from kassa.errors import KassaError, ValidationFailed
from kassa.extensions import db
from kassa.forms import Form, safe_filename
from kassa.i18n import when_filter
from kassa.models import Dispute, DisputeFile, DisputeStatus, Payment, Permission
from kassa.rendering import htmx_redirect, is_htmx, render_page
from kassa.services.disputes import disputes, evidence
from kassa.services.money.dispute_facts import deadline_info, decision_due_by, time_left

bp = Blueprint("disputes", __name__, url_prefix="/disputes")

STEPS = {1: "questions", 2: "details", 3: "evidence", 4: "review"}

# Step 1's questions depend on the reason (what a card network asks the merchant to show).
QUESTIONS = {
    "product_not_received": ["delivered", "delivery_date", "tracking_number", "carrier"],
    "fraudulent": ["why_legitimate", "customer_communication", "prior_payments"],
    "product_unacceptable": ["product_as_described", "return_policy_followed"],
    "duplicate": ["not_duplicate_reason"],
    "subscription_canceled": ["cancellation_policy_shown", "no_cancellation_received"],
    "credit_not_processed": ["refund_refusal_reason"],
    "general": ["explanation"],
}
DETAIL_FIELDS = ["customer_name", "customer_email", "billing_address", "purchase_ip", "product_description",
                 "receipt", "refund_policy"]


class CounterStepForm(Form):
    """One saved step of the wizard. It holds every question of every reason, the details and step 3's text and
    file; a step saves only its own fields (the service trims and shortens them)."""

    # "back" returns to the previous step, "upload" stays on step 3 with the chosen file added, a step's number
    # goes to that step (the steps bar); the main button goes on. Every one of them saves the whole form (B5).
    go = StringField()
    file = FileField()


for _key in dict.fromkeys([*chain.from_iterable(QUESTIONS.values()), *DETAIL_FIELDS, "additional_information"]):
    setattr(CounterStepForm, _key, StringField(default=""))


@bp.app_template_global()
def deadline_left(due_by):
    """For the Disputes tab: time left until the evidence deadline, on the account's clock."""
    return time_left(due_by, current_user.account)


def _dispute(dispute_id: int) -> Dispute:
    return get_owned_or_404(Dispute, dispute_id)


def _context(dispute: Dispute, step: int, **extra):
    payment = db.session.get(Payment, dispute.payment_id)
    used, pages = evidence.budget(dispute.id)
    return dict(
        dispute=dispute, payment=payment, step=step, steps=STEPS, questions=QUESTIONS.get(dispute.reason,
                                                                                          QUESTIONS["general"]),
        draft=dispute.draft or {}, prefill=disputes.prefilled_details(dispute), detail_fields=DETAIL_FIELDS,
        used=used, pages=pages, max_bytes=evidence.MAX_TOTAL_BYTES, max_pages=evidence.MAX_PAGES,
        bytes_left=evidence.format_size(max(evidence.MAX_TOTAL_BYTES - used, 0)),
        deadline=deadline_info(dispute, current_user.account), read_only=dispute.status !=
        DisputeStatus.NEEDS_RESPONSE.value, active_nav="payments", errors=extra.pop("errors", {}), **extra,
    )


def _step_values(dispute: Dispute, step: int, form: CounterStepForm) -> dict[str, str]:
    """The text fields of one step, as the form posted them."""
    if step == 1:
        keys = QUESTIONS.get(dispute.reason, QUESTIONS["general"])
    elif step == 2:
        keys = DETAIL_FIELDS
    else:
        keys = ["additional_information"]
    return {key: form[key].data for key in keys}


def _chosen_file(field) -> tuple[str, bytes]:
    """(name, bytes) of the file chosen in `field`; ("", b"") when none was (or text came under its name)."""
    upload = field.data
    if not isinstance(upload, FileStorage) or not upload.filename:
        return "", b""
    return upload.filename, upload.read(evidence.MAX_TOTAL_BYTES + 1)


def _target(step: int, go: str | None) -> int:
    if go == "back":
        return max(step - 1, 1)
    if go == "upload":
        return step
    if go and go.isdigit() and int(go) in STEPS:
        return int(go)
    return step + 1


@bp.route("/<int:dispute_id>/counter/<int:step>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def counter(dispute_id: int, step: int):
    """D4: 1. questions, 2. details (pre-filled), 3. evidence files and text, 4. review and submit. B5: every
    button (and the steps bar) saves the whole step; on step 3 that includes the chosen file."""
    dispute = _dispute(dispute_id)
    if step not in STEPS:
        abort(404)
    if request.method == "POST" and step in (1, 2, 3):
        form = CounterStepForm()
        try:
            if step == 3:
                name, data = _chosen_file(form.file)
                evidence.save_evidence_step(current_actor(), dispute.id, _step_values(dispute, 3, form), name, data,
                                            require_file=form.go.data == "upload")
            else:
                disputes.save_draft(current_actor(), dispute.id, STEPS[step], _step_values(dispute, step, form))
        except ValidationFailed as exc:  # only step 3's file: the text was kept, the file was not added
            errors = exc.errors or {"file": exc.message}
            return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                               **_context(_dispute(dispute_id), step, errors=errors, alert=_(
                                   "Your text is saved, but the file was not added. Choose another file, or "
                                   "continue without it.")))
        except KassaError as exc:
            return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                               **_context(_dispute(dispute_id), step, alert=exc.message))
        return htmx_redirect(url_for("disputes.counter", dispute_id=dispute.id, step=_target(step, form.go.data)))
    return render_page("disputes/wizard.html", "wizard", **_context(dispute, step))


@bp.post("/<int:dispute_id>/draft/<int:step>")
@permission_required(Permission.MANAGE_PAYMENTS)
def autosave(dispute_id: int, step: int):
    """B5: the wizard saves a step's text as the merchant types (htmx, after a pause, and on every change);
    answers with the line that says when it was saved. Files are added only by the step's buttons."""
    dispute = _dispute(dispute_id)
    if step not in (1, 2, 3):
        abort(404)
    form = CounterStepForm()
    try:
        saved = disputes.save_draft(current_actor(), dispute.id, STEPS[step], _step_values(dispute, step, form),
                                    autosave=True)
    except KassaError as exc:
        return render_page("disputes/wizard.html", "draft_status", status=exc.status_code, fragment=True,
                           draft_error=exc.message)
    if not is_htmx():
        return redirect(url_for("disputes.counter", dispute_id=saved.id, step=step), code=303)
    return render_page("disputes/wizard.html", "draft_status", fragment=True,
                       saved_at=when_filter(now(), "time"))


class EvidenceFileForm(Form):
    """One evidence file (D4), with step 3's text when the form sends it; checked by
    services/disputes/evidence.save_evidence_step."""

    file = FileField()
    additional_information = StringField()


@bp.post("/<int:dispute_id>/files")
@permission_required(Permission.MANAGE_PAYMENTS)
def upload(dispute_id: int):
    """Add one file. B5: the step's text, when sent along, is kept too (and kept when the file is refused)."""
    dispute = _dispute(dispute_id)
    form = EvidenceFileForm()
    name, data = _chosen_file(form.file)
    values = ({"additional_information": form.additional_information.data}
              if form.additional_information.raw_data else None)  # sent along at all (an empty text too)
    try:
        evidence.save_evidence_step(current_actor(), dispute.id, values, name, data, require_file=True)
    except KassaError as exc:
        errors = exc.errors if isinstance(exc, ValidationFailed) and exc.errors else {"file": exc.message}
        return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                           **_context(_dispute(dispute_id), 3, errors=errors))
    return htmx_redirect(url_for("disputes.counter", dispute_id=dispute.id, step=3))


@bp.post("/<int:dispute_id>/files/<int:file_id>/delete")
@permission_required(Permission.MANAGE_PAYMENTS)
def delete_file(dispute_id: int, file_id: int):
    dispute = _dispute(dispute_id)
    get_owned_or_404(DisputeFile, file_id)
    form = EvidenceFileForm()
    values = ({"additional_information": form.additional_information.data}
              if form.additional_information.raw_data else None)  # sent along at all (an empty text too)
    try:
        evidence.remove_file(current_actor(), dispute.id, file_id, values)
    except KassaError as exc:
        return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                           **_context(_dispute(dispute_id), 3, alert=exc.message))
    return htmx_redirect(url_for("disputes.counter", dispute_id=dispute.id, step=3))


@bp.get("/<int:dispute_id>/files/<int:file_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def file(dispute_id: int, file_id: int):
    """Evidence files are served only to the account they belong to."""
    dispute = _dispute(dispute_id)
    record = get_owned_or_404(DisputeFile, file_id)
    if record.dispute_id != dispute.id:
        abort(404)
    response = send_file(evidence.file_path(record), mimetype=record.content_type, as_attachment=True,
                         download_name=safe_filename(record.filename, "evidence"))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:dispute_id>/submit")
@permission_required(Permission.MANAGE_PAYMENTS)
def submit(dispute_id: int):
    dispute = _dispute(dispute_id)
    try:
        answered = disputes.submit_evidence(current_actor(), dispute.id)
    except KassaError as exc:
        return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                           **_context(_dispute(dispute_id), 4, alert=exc.message))
    # B5: the payment's Dispute details say what was sent and when the decision is due; this says it happened.
    due = decision_due_by(answered)
    flash(_("Evidence submitted. The bank's decision is due by %(date)s.", date=when_filter(due, "date")) if due
          else _("Evidence submitted."), "success")
    return htmx_redirect(url_for("payments.detail", payment_id=dispute.payment_id))


@bp.route("/<int:dispute_id>/accept", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def accept(dispute_id: int):
    """D5: after a confirmation that says the amount is lost."""
    dispute = _dispute(dispute_id)
    payment = db.session.get(Payment, dispute.payment_id)
    if request.method == "GET":
        return render_page("disputes/accept.html", "dialog", dispute=dispute, payment=payment, active_nav="payments",
                           back_url=url_for("payments.detail", payment_id=payment.id))
    try:
        disputes.accept(current_actor(), dispute.id)
    except KassaError as exc:  # H13: e.g. 409 when the dispute was just answered; the dialog says why
        return render_page("disputes/accept.html", "dialog", status=exc.status_code, dispute=dispute,
                           payment=payment, active_nav="payments", alert=exc.message,
                           back_url=url_for("payments.detail", payment_id=payment.id))
    return htmx_redirect(url_for("payments.detail", payment_id=payment.id))


@bp.get("/<int:dispute_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def show(dispute_id: int):
    dispute = _dispute(dispute_id)
    return redirect(url_for("payments.detail", payment_id=dispute.payment_id))

