"""Checkout sessions and paying (L17, C1–C5, T1–T4).

Paying happens in three steps so that money never moves twice and is never lost:
1. under a lock on the checkout session, write a payment attempt with its idempotency key;
2. call the processor with no database transaction open;
3. record the outcome. If step 3 never happens (crash, lost response) the attempt stays behind and the
   reconciler in `flask kassa tick` asks the processor what became of that key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import JSON, Text, and_, bindparam, cast, exists, func, or_, select
from sqlalchemy.engine import Engine

from kassa.clock import now
from kassa.database import PrecompiledRead, UTCDateTime, lock_one, write_transaction
from kassa.errors import Conflict, Gone, NotFound, PaymentDeclined, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    Account,
    AttemptStatus,
    CheckoutSession,
    CheckoutStatus,
    LinkStatus,
    Mode,
    Payment,
    PaymentAttempt,
    PaymentLink,
    StripeConnection,
    Subscription,
)
from kassa.order_summary import BuyerChoices, OrderSummary
from kassa.processors.base import (
    ActionRequired,
    CardDeclined,
    ChargeRequest,
    ChargeResult,
    PaymentDetailsInvalid,
    ProcessorError,
)
from kassa.processors.registry import NoLiveProcessor, processor_for
from kassa.processors.sandbox import SandboxProcessor
from kassa.processors.stripe import StripeProcessor
from kassa.services.checkout import invoice_checkout, quote_checkout
from kassa.services.checkout.checkout_form import PROCESSOR_FIELDS, BuyerInput, read_buyer_form, read_choices
from kassa.services.links import promo_codes, usage
from kassa.services.links.links import LinkClosed, is_valid_test_signature, public_link
from kassa.services.links.snapshots import link_snapshot, snapshot_summary
from kassa.services.payments import risk
from kassa.services.payments.attempt_states import move_attempt
from kassa.services.payments.payment_records import (
    abandon_incomplete,
    record_declined_attempt,
    record_incomplete_attempt,
    record_successful_charge,
    record_trial_start,
    trial_subscriptions,
)
from kassa.services.platform.ticks import each_item, for_tick_account

SESSION_LIFETIME = timedelta(hours=24)
# Refusals a processor makes before it charges anything (StripeProcessor.charge): the attempt is closed at once.
# Any other error may come after the money moved, and is looked up instead.
REFUSED_BEFORE_CHARGE = frozenset({"no_such_payment_method", "payment_method_required",
                                   "payment_details_not_accepted"})


# -- sessions ---------------------------------------------------------------------------------------


def start_session(slug: str, *, language: str | None, test_signature: str | None = None) -> CheckoutSession:
    """GET /pay/<slug>: every visit gets its own checkout session and token (L17).

    H7: a test checkout only with the link's own test signature (its signed test URL); a wrong one is a 404,
    exactly as an unknown link, so signatures can't be probed."""
    with write_transaction(db.session) as session:
        link = public_link(slug)
        if test_signature is not None and not is_valid_test_signature(link, test_signature):
            raise NotFound(_("This payment link doesn't exist."))
        checkout = CheckoutSession(
            account_id=link.account_id,
            link_id=link.id,
            token=secrets.token_urlsafe(32),
            mode=Mode.LIVE.value if test_signature is None else Mode.TEST.value,
            link_version=link.version,
            snapshot=link_snapshot(link),
            language=language,
            expires_at=now() + SESSION_LIFETIME,
        )
        session.add(checkout)
        session.flush()
        return checkout


@dataclass(frozen=True)
class CheckoutView:
    """What the buyer's page needs about a checkout session, read in one query."""

    checkout: CheckoutSession
    account: Account
    link_slug: str | None  # None when the link row is gone
    link_open: bool
    attempt_in_flight: bool
    # The publishable key of the account's Stripe connection in the checkout's mode, or None (K6): read in the
    # same query, so a live page knows whether it can take payments without a second round trip. In test mode
    # only when the account chose Stripe test mode (K12); otherwise the sandbox's own card fields are shown.
    stripe_publishable_key: str | None = None

    def ensure_link_open(self) -> None:
        """L19, as `ensure_link_open()`, without reading the link again."""
        if not self.link_open:
            raise LinkClosed(self.account)


_IN_FLIGHT = (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value)


