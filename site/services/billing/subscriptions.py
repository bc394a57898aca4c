"""Managing subscriptions (S2, E7, T5): cancel, reminders, the buyer's card update, the test clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.clock import clock_now, now, zone
from kassa.database import write_transaction
from kassa.errors import Conflict, Forbidden, NotFound, PaymentDeclined, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    Account,
    Mode,
    Payment,
    PaymentStatus,
    Permission,
    Subscription,
    SubscriptionStatus,
    TermType,
)
from kassa.periods import charge_date
from kassa.processors.base import (
    ActionRequired,
    CardDeclined,
    PaymentDetailsInvalid,
    ProcessorError,
    SavedCard,
)
from kassa.processors.registry import (
    processor_for,
    sandbox,
    stripe_connection,
    test_stripe_connection,
    uses_sandbox,
)
from kassa.services.billing.billing import (  # registers its tick before ours
    BILLABLE,
    bill,
    clock_due_by,
    subscription_subjects,
)
from kassa.services.billing.billing_rows import add_timeline_at
from kassa.services.billing.notices import (
    notify_subscription_cancel_scheduled,
    notify_subscription_reminder,
)
from kassa.services.billing.subscription_states import move_subscription
from kassa.services.checkout.checkout_form import PROCESSOR_FIELDS, BuyerInput, read_card
from kassa.services.payments import risk
from kassa.services.platform.audit import record_audit
from kassa.services.platform.ticks import each_item, for_tick_account, run_tick
from kassa.timeline_kinds import TimelineKind

REMINDER_LEAD = timedelta(days=14)  # E7
# Refusals of the method itself (not of the moment): the buyer must enter or pick another card.
_NOT_THIS_METHOD = ("no_such_payment_method", "payment_method_required", "payment_details_not_accepted")
MAX_SCHEDULE = 120
CLOCK_STEPS = 2000


def _require(actor: Actor) -> None:
    if not actor.can(Permission.MANAGE_PAYMENTS):  # a user's role, or an API key's permissions (I2)
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))


def owned(session, actor: Actor, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None or sub.account_id != actor.account_id:
        raise NotFound(_("Subscription not found."))
    return sub


def upcoming(sub: Subscription, account: Account, limit: int = 12) -> list[datetime]:
    """The next charge dates: all of them for a fixed term (up to 120), the next `limit` otherwise."""
    if sub.status not in BILLABLE or sub.next_charge_at is None:
        return []
    if sub.term_type == TermType.FIXED.value and sub.term_count:
        remaining = range(sub.payments_made, min(sub.term_count, sub.payments_made + MAX_SCHEDULE))
    else:
        remaining = range(sub.payments_made, sub.payments_made + limit)
    dates = [charge_date(sub.anchor_at, sub.frequency, n, account.timezone) for n in remaining]
    if dates and sub.next_charge_at != dates[0]:
        dates[0] = sub.next_charge_at  # a retry after a failed charge
    return dates


def cancel(actor: Actor, subscription_id: int, when: str) -> Subscription:
    """S2: cancel now, or at the end of the paid period. A refund never cancels (F2): only this does."""
    _require(actor)
    if when not in ("now", "period_end"):
        raise ValidationFailed(_("Choose when the subscription ends."), field="when")
    with write_transaction(db.session) as session:
        sub = owned(session, actor, subscription_id)
        end_subscription(session, sub, when, actor_id=actor.user_id)
        record_audit(actor, "subscription.cancelled", object_type="subscription", object_id=sub.id,
                     data={"when": when})
        return sub


def end_subscription(session, sub: Subscription, when: str, *, actor_id: int | None,
                     reason: str = "cancelled_by_merchant") -> None:
    """S2/Q11: end a subscription now, or schedule its end at the end of the paid period (in a write)."""
    if sub.status not in BILLABLE:
        raise Conflict(_("This subscription has already ended."))
    at = clock_now(sub)
    if when == "now":
        sub.cancelled_at = at  # now, even when an end-of-period cancellation was scheduled before
        move_subscription(session, sub, SubscriptionStatus.CANCELLED, at=at, reason=reason,
                          actor_id=actor_id, data={"when": "now"})
    else:
        sub.cancel_at_period_end = True
        sub.cancelled_at = at
        add_timeline_at(session, sub.account_id, TimelineKind.SUBSCRIPTION_CANCEL_SCHEDULED, subscription_subjects(sub), at,
                        actor_id=actor_id,
                        data={"ends_at": sub.next_charge_at.isoformat() if sub.next_charge_at else None})

        notify_subscription_cancel_scheduled(sub)


def send_reminders() -> int:
    """E7: 14 days before a subscription's next payment, once per period, when the merchant turned it on."""
    account_ids = db.session.scalars(
        select(Subscription.account_id).where(Subscription.status == SubscriptionStatus.ACTIVE.value,
                                               for_tick_account(Subscription.account_id)).distinct()
    ).all()
    db.session.rollback()

    def remind_account(account_id: int) -> int:
        account = db.session.get(Account, account_id)
        if account is None or not account.notification_enabled("subscription_reminders"):
            return 0
        # Each subscription on its own clock (B9: a test subscription's test clock; live ones real time).
        targets = db.session.scalars(
            select(Subscription.id).where(
                Subscription.account_id == account.id, Subscription.status == SubscriptionStatus.ACTIVE.value,
                Subscription.cancel_at_period_end.is_(False),
                Subscription.next_charge_at <= clock_due_by(now() + REMINDER_LEAD),
                func.coalesce(Subscription.reminded_period, -1) < Subscription.payments_made)
        ).all()
        db.session.rollback()
        return each_item("subscription_reminders", targets, remind, describe=lambda sid: f"subscription {sid}")

    def remind(sub_id: int) -> bool:
        with write_transaction(db.session) as session:
            sub = session.get(Subscription, sub_id)
            if sub.reminded_period is not None and sub.reminded_period >= sub.payments_made:
                return False
            sub.reminded_period = sub.payments_made
            notify_subscription_reminder(sub)
            add_timeline_at(session, sub.account_id, TimelineKind.SUBSCRIPTION_REMINDER_SENT, [("subscription", sub.id)],
                            clock_now(sub))
            return True

    # H1: one account or subscription failing is logged and retried later; every other reminder still goes.
    return each_item("subscription_reminders", account_ids, remind_account, describe=lambda aid: f"account {aid}")


