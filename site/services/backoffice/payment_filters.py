"""Filters for the payments index (P2, P3): a typed whitelist of properties and operators.

A filter is groups of conditions: conditions in a group are AND-ed, groups are OR-ed. Everything a user
sends is checked against the whitelist and turned into SQLAlchemy expressions with bound values, so a
bad property, operator or value is a 400 with a message, never raw SQL and never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, exists, false, func, not_, or_, true

from kassa.clock import local_midnight_utc
from kassa.errors import KassaError
from kassa.forms import parse_date, parse_int
from kassa.models import DisplayStatus, DisputeReason, Payment, PaymentFieldValue, RiskLevel
from kassa.money import exponent
from kassa.services.backoffice import payment_sources
from kassa.template_helpers import CARD_BRANDS, decline_reasons, dispute_reason_label

MAX_GROUPS = 10
MAX_CONDITIONS = 20
MAX_VALUES = 50
MAX_TEXT = 200
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(9000, 12, 31)


class FilterError(KassaError):
    status_code = 400


@dataclass(frozen=True)
class FilterContext:
    """What turning a filter into SQL needs to know about the merchant."""

    timezone: str
    today: date


@dataclass(frozen=True)
class Prop:
    key: str
    label: Any
    kind: str  # text | number | money | date | enum | bool | field (Q8: a custom field's label and text)
    column: Callable[[], Any]
    options: Callable[[], list[tuple[str, str]]] | None = None
    # Money columns compare in each row's own currency: the column holding it.
    currency: Callable[[], Any] = lambda: Payment.currency


OPERATORS: dict[str, dict[str, Any]] = {
    "text": {"is": _l("is"), "is_not": _l("is not"), "contains": _l("contains"), "known": _l("is known"),
             "unknown": _l("is unknown")},
    "number": {"eq": "=", "ne": "≠", "lt": "<", "gt": ">", "between": _l("between")},
    "money": {"eq": "=", "ne": "≠", "lt": "<", "gt": ">", "between": _l("between")},
    "date": {"before": _l("before"), "after": _l("after"), "between": _l("between"),
             "last_days": _l("in the last N days")},
    "enum": {"any_of": _l("is any of"), "none_of": _l("is none of")},
    "bool": {"is": _l("is")},
    # Q8: values are [label, text]: the answer to the custom field with that label contains the text.
    "field": {"contains": _l("contains")},
}
NO_VALUE_OPS = {"known", "unknown"}


def _status_options() -> list[tuple[str, str]]:
    return [(status.value, status.label) for status in DisplayStatus]


def method_options() -> list[tuple[str, str]]:
    return [("card", _("Card")), ("ach", _("Bank debit (ACH)")), ("sepa", _("SEPA Direct Debit")),
            ("manual", _("Manual"))]  # V3: recorded by the merchant on an invoice


def _brand_options() -> list[tuple[str, str]]:
    return list(CARD_BRANDS.items())


def _dispute_reason_options() -> list[tuple[str, str]]:
    return [(reason.value, dispute_reason_label(reason.value)) for reason in DisputeReason]


def _risk_options() -> list[tuple[str, str]]:
    return [(level.value, level.label) for level in RiskLevel]


def _decline_options() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for code, words in decline_reasons().items():
        if words not in seen.values():  # codes meaning the same thing are offered once, by their first code
            seen[code] = words
    return list(seen.items())


def _mode_options() -> list[tuple[str, str]]:
    return [("live", _("Live")), ("test", _("Test"))]


def _bool_options() -> list[tuple[str, str]]:
    return [("yes", _("Yes")), ("no", _("No"))]


PROPERTIES: dict[str, Prop] = {
    prop.key: prop
    for prop in [
        Prop("status", _l("Status"), "enum", lambda: Payment.display_status, _status_options),
        Prop("amount", _l("Gross amount"), "money", lambda: Payment.amount_minor),
        Prop("date", _l("Payment date"), "date", lambda: Payment.created_at),
        Prop("method", _l("Payment method"), "enum", lambda: Payment.method, method_options),
        # V6: where it came from: a link, an invoice, a quote, a subscription, or a manual payment (V3)
        Prop("source", _l("Source"), "enum", payment_sources.kind_column, payment_sources.options),
        Prop("card_brand", _l("Card brand"), "enum", lambda: Payment.card_brand, _brand_options),
        Prop("currency", _l("Currency"), "text", lambda: Payment.currency),
        Prop("email", _l("Contact email"), "text", lambda: Payment.buyer_email),
        Prop("buyer_name", _l("Buyer name"), "text", lambda: Payment.buyer_name),
        Prop("company", _l("Company"), "text", lambda: Payment.buyer_company),
        Prop("link", _l("Payment link"), "number", lambda: Payment.link_id),
        Prop("receipt_number", _l("Receipt number"), "number", lambda: Payment.receipt_number),
        Prop("fee", _l("Fee"), "money", lambda: Payment.fee_minor),
        Prop("refunded", _l("Refunded amount"), "money", lambda: Payment.refunded_minor),
        Prop("has_refunds", _l("Has refunds"), "bool", lambda: Payment.refund_reserved_minor, _bool_options),
        Prop("mode", _l("Mode"), "enum", lambda: Payment.mode, _mode_options),
        Prop("card_last4", _l("Card last 4"), "text", lambda: Payment.card_last4),
        # D7: dispute properties, usable as filters like any other.
        Prop("dispute_created", _l("Dispute created"), "date", lambda: Payment.dispute_created_at),
        Prop("dispute_amount", _l("Dispute amount"), "money", lambda: Payment.dispute_amount_minor),
        Prop("dispute_deadline", _l("Dispute deadline"), "date", lambda: Payment.dispute_due_by),
        Prop("dispute_reason", _l("Dispute reason"), "enum", lambda: Payment.dispute_reason, _dispute_reason_options),
        # B2: declined checkout attempts are failed payments: by why, and by the guard's risk signal.
        Prop("decline_reason", _l("Decline reason"), "enum", lambda: Payment.failure_code, _decline_options),
        Prop("risk", _l("Risk"), "enum", lambda: Payment.risk_level, _risk_options),
        # Q8: the buyer's answer to a custom field (by its label, any link), through PaymentFieldValue.
        Prop("custom_field", _l("Custom field"), "field", lambda: Payment.id),
        # Q2: the promo code a buyer applied (stored in upper case, as codes are kept)
        Prop("promo_code", _l("Promo code"), "text", lambda: Payment.promo_code),
    ]
}


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str
    values: tuple[str, ...] = ()


Filter = tuple[tuple[Condition, ...], ...]


# -- parsing ----------------------------------------------------------------------------------------


def parse_condition(raw: Any, props: dict[str, Prop] | None = None) -> Condition:
    props = props or PROPERTIES
    if not isinstance(raw, list | tuple) or len(raw) not in (2, 3):
        raise FilterError(_("One of the filter's conditions could not be read. Start again from the filter panel."))
    key, op = raw[0], raw[1]
    values = raw[2] if len(raw) == 3 else []
    if not isinstance(key, str) or key not in props:
        raise FilterError(_("Payments can't be filtered by “%(name)s”. Choose a property from the list.", name=str(key)[:40]))
    prop = props[key]
    if not isinstance(op, str) or op not in OPERATORS[prop.kind]:
        raise FilterError(_("%(prop)s can't be filtered with “%(op)s”. Choose a condition from the list.", op=str(op)[:20],
                            prop=prop.label))
    if isinstance(values, str | int | float):
        values = [values]
    if not isinstance(values, list | tuple) or len(values) > MAX_VALUES:
        raise FilterError(_("%(prop)s has too many values: choose at most %(n)d.", prop=prop.label, n=MAX_VALUES))
    # NUL can't be stored or compared by PostgreSQL (and no payment property contains it).
    values = tuple(str(v).replace("\x00", "")[:MAX_TEXT] for v in values
                   if isinstance(v, str | int | float) and not isinstance(v, bool))
    condition = Condition(key, op, values)
    _check_values(prop, condition)
    return condition


def parse_filter(text: str | None, props: dict[str, Prop] | None = None) -> Filter:
    """The `adv` URL parameter: JSON [[["status","any_of",["failed"]], …], …]."""
    if not text:
        return ()
    if len(text) > 20_000:
        raise FilterError(_("That filter is too long."))
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested thousands deep
        raise FilterError(_("The filter could not be read. Start again from the filter panel.")) from None
    if not isinstance(raw, list) or len(raw) > MAX_GROUPS:
        raise FilterError(_("A filter has at most %(n)d groups.", n=MAX_GROUPS))
    groups = []
    for group in raw:
        if not isinstance(group, list) or not group or len(group) > MAX_CONDITIONS:
            raise FilterError(_("A filter group has 1 to %(n)d conditions.", n=MAX_CONDITIONS))
        groups.append(tuple(parse_condition(condition, props) for condition in group))
    return tuple(groups)


def dump_filter(groups: Filter) -> str:
    return json.dumps([[[c.prop, c.op, list(c.values)] for c in group] for group in groups],
                      separators=(",", ":"), ensure_ascii=False)


def _decimal(text: str, prop: Prop) -> Decimal:
    try:
        value = Decimal(text.replace(",", ".").strip())
    except InvalidOperation:
        raise FilterError(_("%(prop)s needs a number, like 100 or 12.50.", prop=prop.label)) from None
    if not value.is_finite() or abs(value) > Decimal(10**13):
        raise FilterError(_("%(prop)s needs a number, like 100 or 12.50.", prop=prop.label))
    return value


def _date(text: str, prop: Prop) -> date:
    day = parse_date(text)
    # Far from year 1 and 9999, so a day either side and a time-zone shift still fit in a datetime.
    if day is None or not EARLIEST_DATE <= day <= LATEST_DATE:
        raise FilterError(_("%(prop)s needs a date like 2026-03-31.", prop=prop.label))
    return day


def _check_values(prop: Prop, c: Condition) -> None:
    needed = 0 if c.op in NO_VALUE_OPS else 2 if c.op == "between" else 1
    if prop.kind == "enum":
        allowed = {value for value, _label in prop.options()}
        if not c.values or any(v not in allowed for v in c.values):
            raise FilterError(_("Choose values of %(prop)s from the list.", prop=prop.label))
        return
    if prop.kind == "field":
        if not c.values or not c.values[0].strip():
            raise FilterError(_("Enter the label of the custom field, like “Roast”."))
        return
    if len(c.values) < needed:
        raise FilterError(_("Enter both ends of the range for %(prop)s.", prop=prop.label) if needed == 2
                          else _("Enter a value for %(prop)s.", prop=prop.label))
    if prop.kind in ("number", "money"):
        for v in c.values[:needed]:
            _decimal(v, prop)
    elif prop.kind == "date":
        if c.op == "last_days":
            if parse_int(c.values[0], minimum=1, maximum=3660) is None:
                raise FilterError(_("Enter a number of days from 1 to 3660."))
        else:
            for v in c.values[:needed]:
                _date(v, prop)
    elif prop.kind == "bool" and c.values[0] not in ("yes", "no"):
        raise FilterError(_("Choose yes or no."))


# -- SQL --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _currencies_by_exponent() -> dict[int, list[str]]:
    from babel.numbers import list_currencies


    groups: dict[int, list[str]] = {}
    for code in sorted(list_currencies()):
        groups.setdefault(exponent(code), []).append(code)
    return groups


def currencies_by_exponent() -> dict[int, list[str]]:
    """Currency codes by their number of decimals (B3's amount search reads them too)."""
    return _currencies_by_exponent()


def _minor(value: Decimal, exp: int, rounding: str) -> int:
    return int(value.scaleb(exp).to_integral_value(rounding=rounding))


def _bound(prop: Prop, value: Decimal, rounding: str) -> Any:
    """Major units → minor units in each row's own currency (JPY has no decimals, KWD three).

    A bound that falls between two minor units (¥9.5, $10.005) is rounded the way that keeps the
    comparison true to the number typed: up (ROUND_CEILING) for ≥ and <, down (ROUND_FLOOR) for ≤ and >.
    """
    if prop.kind != "money":
        return _minor(value, 0, rounding)
    groups = _currencies_by_exponent()
    # The row's own currency column (a subscription's, on the subscriptions list), not always the payment's.
    currency = prop.currency()
    whens = [(currency.in_(codes), _minor(value, exp, rounding)) for exp, codes in groups.items() if exp != 2]
    return case(*whens, else_=_minor(value, 2, rounding))


def _day_start(day: date, ctx: FilterContext) -> datetime:
    return local_midnight_utc(day, ctx.timezone)


def condition_clause(c: Condition, ctx: FilterContext, props: dict[str, Prop] | None = None) -> ColumnElement:
    prop = (props or PROPERTIES)[c.prop]
    column = prop.column()
    v = c.values
    if prop.kind == "enum":
        clause = column.in_(v)
        return not_(clause) | column.is_(None) if c.op == "none_of" else clause
    if prop.kind == "bool":
        return column > 0 if v[0] == "yes" else column == 0
    if prop.kind == "field":
        # Q8: an answer row of this payment under that label (any case) whose value contains the text (any case;
        # no text: any answer). One indexed lookup per payment (ix_payment_field_values_payment_id).
        text = v[1].strip().lower() if len(v) > 1 else ""
        return exists().where(PaymentFieldValue.payment_id == column,
                              func.lower(PaymentFieldValue.label) == v[0].strip().lower(),
                              func.lower(PaymentFieldValue.value).contains(text, autoescape=True))
    if prop.kind == "text":
        if c.op == "known":
            return and_(column.is_not(None), column != "")
        if c.op == "unknown":
            return or_(column.is_(None), column == "")
        needle = v[0].strip().lower()
        if c.op == "contains":
            return func.lower(column).contains(needle, autoescape=True)
        equal = func.lower(column) == needle
        return not_(equal) | column.is_(None) if c.op == "is_not" else equal
    if prop.kind in ("number", "money"):
        numbers = sorted(_decimal(x, prop) for x in v[:2]) if c.op == "between" else [_decimal(v[0], prop)] * 2
        low, high = _bound(prop, numbers[0], ROUND_CEILING), _bound(prop, numbers[1], ROUND_FLOOR)
        if c.op in ("between", "eq"):  # a value with more decimals than the currency equals nothing
            return and_(column >= low, column <= high)
        if c.op == "ne":  # like "is not" for text: a payment without the value isn't equal to it
            return or_(column < low, column > high, column.is_(None))
        return column < low if c.op == "lt" else column > high
    # dates: whole days in the merchant's time zone
    if c.op == "last_days":
        return column >= _day_start(ctx.today - timedelta(days=int(v[0]) - 1), ctx)
    if c.op == "before":
        return column < _day_start(_date(v[0], prop), ctx)
    if c.op == "after":
        return column >= _day_start(_date(v[0], prop) + timedelta(days=1), ctx)
    first, last = sorted((_date(v[0], prop), _date(v[1], prop)))
    return and_(column >= _day_start(first, ctx), column < _day_start(last + timedelta(days=1), ctx))


def filter_clause(groups: Filter, ctx: FilterContext, props: dict[str, Prop] | None = None) -> ColumnElement:
    if not groups:
        return true()
    ors = [and_(*(condition_clause(c, ctx, props) for c in group)) for group in groups if group]
    return or_(*ors) if ors else false()


# -- chips ------------------------------------------------------------------------------------------


def describe_condition(c: Condition, props: dict[str, Prop] | None = None,
                       value_labels: dict[str, dict[str, str]] | None = None) -> str:
    """`value_labels`: names for stored values, e.g. {"link": {"12": "Spring concert"}} (B4: no internal ids)."""
    prop = (props or PROPERTIES)[c.prop]
    op = OPERATORS[prop.kind][c.op]
    if c.op in NO_VALUE_OPS:
        return f"{prop.label} {op}"
    if prop.kind == "field":
        if len(c.values) > 1 and c.values[1].strip():
            return _("Custom field “%(label)s” contains “%(text)s”", label=c.values[0], text=c.values[1])
        return _("Custom field “%(label)s” is answered", label=c.values[0])
    named = (value_labels or {}).get(c.prop)
    if named and c.op in ("eq", "ne"):
        op = _("is") if c.op == "eq" else _("is not")
        return f"{prop.label} {op} {named.get(c.values[0], c.values[0])}"
    if prop.kind in ("enum", "bool"):
        labels = dict(prop.options())
        shown = ", ".join(str(labels.get(v, v)) for v in c.values)
    elif c.op == "between":
        shown = _("%(a)s and %(b)s", a=c.values[0], b=c.values[1])
    elif c.op == "last_days":
        return _("%(prop)s in the last %(n)s days", prop=prop.label, n=c.values[0])
    else:
        shown = c.values[0]
    return f"{prop.label} {op} {shown}"


def describe(groups: Filter, props: dict[str, Prop] | None = None) -> list[list[str]]:
    """Readable chips: [["Status is any of Failed", "Gross amount > 100"], ["Payment method is any of ACH"]]."""
    return [[describe_condition(c, props) for c in group] for group in groups]
