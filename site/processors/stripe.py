"""The Stripe processor (K6–K13): the Processor Protocol's server side over the official SDK.

One `StripeProcessor` per merchant account, built on that account's own `stripe.StripeClient` (never the global
``stripe.api_key``). Card data never reaches Kassa: a charge names a PaymentMethod that Stripe's Payment Element
created in the buyer's browser (``ChargeRequest.payment_method_token``).

Finding an object by Kassa's key (``lookup_charge``/``lookup_refund``, and the idempotency check below): every
PaymentIntent and Refund carries ``kassa_account``, ``kassa_key`` and ``kassa_request`` in its metadata, and
lookups page through the account's recent objects newest first. Stripe's Search API would be shorter but it is
eventually consistent (a PaymentIntent made a moment ago may not be found, which is exactly the crash-recovery
case) and localstripe lacks it; listing is read-after-write consistent on Stripe and on the test doubles. Stripe
keeps idempotency keys for 24 hours and Kassa's keys are forever, so the processor checks its own key first.

Disputes (K10): answers go to Stripe with their files (File API) and evidence fields mapped from the wizard; a
dispute is this account's when its PaymentIntent carries this account's metadata. Payouts (K11): Stripe pays
out by itself; Kassa lists its payouts and their balance transactions (see the payouts section).

Events (K7, K9, K10): Stripe's webhooks and the catch-up poll of GET /v1/events put Stripe events into the
connection's inbox (kassa.processors.stripe_inbox); ``due_events`` re-fetches each object they name and answers
the Protocol events its *current* state implies, with ids made of the object and the outcome
(``pi_…:charge.succeeded``): events arriving in any order, any number of times, give the same events, and the
processed-event row makes each apply once. A state Kassa can't reach forward from is left to the service."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe
from babel.numbers import is_currency
from flask import current_app

from kassa.money import exponent
from kassa.processors.base import (
    N_,
    ActionRequired,
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    DisputeEvidence,
    DisputeResult,
    DisputeStatus,
    PayoutResult,
    PayoutStatus,
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
# A PaymentIntent that can still go through if someone acts on it: cancelling it is allowed in each of these.
# PaymentMethod types that debit a bank account under a mandate: the buyer accepts it on the page, and a
# server-side confirmation must say so (mandate_data, with the buyer's IP address and browser).
MANDATE_TYPES = ("sepa_debit", "us_bank_account", "bacs_debit", "au_becs_debit", "acss_debit")
UNFINISHED = ("requires_action", "requires_confirmation", "requires_payment_method")

_NOT_CONFIRMED = N_("The payment wasn't confirmed with your bank. Nothing was charged; you can try again.")
_NO_CARD_DATA = N_("Card details must come from Stripe's Payment Element; Kassa never receives them.")
_CONFIRM_PAYMENT = N_("Your bank asks you to confirm this payment.")
_CONFIRM_CARD = N_("Your bank asks you to confirm this card.")

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


def _declined(error: Any, method: Any = None, *, code: str | None = None, message: str | None = None) -> CardDeclined:
    """A Stripe payment error (``last_payment_error``, a card error's body) as a decline (B2): the bank's reason
    is its ``decline_code`` — Stripe's ``code`` is then only the generic ``card_declined`` — and the card is
    the error's PaymentMethod, or the one Kassa charged."""
    reason = _get(error, "code")
    if _get(error, "decline_code") and reason in (None, "card_declined"):
        reason = _get(error, "decline_code")
    card = _get(_get(error, "payment_method") or method, "card")
    return CardDeclined(reason or code, _get(error, "message") or message,
                        brand=_get(card, "brand"), last4=_get(card, "last4"))


def _failure(exc: stripe.StripeError, code: str | None = None, method: Any = None) -> ProcessorError:
    """Stripe's error as the Protocol's: a decline, an unknown outcome, or a refusal with a stable code."""
    if isinstance(exc, stripe.CardError):
        return _declined(exc.error, method, code=exc.code, message=exc.user_message or None)
    if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)):
        return ProcessorUnavailable()  # lost answer or Stripe's own failure: it may have done it, look it up
    if isinstance(exc, stripe.IdempotencyError):
        return ProcessorFailure("idempotency_key_reused")
    return ProcessorFailure(code or exc.code or "processor_failure", exc.user_message or None)


