"""Disputes (D1–D7, T5, A1): the sandbox's dispute cards through every outcome on the clock, the Disputes
tab, accept, refunds blocked, the timeline, dispute properties on the index, emails and roles.

A dispute happens as it would for a merchant: a buyer pays a link in test mode with a dispute card
through the real checkout, then the tick delivers the sandbox's `dispute.created` event. Time moves with
time-machine and the next tick delivers the decision.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import (
    Account,
    AuditEvent,
    Dispute,
    EmailMessage,
    Payment,
    Role,
    SavedView,
    TimelineEntry,
    User,
)
from tests.factories import make_merchant, make_user
from tests.support.app import extract_link, run_outbox
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link, plain, subject_of
from tests.support.payments import login, reload, row_ids, soup_of, table_rows, text_of

FRAUD_CARD = "4000000000000259"  # T5: opens a dispute, reason "fraudulent"
NOT_RECEIVED_CARD = "4000000000002685"  # T5: reason "product not received"
INQUIRY_CARD = "4000000000001976"  # T5: an inquiry (no funds withdrawn)
DISPUTE_CARDS = [(FRAUD_CARD, "fraudulent", "Fraudulent"),
                 (NOT_RECEIVED_CARD, "product_not_received", "Product not received")]
QUESTION_FIELDS = {
    "fraudulent": ["why_legitimate", "customer_communication", "prior_payments"],
    "product_not_received": ["delivered", "delivery_date", "tracking_number", "carrier"],
}
D3_HEADERS = ["Gross amount", "Payment date", "Contact", "Payment method", "Status", "Dispute created",
              "Dispute reason", "Dispute amount", "Dispute deadline", "Dispute closed"]


# -- helpers: a dispute the way a merchant gets one --------------------------------------------------


def tick() -> None:
    """One run of `flask kassa tick`, now."""
    from kassa.services.platform.ticks import run_tick

    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


def tick_at(delta: timedelta, *, deliver: bool = False) -> None:
    """Travel `delta` ahead (real clock) and tick there; `deliver` also runs the worker's email delivery
    there (emails queued in the future are not due yet back in the present)."""
    with later(delta):
        tick()
        if deliver:
            run_outbox()


def later(delta: timedelta):
    """The clock `delta` from now (and frozen there) for the `with` block."""
    return time_machine.travel(now() + delta, tick=False)


def dispute_of(payment_id: int) -> Dispute:
    db.session.rollback()
    return db.session.scalar(select(Dispute).where(Dispute.payment_id == payment_id).order_by(Dispute.id.desc()))


def pay_disputed(client, owner: User, card: str = FRAUD_CARD, *, price: str = "25.00",
                 email: str = "ann.buyer@example.com") -> tuple[Payment, Dispute]:
    """Pay a new link with `card` through the checkout (test mode), then tick: the dispute opens."""
    link = make_link(owner, items=[item("Concert ticket", price, description="Front row")],
                     collect_billing_address=True)
    response = pay_with_card(client, link.slug, card_number=card, email=email)
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    db.session.rollback()
    payment = db.session.scalar(select(Payment).where(Payment.link_id == link.id))
    assert payment is not None and payment.status == "succeeded"
    tick()
    return reload(payment.id), dispute_of(payment.id)


def counter(client, dispute: Dispute, text: str, **answers: str):
    """Go through the wizard (steps 1–3 saved, no files) and submit; returns the submit response."""
    questions = {key: answers.get(key, f"Answer for {key}") for key in QUESTION_FIELDS.get(dispute.reason, [])}
    assert client.post(f"/disputes/{dispute.id}/counter/1", data=questions).status_code == 303
    details = form_fields(client.get(f"/disputes/{dispute.id}/counter/2"))
    assert client.post(f"/disputes/{dispute.id}/counter/2", data=details).status_code == 303
    assert client.post(f"/disputes/{dispute.id}/counter/3",
                       data={"additional_information": text}).status_code == 303
    return client.post(f"/disputes/{dispute.id}/submit")


def form_fields(response) -> dict[str, str]:
    """The wizard form's text fields as the browser would send them."""
    form = soup_of(response).select_one("#wizard form")
    values = {}
    for control in form.select("input[name], textarea[name]"):
        if control.get("type") in ("hidden", "file", "submit"):
            continue
        values[control["name"]] = control.get_text() if control.name == "textarea" else control.get("value", "")
    return values


