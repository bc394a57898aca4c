"""Reports: balance and payouts (O1–O3), and the three downloadable payment reports (X1)."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import AnyOf

from kassa.authz import current_actor, get_owned_or_404, permission_required, visible_modes
from kassa.clock import account_today
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.forms import Form, IsoDateField, arg_id, arg_int
from kassa.i18n import LANGUAGES, current_language
from kassa.models import LedgerEntry, Payment, Payout, Permission
from kassa.pagination import keyset_page
from kassa.rendering import htmx_redirect, render_page
from kassa.services.backoffice import revenue
from kassa.services.exports import exports
from kassa.services.payouts import payouts

bp = Blueprint("reports", __name__, url_prefix="/reports")
payouts_bp = Blueprint("payouts", __name__, url_prefix="/payouts")

REPORT_KINDS = ("payout_reconciliation", "balance", "payout_details", "ar_aging")


class PeriodForm(Form):
    """P8: the dashboard's own period, from one date to another (both included), read from the page address so
    that it can be bookmarked and shared. Checked in `period()`."""

    start = IsoDateField()
    end = IsoDateField()


def period(form: PeriodForm, today) -> tuple[tuple | None, dict[str, str]]:
    """((start, end), {}) for a valid chosen period; (None, {}) when none was asked; (None, errors) else."""
    if not form.start.data and not form.end.data:
        return None, {}
    form.validate()
    errors = form.error_dict()
    if errors:
        return None, errors
    start, end = form.start.date, form.end.date
    if start is None or end is None:
        missing = "start" if start is None else "end"
        return None, {missing: _("Choose both dates of the period.")}
    if start > end:
        return None, {"end": _("Choose an end date on or after the start date.")}
    if end > today:
        return None, {"end": _("Choose an end date up to today.")}
    if (end - start).days + 1 > revenue.MAX_DAYS:
        return None, {"start": _("Choose a period of at most %(days)d days.", days=revenue.MAX_DAYS)}
    return (start, end), {}


class ReportForm(Form):
    """A downloadable report: its kind, format, language and dates (H9: "2026-02-30" used to reach the export as
    text and fail). The format and language are checked by the export service."""

    kind = StringField(validators=[AnyOf(REPORT_KINDS, message=_l("Choose a report."))])
    file_format = StringField()
    date_from = IsoDateField(name="from")
    date_to = IsoDateField(name="to")
    language = StringField()


@bp.route("/", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    today = account_today(current_user.account)
    form = ReportForm(data={"kind": "payout_reconciliation", "file_format": "csv",
                            "date_from": today.replace(day=1).isoformat(), "date_to": today.isoformat(),
                            "language": current_language()})
    values = form.value_dict()
    errors: dict[str, str] = {}
    if form.is_submitted():
        form.validate()
        errors.update(form.error_dict())
        if not errors:
            try:
                exports.request_export(
                    current_actor(), kind=values["kind"], name=_report_name(values["kind"]),
                    file_format=values["file_format"], language=values["language"],
                    params={"from": values["from"], "to": values["to"], "modes": list(visible_modes()),
                            # V7: the aging report is as of the "To" day (today, or a past day)
                            **({"as_of": values["to"]} if values["kind"] == "ar_aging" else {})})
            except ValidationFailed as exc:
                errors = exc.errors or {"kind": exc.message}
            else:
                return htmx_redirect(url_for("exports.index", started=1))
    modes = visible_modes()
    balances = {mode: payouts.balance(current_user.account_id, mode, today) for mode in modes}
    period_form = PeriodForm(formdata=request.args)
    chosen, period_errors = period(period_form, today)
    performance = revenue.performance(current_user.account, tuple(modes), arg_int("days", 30, minimum=1, maximum=3660),
                                      start_day=chosen[0] if chosen else None, end_day=chosen[1] if chosen else None)
    return render_page("reports/index.html", status=422 if errors or period_errors else 200, values=values,
                       errors=errors, balances=balances, currency=current_user.account.default_currency,
                       languages=LANGUAGES, performance=performance, periods=revenue.PERIODS, active_nav="reports",
                       daily_chart=revenue.daily_chart(performance, current_language()),
                       period_values=period_form.value_dict(), period_errors=period_errors)


def _report_name(kind: str) -> str:
    return {"payout_reconciliation": _("Payout reconciliation"), "balance": _("Balance / payment information"),
            "payout_details": _("Payout details"), "ar_aging": _("Accounts receivable aging")}[kind]


@payouts_bp.get("/", endpoint="index")
@permission_required(Permission.MANAGE_PAYMENTS)
def payout_list():
    before = arg_id("before")
    query = (select(Payout).where(Payout.account_id == current_user.account_id, Payout.mode.in_(visible_modes()))
             .order_by(Payout.payout_date.desc(), Payout.id.desc()))
    if before:
        query = query.where(Payout.id < before)
    rows, more = keyset_page(query)
    return render_page("reports/payouts.html", rows=rows, active_nav="reports",
                       next_href=url_for("payouts.index", before=rows[-1].id) if more else None,
                       first_href=url_for("payouts.index") if before else None)


@payouts_bp.get("/<int:payout_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def detail(payout_id: int):
    payout = get_owned_or_404(Payout, payout_id)
    entries = db.session.execute(
        select(LedgerEntry, Payment.buyer_email).outerjoin(Payment, Payment.id == LedgerEntry.payment_id)
        .where(LedgerEntry.payout_id == payout.id, LedgerEntry.type != "payout")
        .order_by(LedgerEntry.occurred_at, LedgerEntry.id)
    ).all()
    total = sum(entry.amount_minor for entry, _email in entries)
    return render_page("reports/payout.html", payout=payout, entries=entries, total=total, active_nav="reports")
