"""Filters on the payments index: quick filters (P2), advanced AND/OR filters and their panel (P3), and
bad input — typed or fuzzed — answered with a 400 and a message, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Payment
from kassa.services.backoffice.payment_filters import OPERATORS, PROPERTIES
from tests.factories import make_merchant, make_payment
from tests.support.checkout_flow import make_link
from tests.support.payments import chips, error_alert, local, login, row_ids, soup_of, text_of

AUCKLAND = "Pacific/Auckland"
# 10:00 on Tuesday 10 March 2026 in Auckland (NZDT, UTC+13) — still Monday 9 March in UTC.
AUCKLAND_NOW = local(2026, 3, 10, 10, tz=AUCKLAND)
HALF_MINUTE = timedelta(seconds=30)


def _ids(client, **query) -> set[int]:
    response = client.get("/payments/", query_string=query)
    assert response.status_code == 200, error_alert(response)
    return set(row_ids(response))


def _adv(*groups) -> str:
    return json.dumps([list(group) for group in groups])


# -- P2 quick filters -------------------------------------------------------------------------------


def test_p2_status_multi_select(client):
    owner = make_merchant()
    failed = make_payment(owner.account_id, status="failed", method="ach")
    processing = make_payment(owner.account_id, status="processing", method="ach")
    make_payment(owner.account_id)
    login(client, owner)
    assert _ids(client, status="failed") == {failed.id}
    assert _ids(client, status=["failed", "processing"]) == {failed.id, processing.id}


# Each preset: the local midnight where it starts (the payment 30 s after it is in, 30 s before is out).
DATE_PRESETS = {
    "today": local(2026, 3, 10, tz=AUCKLAND),
    "last_7": local(2026, 3, 4, tz=AUCKLAND),
    "last_30": local(2026, 2, 9, tz=AUCKLAND),
    "last_90": local(2025, 12, 11, tz=AUCKLAND),
    "this_month": local(2026, 3, 1, tz=AUCKLAND),
}


@pytest.mark.parametrize("preset", sorted(DATE_PRESETS))
def test_p2_date_presets_use_the_accounts_time_zone(client, preset):
    with time_machine.travel(AUCKLAND_NOW, tick=False):
        owner = make_merchant(timezone=AUCKLAND)
        start = DATE_PRESETS[preset]
        inside = make_payment(owner.account_id, created_at=start + HALF_MINUTE)
        before = make_payment(owner.account_id, created_at=start - HALF_MINUTE)
        latest = make_payment(owner.account_id, created_at=AUCKLAND_NOW - timedelta(minutes=1))
        login(client, owner)

        found = _ids(client, date=preset)

    assert found == {inside.id, latest.id}, (preset, before.id)


def test_p2_today_is_the_merchants_day_not_the_utc_day(client):
    with time_machine.travel(AUCKLAND_NOW, tick=False):
        owner = make_merchant(timezone=AUCKLAND)
        # Both are on Monday 9 March in UTC; only one is on the merchant's Tuesday.
        tuesday = make_payment(owner.account_id, created_at=local(2026, 3, 10, 0, 0, 30, tz=AUCKLAND))
        monday = make_payment(owner.account_id, created_at=local(2026, 3, 9, 23, 59, 30, tz=AUCKLAND))
        assert tuesday.created_at.astimezone(UTC).date() == monday.created_at.astimezone(UTC).date()
        login(client, owner)
        assert _ids(client, date="today") == {tuesday.id}


def test_p2_custom_range_includes_both_whole_local_days(client):
    with time_machine.travel(AUCKLAND_NOW, tick=False):
        owner = make_merchant(timezone=AUCKLAND)
        first_in = make_payment(owner.account_id, created_at=local(2026, 2, 1, 0, 0, 30, tz=AUCKLAND))
        last_in = make_payment(owner.account_id, created_at=local(2026, 2, 10, 23, 59, 30, tz=AUCKLAND))
        make_payment(owner.account_id, created_at=local(2026, 1, 31, 23, 59, 30, tz=AUCKLAND))
        make_payment(owner.account_id, created_at=local(2026, 2, 11, 0, 0, 30, tz=AUCKLAND))
        login(client, owner)

        assert _ids(client, date="custom", **{"from": "2026-02-01", "to": "2026-02-10"}) == {first_in.id, last_in.id}
        # The range may be typed either way round, or open at one end.
        assert _ids(client, date="custom", **{"from": "2026-02-10", "to": "2026-02-01"}) == {first_in.id, last_in.id}
        assert first_in.id not in _ids(client, **{"from": "2026-02-02"})
        assert last_in.id in _ids(client, **{"from": "2026-02-10"})
        assert last_in.id not in _ids(client, to="2026-02-09")
        assert first_in.id in _ids(client, to="2026-02-01")


def test_p2_more_filters_amount_method_currency_link_email_refunds(client):
    owner = make_merchant()
    link = make_link(owner, name="Spring concert")
    usd_card = make_payment(owner.account_id, amount_minor=2500, email="ann@shop.example", link_id=link.id)
    jpy_ach = make_payment(owner.account_id, amount_minor=2500, currency="JPY", method="ach",
                           email="bob@other.example")
    kwd_card = make_payment(owner.account_id, amount_minor=30_500, currency="KWD", email="ANN.B@mail.example")
    with write_transaction(db.session) as session:
        session.get(Payment, kwd_card.id).refund_reserved_minor = 1000
    login(client, owner)

    # Amount range in major units of each payment's own currency: $25.00, ¥2,500, KWD 30.500.
    assert _ids(client, amount_min="25", amount_max="31") == {usd_card.id, kwd_card.id}
    assert _ids(client, amount_min="2000") == {jpy_ach.id}
    assert _ids(client, amount_max="25") == {usd_card.id}
    assert _ids(client, amount_min="30.5", amount_max="30.5") == {kwd_card.id}
    assert _ids(client, method="ach") == {jpy_ach.id}
    assert _ids(client, method="card") == {usd_card.id, kwd_card.id}
    assert _ids(client, currency="jpy") == {jpy_ach.id}
    assert _ids(client, link=str(link.id)) == {usd_card.id}
    assert _ids(client, email="ann") == {usd_card.id, kwd_card.id}  # contains, any case
    assert _ids(client, email="%") == set()  # a wildcard is just a character
    assert _ids(client, refunds="yes") == {kwd_card.id}
    assert _ids(client, refunds="no") == {usd_card.id, jpy_ach.id}
    # Quick filters combine with AND.
    assert _ids(client, method="card", email="ann", refunds="no") == {usd_card.id}


def test_p2_amount_from_with_decimals_in_a_currency_without_them(client):
    """¥9 is less than 9.5: a fractional bound must not be cut down to the currency's precision."""
    owner = make_merchant()
    nine = make_payment(owner.account_id, amount_minor=9, currency="JPY")
    ten = make_payment(owner.account_id, amount_minor=10, currency="JPY")
    usd = make_payment(owner.account_id, amount_minor=1000)  # $10.00
    login(client, owner)
    assert _ids(client, amount_min="9.5") == {ten.id, usd.id}
    assert _ids(client, amount_max="9.5") == {nine.id}
    assert _ids(client, adv=_adv([["amount", "lt", ["9.5"]]])) == {nine.id}
    assert _ids(client, adv=_adv([["amount", "gt", ["9.5"]]])) == {ten.id, usd.id}
    assert _ids(client, adv=_adv([["amount", "eq", ["10.005"]]])) == set()
    assert _ids(client, adv=_adv([["amount", "ne", ["10.005"]]])) == {nine.id, ten.id, usd.id}
    assert _ids(client, adv=_adv([["amount", "lt", ["10.005"]]])) == {nine.id, ten.id, usd.id}


