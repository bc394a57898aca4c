"""The balance ledger (O1, O2): every money movement as a signed entry in the settlement currency, with
the day its funds become available. Payouts are made of entries; the balance is their sum."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select

from kassa.business_days import add_business_days
from kassa.clock import zone
from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import Account, Dispute, LedgerEntry, LedgerType, Payment, Payout, Refund
from kassa.money import exponent
from kassa.processors.base import is_bank_debit

# O2: business days until a method's funds are available.
AVAILABILITY_DAYS = {"card": 2, "ach": 4, "bacs": 5, "pad": 5, "sepa": 14}


def local_day(account: Account, at: datetime) -> date:
    return at.astimezone(zone(account.timezone)).date()


def available_on(account: Account, method: str, at: datetime) -> date:
    """The day a payment's funds can be paid out: N business days in the account's country."""
    return add_business_days(local_day(account, at), AVAILABILITY_DAYS.get(method, 2), account.country)


def to_settlement(payment: Payment, amount_minor: int) -> int:
    """An amount in the payment's currency, in the settlement currency at the payment's own rate."""
    if payment.settlement_currency == payment.currency:
        return amount_minor
    major = Decimal(amount_minor) / (10 ** exponent(payment.currency)) * Decimal(payment.exchange_rate)
    return int((major * 10 ** exponent(payment.settlement_currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _book(account: Account, mode: str, kind: LedgerType, amount_minor: int, currency: str, source_key: str, *,
          available: date, occurred_at: datetime, description: str = "", **links) -> LedgerEntry | None:
    """Add an entry in the caller's transaction, once per source (a repeat of the same movement is a no-op)."""
    exists = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.account_id == account.id,
                                                            LedgerEntry.source_key == source_key))
    if exists is not None:
        return None
    entry = LedgerEntry(account_id=account.id, mode=mode, type=kind.value, amount_minor=amount_minor,
                        currency=currency, source_key=source_key, available_on=available, occurred_at=occurred_at,
                        description=description[:300], **links)
    db.session.add(entry)
    return entry


def charge_available_on(account: Account, method: str, at: datetime) -> date:
    """When a succeeded payment's funds are available: a bank debit has already taken its processing days to
    clear; a card needs two more business days."""
    return local_day(account, at) if is_bank_debit(method) else available_on(account, method, at)


def charge_rows(payment: Any, available: date) -> list[dict[str, Any]]:
    """M1, O1: the entries a succeeded payment books — its gross in, its processing fee out. The one definition
    of them: book_charge adds them for one payment, the batch billing path inserts them for many (`payment`
    is a model or a row with the payment's columns)."""
    at, currency = payment.succeeded_at or payment.created_at, payment.settlement_currency
    entry = {"account_id": payment.account_id, "mode": payment.mode, "currency": currency,
             "available_on": available, "occurred_at": at, "payment_id": payment.id}
    rows = [{**entry, "type": LedgerType.CHARGE.value, "source_key": f"charge:{payment.id}",
             "amount_minor": payment.net_settlement_minor + payment.fee_settlement_minor,
             "description": f"Payment {display_id('payment', payment.id)}"}]
    if payment.fee_settlement_minor:
        rows.append({**entry, "type": LedgerType.FEE.value, "source_key": f"fee:{payment.id}",
                     "amount_minor": -payment.fee_settlement_minor,
                     "description": f"Processing fee {display_id('payment', payment.id)}"})
    return rows


def book_charge(payment: Payment) -> None:
    """A succeeded payment: its gross in, its processing fee out, available after the method's delay."""
    account = db.session.get(Account, payment.account_id)
    available = charge_available_on(account, payment.method, payment.succeeded_at or payment.created_at)
    for row in charge_rows(payment, available):
        _book(account, row["mode"], LedgerType(row["type"]), row["amount_minor"], row["currency"], row["source_key"],
              available=available, occurred_at=row["occurred_at"], payment_id=payment.id,
              description=row["description"])


def book_manual(payment: Payment, amount_minor: int, source_key: str, at: datetime) -> None:
    """V3: a manual payment's money, signed (recorded +, an edit's difference ±, deleted −), in its own currency
    (no processor converted it). Type MANUAL: counted by reports, left out of the balance and every payout."""
    if not amount_minor:
        return
    account = db.session.get(Account, payment.account_id)
    _book(account, payment.mode, LedgerType.MANUAL, amount_minor, payment.currency, source_key,
          available=local_day(account, at), occurred_at=at, payment_id=payment.id,
          description=f"Manual payment {display_id('payment', payment.id)}")


def manual_total(payment_id: int) -> int:
    """V3: what a manual payment's entries add up to now (its amount; 0 once deleted)."""
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
        LedgerEntry.payment_id == payment_id, LedgerEntry.type == LedgerType.MANUAL.value)))


