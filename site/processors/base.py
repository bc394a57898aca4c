"""Processor protocol: the requests, results, events and typed errors every money mover speaks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable


def N_(message: str) -> str:
    """Mark ``message`` for Babel extraction; the app translates it with gettext when it shows it."""
    return message


Method = Literal["card", "ach", "sepa"]
# Q10: the bank debits; a link offers the one of its currency (USD → ACH, EUR → SEPA Direct Debit), others none.
BANK_DEBIT_METHODS: tuple[str, ...] = ("ach", "sepa")
BANK_DEBIT_BY_CURRENCY: dict[str, str] = {"USD": "ach", "EUR": "sepa"}


def bank_debit_for(currency: str) -> str | None:
    """The bank-debit method a payment in ``currency`` can use, or None (Q10)."""
    return BANK_DEBIT_BY_CURRENCY.get((currency or "").upper())


def is_bank_debit(method: str | None) -> bool:
    return method in BANK_DEBIT_METHODS
Funding = Literal["credit", "debit", "prepaid"]
ChargeStatus = Literal["succeeded", "processing"]
DisputeStatus = Literal["needs_response", "under_review", "won", "lost"]
PayoutStatus = Literal["in_transit", "paid", "failed"]
PaymentMethodBehaviour = Literal["succeed", "decline"]
EventType = Literal[
    "charge.succeeded",
    "charge.failed",
    "refund.succeeded",
    "refund.failed",
    "dispute.created",
    "dispute.won",
    "dispute.lost",
]
EVENT_TYPES: tuple[str, ...] = (
    "charge.succeeded",
    "charge.failed",
    "refund.succeeded",
    "refund.failed",
    "dispute.created",
    "dispute.won",
    "dispute.lost",
)


# --- errors -------------------------------------------------------------------------------------


class ProcessorError(Exception):
    """Base of every processor error: a stable ``code`` and a user-facing English ``message`` (N_-marked)."""

    default_code = "processor_error"
    default_message = N_("The payment could not be processed.")

    def __init__(self, code: str | None = None, message: str | None = None, *, field: str | None = None):
        self.code = code or self.default_code
        self.message = message or self.default_message
        # The form field the buyer should fix, when there is one (e.g. "cvc", "postal_code").
        self.field = field
        super().__init__(f"{self.code}: {self.message}")


class CardDeclined(ProcessorError):
    """The processor (or the card's bank) refused the charge; nothing was charged."""

    default_code = "card_declined"
    default_message = N_("Your card was declined.")

    def __init__(self, code: str | None = None, message: str | None = None, *, field: str | None = None,
                 brand: str | None = None, last4: str | None = None):
        super().__init__(code, message, field=field)
        # B2: the declined card, when the processor knows it (Stripe's Payment Element keeps the number from
        # Kassa): the failed payment shows it as the sandbox's do. Never more than brand and last 4.
        self.brand = brand
        self.last4 = last4


class PaymentDetailsInvalid(ProcessorError):
    """The payment details are malformed (found before any charge was attempted)."""

    default_code = "invalid_payment_details"
    default_message = N_("Check your payment details.")

    def __init__(self, field: str, code: str, message: str):
        super().__init__(code, message, field=field)


class ProcessorUnavailable(ProcessorError):
    """Timeout or lost response: the outcome is UNKNOWN; reconcile later with ``lookup_charge`` (charges),
    ``lookup_refund`` (refunds) or ``lookup_dispute`` (dispute answers)."""

    default_code = "processor_unavailable"
    default_message = N_(
        "The payment processor did not answer in time. We will check whether the payment went through."
    )


class ActionRequired(ProcessorError):
    """An on-session charge waits for the buyer (K6): 3-D Secure, or a redirect to their bank (iDEAL,
    Bancontact…). Nothing is charged yet and nothing is refused: the charge stays open under its key while the
    buyer's browser runs the next action with ``client_secret`` (Stripe.js ``handleNextAction``), then
    ``finish_charge`` says how it ended. Only a charge with ``ChargeRequest.return_url`` can end here; a
    charge made while the buyer is away (a renewal) that needs them raises CardDeclined instead."""

    default_code = "action_required"
    default_message = N_("Your bank asks you to confirm this payment.")

    def __init__(self, client_secret: str, processor_ref: str):
        super().__init__()
        self.client_secret = client_secret
        self.processor_ref = processor_ref


class ProcessorFailure(ProcessorError):
    """The processor answered with an error (bad request, refused operation, internal failure)."""

    default_code = "processor_failure"
    default_message = N_("The payment processor reported an error. Please try again later.")


# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardDetails:
    """Card data as the buyer typed it; number and CVC stay out of repr so they never reach a log."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    name: str
    postal_code: str | None = None


@dataclass(frozen=True)
class BankDetails:
    """A bank account as the buyer typed it: a US account (ACH: routing and account number) or, for SEPA Direct
    Debit (Q10), an IBAN. Account number and IBAN stay out of repr."""

    routing_number: str = ""
    account_number: str = field(default="", repr=False)
    account_holder_name: str = ""
    iban: str = field(default="", repr=False)


@dataclass(frozen=True, kw_only=True)
class ChargeRequest:
    """One charge attempt; ``now`` is the merchant account's clock (test accounts have their own)."""

    account_id: int
    idempotency_key: str
    amount_minor: int
    currency: str
    method: Method
    card: CardDetails | None = None
    bank: BankDetails | None = None
    payment_method_token: str | None = None
    save_payment_method: bool = False
    settlement_currency: str | None = None
    description: str = ""
    # Set only while the buyer is on the page (K6): where a next action that leaves the page (a bank's
    # redirect) brings them back. With it a charge may answer ActionRequired; without it, never.
    return_url: str | None = None
    # The buyer's IP address and browser, for a bank-debit mandate the buyer accepts on the page (K6: SEPA Direct
    # Debit, US bank accounts… through the Payment Element); None for a charge made while the buyer is away.
    ip_address: str | None = None
    user_agent: str | None = None
    now: datetime


@dataclass(frozen=True)
class EvidenceFile:
    """One evidence file as the merchant uploaded it: its name, its real content type (sniffed, not the browser's
    claim) and its bytes, either in memory or at ``path`` (read only when the processor sends it)."""

    name: str
    content_type: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None, "an evidence file has its bytes or a path"
        return self.path.read_bytes()


# The wizard's answers a processor can map to its own evidence fields (D4, K10). Unknown keys are allowed and
# go with the free text; every key is optional.
EVIDENCE_FIELDS: tuple[str, ...] = (
    # step 2, what Kassa knows about the purchase
    "customer_name", "customer_email", "billing_address", "purchase_ip", "product_description", "receipt",
    "refund_policy",
    # step 1, by reason
    "delivered", "delivery_date", "tracking_number", "carrier", "why_legitimate", "customer_communication",
    "prior_payments", "product_as_described", "return_policy_followed", "not_duplicate_reason",
    "cancellation_policy_shown", "no_cancellation_received", "refund_refusal_reason", "explanation",
    # step 3
    "additional_information",
)


@dataclass(frozen=True, kw_only=True)
class DisputeEvidence:
    """A dispute answer: the wizard's answers by name (``EVIDENCE_FIELDS``), the whole answer as one text (what
    the merchant reviewed; a processor without a field for an answer sends it in here) and the files."""

    fields: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    files: tuple[EvidenceFile, ...] = ()

    def is_empty(self) -> bool:
        return not (self.text.strip() or self.files or any(value.strip() for value in self.fields.values()))


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChargeResult:
    """What the processor did with a charge; fees in the payment currency and converted to settlement."""

    processor_ref: str
    status: ChargeStatus
    method: Method
    amount_minor: int
    currency: str
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    funding: Funding | None = None
    bank_last4: str | None = None
    fee_minor: int
    fee_currency: str
    settlement_currency: str
    exchange_rate: Decimal  # payment currency -> settlement currency, 1 when they are the same
    amount_settlement_minor: int
    fee_settlement_minor: int
    net_settlement_minor: int
    payment_method_token: str | None = None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class SavedCard:
    """A card kept by the processor for later charges: only its token and what can be shown."""

    token: str
    brand: str | None
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, kw_only=True)
class RefundResult:
    """A refund the processor accepted; it settles later (``refund.succeeded`` / ``refund.failed``)."""

    processor_ref: str
    charge_ref: str
    status: Literal["pending"] = "pending"
    amount_minor: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class DisputeResult:
    """The processor's view of a dispute right after the merchant answered it."""

    dispute_ref: str
    charge_ref: str
    status: DisputeStatus
    amount_minor: int
    currency: str
    reason: str
    is_inquiry: bool
    evidence_due_by: datetime


