"""Stripe's payouts in Kassa (K11): listed from Stripe, each with its balance transactions, to the cent.

Stripe pays a connected account out by itself (automatic payouts; a manual schedule pays out from Stripe's
Dashboard), so Kassa makes no daily payout of its own for it (`payouts.pays_out_itself`) and lists Stripe's
instead. Each payout becomes one Kassa Payout (`processor_ref` = Stripe's po_…) whose ledger entries add up to
exactly Stripe's amount, the same invariant as the sandbox's payouts (each payout = its entries):

- a balance transaction of a Kassa payment, refund, dispute or failed payout takes that object's own entries
  (booked when its event was applied) into the payout;
- where Stripe's figures differ from what Kassa booked (a fee known only once the balance transaction
  exists, a refund converted at the day's rate, Stripe's dispute fee), the difference is booked into the
  payout as an entry of the same kind, sourced `stripe:<txn>:<kind>`, and the payment's fee and net are set
  to Stripe's;
- a transaction Kassa knows nothing of (a Stripe fee, a charge made outside Kassa) is booked whole.

A transaction whose Kassa object exists but whose event hasn't been applied yet (a refund or a dispute the
webhook hasn't brought) holds its payout back for up to a day; after that the line is booked as Stripe has it.
Statuses follow Stripe's: in transit → paid, or failed with Stripe's reason (its funds come back to the
balance, and Stripe's payout_failure transaction pays them out again with a later payout). Syncing again adds
nothing: each Stripe payout is recorded once (unique per account) and each line once (unique source)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    Dispute,
    LedgerEntry,
    LedgerType,
    Mode,
    Payment,
    Payout,
    PayoutStatus,
    Refund,
    StripeConnection,
)
from kassa.money import exponent
from kassa.processors.registry import stripe_payout_source
from kassa.processors.stripe import BalanceLine, StripePayout
from kassa.services.money.ledger import book_payout, book_processor_line, local_day
from kassa.services.payouts.payout_states import move_payout
from kassa.services.payouts.payouts import notify_payout
from kassa.services.platform.ticks import each_item, for_tick_account

log = logging.getLogger(__name__)

# Payouts created this far back are listed on every sync (a payout's status settles within days).
SYNC_WINDOW = timedelta(days=35)
# How long a payout waits for the events of its lines before they are booked as Stripe has them.
WAIT_FOR_EVENTS = timedelta(hours=24)
LIVE = Mode.LIVE.value


class PayoutMismatch(Exception):
    """Stripe's lines don't add up to its payout's amount: nothing is recorded (retried on the next tick)."""


def sync_payouts_task() -> int:
    """Tick: every account with a live Stripe connection."""
    account_ids = db.session.scalars(select(StripeConnection.account_id).where(
        StripeConnection.mode == LIVE, StripeConnection.disconnected_at.is_(None),
        for_tick_account(StripeConnection.account_id)).distinct()).all()
    db.session.rollback()
    # H1: one account's failure (Stripe unreachable, a revoked key) is logged and retried; the others sync.
    return each_item("stripe_payouts", account_ids, sync_payouts, describe=lambda account_id: f"account {account_id}")


def sync_payouts(account_id: int) -> int:
    """List the account's recent Stripe payouts: record the new ones, move the known ones. Returns how many
    payouts were recorded. Stripe is asked with no transaction open."""
    source = stripe_payout_source(account_id)
    if source is None:
        return 0
    known = dict(db.session.execute(select(Payout.processor_ref, Payout.id).where(
        Payout.account_id == account_id, Payout.processor_ref.is_not(None))).all())
    db.session.rollback()
    at = now()
    recorded = 0
    for payout in source.payouts(at - SYNC_WINDOW):
        if payout.processor_ref in known:
            follow(known[payout.processor_ref], payout)
        else:
            recorded += record_payout(account_id, payout, source.payout_lines(payout.processor_ref), at)
    return recorded