# -- the buyer's card update page ---------------------------------------------------------------------


def by_update_token(token: str) -> Subscription:
    sub = db.session.scalar(select(Subscription).where(Subscription.update_token == token))
    if sub is None or not token:
        raise NotFound(_("This link is not valid."))
    return sub


def update_card(token: str, form: dict[str, str], *, ip: str | None = None) -> tuple[Subscription, str | None]:
    """The buyer enters a new card; a past-due subscription is charged right away with it.

    The card comes as typed (the sandbox's test cards) or, on a subscription charged through Stripe, as the
    PaymentMethod id Stripe's Payment Element made in setup mode (`payment_method`, K8): card data never reaches
    Kassa then. The card-testing guard watches this page as it watches the checkout (H4): a slot is taken before
    the processor sees the card, kept when the card is declined or invalid, given back when it is saved."""
    sub = by_update_token(token)
    if sub.status not in BILLABLE:
        raise Conflict(_("This subscription has ended; there's no card to update."))
    account = db.session.get(Account, sub.account_id)
    at = clock_now(sub)
    payment_method = (form.get("payment_method") or "").strip()[:255]
    buyer, errors = BuyerInput(), {}
    if not payment_method:
        read_card(form, at.date(), buyer, errors)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    processor = processor_for(sub.mode, sub.account_id)
    entry = risk.CardEntry(account_id=sub.account_id, mode=sub.mode, method="card",
                           number=payment_method or buyer.card.number, ip=ip, page=f"billing:{sub.id}")
    with write_transaction(db.session):
        hold = risk.reserve(entry)
    db.session.rollback()
    # One key per subscription and method: the same card posted twice (a double click) saves it once.
    card_key = risk.card_fingerprint(payment_method or buyer.card.number)[:32]
    key = f"sub-{sub.id}-card-{card_key}"
    try:
        # A PaymentMethod comes from the page the buyer is on: a bank may ask them to confirm it there (K8).
        saved = processor.save_card(sub.account_id, card=None if payment_method else buyer.card,
                                    payment_method_token=payment_method or None, idempotency_key=key, now=at,
                                    on_session=bool(payment_method))
    except ActionRequired as exc:
        # Not a decline: the slot is given back; nothing is saved until the buyer is back and Stripe says yes.
        with write_transaction(db.session):
            risk.release(hold)
        raise CardNeedsConfirmation(exc.client_secret, exc.processor_ref, card_key) from None
    except (CardDeclined, PaymentDetailsInvalid) as exc:
        counted = isinstance(exc, CardDeclined) or exc.code in risk.COUNTED_CODES
        with write_transaction(db.session):
            if counted:
                risk.keep(hold, None)
            else:
                risk.release(hold)
        # A PaymentMethod from the Payment Element has no card fields of Kassa's: the error is the element's.
        field = "payment_method" if payment_method else PROCESSOR_FIELDS.get(exc.field or "number", "card_number")
        error = PaymentDeclined if isinstance(exc, CardDeclined) else ValidationFailed  # B8: its own message
        raise error(_(exc.message), errors={field: _(exc.message)}) from None
    except ProcessorError as exc:
        with write_transaction(db.session):
            risk.release(hold)
        if exc.code in _NOT_THIS_METHOD:
            field = "payment_method" if payment_method else "card_number"
            raise ValidationFailed(_(exc.message), errors={field: _(exc.message)}) from None
        raise Conflict(_("Your card couldn't be saved right now. Try again in a moment.")) from None
    with write_transaction(db.session):
        risk.release(hold)
    return _keep_card(token, account, saved)