@dataclass(frozen=True, kw_only=True)
class PayoutResult:
    """A transfer between the account's balance at the processor and its bank account, as it stands.

    ``amount_minor`` is signed: positive is sent to the bank account, negative is debited from it (O3).
    ``failure_code``/``failure_message`` (N_-marked English) are set when ``status`` is ``failed``."""

    processor_ref: str
    status: PayoutStatus
    amount_minor: int
    currency: str
    created_at: datetime
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessorEvent:
    """An asynchronous outcome. ``id`` is stable and unique, so applying an event twice can be refused.

    ``data`` by type (all amounts in minor units of ``currency``):
    - charge.succeeded: charge_ref, method, amount_minor, currency
    - charge.failed: the same plus code, message (N_-marked English)
    - refund.succeeded: refund_ref, charge_ref, amount_minor, currency
    - refund.failed: the same plus code, message
    - dispute.created: dispute_ref, charge_ref, amount_minor, currency, reason, is_inquiry,
      evidence_due_by (ISO 8601, UTC)
    - dispute.won / dispute.lost: dispute_ref, charge_ref, amount_minor, currency, reason, is_inquiry
    """

    id: str
    type: EventType
    account_id: int
    object_ref: str
    occurred_at: datetime
    data: dict[str, Any]


# --- the protocol -------------------------------------------------------------------------------