class StripeProcessor:
    """The Protocol on one Stripe account. Calls naming another Kassa account answer as for an unknown object."""

    name = "stripe"
    automatic_payouts = True  # Stripe pays out by itself; Kassa lists its payouts (K11)

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
            return self._answer_of(earlier.id, req.payment_method_token if req.save_payment_method else None,
                                   on_session=bool(req.return_url))
        method = self._payment_method(req.payment_method_token)
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
        if req.return_url and not params.get("off_session"):
            # The buyer is on the page: a bank's redirect (iDEAL, Bancontact…) brings them back here (K6).
            params["return_url"] = req.return_url
        if _get(method, "type") in MANDATE_TYPES and not params.get("off_session"):
            # A bank debit the buyer authorizes on the page (the Payment Element shows the mandate text): Stripe
            # needs the acceptance's proof. A renewal (off-session) debits under the mandate the first charge made.
            if not (req.ip_address and req.user_agent):
                raise ProcessorFailure("mandate_acceptance_required")
            params["mandate_data"] = {"customer_acceptance": {"type": "online", "online": {
                "ip_address": req.ip_address, "user_agent": req.user_agent[:500]}}}
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": req.idempotency_key})
        except stripe.StripeError as exc:
            raise _failure(exc, method=method) from exc
        saved = req.save_payment_method or _get(method, "customer")
        if intent.status == "requires_action" and "return_url" in params:
            raise ActionRequired(intent.client_secret, intent.id)
        return self._result(intent, method, method.id if saved else None)

    def _payment_method(self, token: str) -> Any:
        """The PaymentMethod behind a token, when this account may use it: one Stripe doesn't know, or another
        Kassa account's saved card, answers ``no_such_payment_method`` alike."""
        try:
            method = self.client.v1.payment_methods.retrieve(token)
        except stripe.InvalidRequestError as exc:
            raise ProcessorFailure("no_such_payment_method") from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        owner = _metadata_of(method).get("kassa_account")
        if owner is not None and owner != str(self.account_id):  # another account's saved card
            raise ProcessorFailure("no_such_payment_method")
        return method

    def _customer(self, key: str) -> Any:
        try:
            return self.client.v1.customers.create(
                params={"metadata": {"kassa_account": str(self.account_id)}},
                options={"idempotency_key": f"{key}:customer"})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc

    def _answer_of(self, intent_id: str, token: str | None, *, on_session: bool = False) -> ChargeResult:
        """What ``charge`` answered for an existing PaymentIntent: its result, or its decline again (or, on the
        page, the same ActionRequired while it still waits for the buyer)."""
        try:
            intent = self.client.v1.payment_intents.retrieve(intent_id, params={"expand": EXPAND})
            method = self.client.v1.payment_methods.retrieve(intent.payment_method) if intent.payment_method \
                else None
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if intent.status == "requires_action":
            if on_session:  # the buyer is on the page: hand the next action to Stripe.js (K6)
                raise ActionRequired(intent.client_secret, intent.id)
            raise CardDeclined("authentication_required", _CONFIRM_PAYMENT)  # a renewal (K8)
        if intent.status not in CHARGED:
            raise _declined(_get(intent, "last_payment_error"), method)
        return self._result(intent, method, token or (method.id if method and _get(method, "customer") else None))

    def _result(self, intent: Any, method: Any, token: str | None) -> ChargeResult:
        if intent.status == "requires_action":
            # Off-session or server-side confirmation cannot run 3-D Secure: nothing is charged (K6 runs it
            # in the browser; a renewal emails the card-update page, K8).
            raise CardDeclined("authentication_required", _CONFIRM_PAYMENT)
        if intent.status not in CHARGED:
            raise _declined(_get(intent, "last_payment_error"), method)
        currency = intent.currency.upper()
        card = _get(method, "card")
        kind = _get(method, "type")
        # A SEPA Direct Debit is recorded as Kassa's "sepa" (Q10), shown as "SEPA Direct Debit •••• last4";
        # every other bank debit (US bank account, and Bacs, BECS, PAD, whose precise scheme stays in Stripe) as
        # Kassa's other bank-debit method, "ach".
        bank = _get(method, kind) if kind in MANDATE_TYPES else None
        kassa_method = "card" if bank is None else "sepa" if kind == "sepa_debit" else "ach"
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
            method=kassa_method,
            amount_minor=intent.amount,
            currency=currency,
            bank_last4=_get(bank, "last4"),
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

    def finish_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        """How a charge that waited for the buyer ended (K6). A PaymentIntent still unfinished is cancelled
        first: the buyer is back (or the reconciler gave up), and one left open could still be confirmed later
        by a late 3-D Secure answer or bank redirect, after Kassa had let the buyer pay again. Cancel is refused
        once it went through meanwhile; the intent is then read again and recorded as charged."""
        if account_id != self.account_id:
            return None
        intent = self._find(self.client.v1.payment_intents, idempotency_key)
        if intent is None:
            return None
        try:
            if intent.status in UNFINISHED:
                try:
                    intent = self.client.v1.payment_intents.cancel(
                        intent.id, params={"cancellation_reason": "abandoned"})
                except stripe.InvalidRequestError:  # it moved on (succeeded, processing) since it was read
                    intent = self.client.v1.payment_intents.retrieve(intent.id)
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if intent.status in CHARGED:
            saves = _metadata_of(intent).get("kassa_request", "").endswith("|1")
            return self._answer_of(intent.id, intent.payment_method if saves else None)
        raise _declined(_get(intent, "last_payment_error"), code="payment_not_confirmed", message=_NOT_CONFIRMED)

    def can_settle(self, currency: str, settlement_currency: str) -> bool:
        """Stripe takes any ISO currency and converts it to the account's settlement currency at its own rate;
        whether a given account enables a currency is Stripe's answer at charge time."""
        return all(len(c) == 3 and c.isupper() and is_currency(c) for c in (currency, settlement_currency))

    # --- saved payment methods ------------------------------------------------------------------

    def save_card(self, account_id: int, *, card: CardDetails | None = None, payment_method_token: str | None = None,
                  idempotency_key: str, now: datetime, on_session: bool = False) -> SavedCard:
        """Keep a PaymentMethod the Payment Element made (in setup mode, on the card-update page) for later
        off-session charges: a customer of this account, a SetupIntent confirmed for off-session use (Stripe
        checks the card without charging it). Card numbers never reach Kassa with Stripe (K8). The SetupIntent
        carries the key in its metadata, so `finish_save_card` knows it for this request's."""
        if card is not None:
            raise ProcessorFailure("payment_details_not_accepted", _NO_CARD_DATA)
        if account_id != self.account_id:
            raise ProcessorFailure("no_such_account")
        if not payment_method_token:
            raise ProcessorFailure("payment_method_required")
        method = self._payment_method(payment_method_token)
        customer = self._customer(idempotency_key)
        try:
            setup = self.client.v1.setup_intents.create(
                params={"customer": customer.id, "usage": "off_session",
                        "metadata": self._metadata(idempotency_key, method.id)},
                options={"idempotency_key": f"{idempotency_key}:setup"})
            setup = self.client.v1.setup_intents.confirm(
                setup.id, params={"payment_method": method.id},
                options={"idempotency_key": f"{idempotency_key}:confirm"})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if setup.status == "requires_action":
            if on_session:  # the buyer is on the page: Stripe.js runs 3-D Secure, then finish_save_card (K8)
                raise ActionRequired(setup.client_secret, setup.id)
            # Nobody is there to confirm the card: nothing is kept.
            raise CardDeclined("authentication_required", _CONFIRM_CARD)
        return self._kept(setup, method.id, customer.id)

    def finish_save_card(self, account_id: int, setup_ref: str, idempotency_key: str, now: datetime) -> SavedCard:
        """How saving a card the bank wanted confirmed ended (K8): the buyer is back from 3-D Secure. A
        SetupIntent of another account, or made under another key (another subscription's), is refused as
        ``no_such_setup`` and nothing changes."""
        if account_id != self.account_id:
            raise ProcessorFailure("no_such_setup")
        try:
            setup = self.client.v1.setup_intents.retrieve(setup_ref)
        except stripe.InvalidRequestError as exc:
            raise ProcessorFailure("no_such_setup") from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if not self._ours(setup) or _metadata_of(setup).get("kassa_key") != idempotency_key:
            raise ProcessorFailure("no_such_setup")
        if setup.status == "requires_action":  # back without confirming (closed the bank's window)
            raise CardDeclined("authentication_required", _CONFIRM_CARD)
        return self._kept(setup, _id_of(_get(setup, "payment_method")), _id_of(_get(setup, "customer")))

    def _kept(self, setup: Any, method_id: str | None, customer_id: str | None) -> SavedCard:
        """A confirmed SetupIntent's card, attached to the customer and tagged as this account's; any other
        status is Stripe's refusal and keeps nothing."""
        if setup.status != "succeeded" or not method_id:
            error = _get(setup, "last_setup_error")
            raise CardDeclined(_get(error, "code"), _get(error, "message"))
        try:
            method = self.client.v1.payment_methods.retrieve(method_id)
            if _get(method, "customer") != customer_id:  # a SetupIntent attaches it; say so when it didn't
                self.client.v1.payment_methods.attach(method.id, params={"customer": customer_id})
            method = self.client.v1.payment_methods.update(
                method.id, params={"metadata": {"kassa_account": str(self.account_id)}})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        card_of = method.card
        return SavedCard(token=method.id, brand=card_of.brand, last4=card_of.last4, exp_month=card_of.exp_month,
                         exp_year=card_of.exp_year)

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

    # --- dispute answers (K10) -------------------------------------------------------------------

    def _dispute(self, account_id: int, dispute_ref: str) -> Any | None:
        """The dispute with its PaymentIntent, or None when it is unknown to this account: Stripe doesn't know
        it, or its payment wasn't made by this Kassa account (another account's dispute answers as unknown)."""
        if account_id != self.account_id or not dispute_ref.startswith(("dp_", "du_")):
            return None
        try:
            dispute = self.client.v1.disputes.retrieve(dispute_ref, params={"expand": ["payment_intent"]})
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                return None
            raise _failure(exc) from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        intent = _get(dispute, "payment_intent")
        return dispute if intent is not None and not isinstance(intent, str) and self._ours(intent) else None

    def _answerable(self, account_id: int, dispute_ref: str, now: datetime) -> Any:
        dispute = self._dispute(account_id, dispute_ref)
        if dispute is None:
            raise ProcessorFailure("no_such_dispute", DISPUTE_ERRORS["no_such_dispute"])
        status = dispute_status(dispute.status)
        if status == "under_review":
            raise ProcessorFailure("dispute_already_answered", DISPUTE_ERRORS["dispute_already_answered"])
        due_by = _get(_get(dispute, "evidence_details"), "due_by")
        if status != "needs_response" or (due_by is not None and now >= _at(due_by)):
            raise ProcessorFailure("dispute_closed", DISPUTE_ERRORS["dispute_closed"])
        return dispute

    def _refused(self, exc: stripe.StripeError, account_id: int, dispute_ref: str, now: datetime) -> ProcessorError:
        """Stripe refused an answer (400: evidence already submitted, dispute closed…): its record of the
        dispute says which of the Protocol's refusals it is."""
        if not isinstance(exc, stripe.InvalidRequestError):
            return _failure(exc)
        try:
            self._answerable(account_id, dispute_ref, now)
        except ProcessorFailure as refusal:
            return refusal
        return _failure(exc, "evidence_refused")

    def submit_dispute_evidence(self, account_id: int, dispute_ref: str, evidence: DisputeEvidence,
                                now: datetime) -> DisputeResult:
        """Each file goes to Stripe's File API (``purpose=dispute_evidence``), then the evidence fields and the
        file ids are submitted in one update with ``submit=true`` (Stripe takes one submission)."""
        dispute = self._answerable(account_id, dispute_ref, now)
        if evidence.is_empty():
            raise ProcessorFailure("evidence_required", DISPUTE_ERRORS["evidence_required"])
        slots = file_slots(dispute.reason, [file.name for file in evidence.files])
        fields = evidence_fields(evidence)
        try:
            for slot, file in zip(slots, evidence.files, strict=True):
                data = file.read()
                upload = io.BytesIO(data)
                upload.name = file.name
                digest = hashlib.sha256(data).hexdigest()[:32]
                made = self.client.v1.files.create(
                    params={"file": upload, "purpose": "dispute_evidence"},
                    options={"idempotency_key": f"kassa-{self.account_id}-{dispute_ref}-file-{digest}"})
                fields[slot] = made.id
            body = json.dumps(fields, sort_keys=True).encode()
            answered = self.client.v1.disputes.update(
                dispute_ref,
                params={"evidence": fields, "submit": True,
                        "metadata": {"kassa_account": str(self.account_id)}, "expand": ["payment_intent"]},
                options={"idempotency_key": f"kassa-{self.account_id}-{dispute_ref}-evidence-"
                                            f"{hashlib.sha256(body).hexdigest()[:32]}"})
        except stripe.StripeError as exc:
            raise self._refused(exc, account_id, dispute_ref, now) from exc
        return self._dispute_result(answered)

    def accept_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult:
        """Closing a dispute is Stripe's accept: it is lost (an inquiry closes as ``warning_closed``; the
        merchant gave it up, so the Protocol's answer is ``lost`` either way)."""
        self._answerable(account_id, dispute_ref, now)
        try:
            closed = self.client.v1.disputes.close(dispute_ref, params={"expand": ["payment_intent"]})
        except stripe.StripeError as exc:
            raise self._refused(exc, account_id, dispute_ref, now) from exc
        return replace(self._dispute_result(closed), status="lost")

    def lookup_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult | None:
        dispute = self._dispute(account_id, dispute_ref)
        return self._dispute_result(dispute) if dispute is not None else None

    @staticmethod
    def _dispute_result(dispute: Any) -> DisputeResult:
        intent = _get(dispute, "payment_intent")
        due_by = _get(_get(dispute, "evidence_details"), "due_by")
        return DisputeResult(
            dispute_ref=dispute.id, charge_ref=intent if isinstance(intent, str) else intent.id,
            status=dispute_status(dispute.status), amount_minor=dispute.amount, currency=dispute.currency.upper(),
            reason=dispute.reason, is_inquiry=dispute.status.startswith("warning_"),
            # Closed disputes may carry no due date any more; the opening time is then the latest it was due.
            evidence_due_by=_at(due_by if due_by is not None else dispute.created))

    # --- payouts (K11) --------------------------------------------------------------------------
    # Stripe pays the balance out by itself (automatic payouts, each made of balance transactions). Kassa lists
    # them (``payouts`` and ``payout_lines``, read by services/payouts/stripe_payouts.py) rather than sending its
    # own: Kassa's daily total would not match what Stripe has available (its own availability, rates and
    # fees), and Stripe refuses manual payouts while automatic ones are on. A merchant on a manual schedule
    # pays out in Stripe's Dashboard; Kassa lists those too.

    def send_payout(self, account_id: int, amount_minor: int, currency: str, idempotency_key: str,
                    now: datetime) -> PayoutResult:
        raise ProcessorFailure("automatic_payouts", _AUTOMATIC_PAYOUTS)

    def lookup_payout(self, account_id: int, idempotency_key: str, now: datetime) -> PayoutResult | None:
        """Kassa never sends a payout through Stripe, so no key names one."""
        return None

    def payouts(self, since: datetime) -> list[StripePayout]:
        """The account's payouts created since ``since``, oldest first (Stripe's list is newest first)."""
        found: list[StripePayout] = []
        params: dict[str, Any] = {"limit": 100, "created": {"gte": int(since.timestamp())}}
        try:
            while True:
                page = self.client.v1.payouts.list(params=params)
                found.extend(_payout_of(payout) for payout in page.data)
                if not page.has_more or not page.data:
                    break
                params = {**params, "starting_after": page.data[-1].id}
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        return sorted(found, key=lambda payout: (payout.created_at, payout.processor_ref))

    def payout_lines(self, payout_ref: str) -> list[BalanceLine]:
        """The balance transactions a payout paid out (the payout's own one left out): their nets add up to the
        payout's amount. Each comes with its source (charge, refund, dispute…), so one list says which Kassa
        payment, refund or dispute a line belongs to."""
        lines: list[BalanceLine] = []
        params: dict[str, Any] = {"payout": payout_ref, "limit": 100, "expand": ["data.source"]}
        try:
            while True:
                page = self.client.v1.balance_transactions.list(params=params)
                lines.extend(_line_of(txn) for txn in page.data if not (
                    txn.type == "payout" and _id_of(_get(txn, "source")) == payout_ref))
                if not page.has_more or not page.data:
                    break
                params = {**params, "starting_after": page.data[-1].id}
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        return lines


