"""V2 Send and pay: an open invoice emailed to its customer in their language, with the invoice PDF attached and
a pay link; the public pay page (signed token) opens Kassa's checkout for exactly the amount due; paying moves the
invoice to paid through its state machine, the payment belongs to the invoice, contact and company, and the
receipt carries the invoice PDF. A paid or void invoice can't be paid (again); two buyers at once are one charge;
another merchant's invoice is a 404."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import (
    AuditEvent,
    CheckoutSession,
    Contact,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Payment,
    PaymentAttempt,
)
from kassa.processors import registry
from kassa.services.checkout.invoice_checkout import pay_token
from tests.factories import make_merchant
from tests.support.app import extract_link, run_outbox
from tests.support.checkout import buyer_form, path_of
from tests.support.checkout_flow import count, pdf_text, sandbox_charges
from tests.support.invoices import editor_form
from tests.support.payments import login, soup_of


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def owner(app, client):
    # Invoices are paid in live mode: a live processor that behaves like the sandbox (no Stripe in tests).
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def _open_invoice(client, owner, **overrides) -> Invoice:
    assert client.post("/invoices/new", data=editor_form(**overrides)).status_code == 303
    db.session.rollback()
    invoice = db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                                 .order_by(Invoice.id.desc())).first()
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    db.session.rollback()
    return db.session.get(Invoice, invoice.id)


def _fresh(invoice: Invoice) -> Invoice:
    db.session.rollback()
    return db.session.get(Invoice, invoice.id)


def _pay_path(invoice: Invoice) -> str:
    return f"/invoice/{pay_token(invoice)}"


def _open_checkout(buyer, invoice: Invoice) -> str:
    """The pay page's button: a 303 to the invoice's own checkout session."""
    response = buyer.post(f"{_pay_path(invoice)}/pay")
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    path = path_of(response.headers["Location"])
    assert path.startswith("/checkout/")
    return path


def _text(response) -> str:
    return " ".join(soup_of(response).get_text(" ").split())


def test_v2_send_emails_the_invoice_pdf_and_a_working_pay_link_in_the_customers_language(app, client, owner,
                                                                                         mailbox):
    invoice = _open_invoice(client, owner)  # customer Anna, language nl, 93.50 EUR
    assert client.post(f"/invoices/{invoice.id}/send").status_code == 303
    assert _fresh(invoice).sent_at is not None
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "invoice.sent")) == "invoice.sent"
    run_outbox()
    [message] = mailbox.to("anna@example.com")
    page = _text(client.get(f"/invoices/{invoice.id}"))
    assert "Send again" in page and "Pay link" in page
    subject = message["Subject"]
    assert "Factuur" in subject and "Fietsenmaker" in subject, subject  # Dutch: the customer's language
    [(filename, pdf)] = mailbox.attachments_of(message)
    assert filename.startswith("invoice-") and filename.endswith(".pdf")
    text = pdf_text(pdf)
    assert "93,50" in text and "Bicycle repair" in text
    body = mailbox.text_of(message)
    assert "93,50" in body
    link = extract_link(body, "/invoice/")
    assert link == _pay_path(invoice)
    buyer = app.test_client()
    pay_page = buyer.get(link)
    assert pay_page.status_code == 200 and pay_page.headers["Cache-Control"] == "private, no-store"
    assert "Betaal € 93,50" in _text(pay_page)  # the button, in Dutch
    download = buyer.get(soup_of(pay_page).select_one("a[download]")["href"])  # the same PDF, from the page
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert "93,50" in pdf_text(download.get_data())


def test_v2_paying_opens_the_checkout_for_exactly_the_amount_due_and_marks_the_invoice_paid(app, client, owner,
                                                                                           mailbox):
    invoice = _open_invoice(client, owner)
    buyer = app.test_client()
    checkout_path = _open_checkout(buyer, invoice)
    page = buyer.get(checkout_path, query_string={"lang": "en"})
    text = _text(page)
    assert "Pay €93.50" in text
    assert soup_of(page).select_one("#f-email")["value"] == "anna@example.com"  # the customer's address
    assert not soup_of(page).select("#f-qty_0, #f-price_0, #f-promo")  # nothing the buyer can change
    # A hostile form: a quantity, a typed price and a promo code are ignored; the invoice's amount is charged.
    response = buyer.post(checkout_path, data=buyer_form(email="someone.else@example.com", qty_0="5",
                                                         price_0="1.00", promo="FREE"))
    assert response.status_code == 303, _text(response)[:1000]
    [payment] = db.session.scalars(select(Payment)).all()
    invoice = _fresh(invoice)
    assert (payment.amount_minor, payment.currency, payment.status) == (9350, "EUR", "succeeded")
    assert (payment.source, payment.invoice_id, payment.link_id) == ("invoice", invoice.id, None)
    # The invoice's customer and company, whoever typed the email.
    assert (payment.contact_id, payment.company_id) == (invoice.contact_id, invoice.company_id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor) == ("paid", 9350, 0)
    assert sandbox_charges() == 1 and count(LedgerEntry) > 0
    # The receipt carries the invoice PDF (E4), and no second (R5) invoice was made.
    run_outbox()
    [receipt] = [m for m in mailbox.to("someone.else@example.com")]
    names = [name for name, _pdf in mailbox.attachments_of(receipt)]
    assert len(names) == 2 and any(name.startswith("invoice-") for name in names), names
    assert count(Invoice) == 1
    # The merchant sees it paid, with its payment.
    detail = _text(client.get(f"/invoices/{invoice.id}"))
    assert "Paid" in detail and "Payments" in detail and "Pay link" not in detail


def test_v2_a_paid_invoice_says_so_politely_and_cannot_be_paid_twice(app, client, owner):
    invoice = _open_invoice(client, owner, language="en")
    buyer = app.test_client()
    first = _open_checkout(buyer, invoice)
    second = _open_checkout(buyer, invoice)  # a second tab, opened before the first paid
    assert buyer.post(first, data=buyer_form()).status_code == 303
    page = buyer.get(_pay_path(invoice))
    assert "This invoice is paid" in _text(page) and not soup_of(page).select("button.pay")
    refused = buyer.post(f"{_pay_path(invoice)}/pay")
    assert refused.status_code == 409 and "This invoice is paid" in _text(refused)
    late = buyer.post(second, data=buyer_form())  # the tab opened earlier: refused before any charge
    assert late.status_code == 409 and "This invoice is paid" in _text(late)
    assert count(Payment) == 1 and sandbox_charges() == 1
    assert count(CheckoutSession) == 2


def test_v2_a_void_invoice_cannot_be_paid_even_from_a_checkout_opened_before(app, client, owner):
    invoice = _open_invoice(client, owner, language="en")
    buyer = app.test_client()
    checkout_path = _open_checkout(buyer, invoice)
    assert client.post(f"/invoices/{invoice.id}/void", data={"reason": "Wrong customer"}).status_code == 303
    assert _fresh(invoice).status == InvoiceStatus.VOID.value
    page = buyer.get(_pay_path(invoice))
    assert "This invoice was cancelled" in _text(page) and not soup_of(page).select("button.pay")
    assert buyer.post(f"{_pay_path(invoice)}/pay").status_code == 409
    response = buyer.post(checkout_path, data=buyer_form())
    assert response.status_code == 409 and "cancelled" in _text(response)
    assert count(Payment) == 0 and count(PaymentAttempt) == 0 and sandbox_charges() == 0
    # Sending a void invoice is refused too.
    client.post(f"/invoices/{invoice.id}/send")
    assert count(Payment) == 0 and _fresh(invoice).sent_at is None


def test_v2_another_merchants_invoice_is_a_404_and_tokens_cannot_be_forged(app, client, owner):
    invoice = _open_invoice(client, owner)
    other = app.test_client()
    login(other, make_merchant(company="Someone Else"))
    assert other.get(f"/invoices/{invoice.id}").status_code == 404
    assert other.post(f"/invoices/{invoice.id}/send").status_code == 404
    assert _fresh(invoice).sent_at is None
    anyone = app.test_client()
    token = pay_token(invoice)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "1", "MQ.bogus", token + "x"):
        assert anyone.get(f"/invoice/{bad}").status_code == 404
        assert anyone.post(f"/invoice/{bad}/pay").status_code == 404
        assert anyone.get(f"/invoice/{bad}/pdf").status_code == 404
    # A draft has no pay page yet (it has no number and may still change).
    assert client.post("/invoices/new", data=editor_form()).status_code == 303
    draft = db.session.scalars(select(Invoice).where(Invoice.status == "draft")).one()
    assert anyone.get(_pay_path(draft)).status_code == 404
    assert client.post(f"/invoices/{draft.id}/send").status_code == 303  # refused with a message
    assert _fresh(draft).sent_at is None
    assert count(CheckoutSession) == 0


def test_v2_two_buyers_paying_one_invoice_at_once_are_one_charge(app, client, owner):
    invoice = _open_invoice(client, owner, language="en")
    buyers = [app.test_client() for _ in range(4)]
    paths = [_open_checkout(buyer, invoice) for buyer in buyers]  # four checkout sessions of one invoice
    cards = ["4242424242424242", "5555555555554444", "6011111111111117", "3566002020360505"]
    barrier = threading.Barrier(len(paths))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(buyer, path: str, number: str, ip: str):
        try:
            with app.app_context():
                barrier.wait()
                statuses.append(buyer.post(path, data=buyer_form(card_number=number),
                                           environ_base={"REMOTE_ADDR": ip}).status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(buyer, path, number, f"10.8.0.{i}"))
               for i, (buyer, path, number) in enumerate(zip(buyers, paths, cards, strict=True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(statuses) == [303] + [409] * (len(paths) - 1), statuses
    assert count(Payment) == 1 and sandbox_charges() == 1
    invoice = _fresh(invoice)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", invoice.amount_minor)


def test_v2_the_pay_page_follows_the_customers_language_and_the_buyers_choice(app, client, owner):
    invoice = _open_invoice(client, owner, language="fr")
    buyer = app.test_client()
    assert "Payer 93,50" in _text(buyer.get(_pay_path(invoice))).replace("\u202f", " ")
    english = _text(buyer.get(_pay_path(invoice), query_string={"lang": "en"}))
    assert "Pay €93.50" in english and "Due date" in english
    contact = db.session.get(Contact, invoice.contact_id)
    assert contact.language == "fr"


def test_v2_partial_payments_when_the_merchant_allows_them(app, client, owner):
    invoice = _open_invoice(client, owner, language="en", allow_partial="y")
    assert invoice.allow_partial
    buyer = app.test_client()
    stale = _open_checkout(buyer, invoice)  # opened while 93.50 was due
    first = _open_checkout(buyer, invoice)
    too_much = buyer.post(first, data=buyer_form(price_0="93.51"))
    assert too_much.status_code == 422 and count(Payment) == 0  # never more than is due
    assert buyer.post(first, data=buyer_form(price_0="50.00")).status_code == 303
    invoice = _fresh(invoice)
    assert (invoice.status, invoice.amount_paid_minor, invoice.amount_due_minor) == ("partially_paid", 5000, 4350)
    assert "€43.50" in _text(buyer.get(_pay_path(invoice)))
    # The tab opened before would pay 93.50 of the 43.50 still due: refused before any charge.
    late = buyer.post(stale, data=buyer_form(price_0="93.50"))
    assert late.status_code == 409 and count(Payment) == 1
    rest = _open_checkout(buyer, invoice)
    assert buyer.post(rest, data=buyer_form(price_0="43.50")).status_code == 303
    invoice = _fresh(invoice)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", 9350)
    assert [p.amount_minor for p in db.session.scalars(select(Payment).order_by(Payment.id))] == [5000, 4350]
    assert sandbox_charges() == 2


def test_v2_without_partial_payments_a_typed_amount_is_ignored(app, client, owner):
    invoice = _open_invoice(client, owner, language="en")
    assert not invoice.allow_partial
    buyer = app.test_client()
    assert buyer.post(_open_checkout(buyer, invoice), data=buyer_form(price_0="1.00")).status_code == 303
    assert db.session.scalar(select(Payment.amount_minor)) == 9350 and _fresh(invoice).status == "paid"


def test_v2_reminders_before_and_after_the_due_date_once_each_in_the_customers_language(app, client, owner):
    import time_machine

    from kassa.models import Account, EmailMessage
    from kassa.services.checkout.invoice_sending import send_reminders

    settings = {"retry_days": "1, 3, 5", "invoice_reminder_days_before": "3", "invoice_reminder_days_after": "7"}
    assert client.post("/settings/payments", data=settings).status_code == 303
    account = db.session.get(Account, owner.account_id)
    assert (account.invoice_reminder_days_before, account.invoice_reminder_days_after) == (3, 7)
    bad = client.post("/settings/payments", data={**settings, "invoice_reminder_days_after": "-1"})
    assert bad.status_code == 422 and "from 0 to 60" in _text(bad)
    invoice = _open_invoice(client, owner)  # due 2026-12-31, customer in Dutch
    paid = _open_invoice(client, owner, customer_email="paid@example.com")
    buyer = app.test_client()
    assert buyer.post(_open_checkout(buyer, paid), data=buyer_form()).status_code == 303

    def reminders() -> list[EmailMessage]:
        db.session.rollback()
        return list(db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "invoice_reminder")
                                       .order_by(EmailMessage.id)))

    with time_machine.travel("2026-12-27 12:00Z"):  # 4 days before: not yet
        send_reminders()
    assert reminders() == []
    with time_machine.travel("2026-12-28 12:00Z"):  # 3 days before: once, however often the tick runs
        send_reminders()
        send_reminders()
    [before] = reminders()
    assert before.to_addrs == ["anna@example.com"] and before.related_id == invoice.id
    assert "Herinnering" in before.subject and "/invoice/" in before.text_body
    assert [a["renderer"] for a in before.attachments] == ["invoice"]
    with time_machine.travel("2027-01-06 12:00Z"):  # 6 days overdue: not yet
        send_reminders()
    assert len(reminders()) == 1
    with time_machine.travel("2027-01-07 12:00Z"):
        send_reminders()
        send_reminders()
    assert [m.related_id for m in reminders()] == [invoice.id, invoice.id]
    assert "achterstallig" in reminders()[-1].subject.lower() or "verlopen" in reminders()[-1].subject.lower()


def test_v2_a_bank_debit_on_its_way_blocks_a_second_payment_and_voiding_then_pays_the_invoice(app, client, owner):
    import time_machine

    from kassa.services.platform.ticks import run_tick

    invoice = _open_invoice(client, owner, language="en", currency="USD")
    buyer = app.test_client()
    with time_machine.travel("2027-03-04 10:00Z"):  # a Thursday: it clears 4 business days later
        assert buyer.post(_open_checkout(buyer, invoice), data=buyer_form("ach")).status_code == 303
        payment = db.session.scalars(select(Payment)).one()
        assert (payment.status, payment.method, payment.invoice_id) == ("processing", "ach", invoice.id)
        assert _fresh(invoice).status == "open"  # counted only once the debit clears
        again = buyer.post(_open_checkout(buyer, invoice), data=buyer_form())
        assert again.status_code == 409 and "already on its way" in _text(again)
        client.post(f"/invoices/{invoice.id}/void", data={"reason": "Changed my mind"})
        assert _fresh(invoice).status == "open" and count(Payment) == 1 and sandbox_charges() == 1
    with time_machine.travel("2027-03-10 10:01Z"):
        assert run_tick().failed == {}
    db.session.rollback()
    assert db.session.get(Payment, payment.id).status == "succeeded"
    invoice = _fresh(invoice)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", 9350)


def test_v2_the_payment_panel_names_the_invoice_it_paid(app, client, owner):
    invoice = _open_invoice(client, owner, language="en")
    buyer = app.test_client()
    assert buyer.post(_open_checkout(buyer, invoice), data=buyer_form()).status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    panel = soup_of(client.get(f"/payments/{payment.id}")).select_one("#card-invoice")
    text = " ".join(panel.get_text(" ").split())
    assert "INV-" in text and "Paid in full" in text and "€93.50" in text
    assert panel.select_one(f"a[href='/invoices/{invoice.id}']") is not None
    assert client.get(panel.select_one("a[download]")["href"]).status_code == 200  # the invoice PDF


def test_v2_an_expired_invoice_checkout_starts_again_from_the_invoice(app, client, owner):
    from datetime import timedelta

    import time_machine

    from kassa.clock import now

    invoice = _open_invoice(client, owner, language="en")
    buyer = app.test_client()
    checkout_path = _open_checkout(buyer, invoice)
    with time_machine.travel(now() + timedelta(hours=25)):
        expired = buyer.get(checkout_path)
        assert expired.status_code == 410
        again = soup_of(expired).select_one("a.pay")["href"]
        assert path_of(again) == _pay_path(invoice)
        assert buyer.post(checkout_path, data=buyer_form()).status_code == 303  # back to the expired page
    assert count(Payment) == 0 and sandbox_charges() == 0
