"""Invoices (R5, E4): with Settings → Payments → "Create invoices" on, every payment from a link and every
subscription renewal gets an invoice, numbered without gaps per account (also when payments complete at
once), and the invoice PDF rides along with the receipt email."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, EmailMessage, Invoice, Payment
from kassa.services.platform.counters import next_number
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.billing import (
    BUYER,
    advance,
    buy,
    charges_of,
    frozen,
    subscription_shop,
    write_queued_receipts,
)
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import field_value, item, make_link, pdf_text, subject_of
from tests.support.mailserver import Mailbox
from tests.support.payments import login


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _invoices_on(client, owner) -> None:
    login(client, owner)
    response = client.post("/settings/payments", data={"create_invoices": "1", "retry_days": "1, 3, 5"})
    assert response.status_code == 303
    assert field_value(client.get("/settings/payments"), "create_invoices") is not None
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).create_invoices is True


def _invoices(account_id: int) -> list[Invoice]:
    db.session.rollback()
    return list(db.session.scalars(select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.number)))


def _pdfs(message) -> dict[str, bytes]:
    return {name: data for name, data in Mailbox.attachments_of(message) if name.endswith(".pdf")}


def test_r5_e4_every_link_payment_and_renewal_gets_a_gap_free_invoice_attached_to_its_receipt(client, app,
                                                                                               mailbox):
    with frozen():
        owner, link = subscription_shop("Invoice Shop", frequency="monthly", term_type="fixed", term_count="3",
                                        price="40.00")
        _invoices_on(client, owner)
        one_time = make_link(owner, items=[item("Workshop", "15.00")], name="Workshop")
        sub = buy(client, link)
        assert pay_with_card(client, one_time.slug, email="walk.in@example.com",
                             card_number="5555555555554444").status_code == 303
        advance(owner, to_date=date(2027, 4, 1))

        invoices = _invoices(owner.account_id)
        charges = charges_of(sub)
        assert [i.number for i in invoices] == [1, 2, 3, 4]  # gap-free, in the order payments succeeded
        # V1: a payment's invoice is paid from birth (single path and renewal batch alike), with no lines of its own
        assert all(i.status == "paid" and i.amount_paid_minor == i.amount_minor and i.finalized_at and not i.lines
                   for i in invoices)
        by_payment = {i.payment_id: i for i in invoices}
        assert set(by_payment) == {p.id for p in charges} | {p.id for p in db.session.scalars(
            select(Payment).where(Payment.link_id == one_time.id))}
        for renewal in charges[1:]:
            assert by_payment[renewal.id].subscription_id == sub.id
            assert (by_payment[renewal.id].amount_minor, by_payment[renewal.id].currency) == (4000, "USD")

        run_outbox()
        receipts = [m for m in mailbox.to(BUYER) if "receipt" in subject_of(m).lower()]
        assert len(receipts) == 3
        for payment, message in zip(charges, receipts, strict=True):
            number = f"INV-{by_payment[payment.id].number:06d}"
            pdfs = _pdfs(message)
            assert set(pdfs) == {f"receipt-R-{payment.receipt_number:06d}.pdf", f"invoice-{number}.pdf"}
            text = pdf_text(pdfs[f"invoice-{number}.pdf"])
            assert "Invoice" in text and f"Invoice number {number}" in text
            assert "$40.00" in text
        walk_in = mailbox.to("walk.in@example.com")
        assert any(f"invoice-INV-{by_payment[p.id].number:06d}.pdf" in _pdfs(m)
                   for m in walk_in for p in db.session.scalars(select(Payment).where(Payment.link_id == one_time.id)))


def test_r5_invoice_numbers_are_per_account(client, app):
    with frozen():
        first, first_link = subscription_shop("First", frequency="monthly", term_type="auto_renew")
        second, second_link = subscription_shop("Second", frequency="monthly", term_type="auto_renew")
        for owner in (first, second):
            _invoices_on(client, owner)
            client.post("/logout")
        buy(client, first_link)
        buy(client, second_link, email="other@example.com", card_number="5555555555554444")
        advance(first, to_date=date(2027, 2, 20))
        advance(second, to_date=date(2027, 3, 20))

        assert [i.number for i in _invoices(first.account_id)] == [1, 2]
        assert [i.number for i in _invoices(second.account_id)] == [1, 2, 3]


def test_r5_no_invoice_when_the_setting_is_off(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        buy(client, link)
        advance(owner, to_date=date(2027, 2, 20))

        assert _invoices(owner.account_id) == []
        write_queued_receipts()  # the worker writes renewal receipts
        receipts = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "receipt")).all()
        assert len(receipts) == 2
        assert all([a["renderer"] for a in r.attachments] == ["receipt"] for r in receipts)


def test_r5_e4_invoice_pdf_is_in_the_buyers_language(client, app, mailbox):
    with frozen():
        owner, link = subscription_shop("Fietsenmaker", frequency="monthly", term_type="auto_renew", price="12.00")
        _invoices_on(client, owner)
        buy(client, link, lang="nl")

        run_outbox()
        (message,) = mailbox.to(BUYER)
        pdfs = _pdfs(message)
        text = pdf_text(pdfs["invoice-INV-000001.pdf"])
        assert "Factuur" in text and "Factuurnummer INV-000001" in text
        assert "Nummer betaalbewijs" not in text


def test_r5_only_settings_managers_switch_invoices_on(client, app):
    from kassa.models import Role
    from tests.factories import make_user

    owner = make_merchant()
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, manager)
    assert client.post("/settings/payments", data={"create_invoices": "1", "retry_days": "1"}).status_code == 403
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).create_invoices is False


def test_r5_twenty_concurrent_invoice_numbers_have_no_gap_and_no_duplicate(app):
    owner = make_merchant()
    account_id = owner.account_id
    barrier = threading.Barrier(20)

    def allocate() -> int:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                with write_transaction(db.session):
                    return next_number(account_id, "invoice")
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=20) as pool:
        numbers = [f.result(timeout=120) for f in [pool.submit(allocate) for _ in range(20)]]

    assert sorted(numbers) == list(range(1, 21))
    with write_transaction(db.session):
        assert next_number(account_id, "invoice") == 21
        assert next_number(make_merchant().account_id, "invoice") == 1  # every account counts from 1


def test_r5_a_rolled_back_payment_gives_its_invoice_number_back(app):
    owner = make_merchant()
    with pytest.raises(RuntimeError), write_transaction(db.session):
        assert next_number(owner.account_id, "invoice") == 1
        raise RuntimeError("the payment's transaction failed")
    with write_transaction(db.session):
        assert next_number(owner.account_id, "invoice") == 1
