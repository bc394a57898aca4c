"""Refunds (F1–F6): all or part of a payment, never more than was paid, never twice.

1. Reserve the amount on the payment with one conditional UPDATE (the check and the write are the same
   statement, so two refunds submitted at once cannot both pass), and write the refund row with its
   idempotency key; a CHECK constraint on the payment is the backstop.
2. Call the processor, holding no lock and no transaction.
3. Settlement arrives later as an event: succeeded → counted as refunded; failed → the reservation is
   released and the amount is refundable again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, locked, write_transaction
from kassa.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    MANUAL_METHOD,
    Account,
    Mode,
    Payment,
    PaymentStatus,
    Permission,
    Refund,
    RefundReason,
    RefundStatus,
)
from kassa.money import Money, MoneyError, parse_money
from kassa.processors.base import ProcessorError, ProcessorFailure, RefundResult
from kassa.processors.registry import NoLiveProcessor, has_live_processor, processor_for
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.money.display_status import refresh_display_status
from kassa.services.money.dispute_facts import blocks_refund
from kassa.services.money.ledger import book_refund
from kassa.services.payments.refund_states import move_refund
from kassa.services.platform.audit import record_audit
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.timeline_kinds import TimelineKind

ACH_REFUND_WINDOW = timedelta(days=180)  # F4
MAX_NOTE = 500


@dataclass(frozen=True)
class Refundability:
    allowed: bool
    reason: str | None
    remaining: Money


def refundable(payment: Payment, account: Account) -> Refundability:
    """Whether the Refund action is open, and if not, the reason shown beside it."""
    remaining = Money(payment.amount_minor - (payment.refund_reserved_minor or 0), payment.currency)
    if payment.method == MANUAL_METHOD:
        return Refundability(False, _("A manual payment was made outside Kassa, so Kassa can't refund it. Give the "
                                      "money back the way it came, and delete the payment."), remaining)
    if payment.status == PaymentStatus.DELETED.value:
        return Refundability(False, _("This payment was deleted."), remaining)
    if payment.status == PaymentStatus.PROCESSING.value:
        return Refundability(False, _("The payment is still processing; it can be refunded once it succeeds."),
                             remaining)
    if payment.status == PaymentStatus.FAILED.value:
        return Refundability(False, _("Failed payments can't be refunded: nothing was collected."), remaining)
    if payment.mode == Mode.LIVE.value and not has_live_processor(payment.account_id):
        return Refundability(False, _("Connect a live payment processor to refund live payments."), remaining)
    if blocks_refund(payment):
        return Refundability(False, _("This payment is disputed; a disputed payment can't be refunded."), remaining)
    if payment.method == "ach" and now() - payment.created_at > ACH_REFUND_WINDOW:
        return Refundability(False, _("Bank debit (ACH) payments can only be refunded within 180 days."), remaining)
    if remaining.amount_minor <= 0:
        return Refundability(False, _("This payment has been refunded in full."), remaining)
    return Refundability(True, None, remaining)


class RefundKeyReused(Conflict):
    """H13: a refund idempotency key already used for another payment (409); the form gets a fresh key."""


def new_refund_key() -> str:
    """Put in the refund form when it is shown: submitting that form twice makes one refund."""
    return f"refund-{secrets.token_urlsafe(16)}"


def parse_refund_amount(text: str, currency: str, locale: str) -> Money:
    try:
        amount = parse_money(text, currency, locale)
    except MoneyError as exc:
        raise ValidationFailed(_(exc.template, **exc.params), field="amount") from None
    if amount.amount_minor <= 0:
        raise ValidationFailed(_("Enter an amount greater than zero."), field="amount")
    return amount


def _reserve(payment_id: int, amount_minor: int) -> bool:
    """The atomic check-and-reserve: true when the amount fitted and is now reserved."""
    result = db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id,
               Payment.refund_reserved_minor + amount_minor <= Payment.amount_minor)
        .values(refund_reserved_minor=Payment.refund_reserved_minor + amount_minor)
    )
    return result.rowcount == 1


def refund_payment(actor: Actor, payment_id: int, *, amount_text: str, reason: str, note: str, locale: str,
                   idempotency_key: str | None = None) -> Refund:
    """F1: refund `amount_text` of a payment. Raises ValidationFailed / Conflict with the reason."""
    if not actor.can(Permission.MANAGE_PAYMENTS):  # a user's role, or an API key's permissions (I1)
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))
    try:
        reason_enum = RefundReason(reason)
    except ValueError:
        raise ValidationFailed(_("Choose a reason."), field="reason") from None
    note = (note or "").replace("\x00", "").strip()  # PostgreSQL can't store NUL
    if reason_enum is RefundReason.OTHER and not note:
        raise ValidationFailed(_("Say why, in a few words."), field="note")
    if len(note) > MAX_NOTE:
        raise ValidationFailed(_("Use at most %(n)d characters.", n=MAX_NOTE), field="note")
    key = (idempotency_key or new_refund_key())[:120]

    with write_transaction(db.session) as session:
        # Refunds of one payment queue here (SQLite's BEGIN IMMEDIATE already serializes writers), so a form
        # submitted twice at once finds the first refund below instead of hitting the unique key.
        session.execute(locked(session, select(Payment.id).where(Payment.id == payment_id)))
        existing = session.scalar(select(Refund).where(Refund.account_id == actor.account_id,
                                                       Refund.idempotency_key == key))
        if existing is not None:
            if existing.payment_id != payment_id:
                # H13: a key belongs to the refund of one payment. Its reuse on another payment would answer
                # with that other refund, "succeeding" while refunding nothing here: refuse it instead.
                raise RefundKeyReused(_("This refund form was already used to refund another payment, so "
                                        "nothing was refunded. Submit the form again to refund this payment."))
            return existing  # the same form submitted twice: one refund
        payment = session.get(Payment, payment_id)
        if payment is None or payment.account_id != actor.account_id:
            raise NotFound(_("Payment not found."))
        account = session.get(Account, payment.account_id)
        amount = parse_refund_amount(amount_text, payment.currency, locale)
        check = refundable(payment, account)
        if not check.allowed:
            raise Conflict(check.reason)
        if amount.amount_minor > check.remaining.amount_minor:
            raise ValidationFailed(
                _("You can refund at most %(amount)s.", amount=check.remaining.format(locale)), field="amount")
        before = payment.refund_reserved_minor
        if not _reserve(payment.id, amount.amount_minor):
            session.expire(payment)
            left = Money(payment.amount_minor - payment.refund_reserved_minor, payment.currency)
            raise Conflict(_("Another refund was just made on this payment. %(amount)s is left to refund.",
                             amount=left.format(locale)))
        session.expire(payment)
        refund = Refund(account_id=payment.account_id, payment_id=payment.id, amount_minor=amount.amount_minor,
                        currency=payment.currency, reason=reason_enum.value, note=note, idempotency_key=key,
                        created_by_id=actor.user_id)
        session.add(refund)
        session.flush()

        book_refund(refund, now())
        refresh_display_status(payment)
        add_timeline(payment.account_id, TimelineKind.REFUND_CREATED, subjects=payment_subjects(payment), payment_id=payment.id,
                     data={"amount_minor": refund.amount_minor, "currency": refund.currency, "reason": refund.reason},
                     actor_id=actor.user_id)
        record_audit(actor, "payment.refunded", object_type="payment", object_id=payment.id,
                     amount_before_minor=before, amount_after_minor=payment.refund_reserved_minor,
                     currency=payment.currency,
                     data={"refund_id": refund.id, "amount_minor": refund.amount_minor, "reason": refund.reason,
                           "note": note})
        refund_id, mode, charge_ref = refund.id, payment.mode, payment.processor_ref
        account_id, currency, amount_minor = payment.account_id, payment.currency, refund.amount_minor
        at = now()

    _send_to_processor(refund_id, mode, account_id, charge_ref, amount_minor, currency, key, at)
    return db.session.get(Refund, refund_id)


def _send_to_processor(refund_id: int, mode: str, account_id: int, charge_ref: str, amount_minor: int,
                       currency: str, key: str, at) -> None:
    processor = processor_for(mode, account_id)
    try:
        result = processor.refund(account_id, charge_ref, amount_minor, currency, key, at)
    except ProcessorFailure as exc:
        # H5: an error answer alone doesn't prove nothing was refunded (an error after the fact): the refund
        # is failed, and its reservation released, only when the processor has no refund under this key.
        try:
            result = _made_refund(processor, account_id, key, charge_ref, amount_minor)
        except ProcessorError:
            return  # can't tell now: the tick asks again
        if result is None:
            fail_refund(refund_id, exc.code, exc.message)
            return
    except ProcessorError:
        return  # unknown outcome: the tick looks it up by its key (the processor won't refund twice)
    _record_processor_ref(refund_id, result.processor_ref)


def _made_refund(processor, account_id: int, key: str, charge_ref: str, amount_minor: int) -> RefundResult | None:
    """The processor's refund under this key, when it is this refund (same charge and amount)."""
    found = processor.lookup_refund(account_id, key)
    if found is None or (found.charge_ref, found.amount_minor) != (charge_ref, amount_minor):
        return None
    return found