class CardNeedsConfirmation(Exception):
    """K8: the bank wants the buyer to confirm the new card (3-D Secure): Stripe.js runs it with
    ``client_secret``, then the page comes back to `finish_card_update` with ``setup_ref`` and ``card_key``
    (which card it was, as the save's key knows it)."""

    def __init__(self, client_secret: str, setup_ref: str, card_key: str):
        super().__init__(setup_ref)
        self.client_secret, self.setup_ref, self.card_key = client_secret, setup_ref, card_key


def finish_card_update(token: str, setup_ref: str, card_key: str) -> tuple[Subscription, str | None]:
    """K8: the buyer is back from confirming the new card with their bank. Stripe says how it ended: the card is
    kept as `update_card` keeps one (a past-due period is charged at once), or Stripe's reason is shown and
    nothing changes. A SetupIntent not made for this subscription's page (another subscription's, another
    account's) is NotFound."""
    sub = by_update_token(token)
    if sub.status not in BILLABLE:
        raise Conflict(_("This subscription has ended; there's no card to update."))
    if not (len(card_key) == 32 and all(c in "0123456789abcdef" for c in card_key)) or not setup_ref:
        raise NotFound(_("This link is not valid."))
    account = db.session.get(Account, sub.account_id)
    processor = processor_for(sub.mode, sub.account_id)
    at = clock_now(sub)
    db.session.rollback()  # no transaction open while Stripe answers
    try:
        saved = processor.finish_save_card(sub.account_id, setup_ref[:255], f"sub-{sub.id}-card-{card_key}", at)
    except CardDeclined as exc:
        raise PaymentDeclined(_(exc.message), errors={"payment_method": _(exc.message)}) from None
    except ProcessorError as exc:
        if exc.code == "no_such_setup":
            raise NotFound(_("This link is not valid.")) from None
        raise Conflict(_("Your card couldn't be saved right now. Try again in a moment.")) from None
    if by_update_token(token).payment_method_token == saved.token:  # a reload of this page: kept already
        return by_update_token(token), None
    return _keep_card(token, account, saved)


