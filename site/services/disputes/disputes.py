"""Disputes (D1–D7): opened by the processor, countered with evidence or accepted by the merchant.

The processor reports; this module decides what the merchant sees: the dispute row, the payment's
dispute properties and status, timeline entries, and the emails. Evidence is a draft until it is
submitted once; after that it is read-only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, EventNotReady, Forbidden, NotFound, ValidationFailed
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import (
    Account,
    Dispute,
    DisputeStatus,
    Payment,
    Permission,
)
from kassa.money import Money, exponent
from kassa.processors.base import (
    DisputeEvidence,
    DisputeResult,
    EvidenceFile,
    ProcessorError,
    ProcessorEvent,
    ProcessorFailure,
)
from kassa.processors.registry import NoLiveProcessor, processor_for
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.disputes.dispute_states import CLOSED, move_dispute, notify_dispute, sync_payment
from kassa.services.disputes.dispute_states import event_data as dispute_event_data
from kassa.services.money.ledger import book_dispute
from kassa.services.payments.receipts import format_address, receipt_number
from kassa.services.platform.account_events import record
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import notify_team_in_app, payment_team
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.timefmt import DATE, format_when
from kassa.timeline_kinds import TimelineKind
from kassa.urls import absolute_url

log = logging.getLogger(__name__)

# A dispute costs the merchant a fee on top of the withdrawn amount (returned only with the amount
# when the dispute is won). 15.00 in the payment's currency, scaled to its decimals.
DISPUTE_FEE_MAJOR = 15
REMINDERS = (("72h", timedelta(hours=72)), ("24h", timedelta(hours=24)))
MAX_TEXT = 5000

def dispute_fee(currency: str) -> int:
    return DISPUTE_FEE_MAJOR * 10 ** exponent(currency)


# -- events from the processor ----------------------------------------------------------------------


def open_dispute(event: ProcessorEvent) -> Dispute | None:
    """dispute.created: record it, show it everywhere, tell the merchant (D1)."""
    data = event.data
    payment = db.session.scalar(select(Payment).where(Payment.account_id == event.account_id,
                                                      Payment.processor_ref == data["charge_ref"]))
    if payment is None:
        return None
    existing = db.session.scalar(select(Dispute).where(Dispute.account_id == event.account_id,
                                                       Dispute.processor_ref == data["dispute_ref"]))
    if existing is not None:
        return existing
    dispute = Dispute(
        account_id=payment.account_id, payment_id=payment.id, processor_ref=data["dispute_ref"],
        amount_minor=int(data["amount_minor"]), currency=data["currency"], reason=data.get("reason") or "general",
        is_inquiry=bool(data.get("is_inquiry")),
        fee_minor=0 if data.get("is_inquiry") else dispute_fee(data["currency"]),
        status=DisputeStatus.NEEDS_RESPONSE.value, created_at=event.occurred_at,
        evidence_due_by=datetime.fromisoformat(data["evidence_due_by"]),
    )
    db.session.add(dispute)
    db.session.flush()

    book_dispute(dispute, event.occurred_at)
    payment = sync_payment(dispute)
    kind = TimelineKind.DISPUTE_INQUIRY_OPENED if dispute.is_inquiry else TimelineKind.DISPUTE_OPENED
    add_timeline(payment.account_id, kind, subjects=payment_subjects(payment), payment_id=payment.id,
                 data={"amount_minor": dispute.amount_minor, "currency": dispute.currency, "reason": dispute.reason,
                       "due_by": dispute.evidence_due_by.isoformat()})
    if not dispute.is_inquiry:
        add_timeline(payment.account_id, TimelineKind.DISPUTE_FUNDS_WITHDRAWN, subjects=payment_subjects(payment),
                     payment_id=payment.id, data={"amount_minor": dispute.amount_minor + dispute.fee_minor,
                                                  "currency": dispute.currency})
    # W6, I6: the dispute row is created once (a replayed event finds it above), so this is recorded once.
    record(dispute.account_id, Event.DISPUTE_OPENED, dispute, event.occurred_at, dispute_event_data(dispute))
    notify_dispute(dispute, "dispute_opened")
    _announce_dispute(dispute, payment)
    return dispute


def _announce_dispute(dispute: Dispute, payment: Payment) -> None:
    """B1: the bell, whatever the email switches say; once, as the dispute row is created once."""
    amount = Money(dispute.amount_minor, dispute.currency)
    zone = db.session.get(Account, dispute.account_id).timezone

    def text() -> str:
        due = format_when(dispute.evidence_due_by, DATE, locale=str(get_locale() or "en"), timezone=zone)  # B7
        said = (_("Inquiry about %(amount)s from %(email)s: answer by %(due)s.", amount=amount.format(str(get_locale() or 'en')),
                  email=payment.buyer_email, due=due) if dispute.is_inquiry else
                _("New dispute of %(amount)s from %(email)s: respond by %(due)s.", amount=amount.format(str(get_locale() or 'en')),
                  email=payment.buyer_email, due=due))
        return _("Test: %(text)s", text=said) if payment.mode == "test" else said

    notify_team_in_app(dispute.account_id, text, absolute_url("payments.detail", payment_id=payment.id))


def close_dispute(event: ProcessorEvent, outcome: DisputeStatus) -> Dispute | None:
    """dispute.won / dispute.lost: the network decided (or the deadline passed, or the merchant accepted)."""
    dispute = db.session.scalar(select(Dispute).where(Dispute.account_id == event.account_id,
                                                      Dispute.processor_ref == event.object_ref))
    if dispute is None:

        raise EventNotReady(event.id)
    if dispute.status in CLOSED:
        return dispute  # the network's word on a dispute the merchant accepted (or a replay): nothing changes
    move_dispute(dispute, outcome, at=event.occurred_at,
                 data={"amount_minor": dispute.amount_minor, "currency": dispute.currency})
    return dispute


# -- the merchant's side --------------------------------------------------------------------------


def require_dispute_rights(actor: Actor) -> None:
    if actor.user is None or not actor.user.can(Permission.MANAGE_PAYMENTS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))


def owned(session, actor: Actor, dispute_id: int) -> Dispute:
    """The actor's dispute, locked for the rest of the write transaction: two tabs changing one dispute
    (uploads checked against the size budget, a save racing the submission) take turns."""
    dispute = lock_one(session, Dispute, dispute_id)
    if dispute is None or dispute.account_id != actor.account_id:
        raise NotFound(_("Dispute not found."))
    return dispute


def ensure_answerable(dispute: Dispute, account: Account) -> None:
    if dispute.status != DisputeStatus.NEEDS_RESPONSE.value:
        raise Conflict(_("This dispute has already been answered."))
    if dispute.answer is not None:
        # H13: an answer is on its way to the processor: the evidence it carries can't change any more, and
        # no second answer may follow it.
        raise Conflict(_("This dispute has just been answered. Reload the page to see its status."))
    if now() >= dispute.evidence_due_by:
        raise Conflict(_("The deadline for this dispute has passed."))


def save_draft(actor: Actor, dispute_id: int, step: str, values: dict[str, str], *,
               autosave: bool = False) -> Dispute:
    """D4: keep what the merchant wrote at each step, so nothing is lost if they leave and come back.
    B5: `autosave` is the wizard saving as the merchant types: the same draft, without a history entry for
    every pause in their typing."""
    require_dispute_rights(actor)
    cleaned = {key: (value or "").strip()[:MAX_TEXT] for key, value in values.items()}
    with write_transaction(db.session) as session:
        dispute = owned(session, actor, dispute_id)
        ensure_answerable(dispute, session.get(Account, dispute.account_id))
        draft = dict(dispute.draft or {})
        draft[step] = cleaned
        dispute.draft = draft
        if not autosave:
            add_timeline(dispute.account_id, TimelineKind.DISPUTE_DRAFT_SAVED,
                         subjects=payment_subjects(session.get(Payment, dispute.payment_id)),
                         payment_id=dispute.payment_id, data={"step": step}, actor_id=actor.user_id)
        return dispute


def evidence_dir() -> Path:
    """Where evidence files are kept (KASSA_UPLOAD_DIR/evidence), served only to their account."""
    path = Path(current_app.config["KASSA_UPLOAD_DIR"]) / "evidence"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _answers(dispute: Dispute) -> dict[str, dict[str, str]]:
    """The wizard's answers by step. Until step 2 is saved, its pre-filled details are what the review shows,
    so they are what is sent."""
    draft = dispute.draft or {}
    return {step: prefilled_details(dispute) if step == "details" and step not in draft else draft.get(step, {})
            for step in ("questions", "details", "evidence")}


def dispute_evidence(dispute: Dispute) -> DisputeEvidence:
    """The answer the processor receives (K10): each answer by its wizard name (the processor maps them to its
    own evidence fields), the whole answer as the text the merchant reviewed, and the files, read from disk
    only when they are sent. Built again from the same read-only draft when the tick resends an answer (H5)."""
    fields = {key: value for values in _answers(dispute).values() for key, value in values.items() if value}
    files = tuple(EvidenceFile(name=file.filename, content_type=file.content_type,
                               path=evidence_dir() / file.stored_name) for file in dispute.files)
    return DisputeEvidence(fields=fields, text=dispute.evidence_text or evidence_text(dispute), files=files)


def evidence_text(dispute: Dispute) -> str:
    """Everything the merchant answered, as one text: kept on the dispute, and sent with the answer."""
    parts = []
    for values in _answers(dispute).values():
        for key, value in values.items():
            if value:
                parts.append(f"{key}: {value}")
    for file in dispute.files:
        parts.append(f"file: {file.filename} ({file.content_type}, {file.pages} page(s))")
    return "\n".join(parts)


ANSWER_EVIDENCE, ANSWER_ACCEPT = "evidence", "accept"
# An answer whose reply was lost (timeout, crash) is settled from the processor after this long (H5).
RECONCILE_ANSWER_AFTER = timedelta(seconds=30)


def _claim_answer(actor: Actor, dispute_id: int, answer: str) -> tuple[str, str, datetime, DisputeEvidence | None]:
    """H13: take the dispute's one answer under its row lock before anything goes to the processor. Of
    parallel submits and accepts exactly one gets here; the others wait on the lock, then see the answer
    taken and get a 409. Returns (mode, dispute ref, account clock, evidence)."""
    with write_transaction(db.session) as session:
        dispute = owned(session, actor, dispute_id)
        account = session.get(Account, dispute.account_id)
        ensure_answerable(dispute, account)  # under the row lock: of parallel answers, one passes
        evidence = None
        if answer == ANSWER_EVIDENCE:
            answered = any(value for values in (dispute.draft or {}).values() for value in values.values())
            if not (answered or dispute.files):
                raise ValidationFailed(_("Answer the questions or add evidence before submitting."))
            # B5: the draft keeps exactly what is sent (the pre-filled details too, when step 2 was never
            # saved), so the confirmation and the read-only review show what the bank received.
            dispute.draft = {**(dispute.draft or {}), **_answers(dispute)}
            dispute.evidence_text = evidence_text(dispute)
            dispute.submitted_by_id = actor.user_id
            evidence = dispute_evidence(dispute)
        dispute.answer, dispute.answer_sent_at = answer, now()
        payment = session.get(Payment, dispute.payment_id)
        return payment.mode, dispute.processor_ref, now(), evidence


def _send_answer(processor, account_id: int, ref: str, answer: str, evidence: DisputeEvidence | None,
                 at: datetime) -> DisputeResult:
    if answer == ANSWER_ACCEPT:
        return processor.accept_dispute(account_id, ref, at)
    return processor.submit_dispute_evidence(account_id, ref, evidence or DisputeEvidence(), at)


def _answer(actor: Actor, dispute_id: int, answer: str) -> Dispute:
    """Claim the answer, send it, record it. An answer the processor refused is given back (the merchant
    can try again); one whose outcome is unknown stays taken until the tick settles it (H5)."""
    require_dispute_rights(actor)
    mode, ref, at, evidence = _claim_answer(actor, dispute_id, answer)
    processor = processor_for(mode, actor.account_id)
    try:
        _send_answer(processor, actor.account_id, ref, answer, evidence, at)
    except ProcessorFailure as exc:
        # Refused, or an error after the fact: the processor's record of the dispute decides.
        if _settle_answer(dispute_id, processor, actor):
            return db.session.get(Dispute, dispute_id)
        _release_answer(dispute_id)
        if exc.code == "dispute_already_answered":
            raise Conflict(_("This dispute has already been answered.")) from None
        if answer == ANSWER_ACCEPT:
            raise Conflict(_("The dispute could not be accepted: %(reason)s",
                             reason=_(exc.message) if exc.message else exc.code)) from None
        raise Conflict(_("The evidence could not be submitted: %(reason)s",
                         reason=_(exc.message) if exc.message else exc.code)) from None
    except ProcessorError:
        raise Conflict(_("The payment processor did not confirm your answer in time. We'll check with it; "
                         "the dispute shows the outcome within a few minutes.")) from None
    return _record_answer(dispute_id, actor)


def _record_answer(dispute_id: int, actor: Actor) -> Dispute:
    """The processor has the dispute's answer: evidence → awaiting decision; accept → closed as lost."""
    with write_transaction(db.session) as session:
        dispute = lock_one(session, Dispute, dispute_id)
        if dispute.status != DisputeStatus.NEEDS_RESPONSE.value or dispute.answer is None:
            return dispute  # already recorded (by the request or the tick), or closed by an event
        if dispute.answer == ANSWER_EVIDENCE:
            move_dispute(dispute, DisputeStatus.UNDER_REVIEW, at=now(), actor_id=actor.user_id)
            record_audit(actor, "dispute.evidence_submitted", object_type="dispute", object_id=dispute.id)
        else:
            move_dispute(dispute, DisputeStatus.LOST, at=now(),
                         actor_id=actor.user_id, accepted=True,
                         data={"amount_minor": dispute.amount_minor, "currency": dispute.currency})
            record_audit(actor, "dispute.accepted", object_type="dispute", object_id=dispute.id,
                         amount_before_minor=dispute.amount_minor, currency=dispute.currency)
        return dispute