_AUTOMATIC_PAYOUTS = N_("Stripe pays this account out on its own schedule; Kassa lists those payouts and sends none.")

DISPUTE_ERRORS = {
    "no_such_dispute": N_("This dispute does not exist at the processor."),
    "dispute_already_answered": N_("Evidence was already submitted for this dispute."),
    "dispute_closed": N_("This dispute is closed."),
    "evidence_required": N_("Add evidence before submitting."),
}

# Stripe's dispute statuses as the Protocol's. An inquiry (warning_*) moves no money; one Stripe closes without
# a chargeback (warning_closed) is one the merchant didn't lose.
DISPUTE_STATUSES: dict[str, DisputeStatus] = {
    "warning_needs_response": "needs_response",
    "needs_response": "needs_response",
    "warning_under_review": "under_review",
    "under_review": "under_review",
    "warning_closed": "won",
    "won": "won",
    "prevented": "won",
    "lost": "lost",
}


def dispute_status(status: str) -> DisputeStatus:
    return DISPUTE_STATUSES[status]


# The wizard's answers (base.EVIDENCE_FIELDS) that have a field of their own in Stripe's dispute evidence.
STRIPE_EVIDENCE_FIELDS = {
    "customer_name": "customer_name",
    "customer_email": "customer_email_address",
    "billing_address": "billing_address",
    "purchase_ip": "customer_purchase_ip",
    "product_description": "product_description",
    "refund_policy": "refund_policy_disclosure",
    "delivery_date": "shipping_date",
    "tracking_number": "shipping_tracking_number",
    "carrier": "shipping_carrier",
    "not_duplicate_reason": "duplicate_charge_explanation",
    "cancellation_policy_shown": "cancellation_policy_disclosure",
    "no_cancellation_received": "cancellation_rebuttal",
    "refund_refusal_reason": "refund_refusal_explanation",
}
UNCATEGORIZED_TEXT_MAX = 20_000  # Stripe's limit for one text field


