"""The Stripe-shaped resources (I3): read Stripe's parameters, call the service the page calls, answer in
Stripe's shape. A key sees its own account's objects in its own mode only: anything else is `resource_missing`,
as Stripe answers for an id it doesn't know."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from kassa.actor import Actor
from kassa.clock import account_today
from kassa.errors import Conflict, KassaError, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import (
    Account,
    BillingFrequency,
    Confirmation,
    Contact,
    Dispute,
    LedgerEntry,
    Payment,
    PaymentLink,
    Payout,
    Product,
    Refund,
    Subscription,
)
from kassa.money import Money, is_known_currency
from kassa.services.api import stripe_objects
from kassa.services.api.errors import ApiError
from kassa.services.api.metadata import metadata, set_link_metadata
from kassa.services.backoffice.payment_filters import FilterContext, FilterError, filter_clause, parse_filter
from kassa.services.billing.subscriptions import cancel as subscription_cancel
from kassa.services.disputes.disputes import accept as dispute_accept
from kassa.services.disputes.disputes import save_draft
from kassa.services.disputes.disputes import submit_evidence as dispute_submit
from kassa.services.links.link_drafts import ItemDraft, LinkDraft, draft_from_link
from kassa.services.links.links import create_link, owned_link, set_active, update_link
from kassa.services.links.products import create_product as product_create
from kassa.services.payments.refunds import RefundKeyReused, refund_payment

LOCALE = "en"  # API messages and amounts are in English, as Stripe's
DEFAULT_LIMIT, MAX_LIMIT = 10, 100


def missing(kind: str, text: object, param: str | None = None) -> ApiError:
    return ApiError(404, f"No such {kind}: '{text}'", param=param, code="resource_missing")


@dataclass(frozen=True)
class Caller:
    """An API call's actor and the mode of its key."""

    actor: Actor
    mode: str

    @property
    def account_id(self) -> int:
        return self.actor.account_id