def panel(client, payment_id: int):
    response = client.get(f"/payments/{payment_id}")
    assert response.status_code == 200
    return soup_of(response)


def panel_status(client, payment_id: int) -> str:
    return text_of(panel(client, payment_id).select_one(".pp__amount .badge"))


def dispute_card(client, payment_id: int) -> dict[str, str]:
    card = panel(client, payment_id).select_one("#card-dispute")
    assert card is not None, "no Dispute details card"
    return {text_of(dt): text_of(dd) for dt, dd in zip(card.select("dt"), card.select("dd"), strict=True)}


def tab_rows(client, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/payments/disputes{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return table_rows(response)


def history(client, payment_id: int) -> list[str]:
    card = panel(client, payment_id).select_one("#card-history")
    return [text_of(li.find("span")) for li in card.select("li.timeline__item")]


def timeline_kinds(subject_type: str, subject_id: int) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(
        select(TimelineEntry.kind).where(TimelineEntry.subject_type == subject_type,
                                         TimelineEntry.subject_id == subject_id).order_by(TimelineEntry.id)))


@pytest.fixture
def owner(client):
    owner = make_merchant(company="Bakkerij Brood")
    login(client, owner)
    return owner


# -- T5 / D2: each dispute card through each outcome on the clock ------------------------------------


@pytest.mark.parametrize(("card", "reason", "label"), DISPUTE_CARDS)
def test_t5_d2_d3_dispute_card_opens_a_dispute_shown_on_the_payment_and_in_the_disputes_tab(
        client, owner, card, reason, label):
    link = make_link(owner, items=[item("Concert ticket", "25.00")])
    assert pay_with_card(client, link.slug, card_number=card).status_code == 303
    db.session.rollback()
    payment = db.session.scalar(select(Payment))
    # given: paid, and the dispute not delivered yet
    assert payment.display_status == "succeeded"
    assert tab_rows(client) == []

    # when: the tick delivers the sandbox's dispute.created
    tick()

    # then
    dispute = dispute_of(payment.id)
    assert (dispute.reason, dispute.status, dispute.amount_minor, dispute.currency) == (
        reason, "needs_response", 2500, "USD")
    assert dispute.fee_minor == 1500 and not dispute.is_inquiry
    assert dispute.evidence_due_by - dispute.created_at == timedelta(days=7)
    assert panel_status(client, payment.id) == "Disputed (action required)"
    [row] = tab_rows(client)
    assert list(row) == D3_HEADERS
    assert row["Gross amount"].startswith("$25.00")
    assert row["Contact"] == "Ann Buyer ann.buyer@example.com"
    assert row["Payment method"] == "Visa •••• " + card[-4:]
    assert row["Status"] == "Disputed (action required)"
    assert row["Dispute reason"] == label
    assert row["Dispute amount"] == "$25.00"
    assert row["Dispute deadline"].endswith("6 days left")
    assert row["Dispute closed"] == "—"
    assert row["Payment date"] != "—" and row["Dispute created"] != "—"
    # the index's Status column shows the dispute status too (P1)
    assert [r["Status"] for r in table_rows(client.get("/payments/"))] == ["Disputed (action required)"]


@pytest.mark.parametrize(("card", "reason", "label"), DISPUTE_CARDS)
@pytest.mark.parametrize(("text", "outcome", "label_after"), [
    ("Tracking shows delivery. winning_evidence", "won", "Disputed (won)"),
    ("We have nothing. losing_evidence", "lost", "Disputed (lost)"),
])
def test_d4_t5_magic_evidence_decides_at_the_tick_after_submission(
        client, owner, card, reason, label, text, outcome, label_after):
    payment, dispute = pay_disputed(client, owner, card)
    response = counter(client, dispute, text)
    assert response.status_code == 303
    assert dispute_of(payment.id).status == "under_review"
    assert panel_status(client, payment.id) == "Disputed (awaiting decision)"
    [row] = tab_rows(client)
    assert row["Status"] == "Disputed (awaiting decision)"
    assert "left" not in row["Dispute deadline"]  # answered: the deadline no longer counts down

    tick()  # same minute: not decided yet
    assert dispute_of(payment.id).status == "under_review"

    tick_at(timedelta(minutes=2))
    decided = dispute_of(payment.id)
    assert decided.status == outcome and decided.closed_at is not None
    assert panel_status(client, payment.id) == label_after
    [row] = tab_rows(client)
    assert row["Status"] == label_after
    assert row["Dispute closed"] != "—"
    assert "left" not in row["Dispute deadline"]


@pytest.mark.parametrize(("card", "reason", "label"), DISPUTE_CARDS)
def test_d4_t5_other_evidence_is_won_after_three_days(client, owner, card, reason, label):
    payment, dispute = pay_disputed(client, owner, card)
    assert counter(client, dispute, "Signed delivery note attached.").status_code == 303

    tick_at(timedelta(days=2, hours=23))
    assert dispute_of(payment.id).status == "under_review"
    tick_at(timedelta(days=3, minutes=1))
    assert dispute_of(payment.id).status == "won"
    assert panel_status(client, payment.id) == "Disputed (won)"


@pytest.mark.parametrize(("card", "reason", "label"), DISPUTE_CARDS)
def test_d2_t5_no_answer_by_the_deadline_is_lost(client, owner, card, reason, label):
    payment, dispute = pay_disputed(client, owner, card)

    tick_at(timedelta(days=6, hours=23))
    assert dispute_of(payment.id).status == "needs_response"
    tick_at(timedelta(days=7, minutes=1))

    lost = dispute_of(payment.id)
    assert lost.status == "lost" and lost.closed_at == lost.evidence_due_by
    assert panel_status(client, payment.id) == "Disputed (lost)"
    # and it can't be answered any more
    card_html = panel(client, payment.id).select_one("#card-dispute")
    assert "Counter dispute" not in text_of(card_html)
    assert client.post(f"/disputes/{dispute.id}/counter/1", data={}).status_code == 409


def test_t5_inquiry_card_opens_an_inquiry_without_withdrawing_funds_and_can_still_be_refunded(client, owner):
    payment, dispute = pay_disputed(client, owner, INQUIRY_CARD)

    assert dispute.is_inquiry and dispute.fee_minor == 0 and dispute.status == "needs_response"
    kinds = timeline_kinds("payment", payment.id)
    assert "dispute.inquiry_opened" in kinds
    assert "dispute.funds_withdrawn" not in kinds and "dispute.opened" not in kinds
    assert "Inquiry opened · $25.00" in history(client, payment.id)
    assert "inquiry" in dispute_card(client, payment.id)["Status"]
    # F1 stays open: an inquiry only asks questions
    refund_action = panel(client, payment.id).select_one(f'a[href="/payments/{payment.id}/refund"]')
    assert refund_action is not None
    response = client.post(f"/payments/{payment.id}/refund", data={"amount": "25.00",
                                                                    "reason": "requested_by_customer", "note": ""})
    assert response.status_code == 303
    db.session.rollback()
    assert reload(payment.id).refund_reserved_minor == 2500


# -- D3 deadline: "N days left", a warning inside 48 hours -------------------------------------------


def test_d3_deadline_shows_the_time_left_with_a_warning_inside_48_hours(client, owner):
    """The same words and warning on the Disputes tab, the payment's Dispute details and the wizard."""
    payment, dispute = pay_disputed(client, owner)
    for ahead, shown, urgent in [
        (timedelta(hours=1), "6 days left", False),
        (timedelta(days=4, hours=1), "2 days left", False),  # 71 hours left
        (timedelta(days=5, hours=1), "1 day left", True),  # 47 hours left
        (timedelta(days=6, hours=13), "10 hours left", True),
        (timedelta(days=6, hours=23, minutes=30), "Less than an hour left", True),
    ]:
        with later(ahead):
            places = {
                "tab": soup_of(client.get("/payments/disputes")).select_one("table.table--payments tbody .deadline"),
                "panel": panel(client, payment.id).select_one("#card-dispute .deadline"),
                "wizard": soup_of(client.get(f"/disputes/{dispute.id}/counter/1")).select_one("#wizard .deadline"),
            }
        for place, node in places.items():
            assert (text_of(node), "deadline--urgent" in node["class"]) == (shown, urgent), (place, ahead)


def test_d3_b9_the_deadline_is_evidence_due_seven_days_after_opening_on_real_time(client, owner):
    """B9: test-mode disputes run on real time, like every other sandbox event (no account test clock)."""
    _payment, dispute = pay_disputed(client, owner)
    assert abs(dispute.created_at - now()) < timedelta(minutes=5)
    assert dispute.evidence_due_by == dispute.created_at + timedelta(days=7)
    assert text_of(soup_of(client.get("/payments/disputes")).select_one(".deadline")) == "6 days left"


# -- D5 accept ---------------------------------------------------------------------------------------


def test_d5_accept_dialog_says_the_amount_is_lost_and_accepting_closes_the_dispute_as_lost(client, owner):
    payment, dispute = pay_disputed(client, owner)
    accept_link = panel(client, payment.id).select_one("#card-dispute a[href$='/accept']")
    assert text_of(accept_link) == "Accept dispute"

    dialog = client.get(accept_link["href"])
    assert dialog.status_code == 200
    text = plain(text_of(soup_of(dialog).select_one("[role=dialog], dialog, .dialog")))
    assert "the buyer keeps $25.00" in text and "$15.00" in text and "can't be undone" in text

    response = client.post(f"/disputes/{dispute.id}/accept")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/payments/{payment.id}")

    accepted = dispute_of(payment.id)
    assert accepted.status == "lost" and accepted.closed_at is not None
    assert panel_status(client, payment.id) == "Disputed (lost)"
    assert "Dispute accepted · $25.00" in " | ".join(history(client, payment.id))
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "dispute.accepted"))
    assert audit is not None and audit.actor_id == owner.id
    # the sandbox's own "lost" event changes nothing more; accepting twice is refused
    tick()
    assert dispute_of(payment.id).status == "lost"
    # (H13: refused with a 409 and the reason in the dialog, no longer a redirect that hides it in a flash)
    again = client.post(f"/disputes/{dispute.id}/accept")
    assert again.status_code == 409 and "This dispute has already been answered." in text_of(soup_of(again))
    assert timeline_kinds("payment", payment.id).count("dispute.accepted") == 1


