"""Bank debit (ACH) checkout: Processing at submit, settled 4 business days later by the tick (T4, C3, E2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Mandate, Payment, PaymentAttempt, PaymentStatus, TimelineEntry
from kassa.services.platform.ticks import run_tick
from tests.support.app import page_text, run_outbox
from tests.support.checkout import pay_with_ach, signed_test_path, start_checkout, submit_checkout
from tests.support.checkout_flow import (
    T4_ACCOUNTS,
    count,
    deactivate,
    emails,
    field_error,
    make_link,
    make_shop,
    only_payment,
    pdf_attachment,
    pdf_text,
    sandbox_charges,
    soup_of,
    subject_of,
)
from tests.support.mailserver import Mailbox

# Thursday 4 March 2027, 10:00 UTC (no US holiday near): 4 business days later is Wednesday 10 March,
# across a weekend, so calendar days and business days differ.
SUBMITTED = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)
AFTER_3_BUSINESS_DAYS = datetime(2027, 3, 9, 23, 0, tzinfo=UTC)  # Tuesday evening: 5 calendar days on
AFTER_4_BUSINESS_DAYS = datetime(2027, 3, 10, 10, 1, tzinfo=UTC)  # Wednesday, just past settlement
BUYER = "bank.buyer@example.com"


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def shop(app):
    return make_shop("Bakkerij Brood", allow_ach=True)


def _tick() -> None:
    report = run_tick()
    assert report.failed == {}, report.failed


def _status(payment_id: int) -> str:
    db.session.rollback()
    return db.session.get(Payment, payment_id).status


@pytest.mark.parametrize(("account_number", "final", "code", "reason"), T4_ACCOUNTS, ids=[a[0] for a in T4_ACCOUNTS])
def test_t4_bank_debit_processes_for_4_business_days_then_settles_with_its_outcome(
        client, shop, mailbox: Mailbox, account_number, final, code, reason):
    _owner, link = shop
    with time_machine.travel(SUBMITTED):
        response = pay_with_ach(client, link.slug, account_number=account_number, email=BUYER)
        assert response.status_code == 303, field_error(response, "account_number")
        payment = only_payment()
        assert (payment.status, payment.method, payment.bank_last4, payment.mode) == (
            "processing", "ach", account_number[-4:], "test")
        assert payment.card_last4 is None and payment.receipt_number is None
        processing_page = page_text(client.get(response.checkout_path))
        assert "Thank you! Your bank payment is processing." in processing_page
        assert f"•••• {account_number[-4:]}" in processing_page
        run_outbox()
        assert [subject_of(m) for m in mailbox.to(BUYER)] == ["Your bank payment to Bakkerij Brood is processing"]

    with time_machine.travel(AFTER_3_BUSINESS_DAYS):
        _tick()
        assert _status(payment.id) == "processing"
        run_outbox()
        assert len(mailbox.to(BUYER)) == 1

    with time_machine.travel(AFTER_4_BUSINESS_DAYS):
        _tick()
        db.session.rollback()
        settled = db.session.get(Payment, payment.id)
        assert settled.status == final
        assert settled.failure_code == code
        assert settled.failure_message == reason
        run_outbox()
        messages = mailbox.to(BUYER)
        assert len(messages) == 2
        latest = messages[-1]
        confirmation = page_text(client.get(response.checkout_path))
        if final == "succeeded":
            assert settled.receipt_number == 1
            assert subject_of(latest) == "Your receipt from Bakkerij Brood (R-000001)"
            assert "$25.00" in pdf_text(pdf_attachment(latest))
            # H8: four days on, the paying browser's hour is long over: no personal data, just the outcome.
            assert "This payment is complete" in confirmation and BUYER not in confirmation
        else:
            assert settled.receipt_number is None
            assert subject_of(latest) == "Your bank payment to Bakkerij Brood didn't go through"
            assert reason in Mailbox.text_of(latest)
            assert "The payment didn't go through" in confirmation and reason in confirmation
        kinds = set(db.session.scalars(select(TimelineEntry.kind).where(TimelineEntry.payment_id == payment.id)))
        assert {"payment.submitted", f"payment.{final}"} <= kinds

        # The tick is idempotent: running it again changes nothing and sends nothing.
        _tick()
        run_outbox()
        assert len(mailbox.to(BUYER)) == 2
        assert _status(payment.id) == final
    assert sandbox_charges() == 1


def test_t4_b9_settlement_follows_real_time_not_a_test_clock(client, shop):
    """B9: a test bank debit settles on real time (no account test clock moves test payments)."""
    _owner, link = shop
    with time_machine.travel(SUBMITTED):
        pay_with_ach(client, link.slug)
        payment = only_payment()
    with time_machine.travel(AFTER_4_BUSINESS_DAYS):  # Wednesday 10 March, just past settlement
        _tick()
        assert _status(payment.id) == PaymentStatus.SUCCEEDED.value


def test_t4_bank_debit_stores_the_accepted_mandate(client, shop):
    _owner, link = shop
    response = pay_with_ach(client, link.slug, account_holder_name="Bram Koper")

    assert response.status_code == 303
    mandate = db.session.scalar(select(Mandate))
    payment = only_payment()
    assert mandate.payment_id == payment.id
    assert (mandate.bank_last4, mandate.routing_number, mandate.account_holder_name) == (
        "6789", "110000000", "Bram Koper")
    assert "Bakkerij Brood" in mandate.text and "$25.00" in mandate.text
    assert mandate.ip == "127.0.0.1"
    assert mandate.accepted_at is not None


def test_c3_bank_debit_without_the_authorization_is_refused_at_the_checkbox(client, shop):
    _owner, link = shop
    response = pay_with_ach(client, link.slug, ach_mandate=None)

    assert response.status_code == 422
    assert field_error(response, "ach_mandate") == "To pay by bank debit, accept the debit authorization."
    assert count(PaymentAttempt) == 0 and sandbox_charges() == 0


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"routing_number": "11000000"}, "routing_number", "Your routing number is incomplete."),
    ({"routing_number": "110000001"}, "routing_number", "Your routing number is invalid."),
    ({"account_number": "12"}, "account_number", "Your account number is incomplete."),
    ({"account_holder_name": ""}, "account_holder_name", "Enter the account holder's name."),
])
def test_c3_bank_details_format_error_at_the_field_and_nothing_charged(client, shop, overrides, field, message):
    _owner, link = shop
    response = pay_with_ach(client, link.slug, **overrides)

    assert response.status_code == 422
    assert field_error(response, field) == message
    assert count(PaymentAttempt) == 0 and sandbox_charges() == 0


def test_t1_a_bank_account_that_is_not_a_test_account_is_refused(client, shop):
    _owner, link = shop
    response = pay_with_ach(client, link.slug, account_number="000999999999")

    assert response.status_code == 422
    assert field_error(response, "account_number") == "Use a test bank account in test mode."
    assert count(Payment) == 0 and sandbox_charges() == 0


def test_c3_checkout_offers_card_and_bank_account_when_both_are_allowed(client, shop):
    _owner, link = shop
    page = soup_of(client.get(start_checkout(client, link.slug)))

    methods = {node["value"] for node in page.select('input[name="method"][type="radio"]')}
    assert methods == {"card", "ach"}
    assert page.find(id="mandate-text") is not None
    assert "Bakkerij Brood" in page.find(id="mandate-text").get_text()


def test_l11_bank_debit_is_not_offered_for_recurring_items(client, app):
    from tests.support.checkout_flow import item

    owner, _link = make_shop("Abonnementen")
    recurring = make_link(owner, items=[item("Box", "10.00", frequency="monthly")])
    path = start_checkout(client, recurring.slug)

    page = soup_of(client.get(path))
    assert page.select('input[name="method"][value="ach"]') == []
    refused = submit_checkout(client, path, method="ach", routing_number="110000000",
                              account_number="000123456789", account_holder_name="A", ach_mandate="1")
    assert refused.status_code == 422
    assert count(Payment) == 0


def test_e2_bank_debit_emails_go_through_the_outbox_in_order(client, shop, mailbox):
    _owner, link = shop
    with time_machine.travel(SUBMITTED):
        pay_with_ach(client, link.slug, email=BUYER)
    with time_machine.travel(AFTER_4_BUSINESS_DAYS):
        _tick()
        run_outbox()
    assert [e.kind for e in emails() if BUYER in e.to_addrs] == ["ach_processing", "receipt"]
    assert [subject_of(m).split(" (")[0] for m in mailbox.to(BUYER)] == [
        "Your bank payment to Bakkerij Brood is processing", "Your receipt from Bakkerij Brood"]


def _start_again(response):
    return soup_of(response).find("a", string=lambda s: s and "Start again" in s)


def test_c5_failed_bank_debit_offers_a_fresh_checkout_to_pay_another_way(client, shop):
    owner, link = shop
    with time_machine.travel(SUBMITTED):
        paid = pay_with_ach(client, link.slug, account_number="000222222227")
        assert _start_again(client.get(paid.checkout_path)) is None  # still processing: nothing to redo
    with time_machine.travel(AFTER_4_BUSINESS_DAYS):
        _tick()
        failed = client.get(paid.checkout_path)
        assert "The payment didn't go through" in page_text(failed)
        assert "You can start again and pay another way." in page_text(failed)
        again = _start_again(failed)
        assert again is not None and again["href"] == signed_test_path(link.slug)

        restarted = client.get(again["href"])
        assert restarted.status_code == 303
        new_path = restarted.headers["Location"]
        assert new_path != paid.checkout_path
        assert client.get(new_path).status_code == 200
        assert submit_checkout(client, new_path).status_code == 303  # by card this time
        assert count(Payment, Payment.status == "succeeded") == 1

        deactivate(owner, link)  # a link that stopped taking payments offers no new checkout
        closed = client.get(paid.checkout_path)
        assert "The payment didn't go through" in page_text(closed) and _start_again(closed) is None


def test_c5_paid_checkouts_offer_no_start_again(client, shop):
    _owner, link = shop
    paid = pay_with_ach(client, link.slug, account_number="000123456789")
    with time_machine.travel(AFTER_4_BUSINESS_DAYS):
        _tick()
        page = client.get(paid.checkout_path)
    assert "This payment is complete" in page_text(page)  # H8: the payer's hour is over, the outcome shows
    assert _start_again(page) is None
