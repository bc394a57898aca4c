"""V3 Manual payments: a payment received outside Kassa (bank transfer, cash, cheque, other) recorded on an invoice,
without a processor and in live mode; it pays the invoice through its state machine, shows as method "Manual" in
the payments index, reports and exports, is never in a payout, and only a Super admin may change or delete it
(each with an audit entry; deleting makes the invoice owe it again)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kassa.clock import account_today
from kassa.extensions import db
from kassa.models import (
    Account,
    AuditEvent,
    Invoice,
    LedgerEntry,
    LedgerType,
    Payment,
    Payout,
    Role,
    SandboxRecord,
)
from kassa.services.payouts.payouts import balance, create_payout
from tests.factories import make_merchant, make_user
from tests.support.invoices import editor_form
from tests.support.ledger import check_payout_invariants
from tests.support.payments import login, soup_of


@pytest.fixture
def owner(app, client):
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def _open_invoice(client, owner, **overrides) -> Invoice:
    overrides.setdefault("language", "en")
    assert client.post("/invoices/new", data=editor_form(**overrides)).status_code == 303
    db.session.rollback()
    invoice = db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                                 .order_by(Invoice.id.desc())).first()
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    db.session.rollback()
    return db.session.get(Invoice, invoice.id)  # 93.50 EUR


def _fresh(model, object_id):
    db.session.rollback()
    return db.session.get(model, object_id)


def _today(owner) -> str:
    return account_today(db.session.get(Account, owner.account_id)).isoformat()


def _form(owner, **overrides) -> dict[str, str]:
    form = {"method": "bank_transfer", "date": _today(owner), "amount": "93.50", "reference": "NL-TRF-0042"}
    form.update(overrides)
    return form


def _text(response) -> str:
    return " ".join(soup_of(response).get_text(" ").split())


def _payments(owner) -> list[Payment]:
    db.session.rollback()
    return list(db.session.scalars(select(Payment).where(Payment.account_id == owner.account_id)
                                   .order_by(Payment.id)))


@pytest.mark.parametrize("method", ["bank_transfer", "cash", "cheque", "other"])
def test_v3_recording_a_manual_payment_pays_the_invoice_without_a_processor(client, owner, method):
    invoice = _open_invoice(client, owner)
    page = client.get(f"/invoices/{invoice.id}")
    assert "Record a payment" in _text(page)
    dialog = client.get(f"/invoices/{invoice.id}/payments/new")
    assert dialog.status_code == 200 and soup_of(dialog).select_one("#f-amount")["value"] == "93.50"
    response = client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, method=method))
    assert response.status_code == 303, _text(response)[:600]
    [payment] = _payments(owner)
    assert (payment.method, payment.manual_method, payment.source, payment.status) == (
        "manual", method, "invoice", "succeeded")
    assert (payment.amount_minor, payment.currency, payment.invoice_id, payment.mode) == (
        9350, "EUR", invoice.id, "live")
    assert (payment.contact_id, payment.buyer_email) == (invoice.contact_id, "anna@example.com")
    assert payment.manual_reference == "NL-TRF-0042" and payment.fee_minor == 0
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor) == ("paid", 9350, 0)
    # No processor was asked anything (no sandbox record), and the ledger holds its amount as a manual entry.
    assert db.session.scalar(select(func.count()).select_from(SandboxRecord)) == 0
    entries = db.session.execute(select(LedgerEntry.type, LedgerEntry.amount_minor)).all()
    assert [tuple(e) for e in entries] == [(LedgerType.MANUAL.value, 9350)]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.manual_recorded")).one()
    assert audit.data["method"] == method
    detail = _text(client.get(f"/invoices/{invoice.id}"))
    assert "Manual" in detail and "NL-TRF-0042" in detail and "Record a payment" not in detail


def test_v3_a_partial_manual_payment_then_the_rest(client, owner):
    invoice = _open_invoice(client, owner)
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, amount="50")).status_code == 303
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_due_minor) == ("partially_paid", 4350)
    yesterday = (account_today(db.session.get(Account, owner.account_id)) - timedelta(days=1)).isoformat()
    assert client.post(f"/invoices/{invoice.id}/payments/new",
                       data=_form(owner, amount="43.50", method="cash", date=yesterday)).status_code == 303
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_due_minor) == ("paid", 0)
    first, second = _payments(owner)
    assert second.created_at < first.created_at  # dated the day it arrived


@pytest.mark.parametrize(("field", "value", "message"), [
    ("amount", "93.51", "at most €93.50"),
    ("amount", "0", "above zero"),
    ("amount", "-5", ""),
    ("amount", "lots", ""),
    ("amount", "", ""),
    ("date", "2999-01-01", "up to today"),
    ("date", "2026-02-30", "real date"),
    ("date", "", "date"),
    ("date", "1999-12-31", "from 2000"),
    ("method", "bitcoin", "Choose how"),
    ("method", "", "Choose how"),
    ("reference", "x" * 121, "at most 120"),
    ("reference", "\x00" * 200, None),  # NUL: the app's guard refuses the whole form (400)
])
def test_v3_hostile_input_is_refused_at_its_field_and_changes_nothing(client, owner, field, value, message):
    invoice = _open_invoice(client, owner)
    response = client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, **{field: value}))
    assert response.status_code == (400 if message is None else 422)
    error = soup_of(response).select_one(f"#f-{field}-error") if message is not None else True
    assert error is not None and (message is None or message in error.get_text()), _text(response)[:800]
    assert _payments(owner) == [] and db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_paid_minor) == ("open", 0)


def test_v3_a_draft_void_or_paid_invoice_takes_no_manual_payment(client, owner):
    assert client.post("/invoices/new", data=editor_form(language="en")).status_code == 303
    draft = db.session.scalars(select(Invoice).where(Invoice.status == "draft")).one()
    assert client.post(f"/invoices/{draft.id}/payments/new", data=_form(owner)).status_code == 303
    void = _open_invoice(client, owner)
    assert client.post(f"/invoices/{void.id}/void", data={"reason": "Wrong customer"}).status_code == 303
    assert client.post(f"/invoices/{void.id}/payments/new", data=_form(owner)).status_code == 303
    paid = _open_invoice(client, owner)
    assert client.post(f"/invoices/{paid.id}/payments/new", data=_form(owner)).status_code == 303
    again = client.post(f"/invoices/{paid.id}/payments/new", data=_form(owner, amount="1"), follow_redirects=True)
    assert "nothing left to pay" in _text(again)
    assert len(_payments(owner)) == 1
    assert "Record a payment" not in _text(client.get(f"/invoices/{void.id}"))


def test_v3_two_records_of_the_full_amount_at_once_are_one_payment(app, client, owner):
    invoice = _open_invoice(client, owner)
    invoice_id, form, account_id = invoice.id, _form(owner), owner.account_id
    first, other = app.test_client(), app.test_client()
    login(first, owner)
    login(other, make_user(owner.account_id, Role.PAYMENTS_MANAGER))
    db.session.remove()
    clients = [first, other]
    barrier = threading.Barrier(2)
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def submit(who):
        try:
            with app.app_context():
                barrier.wait()
                response = who.post(f"/invoices/{invoice_id}/payments/new", data=form, follow_redirects=True)
                results.append((response.status_code, _text(response)))
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(who,)) for who in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    texts = [text for _status, text in results]
    assert sum("Manual payment of €93.50 recorded" in text for text in texts) == 1, texts
    assert sum("nothing left to pay" in text for text in texts) == 1, texts
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.account_id == account_id)) == 1
    invoice = _fresh(Invoice, invoice_id)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", 9350)
    assert db.session.scalar(select(func.sum(LedgerEntry.amount_minor))) == 9350


def test_v3_a_manual_payment_is_never_in_a_payout_nor_in_the_balance(client, owner):
    invoice = _open_invoice(client, owner)
    yesterday = (account_today(db.session.get(Account, owner.account_id)) - timedelta(days=20)).isoformat()
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, date=yesterday)).status_code == 303
    account = db.session.get(Account, owner.account_id)
    day = account_today(account) + timedelta(days=30)
    assert balance(owner.account_id, "live", day) == {"available": 0, "pending": 0, "total": 0}
    assert create_payout(account, "live", day) is None
    assert db.session.scalar(select(func.count()).select_from(Payout)) == 0
    entry = db.session.scalars(select(LedgerEntry)).one()
    assert entry.payout_id is None and entry.type == "manual_payment"
    check_payout_invariants(owner.account_id)


def test_v3_only_a_super_admin_changes_or_deletes_and_each_is_audited(app, client, owner):
    invoice = _open_invoice(client, owner)
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner)).status_code == 303
    [payment] = _payments(owner)
    manager = app.test_client()
    login(manager, make_user(owner.account_id, Role.PAYMENTS_MANAGER))
    assert manager.get(f"/invoices/manual-payments/{payment.id}/edit").status_code == 403
    assert manager.post(f"/invoices/manual-payments/{payment.id}/edit",
                        data=_form(owner, amount="10")).status_code == 403
    assert manager.post(f"/invoices/manual-payments/{payment.id}/delete").status_code == 403
    assert "Delete" not in _text(manager.get(f"/invoices/{invoice.id}")).replace("Delete draft", "")
    assert _fresh(Payment, payment.id).amount_minor == 9350
    # The Super admin (the owner) corrects the amount: the invoice owes the rest, the ledger books the difference.
    assert client.get(f"/invoices/manual-payments/{payment.id}/edit").status_code == 200
    response = client.post(f"/invoices/manual-payments/{payment.id}/edit",
                           data=_form(owner, amount="90", method="cheque", reference="CHQ 7"))
    assert response.status_code == 303, _text(response)[:600]
    payment = _fresh(Payment, payment.id)
    assert (payment.amount_minor, payment.manual_method, payment.manual_reference) == (9000, "cheque", "CHQ 7")
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_due_minor) == ("partially_paid", 350)
    assert db.session.scalar(select(func.sum(LedgerEntry.amount_minor))) == 9000
    edited = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.manual_edited")).one()
    assert edited.data["before"]["amount_minor"] == 9350 and edited.data["after"]["amount_minor"] == 9000
    # Too much for what the invoice owes: refused at the field, nothing changes.
    refused = client.post(f"/invoices/manual-payments/{payment.id}/edit", data=_form(owner, amount="93.51"))
    assert refused.status_code == 422 and "at most €93.50" in soup_of(refused).select_one("#f-amount-error").text
    # Deleted: listed as deleted, the invoice open again, the ledger back to nothing.
    assert client.get(f"/invoices/manual-payments/{payment.id}/delete").status_code == 200
    assert client.post(f"/invoices/manual-payments/{payment.id}/delete").status_code == 303
    payment = _fresh(Payment, payment.id)
    assert (payment.status, payment.display_status) == ("deleted", "deleted")
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor) == ("open", 0, 9350)
    assert invoice.number == 1  # open again, not finalized again: the same number
    assert db.session.scalar(select(func.sum(LedgerEntry.amount_minor))) == 0
    deleted = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.manual_deleted")).one()
    assert deleted.data["amount_minor"] == 9000
    # Deleted twice, or edited once deleted: refused, nothing changes.
    client.post(f"/invoices/manual-payments/{payment.id}/delete")
    client.post(f"/invoices/manual-payments/{payment.id}/edit", data=_form(owner, amount="5"))
    assert db.session.scalar(select(func.sum(LedgerEntry.amount_minor))) == 0
    assert _fresh(Invoice, invoice.id).amount_paid_minor == 0


def test_v3_deleting_one_of_two_payments_moves_a_paid_invoice_back_to_partially_paid(client, owner):
    invoice = _open_invoice(client, owner)
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, amount="30")).status_code == 303
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, amount="63.50")).status_code == 303
    assert _fresh(Invoice, invoice.id).status == "paid"
    first, _second = _payments(owner)
    assert client.post(f"/invoices/manual-payments/{first.id}/delete").status_code == 303
    invoice = _fresh(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor) == ("partially_paid", 6350, 3000)


def test_v3_manual_payments_show_as_manual_in_the_index_and_exports_and_cannot_be_refunded(client, owner):
    invoice = _open_invoice(client, owner)
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner)).status_code == 303
    [payment] = _payments(owner)
    index = client.get("/payments/", query_string={"method": "manual"})
    assert index.status_code == 200
    rows = soup_of(index).select("table tbody tr")
    assert len(rows) == 1 and "Manual" in rows[0].get_text(" ")
    assert len(soup_of(client.get("/payments/", query_string={"method": "card"})).select("table tbody tr")) == 0
    detail = _text(client.get(f"/payments/{payment.id}"))
    assert "Manual" in detail
    refund = client.post(f"/payments/{payment.id}/refund", data={"amount": "1", "reason": "requested_by_customer"})
    assert refund.status_code in (409, 422) and "outside Kassa" in _text(refund)
    assert _fresh(Payment, payment.id).refund_reserved_minor == 0


def test_v3_another_merchant_gets_404(app, client, owner):
    invoice = _open_invoice(client, owner)
    assert client.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, amount="10")).status_code == 303
    [payment] = _payments(owner)
    other = app.test_client()
    login(other, make_merchant(company="Someone Else"))
    assert other.get(f"/invoices/{invoice.id}/payments/new").status_code == 404
    assert other.post(f"/invoices/{invoice.id}/payments/new", data=_form(owner, amount="10")).status_code == 404
    assert other.get(f"/invoices/manual-payments/{payment.id}/edit").status_code == 404
    assert other.post(f"/invoices/manual-payments/{payment.id}/delete").status_code == 404
    assert len(_payments(owner)) == 1 and _fresh(Invoice, invoice.id).amount_paid_minor == 1000