# -- P3 advanced filters ----------------------------------------------------------------------------


@pytest.fixture
def shop(client):
    """Five payments that differ in every filterable way."""
    owner = make_merchant()
    link_a = make_link(owner, name="Link A")
    link_b = make_link(owner, name="Link B")
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    p = {
        "usd": make_payment(owner.account_id, amount_minor=10_000, email="ann@shop.example", buyer_company="Acme",
                            created_at=base, link_id=link_a.id, fee_minor=320),
        "jpy": make_payment(owner.account_id, amount_minor=10_000, currency="JPY", method="ach",
                            email="bob@shop.example", created_at=base + timedelta(days=1), link_id=link_b.id,
                            fee_minor=80),
        "kwd": make_payment(owner.account_id, amount_minor=100_000, currency="KWD", email="cy@other.example",
                            buyer_company="Kuwait Traders", created_at=base + timedelta(days=2), fee_minor=400),
        "failed": make_payment(owner.account_id, status="failed", method="ach", amount_minor=5_000,
                               email="dee@shop.example", created_at=base + timedelta(days=3), fee_minor=0),
        "live": make_payment(owner.account_id, mode="live", amount_minor=99, email="eve@live.example",
                             created_at=base + timedelta(days=4), fee_minor=33),
    }
    with write_transaction(db.session) as session:
        live = session.get(Payment, p["live"].id)
        live.card_brand, live.card_last4 = "mastercard", "4444"
    login(client, owner)
    p["link_a"], p["link_b"] = link_a, link_b
    return p