def manual_entry_count(payment_id: int) -> int:
    return int(db.session.scalar(select(func.count()).where(LedgerEntry.payment_id == payment_id,
                                                            LedgerEntry.type == LedgerType.MANUAL.value)))


def book_refund(refund: Refund, at: datetime) -> None:
    """F5: a refund leaves the balance at once (netted from the next payouts); the fee isn't returned."""
    payment = db.session.get(Payment, refund.payment_id)
    account = db.session.get(Account, payment.account_id)
    _book(account, payment.mode, LedgerType.REFUND, -to_settlement(payment, refund.amount_minor),
          payment.settlement_currency, f"refund:{refund.id}", available=local_day(account, at), occurred_at=at,
          payment_id=payment.id, refund_id=refund.id, description=f"Refund of {display_id('payment', payment.id)}")


def book_refund_failure(refund: Refund, at: datetime) -> None:
    payment = db.session.get(Payment, refund.payment_id)
    account = db.session.get(Account, payment.account_id)
    _book(account, payment.mode, LedgerType.REFUND_FAILURE, to_settlement(payment, refund.amount_minor),
          payment.settlement_currency, f"refund-failure:{refund.id}", available=local_day(account, at),
          occurred_at=at, payment_id=payment.id, refund_id=refund.id,
          description=f"Failed refund of {display_id('payment', payment.id)} returned")


def book_dispute(dispute: Dispute, at: datetime) -> None:
    """A dispute withdraws the disputed amount and a dispute fee (inquiries withdraw nothing)."""
    if dispute.is_inquiry:
        return
    payment = db.session.get(Payment, dispute.payment_id)
    account = db.session.get(Account, payment.account_id)
    day = local_day(account, at)
    _book(account, payment.mode, LedgerType.DISPUTE, -to_settlement(payment, dispute.amount_minor),
          payment.settlement_currency, f"dispute:{dispute.id}", available=day, occurred_at=at,
          payment_id=payment.id, dispute_id=dispute.id, description=f"Dispute on {display_id('payment', payment.id)}")
    if dispute.fee_minor:
        _book(account, payment.mode, LedgerType.DISPUTE_FEE, -to_settlement(payment, dispute.fee_minor),
              payment.settlement_currency, f"dispute-fee:{dispute.id}", available=day, occurred_at=at,
              payment_id=payment.id, dispute_id=dispute.id, description=f"Dispute fee {display_id('payment', payment.id)}")


def book_dispute_won(dispute: Dispute, at: datetime) -> None:
    """Winning returns the disputed amount (the dispute fee stays with the network)."""
    if dispute.is_inquiry:
        return
    payment = db.session.get(Payment, dispute.payment_id)
    account = db.session.get(Account, payment.account_id)
    _book(account, payment.mode, LedgerType.DISPUTE_REVERSAL, to_settlement(payment, dispute.amount_minor),
          payment.settlement_currency, f"dispute-won:{dispute.id}", available=local_day(account, at),
          occurred_at=at, payment_id=payment.id, dispute_id=dispute.id,
          description=f"Dispute won on {display_id('payment', payment.id)}")


def book_payout(payout: Payout, at: datetime) -> None:
    """O1: a payout takes its entries' total out of the balance on its day."""
    account = db.session.get(Account, payout.account_id)
    _book(account, payout.mode, LedgerType.PAYOUT, -payout.amount_minor, payout.currency, f"payout:{payout.id}",
          available=payout.payout_date, occurred_at=at, payout_id=payout.id,
          description=f"Payout {display_id('payout', payout.id)}")


def book_payout_failure(payout: Payout, at: datetime) -> None:
    """A refused payout's funds come back to the balance and go out with the next payout."""
    account = db.session.get(Account, payout.account_id)
    _book(account, payout.mode, LedgerType.PAYOUT_FAILURE, payout.amount_minor, payout.currency,
          f"payout-failure:{payout.id}", available=local_day(account, at), occurred_at=at,
          description=f"Failed payout {display_id('payout', payout.id)} returned")


def book_processor_line(account: Account, mode: str, kind: LedgerType, amount_minor: int, currency: str,
                        source_key: str, *, available: date, occurred_at: datetime, description: str,
                        payout_id: int, **links) -> LedgerEntry | None:
    """K11: what a processor's payout holds and Kassa booked no other way (a fee Stripe charged on its own, a
    refund converted at the day's rate rather than the payment's, a charge made outside Kassa), booked into
    that payout, once per source."""
    entry = _book(account, mode, kind, amount_minor, currency, source_key, available=available,
                  occurred_at=occurred_at, description=description, payout_id=payout_id, **links)
    if entry is not None:
        db.session.flush()
    return entry