def _checkout_view_query(*head):
    """The checkout session row (as `head`) with its link's state, whether an attempt is with the processor,
    and the account's Stripe publishable key for the session's mode: one round trip."""
    # Q12: `=` … OR rather than IN (…): an IN list is re-rendered into the SQL on every execution ("expanding"
    # parameters), a cost this busiest query pays on each page view.
    in_flight = exists().where(
        PaymentAttempt.checkout_session_id == CheckoutSession.id,
        or_(*(PaymentAttempt.status == status for status in _IN_FLIGHT)),
    )
    stripe_key = (
        select(StripeConnection.publishable_key)
        .where(StripeConnection.account_id == CheckoutSession.account_id,
               StripeConnection.mode == CheckoutSession.mode, StripeConnection.disconnected_at.is_(None),
               # K12: a test checkout uses Stripe only when the account chose Stripe test mode.
               or_(CheckoutSession.mode == Mode.LIVE.value, Account.test_processor == StripeProcessor.name))
        .limit(1).scalar_subquery()
    )
    return (
        select(*head, PaymentLink.slug, PaymentLink.status, PaymentLink.deleted_at,
               in_flight.label("in_flight"), stripe_key.label("stripe_key"), PaymentLink.usage_limit,
               PaymentLink.usage_reserved, PaymentLink.ends_at)
        .join(Account, Account.id == CheckoutSession.account_id)
        .outerjoin(PaymentLink, PaymentLink.id == CheckoutSession.link_id)
        .where(CheckoutSession.token == bindparam("token"))
    )


def _link_open(slug, status, deleted_at, limit, reserved, ends_at) -> bool:
    """L19/Q5: whether the session's link still takes payments, from the columns the view queries read."""
    return slug is not None and status == LinkStatus.ACTIVE.value and deleted_at is None \
        and (limit is None or reserved < limit) and (ends_at is None or ends_at > now())


_queries: dict[str, Any] = {}


def checkout_view(token: str) -> CheckoutView | None:
    """GET /checkout/<token>: the session, its account, its link's state and whether a payment attempt is
    still with the processor, in one round trip (the page is the busiest URL a merchant has)."""
    query = _queries.get("view")
    if query is None:  # built once: building a statement costs more than running this one
        query = _queries["view"] = _checkout_view_query(CheckoutSession, Account)
    row = db.session.execute(query, {"token": token}).one_or_none()
    if row is None:
        return None
    checkout, account, slug, status, deleted_at, busy, stripe_key, limit, reserved, ends_at = row
    return CheckoutView(
        checkout=checkout, account=account, link_slug=slug,
        # V2: an invoice's checkout has no link; its invoice is checked, under its lock, when it is paid
        link_open=checkout.invoice_id is not None or checkout.quote_id is not None or _link_open(slug, status, deleted_at, limit, reserved, ends_at),
        attempt_in_flight=bool(busy), stripe_publishable_key=stripe_key,
    )


@dataclass(frozen=True, slots=True)
class PageState:
    """Q12: whether GET /checkout/<token> shows the untouched payment form, and everything that form's cached
    copy depends on, read as plain values by one Core query: no ORM objects, no JSON parsed. Most page views
    are served from the cached copy with nothing more; the rest read the CheckoutView as before."""

    # open, not expired, no attempt with the processor, the link still taking payments; and not a session a shop
    # opened through the API (I2): its page is its own (the buyer's email, the shop's success page), so it is
    # rendered for it and never stored, where one-off pages would push the links' shared copies out
    shows_form: bool
    stored_language: str | None
    mode: str
    link_id: int | None  # V2: None for an invoice's checkout
    snapshot_text: str  # the frozen link snapshot as the database holds it: equal text, equal page
    account_row: tuple  # every column of the account row (JSON ones as text): any edit is a new key
    stripe_publishable_key: str | None


def _page_state_query() -> PrecompiledRead:
    account_columns = [cast(column, Text) if isinstance(column.type, JSON) else column
                       for column in Account.__table__.columns]
    at = bindparam("now", type_=UTCDateTime())
    return PrecompiledRead(_checkout_view_query(
        CheckoutSession.status, CheckoutSession.expires_at > at, CheckoutSession.language, CheckoutSession.mode,
        CheckoutSession.link_id, cast(CheckoutSession.snapshot, Text),
        or_(PaymentLink.ends_at.is_(None), PaymentLink.ends_at > at),
        # V4: a quote's checkout has no link either
        func.coalesce(CheckoutSession.invoice_id, CheckoutSession.quote_id), CheckoutSession.api_key_id,
        *account_columns))


def page_state(token: str, engine: Engine | None = None) -> PageState | None:
    """`engine`: the app's (db.engine) unless given (the checkout's first visit runs without an app context)."""
    query = _queries.get("page_state")
    if query is None:
        query = _queries["page_state"] = _page_state_query()
    row = query.one_or_none(engine or db.engine, token=token, now=now())
    if row is None:
        return None
    status, unexpired, language, mode, link_id, snapshot_text, within_dates, invoice_id, api_key_id = row[:9]
    account_row = row[9:-8]
    slug, link_status, deleted_at, busy, stripe_key, limit, reserved, _ends_at = row[-8:]
    link_open = invoice_id is not None or (
        slug is not None and link_status == LinkStatus.ACTIVE.value and deleted_at is None
        and (limit is None or reserved < limit) and bool(within_dates))
    return PageState(
        shows_form=status == CheckoutStatus.OPEN.value and bool(unexpired) and not busy and link_open
        and api_key_id is None,
        stored_language=language, mode=mode, link_id=link_id, snapshot_text=snapshot_text,
        account_row=account_row, stripe_publishable_key=stripe_key,
    )