def _adv_ids(client, shop, *groups) -> set[str]:
    """Names of the shop's payments that the advanced filter keeps."""
    found = _ids(client, adv=_adv(*groups))
    return {name for name, payment in shop.items() if isinstance(payment, Payment) and payment.id in found}


TEXT_CASES = [
    (["email", "is", ["ANN@shop.example"]], {"usd"}),
    (["email", "is_not", ["ann@shop.example"]], {"jpy", "kwd", "failed", "live"}),
    (["email", "contains", ["@shop."]], {"usd", "jpy", "failed"}),
    (["company", "known"], {"usd", "kwd"}),
    (["company", "unknown"], {"jpy", "failed", "live"}),
    (["currency", "is", ["jpy"]], {"jpy"}),
    (["card_last4", "is", ["4444"]], {"live"}),
]
MONEY_CASES = [
    # 100 means $100.00, ¥100 and KWD 100.000 — each row in its own currency.
    (["amount", "eq", ["100"]], {"usd", "kwd"}),
    (["amount", "eq", ["10000"]], {"jpy"}),
    (["amount", "ne", ["100"]], {"jpy", "failed", "live"}),
    (["amount", "gt", ["99.99"]], {"usd", "jpy", "kwd"}),
    (["amount", "lt", ["50"]], {"live"}),
    (["amount", "between", ["50", "100"]], {"usd", "kwd", "failed"}),
    (["amount", "between", ["100", "50"]], {"usd", "kwd", "failed"}),
    (["fee", "gt", ["0.35"]], {"usd", "jpy", "kwd"}),  # $3.20, ¥80, KWD 0.400
    (["fee", "lt", ["0.34"]], {"failed", "live"}),  # $0.00, $0.33
    (["fee", "between", ["0.33", "0.4"]], {"kwd", "live"}),
    (["refunded", "eq", ["0"]], {"usd", "jpy", "kwd", "failed", "live"}),
]
DATE_CASES = [
    (["date", "before", ["2026-03-02"]], {"usd"}),
    (["date", "after", ["2026-03-03"]], {"failed", "live"}),
    (["date", "between", ["2026-03-02", "2026-03-03"]], {"jpy", "kwd"}),
]
ENUM_CASES = [
    (["status", "any_of", ["failed"]], {"failed"}),
    (["status", "none_of", ["failed"]], {"usd", "jpy", "kwd", "live"}),
    (["method", "any_of", ["ach"]], {"jpy", "failed"}),
    (["method", "none_of", ["ach"]], {"usd", "kwd", "live"}),
    (["card_brand", "any_of", ["mastercard"]], {"live"}),
    (["card_brand", "none_of", ["visa"]], {"jpy", "failed", "live"}),  # bank debits have no brand
    (["mode", "any_of", ["live"]], {"live"}),
    (["has_refunds", "is", ["no"]], {"usd", "jpy", "kwd", "failed", "live"}),
    (["has_refunds", "is", ["yes"]], set()),
]


@pytest.mark.parametrize(("condition", "expected"), TEXT_CASES + MONEY_CASES + DATE_CASES + ENUM_CASES,
                         ids=lambda v: "-".join(map(str, v[:2])) if isinstance(v, list) else None)