def _release_answer(dispute_id: int) -> None:
    """The processor has no answer for this dispute: the merchant may answer again."""
    with write_transaction(db.session) as session:
        dispute = lock_one(session, Dispute, dispute_id)
        if dispute.status == DisputeStatus.NEEDS_RESPONSE.value:
            dispute.answer = dispute.answer_sent_at = None


def _settle_answer(dispute_id: int, processor, actor: Actor) -> bool:
    """True when the processor has an answer for the dispute (recorded now); False when it has none."""
    dispute = db.session.get(Dispute, dispute_id)
    account_id, ref = dispute.account_id, dispute.processor_ref
    at = now()
    db.session.rollback()  # no transaction open while the processor answers
    try:
        found = processor.lookup_dispute(account_id, ref, at)
    except ProcessorError:
        return False
    if found is None or found.status == DisputeStatus.NEEDS_RESPONSE.value:
        return False
    _record_answer(dispute_id, actor)
    return True


def submit_evidence(actor: Actor, dispute_id: int) -> Dispute:
    """D4: submit once; the dispute moves to "awaiting decision" and the evidence becomes read-only."""
    return _answer(actor, dispute_id, ANSWER_EVIDENCE)


def accept(actor: Actor, dispute_id: int) -> Dispute:
    """D5: accept the dispute: it closes as lost and the amount stays with the buyer."""
    return _answer(actor, dispute_id, ANSWER_ACCEPT)