def get_session(token: str) -> CheckoutSession:
    checkout = db.session.scalar(select(CheckoutSession).where(CheckoutSession.token == token))
    if checkout is None:
        raise NotFound(_("This checkout doesn't exist."))
    return checkout


def set_language(checkout_id: int, language: str) -> None:
    """The buyer switched language on the page: emails and the receipt follow it (C7)."""
    with write_transaction(db.session) as session:
        session.get(CheckoutSession, checkout_id).language = language


def attempt_in_flight(checkout_id: int) -> bool:
    return db.session.scalar(
        select(func.count()).select_from(PaymentAttempt).where(
            PaymentAttempt.checkout_session_id == checkout_id,
            PaymentAttempt.status.in_(_IN_FLIGHT),
        )
    ) > 0


def ensure_link_open(checkout: CheckoutSession) -> None:
    """L19: a deactivated or deleted link stops taking payments, also on checkouts opened before that (Q5: and
    one whose usage limit is taken or whose end date has passed)."""
    if checkout.invoice_id is not None or checkout.quote_id is not None:
        return  # V2/V4: no link; the invoice or quote itself is checked under its lock (hold_invoice, hold_quote)
    link = db.session.get(PaymentLink, checkout.link_id)
    if link is None or not link.accepting_payments(now()):
        raise _closed(db.session, checkout)


def is_expired(checkout: CheckoutSession) -> bool:
    return checkout.status == CheckoutStatus.EXPIRED.value or (
        checkout.status == CheckoutStatus.OPEN.value and checkout.expires_at <= now()
    )


# -- pricing (Q1, Q3, Q4) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What the order costs with the buyer's choices: the page shows it, "Update total" answers it, and
    `pay` charges exactly its `summary.due_today`. `errors` are keyed by the page's field names."""

    summary: OrderSummary
    choices: BuyerChoices
    errors: dict[str, str]


def quote(snapshot: dict[str, Any], form: dict[str, str], locale: str, *, account_id: int | None = None,
          mode: str | None = None) -> Quote:
    """Re-price a checkout from what the buyer posted (never from anything the page computed). Nothing is
    written: "Update total" with or without JavaScript is only this. Q2: a posted `promo` (code) is looked up
    for the link's account (`account_id`, else the link's) and applied, or its field gets the reason why not."""
    cap = current_app.config["KASSA_LINK_MAX_TOTAL_MINOR"]
    choices, errors = read_choices(snapshot, form, locale, max_amount_minor=cap)
    code = (form.get(promo_codes.FIELD) or "").strip()
    if snapshot.get("invoice_id") is not None or snapshot.get("quote_id") is not None:
        code = ""  # V2: an invoice is paid at its amount due: no promo code, whatever is posted
    if code and form.get("action") != "unpromo":
        if account_id is None:
            link = db.session.get(PaymentLink, snapshot["link_id"])
            account_id = link.account_id if link is not None else 0
        found = promo_codes.find_code(account_id, snapshot["link_id"], snapshot["currency"], code[:64],
                                      email=form.get("email"), mode=mode)
        if isinstance(found, str):
            errors[promo_codes.FIELD] = found
        else:
            choices = replace(choices, promo_code=found.code, promo_kind=found.kind, promo_value=found.value,
                              promo_id=found.id)
    summary = snapshot_summary(snapshot, choices)
    if summary.has_promo and promo_codes.FIELD not in errors and (summary.due_today.amount_minor <= 0
                                                                  or not summary.lines_today):
        # Q2: a payment of nothing can't be charged: the code is refused, not the order made free. Q9: on a
        # free trial with nothing else to pay today there is nothing for it to take off.
        errors[promo_codes.FIELD] = (
            _("There is nothing to pay today that this promo code could take off.") if not summary.lines_today
            else _("This promo code takes off the whole amount, so it can't be used here."))
        choices = replace(choices, promo_code="", promo_kind="", promo_value=0, promo_id=None)
        summary = snapshot_summary(snapshot, choices)
    if summary.due_today.amount_minor <= 0 and summary.lines_today and not errors:
        # Q1: lines whose discounts take everything off (a link saved before the editor refused them) can't
        # be paid: nothing is charged, the buyer is told (a free trial with nothing else due is a card saved).
        errors["items"] = _("This order comes to nothing to pay, so it can't be paid here. Contact the seller.")
    if summary.due_today.amount_minor > cap and not errors:
        line = next((line for line in summary.lines if line.quantity_adjustable or line.custom_amount), None)
        name = "items" if line is None else f"{'qty' if line.quantity_adjustable else 'price'}_{line.index}"
        errors[name] = _("The total is more than one payment can be. Lower a quantity or a price.")
    return Quote(summary=summary, choices=choices, errors=errors)


