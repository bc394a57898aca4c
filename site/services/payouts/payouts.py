"""Daily payouts (O1, O3, E8): everything that became available, paid out once a day, to the cent.

Every day (in the account's time zone) the tick gathers the entries available by that day and not yet
paid out: gross minus fees, refunds and chargebacks. A positive total is sent to the bank account; a
negative one is debited from it (O3). The payout's amount is by construction the sum of its entries.
Statuses: pending → in transit once the processor has sent it (`Processor.send_payout`) → paid or failed on
the arrival day (the next business day), as the processor says then (`lookup_payout`); a failed payout returns
its funds to the balance for the next payout.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from kassa.business_days import add_business_days
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.extensions import db
from kassa.models import Account, LedgerEntry, LedgerType, Payout, PayoutStatus
from kassa.money import Money
from kassa.processors.base import PayoutResult
from kassa.processors.registry import NoLiveProcessor, processor_for
from kassa.services.money.ledger import book_payout, local_day
from kassa.services.payouts.payout_states import move_payout
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import payment_team
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.urls import absolute_url

# Entries no payout takes and the balance leaves out: payouts themselves, and (V3) manual payments, money the
# merchant received outside Kassa.
PAYOUT_TYPES = (LedgerType.PAYOUT.value, LedgerType.MANUAL.value)


def _unpaid(account_id: int, mode: str, day: date):
    return (LedgerEntry.account_id == account_id, LedgerEntry.mode == mode, LedgerEntry.payout_id.is_(None),
            LedgerEntry.available_on <= day, LedgerEntry.type.not_in(PAYOUT_TYPES))


def balance(account_id: int, mode: str, day: date) -> dict[str, int]:
    """What the merchant has: available now, pending (not yet available), and the total."""
    available, total = db.session.execute(
        select(func.coalesce(func.sum(case((LedgerEntry.available_on <= day, LedgerEntry.amount_minor), else_=0)), 0),
               func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
        .where(LedgerEntry.account_id == account_id, LedgerEntry.mode == mode, LedgerEntry.payout_id.is_(None),
               LedgerEntry.type.not_in(PAYOUT_TYPES))
    ).one()
    available, pending = int(available), int(total) - int(available)
    return {"available": available, "pending": pending, "total": available + pending}


def create_payout(account: Account, mode: str, day: date) -> Payout | None:
    """The payout for one account, mode and day: at most one (unique), made of the available entries."""
    with write_transaction(db.session) as session:
        exists = session.scalar(select(Payout.id).where(Payout.account_id == account.id, Payout.mode == mode,
                                                        Payout.payout_date == day))
        if exists is not None:
            return None
        if not session.scalar(select(func.count()).where(*_unpaid(account.id, mode, day))):
            return None
        payout = Payout(account_id=account.id, mode=mode, amount_minor=0, currency=account.default_currency,
                        status=PayoutStatus.PENDING.value, payout_date=day, entry_count=0,
                        arrival_date=add_business_days(day, 1, account.country))
        session.add(payout)
        session.flush()
        # One statement takes the entries and says what they are: the payout adds up exactly the entries it
        # contains. (A SUM and then an UPDATE are two snapshots on PostgreSQL: a refund booked between them was
        # in the payout but not in its amount, found by the G3 load run.)
        amounts = session.execute(
            update(LedgerEntry).where(*_unpaid(account.id, mode, day)).values(payout_id=payout.id)
            .returning(LedgerEntry.amount_minor).execution_options(synchronize_session=False)).scalars().all()
        if not amounts:
            session.delete(payout)
            return None
        payout.amount_minor, payout.entry_count = sum(amounts), len(amounts)
        book_payout(payout, now())
        notify_payout(payout, account)
        return payout


def notify_payout(payout: Payout, account: Account) -> None:
    """E8: the daily payout email with the total (switchable); a debit (O3) is always told."""
    debit = payout.amount_minor < 0
    if not debit and not account.notification_enabled("payout_sent"):
        return
    for user in payment_team(account.id):
        queue_email(kind="payout_debit" if debit else "payout_sent", to=[user.email], template="email/payout.html",
                    language=user.language or account.language,
                    context={"payout": payout, "account": account, "brand_color": account.brand_color,
                             "amount": Money(abs(payout.amount_minor), payout.currency), "debit": debit,
                             "payout_url": absolute_url("payouts.detail", payout_id=payout.id)},
                    account_id=account.id, related=("payout", payout.id))


def payout_key(payout_id: int) -> str:
    """The processor idempotency key of a payout: sending it again (after a crash) sends nothing twice."""
    return f"payout-{payout_id}"


def advance_payout(payout_id: int) -> None:
    """pending → in transit once the processor has the payout; in transit → paid (or failed) on the arrival
    day, as the processor then says. The processor is asked with no transaction open (it commits on its own,
    like a remote service); the payout's row is then locked and moved on from what it answered."""
    payout = db.session.get(Payout, payout_id)
    account = db.session.get(Account, payout.account_id)
    at = now()
    today = local_day(account, at)
    status, arrived = payout.status, today >= payout.arrival_date
    amount, currency, mode, account_id = payout.amount_minor, payout.currency, payout.mode, account.id
    db.session.rollback()
    answer: PayoutResult | None = None
    if status in (PayoutStatus.PENDING.value, PayoutStatus.IN_TRANSIT.value):
        processor = processor_for(mode, account_id)
        if status == PayoutStatus.PENDING.value:
            answer = processor.send_payout(account_id, amount, currency, payout_key(payout_id), at)
        if arrived:
            answer = processor.lookup_payout(account_id, payout_key(payout_id), at)
    with write_transaction(db.session) as session:
        payout = lock_one(session, Payout, payout_id)
        if payout.status == PayoutStatus.PENDING.value and answer is not None:
            move_payout(payout, PayoutStatus.IN_TRANSIT, at=at)
        if payout.status == PayoutStatus.IN_TRANSIT.value and arrived and answer is not None:
            if answer.status == "failed":
                move_payout(payout, PayoutStatus.FAILED, at=at, data={"message": answer.failure_message})
            elif answer.status == "paid":
                move_payout(payout, PayoutStatus.PAID, at=at)


