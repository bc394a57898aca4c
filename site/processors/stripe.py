"""The Stripe processor (K8, K9, K13): the Processor Protocol's server side over the official SDK.

One `StripeProcessor` per merchant account, built on that account's own `stripe.StripeClient` (never the global
``stripe.api_key``). Card data never reaches Kassa: a charge names a PaymentMethod that Stripe's Payment Element
created in the buyer's browser (``ChargeRequest.payment_method_token``).

Finding an object by Kassa's key (``lookup_charge``/``lookup_refund``, and the idempotency check below): every
PaymentIntent and Refund carries ``kassa_account``, ``kassa_key`` and ``kassa_request`` in its metadata, and
lookups page through the account's recent objects newest first. Stripe's Search API would be shorter but it is
eventually consistent (a PaymentIntent made a moment ago may not be found, which is exactly the crash-recovery
case) and localstripe lacks it; listing is read-after-write consistent on Stripe and on the test doubles. Stripe
keeps idempotency keys for 24 hours and Kassa's keys are forever, so the processor checks its own key first.

Events (K7, K9, K10): Stripe's webhooks and the catch-up poll of GET /v1/events put Stripe events into the
connection's inbox (kassa.processors.stripe_inbox); ``due_events`` re-fetches each object they name and answers
the Protocol events its *current* state implies, with ids made of the object and the outcome
(``pi_…:charge.succeeded``): events arriving in any order, any number of times, give the same events, and the
processed-event row makes each apply once. A state Kassa can't reach forward from is left to the service.

Not built yet: dispute answers (K10's evidence upload and accept) and payouts (K11) raise NotImplementedError."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe
from babel.numbers import is_currency
from flask import current_app

from kassa.money import exponent
from kassa.processors.base import (
    N_,
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    DisputeResult,
    PayoutResult,
    ProcessorError,
    ProcessorEvent,
    ProcessorFailure,
    ProcessorUnavailable,
    RefundResult,
    SavedCard,
)
from kassa.processors.stripe_inbox import StripeInbox

# How far back a lookup by key pages (100 objects a page): a lost answer is looked up within minutes.
LOOKUP_PAGES = 10
# The charge's latest_charge and its balance transaction come with it: fees and settlement in one call.
EXPAND = ["latest_charge.balance_transaction"]
CHARGED = ("succeeded", "processing")

_NO_CARD_DATA = N_("Card details must come from Stripe's Payment Element; Kassa never receives them.")

# K7: the events the webhook endpoint subscribes to and the poll asks for. Bank debits (SEPA, ACH) settle or
# bounce after the checkout (payment_intent.*); refunds settle or fail (K9); disputes open and close (K10).
WEBHOOK_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "charge.refund.updated",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
)
# Stripe's signature tolerance: a delivery signed more than 5 minutes ago is refused (a replayed request).
WEBHOOK_TOLERANCE = 300
# The poll asks again from a little before the newest event it saw: events of one second may be listed late.
POLL_OVERLAP = timedelta(minutes=5)
# Stripe keeps events 30 days; a connection never polled starts from when it connected, at most this far back.
POLL_HORIZON = timedelta(days=30)
POLL_PAGES = 20

# Why Stripe could not complete a refund (its failure_reason), as the merchant reads it (K9).
REFUND_FAILURES = {
    "lost_or_stolen_card": N_("The card was reported lost or stolen, so the refund could not be sent to it."),
    "expired_or_canceled_card": N_("The card has expired or was canceled, so the refund could not be sent to it."),
    "charge_for_pending_refund_disputed": N_("The payment was disputed while the refund was pending."),
    "insufficient_funds": N_("Your Stripe balance was too low to pay the refund."),
    "declined": N_("The card's bank declined the refund."),
    "merchant_request": N_("The refund was canceled in Stripe."),
    "unknown": N_("Stripe could not complete the refund."),
}
# Stripe's dispute statuses (inquiries are warning_*) as the Protocol's outcomes.
DISPUTE_WON = ("won", "warning_closed", "prevented")
DISPUTE_LOST = ("lost",)


def handled(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the types Kassa subscribes to (a manually added endpoint may send more)."""
    return [event for event in events if event.get("type") in WEBHOOK_EVENTS]