def test_p3_each_property_kind_and_operator(client, shop, condition, expected):
    assert _adv_ids(client, shop, [condition]) == expected


def test_p3_number_operators(client, shop):
    a, b = str(shop["link_a"].id), str(shop["link_b"].id)
    assert _adv_ids(client, shop, [["link", "eq", [a]]]) == {"usd"}
    # "Not from link A" includes the payments that came from no link at all.
    assert _adv_ids(client, shop, [["link", "ne", [a]]]) == {"jpy", "kwd", "failed", "live"}
    assert _adv_ids(client, shop, [["link", "gt", [a]]]) == {"jpy"}
    assert _adv_ids(client, shop, [["link", "lt", [b]]]) == {"usd"}
    assert _adv_ids(client, shop, [["link", "between", [a, b]]]) == {"usd", "jpy"}
    receipt = str(shop["usd"].receipt_number)
    assert _adv_ids(client, shop, [["receipt_number", "eq", [receipt]]]) == {"usd"}


def test_p3_in_the_last_n_days_counts_local_days(client):
    with time_machine.travel(AUCKLAND_NOW, tick=False):
        owner = make_merchant(timezone=AUCKLAND)
        inside = make_payment(owner.account_id, created_at=local(2026, 3, 8, 0, 0, 30, tz=AUCKLAND))
        make_payment(owner.account_id, created_at=local(2026, 3, 7, 23, 59, 30, tz=AUCKLAND))
        login(client, owner)
        assert _ids(client, adv=_adv([["date", "last_days", ["3"]]])) == {inside.id}


def test_p3_and_within_a_group_or_between_groups(client, shop):
    group_1 = [["status", "any_of", ["failed"]], ["amount", "gt", ["10"]]]
    group_2 = [["method", "any_of", ["ach"]], ["currency", "is", ["JPY"]]]
    assert _adv_ids(client, shop, group_1) == {"failed"}
    assert _adv_ids(client, shop, group_2) == {"jpy"}
    assert _adv_ids(client, shop, group_1, group_2) == {"failed", "jpy"}
    # AND narrows inside a group; the groups still OR.
    assert _adv_ids(client, shop, [*group_1, ["amount", "gt", ["60"]]], group_2) == {"jpy"}
    # Quick filters AND with the whole advanced filter.
    found = _ids(client, method="ach", adv=_adv([["amount", "gt", ["40"]]], [["mode", "any_of", ["live"]]]))
    assert found == {shop["jpy"].id, shop["failed"].id}


def test_p3_chips_read_the_filter(client, shop):
    adv = _adv([["status", "any_of", ["failed"]], ["amount", "gt", ["100"]]], [["method", "any_of", ["ach"]]])
    response = client.get("/payments/", query_string={"adv": adv})
    assert chips(response) == ["Status is any of Failed", "Gross amount > 100",
                               "Payment method is any of Bank debit (ACH)"]
    assert "OR" in text_of(soup_of(response).select_one(".chips"))
    more = client.get("/payments/", query_string={"adv": _adv(
        [["date", "between", ["2026-03-01", "2026-03-02"]], ["company", "known"], ["date", "last_days", ["7"]]])})
    assert chips(more) == ["Payment date between 2026-03-01 and 2026-03-02", "Company is known",
                           "Payment date in the last 7 days"]


BAD_FILTERS = [
    (_adv([["colour", "is", ["red"]]]), "Payments can't be filtered by “colour”. Choose a property from the list."),
    (_adv([["status", "contains", ["fail"]]]), "Status can't be filtered with “contains”. Choose a condition"),
    (_adv([["amount", "gt", ["lots"]]]), "Gross amount needs a number"),
    (_adv([["amount", "between", ["1"]]]), "Enter both ends of the range for Gross amount."),
    (_adv([["date", "before", ["31/03/2026"]]]), "Payment date needs a date like 2026-03-31"),
    (_adv([["date", "last_days", ["0"]]]), "number of days from 1 to 3660"),
    (_adv([["status", "any_of", ["lost"]]]), "Choose values of Status from the list"),
    (_adv([["has_refunds", "is", ["maybe"]]]), "Choose yes or no"),
    (_adv([["email", "is"]]), "Enter a value for Contact email."),
    (_adv([]) + "]", "could not be read"),
    ("{\"a\": 1}", "at most 10 groups"),
    (_adv(*[[["mode", "any_of", ["live"]]]] * 11), "at most 10 groups"),
    (_adv([]), None),  # an empty filter list is no filter
    ("[[]]", "1 to 20 conditions"),
    ("[[\"status\"]]", "One of the filter's conditions could not be read. Start again from the filter panel."),
    ("[" * 5000 + "]" * 5000, None),
]


