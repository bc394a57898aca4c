"""The payments index query (P1–P3): view state from the URL, filters, sort and keyset pagination.

The whole state of a view lives in the query string, so refresh, back, bookmarks and shared URLs all
work, and a saved view is just that query string kept under a name. Pages are fetched by keyset on
(sort value, id) — never OFFSET — and the total is counted exactly up to 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, timedelta
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select, tuple_, union, union_all
from werkzeug.datastructures import MultiDict

from kassa.extensions import db
from kassa.forms import parse_date, parse_id, parse_int, parse_timestamp
from kassa.models import DisplayStatus, Payment, PaymentLink
from kassa.pagination import keyset_page, keyset_window
from kassa.services.backoffice import payment_search, payment_sources
from kassa.services.backoffice.payment_filters import (
    Condition,
    Filter,
    FilterContext,
    FilterError,
    describe_condition,
    dump_filter,
    filter_clause,
    method_options,
    parse_condition,
    parse_filter,
)
from kassa.timefmt import DATE, format_when

COUNT_CAP = 10_000

DATE_PRESETS = {
    "today": _l("Today"), "last_7": _l("Last 7 days"), "last_30": _l("Last 30 days"),
    "last_90": _l("Last 90 days"), "this_month": _l("This month"), "custom": _l("Custom range"),
}
SORTS = {
    "date_desc": (_l("Newest first"), "date", True), "date_asc": (_l("Oldest first"), "date", False),
    "amount_desc": (_l("Largest amount first"), "amount", True), "amount_asc": (_l("Smallest amount first"),
                                                                              "amount", False),
}
COLUMNS = {
    "amount": _l("Gross amount"), "status": _l("Status"), "date": _l("Payment date"), "contact": _l("Contact"),
    "method": _l("Payment method"), "source": _l("Source"), "currency": _l("Currency"), "fee": _l("Fee"),
    "net": _l("Net"), "refunded": _l("Refunded"), "receipt": _l("Receipt number"), "email": _l("Contact email"),
    "company": _l("Company"),
    # D7: dispute properties are columns like any other.
    "dispute_created": _l("Dispute created"), "dispute_reason": _l("Dispute reason"),
    "dispute_amount": _l("Dispute amount"), "dispute_deadline": _l("Dispute deadline"),
    "dispute_closed": _l("Dispute closed"),
    # B2: why a payment failed, and the card-testing guard's risk signal for a declined checkout attempt.
    "decline": _l("Decline reason"), "risk": _l("Risk"),
}
DEFAULT_COLUMNS = ["amount", "status", "date", "contact", "method", "source", "currency"]
# D3: the Disputes tab's columns.
DISPUTE_COLUMNS = ["amount", "date", "contact", "method", "status", "dispute_created", "dispute_reason",
                   "dispute_amount", "dispute_deadline", "dispute_closed"]
TAB_COLUMNS = {"payments": DEFAULT_COLUMNS, "disputes": DISPUTE_COLUMNS}
QUICK_KEYS = ("q", "status", "date", "from", "to", "amount_min", "amount_max", "method", "currency", "link", "email",
              "refunds")


@dataclass
class IndexState:
    q: str = ""  # B3: the search box
    statuses: list[str] = field(default_factory=list)
    date_preset: str = ""
    date_from: str = ""
    date_to: str = ""
    amount_min: str = ""
    amount_max: str = ""
    method: str = ""
    currency: str = ""
    link: str = ""
    email: str = ""
    refunds: str = ""
    advanced: Filter = ()
    sort: str = "date_desc"
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))
    after: str = ""
    before: str = ""
    default_columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))

    # -- URL round trip ---------------------------------------------------------------------------

    @classmethod
    def from_args(cls, args: MultiDict, tab: str = "payments") -> IndexState:
        def one(name: str) -> str:
            return (args.get(name) or "").strip()[:200]

        state = cls(
            q=payment_search.normalise(args.get("q")),
            statuses=[s for s in args.getlist("status") if s][:20], date_preset=one("date"), date_from=one("from"),
            date_to=one("to"), amount_min=one("amount_min"), amount_max=one("amount_max"), method=one("method"),
            currency=one("currency").upper(), link=one("link"), email=one("email"), refunds=one("refunds"),
            advanced=parse_filter(args.get("adv")), sort=one("sort") or "date_desc",
            after=one("after"), before=one("before"),
            columns=list(TAB_COLUMNS[tab]), default_columns=list(TAB_COLUMNS[tab]),
        )
        columns = [c for value in args.getlist("cols") for c in value.split(",") if c]
        if columns:
            unknown = [c for c in columns if c not in COLUMNS]
            if unknown:
                raise FilterError(_("There is no column called “%(name)s”. Choose columns from the list.",
                                     name=unknown[0][:40]))
            state.columns = columns[:len(COLUMNS)]
        if state.sort not in SORTS:
            raise FilterError(_("That sort order doesn't exist. Choose one from the list."))
        if state.date_preset and state.date_preset not in DATE_PRESETS:
            raise FilterError(_("That date range doesn't exist. Choose one from the list, or enter dates."))
        state.quick_filter(date.today())  # noqa: DTZ011 - only validates values now, so bad input is a 400 here
        return state

    def to_args(self, *, page: bool = False) -> MultiDict:
        args: MultiDict = MultiDict()
        if self.q:
            args.add("q", self.q)
        for status in self.statuses:
            args.add("status", status)
        for name, value in (("date", self.date_preset), ("from", self.date_from), ("to", self.date_to),
                            ("amount_min", self.amount_min), ("amount_max", self.amount_max),
                            ("method", self.method), ("currency", self.currency), ("link", self.link),
                            ("email", self.email), ("refunds", self.refunds)):
            if value:
                args.add(name, value)
        if self.advanced:
            args.add("adv", dump_filter(self.advanced))
        if self.sort != "date_desc":
            args.add("sort", self.sort)
        if self.columns != self.default_columns:
            args.add("cols", ",".join(self.columns))
        if page and self.after:
            args.add("after", self.after)
        if page and self.before:
            args.add("before", self.before)
        return args

    def query_string(self) -> str:
        from urllib.parse import urlencode

        return urlencode(list(self.to_args().items(multi=True)))

    def saved_state(self) -> dict[str, Any]:
        """What a saved view keeps: filters, columns and sort, but not the page."""
        return {key: values for key, values in self.to_args().lists()}

    @classmethod
    def from_saved(cls, saved: dict[str, Any], tab: str = "payments") -> IndexState:
        return cls.from_args(MultiDict([(key, value) for key, values in saved.items() for value in values]), tab)

    def first_page(self) -> IndexState:
        return replace(self, after="", before="")

    # -- filters ----------------------------------------------------------------------------------

    def quick_filter(self, today: date) -> tuple[Condition, ...]:
        """The quick filters above the table, as one AND group, checked like advanced conditions."""
        raw: list[list[Any]] = []
        if self.statuses:
            raw.append(["status", "any_of", self.statuses])
        if self.date_preset == "today":
            raw.append(["date", "between", [today.isoformat(), today.isoformat()]])
        elif self.date_preset == "this_month":
            raw.append(["date", "between", [today.replace(day=1).isoformat(), today.isoformat()]])
        elif self.date_preset in ("last_7", "last_30", "last_90"):
            raw.append(["date", "last_days", [self.date_preset.removeprefix("last_")]])
        elif self.date_from and self.date_to:
            raw.append(["date", "between", [self.date_from, self.date_to]])
        elif self.date_from:
            raw.append(["date", "after", [_shift(self.date_from, -1)]])
        elif self.date_to:
            raw.append(["date", "before", [_shift(self.date_to, 1)]])
        if self.amount_min or self.amount_max:
            raw.append(["amount", "between", [self.amount_min or "0", self.amount_max or "10000000000000"]])
        if self.method:
            raw.append(["method", "any_of", [self.method]])
        if self.currency:
            raw.append(["currency", "is", [self.currency]])
        if self.link:
            raw.append(["link", "eq", [self.link]])
        if self.email:
            raw.append(["email", "contains", [self.email]])
        if self.refunds:
            raw.append(["has_refunds", "is", [self.refunds]])
        return tuple(parse_condition(item) for item in raw)

    def has_filters(self, today: date) -> bool:
        return bool(self.q or self.quick_filter(today) or self.advanced)


# -- chips (B4): every active filter, each with the view that removing it leaves -----------------------------


@dataclass(frozen=True)
class Chip:
    label: str
    without: IndexState
    group: int | None = None  # advanced conditions: their group (groups are ORed)


def _no_chip_fields(state: IndexState, **changes: Any) -> IndexState:
    return replace(state, after="", before="", **changes)


def chips(state: IndexState, link_names: dict[int, str]) -> list[Chip]:
    """Readable chips for the search, each quick filter and each advanced condition, in the order shown."""
    found: list[Chip] = []
    if state.q:
        found.append(Chip(_("Search: “%(q)s”", q=state.q), _no_chip_fields(state, q="")))
    labels = dict(status_options())
    for status in state.statuses:
        found.append(Chip(_("Status: %(status)s", status=labels.get(status, status)),
                          _no_chip_fields(state, statuses=[s for s in state.statuses if s != status])))
    dates = _no_chip_fields(state, date_preset="", date_from="", date_to="")
    if state.date_preset and state.date_preset != "custom":
        found.append(Chip(_("Payment date: %(range)s", range=DATE_PRESETS[state.date_preset]), dates))
    elif state.date_from and state.date_to:
        found.append(Chip(_("Payment date: %(start)s to %(end)s", start=_day_text(state.date_from),
                            end=_day_text(state.date_to)), dates))
    elif state.date_from:
        found.append(Chip(_("Payment date: from %(start)s", start=_day_text(state.date_from)), dates))
    elif state.date_to:
        found.append(Chip(_("Payment date: until %(end)s", end=_day_text(state.date_to)), dates))
    amounts = _no_chip_fields(state, amount_min="", amount_max="")
    if state.amount_min and state.amount_max:
        found.append(Chip(_("Amount: %(low)s to %(high)s", low=state.amount_min, high=state.amount_max), amounts))
    elif state.amount_min:
        found.append(Chip(_("Amount: at least %(low)s", low=state.amount_min), amounts))
    elif state.amount_max:
        found.append(Chip(_("Amount: at most %(high)s", high=state.amount_max), amounts))
    if state.method:
        method = dict(method_options()).get(state.method, state.method)
        found.append(Chip(_("Payment method: %(method)s", method=method), _no_chip_fields(state, method="")))
    if state.currency:
        found.append(Chip(_("Currency: %(code)s", code=state.currency), _no_chip_fields(state, currency="")))
    if state.link:
        name = link_names.get(parse_id(state.link) or 0) or _("a link that no longer exists")
        found.append(Chip(_("Payment link: %(name)s", name=name), _no_chip_fields(state, link="")))
    if state.email:
        found.append(Chip(_("Contact email contains “%(text)s”", text=state.email), _no_chip_fields(state, email="")))
    if state.refunds:
        found.append(Chip(_("Has refunds: %(answer)s", answer=_("Yes") if state.refunds == "yes" else _("No")),
                          _no_chip_fields(state, refunds="")))
    values = {"link": {str(ident): name for ident, name in link_names.items()}}
    for g, group in enumerate(state.advanced):
        for i, condition in enumerate(group):
            rest = tuple(c for j, c in enumerate(group) if j != i)
            advanced = tuple(kept for h, kept in enumerate(state.advanced) if h != g) if not rest else \
                tuple(rest if h == g else kept for h, kept in enumerate(state.advanced))
            found.append(Chip(describe_condition(condition, value_labels=values),
                              _no_chip_fields(state, advanced=advanced), group=g))
    return found


def chip_link_ids(state: IndexState) -> set[int]:
    """The payment links the chips name (quick filter and advanced conditions)."""
    ids = {parse_id(state.link)} if state.link else set()
    ids |= {parse_id(v) for group in state.advanced for c in group if c.prop == "link" for v in c.values}
    return {ident for ident in ids if ident}


def link_names(account_id: int, ids: set[int] | None = None) -> dict[int, str]:
    """The account's payment links by id (all of them for the link filter's list, or just `ids`)."""
    query = select(PaymentLink.id, PaymentLink.name).where(PaymentLink.account_id == account_id)
    if ids is not None:
        if not ids:
            return {}
        query = query.where(PaymentLink.id.in_(ids))
    else:
        query = query.where(PaymentLink.deleted_at.is_(None)).order_by(PaymentLink.name, PaymentLink.id).limit(500)
    return dict(db.session.execute(query).all())


def _day_text(text: str) -> str:
    """B7: a typed day as every page shows a date ("Dec 6, 2026"); left as typed when it is not a day."""
    day = parse_date(text)
    return format_when(day, DATE, locale=str(get_locale() or "en"), timezone=None) if day else text


def _shift(text: str, days: int) -> str:
    day = parse_date(text)
    try:
        return (day + timedelta(days=days)).isoformat() if day else text
    except OverflowError:
        return text  # left as typed: the condition parser turns it into a clear message


# -- queries ----------------------------------------------------------------------------------------


@dataclass
class IndexPage:
    rows: list[Payment]
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    total_is_capped: bool
    links: dict[int, str]
    sources: dict[int, payment_sources.Source] = field(default_factory=dict)  # V6: each row's source and name


def _sort_column(state: IndexState):
    return Payment.created_at if SORTS[state.sort][1] == "date" else Payment.amount_minor


def _encode(row: Payment, state: IndexState) -> str:
    value = row.created_at.astimezone(UTC).isoformat() if SORTS[state.sort][1] == "date" else str(row.amount_minor)
    return f"{value}~{row.id}"


def _decode(cursor: str, state: IndexState) -> tuple[Any, int]:
    value, _sep, ident = cursor.rpartition("~")
    try:
        if SORTS[state.sort][1] == "date":
            key: Any = parse_timestamp(value)
            if key is None:
                raise ValueError
            key = key.astimezone(UTC)
        else:
            key = parse_int(value)  # ASCII digits within 64 bits: a bigger number would overflow the driver
            if key is None:
                raise ValueError
        ident_number = parse_id(ident)
        if ident_number is None:
            raise ValueError
        return key, ident_number
    except (ValueError, OverflowError):
        raise FilterError(_("That page link is out of date. Start from the first page.")) from None


def base_query(account_id: int, modes: tuple[str, ...], state: IndexState, ctx: FilterContext,
               extra: Any = None, *, search: bool = True) -> Select:
    """The view's payments; with `search`, the search box's too, as one condition (exports read every row; the
    index page searches by branch instead, see fetch_page)."""
    query = select(Payment).where(Payment.account_id == account_id, Payment.mode.in_(modes))
    if search and state.q:
        query = query.where(payment_search.matches(account_id, state.q))
    quick = state.quick_filter(ctx.today)
    if quick:
        query = query.where(filter_clause((quick,), ctx))
    if state.advanced:
        query = query.where(filter_clause(state.advanced, ctx))
    if extra is not None:
        query = query.where(extra)
    return query


def fetch_page(account_id: int, modes: tuple[str, ...], state: IndexState, ctx: FilterContext,
               extra: Any = None, known_links: dict[int, str] | None = None) -> IndexPage:
    """One page of the view; `known_links`: link names the caller has read already (only the others are read)."""
    query = base_query(account_id, modes, state, ctx, extra, search=False)
    branches = payment_search.branches(account_id, state.q) if state.q else None
    if branches is not None:
        # B3: a search counts each reading up to its own cap, drops those nothing matches, and merges the rest.
        caps = [_count_cap(branch, state) for branch in branches]
        counted = zip(branches, _count_branches(query, [branch.clause for branch in branches], caps), strict=True)
        branches = [(branch, n) for branch, n in counted if n]
        if not branches:
            query = query.where(Payment.id.is_(None))
        total, capped = _search_total(query, branches)
    else:
        total, capped = count(query)  # the whole result, not what is left after this page's cursor
    column = _sort_column(state)
    descending = SORTS[state.sort][2]
    backwards = bool(state.before) and not state.after
    if state.after or state.before:
        key, ident = _decode(state.after or state.before, state)
        forward_cmp = (tuple_(column, Payment.id) < tuple_(key, ident)) if descending else \
            (tuple_(column, Payment.id) > tuple_(key, ident))
        backward_cmp = (tuple_(column, Payment.id) > tuple_(key, ident)) if descending else \
            (tuple_(column, Payment.id) < tuple_(key, ident))
        query = query.where(backward_cmp if backwards else forward_cmp)
    go_down = descending != backwards
    order = (column.desc(), Payment.id.desc()) if go_down else (column.asc(), Payment.id.asc())
    if branches:
        # B3: each reading's first page from its own index, merged; the page is the first of those.
        firsts = [query.where(_page_clause(branch, n, state)).with_only_columns(Payment.id)
                  .order_by(*order).limit(keyset_window()).subquery() for branch, n in branches]
        merged = union_all(*(select(first.c.id) for first in firsts))
        query = select(Payment).where(Payment.id.in_(merged))
    rows, more = keyset_page(query.order_by(*order))
    if backwards:
        rows.reverse()
    has_next = more if not backwards else True
    has_prev = (more if backwards else bool(state.after))
    link_ids = {row.link_id for row in rows if row.link_id}
    known = known_links or {}
    links = {ident: known[ident] for ident in link_ids if ident in known}
    if link_ids - set(links):  # a deleted link's name, or one past the caller's list
        links |= dict(db.session.execute(select(PaymentLink.id, PaymentLink.name)
                                         .where(PaymentLink.id.in_(link_ids - set(links)))).all())
    return IndexPage(
        rows=rows,
        next_cursor=_encode(rows[-1], state) if rows and has_next else None,
        prev_cursor=_encode(rows[0], state) if rows and has_prev else None,
        total=total, total_is_capped=capped, links=links, sources=payment_sources.names(rows, links),
    )


# A search says "1,000+ payments" past this: each reading is counted from its index up to it, cheaply.
SEARCH_COUNT_CAP = 1_000
# A prefix reading matched by more payments than this is read newest first with a check on each row instead of
# sorting all its matches: with N matches among M payments a walk reads about 50·M/N rows, a sort N.
SCAN_OVER = 5_000


def _count_cap(branch: payment_search.Branch, state: IndexState) -> int:
    """How far a reading is counted: to SEARCH_COUNT_CAP for the total, and to SCAN_OVER for a reading that may
    be read by a walk (see _page_clause), so one statement answers both. Up to SEARCH_COUNT_CAP both read the
    same index entries; past it the walk needs the larger count anyway, which took a second round trip before."""
    return SCAN_OVER if branch.scan is not None and SORTS[state.sort][1] == "date" else SEARCH_COUNT_CAP


def _count_branches(query: Select, clauses: list[Any], caps: list[int]) -> list[int]:
    """Each reading's matches up to its cap + 1, all in one statement (one round trip, however many readings)."""
    if not clauses:
        return []
    counts = [select(func.count()).select_from(query.where(clause).with_only_columns(Payment.id).order_by(None)
                                               .limit(cap + 1).subquery()).scalar_subquery()
              for clause, cap in zip(clauses, caps, strict=True)]
    return list(db.session.execute(select(*counts)).one())