class InvalidWebhook(Exception):
    """A delivery that is not a Stripe event signed with this connection's secret within the tolerance."""


def verify_webhook(payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The event in a webhook delivery, checked as Stripe documents it: the ``Stripe-Signature`` header's HMAC of
    its timestamp and the raw body under the endpoint's secret, at most 300 s old. Raises InvalidWebhook."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise InvalidWebhook(str(exc)) from exc
    answer = event.to_dict()
    if not all(answer.get(name) for name in ("id", "type", "created")):
        raise InvalidWebhook("not an event")
    return answer


def stripe_client(secret_key: str) -> stripe.StripeClient:
    """A client for one account's key and one request (never the SDK's global ``stripe.api_key``). The transport
    and hosts come from the app config (KASSA_STRIPE_HTTP_CLIENT / KASSA_STRIPE_BASE_ADDRESSES), so tests answer
    from localstripe or fixtures without the internet."""
    options: dict[str, Any] = {"max_network_retries": 0}
    if current_app.config.get("KASSA_STRIPE_HTTP_CLIENT") is not None:
        options["http_client"] = current_app.config["KASSA_STRIPE_HTTP_CLIENT"]
    if current_app.config.get("KASSA_STRIPE_BASE_ADDRESSES"):
        options["base_addresses"] = current_app.config["KASSA_STRIPE_BASE_ADDRESSES"]
    return stripe.StripeClient(secret_key, **options)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _get(obj: Any, name: str) -> Any:
    """A field of a Stripe object, None when absent (Stripe objects are not dicts: no ``.get``)."""
    return getattr(obj, name, None) if obj is not None and not isinstance(obj, str) else None


def _metadata_of(obj: Any) -> dict[str, str]:
    metadata = _get(obj, "metadata")
    return metadata.to_dict() if metadata is not None else {}


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _failure(exc: stripe.StripeError, code: str | None = None) -> ProcessorError:
    """Stripe's error as the Protocol's: a decline, an unknown outcome, or a refusal with a stable code."""
    if isinstance(exc, stripe.CardError):
        return CardDeclined(exc.code or None, exc.user_message or None)
    if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)):
        return ProcessorUnavailable()  # lost answer or Stripe's own failure: it may have done it, look it up
    if isinstance(exc, stripe.IdempotencyError):
        return ProcessorFailure("idempotency_key_reused")
    return ProcessorFailure(code or exc.code or "processor_failure", exc.user_message or None)