def pays_out_itself(account_id: int, mode: str) -> bool:
    """Whether the account's processor in `mode` pays its balance out on its own schedule (Stripe, K11): Kassa
    then makes no daily payout of its own — in test mode too when the account tests through Stripe (K12). Without
    a live processor nothing is decided here (as before)."""
    try:
        processor = processor_for(mode, account_id)
    except NoLiveProcessor:
        return False
    return processor.automatic_payouts


def run_payouts() -> int:
    """Once a day per account and mode: today's payout, then move earlier payouts along."""
    pairs = db.session.execute(select(LedgerEntry.account_id, LedgerEntry.mode).where(
        LedgerEntry.payout_id.is_(None), for_tick_account(LedgerEntry.account_id)).distinct()).all()
    db.session.rollback()

    def pay_out(pair: tuple[int, str]) -> bool:
        account_id, mode = pair
        if pays_out_itself(account_id, mode):
            return False  # Stripe pays out by itself; stripe_payouts.sync_payouts lists its payouts (K11)
        account = db.session.get(Account, account_id)
        day = local_day(account, now())
        try:
            return create_payout(account, mode, day) is not None
        except IntegrityError:
            db.session.rollback()  # another tick made today's payout first
            return False

    # H1: one account's payout failing is logged and retried on a later tick; every other account is paid.
    done = each_item("payouts", pairs, pay_out, describe=lambda pair: f"account {pair[0]} ({pair[1]})")
    # Payouts the processor made itself move as the processor's list says (stripe_payouts), not by key here.
    moving = db.session.scalars(select(Payout.id).where(
        Payout.status.in_((PayoutStatus.PENDING.value, PayoutStatus.IN_TRANSIT.value)),
        Payout.processor_ref.is_(None), for_tick_account(Payout.account_id))).all()
    db.session.rollback()
    each_item("payouts", moving, advance_payout, describe=lambda payout_id: f"payout {payout_id}")
    return done