def evidence_fields(evidence: DisputeEvidence) -> dict[str, str]:
    """Stripe's evidence text fields from the wizard's answers. Answers without a field of their own (why the
    payment is legitimate, the receipt number, what else the merchant wrote…) go into ``uncategorized_text``,
    one "label: answer" line each; an answer given only as text (no named answers) goes there whole."""
    fields: dict[str, str] = {}
    rest: list[str] = []
    for key, value in evidence.fields.items():
        if not value.strip():
            continue
        if key in STRIPE_EVIDENCE_FIELDS:
            fields[STRIPE_EVIDENCE_FIELDS[key]] = value
        else:
            rest.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    text = "\n".join(rest) if evidence.fields else evidence.text.strip()
    if text:
        fields["uncategorized_text"] = text[:UNCATEGORIZED_TEXT_MAX]
    return fields


# Stripe takes one file per evidence field. The wizard doesn't ask what each file shows, so a file goes to the
# field its name says (a receipt, a tracking page…), else to the next field the dispute's reason calls for,
# ending with uncategorized_file.
FILE_FIELDS = ("receipt", "shipping_documentation", "service_documentation", "customer_communication",
               "refund_policy", "cancellation_policy", "duplicate_charge_documentation", "customer_signature",
               "uncategorized_file")