def record_payout(account_id: int, payout: StripePayout, lines: list[BalanceLine], at: datetime) -> int:
    """One Stripe payout as a Kassa Payout made of its lines; 1 when recorded, 0 when held back or known."""
    total = sum(line.net_minor for line in lines)
    if total != payout.amount_minor:
        raise PayoutMismatch(f"{payout.processor_ref}: lines {total}, payout {payout.amount_minor}")
    with write_transaction(db.session) as session:
        if session.scalar(select(Payout.id).where(Payout.account_id == account_id,
                                                  Payout.processor_ref == payout.processor_ref)) is not None:
            return 0
        account = session.get(Account, account_id)
        matched = [(line, *_kassa_side(account_id, line)) for line in lines]
        if at - payout.created_at < WAIT_FOR_EVENTS and not all(ready for _line, _entries, _links, ready in matched):
            return 0
        row = Payout(account_id=account_id, mode=LIVE, amount_minor=payout.amount_minor, currency=payout.currency,
                     status=PayoutStatus.IN_TRANSIT.value, payout_date=local_day(account, payout.created_at),
                     arrival_date=payout.arrival_date, processor_ref=payout.processor_ref,
                     created_at=payout.created_at)
        session.add(row)
        session.flush()
        row.entry_count = sum(_take(account, row, line, entries, links) for line, entries, links, _ready in matched)
        book_payout(row, payout.created_at)
        notify_payout(row, account)
        _move(row, payout, at)
        return 1


def follow(payout_id: int, payout: StripePayout) -> None:
    """A known payout's status as Stripe has it now."""
    with write_transaction(db.session) as session:
        row = lock_one(session, Payout, payout_id)
        _move(row, payout, now())


def _move(row: Payout, payout: StripePayout, at: datetime) -> None:
    # Only an in-transit payout moves: Kassa's machine has no way back from paid or failed (a payout Stripe
    # reverses after paying shows as its own payout_failure line in a later payout).
    if row.status != PayoutStatus.IN_TRANSIT.value:
        return
    if payout.status == "paid":
        move_payout(row, PayoutStatus.PAID, at=at)
    elif payout.status == "failed":
        move_payout(row, PayoutStatus.FAILED, at=at,
                    data={"message": payout.failure_message or payout.failure_code})


# --- a line and Kassa's side of it ---------------------------------------------------------------------

def _kinds(line: BalanceLine) -> tuple[LedgerType, LedgerType]:
    """(the kind of the line's amount, the kind of its fee) in Kassa's ledger."""
    if line.type in ("charge", "payment"):
        return LedgerType.CHARGE, LedgerType.FEE
    if line.type in ("refund", "payment_refund"):
        return LedgerType.REFUND, LedgerType.FEE
    if line.type in ("refund_failure", "payment_failure_refund"):
        return LedgerType.REFUND_FAILURE, LedgerType.FEE
    if line.reporting_category == "dispute" or (line.type == "adjustment" and line.source_ref and
                                                line.source_ref.startswith(("dp_", "du_"))):
        kind = LedgerType.DISPUTE if line.amount_minor < 0 else LedgerType.DISPUTE_REVERSAL
        return kind, LedgerType.DISPUTE_FEE
    if line.reporting_category == "dispute_reversal":
        return LedgerType.DISPUTE_REVERSAL, LedgerType.DISPUTE_FEE
    if line.type == "payout_failure":
        return LedgerType.PAYOUT_FAILURE, LedgerType.FEE
    if line.type == "stripe_fee":
        return LedgerType.FEE, LedgerType.FEE
    return LedgerType.ADJUSTMENT, LedgerType.FEE