def reconcile_answers() -> int:
    """H5 (tick): settle answers sent but never recorded (the reply was lost, or the request died). The
    processor's record decides: it has an answer → record it; it has none → send the same answer again
    (the merchant gave it; the processor takes one answer per dispute), or give the answer back when the
    processor refuses it. Each dispute on its own: one that errors is logged and retried next tick."""
    stale = db.session.execute(
        select(Dispute.id, Dispute.account_id, Payment.mode).join(Payment, Payment.id == Dispute.payment_id)
        .where(Dispute.status == DisputeStatus.NEEDS_RESPONSE.value, Dispute.answer.is_not(None),
               Dispute.answer_sent_at <= now() - RECONCILE_ANSWER_AFTER)
        .order_by(Dispute.id).limit(200)
    ).all()
    db.session.rollback()
    done = 0
    for dispute_id, account_id, mode in stale:
        system = Actor.system(account_id)
        try:
            processor = processor_for(mode, account_id)
            if _settle_answer(dispute_id, processor, system):
                done += 1
                continue
            dispute = db.session.get(Dispute, dispute_id)
            sent = (dispute.processor_ref, dispute.answer,
                    dispute_evidence(dispute) if dispute.answer == ANSWER_EVIDENCE else None)
            at = now()
            db.session.rollback()
            try:
                _send_answer(processor, account_id, *sent, at)
            except ProcessorFailure:
                if not _settle_answer(dispute_id, processor, system):
                    _release_answer(dispute_id)
            else:
                _record_answer(dispute_id, system)
            done += 1
        except (NoLiveProcessor, ProcessorError):
            db.session.rollback()
        except Exception:
            db.session.rollback()
            log.exception("reconciling the answer to dispute %s failed; retried on the next tick", dispute_id)
    return done