def _keep_card(token: str, account: Account, saved: SavedCard) -> tuple[Subscription, str | None]:
    """The saved card replaces the subscription's; a past-due subscription is charged with it right away."""
    with write_transaction(db.session) as session:
        sub = by_update_token(token)
        sub.payment_method_token = saved.token
        sub.card_brand, sub.card_last4 = saved.brand, saved.last4
        sub.card_exp_month, sub.card_exp_year = saved.exp_month, saved.exp_year
        was_past_due = sub.status == SubscriptionStatus.PAST_DUE.value
        if was_past_due:
            sub.next_charge_at = clock_now(sub)  # charge the outstanding period now
        add_timeline_at(session, sub.account_id, TimelineKind.SUBSCRIPTION_CARD_UPDATED, subscription_subjects(sub),
                        clock_now(sub))
        sub_id = sub.id
    outcome = bill(sub_id) if was_past_due else None
    return db.session.get(Subscription, sub_id), outcome


def stripe_publishable_key(sub: Subscription) -> str | None:
    """K8/K12: the publishable key the card-update page's Payment Element runs on when the subscription is
    charged through Stripe (live mode on the account's live connection, test mode when the account chose Stripe
    test mode); None when the sandbox charges it, whose page keeps Kassa's own card fields and loads no Stripe.js.
    Decided as the checkout decides it (CheckoutView.stripe_publishable_key): by the active connection."""
    if sub.mode == Mode.LIVE.value:
        connection = stripe_connection(sub.account_id, Mode.LIVE.value)
    else:
        connection = test_stripe_connection(sub.account_id)
    return connection.publishable_key if connection is not None else None


def sandbox_controls_apply(sub: Subscription) -> bool:
    """T5's test card works on the sandbox's saved cards only: not on live subscriptions, nor while the account
    tests with Stripe test mode (K12), where Stripe's own test cards decide."""
    return sub.mode == Mode.TEST.value and uses_sandbox(sub.account_id)


def set_test_card_behaviour(actor: Actor, subscription_id: int, decline: bool) -> Subscription:
    """T5 (sandbox): make a test subscription's saved card decline from its next charge, or succeed again."""
    _require(actor)
    with write_transaction(db.session) as session:
        sub = owned(session, actor, subscription_id)
        if sub.mode != Mode.TEST.value:
            raise Conflict(_("Only test subscriptions have a test card."))
        if not uses_sandbox(sub.account_id):
            raise Conflict(_("The test card controls apply to Kassa's sandbox only. With Stripe test mode, use "
                             "Stripe's test cards (4000 0000 0000 0341 declines)."))
        token, account_id = sub.payment_method_token, sub.account_id
    sandbox().set_payment_method_behaviour(account_id, token, "decline" if decline else "succeed")
    with write_transaction(db.session) as session:
        sub = owned(session, actor, subscription_id)
        add_timeline_at(session, sub.account_id, TimelineKind.SUBSCRIPTION_TEST_CARD_CHANGED, [("subscription", sub.id)],
                        clock_now(sub), actor_id=actor.user_id, data={"decline": decline})
        return sub


def test_card_behaviour(sub: Subscription) -> str | None:
    """B9: which test card switch is on for this subscription: "succeed" or "decline"; None where the switches
    don't apply (live, Stripe test mode) or the sandbox no longer knows the card."""
    if not sandbox_controls_apply(sub) or not sub.payment_method_token:
        return None
    try:
        return sandbox().payment_method_behaviour(sub.account_id, sub.payment_method_token)
    except ProcessorError:
        return None


# -- the test clock (T5, B9: one per test subscription) -----------------------------------------------


def _test_subscription(session, actor: Actor, subscription_id: int) -> Subscription:
    sub = owned(session, actor, subscription_id)
    if sub.mode != Mode.TEST.value:
        raise Conflict(_("Only test subscriptions have a test clock. A live subscription always runs on real time."))
    return sub


def _next_due(sub: Subscription, account: Account, after: datetime, until: datetime) -> datetime | None:
    """The next moment this subscription has something due on its clock: a charge or a retry, or its reminder.
    (A sandbox event of one of its renewals, such as a scenario card's dispute, is delivered by the tick at the
    next of these stops: `events.process_sandbox_events` reads it on this subscription's clock.)"""
    moments = []
    if sub.status in BILLABLE and sub.next_charge_at is not None and after < sub.next_charge_at <= until:
        moments.append(sub.next_charge_at)
    if (account.notification_enabled("subscription_reminders") and sub.status == SubscriptionStatus.ACTIVE.value
            and sub.next_charge_at is not None and not sub.cancel_at_period_end
            and (sub.reminded_period if sub.reminded_period is not None else -1) < sub.payments_made
            and after < sub.next_charge_at - REMINDER_LEAD <= until):
        moments.append(sub.next_charge_at - REMINDER_LEAD)
    return min(moments) if moments else None