@pytest.mark.parametrize(("adv", "message"), BAD_FILTERS)
def test_p3_bad_filters_are_a_400_with_a_message(client, adv, message):
    owner = make_merchant()
    make_payment(owner.account_id)
    login(client, owner)
    response = client.get("/payments/", query_string={"adv": adv})
    if adv == "[]":
        assert response.status_code == 200
        return
    assert response.status_code == 400
    alert = error_alert(response)
    assert alert.startswith("That filter can't be used")
    if message:
        assert message in alert
    # The page still works around the message: the filters can be changed from there.
    assert soup_of(response).select_one("form.quickfilters") is not None


@pytest.mark.parametrize(("query", "message"), [
    ({"sort": "id; drop table payments"}, "That sort order doesn't exist. Choose one from the list."),
    ({"cols": "amount,password_hash"}, "There is no column called “password_hash”. Choose columns from the list."),
    ({"date": "yesterday"}, "That date range doesn't exist. Choose one from the list, or enter dates."),
    ({"status": "lost"}, "Choose values of Status"),
    ({"method": "cash"}, "Choose values of Payment method"),
    ({"amount_min": "ten"}, "needs a number"),
    ({"link": "abc"}, "needs a number"),
    ({"refunds": "perhaps"}, "Choose yes or no"),
    ({"from": "2026-02-30"}, "needs a date"),
    ({"to": "9999-12-31"}, None),
    ({"from": "0001-01-01"}, None),
    ({"after": "99999999999999999999999~1", "sort": "amount_desc"}, None),
    ({"after": "100~99999999999999999999999", "sort": "amount_desc"}, None),
])
def test_p2_bad_quick_filters_are_a_400_never_a_500(client, query, message):
    owner = make_merchant()
    make_payment(owner.account_id)
    login(client, owner)
    response = client.get("/payments/", query_string=query)
    assert response.status_code in (200, 400)
    if message:
        assert response.status_code == 400
        assert message in error_alert(response)


def test_p3_text_with_a_nul_character_is_refused_not_crashing_the_database(client):
    owner = make_merchant()
    make_payment(owner.account_id)
    login(client, owner)
    for query in ({"email": "a\x00b"}, {"currency": "\x00"}, {"adv": _adv([["email", "contains", ["\x00"]]])}):
        response = client.get("/payments/", query_string=query)
        assert response.status_code in (200, 400), query


# -- fuzzing: whatever arrives in the URL, the answer is a page or a 400 ----------------------------

SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | SAFE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SAFE_TEXT, children, max_size=3),
    max_leaves=20,
)
ALL_OPS = sorted({op for ops in OPERATORS.values() for op in ops})
VALUE = (st.integers(min_value=-(10**20), max_value=10**20) | st.floats() | SAFE_TEXT
         | st.dates().map(lambda d: d.isoformat()) | st.sampled_from(["yes", "no", "failed", "ach", "9999-12-31",
                                                                      "0001-01-01", "1e400", "NaN", "-0"]))
CONDITION = st.tuples(st.sampled_from([*PROPERTIES, "nope"]), st.sampled_from([*ALL_OPS, "drop"]),
                      st.lists(VALUE, max_size=3)).map(list)
NEAR_VALID = st.lists(st.lists(CONDITION, min_size=1, max_size=3), min_size=1, max_size=3)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