# -- refunds and disputes ----------------------------------------------------------------------------


def _refund_post(client, payment_id: int):
    return client.post(f"/payments/{payment_id}/refund",
                       data={"amount": "25.00", "reason": "requested_by_customer", "note": ""})


def test_f1_d2_a_payment_under_dispute_cannot_be_refunded_and_the_action_says_why(client, owner):
    payment, dispute = pay_disputed(client, owner)
    why = "This payment is disputed; a disputed payment can't be refunded."

    doc = panel(client, payment.id)
    assert doc.select_one(f'a[href="/payments/{payment.id}/refund"]') is None
    assert doc.select_one(".pp__actions [aria-disabled=true]") is not None
    assert text_of(doc.select_one("#refund-why")) == why
    response = _refund_post(client, payment.id)
    assert response.status_code in (409, 422)
    assert why in text_of(soup_of(response))
    # still refused while the bank decides
    counter(client, dispute, "winning_evidence")
    assert text_of(panel(client, payment.id).select_one("#refund-why")) == why
    assert _refund_post(client, payment.id).status_code in (409, 422)
    assert reload(payment.id).refund_reserved_minor == 0


def test_f1_d2_a_won_disputes_payment_can_be_refunded(client, owner):
    payment, dispute = pay_disputed(client, owner)
    counter(client, dispute, "winning_evidence")
    with later(timedelta(minutes=2)):  # the processor sees the decision on its own clock too
        tick()
        assert panel(client, payment.id).select_one(f'a[href="/payments/{payment.id}/refund"]') is not None
        assert _refund_post(client, payment.id).status_code == 303
        assert reload(payment.id).refund_reserved_minor == 2500
        tick_at(timedelta(minutes=2))
    assert reload(payment.id).refunded_minor == 2500