def prefilled_details(dispute: Dispute) -> dict[str, str]:
    """D4 step 2: what Kassa already knows about the purchase, ready to send."""
    payment = db.session.get(Payment, dispute.payment_id)
    account = db.session.get(Account, dispute.account_id)
    return {
        "customer_name": payment.buyer_name or "",
        "customer_email": payment.buyer_email,
        "billing_address": format_address(payment.billing_address) or "",
        "purchase_ip": payment.ip or "",
        "product_description": "; ".join(f"{item.quantity} × {item.name}" + (f" ({item.description})"
                                                                           if item.description else "")
                                         for item in payment.items),
        "receipt": receipt_number(payment) if payment.receipt_number else "",
        "refund_policy": account_policy(account),
    }


def account_policy(account: Account) -> str:
    return account.refund_policy or ""


def send_deadline_reminders() -> int:
    """72 h and 24 h before the deadline, when no evidence was submitted yet [beyond]."""
    open_disputes = db.session.scalars(
        select(Dispute).where(Dispute.status == DisputeStatus.NEEDS_RESPONSE.value,
                              for_tick_account(Dispute.account_id)).limit(1000)
    ).all()
    ids = [(d.id, d.account_id) for d in open_disputes]
    db.session.rollback()

    def remind(row: tuple[int, int]) -> bool:
        dispute_id, _account_id = row
        with write_transaction(db.session) as session:
            dispute = session.get(Dispute, dispute_id)
            left = dispute.evidence_due_by - now()
            already = list(dispute.reminders_sent or [])
            due = [name for name, window in REMINDERS if timedelta(0) < left <= window]
            # Only the latest reminder that is due: after a late first tick (a stopped worker), the 72 h
            # one counts as sent together with the 24 h one, not as a second email a minute later.
            if due and due[-1] not in already:
                dispute.reminders_sent = already + [name for name in due if name not in already]
                _notify_reminder(dispute, due[-1])
                return True
        return False

    # H1: a reminder that fails is rolled back (not marked sent) and retried; the other disputes still get theirs.
    return each_item("dispute_reminders", ids, remind, describe=lambda row: f"dispute {row[0]}")


def _notify_reminder(dispute: Dispute, name: str) -> None:
    account = db.session.get(Account, dispute.account_id)
    if not account.notification_enabled("dispute_opened"):
        return
    payment = db.session.get(Payment, dispute.payment_id)
    for user in payment_team(account.id):
        queue_email(kind="dispute_reminder", to=[user.email], template="email/dispute_reminder.html",
                    language=user.language or account.language,
                    context={"dispute": dispute, "payment": payment, "account": account, "window": name,
                             "brand_color": account.brand_color, "amount": Money(dispute.amount_minor,
                                                                                dispute.currency),
                             "counter_url": absolute_url("disputes.counter", dispute_id=dispute.id, step=1)},
                    account_id=account.id, related=("payment", payment.id))