def test_p3_fuzzed_advanced_filters_never_500(client):
    owner = make_merchant()
    make_payment(owner.account_id)
    make_payment(owner.account_id, currency="KWD", status="failed", method="ach")
    login(client, owner)

    @FUZZ
    @given(adv=st.one_of(NEAR_VALID.map(json.dumps), JSON_VALUES.map(json.dumps), SAFE_TEXT))
    @example(adv=_adv([["date", "after", ["9999-12-31"]]]))
    @example(adv=_adv([["date", "between", ["0001-01-01", "9999-12-31"]]]))
    @example(adv=_adv([["date", "before", ["0001-01-01"]]]))
    @example(adv=_adv([["email", "is", ["\x00"]]]))
    @example(adv=_adv([["link", "eq", ["9999999999999"]]]))
    def check(adv):
        response = client.get("/payments/", query_string={"adv": adv})
        assert response.status_code in (200, 400), (adv, response.status_code)

    check()


QUICK_KEYS = ["status", "date", "from", "to", "amount_min", "amount_max", "method", "currency", "link", "email",
              "refunds", "cols", "sort", "after", "before", "view"]


def test_p2_fuzzed_quick_filters_cols_sort_and_cursors_never_500(client):
    owner = make_merchant()
    for i in range(3):
        make_payment(owner.account_id, amount_minor=100 * (i + 1))
    login(client, owner)
    cursorish = st.builds(lambda a, b: f"{a}~{b}", st.one_of(SAFE_TEXT, st.integers(), st.datetimes(
        timezones=st.just(UTC)).map(datetime.isoformat)), st.one_of(st.integers(), SAFE_TEXT))

    @FUZZ
    @given(query=st.dictionaries(st.sampled_from(QUICK_KEYS), st.one_of(SAFE_TEXT, cursorish, st.sampled_from(
        ["today", "custom", "failed", "amount_asc", "amount,status", "9999-12-31", "0001-01-01", "yes", "ach"])),
        min_size=1, max_size=5))
    @example(query={"to": "9999-12-31"})
    @example(query={"from": "0001-01-01", "date": "custom"})
    @example(query={"sort": "amount_asc", "after": "18446744073709551616~1"})
    @example(query={"after": "2026-01-01T00:00:00+00:00~99999999999999999999"})
    @example(query={"email": "\x00"})
    @example(query={"view": "99999999999999999999999"})
    def check(query):
        response = client.get("/payments/", query_string=query)
        allowed = {200, 400} | ({404} if query.get("view", "").isdigit() else set())  # no such saved view
        assert response.status_code in allowed, (query, response.status_code)
        filters = client.get("/payments/filters", query_string=query)
        assert filters.status_code in (200, 400), (query, filters.status_code)

    check()


# -- the advanced filter panel (form round trip) ----------------------------------------------------


def _panel_form(response) -> dict[str, list[str]]:
    """What the panel's form submits as it is rendered (checked boxes, selected options, inputs)."""
    form = soup_of(response).select_one("form.filters")
    values: dict[str, list[str]] = {}
    for control in form.select("input, select"):
        name = control.get("name")
        if not name or control.get("type") in ("submit",):
            continue
        if control.get("type") == "checkbox" and not control.has_attr("checked"):
            continue
        if control.name == "select":
            chosen = control.select_one("option[selected]") or control.select_one("option")
            values.setdefault(name, []).append(chosen["value"])
        else:
            values.setdefault(name, []).append(control.get("value", ""))
    return values