def _search_total(query: Select, branches: list) -> tuple[int, bool]:
    """The payments the readings match, a payment once: a lone reading's own count, else their union's."""
    if any(n > SEARCH_COUNT_CAP for _branch, n in branches):
        return SEARCH_COUNT_CAP, True
    if len(branches) <= 1:
        return (branches[0][1] if branches else 0), False
    parts = [query.where(branch.clause).with_only_columns(Payment.id).order_by(None).subquery()
             for branch, _n in branches]
    n = db.session.scalar(select(func.count()).select_from(union(*(select(part.c.id) for part in parts)).subquery()))
    return n, False


def _page_clause(branch: payment_search.Branch, matched: int, state: IndexState) -> Any:
    """A reading matched by more than SCAN_OVER payments (counted that far by _count_cap) is read by a walk."""
    if branch.scan is None or SORTS[state.sort][1] != "date":
        return branch.clause
    return branch.scan if matched > SCAN_OVER else branch.clause


def count(query: Select) -> tuple[int, bool]:
    """Exact up to COUNT_CAP, then "10,000+": counting a million rows on every page view isn't worth it."""
    capped = query.with_only_columns(Payment.id).order_by(None).limit(COUNT_CAP + 1).subquery()
    n = db.session.scalar(select(func.count()).select_from(capped))
    return min(n, COUNT_CAP), n > COUNT_CAP


def account_has_payments(account_id: int) -> bool:
    return db.session.scalar(select(Payment.id).where(Payment.account_id == account_id).limit(1)) is not None


def status_options() -> list[tuple[str, str]]:
    return [(status.value, status.label) for status in DisplayStatus]