FILE_HINTS = (
    (("receipt", "invoice", "factuur", "facture", "bon"), "receipt"),
    (("tracking", "shipping", "delivery", "verzend", "levering", "livraison", "colis"), "shipping_documentation"),
    (("email", "mail", "chat", "message", "conversation", "correspond"), "customer_communication"),
    (("signature", "signed", "handtekening"), "customer_signature"),
    (("refund", "return", "retour", "remboursement"), "refund_policy"),
    (("cancel", "opzeg", "annul"), "cancellation_policy"),
    (("duplicate", "dubbel", "doublon"), "duplicate_charge_documentation"),
    (("service", "contract", "usage", "log", "terms"), "service_documentation"),
)
REASON_FILE_ORDER = {
    "product_not_received": ("shipping_documentation", "receipt", "customer_communication"),
    "fraudulent": ("receipt", "customer_communication", "customer_signature", "service_documentation"),
    "product_unacceptable": ("service_documentation", "refund_policy", "customer_communication", "receipt"),
    "duplicate": ("duplicate_charge_documentation", "receipt"),
    "subscription_canceled": ("cancellation_policy", "customer_communication", "receipt"),
    "credit_not_processed": ("refund_policy", "customer_communication", "receipt"),
}


def file_slots(reason: str, names: Sequence[str]) -> list[str]:
    """The Stripe evidence field of each file, in order; more files than Stripe has fields is refused before
    anything is uploaded."""
    if len(names) > len(FILE_FIELDS):
        raise ProcessorFailure("too_many_files", N_("Stripe takes at most 9 evidence files: combine some into one "
                                                    "PDF and submit again."))
    slots: list[str | None] = [None] * len(names)
    for index, name in enumerate(names):
        lowered = name.lower()
        hinted = next((field for words, field in FILE_HINTS if any(word in lowered for word in words)), None)
        if hinted is not None and hinted not in slots:
            slots[index] = hinted
    free = [f for f in (*REASON_FILE_ORDER.get(reason, ("receipt", "service_documentation")), "uncategorized_file",
                        *FILE_FIELDS) if f not in slots]
    free = list(dict.fromkeys(free))
    return [slot if slot is not None else free.pop(0) for slot in slots]


