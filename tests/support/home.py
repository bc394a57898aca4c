"""The merchant home (B1): one of every kind of item that needs attention, made the way it happens.

    items = attention_items(owner)     # a dispute (through its processor event), a failed renewal (through the
                                       # billing outcome), a failed payout (through its state machine), a paused
                                       # link (the card-testing guard's column) and a failed export
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    Contact,
    Dispute,
    Export,
    ExportStatus,
    Notification,
    Payment,
    PaymentLink,
    Payout,
    PayoutStatus,
    Subscription,
    User,
)
from kassa.processors.base import ProcessorEvent
from kassa.services.billing.billing_outcomes import record_failures
from kassa.services.events import apply_event
from kassa.services.payouts.payout_states import move_payout
from tests.factories import make_payment
from tests.support.checkout_flow import make_link


@dataclass
class AttentionItems:
    dispute: Dispute
    subscription: Subscription
    payout: Payout
    link: PaymentLink
    export: Export


def dispute_event(payment: Payment, *, event_id: str | None = None, due_in: timedelta = timedelta(days=5),
                  amount_minor: int | None = None) -> ProcessorEvent:
    return ProcessorEvent(
        id=event_id or f"evt_dispute_{payment.id}", type="dispute.created", account_id=payment.account_id,
        object_ref=f"dp_{payment.id}", occurred_at=now(),
        data={"dispute_ref": f"dp_{payment.id}", "charge_ref": payment.processor_ref,
              "amount_minor": amount_minor or payment.amount_minor, "currency": payment.currency,
              "reason": "fraudulent", "is_inquiry": False, "evidence_due_by": (now() + due_in).isoformat()})


def open_dispute_on(payment: Payment, **kwargs) -> Dispute:
    apply_event("sandbox", dispute_event(payment, **kwargs))
    db.session.rollback()
    return db.session.scalar(select(Dispute).where(Dispute.payment_id == payment.id))


def failing_renewal(account_id: int, *, mode: str = "test", email: str = "renewal@example.com") -> Payment:
    """A subscription whose renewal charge is under way (processing), ready for `record_failures`."""
    with write_transaction(db.session) as session:
        contact = Contact(account_id=account_id, mode=mode, email=email, first_name="Rita", last_name="Renew")
        session.add(contact)
        session.flush()
        sub = Subscription(account_id=account_id, mode=mode, contact_id=contact.id, frequency="monthly",
                           term_type="auto_renew", amount_minor=1900, currency="USD", payments_made=1,
                           anchor_at=now() - timedelta(days=31), next_charge_at=now())
        session.add(sub)
        session.flush()
        sub_id = sub.id
    payment = make_payment(account_id, amount_minor=1900, status="processing", mode=mode, email=email,
                           subscription_id=sub_id, subscription_period=1, billing_attempt=1)
    return payment


def fail_renewal(payment: Payment) -> int:
    recorded = record_failures([(payment.id, "card_declined", "Your card was declined.")])
    db.session.rollback()
    return recorded


def in_transit_payout(account_id: int, *, mode: str = "test", amount_minor: int = 12_345) -> Payout:
    with write_transaction(db.session) as session:
        payout = Payout(account_id=account_id, mode=mode, amount_minor=amount_minor, currency="USD",
                        status=PayoutStatus.IN_TRANSIT.value, payout_date=now().date() - timedelta(days=1),
                        arrival_date=now().date())
        session.add(payout)
        session.flush()
        return payout


def fail_payout(payout_id: int) -> bool:
    with write_transaction(db.session) as session:
        payout = session.get(Payout, payout_id)
        moved = move_payout(payout, PayoutStatus.FAILED, at=now(), data={"message": "The bank account was closed."})
    db.session.rollback()
    return moved


def failed_export(user: User, name: str = "Payments March") -> Export:
    with write_transaction(db.session) as session:
        export = Export(account_id=user.account_id, user_id=user.id, kind="payments", name=name, file_format="csv",
                        status=ExportStatus.FAILED.value, error="disk full", download_token=f"tok-{name}-{user.id}")
        session.add(export)
        session.flush()
        return export


def pause_link(link: PaymentLink, minutes: int = 30) -> None:
    with write_transaction(db.session) as session:
        session.get(PaymentLink, link.id).card_paused_until = now() + timedelta(minutes=minutes)


def attention_items(owner: User, *, mode: str = "test") -> AttentionItems:
    disputed = make_payment(owner.account_id, amount_minor=8_000, mode=mode, email="angry@example.com")
    dispute = open_dispute_on(disputed)
    renewal = failing_renewal(owner.account_id, mode=mode)
    fail_renewal(renewal)
    payout = in_transit_payout(owner.account_id, mode=mode)
    fail_payout(payout.id)
    link = make_link(owner, name="Spring concert")
    pause_link(link)
    export = failed_export(owner)
    return AttentionItems(dispute=dispute, subscription=db.session.get(Subscription, renewal.subscription_id),
                          payout=db.session.get(Payout, payout.id), link=link, export=export)


def bell(user_id: int) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.id)))