def _record_processor_ref(refund_id: int, processor_ref: str) -> None:
    with write_transaction(db.session) as session:
        refund = session.get(Refund, refund_id)
        if refund.processor_ref is None:
            refund.processor_ref = processor_ref


def complete_refund(refund_id: int) -> bool:
    """The processor paid the refund out (F3): it counts as refunded. A refund settled already (an event after
    the H5 reconciler failed it, say) stays as it is."""
    # Locked: the same refund's event applied twice at once settles it once (the second finds it succeeded).
    refund = lock_one(db.session, Refund, refund_id)
    if refund is None or refund.status != RefundStatus.PENDING.value:
        return False
    return move_refund(refund, RefundStatus.SUCCEEDED, at=now())


def fail_refund(refund_id: int, code: str | None, message: str | None) -> bool:
    """The refund didn't go through: release its reservation so the amount is refundable again."""
    with write_transaction(db.session) as session:
        refund = session.get(Refund, refund_id)
        if refund is None or refund.status != RefundStatus.PENDING.value:
            return False
        return move_refund(refund, RefundStatus.FAILED, at=now(),
                           data={"code": code, "message": message})


def retry_unsent_refunds() -> int:
    """H5: reconcile refunds whose processor answer never arrived (a timeout, or a crash of the request),
    as checkouts are reconciled: look the refund up by its idempotency key. Found → record it (its
    settlement event then completes it). Not found → the processor never made it: send it again with the
    same key, so the merchant's refund happens once; a refusal fails it and releases its reservation (F6).
    Each refund on its own (H1): one that errors is logged, counted and retried on the next tick."""
    stale = db.session.execute(
        select(Refund.id, Refund.account_id, Refund.amount_minor, Refund.currency, Refund.idempotency_key,
               Payment.mode, Payment.processor_ref)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.status == RefundStatus.PENDING.value, Refund.processor_ref.is_(None),
               Refund.created_at <= now() - timedelta(seconds=30), for_tick_account(Refund.account_id))
        .order_by(Refund.id)
        .limit(200)
    ).all()
    db.session.rollback()

    def reconcile(row) -> bool:
        refund_id, account_id, amount, currency, key, mode, charge_ref = row
        try:
            processor = processor_for(mode, account_id)
            found = _made_refund(processor, account_id, key, charge_ref, amount)
            if found is not None:
                _record_processor_ref(refund_id, found.processor_ref)
            else:
                _send_to_processor(refund_id, mode, account_id, charge_ref, amount, currency, key, now())
        except (NoLiveProcessor, ProcessorError):
            db.session.rollback()  # no answer yet: asked again on the next tick
            return False
        return True

    return each_item("retry_refunds", stale, reconcile, describe=lambda row: f"refund {row[0]}")