def _known(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise ApiError(400, f"Received unknown parameter: {name}", param=name)


def scalar_param(params: dict[str, Any], name: str) -> str | None:
    """A parameter that takes one value (not `name[x]=…`); None when absent."""
    value = params.get(name)
    if isinstance(value, dict):
        raise ApiError(400, f"Invalid string: {name}", param=name)
    return value


def _as_list(value: Any, param: str) -> list[Any]:
    """`a[0][x]=…&a[1][x]=…` arrives as {"0": …, "1": …}: the items in index order."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(parse_int(k, minimum=0, maximum=999) is not None for k in value):
        return [value[k] for k in sorted(value, key=int)]
    raise ApiError(400, f"Invalid array: {param}", param=param)


# -- payment links --------------------------------------------------------------------------------------

_INTERVALS = {("week", 1): BillingFrequency.WEEKLY, ("week", 2): BillingFrequency.BIWEEKLY,
              ("month", 1): BillingFrequency.MONTHLY, ("month", 3): BillingFrequency.QUARTERLY,
              ("month", 6): BillingFrequency.SEMIANNUAL, ("year", 1): BillingFrequency.YEARLY,
              ("year", 2): BillingFrequency.BIENNIAL}
_FIELD_PARAMS = {"unit_price": "[price_data][unit_amount]", "name": "[price_data][product_data][name]",
                 "description": "[price_data][product_data][description]", "quantity": "[quantity]",
                 "frequency": "[price_data][recurring][interval]"}


def _item_draft(item: Any, index: int) -> tuple[ItemDraft, str]:
    param = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise ApiError(400, f"Invalid object: {param}", param=param)
    _known(item, {"price_data", "quantity"})
    if "price_data" not in item:
        raise ApiError(400, "Kassa creates a link's line items from price_data.", param=f"{param}[price_data]")
    data = item["price_data"]
    if not isinstance(data, dict):
        raise ApiError(400, f"Invalid object: {param}[price_data]", param=f"{param}[price_data]")
    _known(data, {"currency", "unit_amount", "product_data", "recurring"})
    currency = str(data.get("currency") or "").upper()
    if not is_known_currency(currency):
        raise ApiError(400, f"Invalid currency: {data.get('currency')}", param=f"{param}[price_data][currency]")
    unit_amount = parse_int(data.get("unit_amount"), minimum=0)
    if unit_amount is None:
        raise ApiError(400, "Invalid integer: unit_amount", param=f"{param}[price_data][unit_amount]")
    product = data.get("product_data") or {}
    if not isinstance(product, dict):
        raise ApiError(400, "Invalid object", param=f"{param}[price_data][product_data]")
    _known(product, {"name", "description"})
    frequency = BillingFrequency.ONE_TIME
    recurring = data.get("recurring")
    if recurring:
        if not isinstance(recurring, dict):
            raise ApiError(400, "Invalid object", param=f"{param}[price_data][recurring]")
        _known(recurring, {"interval", "interval_count"})
        count = parse_int(recurring.get("interval_count") or "1", minimum=1)
        chosen = _INTERVALS.get((recurring.get("interval"), count))
        if chosen is None:
            raise ApiError(400, "Kassa bills every 1 or 2 weeks, 1, 3 or 6 months, or 1 or 2 years.",
                           param=f"{param}[price_data][recurring][interval]")
        frequency = chosen
    draft = ItemDraft(name=str(product.get("name") or ""), description=str(product.get("description") or ""),
                      unit_price=Money(unit_amount, currency).to_input(LOCALE),
                      quantity=str(item.get("quantity") or "1"), frequency=frequency.value)
    return draft, currency


def _draft_param(field: str) -> str | None:
    """The Stripe parameter of a link editor field ("items-0-unit_price" → line_items[0][price_data][unit_amount])."""
    match = re.fullmatch(r"items-(\d+)-(\w+)", field)
    if match and match.group(2) in _FIELD_PARAMS:
        return f"line_items[{match.group(1)}]{_FIELD_PARAMS[match.group(2)]}"
    if field == "redirect_url":
        return "after_completion[redirect][url]"
    return "line_items" if field.startswith("items") else None


def create_payment_link(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/payment_links: the link editor's draft, filled from Stripe's parameters, saved by the editor's
    service (the same validation, the same audit row)."""
    _known(params, {"line_items", "after_completion", "metadata"})
    if "metadata" in params:
        metadata(params["metadata"])  # I3: checked before anything is saved
    if "line_items" not in params:
        raise ApiError(400, "Missing required param: line_items.", param="line_items")
    items, currencies = [], set()
    for index, item in enumerate(_as_list(params["line_items"], "line_items")):
        draft_item, currency = _item_draft(item, index)
        items.append(draft_item)
        currencies.add(currency)
    if not items:
        raise ApiError(400, "Missing required param: line_items.", param="line_items")
    if len(currencies) > 1:
        raise ApiError(400, "All line items must have the same currency.", param="line_items")
    # The link's internal name (L8, never shown to buyers): its first item's.
    draft = LinkDraft(name=items[0].name[:200] or "API link", currency=currencies.pop(), items=items)
    after = params.get("after_completion")
    if after:
        _after_completion(draft, after)
    try:
        link = create_link(caller.actor, draft, LOCALE)
    except ValidationFailed as exc:
        field, message = next(iter(exc.errors.items()), (exc.field, exc.message))
        raise ApiError(400, message, param=_draft_param(field or "")) from None
    if "metadata" in params:
        set_link_metadata(link.id, params["metadata"])
    return stripe_objects.payment_link(link, caller.mode)


def _owned_link(caller: Caller, link_id: str) -> PaymentLink | None:
    number = stripe_objects.parse_object_id("payment_link", link_id)
    try:
        return owned_link(db.session, caller.account_id, number) if number else None
    except NotFound:
        return None


def retrieve_payment_link(caller: Caller, link_id: str) -> dict[str, Any]:
    link = _owned_link(caller, link_id)
    if link is None:
        raise missing("payment_link", link_id, "id")
    return stripe_objects.payment_link(link, caller.mode)


def _after_completion(draft: LinkDraft, after: Any) -> None:
    if not isinstance(after, dict) or after.get("type") not in ("redirect", "hosted_confirmation"):
        raise ApiError(400, "Invalid after_completion[type]", param="after_completion[type]")
    if after["type"] == "redirect":
        redirect = after.get("redirect") if isinstance(after.get("redirect"), dict) else {}
        draft.confirmation = Confirmation.REDIRECT.value
        draft.redirect_url = str(redirect.get("url") or "")
    else:
        draft.confirmation, draft.redirect_url = Confirmation.DEFAULT.value, ""


def update_payment_link(caller: Caller, link_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/payment_links/<id>: `active=false` deactivates the link (its URL stays, L19), `true` brings it
    back — the links list's own action. `line_items` (replaced, from price_data, in the link's currency),
    `after_completion` and `billing_address_collection` change the link through the link editor's service: the
    same validation, same URL, a new version that only checkouts started afterwards see (L19)."""
    link = _owned_link(caller, link_id)
    if link is None:
        raise missing("payment_link", link_id, "id")
    _known(params, {"active", "line_items", "after_completion", "billing_address_collection", "metadata"})
    if "metadata" in params:
        metadata(params["metadata"], link.metadata_json)  # I3: checked before anything is saved
    edits = {"line_items", "after_completion", "billing_address_collection"} & set(params)
    if edits:
        draft = draft_from_link(link, LOCALE)
        if "line_items" in params:
            items = [_item_draft(item, index) for index, item in enumerate(_as_list(params["line_items"],
                                                                                     "line_items"))]
            if not items:
                raise ApiError(400, "Missing required param: line_items.", param="line_items")
            if {currency for _item, currency in items} != {link.currency}:
                raise ApiError(400, f"A link's line items stay in its currency ({link.currency.lower()}).",
                               param="line_items")
            draft.items = [item for item, _currency in items]
        if "after_completion" in params:
            _after_completion(draft, params["after_completion"])
        if "billing_address_collection" in params:
            draft.collect_billing_address = params["billing_address_collection"] == "required"
        try:
            link = update_link(caller.actor, link.id, draft, LOCALE)
        except ValidationFailed as exc:
            field, message = next(iter(exc.errors.items()), (exc.field, exc.message))
            raise ApiError(400, message, param=_draft_param(field or "")) from None
    if "active" in params:
        active = scalar_param(params, "active")
        if active not in ("true", "false"):
            raise ApiError(400, "Invalid boolean: active", param="active")
        try:
            link = set_active(caller.actor, link.id, active == "true")
        except Conflict as exc:
            raise ApiError(400, exc.message, param="active") from None
    if "metadata" in params:
        set_link_metadata(link.id, params["metadata"])
        link = _owned_link(caller, link_id)
    return stripe_objects.payment_link(link, caller.mode)


# -- payment intents ------------------------------------------------------------------------------------


def _visible_payment(caller: Caller, number: int | None) -> Payment | None:
    payment = db.session.get(Payment, number) if number else None
    if payment is None or payment.account_id != caller.account_id or payment.mode != caller.mode:
        return None
    return payment


def limit_param(params: dict[str, Any]) -> int:
    if "limit" not in params:
        return DEFAULT_LIMIT
    limit = parse_int(scalar_param(params, "limit"), minimum=1, maximum=MAX_LIMIT)
    if limit is None:
        raise ApiError(400, "Invalid integer: limit must be between 1 and 100.", param="limit")
    return limit


def page_query(query, model, cursor, limit: int, before: bool = False):
    """The select of one list page and one row more (to tell `has_more`), in Stripe's order: newest first after
    the `starting_after` row, or, with `before`, oldest first from the `ending_before` row (reversed by `list_page`).
    Keyset on (created_at, id), read off the (account_id, created_at, id) index: the plain bound on created_at
    lets the database start the index scan at the cursor (the OR alone doesn't), so page 50,000 costs what page
    1 does. No OFFSET, no COUNT."""
    if before and cursor is not None:
        newer = or_(model.created_at > cursor.created_at,
                    and_(model.created_at == cursor.created_at, model.id > cursor.id))
        return (query.where(model.created_at >= cursor.created_at, newer)
                .order_by(model.created_at.asc(), model.id.asc()).limit(limit + 1))
    query = query.order_by(model.created_at.desc(), model.id.desc())
    if cursor is not None:
        query = query.where(model.created_at <= cursor.created_at,
                            or_(model.created_at < cursor.created_at,
                                and_(model.created_at == cursor.created_at, model.id < cursor.id)))
    return query.limit(limit + 1)


def list_page(query, model, cursor, limit: int, before: bool = False) -> tuple[list[Any], bool]:
    """One page of `page_query` and whether there are more rows beyond it: objects for `select(Model)`, plain
    rows for a select of columns."""
    result = db.session.execute(page_query(query, model, cursor, limit, before))
    shown = query.column_descriptions
    rows = list(result.scalars() if len(shown) == 1 and shown[0]["expr"] is shown[0].get("entity") else result)
    if before and cursor is not None:
        return list(reversed(rows[:limit])), len(rows) > limit
    return rows[:limit], len(rows) > limit


def cursor_param(params: dict[str, Any], find) -> tuple[Any, bool]:
    """The `starting_after` or `ending_before` row (one of them, as Stripe's), and whether it is `ending_before`."""
    if "starting_after" in params and "ending_before" in params:
        raise ApiError(400, "You may only specify one of these parameters: starting_after, ending_before.",
                       param="ending_before")
    for name in ("starting_after", "ending_before"):
        text = scalar_param(params, name)
        if text:
            row = find(text)
            if row is None:
                raise missing("object", text, name)
            return row, name == "ending_before"
    return None, False


# What a PaymentIntent shows (stripe_objects.payment_intent) and its customer's id: a list reads these columns as
# plain rows, not the payment's ~80 columns as objects (at limit=100 that was most of the call's time).
INTENT_COLUMNS = (Payment.id, Payment.mode, Payment.status, Payment.amount_minor, Payment.currency, Payment.created_at,
                  Payment.buyer_email, Payment.method, Payment.failure_code, Payment.failure_message,
                  Payment.refund_reserved_minor, Payment.contact_id)


def _payments_page(caller: Caller, params: dict[str, Any], kind: str) -> tuple[list[Payment], bool]:
    """GET /v1/payment_intents and /v1/charges: the key's mode's payments, `limit` (1–100, 10), `starting_after`
    or `ending_before`."""
    _known(params, {"limit", "starting_after", "ending_before", "expand"})
    limit = limit_param(params)
    cursor, before = cursor_param(params, lambda text: _visible_payment(caller, stripe_objects.parse_object_id(kind, text)))
    shown = select(*INTENT_COLUMNS) if kind == "payment_intent" else select(Payment)
    query = shown.where(Payment.account_id == caller.account_id, Payment.mode == caller.mode)
    return list_page(query, Payment, cursor, limit, before)


_EXPANDABLE = {"customer", "refunds"}


def _expand(params: dict[str, Any]) -> set[str]:
    """`expand[]=customer&expand[]=refunds` (I2): those relations as objects; the schema checked the names."""
    value = params.get("expand") or []
    chosen = set(value if isinstance(value, list) else _as_list(value, "expand"))
    unknown = chosen - _EXPANDABLE
    if unknown:
        raise ApiError(400, f"This property cannot be expanded ({sorted(unknown)[0]}).", param="expand")
    return chosen


def _contacts(payments: list[Payment]) -> dict[int, Contact]:
    """The page's buyers in one query (a page of 100 payments is one lookup, not 100)."""
    ids = {p.contact_id for p in payments if p.contact_id}
    return {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}


def _intents(payments: list[Payment], expand: set[str]) -> list[dict[str, Any]]:
    """PaymentIntents of payments (objects, or rows of INTENT_COLUMNS). `customer` is the contact's id, read off
    the payment (its foreign key says the contact exists); the contacts are loaded only to expand them."""
    contacts = _contacts(payments) if "customer" in expand else {}
    refunds: dict[int, list[Refund]] = {}
    if "refunds" in expand and payments:
        for row in db.session.scalars(select(Refund).where(Refund.payment_id.in_([p.id for p in payments]))
                                      .order_by(Refund.created_at.desc(), Refund.id.desc())):
            refunds.setdefault(row.payment_id, []).append(row)
    bodies = []
    for payment in payments:
        body = stripe_objects.payment_intent(payment)
        body["customer"] = stripe_objects.object_id("customer", payment.contact_id) if payment.contact_id else None
        contact = contacts.get(payment.contact_id) if payment.contact_id else None
        if contact is not None:
            body["customer"] = stripe_objects.customer(contact)
        if "refunds" in expand:
            rows = refunds.get(payment.id, [])
            body["refunds"] = stripe_objects.list_envelope(
                f"/v1/refunds?payment_intent={body['id']}", [stripe_objects.refund(r) for r in rows[:MAX_LIMIT]],
                len(rows) > MAX_LIMIT)
        bodies.append(body)
    return bodies


def list_payment_intents(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    rows, more = _payments_page(caller, params, "payment_intent")
    expand = _expand(params)
    return stripe_objects.list_envelope(url, _intents(rows, expand), more)


def list_charges(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    rows, more = _payments_page(caller, params, "charge")
    return stripe_objects.list_envelope(url, [stripe_objects.charge(p) for p in rows], more)


def retrieve_charge(caller: Caller, charge_id: str) -> dict[str, Any]:
    payment = _visible_payment(caller, stripe_objects.parse_object_id("charge", charge_id))
    if payment is None:
        raise missing("charge", charge_id, "id")
    return stripe_objects.charge(payment)


def retrieve_payment_intent(caller: Caller, intent_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    payment = _visible_payment(caller, stripe_objects.parse_object_id("payment_intent", intent_id))
    if payment is None:
        raise missing("payment_intent", intent_id, "id")
    return _intents([payment], _expand(params or {}))[0]


# -- refunds --------------------------------------------------------------------------------------------

_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def create_refund(caller: Caller, params: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """POST /v1/refunds: the refunds service's refund (F6: never more than was paid, never twice). Stripe's
    `Idempotency-Key` is the refund's key, so a retried request makes one refund."""
    _known(params, {"payment_intent", "charge", "amount", "reason"})
    if "payment_intent" in params:
        kind, param = "payment_intent", "payment_intent"
    elif "charge" in params:
        kind, param = "charge", "charge"
    else:
        raise ApiError(400, "One of the following params should be provided for this request: payment_intent or "
                       "charge.", param="payment_intent")
    target = scalar_param(params, param)
    payment = _visible_payment(caller, stripe_objects.parse_object_id(kind, target))
    if payment is None:
        raise missing(kind, target, param)
    reason = scalar_param(params, "reason") or "requested_by_customer"
    if reason not in _REASONS:
        raise ApiError(400, f"Invalid reason: must be one of {', '.join(sorted(_REASONS))}", param="reason")
    if "amount" in params:
        amount = parse_int(scalar_param(params, "amount"), minimum=1)
        if amount is None:
            raise ApiError(400, "Invalid positive integer", param="amount")
    else:
        amount = payment.amount_minor - payment.refund_reserved_minor  # Stripe: the rest, when none is given
    key = f"api-{caller.actor.api_key_id}-{idempotency_key}"[:120] if idempotency_key else None
    try:
        row = refund_payment(caller.actor, payment.id, amount_text=Money(max(amount, 1), payment.currency)
                             .to_input(LOCALE), reason=reason, note="", locale=LOCALE, idempotency_key=key)
    except RefundKeyReused as exc:
        raise ApiError(400, exc.message, type="idempotency_error") from None
    except ValidationFailed as exc:
        code = "amount_too_large" if exc.field == "amount" else None
        raise ApiError(400, exc.message, param=exc.field, code=code) from None
    except Conflict as exc:
        raise ApiError(400, exc.message, param=param) from None
    return stripe_objects.refund(row)


def _visible_refund(caller: Caller, number: int | None) -> Refund | None:
    row = db.session.get(Refund, number) if number else None
    if row is None or row.account_id != caller.account_id or _visible_payment(caller, row.payment_id) is None:
        return None
    return row


def retrieve_refund(caller: Caller, refund_id: str) -> dict[str, Any]:
    row = _visible_refund(caller, stripe_objects.parse_object_id("refund", refund_id))
    if row is None:
        raise missing("refund", refund_id, "id")
    return stripe_objects.refund(row)


def list_refunds(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    """GET /v1/refunds: the key's mode's refunds, newest first; `payment_intent` or `charge` for one payment's."""
    _known(params, {"limit", "starting_after", "ending_before", "payment_intent", "charge"})
    limit = limit_param(params)
    query = (select(Refund).join(Payment, Payment.id == Refund.payment_id)
             .where(Refund.account_id == caller.account_id, Payment.mode == caller.mode))
    for kind in ("payment_intent", "charge"):
        if kind in params:
            payment = _visible_payment(caller, stripe_objects.parse_object_id(kind, scalar_param(params, kind)))
            if payment is None:
                raise missing(kind, params[kind], kind)
            query = query.where(Refund.payment_id == payment.id)
    cursor, before = cursor_param(params, lambda text: _visible_refund(caller, stripe_objects.parse_object_id("refund", text)))
    rows, more = list_page(query, Refund, cursor, limit, before)
    return stripe_objects.list_envelope(url, [stripe_objects.refund(r) for r in rows], more)


# -- disputes -------------------------------------------------------------------------------------------


def retrieve_dispute(caller: Caller, dispute_id: str) -> dict[str, Any]:
    number = stripe_objects.parse_object_id("dispute", dispute_id)
    row = db.session.get(Dispute, number) if number else None
    payment = _visible_payment(caller, row.payment_id) if row is not None else None
    if row is None or row.account_id != caller.account_id or payment is None:
        raise missing("dispute", dispute_id, "id")
    return stripe_objects.dispute(row, payment)


def api_error_of(exc: KassaError) -> ApiError:
    """A service's error that no resource turned into a Stripe one: its status, in Stripe's envelope."""
    if isinstance(exc, NotFound):
        return ApiError(404, exc.message, code="resource_missing")
    kinds = {401: "invalid_request_error", 403: "invalid_request_error", 429: "rate_limit_error"}
    status = exc.status_code if exc.status_code in (401, 403, 404, 429) else 400
    return ApiError(status, exc.message, param=exc.field, type=kinds.get(status, "invalid_request_error"))


# -- I2: dispute answers, subscriptions, payouts, balance transactions, products, Kassa's payment filter ------

def _visible_dispute(caller: Caller, dispute_id: str) -> tuple[Dispute, Payment]:
    number = stripe_objects.parse_object_id("dispute", dispute_id)
    row = db.session.get(Dispute, number) if number else None
    payment = _visible_payment(caller, row.payment_id) if row is not None else None
    if row is None or row.account_id != caller.account_id or payment is None:
        raise missing("dispute", dispute_id, "id")
    return row, payment


def update_dispute(caller: Caller, dispute_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/disputes/<id>: `evidence[…]` text is saved into the dispute's evidence draft (the dashboard's
    wizard shows it), `submit=true` submits the evidence — the disputes service's own submission (D4: once; the
    processor gets it; the dispute moves to under review)."""
    row, _payment = _visible_dispute(caller, dispute_id)
    evidence = params.get("evidence") or {}
    try:
        if evidence:
            draft = dict((row.draft or {}).get("evidence") or {})
            save_draft(caller.actor, row.id, "evidence", {**draft, **evidence})
        if params.get("submit") == "true":
            dispute_submit(caller.actor, row.id)
    except ValidationFailed as exc:
        raise ApiError(400, exc.message, param="evidence") from None
    except Conflict as exc:
        raise ApiError(400, exc.message, param="submit" if params.get("submit") else "evidence") from None
    db.session.expire_all()
    row, payment = _visible_dispute(caller, dispute_id)
    return stripe_objects.dispute(row, payment)


def close_dispute(caller: Caller, dispute_id: str) -> dict[str, Any]:
    """POST /v1/disputes/<id>/close: accept the dispute (D5, the disputes service's accept): it closes as lost."""
    row, _payment = _visible_dispute(caller, dispute_id)
    try:
        dispute_accept(caller.actor, row.id)
    except Conflict as exc:
        raise ApiError(400, exc.message, param="id") from None
    db.session.expire_all()
    row, payment = _visible_dispute(caller, dispute_id)
    return stripe_objects.dispute(row, payment)


def _visible_subscription(caller: Caller, subscription_id: str) -> Subscription:
    number = stripe_objects.parse_object_id("subscription", subscription_id)
    row = db.session.get(Subscription, number) if number else None
    if row is None or row.account_id != caller.account_id or row.mode != caller.mode:
        raise missing("subscription", subscription_id, "id")
    return row


def retrieve_subscription(caller: Caller, subscription_id: str) -> dict[str, Any]:
    return stripe_objects.subscription(_visible_subscription(caller, subscription_id))


def cancel_subscription(caller: Caller, subscription_id: str, when: str) -> dict[str, Any]:
    """DELETE /v1/subscriptions/<id> (now) and POST … `cancel_at_period_end=true` (at the end of the paid period):
    the subscriptions service's cancel (S2), as the page's."""
    row = _visible_subscription(caller, subscription_id)
    try:
        subscription_cancel(caller.actor, row.id, when)
    except Conflict as exc:
        raise ApiError(400, exc.message, param="id") from None
    db.session.expire_all()
    return stripe_objects.subscription(_visible_subscription(caller, subscription_id))


def update_subscription(caller: Caller, subscription_id: str, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("cancel_at_period_end") == "true":
        return cancel_subscription(caller, subscription_id, "period_end")
    if params.get("cancel_at_period_end") == "false":
        raise ApiError(400, "A scheduled cancellation can't be undone through the API yet.",
                       param="cancel_at_period_end")
    return retrieve_subscription(caller, subscription_id)


def _visible_payout(caller: Caller, number: int | None) -> Payout | None:
    row = db.session.get(Payout, number) if number else None
    if row is None or row.account_id != caller.account_id or row.mode != caller.mode:
        return None
    return row


def retrieve_payout(caller: Caller, payout_id: str) -> dict[str, Any]:
    row = _visible_payout(caller, stripe_objects.parse_object_id("payout", payout_id))
    if row is None:
        raise missing("payout", payout_id, "id")
    return stripe_objects.payout(row)


def list_payouts(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    limit = limit_param(params)
    cursor, before = cursor_param(params, lambda text: _visible_payout(caller, stripe_objects.parse_object_id("payout", text)))
    query = select(Payout).where(Payout.account_id == caller.account_id, Payout.mode == caller.mode)
    if "status" in params:
        query = query.where(Payout.status == params["status"])
    rows, more = list_page(query, Payout, cursor, limit, before)
    return stripe_objects.list_envelope(url, [stripe_objects.payout(r) for r in rows], more)


class _LedgerOrder:
    """Balance transactions are listed by when they happened (occurred_at), newest first."""

    created_at = LedgerEntry.occurred_at
    id = LedgerEntry.id


def _visible_entry(caller: Caller, number: int | None) -> LedgerEntry | None:
    row = db.session.get(LedgerEntry, number) if number else None
    if row is None or row.account_id != caller.account_id or row.mode != caller.mode:
        return None
    return row


def retrieve_balance_transaction(caller: Caller, txn_id: str) -> dict[str, Any]:
    row = _visible_entry(caller, stripe_objects.parse_object_id("balance_transaction", txn_id))
    if row is None:
        raise missing("balance_transaction", txn_id, "id")
    return stripe_objects.balance_transaction(row)


def list_balance_transactions(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    """GET /v1/balance_transactions: the key's mode's ledger, newest first; `payout=po_…` for one payout's
    entries, `type` for one kind."""
    limit = limit_param(params)

    def find(text: str):
        row = _visible_entry(caller, stripe_objects.parse_object_id("balance_transaction", text))
        return None if row is None else _Cursor(row.occurred_at, row.id)

    cursor, before = cursor_param(params, find)
    query = select(LedgerEntry).where(LedgerEntry.account_id == caller.account_id, LedgerEntry.mode == caller.mode)
    if "payout" in params:
        payout = _visible_payout(caller, stripe_objects.parse_object_id("payout", params["payout"]))
        if payout is None:
            raise missing("payout", params["payout"], "payout")
        query = query.where(LedgerEntry.payout_id == payout.id)
    if "type" in params:
        query = query.where(LedgerEntry.type == params["type"])
    rows, more = list_page(query, _LedgerOrder, cursor, limit, before)
    return stripe_objects.list_envelope(url, [stripe_objects.balance_transaction(r) for r in rows], more)


@dataclass(frozen=True)
class _Cursor:
    created_at: Any
    id: int


def _visible_product(caller: Caller, number: int | None) -> Product | None:
    row = db.session.get(Product, number) if number else None
    return row if row is not None and row.account_id == caller.account_id else None


def retrieve_product(caller: Caller, product_id: str) -> dict[str, Any]:
    row = _visible_product(caller, stripe_objects.parse_object_id("product", product_id))
    if row is None:
        raise missing("product", product_id, "id")
    return stripe_objects.product(row, caller.mode)


def list_products(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    """GET /v1/products: the account's products (products have no mode: both keys see them), newest first;
    `active=true|false` for live or archived ones."""
    limit = limit_param(params)
    cursor, before = cursor_param(params, lambda text: _visible_product(caller, stripe_objects.parse_object_id("product", text)))
    query = select(Product).where(Product.account_id == caller.account_id)
    if params.get("active") == "true":
        query = query.where(Product.archived_at.is_(None))
    elif params.get("active") == "false":
        query = query.where(Product.archived_at.is_not(None))
    rows, more = list_page(query, Product, cursor, limit, before)
    return stripe_objects.list_envelope(url, [stripe_objects.product(r, caller.mode) for r in rows], more)


_PRODUCT_PARAMS = {"name": "name", "description": "description", "unit_price": "default_price_data[unit_amount]",
                   "currency": "default_price_data[currency]", "frequency": "default_price_data[recurring][interval]",
                   "sku": "metadata[sku]"}


def create_product(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/products: `name`, `description`, `default_price_data[currency|unit_amount|recurring]` — the
    products page's service (same validation, same audit row)."""
    price = params.get("default_price_data") or {}
    currency = str(price.get("currency") or "").upper()
    if not is_known_currency(currency):
        raise ApiError(400, f"Invalid currency: {price.get('currency')}", param="default_price_data[currency]")
    if "unit_amount" not in price:
        raise ApiError(400, "Missing required param: default_price_data[unit_amount].",
                       param="default_price_data[unit_amount]")
    frequency = BillingFrequency.ONE_TIME
    recurring = price.get("recurring")
    if recurring:
        chosen = _INTERVALS.get((recurring.get("interval"), parse_int(recurring.get("interval_count") or "1",
                                                                      minimum=1) or 0))
        if chosen is None:
            raise ApiError(400, "Kassa bills every 1 or 2 weeks, 1, 3 or 6 months, or 1 or 2 years.",
                           param="default_price_data[recurring][interval]")
        frequency = chosen
    form = {"name": str(params.get("name") or ""), "description": str(params.get("description") or ""),
            "currency": currency, "unit_price": Money(int(price["unit_amount"]), currency).to_input(LOCALE),
            "frequency": frequency.value, "term_type": "auto_renew" if recurring else "",
            "term_count": ""}
    try:
        product = product_create(caller.actor, form, LOCALE)
    except ValidationFailed as exc:
        field, message = next(iter(exc.errors.items()), (exc.field, exc.message))
        raise ApiError(400, message, param=_PRODUCT_PARAMS.get(field or "", field)) from None
    return stripe_objects.product(product, caller.mode)


def filter_payments(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    """GET /api/kassa/payments?filter=…: the payments index's filter language (the `adv` parameter's JSON:
    groups of [property, operator, values], OR between groups, AND inside) on the key's mode's payments,
    newest first, with the same cursor pagination."""
    account = db.session.get(Account, caller.account_id)
    try:
        groups = parse_filter(params.get("filter"))
    except FilterError as exc:
        raise ApiError(400, exc.message, param="filter") from None
    ctx = FilterContext(timezone=account.timezone, today=account_today(account))
    limit = limit_param(params)
    cursor, before = cursor_param(params, lambda text: _visible_payment(
        caller, stripe_objects.parse_object_id("payment_intent", text)))
    query = select(*INTENT_COLUMNS).where(Payment.account_id == caller.account_id, Payment.mode == caller.mode,
                                          filter_clause(groups, ctx))
    rows, more = list_page(query, Payment, cursor, limit, before)
    return stripe_objects.list_envelope(url, _intents(rows, set()), more)