def test_f1_d2_a_lost_disputes_payment_cannot_be_refunded(client, owner):
    payment, _dispute = pay_disputed(client, owner)
    tick_at(timedelta(days=7, minutes=1))
    assert _refund_post(client, payment.id).status_code in (409, 422)
    assert reload(payment.id).refund_reserved_minor == 0


# -- D6 timeline -------------------------------------------------------------------------------------


def _record_timeline(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200
    return [text_of(node) for node in soup_of(response).select(".timeline .timeline__what")]


@pytest.mark.parametrize(("text", "outcome"), [("winning_evidence", "won"), ("losing_evidence", "lost")])
def test_d6_history_and_contact_and_deal_timelines_follow_the_dispute(client, owner, text, outcome):
    payment, dispute = pay_disputed(client, owner)
    counter(client, dispute, text)
    tick_at(timedelta(minutes=2))

    entries = list(reversed(history(client, payment.id)))  # oldest first
    expected = ["Dispute opened · $25.00", "Disputed amount and fee withdrawn · $40.00",
                "Dispute evidence draft saved", "Dispute evidence draft saved", "Dispute evidence draft saved",
                "Dispute evidence submitted"]
    expected += (["Dispute won · $25.00", "Disputed amount returned · $25.00"] if outcome == "won"
                 else ["Dispute lost · $25.00"])
    dispute_entries = [plain(e.split(" by ")[0]) for e in entries if "ispute" in e]
    assert dispute_entries == expected
    assert any(e.startswith("Dispute evidence submitted") and "by Owner" in e for e in entries)

    # R6: the contact's and the deal's timelines show the same steps
    for path in (f"/contacts/{payment.contact_id}", f"/deals/{payment.deal_id}"):
        shown = [plain(e) for e in reversed(_record_timeline(client, path)) if "ispute" in e]
        assert shown == expected, path


# -- D3 / D7 dispute properties as columns and filters, saved views on the Disputes tab ---------------


@pytest.fixture
def three_payments(client, owner):
    """An older fraud dispute ($25, opened 3 days ago), a product-not-received one ($80, today), and a plain
    payment that was never disputed."""
    with time_machine.travel(now() - timedelta(days=3), tick=False):
        old, _ = pay_disputed(client, owner, FRAUD_CARD, price="25.00", email="old@example.com")
    new, _ = pay_disputed(client, owner, NOT_RECEIVED_CARD, price="80.00", email="new@example.com")
    link = make_link(owner, items=[item("Plain", "30.00")])
    assert pay_with_card(client, link.slug, email="plain@example.com").status_code == 303
    db.session.rollback()
    plain_payment = db.session.scalar(select(Payment).where(Payment.link_id == link.id))
    return old, new, plain_payment


def _adv(*conditions) -> str:
    return json.dumps([[list(c) for c in conditions]])


def test_d7_dispute_properties_are_columns_on_the_main_index(client, owner, three_payments):
    old, new, plain_payment = three_payments
    cols = "amount,dispute_created,dispute_reason,dispute_amount,dispute_deadline,dispute_closed"
    response = client.get("/payments/", query_string={"cols": cols})
    assert response.status_code == 200
    rows = dict(zip(row_ids(response), table_rows(response), strict=True))
    assert list(rows[new.id]) == ["Gross amount", "Dispute created", "Dispute reason", "Dispute amount",
                                  "Dispute deadline", "Dispute closed"]
    assert rows[new.id]["Dispute reason"] == "Product not received"
    assert rows[new.id]["Dispute amount"] == "$80.00"
    assert rows[new.id]["Dispute deadline"].endswith("6 days left")
    assert rows[old.id]["Dispute reason"] == "Fraudulent"
    assert rows[old.id]["Dispute deadline"].endswith("3 days left")
    assert rows[plain_payment.id]["Dispute reason"] == "—" and rows[plain_payment.id]["Dispute amount"] == "—"


def test_d7_dispute_properties_filter_the_main_index(client, owner, three_payments):
    from kassa.clock import account_today

    old, new, _plain = three_payments
    today = account_today(db.session.get(Account, owner.account_id))

    def day(n: int) -> str:
        return (today + timedelta(days=n)).isoformat()

    for condition, expected in [
        (("dispute_reason", "any_of", ["product_not_received"]), [new.id]),
        (("dispute_reason", "any_of", ["fraudulent", "product_not_received"]), [new.id, old.id]),
        (("dispute_amount", "gt", ["50"]), [new.id]),
        (("dispute_amount", "lt", ["50"]), [old.id]),
        (("dispute_deadline", "before", [day(6)]), [old.id]),  # old: due in 4 days; new: in 7
        (("dispute_deadline", "before", [day(9)]), [new.id, old.id]),
        (("dispute_created", "before", [day(-1)]), [old.id]),
    ]:
        response = client.get("/payments/", query_string={"adv": _adv(condition)})
        assert response.status_code == 200, text_of(soup_of(response).select_one("[role=alert]"))
        assert row_ids(response) == expected, condition
    # AND-ed in one group, as the advanced filter panel builds them
    both = client.get("/payments/", query_string={"adv": _adv(("dispute_reason", "any_of", ["fraudulent"]),
                                                              ("dispute_amount", "gt", ["50"]))})
    assert row_ids(both) == []


def test_d3_disputes_tab_lists_only_disputed_payments_and_filters_by_dispute_status(client, owner, three_payments):
    old, new, _plain = three_payments
    assert row_ids(client.get("/payments/disputes")) == [new.id, old.id]
    boxes = soup_of(client.get("/payments/disputes")).select("input[name=status]")
    assert [b["value"] for b in boxes] == ["disputed_action_required", "disputed_awaiting_decision",
                                           "disputed_won", "disputed_lost"]

    counter(client, dispute_of(new.id), "winning_evidence")
    tick_at(timedelta(minutes=2))

    assert row_ids(client.get("/payments/disputes?status=disputed_won")) == [new.id]
    assert row_ids(client.get("/payments/disputes?status=disputed_action_required")) == [old.id]
    assert row_ids(client.get("/payments/disputes?status=disputed_won&status=disputed_action_required")) == [
        new.id, old.id]


def test_d3_filter_the_disputes_tab_by_status_and_save_it_as_a_view(client, owner, three_payments):
    _old, new, _plain = three_payments
    counter(client, dispute_of(new.id), "winning_evidence")
    tick_at(timedelta(minutes=2))
    page = soup_of(client.get("/payments/disputes?status=disputed_won"))
    form = page.select_one("form[action='/payments/views']")
    state_args = form.select_one("input[name=state_args]")["value"]
    assert form.select_one("input[name=tab]")["value"] == "disputes"

    response = client.post("/payments/views", data={"state_args": state_args, "tab": "disputes",
                                                    "name": "Won disputes"})
    assert response.status_code == 303
    view = db.session.scalar(select(SavedView))
    assert view.tab == "disputes" and view.name == "Won disputes"
    assert response.headers["Location"].endswith(f"/payments/disputes?view={view.id}")

    shown = client.get(f"/payments/disputes?view={view.id}")
    assert row_ids(shown) == [new.id]
    tabs = [text_of(a) for a in soup_of(shown).select("nav.tabs a")]
    assert "Won disputes" in tabs
    assert "Won disputes" not in [text_of(a) for a in soup_of(client.get("/payments/")).select("nav.tabs a")]
    assert client.get(f"/payments/?view={view.id}").status_code == 404


# -- D1 emails ---------------------------------------------------------------------------------------


def _sent(mailbox, kind_subject: str) -> list:
    run_outbox()
    return [m for m in mailbox.messages if kind_subject in plain(subject_of(m))]


def _switch_off(client, key: str) -> None:
    from kassa.models import DEFAULT_NOTIFICATIONS

    enabled = [name for name, on in DEFAULT_NOTIFICATIONS.items() if on and name != key]
    assert client.post("/settings/notifications", data={"enabled": enabled}).status_code in (200, 303)
    db.session.rollback()
    account = db.session.get(Account, db.session.scalar(select(User.account_id)))
    assert not account.notification_enabled(key)


def _kinds() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(select(EmailMessage.kind).order_by(EmailMessage.id)))