def _set_clock(subscription_id: int, target: datetime) -> None:
    """The subscription's clock at `target` (never backwards: two advances at once end at the later one)."""
    with write_transaction(db.session) as session:
        sub = session.get(Subscription, subscription_id)
        sub.clock_offset_seconds = max(int((target - now()).total_seconds()) + 1, sub.clock_offset_seconds or 0)


def advance_clock(actor: Actor, subscription_id: int, *, days: int = 0, to_date: date | None = None) -> dict[str, int]:
    """T5, B9: move this test subscription's own clock forward and run, in order, what falls due on the way
    (its charges, retries and reminders), through the same billing run as real time. Nothing else moves:
    other test subscriptions, test payments, reports and home figures stay on real time. Returns the
    subscription's payments made on the way by status."""
    _require(actor)
    with write_transaction(db.session) as session:
        sub = _test_subscription(session, actor, subscription_id)
        account = session.get(Account, sub.account_id)
        start, zone_name = clock_now(sub), account.timezone
    if to_date is not None:
        target = datetime.combine(to_date, time(12), tzinfo=zone(zone_name)).astimezone(UTC)
    else:
        target = start + timedelta(days=days)
    if target <= start:
        raise ValidationFailed(_("Choose a moment after the test clock's current time."), field="to_date")
    if target - start > timedelta(days=3660):
        raise ValidationFailed(_("The test clock moves at most ten years at once."), field="to_date")
    before = _payment_counts(subscription_id)
    current = start
    for _step in range(CLOCK_STEPS):
        sub = db.session.get(Subscription, subscription_id)
        due = _next_due(sub, db.session.get(Account, sub.account_id), current, target)
        db.session.rollback()
        if due is None:
            break
        _set_clock(subscription_id, due)
        run_tick(actor.account_id)
        current = due
    _set_clock(subscription_id, target)
    run_tick(actor.account_id)
    after = _payment_counts(subscription_id)
    with write_transaction(db.session):
        record_audit(actor, "test_clock.advanced", object_type="subscription", object_id=subscription_id,
                     data={"from": start.isoformat(), "to": target.isoformat()})
    return {key: after[key] - before[key] for key in after}


def reset_clock(actor: Actor, subscription_id: int) -> Subscription:
    """B9 "Back to real time": the subscription's test clock reads real time again.

    What was billed while it ran ahead stays (those payments keep the dates they were made on); nothing is
    undone or billed again. The next period is computed from the subscription's state as it is: its next
    charge stays where billing left it, so a subscription billed months ahead waits, on real time, until that
    date comes (or until its clock is advanced again)."""
    _require(actor)
    with write_transaction(db.session) as session:
        sub = _test_subscription(session, actor, subscription_id)
        if not sub.clock_offset_seconds:
            raise Conflict(_("This subscription's test clock already reads real time."))
        moved_from = clock_now(sub)
        sub.clock_offset_seconds = 0
        add_timeline_at(session, sub.account_id, TimelineKind.SUBSCRIPTION_TEST_CLOCK_RESET,
                        [("subscription", sub.id)], now(), actor_id=actor.user_id,
                        data={"from": moved_from.isoformat()})
        record_audit(actor, "test_clock.reset", object_type="subscription", object_id=sub.id,
                     data={"from": moved_from.isoformat()})
        return sub


def _payment_counts(subscription_id: int) -> dict[str, int]:
    rows = dict(db.session.execute(
        select(Payment.status, func.count()).where(Payment.subscription_id == subscription_id)
        .group_by(Payment.status)).all())
    db.session.rollback()
    return {status.value: int(rows.get(status.value, 0)) for status in PaymentStatus}