# -- paying -----------------------------------------------------------------------------------------


class PaymentInFlight(Conflict):
    """Another submit of this checkout is talking to the processor right now."""


@dataclass(frozen=True)
class PayOutcome:
    payment: Payment | None  # None while the processor's answer is still being confirmed
    # H8: True only when this call made the charge (not when the checkout was already paid, by another tab or
    # by whoever now holds its URL): only then is the caller the buyer who paid.
    charged_now: bool = False
    # K6: the charge waits for the buyer (3-D Secure, a bank redirect): the client secret their browser hands to
    # Stripe.js to run the next action, then they come back to `finish_after_action`.
    next_action: str | None = None
    # Q9: the checkout is done; with `payment` None it had nothing to charge (a free trial: the card was saved).
    completed: bool = False


@dataclass(frozen=True)
class ActionDeclined:
    """K6: the buyer came back from a next action and Stripe says the charge did not go through: the message
    for the payment field, and what they typed (from the attempt) to put back in the form."""

    message: str
    values: dict[str, str]


def _guard_number(buyer: BuyerInput) -> str:
    """What the card-testing guard counts as "the number" (only its keyed hash is kept). A Payment Element
    checkout (K6) never sees one: each entry's PaymentMethod id stands in. Stripe.js makes a new id on every
    submit, so the distinct-number limits count every failed entry there, the safe side of the same rule; the
    per-IP, per-account and per-link limits count exactly as for typed cards."""
    if buyer.payment_method_token:
        return f"payment_method:{buyer.payment_method_token}"
    if buyer.card:
        return buyer.card.number
    if buyer.bank.iban:
        return f"iban:{buyer.bank.iban}"
    return f"{buyer.bank.routing_number}:{buyer.bank.account_number}"


def _guard_entry(checkout: CheckoutSession, buyer: BuyerInput, ip: str | None) -> risk.CardEntry:
    return risk.CardEntry(account_id=checkout.account_id, mode=checkout.mode, method=buyer.method,
                          number=_guard_number(buyer),
                          ip=ip, page=f"checkout:{checkout.id}", link_id=checkout.link_id)


def _completed(checkout: CheckoutSession) -> PayOutcome:
    """A checkout already done: its payment, or none when it started a free trial with nothing due (Q9)."""
    payment = db.session.get(Payment, checkout.payment_id) if checkout.payment_id else None
    return PayOutcome(payment, completed=True)


def _begin_attempt(checkout_id: int, buyer: BuyerInput, amount_minor: int, currency: str, ip: str | None,
                   fingerprint: str | None) -> PaymentAttempt | PayOutcome:
    """Step 1. Returns the new attempt, or the outcome when this checkout is already done.

    The card-testing guard's slots are taken in this same transaction (H4): an attempt exists only with its
    slots, and a refusal (TooManyRequests) writes nothing."""
    with write_transaction(db.session) as session:
        checkout = lock_one(session, CheckoutSession, checkout_id)
        if checkout.status == CheckoutStatus.COMPLETED.value:
            return _completed(checkout)
        if checkout.status == CheckoutStatus.EXPIRED.value:  # I2: expired by the shop (API) since the page read it
            raise Gone(_("This checkout has expired. Start again from the payment link."))
        in_flight = session.scalar(
            select(PaymentAttempt).where(
                PaymentAttempt.checkout_session_id == checkout.id,
                PaymentAttempt.status.in_((AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value)),
            )
        )
        if in_flight is not None:
            raise PaymentInFlight(_("Your payment is being processed. This page will show the result in a moment."))
        if buyer.choices.promo_id is not None:
            # Q2: one redemption of the code, taken atomically before the charge (given back if it fails).
            problem = promo_codes.reserve(buyer.choices.promo_id, account_id=checkout.account_id,
                                          mode=checkout.mode, email=buyer.email)
            if problem is not None:
                raise ValidationFailed(problem, errors={promo_codes.FIELD: problem})
        if checkout.invoice_id is not None:
            # V2: one charge per invoice: its row lock, and refused if paid, void, busy or due another amount.
            invoice_checkout.hold_invoice(session, checkout, amount_minor)
        if checkout.quote_id is not None:
            # V4: one charge per quote, and only of exactly the accepted quote.
            quote_checkout.hold_quote(session, checkout, amount_minor)
        hold = risk.reserve(_guard_entry(checkout, buyer, ip))
        # Q5: a live payment on a limited link takes a seat first; with none free nobody is charged.
        seat = checkout.mode == Mode.LIVE.value and checkout.link_id is not None \
            and _has_limit(session, checkout.link_id)
        if seat and not usage.take_seat(session, checkout.link_id, now()):
            raise _closed(session, checkout)
        attempt = PaymentAttempt(
            account_id=checkout.account_id,
            checkout_session_id=checkout.id,
            idempotency_key=f"checkout-{checkout.id}-{checkout.attempt_seq}",
            method=buyer.method,
            amount_minor=amount_minor,
            currency=currency,
            buyer=buyer.stored(),
            ip=ip,
            card_fingerprint=fingerprint,
            link_id=checkout.link_id,
            risk_hold=hold,
            holds_seat=seat,
        )
        session.add(attempt)
        session.flush()
        return attempt


