"""Step 1 of billing a batch (S1): the payment row of each due subscription's period and attempt.

The rows are written before the processor is called, for the whole batch in one transaction. They are unique
per (subscription, period, attempt) in the database, so two ticks racing can't both create one. A row left
`processing` by a tick that died is found again here and charged again with the same idempotency key: the
processor then answers with the charge it already made instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kassa.bulk_sql import among, insert_rows, reserve_ids
from kassa.clock import clock_now, now
from kassa.database import dialect_name, locked, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    Contact,
    DisplayStatus,
    Payment,
    PaymentItem,
    PaymentStatus,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from kassa.processors.base import ChargeRequest
from kassa.processors.registry import processor_name
from kassa.services.billing.billing_rows import (
    BILLABLE,
    insert_timeline,
    subscription_subjects,
    timeline_rows,
)
from kassa.services.billing.subscription_states import move_subscription
from kassa.timeline_kinds import TimelineKind

_SUBS = Subscription.__table__
_PAYMENTS = Payment.__table__


@dataclass(frozen=True)
class Charge:
    """A renewal ready for the processor: its payment row and the request that charges it."""

    payment_id: int
    subscription_id: int
    mode: str
    request: ChargeRequest


def claim_charges(sub_ids: list[int]) -> list[Charge]:
    """The charges to make for these subscriptions, those still due once locked (others are skipped)."""
    with write_transaction(db.session) as session:
        subs = _lock_subscriptions(session, sub_ids)
        accounts = {row.id: row for row in session.execute(
            select(Account).where(Account.id.in_({sub.account_id for sub in subs}))).scalars()}
        # One real moment for the whole batch (the processor takes the batch's keys together), read on each
        # subscription's own clock (B9: a test subscription's test clock; real time for live ones).
        base = now()
        clocks = {sub.id: clock_now(sub, base) for sub in subs}
        due = []
        for sub in subs:
            at = clocks[sub.id]
            if sub.status not in BILLABLE or sub.next_charge_at is None or sub.next_charge_at > at:
                continue  # another tick billed it since it was found
            if sub.cancel_at_period_end:
                _end_at_period_end(session, sub.id)
                continue
            due.append(sub)
        payments = _existing_charges(session, due)
        payments |= _insert_charges(session, [sub for sub in due if _attempt(sub) not in payments], accounts,
                                    clocks)
        charges = []
        for sub in due:
            payment = payments[_attempt(sub)]
            if payment["status"] != PaymentStatus.PROCESSING.value:
                continue  # this attempt already finished; the subscription will have moved on
            request = _request(sub, payment, accounts[sub.account_id], clocks[sub.id])
            charges.append(Charge(payment_id=payment["id"], subscription_id=sub.id, mode=sub.mode, request=request))
        return charges


def _request(sub, payment: dict[str, Any], account: Account, at: datetime) -> ChargeRequest:
    """The saved card charged under the payment row's key: a retry sends exactly the same request."""
    return ChargeRequest(
        account_id=sub.account_id, idempotency_key=payment["idempotency_key"], amount_minor=payment["amount_minor"],
        currency=payment["currency"], method="card", payment_method_token=sub.payment_method_token or "",
        settlement_currency=account.default_currency,
        description=f"Subscription {sub.id}, period {sub.payments_made}", now=at,
    )


def _attempt(sub) -> tuple[int, int, int]:
    """(subscription, period, attempt): what the payment row is unique on."""
    return sub.id, sub.payments_made, sub.failed_attempts + 1


def _key(sub_id: int, period: int, attempt: int) -> str:
    """The processor idempotency key of a subscription's period and attempt."""
    return f"sub-{sub_id}-p{period}-a{attempt}"


def _lock_subscriptions(session, sub_ids: list[int]) -> list[Any]:
    """The subscriptions with their contact's email and name, locked. On PostgreSQL a subscription another
    tick holds is being billed by it: skip it rather than wait."""
    query = (select(_SUBS, Contact.email.label("contact_email"), Contact.first_name, Contact.last_name)
             .join(Contact, Contact.id == _SUBS.c.contact_id)
             .where(among(dialect_name(session), _SUBS.c.id, sub_ids)).order_by(_SUBS.c.id))
    return list(session.execute(locked(session, query, skip_locked=True, of=_SUBS)))


def _end_at_period_end(session, sub_id: int) -> None:
    """S2: the merchant cancelled at the end of the paid period, and that end has come: nothing is charged."""
    sub = session.get(Subscription, sub_id)
    move_subscription(session, sub, SubscriptionStatus.CANCELLED, at=sub.next_charge_at,
                      reason="cancelled_at_period_end", data={"reason": "cancelled_at_period_end"})


def _existing_charges(session, subs: list[Any]) -> dict[tuple[int, int, int], dict[str, Any]]:
    """Payment rows already made for these attempts (by a tick that died, or one running beside this one)."""
    if not subs:
        return {}
    dialect, wanted = dialect_name(session), {_attempt(sub) for sub in subs}
    rows = session.execute(
        select(_PAYMENTS.c.id, _PAYMENTS.c.subscription_id, _PAYMENTS.c.subscription_period,
               _PAYMENTS.c.billing_attempt, _PAYMENTS.c.status, _PAYMENTS.c.idempotency_key,
               _PAYMENTS.c.amount_minor, _PAYMENTS.c.currency)
        .where(among(dialect, _PAYMENTS.c.subscription_id, [sub.id for sub in subs]),
               among(dialect, _PAYMENTS.c.idempotency_key, [_key(*attempt) for attempt in wanted])))
    found = {(row.subscription_id, row.subscription_period, row.billing_attempt): dict(row._mapping)
             for row in rows}
    return {attempt: row for attempt, row in found.items() if attempt in wanted}


