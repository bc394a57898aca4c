"""The balance ledger (O1, O2): every money movement as a signed entry in the settlement currency, with
the day its funds become available. Payouts are made of entries; the balance is their sum."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from kassa.business_days import add_business_days
from kassa.clock import zone
from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import Account, Dispute, LedgerEntry, LedgerType, Payment, Refund
from kassa.money import exponent

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


def book_charge(payment: Payment) -> None:
    """A succeeded payment: its gross in, its processing fee out, available after the method's delay."""
    account = db.session.get(Account, payment.account_id)
    at = payment.succeeded_at or payment.created_at
    # A bank debit has already taken its processing days to clear; a card needs two more business days.
    available = local_day(account, at) if payment.method == "ach" else available_on(account, payment.method, at)
    gross = payment.net_settlement_minor + payment.fee_settlement_minor
    currency = payment.settlement_currency
    _book(account, payment.mode, LedgerType.CHARGE, gross, currency, f"charge:{payment.id}", available=available,
          occurred_at=at, payment_id=payment.id, description=f"Payment {display_id('payment', payment.id)}")
    if payment.fee_settlement_minor:
        _book(account, payment.mode, LedgerType.FEE, -payment.fee_settlement_minor, currency, f"fee:{payment.id}",
              available=available, occurred_at=at, payment_id=payment.id,
              description=f"Processing fee {display_id('payment', payment.id)}")


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
