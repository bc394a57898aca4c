"""Counter a dispute (a four-step wizard whose draft is saved at every step) or accept it (D4, D5)."""

from __future__ import annotations

from itertools import chain

from flask import Blueprint, abort, redirect, request, send_file, url_for
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from wtforms import FileField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required
from kassa.errors import KassaError, ValidationFailed
from kassa.extensions import db
from kassa.forms import Form, safe_filename
from kassa.models import Dispute, DisputeFile, DisputeStatus, Payment, Permission
from kassa.rendering import htmx_redirect, render_page
from kassa.services.disputes import disputes, evidence
from kassa.services.money.dispute_facts import deadline_info, time_left

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
    """One saved step of the wizard. It holds every question of every reason, the details and step 3's text;
    a step saves only its own fields (the service trims and shortens them)."""

    go = StringField()  # "back" returns to the previous step; the main button goes on


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


@bp.route("/<int:dispute_id>/counter/<int:step>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def counter(dispute_id: int, step: int):
    """D4: 1. questions, 2. details (pre-filled), 3. evidence files and text, 4. review and submit."""
    dispute = _dispute(dispute_id)
    if step not in STEPS:
        abort(404)
    if request.method == "POST" and step in (1, 2, 3):
        form = CounterStepForm()
        name = STEPS[step]
        if step == 1:
            keys = QUESTIONS.get(dispute.reason, QUESTIONS["general"])
        elif step == 2:
            keys = DETAIL_FIELDS
        else:
            keys = ["additional_information"]
        try:
            disputes.save_draft(current_actor(), dispute.id, name, {key: form[key].data for key in keys})
        except KassaError as exc:
            return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                               **_context(_dispute(dispute_id), step, alert=exc.message))
        target = step + 1 if form.go.data != "back" else max(step - 1, 1)
        return htmx_redirect(url_for("disputes.counter", dispute_id=dispute.id, step=target))
    return render_page("disputes/wizard.html", "wizard", **_context(dispute, step))


class EvidenceFileForm(Form):
    """One evidence file (D4); its size and type are checked by services/disputes/evidence.add_file."""

    file = FileField()


@bp.post("/<int:dispute_id>/files")
@permission_required(Permission.MANAGE_PAYMENTS)
def upload(dispute_id: int):
    dispute = _dispute(dispute_id)
    upload = EvidenceFileForm().file.data
    if not isinstance(upload, FileStorage):  # nothing chosen, or text posted under the file's name
        upload = None
    data = upload.read(evidence.MAX_TOTAL_BYTES + 1) if upload and upload.filename else b""
    try:
        evidence.add_file(current_actor(), dispute.id, upload.filename if upload else "", data)
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
    try:
        evidence.remove_file(current_actor(), dispute.id, file_id)
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
        disputes.submit_evidence(current_actor(), dispute.id)
    except KassaError as exc:
        return render_page("disputes/wizard.html", "wizard", status=exc.status_code,
                           **_context(_dispute(dispute_id), 4, alert=exc.message))
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

