"""V4 Quotes: a merchant writes a quote (one-time and recurring lines, expiry date, terms, an optional deal and the
stage it moves to), finalizes it (a gap-free number of the account's quote series) and sends it (PDF attached, link
to its public page). The buyer accepts on the page (name and a ticked box; time and IP stored, audited; one
acceptance however many click at once), then pays through Kassa's checkout for exactly the quote: one-time lines
charged, recurring lines a subscription as a link's. Expired quotes say so and refuse a forged POST (409); forged
tokens and other merchants' quotes are 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.business_days import add_business_days
from kassa.extensions import db
from kassa.models import (
    AuditEvent,
    CheckoutSession,
    Deal,
    Payment,
    Quote,
    QuoteStatus,
    Subscription,
)
from kassa.processors import registry
from kassa.services.billing.billing import bill
from kassa.services.checkout.quote_checkout import quote_token
from kassa.services.crm import crm
from kassa.services.platform.counters import current_number
from tests.factories import make_merchant
from tests.support.app import extract_link, run_outbox
from tests.support.checkout import buyer_form, path_of
from tests.support.checkout_flow import count, pdf_text, sandbox_charges
from tests.support.concurrency import at_once
from tests.support.payments import login, soup_of


def quote_form(**overrides) -> dict[str, str]:
    form = {
        "customer_email": "Anna@Example.com", "customer_name": "Anna de Vries", "company_name": "Fietsen BV",
        "language": "nl", "currency": "EUR", "issue_date": "2026-12-01", "expiry_date": "2027-01-31",
        "notes": "Includes setup.", "terms": "Work starts within a week of acceptance.",
        "lines-0-description": "Website setup", "lines-0-quantity": "2", "lines-0-unit_price": "100.00",
        "lines-0-discount_type": "percent", "lines-0-discount_value": "10", "lines-0-frequency": "one_time",
        "lines-1-description": "Hosting", "lines-1-quantity": "1", "lines-1-unit_price": "25.00",
        "lines-1-frequency": "monthly",
        "action": "save",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def owner(app, client):
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # quotes are paid in live mode (no Stripe in tests)
    user = make_merchant(company="Webbureau")
    login(client, user)
    return user


def _fresh(quote: Quote) -> Quote:
    db.session.rollback()
    return db.session.get(Quote, quote.id)


def _draft(client, owner, **overrides) -> Quote:
    response = client.post("/quotes/new", data=quote_form(**overrides))
    assert response.status_code == 303, _text(response)[:800]
    db.session.rollback()
    return db.session.scalars(select(Quote).where(Quote.account_id == owner.account_id)
                              .order_by(Quote.id.desc())).first()


def _open_quote(client, owner, **overrides) -> Quote:
    quote = _draft(client, owner, **overrides)
    assert client.post(f"/quotes/{quote.id}/finalize").status_code == 303
    return _fresh(quote)


def _path(quote: Quote) -> str:
    return f"/quote/{quote_token(quote)}"


def _text(response) -> str:
    return " ".join(soup_of(response).get_text(" ").split())


def _accept(buyer, quote: Quote, name: str = "Anna de Vries", ip: str = "203.0.113.7", **extra):
    return buyer.post(f"{_path(quote)}/accept", data={"name": name, "agree": "y", **extra},
                      environ_base={"REMOTE_ADDR": ip})


def _pay(buyer, quote: Quote) -> str:
    response = buyer.post(f"{_path(quote)}/pay")
    assert response.status_code == 303, _text(response)[:800]
    return path_of(response.headers["Location"])


def test_v4_lines_totals_recurring_lines_and_gap_free_numbers(app, client, owner):
    quote = _draft(client, owner)
    assert (quote.status, quote.number, quote.currency) == ("draft", None, "EUR")
    # 2 × 100.00 − 10 % = 180.00 one-time, + 25.00 the first month: 205.00 due at acceptance
    assert [(line.description, line.amount_minor, line.frequency) for line in quote.lines] == [
        ("Website setup", 18000, "one_time"), ("Hosting", 2500, "monthly")]
    assert quote.amount_minor == 20500
    page = _text(client.get(f"/quotes/{quote.id}"))
    assert "Monthly" in page and "€205.00" in page
    # Numbers are taken at finalize from the account's quote series; a deleted draft leaves no gap.
    spare = _draft(client, owner)
    assert client.post(f"/quotes/{spare.id}/delete").status_code == 303
    assert client.post(f"/quotes/{quote.id}/finalize").status_code == 303
    second = _open_quote(client, owner)
    assert (_fresh(quote).number, second.number, _fresh(quote).status) == (1, 2, "open")
    assert current_number(owner.account_id, "quote") == 2
    listing = _text(client.get("/quotes/", query_string={"status": "open"}))
    assert "Q-000001" in listing and "Q-000002" in listing
    assert "Q-000001" not in _text(client.get("/quotes/", query_string={"status": "paid"}))
    # only a draft can be edited
    assert client.post(f"/quotes/{quote.id}/edit", data=quote_form(**{"lines-0-unit_price": "1.00"})).status_code == 303
    assert _fresh(quote).amount_minor == 20500


def test_v4_parallel_finalizes_take_consecutive_numbers(app, client, owner):
    drafts = [_draft(client, owner).id for _ in range(3)]
    from kassa.services.payments import quote_drafts
    from tests.support.billing import actor

    ids = iter(drafts)
    picks = [next(ids) for _ in range(3)]
    results = at_once(app, lambda: quote_drafts.finalize(actor(owner), picks.pop()).number, count=3)
    assert sorted(results) == [1, 2, 3]


@pytest.mark.parametrize(("field", "value", "error_field"), [
    ("lines-0-unit_price", "abc", "lines-0-unit_price"),
    ("lines-1-frequency", "hourly", "lines-1-frequency"),
    ("expiry_date", "2026-11-01", "expiry_date"),
    ("customer_email", "not-an-email", "customer_email"),
    ("lines-0-description", "<script>alert(1)</script>" * 40, "lines-0-description"),
    ("deal_id", "999999", "deal_id"),
])
def test_v4_hostile_input_is_refused_at_its_field_and_nothing_is_saved(app, client, owner, field, value,
                                                                        error_field):
    response = client.post("/quotes/new", data=quote_form(**{field: value}))
    assert response.status_code == 422
    soup = soup_of(response)
    assert soup.select_one(f"#f-{error_field}-error") is not None, _text(response)[:600]
    assert "<script>" not in response.get_data(as_text=True)
    assert count(Quote) == 0


def test_v4_deal_stage_must_belong_to_the_deal_and_accepting_moves_the_deal(app, client, owner):
    pipeline = crm.ensure_default_pipeline(owner.account_id)
    first, won = pipeline.stages[0], crm.winning_stage(pipeline)
    deal = crm.create_deal(owner.account_id, "live", name="Website for Fietsen BV", amount_minor=20500,
                           currency="EUR", pipeline_id=pipeline.id, stage_id=first.id, contact=None, company=None)
    db.session.commit()
    deal_id, won_id = deal.id, won.id
    quote = _open_quote(client, owner, deal_id=str(deal_id), accept_stage_id=str(won_id), language="en")
    assert (quote.deal_id, quote.accept_stage_id) == (deal_id, won_id)
    buyer = app.test_client()
    page = _text(buyer.get(_path(quote)))
    assert "Accept quote" in page and "Pay now" not in page
    assert _accept(buyer, quote).status_code == 200
    db.session.rollback()
    assert db.session.get(Deal, deal_id).stage_id == won_id
    # the payment joins the quote's deal
    assert buyer.post(_pay(buyer, quote), data=buyer_form()).status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    assert payment.deal_id == deal_id and count(Deal) == 1


def test_v4_accept_stores_name_time_and_ip_with_an_audit_row(app, client, owner):
    quote = _open_quote(client, owner, language="en")
    buyer = app.test_client()
    missing = buyer.post(f"{_path(quote)}/accept", data={"name": "  ", "agree": ""})
    assert missing.status_code == 422
    soup = soup_of(missing)
    assert soup.select_one("#f-name-error") and soup.select_one("#f-agree-error")
    assert _fresh(quote).status == "open"
    response = _accept(buyer, quote)
    assert response.status_code == 200 and "Pay now" in _text(response)
    quote = _fresh(quote)
    assert (quote.status, quote.accepted_name, quote.accepted_ip) == ("accepted", "Anna de Vries", "203.0.113.7")
    assert quote.accepted_at is not None
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "quote.accepted")).one()
    assert (audit.object_id, audit.ip, audit.data["name"]) == (str(quote.id), "203.0.113.7", "Anna de Vries")
    # the merchant sees who accepted
    assert "Anna de Vries" in _text(client.get(f"/quotes/{quote.id}"))


def test_v4_two_buyers_accepting_at_once_make_one_acceptance(app, client, owner):
    quote = _open_quote(client, owner, language="en")
    path = _path(quote)

    def accept_once():
        buyer = app.test_client()
        return buyer.post(f"{path}/accept", data={"name": "Anna", "agree": "y"}).status_code

    assert at_once(app, accept_once, count=4) == [200] * 4
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "quote.accepted")) == 1
    assert _fresh(quote).status == "accepted"


def test_v4_an_expired_quote_says_so_politely_and_a_forged_post_is_409(app, client, owner):
    quote = _open_quote(client, owner, language="en", issue_date="2026-01-01", expiry_date="2026-01-31")
    buyer = app.test_client()
    page = buyer.get(_path(quote))
    assert page.status_code == 200 and "This quote has expired" in _text(page)
    assert not soup_of(page).select("button.pay")
    refused = _accept(buyer, quote)
    assert refused.status_code == 409 and "expired" in _text(refused)
    assert buyer.post(f"{_path(quote)}/pay").status_code == 409
    assert _fresh(quote).status == "open" and count(CheckoutSession) == 0
    assert "Expired" in _text(client.get("/quotes/", query_string={"status": "expired"}))


def test_v4_paying_one_time_items_charges_exactly_the_quote_with_source_quote(app, client, owner, mailbox):
    quote = _open_quote(client, owner, language="en", **{"lines-1-description": None, "lines-1-unit_price": None,
                                                          "lines-1-frequency": None, "lines-1-quantity": None})
    assert quote.amount_minor == 18000
    buyer = app.test_client()
    assert buyer.post(f"{_path(quote)}/pay").status_code == 409  # not accepted yet: nothing opens
    _accept(buyer, quote)
    checkout = _pay(buyer, quote)
    page = buyer.get(checkout)
    assert soup_of(page).select_one("#f-email")["value"] == "anna@example.com"
    assert not soup_of(page).select("#f-qty_0, #f-price_0, #f-promo")
    response = buyer.post(checkout, data=buyer_form(qty_0="9", price_0="1.00", promo="FREE"))
    assert response.status_code == 303, _text(response)[:800]
    payment = db.session.scalars(select(Payment)).one()
    quote = _fresh(quote)
    assert (payment.amount_minor, payment.source, payment.link_id, payment.status) == (18000, "quote", None,
                                                                                       "succeeded")
    assert (payment.contact_id, payment.company_id) == (quote.contact_id, quote.company_id)
    assert (quote.status, quote.payment_id) == ("paid", payment.id)
    assert [(i.name, i.quantity, i.unit_amount_minor) for i in payment.items] == [("Website setup", 2, 10000)]
    assert sandbox_charges() == 1 and count(Subscription) == 0
    page = buyer.get(_path(quote))
    assert "accepted and paid" in _text(page) and not soup_of(page).select("button.pay")
    assert buyer.post(f"{_path(quote)}/pay").status_code == 409
    run_outbox()
    assert mailbox.to("ann.buyer@example.com")  # the checkout's receipt, to the address typed


def test_v4_a_recurring_item_starts_a_subscription_charged_as_a_links(app, client, owner):
    quote = _open_quote(client, owner, language="en")
    buyer = app.test_client()
    _accept(buyer, quote)
    assert buyer.post(_pay(buyer, quote), data=buyer_form()).status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    subscription = db.session.scalars(select(Subscription)).one()
    assert payment.amount_minor == 20500 and payment.subscription_id == subscription.id
    assert (subscription.frequency, subscription.amount_minor, subscription.status, subscription.mode) == (
        "monthly", 2500, "active", "live")
    assert (subscription.contact_id, subscription.payments_made) == (_fresh(quote).contact_id, 1)
    # a month later the billing run charges the period, as it does a link's subscription
    with time_machine.travel(subscription.next_charge_at + timedelta(hours=1), tick=False):
        bill(subscription.id)
    db.session.rollback()
    renewal = db.session.scalars(select(Payment).where(Payment.source == "subscription")).one()
    assert (renewal.amount_minor, renewal.status, renewal.subscription_id) == (2500, "succeeded", subscription.id)
    assert sandbox_charges() == 2


def test_v4_four_buyers_paying_one_quote_at_once_are_one_charge(app, client, owner):
    quote = _open_quote(client, owner, language="en")
    buyer = app.test_client()
    _accept(buyer, quote)
    paths = [_pay(buyer, quote) for _ in range(4)]  # four checkout sessions of one accepted quote
    cards = iter(["4242424242424242", "5555555555554444", "6011111111111117", "3566002020360505"])
    jobs = list(zip(paths, cards, strict=False))

    def submit():
        path, number = jobs.pop()
        return app.test_client().post(path, data=buyer_form(card_number=number),
                                      environ_base={"REMOTE_ADDR": f"10.9.0.{number[:2]}"}).status_code

    statuses = at_once(app, submit, count=4)
    assert sorted(statuses) == [303, 409, 409, 409], statuses
    db.session.rollback()
    assert count(Payment) == 1 and sandbox_charges() == 1 and count(Subscription) == 1
    assert _fresh(quote).status == "paid"


def test_v4_send_emails_the_pdf_and_the_link_and_the_pdf_is_dutch(app, client, owner, mailbox):
    quote = _open_quote(client, owner)  # language nl
    assert client.post(f"/quotes/{quote.id}/send").status_code == 303
    assert _fresh(quote).sent_at is not None
    run_outbox()
    [message] = mailbox.to("anna@example.com")
    assert "Offerte" in message["Subject"] and "Webbureau" in message["Subject"]
    [(filename, pdf)] = mailbox.attachments_of(message)
    assert filename == "quote-Q-000001.pdf"
    text = pdf_text(pdf)
    for expected in ("Offerte", "Offertedatum", "OFFERTE VOOR", "Geldig tot", "205,00", "Website setup", "elke maand"):
        assert expected in text, (expected, text)
    assert "Betaald bedrag" not in text  # nothing is paid on a quote yet: no "Amount paid" row
    link = extract_link(mailbox.text_of(message), "/quote/")
    assert link == _path(quote)
    buyer = app.test_client()
    page = buyer.get(link)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    assert "Offerte accepteren" in _text(page) and "Daarna € 25,00 elke maand tot opzegging" in _text(page)
    assert "Accept quote" in _text(buyer.get(link, query_string={"lang": "en"}))
    # the merchant's PDF is the same document
    assert "Offerte" in pdf_text(client.get(f"/quotes/{quote.id}/pdf").get_data())


def test_v4_the_buyer_can_decline_an_open_quote_once(app, client, owner):
    quote = _open_quote(client, owner, language="en")
    buyer = app.test_client()
    page = buyer.post(f"{_path(quote)}/decline", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert page.status_code == 200 and "This quote was declined." in _text(page)
    assert not soup_of(page).select("button.pay")
    assert _fresh(quote).status == QuoteStatus.DECLINED.value
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "quote.declined")).one()
    assert audit.ip == "203.0.113.9"
    assert _accept(buyer, quote).status_code == 409  # declined: no acceptance after it
    assert buyer.post(f"{_path(quote)}/pay").status_code == 409
    assert _fresh(quote).status == QuoteStatus.DECLINED.value and count(CheckoutSession) == 0
    assert "Declined" in _text(client.get("/quotes/", query_string={"status": "declined"}))


def test_v4_another_merchants_quote_is_a_404_and_tokens_cannot_be_forged(app, client, owner):
    quote = _open_quote(client, owner)
    other = app.test_client()
    login(other, make_merchant(company="Someone Else"))
    for path in (f"/quotes/{quote.id}", f"/quotes/{quote.id}/edit", f"/quotes/{quote.id}/pdf"):
        assert other.get(path).status_code == 404, path
    for path in ("send", "void", "finalize", "delete"):
        assert other.post(f"/quotes/{quote.id}/{path}").status_code == 404, path
    assert "Q-000001" not in _text(other.get("/quotes/"))
    assert _fresh(quote).status == "open" and _fresh(quote).sent_at is None
    anyone = app.test_client()
    token = quote_token(quote)
    for bad in (token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"), "1", "MQ.bogus", token + "x"):
        assert anyone.get(f"/quote/{bad}").status_code == 404
        assert anyone.post(f"/quote/{bad}/accept", data={"name": "X", "agree": "y"}).status_code == 404
        assert anyone.post(f"/quote/{bad}/pay").status_code == 404
        assert anyone.post(f"/quote/{bad}/decline").status_code == 404
        assert anyone.get(f"/quote/{bad}/pdf").status_code == 404
    # a draft has no public page, and a void quote can't be accepted
    draft = _draft(client, owner)
    assert anyone.get(_path(draft)).status_code == 404
    assert client.post(f"/quotes/{quote.id}/void").status_code == 303
    assert _accept(anyone, quote).status_code == 409 and _fresh(quote).status == QuoteStatus.VOID.value


def test_v4_a_quote_cannot_be_voided_while_a_payment_of_it_is_on_its_way(app, client, owner, faults):
    """V4, M1: voiding an accepted quote is refused while a bank debit of it clears or a charge of it is with the
    processor (it may yet pay the quote, and a void quote is never paid): the debit clears and the quote is paid;
    once the unanswered charge is found failed, the other quote can be voided."""
    from kassa.services.checkout.checkout import RECONCILE_AFTER
    from kassa.services.platform.ticks import run_tick

    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # the sandbox with the test's faults (installed after owner)
    # The first Monday after today whose next 4 days are business days in the account's country (so 4 calendar
    # days clear the debit), at 10:00: later than the real clock the owner signed in on (a session from the future
    # is sent back to /login) and near enough that the test client's session cookie is still alive.
    start = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    start += timedelta(days=7 - start.weekday())
    while add_business_days(start.date(), 4, owner.account.country) != (start + timedelta(days=4)).date():
        start += timedelta(days=7)
    with time_machine.travel(start, tick=False) as clock:
        one_time = {"currency": "USD", "language": "en", "lines-1-description": None, "lines-1-unit_price": None,
                    "lines-1-frequency": None, "lines-1-quantity": None}
        debited, timed_out = _open_quote(client, owner, **one_time), _open_quote(client, owner, **one_time)
        buyer = app.test_client()
        for quote in (debited, timed_out):
            assert _accept(buyer, quote).status_code == 200
        assert buyer.post(_pay(buyer, debited), data=buyer_form("ach")).status_code == 303
        faults.inject("timeout", account_id=owner.account_id)
        assert buyer.post(_pay(buyer, timed_out), data=buyer_form()).status_code == 202  # unknown: reconciled later
        for quote in (debited, timed_out):
            refused = client.post(f"/quotes/{quote.id}/void", follow_redirects=True)
            assert "still being processed" in _text(refused)
            assert _fresh(quote).status == QuoteStatus.ACCEPTED.value
        clock.shift(timedelta(days=4, minutes=1))  # the debit clears (T4); the reconciler finds no charge
        assert not run_tick().failed
        assert _fresh(debited).status == QuoteStatus.PAID.value
        assert client.post(f"/quotes/{timed_out.id}/void").status_code == 303
        assert _fresh(timed_out).status == QuoteStatus.VOID.value
        assert client.post(f"/quotes/{debited.id}/void").status_code == 303  # paid: refused too
        assert _fresh(debited).status == QuoteStatus.PAID.value
    assert timedelta(days=4) > RECONCILE_AFTER