class TestD1Emails:
    @pytest.fixture
    def app_config(self, smtp_app_config):
        return smtp_app_config

    def test_d1_dispute_opened_email_has_the_deadline_and_a_counter_dispute_link(self, client, owner, mailbox):
        from babel.dates import format_date

        _payment, dispute = pay_disputed(client, owner)
        run_outbox()
        [message] = [m for m in mailbox.to(owner.email) if "disputed" in subject_of(m)]
        due = format_date(dispute.evidence_due_by, "medium", locale="en")
        assert plain(subject_of(message)) == plain(f"[Test] A payment of $25.00 is disputed: respond by {due}")
        text = plain(mailbox.text_of(message))
        assert "ann.buyer@example.com's bank disputes a payment of $25.00 (reason: Fraudulent)" in text
        assert "a dispute fee of $15.00 have been withdrawn" in text
        assert f"Respond by {due}" in text
        link = extract_link(mailbox.text_of(message), "/disputes/")
        assert link == f"/disputes/{dispute.id}/counter/1"
        step1 = client.get(link)
        assert step1.status_code == 200
        assert text_of(soup_of(step1).find("h1")) == "Counter the dispute"

    @pytest.mark.parametrize(("magic", "kind", "subject"), [
        ("winning_evidence", "dispute_won", "You won the dispute about $25.00"),
        ("losing_evidence", "dispute_lost", "The dispute about $25.00 was lost"),
    ])
    def test_d1_won_and_lost_emails(self, client, owner, mailbox, magic, kind, subject):
        payment, dispute = pay_disputed(client, owner)
        counter(client, dispute, magic)
        tick_at(timedelta(minutes=2), deliver=True)
        subjects = [plain(subject_of(m)) for m in mailbox.to(owner.email)]
        assert [s for s in subjects if "dispute" in s.lower()][1:] == [f"[Test] {subject}"]
        assert _kinds().count(kind) == 1
        message = mailbox.to(owner.email)[subjects.index(f"[Test] {subject}")]
        assert extract_link(mailbox.text_of(message), "/payments/") == f"/payments/{payment.id}"

    def test_d1_deadline_passed_sends_the_lost_email(self, client, owner, mailbox):
        pay_disputed(client, owner)
        tick_at(timedelta(days=7, minutes=1), deliver=True)
        assert len(_sent(mailbox, "The dispute about $25.00 was lost")) == 1

    @pytest.mark.parametrize(("key", "magic"), [("dispute_opened", None), ("dispute_won", "winning_evidence"),
                                                 ("dispute_lost", "losing_evidence")])
    def test_d1_each_dispute_email_can_be_switched_off(self, client, owner, mailbox, key, magic):
        _switch_off(client, key)
        _payment, dispute = pay_disputed(client, owner)
        if magic:
            counter(client, dispute, magic)
            tick_at(timedelta(minutes=2), deliver=True)
        run_outbox()
        kinds = _kinds()
        assert key not in kinds
        others = {"dispute_opened"} | ({"dispute_won"} if magic == "winning_evidence" else set()) | (
            {"dispute_lost"} if magic == "losing_evidence" else set())
        assert {k for k in kinds if k.startswith("dispute_")} == others - {key}
        words = {"dispute_opened": "is disputed", "dispute_won": "You won", "dispute_lost": "was lost"}
        assert not [m for m in mailbox.to(owner.email) if words[key] in subject_of(m)]

    def test_d1_deadline_reminders_72h_and_24h_before_each_sent_once(self, client, owner, mailbox):
        _payment, dispute = pay_disputed(client, owner)
        tick_at(timedelta(days=3, hours=23))  # 73 h left: nothing yet
        assert _kinds().count("dispute_reminder") == 0
        tick_at(timedelta(days=4, minutes=1))
        tick_at(timedelta(days=4, minutes=2))
        assert _kinds().count("dispute_reminder") == 1
        tick_at(timedelta(days=6, minutes=1))
        tick_at(timedelta(days=6, hours=12))
        assert _kinds().count("dispute_reminder") == 2
        tick_at(timedelta(days=7, minutes=1), deliver=True)
        assert _kinds().count("dispute_reminder") == 2
        reminders = _sent(mailbox, "Reminder: respond to the dispute about $25.00")
        assert len(reminders) == 2
        assert extract_link(mailbox.text_of(reminders[0]), "/disputes/") == f"/disputes/{dispute.id}/counter/1"

    def test_d1_a_late_first_tick_sends_one_reminder_not_two(self, client, owner, mailbox):
        pay_disputed(client, owner)
        tick_at(timedelta(days=6, minutes=1))  # the worker was down during the 72 h window
        tick_at(timedelta(days=6, minutes=2))
        assert _kinds().count("dispute_reminder") == 1

    def test_d1_no_reminders_once_evidence_was_submitted(self, client, owner, mailbox):
        payment, dispute = pay_disputed(client, owner)
        with later(timedelta(days=2)):  # answered on day 2; the bank decides on day 5
            assert counter(client, dispute, "Signed delivery note attached.").status_code == 303
        tick_at(timedelta(days=4, minutes=1), deliver=True)  # inside the 72 h window
        assert dispute_of(payment.id).status == "under_review"
        tick_at(timedelta(days=6, minutes=1), deliver=True)  # inside the 24 h window
        assert _kinds().count("dispute_reminder") == 0
        assert _sent(mailbox, "Reminder") == []

    def test_t5_inquiry_accept_dialog_and_lost_email_do_not_claim_money_was_withdrawn(self, client, owner, mailbox):
        payment, dispute = pay_disputed(client, owner, INQUIRY_CARD)
        dialog = text_of(soup_of(client.get(f"/disputes/{dispute.id}/accept")).select_one("dialog"))
        assert "No money was withdrawn" in dialog and "fee" not in dialog

        tick_at(timedelta(days=7, minutes=1), deliver=True)
        assert dispute_of(payment.id).status == "lost"
        [lost] = [m for m in mailbox.to(owner.email) if "was lost" in subject_of(m)]
        text = plain(mailbox.text_of(lost))
        assert "Nothing was withdrawn" in text and "stay withdrawn" not in text