def _finish_without_charge(attempt_id: int, status: AttemptStatus, error: ProcessorError | None, *,
                           processor: str | None = None) -> None:
    """A decline or an error that moved no money: close the attempt; the next submit gets a new key.

    B2: a card the bank declined (CardDeclined) also becomes a failed payment the merchant sees in Payments,
    written here, with the attempt's close, so each decline makes one however many arrive at once."""
    with write_transaction(db.session) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt.status not in (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value):
            return  # already settled by someone else (the request, or another tick)
        move_attempt(attempt, status, at=now())
        if error is not None:
            attempt.error_code = error.code
            attempt.error_message = error.message
        checkout = lock_one(session, CheckoutSession, attempt.checkout_session_id)
        checkout.attempt_seq += 1
        # Q2: nothing was charged: the promo code's redemption is given back.
        promo_codes.release(BuyerChoices.from_stored((attempt.buyer or {}).get("choices")).promo_id)
        # H4: a decline or an invalid number keeps the guard's slots; anything else gives them back.
        # B2: an attempt listed as incomplete (it waited for 3-D Secure or a bank's page) is settled with it.
        incomplete = attempt.payment_id is not None
        if status is AttemptStatus.DECLINED:
            risk.keep(attempt.risk_hold, attempt.link_id if attempt.method == "card" else None)
            # Q9: a card refused while only being saved (nothing due today) moved no money: no failed payment.
            if isinstance(error, CardDeclined) and (incomplete or attempt.method == "card") \
                    and attempt.amount_minor > 0:
                record_declined_attempt(attempt, checkout, code=error.code, message=error.message,
                                        processor=processor, card=(error.brand, error.last4))
        else:
            if incomplete:  # the buyer never finished: it stays incomplete, now "abandoned"
                abandon_incomplete(attempt)
            risk.release(attempt.risk_hold)
        attempt.risk_hold = None
        if attempt.holds_seat:  # Q5: nothing was charged: the seat is free again (after the guard, as taken)
            usage.give_back_seat(session, attempt.link_id)
            attempt.holds_seat = False


def _has_limit(session, link_id: int) -> bool:
    link = session.get(PaymentLink, link_id)
    return link is not None and link.usage_limit is not None


def _closed(session, checkout: CheckoutSession) -> LinkClosed:
    return LinkClosed(session.get(Account, checkout.account_id))


def _field_for(error: ProcessorError, payment_element: bool) -> str:
    """The form field a processor's refusal belongs to: on a Payment Element page there is one (K6)."""
    if payment_element:
        return "payment_method"
    return PROCESSOR_FIELDS.get(error.field or "number", "card_number")


