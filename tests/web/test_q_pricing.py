"""Q1 discounts on line items, Q3 adjustable quantity, Q4 pay what you want: the link editor's options, the
checkout (with and without JavaScript), the server's checks of what the buyer posted, and what a payment keeps
(gross, discount, net), shows (receipt, email, panel) and exports."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.models import LinkItem, Payment, PaymentAttempt, PaymentLink
from kassa.renderers.receipt import receipt_html
from kassa.services.exports.export_sources import headers_and_rows
from kassa.services.links.link_drafts import ItemDraft
from kassa.services.payments.receipts import receipt_data
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.billing import advance, buy, frozen, renewals_of
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import all_payments, count, field_errors, make_link, plain
from tests.support.links import errors_of, item_fields, link_form, soup_of


def priced_item(name="Coffee beans", price="25.00", *, quantity="1", **options) -> ItemDraft:
    return ItemDraft(name=name, unit_price=price, quantity=quantity, **options)


def _merchant_client(client):
    owner = make_merchant(company="Roastery")
    log_in(client, owner.email, PASSWORD)
    return owner


def _item(link_id: int) -> LinkItem:
    db.session.rollback()
    return db.session.scalar(select(LinkItem).where(LinkItem.link_id == link_id).order_by(LinkItem.position))


def _new_link(client, **fields) -> PaymentLink:
    before = set(db.session.scalars(select(PaymentLink.id)))
    response = client.post("/links/new", data=link_form(item_fields(0, "Beans", "20.00"), **fields))
    assert response.status_code == 303, errors_of(response)
    (new_id,) = set(db.session.scalars(select(PaymentLink.id))) - before
    return db.session.get(PaymentLink, new_id)


# -- the link editor (every option used) -------------------------------------------------------------


def test_q1_editor_percentage_discount_is_saved_and_previewed(client, app):
    _merchant_client(client)
    link = _new_link(client, **{"items-0-discount_type": "percent", "items-0-discount_value": "12.5"})
    item = _item(link.id)
    assert (item.discount_type, item.discount_value) == ("percent", 1250)
    preview = client.post("/links/preview", data=link_form(
        item_fields(0, "Beans", "20.00"), **{"items-0-discount_type": "percent", "items-0-discount_value": "12.5"}))
    text = page_text(preview)
    assert "Discount (12.5%)" in text and "−€2.50" in text.replace("-", "−") and "€17.50" in text
    # The editor shows the saved discount back.
    page = soup_of(client.get(f"/links/{link.id}/edit"))
    assert page.select_one("#f-items-0-discount_value")["value"] == "12.5"
    assert page.select_one("#f-items-0-discount_type option[selected]")["value"] == "percent"


def test_q1_editor_amount_discount_is_saved_and_refused_above_the_line(client, app):
    _merchant_client(client)
    link = _new_link(client, **{"items-0-discount_type": "amount", "items-0-discount_value": "5.00"})
    assert (_item(link.id).discount_type, _item(link.id).discount_value) == ("amount", 500)
    for value, message in (("25.00", "can't be more than the line's price"), ("-1", "above zero"),
                           ("abc", "above zero")):
        response = client.post("/links/new", data=link_form(
            item_fields(0, "Beans", "20.00"), **{"items-0-discount_type": "amount", "items-0-discount_value": value}))
        assert response.status_code == 422
        assert message in errors_of(response)["items-0-discount_value"]
    for value in ("0", "100.5", "12.345"):
        response = client.post("/links/new", data=link_form(
            item_fields(0, "Beans", "20.00"), **{"items-0-discount_type": "percent", "items-0-discount_value": value}))
        assert "percentage from 0.01 to 100" in errors_of(response)["items-0-discount_value"]
    response = client.post("/links/new", data=link_form(item_fields(0), **{"items-0-discount_type": "half"}))
    assert "items-0-discount_type" in errors_of(response)
    assert count(PaymentLink) == 1  # only the valid one


def test_q3_editor_adjustable_quantity_with_min_and_max(client, app):
    _merchant_client(client)
    link = _new_link(client, **{"items-0-quantity_adjustable": "1", "items-0-quantity_min": "1",
                                "items-0-quantity_max": "6", "items-0-quantity": "2"})
    item = _item(link.id)
    assert (item.quantity_adjustable, item.quantity_min, item.quantity_max, item.quantity) == (True, 1, 6, 2)
    bad = client.post("/links/new", data=link_form(item_fields(0, quantity="9"), **{
        "items-0-quantity_adjustable": "1", "items-0-quantity_min": "2", "items-0-quantity_max": "1"}))
    assert "items-0-quantity_max" in errors_of(bad)
    bad = client.post("/links/new", data=link_form(item_fields(0, quantity="9"), **{
        "items-0-quantity_adjustable": "1", "items-0-quantity_min": "1", "items-0-quantity_max": "5"}))
    assert "from 1 to 5" in errors_of(bad)["items-0-quantity"]
    preview = client.post("/links/preview", data=link_form(item_fields(0), **{
        "items-0-quantity_adjustable": "1", "items-0-quantity_min": "1", "items-0-quantity_max": "6"}))
    assert "Buyer chooses 1 to 6" in page_text(preview)


def test_q4_editor_pay_what_you_want_with_min_max_and_suggested(client, app):
    _merchant_client(client)
    link = _new_link(client, **{"items-0-custom_amount": "1", "items-0-amount_min": "5.00",
                                "items-0-amount_max": "100.00"})
    item = _item(link.id)
    assert (item.custom_amount, item.amount_min_minor, item.amount_max_minor, item.unit_amount_minor) == (
        True, 500, 10000, 2000)
    bad = client.post("/links/new", data=link_form(item_fields(0, unit_price="2.00"), **{
        "items-0-custom_amount": "1", "items-0-amount_min": "5.00", "items-0-amount_max": "1.00"}))
    errors = errors_of(bad)
    assert "below the minimum" in errors["items-0-amount_max"]
    bad = client.post("/links/new", data=link_form(item_fields(0, unit_price="2.00"), **{
        "items-0-custom_amount": "1", "items-0-amount_min": "5.00"}))
    assert "between the minimum and the maximum" in errors_of(bad)["items-0-unit_price"]
    preview = client.post("/links/preview", data=link_form(item_fields(0), **{"items-0-custom_amount": "1"}))
    assert "Buyer chooses the price" in page_text(preview)


# -- the checkout ------------------------------------------------------------------------------------


def _shop(*items: ItemDraft, currency="EUR"):
    owner = make_merchant(company="Koffiebranderij", currency=currency, country="NL" if currency == "EUR" else "US")
    return owner, make_link(owner, items=list(items), currency=currency)


def _pay(client, path, **overrides):
    return client.post(path, data=buyer_form("card", **overrides))


def test_q1_discounted_purchase_keeps_gross_discount_net_and_shows_them_everywhere(client, app):
    owner, link = _shop(priced_item("Beans", "12.50", quantity="3", discount_type="percent", discount_value="10"),
                        priced_item("Filter", "4.00", discount_type="amount", discount_value="1.00"))
    path = start_checkout(client, link.slug)
    page = page_text(client.get(path))
    # 3 × 12.50 = 37.50, 10 % = 3.75 → 33.75; 4.00 − 1.00 = 3.00; total 36.75
    assert "Discount (10%)" in page and "€36.75" in page
    response = _pay(client, path)
    assert response.status_code == 303, page_text(response)[:400]
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.gross_minor, payment.discount_minor, payment.net_minor) == (
        3675, 4150, 475, 3675)
    assert [(i.quantity, i.unit_amount_minor, i.discount_minor) for i in payment.items] == [(3, 1250, 375),
                                                                                             (1, 400, 100)]
    assert payment.deal.amount_minor == 3675  # seed 003: the deal amount includes the discount
    # Confirmation page, payment panel, receipt, export.
    assert "Discount (10%)" in page_text(client.get(path))
    log_in(client, owner.email, PASSWORD)
    panel = page_text(client.get(f"/payments/{payment.id}"))
    assert "Discount (10%)" in panel and "€36.75" in panel
    with app.test_request_context():
        receipt = plain(receipt_html(receipt_data(payment)))
    assert "Discount (10%)" in receipt and "€41.50" in receipt and "€4.75" in receipt and "€36.75" in receipt
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "discount"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    assert (str(row["Gross amount"]), str(row["Before discounts"]), str(row["Discount"])) == ("36.75", "41.50", "4.75")


def test_q3_quantity_change_without_javascript_update_then_pay(client, app):
    _owner, link = _shop(priced_item("Beans", "10.00", quantity="1", quantity_adjustable="1", quantity_min="1",
                                     quantity_max="5", discount_type="percent", discount_value="10"))
    path = start_checkout(client, link.slug)
    page = soup_of(client.get(path))
    assert page.select_one("#f-qty_0")["max"] == "5" and page.select_one("[data-reprice-button]") is not None
    # "Update total": the page again, re-priced, with what was typed kept; nothing charged.
    updated = client.post(path, data=buyer_form("card", qty_0="3", action="update"))
    assert updated.status_code == 200
    soup = soup_of(updated)
    assert soup.select_one("#summary-total").get_text() == "€27.00" and soup.select_one("#f-qty_0")["value"] == "3"
    assert soup.select_one("#f-email")["value"] == "ann.buyer@example.com"
    assert soup.select_one("#f-card_cvc").get("value", "") == ""  # what an update loses: the security code (C6)
    assert count(Payment) == 0 and count(PaymentAttempt) == 0
    assert _pay(client, path, qty_0="3").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.items[0].quantity, payment.discount_minor) == (2700, 3, 300)


def test_q3_javascript_reprice_posts_only_the_choices_and_gets_the_live_figures(client, app):
    """What checkout.js sends on a quantity change: no payment details, and it copies the data-live figures."""
    _owner, link = _shop(priced_item("Beans", "10.00", quantity_adjustable="1", quantity_min="1", quantity_max="5"))
    path = start_checkout(client, link.slug)
    answer = client.post(path, data={"lang": "nl", "qty_0": "4", "action": "update"})
    soup = soup_of(answer)
    assert answer.status_code == 200
    assert soup.select_one("#summary-total")["data-minor"] == "4000"
    assert re.sub(r"\s", " ", soup.select_one("#pay-label").get_text()) == "Betaal € 40,00"
    assert count(PaymentAttempt) == 0


@pytest.mark.parametrize("quantity", ["6", "0", "-1", "abc", "99999999999999999999", "2.5"])
def test_q3_tampered_quantity_is_refused_at_the_field_and_nothing_is_charged(client, app, quantity):
    _owner, link = _shop(priced_item("Beans", "10.00", quantity_adjustable="1", quantity_min="1", quantity_max="5"))
    path = start_checkout(client, link.slug)
    response = _pay(client, path, qty_0=quantity)
    assert response.status_code == 422
    assert re.search(r"from 1 to 5", field_errors(response)["qty_0"])
    assert count(Payment) == 0 and count(PaymentAttempt) == 0


def test_q3_quantity_of_a_fixed_line_can_not_be_changed(client, app):
    _owner, link = _shop(priced_item("Beans", "10.00", quantity="2"))
    path = start_checkout(client, link.slug)
    assert _pay(client, path, qty_0="50").status_code == 303
    assert all_payments()[-1].amount_minor == 2000


def test_q4_pay_what_you_want_charges_the_typed_amount(client, app):
    _owner, link = _shop(priced_item("Donation", "15.00", custom_amount="1", amount_min="5.00", amount_max="500.00"))
    path = start_checkout(client, link.slug)
    assert soup_of(client.get(path)).select_one("#f-price_0")["value"] == "15.00"  # the suggested amount
    assert _pay(client, path, price_0="42.50").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.items[0].unit_amount_minor) == (4250, 4250)


@pytest.mark.parametrize(("typed", "lang", "message"), [
    ("4.99", "en", "Enter at least €5.00."), ("500.01", "en", "Enter at most €500.00."),
    ("-10", "en", "Enter an amount like 12.50"), ("", "en", "Enter the amount you want to pay."),
    ("1e9", "en", "Enter an amount like 12.50"), ("4,99", "nl", "Vul minstens € 5,00 in."),
    ("600", "fr", "Saisissez au plus 500,00 €."),
])
def test_q4_amount_outside_the_bounds_is_refused_with_a_clear_message(client, app, typed, lang, message):
    _owner, link = _shop(priced_item("Donation", "15.00", custom_amount="1", amount_min="5.00", amount_max="500.00"))
    path = start_checkout(client, link.slug)
    response = _pay(client, path, price_0=typed, lang=lang)
    assert response.status_code == 422
    assert field_errors(response)["price_0"].replace("\u202f", " ").replace("\xa0", " ") == message
    assert count(Payment) == 0 and count(PaymentAttempt) == 0


def test_q4_huge_amount_without_a_maximum_is_refused(client, app):
    _owner, link = _shop(priced_item("Donation", "15.00", custom_amount="1"))
    path = start_checkout(client, link.slug)
    response = _pay(client, path, price_0="999999999999")
    assert response.status_code == 422 and "too large" in field_errors(response)["price_0"]
    assert count(PaymentAttempt) == 0
    assert _pay(client, path, price_0="0.50").status_code == 303  # no minimum: anything above zero
    assert all_payments()[-1].amount_minor == 50


def test_q3_q4_checkout_with_every_pricing_option_stays_under_30_kb(client, app):
    """Q12's budget with the Q1/Q3/Q4 controls on: HTML + CSS + JS of Kassa's own, uncompressed."""
    _owner, link = _shop(
        priced_item("Beans", "12.50", quantity="2", quantity_adjustable="1", quantity_min="1", quantity_max="9",
                    discount_type="percent", discount_value="10"),
        priced_item("Tip", "3.00", custom_amount="1", amount_min="1.00", amount_max="50.00",
                    discount_type="amount", discount_value="0.50"))
    path = start_checkout(client, link.slug)
    html = client.get(path).get_data()
    assert b'id="f-qty_0"' in html and b'id="f-price_1"' in html and b"Discount (10%)" in html
    total = len(html)
    for pattern in (rb'href="(/assets/[^"]+)"', rb'src="(/assets/[^"]+)"'):
        total += sum(len(client.get(asset.decode().replace("&amp;", "&")).get_data())
                     for asset in re.findall(pattern, html))
    assert total < 30 * 1024, total


def test_q1_a_discount_on_a_recurring_line_applies_to_every_period(client, app):
    """The subscription charges the net every period; each renewal keeps gross, discount and net."""
    with frozen():
        owner = make_merchant(company="Lesson Shop")
        link = make_link(owner, items=[ItemDraft(name="Lessons", unit_price="10.00", quantity="2",
                                                 frequency="monthly", term_type="auto_renew",
                                                 discount_type="percent", discount_value="15")])
        sub = buy(client, link)
        assert sub.amount_minor == 1700  # 2 × 10.00 − 15 %
        advance(owner, days=32)
        (renewal,) = renewals_of(sub)
    assert (renewal.amount_minor, renewal.gross_minor, renewal.discount_minor, renewal.net_minor) == (
        1700, 2000, 300, 1700)
    assert [(i.quantity, i.unit_amount_minor, i.discount_minor) for i in renewal.items] == [(2, 1000, 300)]
    with app.test_request_context():
        text = plain(receipt_html(receipt_data(renewal)))
    assert "Discount (15%)" in text and "$17.00" in text


def test_q1_a_link_whose_discounts_take_everything_off_is_refused_in_the_editor(client, app):
    owner = make_merchant(company="Free stuff")
    with pytest.raises(ValidationFailed) as refused:
        make_link(owner, items=[priced_item("Sample", "5.00", discount_type="percent", discount_value="100")],
                  currency="EUR")
    assert "comes to nothing to pay" in refused.value.errors["items"]
    assert count(PaymentLink) == 0
    # Another line with a price left to pay: a legitimate link.
    link = make_link(owner, items=[priced_item("Sample", "5.00", discount_type="percent", discount_value="100"),
                                   priced_item("Beans", "10.00")], currency="EUR")
    assert link.id


def test_q1_q3_quantities_that_leave_nothing_after_the_discount_are_refused_and_nothing_is_charged(client, app):
    """A fixed €5.00 off a €5.00 line: one costs nothing (refused at checkout), two cost €5.00 (paid)."""
    _owner, link = _shop(priced_item("Beans", "5.00", quantity="2", quantity_adjustable="1", quantity_min="1",
                                     quantity_max="3", discount_type="amount", discount_value="5.00"))
    path = start_checkout(client, link.slug)
    refused = _pay(client, path, qty_0="1")
    assert refused.status_code == 422 and "comes to nothing to pay" in page_text(refused)
    assert count(Payment) == 0 and count(PaymentAttempt) == 0
    assert _pay(client, path, qty_0="2").status_code == 303
    assert [(p.amount_minor, p.discount_minor) for p in all_payments()] == [(500, 500)]