def test_p3_filter_panel_builds_groups_and_applies_them_to_the_index_url(client, shop):
    opened = client.get("/payments/", query_string={"status": "failed", "sort": "amount_asc"})
    panel_href = soup_of(opened).find("a", string=lambda s: s and "Advanced filters" in s)["href"]
    panel = client.get(panel_href)
    assert panel.status_code == 200
    form = _panel_form(panel)
    assert form["c-0-0-prop"] == ["status"]

    # + Add filter group (OR), then fill both groups and apply.
    form["action"] = ["add_group"]
    grown = client.post("/payments/filters", data=form)
    assert grown.status_code == 200
    assert soup_of(grown).select_one("#c-1-0-prop") is not None
    form = _panel_form(grown)
    form.update({"c-0-0-prop": ["method"], "c-0-0-op": ["any_of"], "c-0-0-vals": ["ach"],
                 "c-1-0-prop": ["amount"], "c-1-0-op": ["lt"], "c-1-0-v1": ["1"], "action": ["add_condition:1"]})
    form.pop("c-1-0-vals", None)
    grown = client.post("/payments/filters", data=form)
    assert soup_of(grown).select_one("#c-1-1-prop") is not None
    form = _panel_form(grown)
    form.update({"c-1-1-prop": ["mode"], "c-1-1-op": ["any_of"], "c-1-1-vals": ["live"], "action": ["apply"]})

    applied = client.post("/payments/filters", data=form)

    assert applied.status_code == 303
    target = applied.headers["Location"]
    index = client.get(target)
    assert index.status_code == 200
    # The quick filters and sort it was opened from are kept; the groups are added.
    assert set(row_ids(index)) == {shop["failed"].id}
    assert chips(index) == ["Status: Failed", "Payment method is any of Bank debit (ACH)",
                            "Gross amount < 1", "Mode is any of Live"]
    without_quick = client.get(target.replace("status=failed&", ""))
    assert set(row_ids(without_quick)) == {shop["jpy"].id, shop["failed"].id, shop["live"].id}
    assert row_ids(without_quick)[0] == shop["live"].id  # sort=amount_asc kept

    # Reopening the panel from there shows the same groups, ready to edit.
    reopened = _panel_form(client.get(soup_of(index).find("a", string="Edit advanced filters")["href"]))
    assert reopened["c-0-0-vals"] == ["ach"] and reopened["c-1-0-v1"] == ["1"]
    assert reopened["c-1-1-vals"] == ["live"]

    # Remove a condition, then clear.
    reopened["action"] = ["remove:1-1"]
    fewer = client.post("/payments/filters", data=reopened)
    assert soup_of(fewer).select_one("#c-1-1-prop") is None
    cleared = client.post("/payments/filters", data={**_panel_form(fewer), "action": "clear"})
    assert cleared.status_code == 303
    assert "adv=" not in cleared.headers["Location"]


def test_p3_filter_panel_shows_errors_beside_the_condition(client, shop):
    response = client.post("/payments/filters", data={
        "base_args": "", "c-0-0-prop": "amount", "c-0-0-op": "gt", "c-0-0-v1": "lots",
        "c-1-0-prop": "status", "c-1-0-op": "any_of", "action": "apply"})
    assert response.status_code == 400
    assert "Gross amount needs a number" in text_of(soup_of(response).select_one("#c-0-0-error"))
    assert "Choose values of Status" in text_of(soup_of(response).select_one("#c-1-0-error"))
    # What was typed stays in the form.
    assert soup_of(response).select_one("#c-0-0-v1")["value"] == "lots"


def test_p3_filter_panel_over_htmx_redirects_with_hx_redirect(client, shop):
    response = client.post("/payments/filters", headers={"HX-Request": "true"}, data={
        "base_args": "sort=amount_asc", "c-0-0-prop": "status", "c-0-0-op": "any_of", "c-0-0-vals": "failed",
        "action": "apply"})
    assert response.status_code == 204
    location = response.headers["HX-Redirect"]
    assert "sort=amount_asc" in location
    assert set(row_ids(client.get(location))) == {shop["failed"].id}


def test_p3_filter_panel_with_junk_fields_never_500(client, shop):
    @FUZZ
    @given(form=st.dictionaries(
        st.one_of(st.sampled_from(["c-0-0-prop", "c-0-0-op", "c-0-0-v1", "c-0-0-v2", "c-0-0-vals", "c-1-0-prop",
                                   "c-99-99-op", "base_args", "action"]), SAFE_TEXT),
        st.one_of(SAFE_TEXT, st.sampled_from(["apply", "clear", "add_group", "add_condition:0", "remove:0-0",
                                              "remove:9-x", "status", "amount", "between", "any_of", "adv=[[",
                                              "sort=nope", "date=custom&from=9999-12-31"])),
        max_size=8))
    def check(form):
        response = client.post("/payments/filters", data=form)
        assert response.status_code in (200, 303, 400), (form, response.status_code)

    check()