def pay(token: str, form: dict[str, str], *, ip: str | None, user_agent: str | None,
        return_url: str | None = None, locale: str = "en") -> PayOutcome:
    """Pay a checkout session. Raises ValidationFailed with field messages when the buyer must act.

    ``return_url``: where a next action that leaves the page brings the buyer back (K6, `finish_after_action`)."""
    checkout = get_session(token)
    if checkout.status == CheckoutStatus.COMPLETED.value:
        return _completed(checkout)
    if is_expired(checkout):
        raise Gone(_("This checkout has expired. Start again from the payment link."))
    ensure_link_open(checkout)
    account = db.session.get(Account, checkout.account_id)
    snapshot = checkout.snapshot
    try:
        processor = processor_for(checkout.mode, checkout.account_id)
    except NoLiveProcessor:
        raise Conflict(_("This merchant can't accept payments yet. Nothing was charged.")) from None

    today = now().date()
    # K6: Stripe takes no card data; its Payment Element posts a PaymentMethod id instead.
    payment_element = processor.name == StripeProcessor.name
    priced = quote(snapshot, form, locale, account_id=checkout.account_id, mode=checkout.mode)  # Q1–Q4: the server's own total, from the buyer's choices
    buyer, errors = read_buyer_form(snapshot, form, today, payment_element=payment_element)
    errors = {**priced.errors, **errors}
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    buyer.choices = priced.choices
    summary = priced.summary
    amount = summary.due_today
    fingerprint = risk.card_fingerprint(buyer.card.number) if buyer.card else None

    begun = _begin_attempt(checkout.id, buyer, amount.amount_minor, amount.currency, ip, fingerprint)
    if isinstance(begun, PayOutcome):
        return begun
    attempt_id, key = begun.id, begun.idempotency_key
    if amount.amount_minor == 0 and summary.has_recurring:
        return _start_trial(attempt_id, key, account.id, buyer, processor, payment_element)
    request = ChargeRequest(
        account_id=account.id,
        idempotency_key=key,
        amount_minor=amount.amount_minor,
        currency=amount.currency,
        method=buyer.method,
        card=buyer.card,
        bank=buyer.bank,
        payment_method_token=buyer.payment_method_token,
        save_payment_method=summary.has_recurring,
        settlement_currency=account.default_currency,
        description=_checkout_description(summary),
        # K6 (Stripe) and B2 (the sandbox's 3-D Secure test card): the buyer is on the page and can be asked.
        return_url=return_url,
        ip_address=ip,
        user_agent=user_agent,
        now=now(),
    )
    db.session.rollback()  # step 2 holds no transaction while the processor works
    try:
        result = processor.charge(request)
    except ActionRequired as exc:
        _await_action(attempt_id, exc.processor_ref)
        record_incomplete_attempt(attempt_id, processor=processor.name)  # B2: listed as incomplete meanwhile
        return PayOutcome(None, next_action=exc.client_secret)
    except CardDeclined as exc:
        _finish_without_charge(attempt_id, AttemptStatus.DECLINED, exc, processor=processor.name)
        raise PaymentDeclined(_(exc.message), errors={_field_for(exc, payment_element): _(exc.message)}) from None
    except PaymentDetailsInvalid as exc:
        status = AttemptStatus.DECLINED if exc.code in risk.COUNTED_CODES else AttemptStatus.FAILED
        _finish_without_charge(attempt_id, status, exc)
        raise ValidationFailed(_(exc.message), errors={_field_for(exc, payment_element): _(exc.message)}) from None
    except ProcessorError as exc:
        if exc.code in REFUSED_BEFORE_CHARGE:
            # K6: Stripe doesn't know this PaymentMethod for this account (another account's, or made up):
            # nothing was created, so there is nothing to look up.
            _finish_without_charge(attempt_id, AttemptStatus.FAILED, exc)
            message = _("Enter your payment details again. Nothing was charged.")
            raise ValidationFailed(message, errors={_field_for(exc, payment_element): message}) from None
        # Unknown outcome (timeout, lost answer, error after the fact): ask the processor once more right
        # away; if it still can't say, the reconciler settles it on the next tick.
        result = _mark_unknown_and_lookup(attempt_id, key, account.id, processor)
        if result is None:
            return PayOutcome(None, charged_now=True)
    payment = record_successful_charge(attempt_id, result, processor=processor.name,
                                       mandate_context={"ip": ip, "user_agent": user_agent})
    return PayOutcome(payment, charged_now=True)


def _start_trial(attempt_id: int, key: str, account_id: int, buyer: BuyerInput, processor,
                 payment_element: bool) -> PayOutcome:
    """Q9: nothing is due today (every recurring item on a free trial): the card is saved for the charge at the
    trial's end, nothing is charged. The processor checks the card as a charge would (the sandbox's test cards
    decline as they do at a charge; Stripe confirms a SetupIntent for off-session use): a refused card is
    refused here and nothing is saved. A bank that wants the buyer to confirm the card (3-D Secure on a
    SetupIntent) is refused as well for now ("authentication_required"): another card works."""
    db.session.rollback()  # no transaction open while the processor works
    try:
        saved = processor.save_card(account_id, card=buyer.card, payment_method_token=buyer.payment_method_token,
                                    idempotency_key=key, now=now())
    except CardDeclined as exc:
        _finish_without_charge(attempt_id, AttemptStatus.DECLINED, exc)
        raise PaymentDeclined(_(exc.message), errors={_field_for(exc, payment_element): _(exc.message)}) from None
    except PaymentDetailsInvalid as exc:
        status = AttemptStatus.DECLINED if exc.code in risk.COUNTED_CODES else AttemptStatus.FAILED
        _finish_without_charge(attempt_id, status, exc)
        raise ValidationFailed(_(exc.message), errors={_field_for(exc, payment_element): _(exc.message)}) from None
    except ProcessorError as exc:
        # Saving moved no money, so there is nothing to look up: the buyer tries again (a new key).
        _finish_without_charge(attempt_id, AttemptStatus.FAILED, exc)
        message = (_("Enter your payment details again. Nothing was charged.") if exc.code in REFUSED_BEFORE_CHARGE
                   else _("Your card couldn't be saved right now. Try again in a moment."))
        raise ValidationFailed(message, errors={_field_for(exc, payment_element): message}) from None
    record_trial_start(attempt_id, saved)
    return PayOutcome(None, charged_now=True, completed=True)


