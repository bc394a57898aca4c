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

Not built yet: disputes (K10), payouts (K11) and the events poll (K7) raise NotImplementedError."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
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

# How far back a lookup by key pages (100 objects a page): a lost answer is looked up within minutes.
LOOKUP_PAGES = 10
# The charge's latest_charge and its balance transaction come with it: fees and settlement in one call.
EXPAND = ["latest_charge.balance_transaction"]
CHARGED = ("succeeded", "processing")

_NO_CARD_DATA = N_("Card details must come from Stripe's Payment Element; Kassa never receives them.")
_CONFIRM_PAYMENT = N_("Your bank asks you to confirm this payment.")
_CONFIRM_CARD = N_("Your bank asks you to confirm this card.")


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

    def __init__(self, client: stripe.StripeClient, account_id: int, *, lookup_pages: int = LOOKUP_PAGES):
        self.client = client
        self.account_id = account_id
        self.lookup_pages = lookup_pages

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
        if intent.status == "requires_action":
            raise CardDeclined("authentication_required", _CONFIRM_PAYMENT)
        if intent.status not in CHARGED:
            error = _get(intent, "last_payment_error")
            raise CardDeclined(_get(error, "code"), _get(error, "message"))
        return self._result(intent, method, token or (method.id if method and _get(method, "customer") else None))

    def _result(self, intent: Any, method: Any, token: str | None) -> ChargeResult:
        if intent.status == "requires_action":
            # Off-session or server-side confirmation cannot run 3-D Secure: nothing is charged (K6 runs it
            # in the browser; a renewal emails the card-update page, K8).
            raise CardDeclined("authentication_required", _CONFIRM_PAYMENT)
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

    def save_card(self, account_id: int, *, card: CardDetails | None = None, payment_method_token: str | None = None,
                  idempotency_key: str, now: datetime) -> SavedCard:
        """Keep a PaymentMethod the Payment Element made (in setup mode, on the card-update page) for later
        off-session charges: a customer of this account, a SetupIntent confirmed for off-session use (Stripe
        checks the card without charging it). Card numbers never reach Kassa with Stripe (K8)."""
        if card is not None:
            raise ProcessorFailure("payment_details_not_accepted", _NO_CARD_DATA)
        if account_id != self.account_id:
            raise ProcessorFailure("no_such_account")
        if not payment_method_token:
            raise ProcessorFailure("payment_method_required")
        try:
            method = self.client.v1.payment_methods.retrieve(payment_method_token)
        except stripe.InvalidRequestError as exc:
            raise ProcessorFailure("no_such_payment_method") from exc
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        owner = _metadata_of(method).get("kassa_account")
        if owner is not None and owner != str(self.account_id):  # another account's saved card
            raise ProcessorFailure("no_such_payment_method")
        customer = self._customer(idempotency_key)
        try:
            setup = self.client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"},
                                                        options={"idempotency_key": f"{idempotency_key}:setup"})
            setup = self.client.v1.setup_intents.confirm(
                setup.id, params={"payment_method": method.id},
                options={"idempotency_key": f"{idempotency_key}:confirm"})
        except stripe.StripeError as exc:
            raise _failure(exc) from exc
        if setup.status == "requires_action":
            # The bank wants the buyer to confirm the card (3-D Secure), which a server can't do: nothing is
            # kept, and the page asks them to confirm it in the Payment Element.
            raise CardDeclined("authentication_required", _CONFIRM_CARD)
        if setup.status != "succeeded":
            error = _get(setup, "last_setup_error")
            raise CardDeclined(_get(error, "code"), _get(error, "message"))
        try:
            method = self.client.v1.payment_methods.retrieve(method.id)
            if _get(method, "customer") != customer.id:  # a SetupIntent attaches it; say so when it didn't
                self.client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
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

    # --- not built yet --------------------------------------------------------------------------

    def submit_dispute_evidence(self, account_id: int, dispute_ref: str, evidence_text: str,
                                now: datetime) -> DisputeResult:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def accept_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def lookup_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult | None:
        raise NotImplementedError("Stripe disputes are K10 (issue 15), not built yet")

    def due_events(self, account_id: int, now: datetime) -> list[ProcessorEvent]:
        raise NotImplementedError("the Stripe events poll is K7 (issue 15), not built yet")

    def acknowledge_event(self, event_id: str) -> None:
        raise NotImplementedError("the Stripe events poll is K7 (issue 15), not built yet")

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
