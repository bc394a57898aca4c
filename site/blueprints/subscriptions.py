"""Subscriptions: the list (with the payments index's filter machinery) and each subscription's page."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select, tuple_
from wtforms import StringField, ValidationError
from wtforms.validators import AnyOf

from kassa.authz import current_actor, get_owned_or_404, permission_required, visible_modes
from kassa.blueprints.payments import filter_context
from kassa.clock import clock_now
from kassa.errors import KassaError
from kassa.extensions import db
from kassa.forms import FlagField, Form, parse_date, parse_id, parse_timestamp
from kassa.models import (
    Account,
    BillingFrequency,
    Contact,
    Payment,
    Permission,
    Subscription,
    SubscriptionStatus,
    TimelineEntry,
)
from kassa.order_summary import frequency_label
from kassa.pagination import keyset_page
from kassa.rendering import htmx_redirect, render_page
from kassa.services.backoffice.payment_filters import (
    FilterError,
    Prop,
    filter_clause,
    parse_condition,
    parse_filter,
)
from kassa.services.billing import subscriptions as service

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")


# The same typed filter machinery as the payments index, over subscription columns.
PROPERTIES = {
    prop.key: prop for prop in [
        Prop("status", _l("Status"), "enum", lambda: Subscription.status,
             lambda: [(s.value, s.label) for s in SubscriptionStatus]),
        Prop("frequency", _l("Billing frequency"), "enum", lambda: Subscription.frequency,
             lambda: [(f.value, frequency_label(f)) for f in BillingFrequency if f.is_recurring]),
        Prop("amount", _l("Amount per period"), "money", lambda: Subscription.amount_minor,
             currency=lambda: Subscription.currency),
        Prop("next_charge", _l("Next charge"), "date", lambda: Subscription.next_charge_at),
        Prop("created", _l("Created"), "date", lambda: Subscription.created_at),
        Prop("email", _l("Contact email"), "text", lambda: Contact.email),
        Prop("payments_made", _l("Payments made"), "number", lambda: Subscription.payments_made),
    ]
}


def subscription_status(value: str):
    from markupsafe import Markup

    status = SubscriptionStatus(value)
    return Markup('<span class="badge badge--{}">{}</span>').format(status.tone, status.label)


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    statuses = [s for s in request.args.getlist("status") if s][:10]
    frequency = request.args.get("frequency", "").strip()
    email = request.args.get("email", "").strip()[:200]
    after = request.args.get("after", "")
    error = None
    query = (select(Subscription).join(Contact, Contact.id == Subscription.contact_id)
             .where(Subscription.account_id == current_user.account_id, Subscription.mode.in_(visible_modes())))
    try:
        raw = []
        if statuses:
            raw.append(["status", "any_of", statuses])
        if frequency:
            raw.append(["frequency", "any_of", [frequency]])
        if email:
            raw.append(["email", "contains", [email]])
        quick = tuple(parse_condition(item, PROPERTIES) for item in raw)
        advanced = parse_filter(request.args.get("adv"), PROPERTIES)
        ctx = filter_context()
        if quick:
            query = query.where(filter_clause((quick,), ctx, PROPERTIES))
        if advanced:
            query = query.where(filter_clause(advanced, ctx, PROPERTIES))
        if after:
            created, _sep, ident = after.rpartition("~")
            ident_number, created_at = parse_id(ident), parse_timestamp(created)  # H9: a bigger id overflowed
            if ident_number is None or created_at is None:
                raise ValueError(after)
            query = query.where(tuple_(Subscription.created_at, Subscription.id) < tuple_(created_at, ident_number))
    except (FilterError, ValueError) as exc:
        error = getattr(exc, "message", _("That page link is out of date. Start from the first page."))
        rows, more = [], False
    else:
        rows, more = keyset_page(query.order_by(Subscription.created_at.desc(), Subscription.id.desc()))
    any_subscriptions = db.session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.account_id == current_user.account_id)) > 0
    args = request.args.to_dict(flat=False)
    args.pop("after", None)
    next_href = url_for("subscriptions.index", **args,
                        after=f"{rows[-1].created_at.isoformat()}~{rows[-1].id}") if more and rows else None
    return render_page(
        "subscriptions/index.html", "results", status=400 if error else 200, rows=rows, error=error,
        statuses=statuses, frequency=frequency, email=email, status_labels={s.value: s.label for s in SubscriptionStatus},
        frequencies=[(f.value, frequency_label(f)) for f in BillingFrequency if f.is_recurring],
        any_subscriptions=any_subscriptions, next_href=next_href,
        first_href=url_for("subscriptions.index", **args) if after else None, active_nav="subscriptions",
    )


def _detail_context(sub: Subscription) -> dict:
    account = db.session.get(Account, sub.account_id)
    payments = list(db.session.scalars(
        select(Payment).where(Payment.account_id == sub.account_id,
                              (Payment.subscription_id == sub.id) | (Payment.id == sub.first_payment_id))
        .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(200)))

    timeline = list(db.session.scalars(
        select(TimelineEntry).where(TimelineEntry.account_id == sub.account_id,
                                    TimelineEntry.subject_type == "subscription", TimelineEntry.subject_id == sub.id)
        .order_by(TimelineEntry.created_at.desc(), TimelineEntry.id.desc()).limit(100)))

    return {"sub": sub, "account": account, "payments": payments, "timeline": timeline,
            "schedule": service.upcoming(sub, account), "clock_now": clock_now(sub),
            "sandbox_controls": service.sandbox_controls_apply(sub),
            "test_card": service.test_card_behaviour(sub),
            "status_labels": {s.value: s.label for s in SubscriptionStatus}, "active_nav": "subscriptions"}


@bp.get("/<int:subscription_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def detail(subscription_id: int):
    sub = get_owned_or_404(Subscription, subscription_id)
    return render_page("subscriptions/detail.html", **_detail_context(sub))


class CancelForm(Form):
    """When the subscription ends: "now", or at the end of the paid period (the service names the choices)."""

    when = StringField(default="")


CLOCK_STEPS = {"day": 1, "week": 7, "month": 31}
CLOCK_MESSAGE = _l("Choose how far to move the test clock.")


class ClockForm(Form):
    """T5: move the test clock by a day, a week or a month, or to a date."""

    step = StringField(default="", validators=[AnyOf([*CLOCK_STEPS, "date"], message=CLOCK_MESSAGE)])
    to_date = StringField(default="")  # read only for "date": another step ignores what else was sent

    def validate_to_date(self, field):
        if self.step.data == "date" and parse_date(field.data) is None:
            raise ValidationError(CLOCK_MESSAGE)


class CardBehaviourForm(Form):
    """T5: whether the subscription's test card declines from the next charge."""

    decline = FlagField()