@dataclass(frozen=True, kw_only=True)
class StripePayout(PayoutResult):
    """A payout Stripe made, with the day it reaches the bank and whether Stripe's schedule made it."""

    arrival_date: date
    automatic: bool


@dataclass(frozen=True, kw_only=True)
class BalanceLine:
    """One balance transaction a payout paid out, in the balance's currency: ``amount - fee = net``."""

    ref: str
    type: str
    reporting_category: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    exchange_rate: Decimal | None
    available_on: date
    created_at: datetime
    description: str
    source_ref: str | None  # ch_…, re_…, dp_…, po_…
    payment_intent_ref: str | None  # the PaymentIntent the source belongs to (Kassa's Payment.processor_ref)


PAYOUT_STATUSES: dict[str, PayoutStatus] = {"pending": "in_transit", "in_transit": "in_transit", "paid": "paid",
                                            "failed": "failed", "canceled": "failed"}


def _id_of(obj: Any) -> str | None:
    return obj if isinstance(obj, str) else _get(obj, "id")


def _payout_of(payout: Any) -> StripePayout:
    status = PAYOUT_STATUSES[payout.status]
    message = _get(payout, "failure_message") or (N_("Stripe canceled this payout.")
                                                   if payout.status == "canceled" else None)
    return StripePayout(processor_ref=payout.id, status=status, amount_minor=payout.amount,
                        currency=payout.currency.upper(), created_at=_at(payout.created),
                        arrival_date=_at(payout.arrival_date).date(), automatic=bool(_get(payout, "automatic")),
                        failure_code=_get(payout, "failure_code") if status == "failed" else None,
                        failure_message=message if status == "failed" else None)


def _line_of(txn: Any) -> BalanceLine:
    source = _get(txn, "source")
    intent = _get(source, "payment_intent")
    rate = _get(txn, "exchange_rate")
    return BalanceLine(ref=txn.id, type=txn.type, reporting_category=_get(txn, "reporting_category") or txn.type,
                       amount_minor=txn.amount, fee_minor=txn.fee, net_minor=txn.net, currency=txn.currency.upper(),
                       exchange_rate=Decimal(str(rate)) if rate else None,
                       available_on=_at(txn.available_on).date(), created_at=_at(txn.created),
                       description=_get(txn, "description") or "", source_ref=_id_of(source),
                       payment_intent_ref=_id_of(intent))


def _in_payment_currency(settlement_minor: int, settlement: str, currency: str, rate: Decimal) -> int:
    """A settlement-currency amount in the payment currency's minor units (Stripe's rate is per major unit)."""
    if settlement == currency:
        return settlement_minor
    major = Decimal(settlement_minor).scaleb(-exponent(settlement)) / rate
    return int(major.scaleb(exponent(currency)).quantize(Decimal(1), ROUND_HALF_UP))