class StripeProcessor:
    """The Protocol on one Stripe account. Calls naming another Kassa account answer as for an unknown object."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient, account_id: int, *, lookup_pages: int = LOOKUP_PAGES,
                 inbox: StripeInbox | None = None):
        self.client = client
        self.account_id = account_id
        self.lookup_pages = lookup_pages
        self.inbox = inbox
        # due_events → acknowledge_event: which inbox rows each object's events settle, and what is left of them.
        self._awaiting: dict[str, tuple[set[str], list[int]]] = {}

    # --- helpers --------------------------------------------------------------------------------

    def _metadata(self, key: str, request: str) -> dict[str, str]:
        return {"kassa_account": str(self.account_id), "kassa_key": key, "kassa_request": request}

    def _ours(self, obj: Any) -> bool:
        return _metadata_of(obj).get("kassa_account") == str(self.account_id)

    def _recent(self, resource: Any) -> Iterator[Any]:
        """The account's objects of one kind, newest first, at most ``lookup_pages`` pages."""
        params: dict[str, Any] = {"limit": 100}
        for _page in range(self.lookup_pages):
            page = resource.list(params=params)
            yield from page.data
            if not page.has_more or not page.data:
                return
            params = {"limit": 100, "starting_after": page.data[-1].id}

    def _find(self, resource: Any, key: str) -> Any | None:
        try:
            return next((obj for obj in self._recent(resource)
                         if self._ours(obj) and _metadata_of(obj).get("kassa_key") == key), None)
        except stripe.StripeError as exc:
            raise _failure(exc) from exc

    # --- charges --------------------------------------------------------------------------------

    def charge(self, req: ChargeRequest) -> ChargeResult:
        if req.card is not None or req.bank is not None:
            raise ProcessorFailure("payment_details_not_accepted", _NO_CARD_DATA)
        if req.account_id != self.account_id:
            raise ProcessorFailure("no_such_account")
        if not _positive_int(req.amount_minor):
            raise ProcessorFailure("invalid_amount")
        if not req.payment_method_token:
            raise ProcessorFailure("payment_method_required")
        fingerprint = f"{req.amount_minor}|{req.currency}|{req.payment_method_token}|{int(req.save_payment_method)}"
        earlier = self._find(self.client.v1.payment_intents, req.idempotency_key)
        if earlier is not None:
            if _metadata_of(earlier).get("kassa_request") != fingerprint:
                raise ProcessorFailure("idempotency_key_reused")
            return self._answer_of(earlier.id, req.payment_method_token if req.save_payment_method else None)
        try:
            method = self.client.v1.payment_methods.retrieve(req.payment_method_token)
        except stripe.InvalidRequestError as exc:
            raise ProcessorFailure("no_such_payment_method") from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        owner = _metadata_of(method).get("kassa_account")
        if owner is not None and owner != str(self.account_id):  # another account's saved card
            raise ProcessorFailure("no_such_payment_method")
        params: dict[str, Any] = {
            "amount": req.amount_minor,
            "currency": req.currency.lower(),
            "payment_method": method.id,
            "confirm": True,
            "metadata": self._metadata(req.idempotency_key, fingerprint),
            "expand": EXPAND,
        }
        if _get(method, "customer"):  # a saved card: a renewal, charged while the buyer is away (K8)
            params.update(customer=method.customer, off_session=True)
        elif req.save_payment_method:
            params.update(customer=self._customer(req.idempotency_key).id, setup_future_usage="off_session")
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": req.idempotency_key})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        saved = req.save_payment_method or _get(method, "customer")
        return self._result(intent, method, method.id if saved else None)

    def _customer(self, key: str) -> Any:
        try:
            return self.client.v1.customers.create(
                params={"metadata": {"kassa_account": str(self.account_id)}},
                options={"idempotency_key": f"{key}:customer"})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc

    def _answer_of(self, intent_id: str, token: str | None) -> ChargeResult:
        """What ``charge`` answered for an existing PaymentIntent: its result, or its decline again."""
        try:
            intent = self.client.v1.payment_intents.retrieve(intent_id, params={"expand": EXPAND})
            method = self.client.v1.payment_methods.retrieve(intent.payment_method) if intent.payment_method \
                else None
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if intent.status not in CHARGED:
            error = _get(intent, "last_payment_error")
            raise CardDeclined(_get(error, "code"), _get(error, "message"))
        return self._result(intent, method, token or (method.id if method and _get(method, "customer") else None))

    def _result(self, intent: Any, method: Any, token: str | None) -> ChargeResult:
        if intent.status == "requires_action":
            # Off-session or server-side confirmation cannot run 3-D Secure: nothing is charged (K6 runs it
            # in the browser; a renewal emails the card-update page, K8).
            raise CardDeclined("authentication_required", N_("Your bank asks you to confirm this payment."))
        if intent.status not in CHARGED:
            error = _get(intent, "last_payment_error")
            raise CardDeclined(_get(error, "code"), _get(error, "message"))
        currency = intent.currency.upper()
        card = _get(method, "card")
        txn = _get(_get(intent, "latest_charge"), "balance_transaction")
        if txn is None or isinstance(txn, str):
            # Not settled yet (a bank debit): Stripe reports fees and conversion when it settles (K11).
            settlement, rate, gross, fee = currency, Decimal(1), intent.amount, 0
        else:
            settlement = txn.currency.upper()
            rate = Decimal(str(txn.exchange_rate)) if _get(txn, "exchange_rate") else Decimal(1)
            gross, fee = txn.amount, txn.fee
        return ChargeResult(
            processor_ref=intent.id,
            status="succeeded" if intent.status == "succeeded" else "processing",
            method="card",
            amount_minor=intent.amount,
            currency=currency,
            brand=_get(card, "brand"),
            last4=_get(card, "last4"),
            exp_month=_get(card, "exp_month"),
            exp_year=_get(card, "exp_year"),
            funding=_get(card, "funding") if _get(card, "funding") in ("credit", "debit", "prepaid") else None,
            fee_minor=_in_payment_currency(fee, settlement, currency, rate),
            fee_currency=currency,
            settlement_currency=settlement,
            exchange_rate=rate,
            amount_settlement_minor=gross,
            fee_settlement_minor=fee,
            net_settlement_minor=gross - fee,
            payment_method_token=token,
            created_at=_at(intent.created),
        )

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | ProcessorError]:
        """One by one, each under its own key: Stripe has no batch charge, and each answer is what ``charge``
        gives alone. A lost answer stops the batch as the Protocol says (every outcome unknown)."""
        answers: list[ChargeResult | ProcessorError] = []
        for request in requests:
            try:
                answers.append(self.charge(request))
            except ProcessorUnavailable:
                raise
            except ProcessorError as exc:
                answers.append(exc)
        return answers

    def lookup_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        if account_id != self.account_id:
            return None
        intent = self._find(self.client.v1.payment_intents, idempotency_key)
        if intent is None or intent.status not in CHARGED:
            return None
        saves = _metadata_of(intent).get("kassa_request", "").endswith("|1")
        return self._answer_of(intent.id, intent.payment_method if saves else None)

    def can_settle(self, currency: str, settlement_currency: str) -> bool:
        """Stripe takes any ISO currency and converts it to the account's settlement currency at its own rate;
        whether a given account enables a currency is Stripe's answer at charge time."""
        return all(len(c) == 3 and c.isupper() and is_currency(c) for c in (currency, settlement_currency))

    # --- saved payment methods ------------------------------------------------------------------

    def save_card(self, account_id: int, card: CardDetails, now: datetime) -> SavedCard:
        """Card numbers never reach Kassa with Stripe: a card is saved by the Payment Element in setup mode
        (`save_payment_method`), which hands over a PaymentMethod id instead (K8)."""
        raise ProcessorFailure("payment_details_not_accepted", _NO_CARD_DATA)

    def save_payment_method(self, account_id: int, payment_method_token: str, idempotency_key: str) -> SavedCard:
        """Keep a PaymentMethod the Payment Element made for later off-session charges: a customer of this
        account, a SetupIntent confirmed for off-session use (Stripe checks the card without charging it)."""
        if account_id != self.account_id:
            raise ProcessorFailure("no_such_account")
        customer = self._customer(idempotency_key)
        try:
            setup = self.client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"},
                                                        options={"idempotency_key": f"{idempotency_key}:setup"})
            self.client.v1.setup_intents.confirm(setup.id, params={"payment_method": payment_method_token},
                                                 options={"idempotency_key": f"{idempotency_key}:confirm"})
            method = self.client.v1.payment_methods.retrieve(payment_method_token)
            if _get(method, "customer") != customer.id:  # a SetupIntent attaches it; say so when it didn't
                method = self.client.v1.payment_methods.attach(payment_method_token,
                                                               params={"customer": customer.id})
            method = self.client.v1.payment_methods.update(
                payment_method_token, params={"metadata": {"kassa_account": str(self.account_id)}})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        card = method.card
        return SavedCard(token=method.id, brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                         exp_year=card.exp_year)

    # --- refunds --------------------------------------------------------------------------------

    def refund(self, account_id: int, charge_ref: str, amount_minor: int, currency: str, idempotency_key: str,
               now: datetime) -> RefundResult:
        if account_id != self.account_id:
            raise ProcessorFailure("no_such_charge")
        fingerprint = f"{charge_ref}|{amount_minor}|{currency}"
        earlier = self._find(self.client.v1.refunds, idempotency_key)
        if earlier is not None:
            if _metadata_of(earlier).get("kassa_request") != fingerprint:
                raise ProcessorFailure("idempotency_key_reused")
            return self._refund_result(earlier, charge_ref, currency)
        if not _positive_int(amount_minor):
            raise ProcessorFailure("invalid_amount")
        try:
            intent = self.client.v1.payment_intents.retrieve(charge_ref, params={"expand": ["latest_charge"]})
        except stripe.InvalidRequestError as exc:
            raise ProcessorFailure("no_such_charge") from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if not self._ours(intent):
            raise ProcessorFailure("no_such_charge")
        if currency != intent.currency.upper():
            raise ProcessorFailure("currency_mismatch")
        if intent.status == "processing":
            raise ProcessorFailure("charge_not_settled")
        charge = _get(intent, "latest_charge")
        if intent.status != "succeeded" or charge is None:
            raise ProcessorFailure("charge_failed")
        if _get(charge, "disputed"):
            raise ProcessorFailure("charge_disputed")
        # Stripe refuses an over-refund itself; asking first keeps the same refusal on every double too.
        if amount_minor > charge.amount - (_get(charge, "amount_refunded") or 0):
            raise ProcessorFailure("amount_too_large")
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": charge_ref, "amount": amount_minor,
                        "metadata": self._metadata(idempotency_key, fingerprint)},
                options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            code = {"charge_already_refunded": "amount_too_large", "amount_too_large": "amount_too_large",
                    "charge_disputed": "charge_disputed"}.get(exc.code or "")
            raise _failure(exc, code) from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        return self._refund_result(refund, charge_ref, currency)

    @staticmethod
    def _refund_result(refund: Any, charge_ref: str, currency: str) -> RefundResult:
        return RefundResult(processor_ref=refund.id, charge_ref=charge_ref, amount_minor=refund.amount,
                            currency=currency, created_at=_at(refund.created))

    def lookup_refund(self, account_id: int, idempotency_key: str) -> RefundResult | None:
        if account_id != self.account_id:
            return None
        refund = self._find(self.client.v1.refunds, idempotency_key)
        if refund is None:
            return None
        charge_ref, _amount, currency = _metadata_of(refund)["kassa_request"].split("|")
        return self._refund_result(refund, charge_ref, currency)

    # --- events (K7) ----------------------------------------------------------------------------

    def receive(self, events: Sequence[dict[str, Any]], source: str, now: datetime) -> list[str]:
        """Keep events for ``due_events`` (the poll's); returns the ids new to Kassa."""
        return self._inbox().add(handled(events), source, now)

    def poll_events(self, since: datetime | None, now: datetime) -> datetime | None:
        """Catch up on webhooks Kassa missed: Stripe's events of the handled types created since shortly before
        ``since`` (oldest page last), kept like a webhook's. Returns the newest event time seen (the next cursor),
        or ``since`` when there was none. One call when nothing happened."""
        start = max(since - POLL_OVERLAP, now - POLL_HORIZON) if since else now - POLL_HORIZON
        params: dict[str, Any] = {"limit": 100, "created": {"gte": int(start.timestamp())},
                                  "types": list(WEBHOOK_EVENTS)}
        found: list[dict[str, Any]] = []
        try:
            for _page in range(POLL_PAGES):
                page = self.client.v1.events.list(params=params)
                found.extend(event.to_dict() for event in page.data)
                if not page.has_more or not page.data:
                    break
                params = {**params, "starting_after": page.data[-1].id}
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        self.receive(found, "poll", now)
        newest = max((_at(event["created"]) for event in found), default=None)
        return max(newest, since) if newest and since else newest or since

    def due_events(self, account_id: int, now: datetime) -> list[ProcessorEvent]:
        """The Protocol events the account's received Stripe events lead to, oldest first. Each object they name
        is fetched once, now: its current state says what happened, whatever order the events came in."""
        if account_id != self.account_id or self.inbox is None:
            return []
        by_object: dict[str, list[dict[str, Any]]] = {}
        for row in self._inbox().pending(now):
            by_object.setdefault(row["object_id"], []).append(row)
        due: list[ProcessorEvent] = []
        for object_id, rows in by_object.items():
            events = self._events_of(rows[0]["type"], object_id, max(row["created"] for row in rows))
            if not events:  # still pending at Stripe, or not Kassa's object: nothing to apply
                self._inbox().done([row["id"] for row in rows], now)
                continue
            self._awaiting[object_id] = ({event.id for event in events}, [row["id"] for row in rows])
            due.extend(events)
        return due

    def acknowledge_event(self, event_id: str) -> None:
        """Once every event of an object is applied, the Stripe events that named it are done. An id this
        processor didn't hand out is a no-op (its rows stay pending and are offered again)."""
        object_id = event_id.rsplit(":", 1)[0]
        waiting = self._awaiting.get(object_id)
        if waiting is None:
            return
        waiting[0].discard(event_id)
        if not waiting[0]:
            del self._awaiting[object_id]
            self._inbox().done(waiting[1], datetime.now(UTC))

    def _inbox(self) -> StripeInbox:
        if self.inbox is None:
            raise ProcessorFailure("no_event_inbox")
        return self.inbox

    def _events_of(self, event_type: str, object_id: str, reported_at: datetime) -> list[ProcessorEvent]:
        """What Stripe's object is now, as Protocol events (none while it is still pending, or not Kassa's)."""
        try:
            if event_type.startswith("payment_intent."):
                return self._intent_events(self.client.v1.payment_intents.retrieve(object_id), reported_at)
            if event_type.startswith("charge.dispute."):
                return self._dispute_events(
                    self.client.v1.disputes.retrieve(object_id, params={"expand": ["payment_intent"]}),
                    reported_at)
            return self._refund_events(self.client.v1.refunds.retrieve(object_id), reported_at)
        except stripe.InvalidRequestError:
            return []  # deleted, or another account's object: Stripe answers 404 and there is nothing to do
        except stripe.StripeError as exc:
            raise _failure(exc) from exc

    def _event(self, type_: str, obj_id: str, at: datetime, data: dict[str, Any]) -> ProcessorEvent:
        return ProcessorEvent(id=f"{obj_id}:{type_}", type=type_, account_id=self.account_id, object_ref=obj_id,
                              occurred_at=at, data=data)

    def _intent_events(self, intent: Any, at: datetime) -> list[ProcessorEvent]:
        if not self._ours(intent):
            return []
        data = {"charge_ref": intent.id, "method": "card", "amount_minor": intent.amount,
                "currency": intent.currency.upper()}
        if intent.status == "succeeded":
            return [self._event("charge.succeeded", intent.id, at, data)]
        error = _get(intent, "last_payment_error")
        if intent.status == "canceled" or (intent.status == "requires_payment_method" and error is not None):
            code = _get(error, "decline_code") or _get(error, "code") or _get(intent, "cancellation_reason") \
                or "payment_failed"
            message = _get(error, "message") or N_("The bank debit did not go through.")
            return [self._event("charge.failed", intent.id, at, {**data, "code": code, "message": message})]
        return []  # processing, or waiting for the buyer: the outcome is still to come

    def _refund_events(self, refund: Any, at: datetime) -> list[ProcessorEvent]:
        if not self._ours(refund):
            return []
        data = {"refund_ref": refund.id, "charge_ref": _get(refund, "payment_intent") or "",
                "amount_minor": refund.amount, "currency": refund.currency.upper(),
                "kassa_key": _metadata_of(refund).get("kassa_key")}
        if refund.status == "succeeded":
            return [self._event("refund.succeeded", refund.id, at, data)]
        if refund.status in ("failed", "canceled"):
            code = _get(refund, "failure_reason") or ("merchant_request" if refund.status == "canceled" else
                                                      "unknown")
            message = REFUND_FAILURES.get(code, REFUND_FAILURES["unknown"])
            return [self._event("refund.failed", refund.id, at, {**data, "code": code, "message": message})]
        return []  # pending or requires_action: it settles later

    def _dispute_events(self, dispute: Any, at: datetime) -> list[ProcessorEvent]:
        intent = _get(dispute, "payment_intent")
        if intent is None or isinstance(intent, str) or not self._ours(intent):
            return []
        due_by = _get(_get(dispute, "evidence_details"), "due_by")
        data = {"dispute_ref": dispute.id, "charge_ref": intent.id, "amount_minor": dispute.amount,
                "currency": dispute.currency.upper(), "reason": dispute.reason or "general",
                "is_inquiry": dispute.status.startswith("warning_")}
        # A dispute closed before Kassa saw it open is opened first: its withdrawal is booked, then returned.
        opened = self._event("dispute.created", dispute.id, _at(dispute.created),
                             {**data, "evidence_due_by": _at(due_by or dispute.created).isoformat()})
        if dispute.status in DISPUTE_WON:
            return [opened, self._event("dispute.won", dispute.id, at, data)]
        if dispute.status in DISPUTE_LOST:
            return [opened, self._event("dispute.lost", dispute.id, at, data)]
        return [opened]

    # --- webhook endpoint (K7 setup) ---------------------------------------------------------------

    def create_webhook_endpoint(self, url: str) -> tuple[str, str]:
        """Ask Stripe to send the handled events to ``url``; returns the endpoint's id and signing secret (shown
        by Stripe only in this answer). ProcessorFailure when the key may not (a restricted key)."""
        try:
            endpoint = self.client.v1.webhook_endpoints.create(params={
                "url": url, "enabled_events": list(WEBHOOK_EVENTS),
                "description": f"Kassa account {self.account_id}",
                "metadata": {"kassa_account": str(self.account_id)}})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if not _get(endpoint, "id") or not _get(endpoint, "secret"):
            raise ProcessorFailure("no_webhook_secret")
        return endpoint.id, endpoint.secret

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        try:
            self.client.v1.webhook_endpoints.delete(endpoint_id)
        except stripe.StripeError as exc:
            raise _failure(exc) from exc

    # --- not built yet --------------------------------------------------------------------------

    def submit_dispute_evidence(self, account_id: int, dispute_ref: str, evidence_text: str,
                                now: datetime) -> DisputeResult:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def accept_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def lookup_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult | None:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def send_payout(self, account_id: int, amount_minor: int, currency: str, idempotency_key: str,
                    now: datetime) -> PayoutResult:
        raise NotImplementedError("Stripe payouts are K11 (issue 15), not built yet")

    def lookup_payout(self, account_id: int, idempotency_key: str, now: datetime) -> PayoutResult | None:
        raise NotImplementedError("Stripe payouts are K11 (issue 15), not built yet")


def _in_payment_currency(settlement_minor: int, settlement: str, currency: str, rate: Decimal) -> int:
    """A settlement-currency amount in the payment currency's minor units (Stripe's rate is per major unit)."""
    if settlement == currency:
        return settlement_minor
    major = Decimal(settlement_minor).scaleb(-exponent(settlement)) / rate
    return int(major.scaleb(exponent(currency)).quantize(Decimal(1), ROUND_HALF_UP))