# -- A1 roles ----------------------------------------------------------------------------------------


def _pdf_bytes() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a1_a_member_gets_403_on_the_disputes_tab_wizard_upload_submit_and_accept(client, owner, app):
    import io

    payment, dispute = pay_disputed(client, owner)
    member = make_user(owner.account_id, Role.MEMBER)
    client.post("/logout")
    login(client, member)

    requests = [
        ("get", "/payments/disputes", {}),
        ("get", f"/disputes/{dispute.id}/counter/1", {}),
        ("post", f"/disputes/{dispute.id}/counter/1", {"data": {"why_legitimate": "x"}}),
        ("post", f"/disputes/{dispute.id}/files",
         {"data": {"file": (io.BytesIO(_pdf_bytes()), "proof.pdf")}, "content_type": "multipart/form-data"}),
        ("post", f"/disputes/{dispute.id}/submit", {}),
        ("get", f"/disputes/{dispute.id}/accept", {}),
        ("post", f"/disputes/{dispute.id}/accept", {}),
    ]
    for method, path, kwargs in requests:
        assert getattr(client, method)(path, **kwargs).status_code == 403, (method, path)
    unchanged = dispute_of(payment.id)
    assert unchanged.status == "needs_response" and not unchanged.draft and not unchanged.files


def test_a1_a_payments_manager_can_counter_with_a_file_and_accept(client, owner):
    import io

    payment, dispute = pay_disputed(client, owner)
    other_payment, other = pay_disputed(client, owner, NOT_RECEIVED_CARD)
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    client.post("/logout")
    login(client, manager)

    assert client.get("/payments/disputes").status_code == 200
    response = client.post(f"/disputes/{dispute.id}/files", data={"file": (io.BytesIO(_pdf_bytes()), "proof.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    assert counter(client, dispute, "winning_evidence").status_code == 303
    submitted = dispute_of(payment.id)
    assert submitted.status == "under_review" and submitted.submitted_by_id == manager.id
    assert "file: proof.pdf (application/pdf, 1 page(s))" in submitted.evidence_text
    assert client.post(f"/disputes/{other.id}/accept").status_code == 303
    assert dispute_of(other_payment.id).status == "lost"