def _await_action(attempt_id: int, processor_ref: str) -> None:
    """K6: the charge waits for the buyer. The attempt stays in flight (pending: no second charge can start)
    and keeps the PaymentIntent's id, which marks it as one the buyer's return may settle
    (`finish_after_action`); an attempt without it may still be inside a processor call and is left alone."""
    with write_transaction(db.session) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt.status == AttemptStatus.PENDING.value:
            attempt.processor_ref = processor_ref


def _form_values(buyer: dict[str, Any]) -> dict[str, str]:
    """What an attempt kept of the buyer's form (never card data), named as the page's fields."""
    values = {"email": buyer.get("email") or "", **(buyer.get("contact") or {})}
    for prefix in ("billing", "shipping"):
        for part, value in (buyer.get(prefix) or {}).items():
            values[f"{prefix}_{part}"] = value
    for answer in buyer.get("custom_fields") or []:  # Q8
        values[answer["name"]] = answer["value"]
    if buyer.get("shipping") and buyer.get("shipping") != buyer.get("billing"):
        values["shipping_same"] = ""
    return values


def finish_after_action(token: str) -> PayOutcome | ActionDeclined:
    """K6: the buyer is back from 3-D Secure or their bank's page (GET /checkout/<token>/return). Stripe says
    how the charge ended: recorded as paid, or closed as declined with Stripe's reason so they can try again
    (an intent still waiting is cancelled first: see `finish_charge`). Nothing waiting for the buyer (already
    settled, or an attempt still inside a processor call) leaves everything as it is: the page tells."""
    checkout = get_session(token)
    if checkout.status == CheckoutStatus.COMPLETED.value:
        return _completed(checkout)
    attempt = db.session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.checkout_session_id == checkout.id, PaymentAttempt.status == AttemptStatus.PENDING.value,
        PaymentAttempt.processor_ref.is_not(None)))
    if attempt is None:
        return PayOutcome(None)
    attempt_id, key, account_id, buyer = attempt.id, attempt.idempotency_key, attempt.account_id, attempt.buyer
    try:
        processor = processor_for(checkout.mode, account_id)
    except NoLiveProcessor:
        return PayOutcome(None)  # disconnected meanwhile: the reconciler settles it once it can ask
    db.session.rollback()  # no transaction open while Stripe answers
    try:
        result = processor.finish_charge(account_id, key)
    except CardDeclined as exc:
        _finish_without_charge(attempt_id, AttemptStatus.DECLINED, exc, processor=processor.name)
        return ActionDeclined(_(exc.message), _form_values(buyer))
    except ProcessorError:
        return PayOutcome(None)  # Stripe didn't answer: still in flight, the reconciler settles it
    if result is None:  # Stripe never made it (it can't be waiting for anyone): nothing was charged
        _finish_without_charge(attempt_id, AttemptStatus.FAILED, None)
        return ActionDeclined(_("Nothing was charged. Please try again."), _form_values(buyer))
    payment = record_successful_charge(attempt_id, result, processor=processor.name, mandate_context={})
    return PayOutcome(payment, charged_now=True)


def is_test_authentication(client_secret: str) -> bool:
    """B2: whether a next action is the sandbox's test 3-D Secure (its own page), not one for Stripe.js."""
    return client_secret.startswith(SandboxProcessor.ACTION_PREFIX)


def _waiting_test_authentication(checkout: CheckoutSession) -> tuple[PaymentAttempt, Any] | None:
    """B2: this checkout's attempt waiting for the buyer on the sandbox's test authentication page, with the
    sandbox's `authenticate`; None when nothing waits or the charge isn't the sandbox's (Stripe.js runs the
    real 3-D Secure)."""
    attempt = db.session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.checkout_session_id == checkout.id, PaymentAttempt.status == AttemptStatus.PENDING.value,
        PaymentAttempt.processor_ref.is_not(None)))
    if attempt is None:
        return None
    try:
        processor = processor_for(checkout.mode, checkout.account_id)
    except NoLiveProcessor:
        return None
    authenticate = getattr(processor, "authenticate", None)
    return None if authenticate is None else (attempt, authenticate)


def awaits_test_authentication(checkout: CheckoutSession) -> bool:
    """B2: whether this checkout's attempt waits for the buyer on the sandbox's test authentication page (so a
    reload shows that page again rather than "confirming your payment")."""
    return _waiting_test_authentication(checkout) is not None


