"""V2, V3, V7 (issue 21's property test): whatever happens to invoices, in whatever order, their balances, the
ledger and the aging report agree to the cent.

Hypothesis draws sequences of: new invoices (partial payments allowed), payments at the invoice's checkout (the
sandbox, full or partial), manual payments (V3), manual payments deleted by the Super admin, refunds of checkout
payments (settled by the sandbox's event a minute on) and voids. After every step, for every invoice:

- amount paid = the sum of its succeeded payments, never above its amount: a refund doesn't make the invoice owe
  again, it makes a credit note (V1) for the refunded amount, which settles that part of the invoice;
- its credit notes = what was refunded of its payments, one per refund;
- its status follows: open with nothing paid, partially paid, paid in full, and void only with nothing paid;

and at the end:

- the ledger equals the payments (tests/support/ledger.py: the processor's records for checkout payments, the
  manual entries = the manual payments' amounts, never in a payout; payouts = their entries);
- the aging report (export kind ar_aging) lists exactly the open and partially paid invoices, with what is due.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import account_today
from kassa.extensions import db
from kassa.models import Account, CreditNote, Export, Invoice, Payment, User
from kassa.processors import registry
from kassa.services.checkout.invoice_checkout import pay_token
from kassa.services.events import process_sandbox_events
from kassa.services.exports import exports
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.checkout import buyer_form, path_of
from tests.support.invoices import editor_form
from tests.support.ledger import assert_ledger_matches_processor
from tests.support.payments import login

START = datetime(2027, 3, 1, 14, tzinfo=UTC)  # a Monday
_merchants = itertools.count()

steps = st.lists(
    st.one_of(
        st.tuples(st.just("invoice"), st.sampled_from(["45.00", "10.01", "7.77"]), st.just(0)),
        st.tuples(st.just("pay"), st.integers(0, 9), st.integers(1, 100)),  # invoice index, percent of what is due
        st.tuples(st.just("manual"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("delete"), st.integers(0, 9), st.just(0)),  # a manual payment, by index
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 100)),  # a checkout payment, percent
        st.tuples(st.just("void"), st.integers(0, 9), st.just(0)),
    ),
    min_size=1, max_size=7,
)


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _new_invoice(client, owner, price: str) -> int:
    response = client.post("/invoices/new", data=editor_form(
        language="en", currency="USD", allow_partial="y", **{"lines-0-unit_price": price, "lines-0-discount_type": "",
                                             "lines-0-discount_value": ""}))
    assert response.status_code == 303
    db.session.rollback()
    invoice_id = db.session.scalar(select(Invoice.id).where(Invoice.account_id == owner.account_id)
                                   .order_by(Invoice.id.desc()).limit(1))
    assert client.post(f"/invoices/{invoice_id}/finalize").status_code == 303
    return invoice_id


def _share(due: int, percent: int) -> int:
    return max(1, due * percent // 100)


def _pay(app, invoice: Invoice, percent: int) -> None:
    """A buyer pays at the invoice's checkout: a share of what is due (at least 1.00, the checkout's minimum)."""
    buyer = app.test_client()
    opened = buyer.post(f"/invoice/{pay_token(invoice)}/pay")
    if opened.status_code != 303:  # paid or void: the pay page refuses politely
        assert opened.status_code == 409, opened.status_code
        return
    amount = min(invoice.amount_due_minor, max(100, _share(invoice.amount_due_minor, percent)))
    response = buyer.post(path_of(opened.headers["Location"]), data=buyer_form(price_0=_money(amount)))
    assert response.status_code in (303, 409, 422), response.status_code


def _refund(client, payment: Payment, percent: int, clock) -> None:
    left = payment.amount_minor - payment.refund_reserved_minor
    if left > 0:
        response = client.post(f"/payments/{payment.id}/refund",
                               data={"amount": _money(_share(left, percent)), "reason": "requested_by_customer"})
        assert response.status_code in (200, 303, 409, 422), response.status_code
    clock.shift(timedelta(minutes=2))  # the sandbox's refund.succeeded is due a minute on
    process_sandbox_events()


def _check_balances(account_id: int) -> None:
    db.session.rollback()
    invoices = db.session.scalars(select(Invoice).where(Invoice.account_id == account_id)).all()
    payments = db.session.scalars(select(Payment).where(Payment.account_id == account_id)).all()
    notes = db.session.scalars(select(CreditNote).where(CreditNote.account_id == account_id)).all()
    assert len({note.refund_id for note in notes}) == len(notes)  # one credit note per refund
    for invoice in invoices:
        paid = sum(p.amount_minor for p in payments if p.invoice_id == invoice.id and p.status == "succeeded")
        refunded = sum(p.refunded_minor for p in payments if p.invoice_id == invoice.id and p.status == "succeeded")
        state = (invoice.id, invoice.status, invoice.amount_minor, invoice.amount_paid_minor, paid, refunded)
        assert invoice.amount_paid_minor == paid, state
        assert sum(note.amount_minor for note in notes if note.invoice_id == invoice.id) == refunded, state
        assert 0 <= paid <= invoice.amount_minor, state
        if invoice.status == "void":
            assert paid == 0, state
        else:
            want = "open" if paid == 0 else "paid" if paid == invoice.amount_minor else "partially_paid"
            assert invoice.status == want, state


def _check_aging(owner) -> None:
    user = db.session.get(User, owner.id)
    export = exports.request_export(Actor(user=user, account_id=owner.account_id), kind="ar_aging", name="Aging",
                                    file_format="csv", language="en", params={"modes": ["live"]})
    run_outbox()
    db.session.rollback()
    export = db.session.get(Export, export.id)
    assert export.status == "done", export.error
    data = exports.downloadable(owner.account_id, export.id)[1].read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    owing = [i for i in db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id))
             if i.status in ("open", "partially_paid")]
    assert sorted(Decimal(row["Amount due"]) for row in rows) == sorted(
        Decimal(i.amount_due_minor) / 100 for i in owing)
    buckets = ["Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]
    assert sum(Decimal(row[b]) for row in rows for b in buckets) == Decimal(sum(i.amount_due_minor for i in owing)) / 100


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=steps)
def test_v_invoice_balances_ledger_and_aging_agree_whatever_happens(app, ops):
    """V2, V3, V7: invoice balances = payments less refunds, the ledger = the payments, aging = open invoices."""
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # invoices are paid in live mode
    with time_machine.travel(START + timedelta(days=next(_merchants)), tick=False) as clock:
        owner = make_merchant(company="Balans")
        client = app.test_client()  # a merchant of its own each example, signed in afresh
        login(client, owner)
        account_id = owner.account_id
        invoice_ids = [_new_invoice(client, owner, "45.00")]
        today = account_today(db.session.get(Account, account_id)).isoformat()
        for kind, index, value in ops:
            db.session.rollback()
            if kind == "invoice":
                invoice_ids.append(_new_invoice(client, owner, index))
                continue
            invoice = db.session.get(Invoice, invoice_ids[index % len(invoice_ids)])
            manual = [p for p in db.session.scalars(select(Payment).where(
                Payment.account_id == account_id, Payment.method == "manual", Payment.status == "succeeded")
                .order_by(Payment.id))]
            cards = [p for p in db.session.scalars(select(Payment).where(
                Payment.account_id == account_id, Payment.method == "card", Payment.status == "succeeded")
                .order_by(Payment.id))]
            if kind == "pay":
                _pay(app, invoice, value)
            elif kind == "manual":
                amount = _share(invoice.amount_due_minor, value) if invoice.amount_due_minor > 0 else 100
                client.post(f"/invoices/{invoice.id}/payments/new",
                            data={"method": "bank_transfer", "date": today, "amount": _money(amount)})
            elif kind == "delete" and manual:
                assert client.post(f"/invoices/manual-payments/{manual[index % len(manual)].id}/delete"
                                   ).status_code == 303
            elif kind == "refund" and cards:
                _refund(client, cards[index % len(cards)], value, clock)
            elif kind == "void":
                client.post(f"/invoices/{invoice.id}/void", data={"reason": "Sent by mistake"})
            _check_balances(account_id)
        clock.shift(timedelta(minutes=2))
        process_sandbox_events()
        _check_balances(account_id)
        assert_ledger_matches_processor(account_id)
        _check_aging(owner)
