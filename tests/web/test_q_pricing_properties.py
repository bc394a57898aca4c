"""Q1, Q3, Q4 — money is exact: random carts (quantities, percentage and amount discounts, pay what you want,
currencies with 0, 2 and 3 decimals) priced by the one pricing function, paid through the real checkout, and
then read back from every place that shows or keeps them: the lines and totals, the amount charged (attempt
and processor), the payment record, the receipt's text and the export row agree to the minor unit."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.models import Payment, PaymentAttempt
from kassa.money import Money, exponent
from kassa.order_summary import BuyerChoices, DiscountType, OrderItem, build_order_summary
from kassa.renderers.receipt import receipt_html
from kassa.services.exports.export_sources import headers_and_rows
from kassa.services.links.link_drafts import ItemDraft
from kassa.services.payments.receipts import receipt_data
from tests.factories import make_merchant
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import make_link, plain

CURRENCIES = ["USD", "JPY", "KWD"]  # 2, 0 and 3 decimals


@st.composite
def carts(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    scale = 10 ** exponent(currency)
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        unit = draw(st.integers(1, 500 * scale))
        adjustable = draw(st.booleans())
        q_min = draw(st.integers(1, 3))
        q_max = draw(st.integers(q_min, 9))
        quantity = draw(st.integers(q_min, q_max)) if adjustable else draw(st.integers(1, 9))
        kind = draw(st.sampled_from([DiscountType.NONE, DiscountType.PERCENT, DiscountType.AMOUNT]))
        if kind == DiscountType.PERCENT:
            value = draw(st.integers(1, 10_000))  # 0.01 % to 100 %
        elif kind == DiscountType.AMOUNT:
            value = draw(st.integers(1, unit * quantity))
        else:
            value = 0
        custom = draw(st.booleans()) and kind != DiscountType.AMOUNT
        low = draw(st.integers(1, unit)) if custom else None
        high = draw(st.integers(unit, unit * 3)) if custom else None
        chosen_qty = draw(st.integers(q_min, q_max)) if adjustable else None
        chosen_amount = draw(st.integers(low, high)) if custom else None
        lines.append(dict(unit=unit, quantity=quantity, adjustable=adjustable, q_min=q_min, q_max=q_max,
                          kind=kind, value=value, custom=custom, low=low, high=high, chosen_qty=chosen_qty,
                          chosen_amount=chosen_amount))
    return currency, lines


def _expected_line(line) -> tuple[int, int]:
    """(gross, discount) as docs/requirements.md states it: half-up per line, an amount capped at the gross."""
    unit = line["chosen_amount"] if line["custom"] else line["unit"]
    quantity = line["chosen_qty"] if line["adjustable"] else line["quantity"]
    gross = unit * quantity
    if line["kind"] == DiscountType.PERCENT:
        discount = int((Decimal(gross) * line["value"] / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif line["kind"] == DiscountType.AMOUNT:
        discount = min(line["value"], gross)
    else:
        discount = 0
    return gross, discount


def _order_items(currency, lines):
    return [OrderItem(f"Item {i}", "", line["unit"], currency, line["quantity"], "one_time", None, None,
                      discount_type=line["kind"], discount_value=line["value"],
                      quantity_adjustable=line["adjustable"], quantity_min=line["q_min"], quantity_max=line["q_max"],
                      custom_amount=line["custom"], amount_min_minor=line["low"], amount_max_minor=line["high"])
            for i, line in enumerate(lines)]


def _choices(lines) -> BuyerChoices:
    return BuyerChoices(quantities={i: line["chosen_qty"] for i, line in enumerate(lines) if line["adjustable"]},
                        amounts={i: line["chosen_amount"] for i, line in enumerate(lines) if line["custom"]})


@settings(max_examples=300, deadline=None)
@given(cart=carts())
def test_q1_q3_q4_pricing_function_is_exact_per_line_and_in_total(cart):
    currency, lines = cart
    summary = build_order_summary(_order_items(currency, lines), currency, _choices(lines))
    expected = [_expected_line(line) for line in lines]
    assert [(line.gross.amount_minor, line.discount.amount_minor) for line in summary.lines] == expected
    assert [line.amount.amount_minor for line in summary.lines] == [g - d for g, d in expected]
    assert summary.gross_today.amount_minor == sum(g for g, _d in expected)
    assert summary.discount_today.amount_minor == sum(d for _g, d in expected)
    assert summary.due_today.amount_minor == sum(g - d for g, d in expected) >= 0
    assert summary.due_today.currency == currency


_shops = itertools.count()


def _item_draft(i, line, currency) -> ItemDraft:
    text = lambda minor: Money(minor, currency).to_input("en")  # noqa: E731
    if line["kind"] == DiscountType.PERCENT:
        discount = str((Decimal(line["value"]) / 100).normalize())
    elif line["kind"] == DiscountType.AMOUNT:
        discount = text(line["value"])
    else:
        discount = ""
    return ItemDraft(name=f"Item {i}", unit_price=text(line["unit"]), quantity=str(line["quantity"]),
                     discount_type=line["kind"], discount_value=discount,
                     quantity_adjustable="1" if line["adjustable"] else "", quantity_min=str(line["q_min"]),
                     quantity_max=str(line["q_max"]), custom_amount="1" if line["custom"] else "",
                     amount_min=text(line["low"]) if line["custom"] else "",
                     amount_max=text(line["high"]) if line["custom"] else "")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cart=carts())
def test_q1_q3_q4_checkout_charge_record_receipt_and_export_agree(app, client, cart):
    currency, lines = cart
    owner = make_merchant(company=f"Property shop {next(_shops)}")
    drafts = [_item_draft(i, line, currency) for i, line in enumerate(lines)]
    expected = [_expected_line(line) for line in lines]
    total = sum(g - d for g, d in expected)
    if total == 0 and not any(line["custom"] or line["adjustable"] for line in lines):
        # Discounts that take everything off: the editor refuses the link (nothing could ever be charged).
        with pytest.raises(ValidationFailed) as refused:
            make_link(owner, items=drafts, currency=currency)
        assert "comes to nothing to pay" in refused.value.errors["items"]
        return
    link = make_link(owner, items=drafts, currency=currency)

    path = start_checkout(client, link.slug)
    form = buyer_form("card")
    for i, line in enumerate(lines):
        if line["adjustable"]:
            form[f"qty_{i}"] = str(line["chosen_qty"])
        if line["custom"]:
            form[f"price_{i}"] = Money(line["chosen_amount"], currency).to_input("en")
    response = client.post(path, data=form)
    if total == 0:  # the buyer's quantities left nothing after the discounts: refused, nothing charged
        assert response.status_code == 422 and "comes to nothing to pay" in response.get_data(as_text=True)
        assert db.session.scalar(select(Payment.id).where(Payment.account_id == owner.account_id)) is None
        return
    assert response.status_code == 303, response.get_data(as_text=True)[:1500]

    db.session.rollback()
    payment = db.session.scalars(select(Payment).where(Payment.account_id == owner.account_id)).one()
    attempt = db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.payment_id == payment.id)).one()
    # The amount charged (the attempt is what the processor was asked for) and the record.
    assert attempt.amount_minor == payment.amount_minor == payment.net_minor == total
    assert payment.gross_minor == sum(g for g, _d in expected)
    assert payment.discount_minor == sum(d for _g, d in expected)
    assert [(i.unit_amount_minor * i.quantity, i.discount_minor) for i in payment.items] == expected
    # The receipt's text: every line's gross and discount, and the total.
    with app.test_request_context():
        text = plain(receipt_html(receipt_data(payment)))
    for gross, discount in expected:
        assert plain(Money(gross, currency).format("en")) in text
        if discount:
            assert plain((-Money(discount, currency)).format("en")) in text
    assert plain(Money(total, currency).format("en")) in text
    # The export row.
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "discount"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    scale = Decimal(1).scaleb(-exponent(currency))
    assert row["Gross amount"] == Decimal(total) * scale
    assert row["Before discounts"] == Decimal(payment.gross_minor) * scale
    assert row["Discount"] == Decimal(payment.discount_minor) * scale


# -- Q6: tax, inclusive and exclusive, on the same random carts ----------------------------------------------


def _expected_tax(net: int, rate_bp: int, inclusive: bool) -> int:
    """docs/architecture.md: per line, on its final net, half-up in the minor unit."""
    if inclusive:
        excl = (Decimal(net) * 10_000 / (10_000 + rate_bp)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return net - int(excl)
    return int((Decimal(net) * rate_bp / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=300, deadline=None)
@given(cart=carts(), rate_bp=st.integers(1, 10_000), inclusive=st.booleans(), reverse=st.booleans())
def test_q6_tax_is_exact_per_line_and_lines_plus_tax_make_the_totals(cart, rate_bp, inclusive, reverse):
    from kassa.tax import TaxContext, TaxRateSpec

    currency, lines = cart
    context = TaxContext(rates=(TaxRateSpec(id=1, name="VAT", percentage_bp=rate_bp, inclusive=inclusive),),
                         merchant_country="NL")
    choices = BuyerChoices(quantities=_choices(lines).quantities, amounts=_choices(lines).amounts, country="DE",
                           vat_id="DE123456789" if reverse else "")
    summary = build_order_summary(_order_items(currency, lines), currency, choices, context)
    nets = [g - d for g, d in (_expected_line(line) for line in lines)]
    taxes = [0 if reverse else _expected_tax(net, rate_bp, inclusive) for net in nets]
    assert [line.amount.amount_minor for line in summary.lines] == nets
    assert [(line.tax.amount_minor if line.tax else 0) for line in summary.lines] == taxes
    assert summary.reverse_charge is reverse
    assert summary.tax_today.amount_minor == sum(taxes)
    added = 0 if inclusive else sum(taxes)
    assert summary.due_today.amount_minor == sum(nets) + added == summary.net_today.amount_minor + added
    assert all(0 <= tax <= net for tax, net in zip(taxes, nets, strict=True)) or not inclusive
    if not reverse:
        (row,) = summary.tax_breakdown
        assert row.tax_minor == sum(taxes)
        assert row.taxable_minor + (row.tax_minor if inclusive else 0) == sum(nets)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cart=carts(), rate_bp=st.integers(1, 10_000), inclusive=st.booleans())
def test_q6_taxed_checkout_charge_record_receipt_and_export_agree(app, client, cart, rate_bp, inclusive):
    from kassa.services.accounts.tax_rates import create_rate
    from tests.support.checkout_flow import actor_for

    currency, lines = cart
    owner = make_merchant(company=f"Tax shop {next(_shops)}", country="NL")
    percent = str((Decimal(rate_bp) / 100).normalize())
    create_rate(actor_for(owner), name="VAT", percentage=format(Decimal(percent), "f"), inclusive=inclusive,
                countries="")
    link = make_link(owner, items=[_item_draft(i, line, currency) for i, line in enumerate(lines)], currency=currency,
                     collect_tax=True, collect_billing_address=False)
    nets = [g - d for g, d in (_expected_line(line) for line in lines)]
    taxes = [_expected_tax(net, rate_bp, inclusive) for net in nets]
    total = sum(nets) + (0 if inclusive else sum(taxes))

    path = start_checkout(client, link.slug)
    form = buyer_form("card", tax_country="XX")
    for i, line in enumerate(lines):
        if line["adjustable"]:
            form[f"qty_{i}"] = str(line["chosen_qty"])
        if line["custom"]:
            form[f"price_{i}"] = Money(line["chosen_amount"], currency).to_input("en")
    response = client.post(path, data=form)
    if total > app.config["KASSA_LINK_MAX_TOTAL_MINOR"]:
        return
    assert response.status_code == 303, response.get_data(as_text=True)[:1500]
    db.session.rollback()
    payment = db.session.scalars(select(Payment).where(Payment.account_id == owner.account_id)).one()
    attempt = db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.payment_id == payment.id)).one()
    assert attempt.amount_minor == payment.amount_minor == total
    assert payment.tax_minor == sum(taxes) and payment.net_minor == sum(nets)
    with app.test_request_context():
        text = plain(receipt_html(receipt_data(payment)))
    assert plain(Money(sum(taxes), currency).format("en")) in text
    assert plain(Money(total, currency).format("en")) in text
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "tax"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    scale = Decimal(1).scaleb(-exponent(currency))
    assert row["Gross amount"] == Decimal(total) * scale and row["Tax"] == Decimal(sum(taxes)) * scale


# -- Q2 + Q6 + Q9 together: a promo code, tax and recurring lines (with or without a free trial) ----------------


@settings(max_examples=400, deadline=None)
@given(cart=carts(), recurring=st.lists(st.booleans(), min_size=4, max_size=4), trial=st.booleans(),
       promo=st.one_of(st.none(), st.tuples(st.just("percent"), st.integers(1, 10_000)),
                       st.tuples(st.just("amount"), st.integers(1, 2_000_000))),
       rate_bp=st.integers(0, 10_000), inclusive=st.booleans())
def test_q2_q6_q9_promo_then_tax_then_trial_compose_exactly(cart, recurring, trial, promo, rate_bp, inclusive):
    """The order of docs/requirements.md: line discount → promo (today's lines only: not a recurring line whose
    first charge waits for a trial) → tax on what is left; a recurring line's later periods are its full net
    and the tax on it. Everything in whole minor units, for 0-, 2- and 3-decimal currencies."""
    import dataclasses

    from kassa.tax import TaxContext, TaxRateSpec

    currency, lines = cart
    items = [dataclasses.replace(item, frequency="monthly", term_type="auto_renew") if recurring[i] else item
             for i, item in enumerate(_order_items(currency, lines))]
    context = TaxContext(rates=(TaxRateSpec(id=1, name="VAT", percentage_bp=rate_bp, inclusive=inclusive),),
                         merchant_country="NL")
    choices = dataclasses.replace(_choices(lines), country="NL")
    if promo:
        choices = dataclasses.replace(choices, promo_code="CODE", promo_kind=promo[0], promo_value=promo[1])
    trial_days = 14 if trial else 0
    summary = build_order_summary(items, currency, choices, context, trial_days=trial_days)

    nets = [g - d for g, d in (_expected_line(line) for line in lines)]
    later = [trial and recurring[i] for i in range(len(lines))]  # first charged after the trial, not today
    eligible = [0 if later[i] else net for i, net in enumerate(nets)]
    shares = [line.promo.amount_minor if line.promo else 0 for line in summary.lines]
    if promo is None:
        assert shares == [0] * len(lines)
    elif promo[0] == "percent":
        assert shares == [int((Decimal(n) * promo[1] / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                          for n in eligible]
    else:  # shared in proportion to the nets, never more than they are, adding up exactly
        assert sum(shares) == min(promo[1], sum(eligible))
        assert all(0 <= s <= n for s, n in zip(shares, eligible, strict=True))
        if sum(eligible):
            exact = [Decimal(sum(shares)) * n / sum(eligible) for n in eligible]
            assert all(abs(s - e) < 1 for s, e in zip(shares, exact, strict=True))
    left = [n - s for n, s in zip(nets, shares, strict=True)]
    taxes = [_expected_tax(a, rate_bp, inclusive) for a in left]
    assert [line.amount.amount_minor for line in summary.lines] == left
    assert [line.tax.amount_minor for line in summary.lines] == taxes
    today = [i for i in range(len(lines)) if not later[i]]
    added = [0 if inclusive else taxes[i] for i in range(len(lines))]
    assert summary.due_today.amount_minor == sum(left[i] + added[i] for i in today)
    assert summary.promo_today.amount_minor == sum(shares[i] for i in today)
    assert summary.tax_today.amount_minor == sum(taxes[i] for i in today)
    period = [i for i in range(len(lines)) if recurring[i]]
    if period:
        (group,) = summary.groups
        period_tax = [_expected_tax(nets[i], rate_bp, inclusive) for i in period]
        assert group.amount.amount_minor == sum(nets[i] for i in period) + (0 if inclusive else sum(period_tax))
        assert group.tax.amount_minor == sum(period_tax)
        assert group.on_trial is trial
    else:
        assert summary.groups == ()