def test_authentication(token: str, *, succeed: bool) -> bool:
    """B2: the buyer's answer on the sandbox's test authentication page (the 3-D Secure test card): the sandbox
    charge waiting for them is completed or failed; the buyer then goes to `finish_after_action`, which records
    the outcome. False when nothing of this checkout waits (already answered, or not a sandbox charge)."""
    waiting = _waiting_test_authentication(get_session(token))
    if waiting is None:
        return False
    attempt, authenticate = waiting
    account_id, ref = attempt.account_id, attempt.processor_ref
    db.session.rollback()
    return authenticate(account_id, ref, succeed=succeed)


def _mark_unknown_and_lookup(attempt_id: int, key: str, account_id: int, processor) -> ChargeResult | None:
    with write_transaction(db.session) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt.status == AttemptStatus.PENDING.value:  # settled meanwhile (by the reconciler): it stays
            move_attempt(attempt, AttemptStatus.UNKNOWN, at=now())
    db.session.rollback()
    try:
        return processor.lookup_charge(account_id, key)
    except ProcessorError:
        return None


@dataclass(frozen=True)
class TrialsView:
    """Q9: what a completed checkout's confirmation says of free trials: the subscriptions it started in trial
    (none paid yet, or paid only the one-time items), and, with nothing paid, the order as the buyer chose it."""

    subscriptions: list[Any]
    summary: OrderSummary | None = None


def trials_of(checkout: CheckoutSession) -> TrialsView:
    if checkout.payment_id is None:
        attempt = db.session.scalar(select(PaymentAttempt).where(
            PaymentAttempt.checkout_session_id == checkout.id, PaymentAttempt.status == AttemptStatus.SUCCEEDED.value))
        choices = BuyerChoices.from_stored((attempt.buyer if attempt else {}).get("choices"))
        return TrialsView(trial_subscriptions(checkout.id), snapshot_summary(checkout.snapshot, choices))
    subs = db.session.scalars(select(Subscription).where(Subscription.first_payment_id == checkout.payment_id,
                                                         Subscription.trial_ends_at.is_not(None))
                              .order_by(Subscription.id)).all()
    return TrialsView(list(subs))


def _checkout_description(summary: OrderSummary) -> str:
    names = ", ".join(line.name for line in summary.lines)
    return names[:200]


# -- reconciliation (tick) --------------------------------------------------------------------------

RECONCILE_AFTER = timedelta(seconds=30)
# A pending attempt may still be with the processor (the request is waiting for its answer): only when no
# processor call can still be running is its outcome looked up. Deciding "failed" earlier would let a second
# tab start a new attempt and charge again while the first charge is still going through.
IN_FLIGHT_LIMIT = timedelta(minutes=10)


def reconcile_attempts() -> int:
    """Settle attempts whose processor answer was lost: found → record the payment; absent → failed.

    Unknown attempts (the request gave up on the answer) are settled after RECONCILE_AFTER; pending ones (the
    request crashed, or is still waiting) only after IN_FLIGHT_LIMIT."""
    stale = db.session.execute(
        select(PaymentAttempt.id, PaymentAttempt.account_id, PaymentAttempt.idempotency_key, CheckoutSession.mode)
        .join(CheckoutSession, CheckoutSession.id == PaymentAttempt.checkout_session_id)
        .where(or_(
            and_(PaymentAttempt.status == AttemptStatus.UNKNOWN.value,
                 PaymentAttempt.created_at <= now() - RECONCILE_AFTER),
            and_(PaymentAttempt.status == AttemptStatus.PENDING.value,
                 PaymentAttempt.created_at <= now() - IN_FLIGHT_LIMIT),
        ))
        .where(for_tick_account(PaymentAttempt.account_id))
        .order_by(PaymentAttempt.id)
        .limit(200)
    ).all()
    db.session.rollback()

    def settle(row) -> bool:
        attempt_id, account_id, key, mode = row
        # finish_charge, not lookup_charge: a Stripe charge left waiting for a buyer who never came back (3-D
        # Secure, a bank redirect: K6) is cancelled at Stripe before the attempt is failed. Failing it while it
        # could still be confirmed would let the buyer pay again and then be charged twice.
        try:
            processor = processor_for(mode, account_id)
            result = processor.finish_charge(account_id, key)
        except CardDeclined as exc:  # cancelled (or failed) at the processor: nothing was charged
            _finish_without_charge(attempt_id, AttemptStatus.FAILED, exc)
            return True
        except (NoLiveProcessor, ProcessorError):
            return False
        if result is not None:
            record_successful_charge(attempt_id, result, processor=processor.name, mandate_context={})
        else:
            _finish_without_charge(attempt_id, AttemptStatus.FAILED, None)
        return True

    # H1: an attempt that can't be recorded is skipped (and retried), never the end of everyone's settling.
    return each_item("reconcile_attempts", stale, settle, describe=lambda row: f"attempt {row[0]}")