def _kassa_side(account_id: int, line: BalanceLine) -> tuple[list[LedgerEntry], dict[str, Any], bool]:
    """(Kassa's unpaid entries for this line, the links of an entry booked for it, whether Kassa is ready:
    False while the line's payment is Kassa's but the event that books it hasn't been applied)."""
    kind, _fee = _kinds(line)
    payment = db.session.scalar(select(Payment).where(
        Payment.account_id == account_id, Payment.mode == LIVE,
        Payment.processor_ref == line.payment_intent_ref)) if line.payment_intent_ref else None
    links: dict[str, Any] = {"payment_id": payment.id} if payment is not None else {}
    keys: list[str] = []
    if kind is LedgerType.PAYOUT_FAILURE:
        failed = db.session.scalar(select(Payout.id).where(Payout.account_id == account_id,
                                                           Payout.processor_ref == line.source_ref))
        keys = [f"payout-failure:{failed}"] if failed is not None else []
    elif payment is not None and kind is LedgerType.CHARGE:
        keys = [f"charge:{payment.id}", f"fee:{payment.id}"]
    elif payment is not None and kind in (LedgerType.REFUND, LedgerType.REFUND_FAILURE):
        refund = db.session.scalar(select(Refund).where(Refund.account_id == account_id,
                                                        Refund.processor_ref == line.source_ref))
        if refund is None:
            return [], links, False
        links["refund_id"] = refund.id
        keys = [f"refund:{refund.id}"] if kind is LedgerType.REFUND else [f"refund-failure:{refund.id}"]
    elif payment is not None and kind in (LedgerType.DISPUTE, LedgerType.DISPUTE_REVERSAL):
        dispute = db.session.scalar(select(Dispute).where(Dispute.account_id == account_id,
                                                          Dispute.processor_ref == line.source_ref))
        if dispute is None:
            return [], links, False
        links["dispute_id"] = dispute.id
        keys = [f"dispute:{dispute.id}", f"dispute-fee:{dispute.id}"] if kind is LedgerType.DISPUTE else \
            [f"dispute-won:{dispute.id}"]
    if not keys:
        return [], links, True
    entries = db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.account_id == account_id, LedgerEntry.source_key.in_(keys), LedgerEntry.payout_id.is_(None),
        LedgerEntry.currency == line.currency).order_by(LedgerEntry.id)).all()
    return list(entries), links, bool(entries) or kind is LedgerType.PAYOUT_FAILURE


def _take(account: Account, row: Payout, line: BalanceLine, entries: list[LedgerEntry], links: dict[str, Any]) -> int:
    """Put the line into the payout: Kassa's entries for it, and what Stripe's figures add to them. Returns how
    many entries the payout got for it."""
    kind, fee_kind = _kinds(line)
    wanted: dict[LedgerType, int] = {kind: 0, fee_kind: 0}
    wanted[kind] += line.amount_minor
    wanted[fee_kind] -= line.fee_minor
    have: dict[LedgerType, int] = {}
    for entry in entries:
        entry.payout_id = row.id
        have[LedgerType(entry.type)] = have.get(LedgerType(entry.type), 0) + entry.amount_minor
        wanted.setdefault(LedgerType(entry.type), 0)
    booked = 0
    for entry_kind, amount in wanted.items():
        difference = amount - have.get(entry_kind, 0)
        if difference:
            label = line.description or line.type.replace("_", " ")
            book_processor_line(account, LIVE, entry_kind, difference, line.currency,
                                f"stripe:{line.ref}:{entry_kind.value}", available=line.available_on,
                                occurred_at=line.created_at, description=f"Stripe: {label}", payout_id=row.id,
                                **links)
            booked += 1
    if kind is LedgerType.CHARGE and "payment_id" in links:
        _stripe_fees(db.session.get(Payment, links["payment_id"]), line)
    return len(entries) + booked


def _stripe_fees(payment: Payment, line: BalanceLine) -> None:
    """The payment's fee, net and rate as Stripe's balance transaction has them (K11): they may have been
    unknown when the payment succeeded (its balance transaction came later)."""
    rate = line.exchange_rate or Decimal(payment.exchange_rate or 1)
    payment.exchange_rate = str(rate)
    payment.fee_settlement_minor = line.fee_minor
    payment.net_settlement_minor = line.net_minor
    if payment.currency == line.currency:
        payment.fee_minor = line.fee_minor
    else:
        major = Decimal(line.fee_minor).scaleb(-exponent(line.currency)) / rate
        payment.fee_minor = int(major.scaleb(exponent(payment.currency)).quantize(Decimal(1), ROUND_HALF_UP))