def _insert_charges(session, subs: list[Any], accounts: dict[int, Account],
                    clocks: dict[int, datetime]) -> dict[tuple[int, int, int], dict[str, Any]]:
    """New payment rows with their frozen line items and a "submitted" timeline entry, a statement each."""
    if not subs:
        return {}
    processors = {key: processor_name(*key) for key in {(sub.mode, sub.account_id) for sub in subs}}
    rows = [_payment_row(sub, accounts[sub.account_id], clocks[sub.id], processors[sub.mode, sub.account_id])
            for sub in subs]
    ids = dict(zip((sub.id for sub in subs), reserve_ids(session, _PAYMENTS, len(subs)), strict=True))
    items = session.execute(select(SubscriptionItem.__table__)
                            .where(among(dialect_name(session), SubscriptionItem.subscription_id, ids))
                            .order_by(SubscriptionItem.subscription_id, SubscriptionItem.position)).all()
    discounts: dict[int, int] = {}
    for item in items:
        discounts[item.subscription_id] = discounts.get(item.subscription_id, 0) + (item.discount_minor or 0)
    for row in rows:
        row["id"] = ids[row["subscription_id"]]
        # Q1: the period's gross, discount and net, as at checkout (every row the same keys: one COPY)
        discount = discounts.get(row["subscription_id"], 0)
        net = row["amount_minor"] - row.pop("_exclusive_tax_minor")  # Q6: the amount less its exclusive tax
        row.update(gross_minor=net + discount, discount_minor=discount, net_minor=net)
    insert_rows(session, _PAYMENTS, rows)
    by_sub = {sub.id: sub for sub in subs}
    insert_rows(session, PaymentItem.__table__,
                [_item_row(item, ids[item.subscription_id], by_sub[item.subscription_id]) for item in items])
    timeline = []
    for sub, row in zip(subs, rows, strict=True):
        payment_id = row["id"]
        timeline += timeline_rows(sub.account_id, TimelineKind.PAYMENT_SUBMITTED,
                                  [("payment", payment_id), *subscription_subjects(sub)], row["created_at"],
                                  payment_id=payment_id, data={"amount_minor": row["amount_minor"],
                                                               "currency": row["currency"],
                                                               "period": row["subscription_period"]})
    insert_timeline(session, timeline)
    return {_attempt(sub): row for sub, row in zip(subs, rows, strict=True)}


def _payment_row(sub, account: Account, at: datetime, processor: str) -> dict[str, Any]:
    """The renewal's payment (R1), dated on the subscription's clock (a test clock for test mode), for the
    processor named `processor`."""
    period, attempt = sub.payments_made, sub.failed_attempts + 1
    name = " ".join(part for part in (sub.first_name, sub.last_name) if part)  # Contact.display_name, sans email
    return {
        "account_id": sub.account_id, "mode": sub.mode, "status": PaymentStatus.PROCESSING.value,
        # A new payment has no refund or dispute: what the index shows is its own status.
        "display_status": DisplayStatus.PROCESSING.value, "amount_minor": sub.amount_minor,
        "currency": sub.currency, "method": "card", "card_brand": sub.card_brand, "card_last4": sub.card_last4,
        "card_exp_month": sub.card_exp_month, "card_exp_year": sub.card_exp_year,
        "processor": processor, "settlement_currency": account.default_currency,
        "source": "subscription", "link_id": sub.link_id, "contact_id": sub.contact_id, "deal_id": sub.deal_id,
        "subscription_id": sub.id, "buyer_email": sub.contact_email, "buyer_name": name, "language": sub.language,
        "subscription_period": period, "billing_attempt": attempt,
        "idempotency_key": _key(sub.id, period, attempt), "refund_reserved_minor": 0, "refunded_minor": 0,
        "created_at": at, **_renewal_tax(sub),
    }


def _renewal_tax(sub) -> dict[str, Any]:
    """Q6: a renewal charges the tax of the checkout (in the subscription's amount) and keeps it as that did.
    Every row has the same keys (one COPY); `_exclusive_tax_minor` is read, then dropped, by _insert_charges."""
    tax = sub.tax_details or {}
    return {"tax_minor": sub.tax_minor or 0, "buyer_country": tax.get("buyer_country") or "",
            "buyer_vat_id": tax.get("buyer_vat_id") or "", "reverse_charge": bool(tax.get("reverse_charge")),
            "tax_details": tax.get("details"), "_exclusive_tax_minor": int(tax.get("exclusive_minor") or 0)}


def _item_row(item, payment_id: int, sub) -> dict[str, Any]:
    """A frozen copy of the subscription's line (the payment keeps it even if the subscription changes)."""
    return {"payment_id": payment_id, "position": item.position, "name": item.name, "description": item.description,
            "unit_amount_minor": item.unit_amount_minor, "currency": item.currency, "quantity": item.quantity,
            "frequency": sub.frequency, "term_type": sub.term_type, "term_count": sub.term_count,
            # Q1: a line's discount applies every period
            "discount_type": item.discount_type, "discount_value": item.discount_value,
            "discount_minor": item.discount_minor}
