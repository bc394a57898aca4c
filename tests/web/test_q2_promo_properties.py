"""Q2 — money stays exact with a promo code: random carts (quantities, discounts, pay what you want; 0, 2 and 3
decimal currencies) with a percentage or an amount promo, priced by the one pricing function and paid through
the real checkout: each line's promo share (percent: half-up per line on its net; amount: largest remainder in
proportion to the nets, never more than the total), the totals, the amount charged, the payment record, its
items, the receipt and the export agree to the minor unit."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Payment, PaymentAttempt, User
from kassa.money import Money, exponent
from kassa.order_summary import BuyerChoices, DiscountType, allocate_amount, build_order_summary
from kassa.renderers.receipt import receipt_html
from kassa.services.exports.export_sources import headers_and_rows
from kassa.services.links import promo_codes
from kassa.services.payments.receipts import receipt_data
from tests.factories import make_merchant
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import make_link, plain
from tests.web.test_q_pricing_properties import _choices, _expected_line, _item_draft, _order_items, carts


@st.composite
def promos(draw, currency: str):
    kind = draw(st.sampled_from([DiscountType.PERCENT, DiscountType.AMOUNT]))
    if kind == DiscountType.PERCENT:
        return kind, draw(st.integers(1, 10_000))
    return kind, draw(st.integers(1, 2_000 * 10 ** exponent(currency)))


@st.composite
def carts_with_promo(draw):
    currency, lines = draw(carts())
    return currency, lines, draw(promos(currency))


def _expected_promo(nets: list[int], kind: str, value: int) -> list[int]:
    """docs/architecture.md's rule, computed apart from the app: exact fractions, then rounding."""
    if kind == DiscountType.PERCENT:
        return [int((Decimal(net) * value / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for net in nets]
    whole = sum(nets)
    total = min(value, whole)
    if whole == 0:
        return [0] * len(nets)
    exact = [Fraction(total * net, whole) for net in nets]
    shares = [int(x) for x in exact]
    order = sorted(range(len(nets)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


@settings(max_examples=400, deadline=None)
@given(cart=carts_with_promo())
def test_q2_pricing_function_with_a_promo_is_exact_per_line_and_in_total(cart):
    currency, lines, (kind, value) = cart
    base = _choices(lines)
    choices = BuyerChoices(quantities=base.quantities, amounts=base.amounts, promo_code="RANDOM", promo_kind=kind,
                           promo_value=value, promo_id=1)
    summary = build_order_summary(_order_items(currency, lines), currency, choices)
    expected = [_expected_line(line) for line in lines]
    nets = [g - d for g, d in expected]
    promo = _expected_promo(nets, kind, value)
    assert [line.promo.amount_minor for line in summary.lines] == promo
    assert all(0 <= p <= n for p, n in zip(promo, nets, strict=True))
    assert [line.amount.amount_minor for line in summary.lines] == [n - p for n, p in zip(nets, promo, strict=True)]
    assert summary.promo_today.amount_minor == sum(promo) <= sum(nets)
    assert summary.due_today.amount_minor == sum(nets) - sum(promo) >= 0
    assert summary.gross_today.amount_minor - summary.discount_today.amount_minor - summary.promo_today.amount_minor \
        == summary.due_today.amount_minor
    assert summary.promo_code == "RANDOM"


@given(total=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**7), min_size=1, max_size=8))
def test_q2_largest_remainder_shares_add_up_and_never_exceed_a_line(total, weights):
    shares = allocate_amount(total, weights)
    assert sum(shares) == min(total, sum(weights))
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))


_shops = itertools.count()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cart=carts_with_promo())
def test_q2_checkout_charge_record_receipt_and_export_agree_with_a_promo(app, client, cart):
    currency, lines, (kind, value) = cart
    n = next(_shops)
    owner = make_merchant(company=f"Promo property shop {n}")
    link = make_link(owner, items=[_item_draft(i, line, currency) for i, line in enumerate(lines)], currency=currency)
    actor = Actor(user=db.session.get(User, owner.id), account_id=owner.account_id)
    values = {"code": "PROP", "kind": kind}
    if kind == DiscountType.PERCENT:
        values["percent"] = str((Decimal(value) / 100).normalize())
    else:
        values.update(amount=Money(value, currency).to_input("en"), currency=currency)
    promo_codes.create_code(actor, values, "en")
    expected = [_expected_line(line) for line in lines]
    nets = [g - d for g, d in expected]
    promo = _expected_promo(nets, kind, value)
    total = sum(nets) - sum(promo)

    path = start_checkout(client, link.slug)
    form = buyer_form("card", promo="prop")
    for i, line in enumerate(lines):
        if line["adjustable"]:
            form[f"qty_{i}"] = str(line["chosen_qty"])
        if line["custom"]:
            form[f"price_{i}"] = Money(line["chosen_amount"], currency).to_input("en")
    response = client.post(path, data=form, environ_base={"REMOTE_ADDR": f"10.8.{n % 250}.{n // 250 + 1}"})
    if total == 0:  # a promo that takes everything off leaves nothing to charge: refused, nothing charged
        assert response.status_code == 422 and db.session.scalar(select(Payment.id).where(Payment.account_id == owner.account_id)) is None
        return
    assert response.status_code == 303, response.get_data(as_text=True)[:1500]

    db.session.rollback()
    payment = db.session.scalars(select(Payment).where(Payment.account_id == owner.account_id)).one()
    attempt = db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.payment_id == payment.id)).one()
    assert attempt.amount_minor == payment.amount_minor == payment.net_minor == total
    assert payment.gross_minor == sum(g for g, _d in expected)
    assert payment.discount_minor == sum(d for _g, d in expected)
    assert (payment.promo_code, payment.promo_discount_minor) == ("PROP", sum(promo))
    assert payment.gross_minor - payment.discount_minor - payment.promo_discount_minor == payment.net_minor
    assert [i.promo_minor for i in payment.items] == promo
    with app.test_request_context():
        text = plain(receipt_html(receipt_data(payment)))
    assert plain(Money(total, currency).format("en")) in text
    assert plain((-Money(sum(promo), currency)).format("en")) in text and "Promo code PROP" in text
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "promo"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    scale = Decimal(1).scaleb(-exponent(currency))
    assert row["Gross amount"] == Decimal(total) * scale
    assert row["Promo discount"] == Decimal(sum(promo)) * scale
