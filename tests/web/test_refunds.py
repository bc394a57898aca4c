"""Refunds (F1–F5, A1, A2): the dialog, its rules and messages, statuses through settlement, audit and email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, AuditEvent, EmailMessage, Payment, Role, Subscription, User
from tests.factories import make_merchant, make_payment, make_user
from tests.support.app import run_outbox
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import field_error, item, make_link, only_payment, plain, subject_of
from tests.support.payments import (
    REFUND_FAILS_CARD,
    advance,
    login,
    refunds_of,
    reload,
    row_ids,
    sandbox_payment,
    soup_of,
    table_rows,
    text_of,
)


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _dialog(client, payment_id: int):
    response = client.get(f"/payments/{payment_id}/refund")
    assert response.status_code == 200
    return response


def _key(response) -> str:
    return soup_of(response).select_one('input[name="key"]')["value"]


def _refund(client, payment_id: int, amount: str, reason: str = "requested_by_customer", note: str = "",
            key: str | None = None, **headers):
    key = key or _key(_dialog(client, payment_id))
    return client.post(f"/payments/{payment_id}/refund", data={"amount": amount, "reason": reason, "note": note,
                                                               "key": key}, headers=headers)


def _panel_status(client, payment_id: int) -> str:
    panel = soup_of(client.get(f"/payments/{payment_id}"))
    return text_of(panel.select_one(".pp__amount .badge"))


def _index_status(client, payment_id: int) -> str:
    response = client.get("/payments/")
    return dict(zip(row_ids(response), (r["Status"] for r in table_rows(response)), strict=True))[payment_id]


@pytest.fixture
def owner(client):
    owner = make_merchant()
    login(client, owner)
    return owner


# -- F1 the dialog and the rules --------------------------------------------------------------------


def test_f1_refund_dialog_is_prefilled_with_the_remainder_and_shows_the_fee_note(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=2000)  # fee 2.9 % + 30 = $0.88
    dialog = soup_of(_dialog(client, payment.id))
    assert dialog.select_one("#f-amount")["value"] == "20.00"
    assert dialog.select_one("#f-reason option[selected]")["value"] == "requested_by_customer"
    assert {o["value"] for o in dialog.select("#f-reason option")} == {
        "requested_by_customer", "duplicate", "fraudulent", "other"}
    # F5: the processing fee is not returned, and the note names it.
    assert "The processing fee of $0.88 is not returned." in text_of(dialog)
    assert payment.fee_minor == 88
    assert "billing continues" not in text_of(dialog)

    assert _refund(client, payment.id, "5.00").status_code == 303
    again = soup_of(_dialog(client, payment.id))
    assert again.select_one("#f-amount")["value"] == "15.00"
    assert "Up to $15.00 can still be refunded" in text_of(again)


def test_f1_full_and_partial_refunds(client, owner):
    full = sandbox_payment(owner.account_id, amount_minor=4200)
    partial = sandbox_payment(owner.account_id, amount_minor=4200)

    done = _refund(client, full.id, "42.00", reason="duplicate")
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/payments/{full.id}")
    assert _refund(client, partial.id, "12.34", reason="fraudulent").status_code == 303

    [r_full], [r_partial] = refunds_of(full.id), refunds_of(partial.id)
    assert (r_full.amount_minor, r_full.reason, r_full.status, r_full.created_by_id) == (
        4200, "duplicate", "pending", owner.id)
    assert (r_partial.amount_minor, r_partial.reason) == (1234, "fraudulent")
    assert r_full.processor_ref and r_partial.processor_ref  # the sandbox accepted both
    assert reload(partial.id).refund_reserved_minor == 1234
    # A second partial refund up to the rest, then nothing is left.
    assert _refund(client, partial.id, "29.66").status_code == 303
    assert reload(partial.id).refund_reserved_minor == 4200
    panel = soup_of(client.get(f"/payments/{partial.id}"))
    assert "This payment has been refunded in full." in text_of(panel.select_one(".pp__actions"))


@pytest.mark.parametrize(("amount", "reason", "note", "field", "message"), [
    ("10.00", "", "", "reason", "Choose a reason."),
    ("10.00", "chargeback", "", "reason", "Choose a reason."),
    ("10.00", "other", "  ", "note", "Say why, in a few words."),
    ("10.00", "other", "x" * 501, "note", "Use at most 500 characters."),
    ("0", "duplicate", "", "amount", "Enter an amount greater than zero."),
    ("-5", "duplicate", "", "amount", None),
    ("", "duplicate", "", "amount", "Enter an amount"),
    ("ten", "duplicate", "", "amount", "Enter an amount like"),
    ("50.01", "duplicate", "", "amount", "You can refund at most €50.00."),
    ("10.005", "duplicate", "", "amount", None),
])
def test_f1_refund_rules_each_with_its_message(client, owner, amount, reason, note, field, message):
    payment = sandbox_payment(owner.account_id, amount_minor=5000, currency="EUR")
    response = _refund(client, payment.id, amount, reason=reason, note=note)
    assert response.status_code == 422
    shown = field_error(response, field)
    assert shown, f"no message under {field}"
    if message:
        assert message in shown
    assert refunds_of(payment.id) == []
    assert reload(payment.id).refund_reserved_minor == 0
    # What was typed stays in the form.
    assert soup_of(response).select_one("#f-amount")["value"] == amount


def test_f1_other_with_a_note_is_accepted_and_the_note_shown(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    assert _refund(client, payment.id, "1.00", reason="other", note="Gesture of goodwill").status_code == 303
    panel = text_of(soup_of(client.get(f"/payments/{payment.id}")).select_one("#card-refunds"))
    assert "Other: Gesture of goodwill" in panel


def test_f1_currency_precision_in_the_users_language(client, owner):
    with write_transaction(db.session) as session:
        session.get(User, owner.id).language = "nl"
    payment = sandbox_payment(owner.account_id, amount_minor=5000, currency="EUR")
    # In Dutch the comma is the decimal mark: "1,005" has three decimals, and EUR has two.
    refused = _refund(client, payment.id, "1,005")
    assert refused.status_code == 422 and field_error(refused, "amount")
    assert _refund(client, payment.id, "1,05").status_code == 303
    assert refunds_of(payment.id)[0].amount_minor == 105
    # Zero-decimal and three-decimal currencies.
    yen = sandbox_payment(owner.account_id, amount_minor=5000, currency="JPY")
    assert _refund(client, yen.id, "10,5").status_code == 422
    assert _refund(client, yen.id, "1.000").status_code == 303  # a thousands separator in Dutch
    assert refunds_of(yen.id)[0].amount_minor == 1000
    dinar = sandbox_payment(owner.account_id, amount_minor=5000, currency="KWD")
    assert _refund(client, dinar.id, "1,005").status_code == 303
    assert refunds_of(dinar.id)[0].amount_minor == 1005


@pytest.mark.parametrize(("status", "reason"), [
    ("failed", "Failed payments can't be refunded: nothing was collected."),
    ("processing", "The payment is still processing; it can be refunded once it succeeds."),
])
def test_f1_failed_and_processing_payments_cannot_be_refunded(client, owner, status, reason):
    payment = make_payment(owner.account_id, status=status, method="ach")
    panel = soup_of(client.get(f"/payments/{payment.id}"))
    if status == "failed":  # B2: a failed payment's panel offers no refund (nor receipt) at all
        assert panel.find(string="Refund") is None and panel.select_one(".pp__actions") is None
    else:
        actions = panel.select_one(".pp__actions")
        assert actions.find("a", string="Refund") is None
        assert actions.select_one('[aria-disabled="true"]').get_text(strip=True) == "Refund"
        assert text_of(panel.select_one("#refund-why")) == reason
    response = _refund(client, payment.id, "1.00")
    assert response.status_code == 422
    assert reason in field_error(response, "amount")
    assert refunds_of(payment.id) == []


def test_f4_b9_ach_refunds_only_within_180_days_on_real_time(client):
    start = datetime(2026, 1, 5, 15, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        owner = make_merchant()
        login(client, owner)  # sessions are signed with the time: log in on the travelled clock
        payment = sandbox_payment(owner.account_id, amount_minor=10_000, method="ach",
                                  created_at=start - timedelta(days=179))
        # Day 179: still allowed.
        panel = soup_of(client.get(f"/payments/{payment.id}"))
        assert panel.select_one(".pp__actions").find("a", string="Refund") is not None
    # Two days on in real time (B9: no test clock moves a test payment): day 181.
    with time_machine.travel(start + timedelta(days=2), tick=False):
        panel = soup_of(client.get(f"/payments/{payment.id}"))
        assert panel.select_one(".pp__actions").find("a", string="Refund") is None
        assert text_of(panel.select_one("#refund-why")) == (
            "Bank debit (ACH) payments can only be refunded within 180 days.")
        response = _refund(client, payment.id, "10.00")
        assert response.status_code == 422
        assert "within 180 days" in field_error(response, "amount")
        assert refunds_of(payment.id) == []
        # A card payment of the same age still can be refunded: the rule is for bank debits.
        card = sandbox_payment(owner.account_id, amount_minor=1000, created_at=start - timedelta(days=398))
        assert _refund(client, card.id, "1.00").status_code == 303


# -- F2 subscriptions -------------------------------------------------------------------------------


def test_f2_refunding_a_subscription_payment_never_cancels_the_subscription(client, owner):
    link = make_link(owner, items=[item("Coffee club", "18.00", frequency="monthly")])
    assert pay_with_card(client, link.slug).status_code == 303
    payment = only_payment()
    subscription = db.session.get(Subscription, payment.subscription_id)
    status_before = subscription.status

    dialog = _dialog(client, payment.id)
    assert "Refunding doesn't cancel the subscription: billing continues as planned." in text_of(soup_of(dialog))
    assert _refund(client, payment.id, "18.00", key=_key(dialog)).status_code == 303
    advance(timedelta(minutes=2))

    db.session.expire_all()
    subscription = db.session.get(Subscription, payment.subscription_id)
    assert subscription.status == status_before == "active"
    assert subscription.cancelled_at is None
    assert reload(payment.id).display_status == "refunded"


# -- F3 statuses through settlement -----------------------------------------------------------------


def test_f3_card_refund_processing_then_partially_refunded_then_refunded(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=3000)
    _refund(client, payment.id, "10.00")
    assert _panel_status(client, payment.id) == "Refund processing"
    assert _index_status(client, payment.id) == "Refund processing"

    advance(timedelta(minutes=2))
    assert _panel_status(client, payment.id) == "Partially refunded"
    assert _index_status(client, payment.id) == "Partially refunded"
    assert refunds_of(payment.id)[0].status == "succeeded"
    assert reload(payment.id).refunded_minor == 1000

    _refund(client, payment.id, "20.00")
    assert _index_status(client, payment.id) == "Refund processing"
    advance(timedelta(minutes=2))
    assert _index_status(client, payment.id) == "Refunded"
    payment = reload(payment.id)
    assert (payment.refunded_minor, payment.refund_reserved_minor) == (3000, 3000)


def test_f3_ach_refund_settles_after_five_business_days(client):
    monday = datetime(2026, 3, 2, 15, tzinfo=UTC)
    with time_machine.travel(monday, tick=False):
        owner = make_merchant()
        login(client, owner)
        payment = sandbox_payment(owner.account_id, amount_minor=10_000, method="ach",
                                  created_at=monday - timedelta(days=10))
        assert _refund(client, payment.id, "100.00").status_code == 303
    with time_machine.travel(datetime(2026, 3, 6, 16, tzinfo=UTC), tick=False):  # Friday: 4 business days
        advance(timedelta(0))
        assert _panel_status(client, payment.id) == "Refund processing"
    with time_machine.travel(datetime(2026, 3, 9, 15, 1, tzinfo=UTC), tick=False):  # next Monday: 5
        advance(timedelta(0))
        assert _panel_status(client, payment.id) == "Refunded"


def test_f3_a_failed_refund_makes_the_amount_refundable_again_and_shows_why(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=5000, card=REFUND_FAILS_CARD)
    assert _refund(client, payment.id, "20.00").status_code == 303
    assert _panel_status(client, payment.id) == "Refund processing"

    advance(timedelta(minutes=2))

    [refund] = refunds_of(payment.id)
    assert refund.status == "failed"
    assert refund.failure_message == "The refund failed because the card was canceled or has expired."
    payment = reload(payment.id)
    assert (payment.refund_reserved_minor, payment.refunded_minor, payment.display_status) == (0, 0, "succeeded")
    panel = soup_of(client.get(f"/payments/{payment.id}"))
    assert "The refund failed because the card was canceled or has expired." in text_of(panel.select_one(
        "#card-refunds"))
    assert "Refund failed" in text_of(panel.select_one("#card-history"))
    assert soup_of(_dialog(client, payment.id)).select_one("#f-amount")["value"] == "50.00"


def test_f3_a_refund_the_processor_did_not_answer_is_retried_by_the_tick(client, owner, faults):
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    faults.inject("timeout", operation="refund", account_id=owner.account_id)
    assert _refund(client, payment.id, "5.00").status_code == 303
    [refund] = refunds_of(payment.id)
    assert refund.processor_ref is None and refund.status == "pending"
    advance(timedelta(minutes=1))  # the retry sends it with the same key
    advance(timedelta(minutes=3))  # and the sandbox settles it
    [refund] = refunds_of(payment.id)
    assert refund.processor_ref and refund.status == "succeeded"
    assert reload(payment.id).refunded_minor == 500


# -- audit, history, email, idempotency, roles ------------------------------------------------------


def test_a2_every_refund_writes_an_audit_event_shown_in_history(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=8000)
    _refund(client, payment.id, "30.00", reason="duplicate")
    _refund(client, payment.id, "20.00", reason="other", note="Partial return")

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.refunded")
                                .order_by(AuditEvent.id)).all()
    assert [(e.actor_id, e.object_id, e.amount_before_minor, e.amount_after_minor, e.currency) for e in events] == [
        (owner.id, str(payment.id), 0, 3000, "USD"), (owner.id, str(payment.id), 3000, 5000, "USD")]
    assert [(e.data["amount_minor"], e.data["reason"]) for e in events] == [(3000, "duplicate"), (2000, "other")]
    assert events[1].data["note"] == "Partial return"
    history = [text_of(li) for li in soup_of(client.get(f"/payments/{payment.id}")).select("#card-history li")]
    assert any(h.startswith("Refund submitted · $30.00") and f"by {owner.name}" in h for h in history)
    assert any(h.startswith("Refund submitted · $20.00") for h in history)


def test_f3_the_buyer_gets_a_refund_email_in_their_language(client, owner, mailbox):
    payment = sandbox_payment(owner.account_id, amount_minor=2500, email="acheteur@example.fr")
    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).language = "fr"
    _refund(client, payment.id, "10.00")
    assert db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "refund")) is None  # not yet settled
    advance(timedelta(minutes=2))
    with time_machine.travel(now() + timedelta(minutes=3), tick=False):  # the email was queued then
        run_outbox()

    email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "refund"))
    assert email.to_addrs == ["acheteur@example.fr"] and email.language == "fr"
    [message] = mailbox.to("acheteur@example.fr")
    body = mailbox.text_of(message)
    merchant = db.session.get(Account, owner.account_id).name
    assert plain(subject_of(message)) == f"{merchant} a remboursé 10,00 $US"
    assert "10,00" in body and "25,00" in body  # amounts formatted the French way
    assert "refunded" not in body


def test_f1_submitting_the_same_refund_form_twice_makes_one_refund(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    key = _key(_dialog(client, payment.id))
    first = _refund(client, payment.id, "30.00", key=key)
    second = _refund(client, payment.id, "30.00", key=key)
    assert first.status_code == second.status_code == 303
    assert len(refunds_of(payment.id)) == 1
    assert reload(payment.id).refund_reserved_minor == 3000
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "payment.refunded")) == 1


def test_f1_htmx_refund_refreshes_the_open_panel_with_a_toast(client, owner):
    import json

    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    response = _refund(client, payment.id, "5.00", **{"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#payment-panel" and response.headers["HX-Reswap"] == "outerHTML"
    events = json.loads(response.headers["HX-Trigger"])
    assert "Refund of $5.00 submitted" in events["kassa:toast"]["message"]
    assert "kassa:payments-changed" in events and "kassa:close-dialog" in events
    assert text_of(soup_of(response).select_one(".pp__amount .badge")) == "Refund processing"
    refused = _refund(client, payment.id, "500.00", **{"HX-Request": "true"})
    assert refused.status_code == 422
    assert soup_of(refused).find("html") is None and field_error(refused, "amount")


def test_a1_member_cannot_refund(app, client):
    owner = make_merchant()
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    member = make_user(owner.account_id, Role.MEMBER)
    login(client, member)
    assert client.get(f"/payments/{payment.id}/refund").status_code == 403
    response = client.post(f"/payments/{payment.id}/refund", data={"amount": "1.00", "reason": "duplicate",
                                                                    "key": "k-member"})
    assert response.status_code == 403
    assert refunds_of(payment.id) == []


def test_a2_another_accounts_payment_cannot_be_refunded(client, owner):
    other = make_merchant()
    theirs = sandbox_payment(other.account_id, amount_minor=5000)
    assert client.get(f"/payments/{theirs.id}/refund").status_code == 404
    response = client.post(f"/payments/{theirs.id}/refund", data={"amount": "1.00", "reason": "duplicate",
                                                                   "key": "k-x"})
    assert response.status_code == 404
    assert refunds_of(theirs.id) == []


def test_f1_live_payment_without_a_live_processor_is_refused_not_half_done(client, owner):
    """Live data exists (imported or benchmark rows) while no live processor is connected."""
    payment = make_payment(owner.account_id, mode="live", amount_minor=5000)
    panel = soup_of(client.get(f"/payments/{payment.id}"))
    assert text_of(panel.select_one("#refund-why")) == "Connect a live payment processor to refund live payments."
    response = _refund(client, payment.id, "5.00")
    assert response.status_code in (409, 422)
    assert refunds_of(payment.id) == []
    assert reload(payment.id).refund_reserved_minor == 0


def test_f1_a_nul_character_in_the_note_is_refused_not_a_500(client, owner):
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    response = _refund(client, payment.id, "1.00", reason="other", note="Good\x00will")
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    assert refunds_of(payment.id) == []
