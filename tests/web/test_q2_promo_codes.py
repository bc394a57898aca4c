"""Q2 promo codes: the merchant's list (create with field errors, deactivate after a confirmation, "3 of 10
used"), the checkout's "Add promo code" (with and without JavaScript), every reason a code is refused (at the
field, nothing charged), redemptions counted atomically (50 buyers at once on a 10-use code → exactly 10), and
what a payment keeps (code, promo discount, net) and shows (panel, receipt, email, filter, export)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import now
from kassa.extensions import db
from kassa.models import Account, Payment, PaymentAttempt, PromoCode, User
from kassa.renderers.receipt import receipt_html
from kassa.services.exports.export_sources import headers_and_rows
from kassa.services.links import promo_codes
from kassa.services.links.link_drafts import ItemDraft
from kassa.services.payments.receipts import receipt_data
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import all_payments, count, field_errors, make_link, plain, sandbox_charges
from tests.support.links import errors_of, soup_of


def _shop(*items: ItemDraft, currency="EUR"):
    owner = make_merchant(company="Koffiebranderij", currency=currency, country="NL" if currency == "EUR" else "US")
    items = items or (ItemDraft(name="Beans", unit_price="25.00", quantity="1"),)
    return owner, make_link(owner, items=list(items), currency=currency)


def _code(owner: User, code="SUMMER10", **values) -> PromoCode:
    values = {"code": code, "kind": "percent", "percent": "10", **values}
    db.session.rollback()
    actor = Actor(user=db.session.get(User, owner.id), account_id=owner.account_id)
    return promo_codes.create_code(actor, values, "en")


def _promo(promo_id: int) -> PromoCode:
    db.session.rollback()
    return db.session.get(PromoCode, promo_id)


def _pay(client, path, **overrides):
    return client.post(path, data=buyer_form("card", **overrides))


# -- the merchant's list ----------------------------------------------------------------------------


def test_q2_merchant_creates_lists_and_deactivates_a_code(client, app):
    owner, link = _shop()
    log_in(client, owner.email, PASSWORD)
    empty = client.get("/promo-codes/")
    assert empty.status_code == 200 and "No promo codes yet" in page_text(empty)
    response = client.post("/promo-codes/new", data={
        "code": "summer10", "kind": "percent", "percent": "12.5", "max_redemptions": "10",
        "expires_at": (now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"), "first_time_only": "y",
        "link_ids": str(link.id)})
    assert response.status_code == 303, errors_of(response)
    promo = db.session.scalar(select(PromoCode))
    assert (promo.code, promo.kind, promo.value, promo.max_redemptions, promo.first_time_only, promo.link_ids) == (
        "SUMMER10", "percent", 1250, 10, True, [link.id])
    listing = page_text(client.get("/promo-codes/"))
    assert "SUMMER10" in listing and "12.5% off" in listing and "0 of 10 used" in listing
    assert "Spring concert" in listing and "First-time buyers only" in listing
    assert db.session.get(Account, owner.account_id).promo_links == f",{link.id},"
    # Deactivate: a confirmation first, then the code stops working.
    confirm = client.get(f"/promo-codes/{promo.id}/deactivate")
    assert "Deactivate SUMMER10?" in page_text(confirm)
    assert client.post(f"/promo-codes/{promo.id}/deactivate").status_code == 303
    assert _promo(promo.id).active is False
    assert "Inactive" in page_text(client.get("/promo-codes/"))
    assert db.session.get(Account, owner.account_id).promo_links == ""


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"code": "", "kind": "percent", "percent": "10"}, "code", "Enter a code"),
    ({"code": "SUMMER 10", "kind": "percent", "percent": "10"}, "code", "letters A–Z"),
    ({"code": "X" * 33, "kind": "percent", "percent": "10"}, "code", "up to 32"),
    ({"code": "OK", "kind": "percent", "percent": "0"}, "percent", "percentage from 0.01 to 100"),
    ({"code": "OK", "kind": "percent", "percent": "101"}, "percent", "percentage from 0.01 to 100"),
    ({"code": "OK", "kind": "amount", "amount": "-5", "currency": "EUR"}, "amount", "above zero"),
    ({"code": "OK", "kind": "amount", "amount": "5", "currency": "XXQ"}, "currency", "Choose a currency"),
    ({"code": "OK", "kind": "half"}, "kind", "percentage or an amount"),
    ({"code": "OK", "kind": "percent", "percent": "10", "max_redemptions": "0"}, "max_redemptions", "from 1"),
    ({"code": "OK", "kind": "percent", "percent": "10", "expires_at": "yesterday"}, "expires_at", "date and time"),
    ({"code": "OK", "kind": "percent", "percent": "10", "expires_at": "2020-01-01T10:00"}, "expires_at", "future"),
])
def test_q2_bad_input_is_refused_at_the_field_and_saves_nothing(client, app, data, field, message):
    owner, _link = _shop()
    log_in(client, owner.email, PASSWORD)
    response = client.post("/promo-codes/new", data=data)
    assert response.status_code == 422
    assert message in errors_of(response)[field]
    assert count(PromoCode) == 0


def test_q2_codes_are_unique_per_account_case_insensitively_and_links_must_be_the_accounts(client, app):
    owner, _link = _shop()
    _other, other_link = _shop()
    _code(owner, "SUMMER10")
    log_in(client, owner.email, PASSWORD)
    again = client.post("/promo-codes/new", data={"code": "Summer10", "kind": "percent", "percent": "5"})
    assert "already have a code SUMMER10" in errors_of(again)["code"]
    foreign = client.post("/promo-codes/new", data={"code": "X1", "kind": "percent", "percent": "5",
                                                     "link_ids": str(other_link.id)})
    assert foreign.status_code == 422 and count(PromoCode) == 1
    # Another account may use the same code text.
    _code(_other, "SUMMER10")
    assert count(PromoCode) == 2


def test_q2_another_merchant_gets_404(client, app):
    owner, _link = _shop()
    promo = _code(owner)
    intruder = make_merchant(company="Intruder")
    log_in(client, intruder.email, PASSWORD)
    assert client.get(f"/promo-codes/{promo.id}/deactivate").status_code == 404
    assert client.post(f"/promo-codes/{promo.id}/deactivate").status_code == 404
    assert _promo(promo.id).active is True
    assert "No promo codes yet" in page_text(client.get("/promo-codes/"))


# -- the checkout -----------------------------------------------------------------------------------


def test_q2_checkout_offers_the_field_only_when_a_code_applies_to_the_link(client, app):
    owner, link = _shop()
    other = make_link(owner, name="Other link", currency="EUR")
    assert soup_of(client.get(start_checkout(client, link.slug))).select_one("#f-promo") is None
    _code(owner, "ONLYOTHER", link_ids=[str(other.id)])
    assert soup_of(client.get(start_checkout(client, link.slug))).select_one("#f-promo") is None
    assert soup_of(client.get(start_checkout(client, other.slug))).select_one("#f-promo") is not None
    _code(owner, "EVERYWHERE")
    page = soup_of(client.get(start_checkout(client, link.slug)))
    assert page.select_one("#f-promo") is not None
    assert page.select_one("[data-reveal=promo]").get_text() == "Add promo code"


def test_q2_apply_without_javascript_reprices_keeps_what_was_typed_then_pays_with_the_promo(client, app, mailbox):
    owner, link = _shop(ItemDraft(name="Beans", unit_price="12.50", quantity="1"),
                        ItemDraft(name="Filter", unit_price="12.50", quantity="1"))
    promo = _code(owner, "SUMMER10")
    path = start_checkout(client, link.slug)
    applied = client.post(path, data=buyer_form("card", promo="summer10", action="update"))
    assert applied.status_code == 200
    soup = soup_of(applied)
    assert plain(soup.select_one("#promo").get_text(" ")) == "Promo SUMMER10 Remove -€2.50"
    assert soup.select_one("#summary-total").get_text() == "€22.50"
    assert soup.select_one("#f-email")["value"] == "ann.buyer@example.com"
    assert soup.select_one("#f-promo")["value"] == "summer10"
    assert count(PaymentAttempt) == 0 and _promo(promo.id).redeemed == 0
    # "Remove": re-priced without it.
    removed = soup_of(client.post(path, data=buyer_form("card", promo="summer10", action="unpromo")))
    assert removed.select_one("#summary-total").get_text() == "€25.00" and not removed.select_one("#promo").get_text()
    # Pay with it.
    response = _pay(client, path, promo="SUMMER10")
    assert response.status_code == 303, field_errors(response)
    (payment,) = all_payments()
    assert (payment.amount_minor, payment.gross_minor, payment.discount_minor, payment.promo_code,
            payment.promo_discount_minor, payment.net_minor) == (2250, 2500, 0, "SUMMER10", 250, 2250)
    assert [i.promo_minor for i in payment.items] == [125, 125]
    assert _promo(promo.id).redeemed == 1
    # Confirmation, panel, receipt, email, export, filter.
    assert "Promo SUMMER10" in page_text(client.get(path))
    with app.test_request_context():
        receipt = plain(receipt_html(receipt_data(payment)))
    assert "Promo code SUMMER10" in receipt and "-€2.50" in receipt and "€22.50" in receipt
    log_in(client, owner.email, PASSWORD)
    panel = page_text(client.get(f"/payments/{payment.id}"))
    assert "Promo SUMMER10" in panel and "€22.50" in panel
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "promo"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    assert (row["Promo code"], str(row["Promo discount"])) == ("SUMMER10", "2.50")


def test_q2_javascript_apply_posts_only_the_choices_and_gets_the_live_promo_row(client, app):
    owner, link = _shop()
    _code(owner, "TENOFF", kind="amount", amount="10.00", currency="EUR")
    path = start_checkout(client, link.slug)
    answer = client.post(path, data={"lang": "nl", "promo": "tenoff", "action": "update"})
    soup = soup_of(answer)
    assert answer.status_code == 200
    assert soup.select_one("#summary-total")["data-minor"] == "1500"
    assert "TENOFF" in soup.select_one("#promo").get_text()
    assert plain(soup.select_one("#pay-label").get_text()) == "Betaal € 15,00"
    assert count(PaymentAttempt) == 0


@pytest.mark.parametrize("case", ["unknown", "expired", "used_up", "other_link", "other_currency", "inactive",
                                  "whole_amount"])
def test_q2_a_code_that_does_not_apply_is_refused_at_the_field_and_nothing_is_charged(client, app, case):
    owner, link = _shop()
    other = make_link(owner, name="Other", currency="EUR")
    text = "GOOD"
    if case == "expired":
        promo = _code(owner, text, expires_at=(now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        with db.session.begin():
            db.session.get(PromoCode, promo.id).expires_at = now() - timedelta(minutes=1)
    elif case == "used_up":
        promo = _code(owner, text, max_redemptions="1")
        with db.session.begin():
            db.session.get(PromoCode, promo.id).redeemed = 1
    elif case == "other_link":
        _code(owner, text, link_ids=[str(other.id)])
        _code(owner, "KEEPSFIELD")
    elif case == "other_currency":
        _code(owner, text, kind="amount", amount="5", currency="USD")
    elif case == "whole_amount":
        _code(owner, text, percent="100")
    elif case == "inactive":
        promo = _code(owner, text)
        promo_codes.deactivate_code(Actor(user=owner, account_id=owner.account_id), promo.id)
        _code(owner, "KEEPSFIELD")
    else:
        _code(owner, "OTHER")
    path = start_checkout(client, link.slug)
    response = _pay(client, path, promo=text)
    assert response.status_code == 422
    message = field_errors(response)["promo"]
    assert {"unknown": "isn't valid", "expired": "has expired", "used_up": "used up",
            "other_link": "can't be used for this purchase", "other_currency": "in EUR",
            "inactive": "isn't valid", "whole_amount": "whole amount"}[case] in message
    assert count(Payment) == 0 and count(PaymentAttempt) == 0 and sandbox_charges() == 0
    assert sum(p.redeemed for p in db.session.scalars(select(PromoCode))) == (1 if case == "used_up" else 0)


def test_q2_first_time_buyers_only(client, app):
    owner, link = _shop()
    promo = _code(owner, "WELCOME", first_time_only="y")
    first = _pay(client, start_checkout(client, link.slug), promo="WELCOME", email="new@example.com")
    assert first.status_code == 303
    again = _pay(client, start_checkout(client, link.slug), promo="welcome", email="NEW@example.com")
    assert again.status_code == 422
    assert "first-time buyers only" in field_errors(again)["promo"]
    other = _pay(client, start_checkout(client, link.slug), promo="WELCOME", email="other@example.com")
    assert other.status_code == 303
    assert [p.promo_code for p in all_payments()] == ["WELCOME", "WELCOME"]
    assert _promo(promo.id).redeemed == 2


def test_q2_a_declined_charge_gives_the_redemption_back(client, app):
    owner, link = _shop()
    promo = _code(owner, "ONCE", max_redemptions="1")
    path = start_checkout(client, link.slug)
    declined = _pay(client, path, promo="ONCE", card_number="4000000000000002")
    assert declined.status_code == 422
    assert _promo(promo.id).redeemed == 0
    assert _pay(client, path, promo="ONCE").status_code == 303
    assert _promo(promo.id).redeemed == 1
    # Used up now: the next buyer is told so and pays nothing with it.
    later = _pay(client, start_checkout(client, link.slug), promo="ONCE", email="late@example.com")
    assert "used up" in field_errors(later)["promo"]


def test_q2_recurring_items_get_the_promo_on_todays_charge_only(client, app):
    owner, link = _shop(ItemDraft(name="Lessons", unit_price="20.00", quantity="1", frequency="monthly",
                                  term_type="auto_renew"))
    _code(owner, "HALF", percent="50")
    path = start_checkout(client, link.slug)
    page = page_text(client.post(path, data=buyer_form("card", promo="HALF", action="update")))
    assert "today's payment only" in page and "Then €20.00 every month" in page
    assert _pay(client, path, promo="HALF").status_code == 303
    (payment,) = all_payments()
    assert payment.amount_minor == 1000
    from kassa.models import Subscription
    assert db.session.scalar(select(Subscription.amount_minor)) == 2000


def test_q2_payments_filter_by_promo_code(client, app):
    owner, link = _shop()
    _code(owner, "SUMMER10")
    assert _pay(client, start_checkout(client, link.slug), promo="SUMMER10").status_code == 303
    assert _pay(client, start_checkout(client, link.slug), email="b@example.com").status_code == 303
    log_in(client, owner.email, PASSWORD)
    response = client.get("/payments/", query_string={"adv": json.dumps([[["promo_code", "is", ["summer10"]]]])})
    assert response.status_code == 200
    rows = soup_of(response).select("tbody tr")
    assert len(rows) == 1 and "€22.50" in rows[0].get_text(), page_text(response)[:2000]
    known = client.get("/payments/", query_string={"adv": json.dumps([[["promo_code", "unknown", []]]])})
    assert [r.get_text() for r in soup_of(known).select("tbody tr") if "€25.00" in r.get_text()]


# -- atomic redemptions ------------------------------------------------------------------------------

BUYERS = 50
USES = 10


def test_q2_fifty_buyers_at_once_on_a_ten_use_code_make_exactly_ten_discounted_payments(app, client):
    owner, link = _shop()
    promo = _code(owner, "TEN", max_redemptions=str(USES))
    paths = [start_checkout(client, link.slug) for _ in range(BUYERS)]
    barrier = threading.Barrier(BUYERS)
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def submit(i: int, path: str) -> None:
        try:
            buyer = app.test_client()
            with app.app_context():
                barrier.wait(timeout=120)
                response = buyer.post(path, data=buyer_form(promo="TEN", email=f"b{i}@example.com"),
                                      environ_base={"REMOTE_ADDR": f"10.7.{i // 200}.{i % 200 + 1}"})
                results.append((response.status_code, field_errors(response).get("promo", "")))
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i, path)) for i, path in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    ok = [r for r in results if r[0] == 303]
    refused = [r for r in results if r[0] != 303]
    assert len(ok) == USES, results
    assert all(status == 422 and "used up" in message for status, message in refused), refused
    payments = all_payments()
    assert len(payments) == USES and all(p.promo_code == "TEN" and p.amount_minor == 2250 for p in payments)
    assert sandbox_charges() == USES
    assert _promo(promo.id).redeemed == USES