@bp.route("/<int:subscription_id>/cancel", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def cancel(subscription_id: int):
    sub = get_owned_or_404(Subscription, subscription_id)
    if request.method == "GET":
        return render_page("subscriptions/cancel.html", "dialog", sub=sub, active_nav="subscriptions",
                           back_url=url_for("subscriptions.detail", subscription_id=sub.id))
    form = CancelForm()
    try:
        service.cancel(current_actor(), sub.id, form.when.data)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The subscription is cancelled.") if form.when.data == "now" else
              _("The subscription ends at the end of the paid period."), "success")
    return htmx_redirect(url_for("subscriptions.detail", subscription_id=sub.id))


@bp.post("/<int:subscription_id>/test-clock")
@permission_required(Permission.MANAGE_PAYMENTS)
def test_clock(subscription_id: int):
    """T5, B9: advance this test subscription's own clock by a day, a week, a month, or to a date."""
    sub = get_owned_or_404(Subscription, subscription_id)
    form = ClockForm()
    if not form.validate():
        flash(next(iter(form.error_dict().values())), "error")
        return htmx_redirect(url_for("subscriptions.detail", subscription_id=sub.id))
    try:
        if form.step.data == "date":
            result = service.advance_clock(current_actor(), sub.id, to_date=parse_date(form.to_date.data))
        else:
            result = service.advance_clock(current_actor(), sub.id, days=CLOCK_STEPS[form.step.data])
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Test clock moved. Charges: %(ok)d succeeded, %(failed)d failed.", ok=result["succeeded"],
                failed=result["failed"]), "success")
    return htmx_redirect(url_for("subscriptions.detail", subscription_id=sub.id))


@bp.post("/<int:subscription_id>/test-clock/reset")
@permission_required(Permission.MANAGE_PAYMENTS)
def reset_test_clock(subscription_id: int):
    """B9: "Back to real time": the subscription's test clock reads real time again."""
    sub = get_owned_or_404(Subscription, subscription_id)
    try:
        service.reset_clock(current_actor(), sub.id)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The test clock is back to real time."), "success")
    return htmx_redirect(url_for("subscriptions.detail", subscription_id=sub.id))


@bp.post("/<int:subscription_id>/test-card")
@permission_required(Permission.MANAGE_PAYMENTS)
def test_card(subscription_id: int):
    sub = get_owned_or_404(Subscription, subscription_id)
    form = CardBehaviourForm()
    try:
        service.set_test_card_behaviour(current_actor(), sub.id, form.decline.data)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The test card will decline from the next charge.") if form.decline.data else
              _("The test card will succeed again."), "success")
    return htmx_redirect(url_for("subscriptions.detail", subscription_id=sub.id))