@runtime_checkable
class Processor(Protocol):
    """What services need from a money mover: exactly the methods they call (M2), no more, no less.

    The sandbox implements it today and Stripe next; every implementation passes the contract suite in
    tests/contract/, and tests/contract/test_m2_protocol.py checks that this list equals the calls made on
    processors in site/services, site/blueprints and the registry. Sandbox-only controls (a saved test card
    set to decline, T5) are methods of `SandboxProcessor`, not of this Protocol; faults are injected by a
    test-only wrapper (tests/support/faults.py), not here (M3).

    Common promises: amounts are integers in minor units of their currency; ``now`` is the account's clock (a
    test account has its own) and must be timezone-aware; a money-moving call with an ``idempotency_key`` is made
    at most once per (account, key): the same key with the same request answers with what the first call did,
    the same key with a different request raises ``ProcessorFailure("idempotency_key_reused")``. Errors:
    ``CardDeclined`` and ``PaymentDetailsInvalid`` mean nothing was done; ``ProcessorUnavailable`` means the
    outcome is unknown (look it up with the matching ``lookup_*``); ``ProcessorFailure`` is a refusal (nothing
    was done) with a stable ``code``. Another account's reference answers exactly like an unknown one."""

    name: str  # the processor's own name: recorded on payments (Payment.processor) and processed events
    # True when the processor pays the balance out on its own schedule (Stripe's automatic payouts): Kassa then
    # lists those payouts (services/payouts/stripe_payouts.py) and never sends its own daily payout, and
    # ``send_payout`` refuses. False: Kassa sends the daily payout (the sandbox).
    automatic_payouts: bool

    # --- charges --------------------------------------------------------------------------------

    def charge(self, req: ChargeRequest) -> ChargeResult:
        """Charge a card, a saved card (``payment_method_token``) or a bank account (ACH), once per
        (account, key). A card succeeds at once (``succeeded``); a bank debit answers ``processing`` and settles
        later by ``charge.succeeded``/``charge.failed`` events. With ``save_payment_method`` the result carries
        a token for later charges. Raises CardDeclined, PaymentDetailsInvalid, ProcessorUnavailable (outcome
        unknown: ``lookup_charge``) or ProcessorFailure (e.g. ``invalid_amount``, ``idempotency_key_reused``)."""
        ...

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | ProcessorError]:
        """Many charges at once (subscription renewals): in each request's place, exactly what ``charge`` would
        answer for it alone, its result or the error it would raise. Raising (a ProcessorUnavailable for the
        whole batch) means every outcome is unknown; the same requests sent again charge nothing twice."""
        ...

    def lookup_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        """The charge made under this key (the same result ``charge`` returned), or None when the processor
        never made one (declined, refused or never received)."""
        ...

    def finish_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        """Settle the charge under this key for good, once nobody will act on it any more (the buyer came back
        from an ActionRequired, or the reconciler gave up waiting): the charge when it went through (as
        ``lookup_charge``); None when the processor never made one; otherwise it makes sure the charge can't
        go through later (Stripe: cancels a PaymentIntent still waiting for the buyer) and raises CardDeclined
        with the processor's reason. ProcessorUnavailable: outcome unknown, try again later."""
        ...

    def can_settle(self, currency: str, settlement_currency: str) -> bool:
        """Whether a payment in ``currency`` can be taken and paid out in ``settlement_currency`` (H13)."""
        ...

    # --- saved payment methods ------------------------------------------------------------------

    def save_card(self, account_id: int, *, card: CardDetails | None = None, payment_method_token: str | None = None,
                  idempotency_key: str, now: datetime, on_session: bool = False) -> SavedCard:
        """Keep a payment method for later charges (``ChargeRequest.payment_method_token``) without charging it:
        a subscriber replacing their card. Each processor takes what it can: the sandbox takes ``card`` (its test
        cards; a token is refused as ``payment_method_required``), Stripe takes ``payment_method_token`` (a
        PaymentMethod the Payment Element made in the buyer's browser; card data is refused as
        ``payment_details_not_accepted``). ``idempotency_key`` keys what the processor creates for it (Stripe's
        customer and SetupIntent), so a repeat of the same request saves one method. Checks the method as a
        charge would; raises CardDeclined (``authentication_required`` when the bank wants the buyer to confirm),
        PaymentDetailsInvalid, ProcessorUnavailable or ProcessorFailure, and then saves nothing. ``on_session``:
        the buyer is on the page, so a bank that wants them to confirm the card raises ActionRequired instead
        (K8; nothing saved yet) and ``finish_save_card`` says how it ended. Renewals never pass it."""
        ...

    def finish_save_card(self, account_id: int, setup_ref: str, idempotency_key: str, now: datetime) -> SavedCard:
        """The card an ActionRequired from ``save_card`` waited for (``setup_ref``: its processor_ref), once the
        buyer is back: saved as ``save_card`` saves it, or CardDeclined with the processor's reason. One made for
        another account or under another key is refused (ProcessorFailure ``no_such_setup``); a processor that
        never asks for an action refuses every one."""
        ...

    # --- refunds --------------------------------------------------------------------------------

    def refund(
        self,
        account_id: int,
        charge_ref: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        now: datetime,
    ) -> RefundResult:
        """Start a (partial) refund of a charge, in the charge's currency; once per (account, key). It answers
        ``pending`` and settles later (``refund.succeeded``/``refund.failed`` events). Refuses with
        ProcessorFailure and keeps the refusal under the key (sent again, it is refused again):
        ``amount_too_large`` (more than is left to refund, pending refunds counted), ``currency_mismatch``,
        ``invalid_amount``, ``charge_disputed``, ``charge_not_settled``, ``charge_failed``, ``charge_too_old``;
        an unknown charge is ``no_such_charge``. ProcessorUnavailable: outcome unknown, ``lookup_refund``."""
        ...

    def lookup_refund(self, account_id: int, idempotency_key: str) -> RefundResult | None:
        """The refund made under this key, or None when the processor never made one (refused or never
        received). H5: a refund whose answer was lost is settled from this, as a charge is from
        ``lookup_charge``."""
        ...

    # --- dispute answers ------------------------------------------------------------------------

    def submit_dispute_evidence(
        self, account_id: int, dispute_ref: str, evidence: DisputeEvidence, now: datetime
    ) -> DisputeResult:
        """Counter a dispute with the merchant's answers and files: ``under_review`` until the bank decides
        (``dispute.won``/``dispute.lost`` events). Only once and only before its evidence deadline:
        ProcessorFailure ``dispute_already_answered``, ``dispute_closed``, ``evidence_required`` (nothing to
        send), ``no_such_dispute``."""
        ...

    def accept_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult:
        """Give up a dispute: it closes as ``lost`` (and a ``dispute.lost`` event follows). Refused as
        ``submit_dispute_evidence`` is once the dispute was answered or closed."""
        ...

    def lookup_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult | None:
        """The dispute as the processor has it at ``now`` (``under_review`` once evidence arrived), or None
        when it doesn't know it: settles a dispute answer whose reply was lost (H5)."""
        ...

    # --- events ---------------------------------------------------------------------------------

    def due_events(self, account_id: int, now: datetime) -> list[ProcessorEvent]:
        """The account's unacknowledged events whose time has come at ``now``, oldest first (for a bank
        debit, a refund or a dispute: the outcome the first answer left open)."""
        ...

    def acknowledge_event(self, event_id: str) -> None:
        """Mark an event applied so ``due_events`` stops returning it (repeating is a no-op)."""
        ...

    # --- payouts --------------------------------------------------------------------------------

    def send_payout(
        self, account_id: int, amount_minor: int, currency: str, idempotency_key: str, now: datetime
    ) -> PayoutResult:
        """Move ``amount_minor`` of the account's balance to its bank account (negative: debit the bank
        account, O3), once per (account, key). Answers ``in_transit`` (or already ``paid``/``failed``);
        ProcessorUnavailable: ``lookup_payout``. A processor with ``automatic_payouts`` sends nothing and
        refuses with ProcessorFailure ``automatic_payouts``."""
        ...

    def lookup_payout(self, account_id: int, idempotency_key: str, now: datetime) -> PayoutResult | None:
        """The payout sent under this key as it stands at ``now`` (``in_transit``, ``paid``, or ``failed``
        with the bank's reason), or None when the processor never sent one."""
        ...
