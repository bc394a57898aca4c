"""V5: Settings → Payments → "Create an invoice for every payment" (a WTForms checkbox). With it on, every payment
from a payment link, a subscription (its first payment and each renewal) and a quote (Payment.source "quote")
creates a paid, numbered invoice, attached as a PDF to the buyer's receipt (E4); with it off, none does and the
receipt goes alone. A payment of a merchant's own invoice always carries that invoice and never gets a second one.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, EmailMessage, Invoice, Payment, PaymentStatus
from kassa.services.payments.payment_states import move_payment
from tests.factories import make_payment
from tests.support.app import run_outbox
from tests.support.billing import BUYER, advance, buy, charges_of, frozen, subscription_shop
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link, pdf_text
from tests.support.mailserver import Mailbox
from tests.support.payments import login, soup_of


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _setting(client, owner, on: bool, *, log_in: bool = True) -> None:
    if log_in:
        login(client, owner)
    page = soup_of(client.get("/settings/payments"))
    label = page.select_one("label[for='f-create_invoices']")
    assert label is not None and "Create an invoice for every payment" in label.get_text()
    data = {"retry_days": "1, 3, 5", **({"create_invoices": "1"} if on else {})}
    assert client.post("/settings/payments", data=data).status_code == 303
    box = soup_of(client.get("/settings/payments")).select_one("#f-create_invoices")
    assert box.has_attr("checked") is on
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).create_invoices is on


def _quote_payment(account_id: int) -> Payment:
    """A quote's payment (V4 is built beside this: its source is "quote") reaching succeeded through the one
    payment state machine, as every payment does."""
    payment = make_payment(account_id, status="processing", source="quote", email="quote.buyer@example.com",
                           amount_minor=12000, currency="USD", receipt_number=None)
    with write_transaction(db.session):
        payment = db.session.get(Payment, payment.id)
        assert move_payment(payment, PaymentStatus.SUCCEEDED, at=now())
    db.session.rollback()
    return db.session.get(Payment, payment.id)


def _attachments(mailbox, address: str) -> list[list[str]]:
    return [sorted(name for name, _data in Mailbox.attachments_of(m)) for m in mailbox.to(address)]


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_v5_links_subscriptions_and_quotes_create_a_paid_invoice_per_payment_only_with_the_setting_on(
        client, app, mailbox, on):
    with frozen():
        owner, link = subscription_shop("Setting Shop", frequency="monthly", term_type="fixed", term_count="3",
                                        price="40.00")
        _setting(client, owner, on)
        one_time = make_link(owner, items=[item("Workshop", "15.00")], name="Workshop")
        sub = buy(client, link)  # the subscription's first payment
        assert pay_with_card(client, one_time.slug, email="walk.in@example.com",
                             card_number="5555555555554444").status_code == 303
        advance(owner, to_date=date(2027, 2, 20))  # one renewal
        quote = _quote_payment(owner.account_id)

        db.session.rollback()
        payments = list(db.session.scalars(select(Payment).where(Payment.account_id == owner.account_id,
                                                                 Payment.status == "succeeded")))
        assert len(payments) == 4 and {p.source for p in payments} >= {"payment_link", "quote"}
        assert len(charges_of(sub)) == 2
        invoices = {i.payment_id: i for i in db.session.scalars(select(Invoice).where(
            Invoice.account_id == owner.account_id))}
        if not on:
            assert invoices == {}
        else:
            assert set(invoices) == {p.id for p in payments}
            assert sorted(i.number for i in invoices.values()) == [1, 2, 3, 4]
            for payment in payments:
                invoice = invoices[payment.id]
                assert (invoice.status, invoice.amount_minor, invoice.amount_paid_minor) == (
                    "paid", payment.amount_minor, payment.amount_minor)
            assert invoices[quote.id].amount_minor == 12000

        run_outbox()
        from tests.support.billing import write_queued_receipts
        write_queued_receipts()
        run_outbox()
        for address in (BUYER, "walk.in@example.com", "quote.buyer@example.com"):
            receipts = [names for names in _attachments(mailbox, address) if any(n.startswith("receipt-")
                                                                                  for n in names)]
            assert receipts, address
            for names in receipts:
                has_invoice = any(n.startswith("invoice-INV-") for n in names)
                assert has_invoice is on, (address, names)
        if on:
            [quote_receipt] = [names for names in _attachments(mailbox, "quote.buyer@example.com")]
            name = f"invoice-INV-{invoices[quote.id].number:06d}.pdf"
            assert name in quote_receipt
            [message] = mailbox.to("quote.buyer@example.com")
            pdf = dict(Mailbox.attachments_of(message))[name]
            assert "Invoice" in pdf_text(pdf) and "$120.00" in pdf_text(pdf)
    assert db.session.scalar(select(EmailMessage.id).where(EmailMessage.kind == "receipt").limit(1)) is not None


def test_v5_the_setting_is_the_merchants_own_and_a_hostile_value_is_read_as_unchecked(client, app):
    from tests.factories import make_merchant

    owner, other = make_merchant(company="Mine"), make_merchant(company="Theirs")
    _setting(client, owner, True)
    assert db.session.get(Account, other.account_id).create_invoices is False  # another account: untouched
    # A hostile value (not the checkbox's "1") is read as unchecked: a flag, never stored as posted.
    assert client.post("/settings/payments", data={"create_invoices": ["<script>", "1"],
                                                   "retry_days": "1, 3, 5"}).status_code == 303
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).create_invoices is False
    _setting(client, owner, True, log_in=False)
    # Bad retry days: the error at its field, and the invoice setting is not changed either.
    response = client.post("/settings/payments", data={"retry_days": "soon"})
    assert response.status_code == 422
    assert soup_of(response).select_one("#f-retry_days-error") is not None
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).create_invoices is True
