"""Simple record pages for contacts, companies and deals, with their payment timelines (R2, R3, R6)."""

from __future__ import annotations

from flask import Blueprint, flash, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.forms import Form
from kassa.models import Company, Contact, Deal, Payment, Permission, TimelineEntry
from kassa.rendering import htmx_redirect, render_page
from kassa.services.crm import crm

bp = Blueprint("crm", __name__)

TIMELINE_LIMIT = 100


def _timeline(subject_type: str, subject_id: int) -> list[TimelineEntry]:
    return list(db.session.scalars(
        scoped(TimelineEntry)
        .where(TimelineEntry.subject_type == subject_type, TimelineEntry.subject_id == subject_id)
        .order_by(TimelineEntry.created_at.desc(), TimelineEntry.id.desc())
        .limit(TIMELINE_LIMIT)
    ))


def _payments(column, value) -> list[Payment]:
    return list(db.session.scalars(scoped(Payment).where(column == value).order_by(Payment.created_at.desc())
                                   .limit(100)))


@bp.get("/contacts/<int:contact_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def contact(contact_id: int):
    record = get_owned_or_404(Contact, contact_id)
    company = db.session.get(Company, record.company_id) if record.company_id else None
    deals = list(db.session.scalars(scoped(Deal).where(Deal.contact_id == record.id).order_by(Deal.id.desc())))
    return render_page("crm/contact.html", record=record, company=company, deals=deals,
                       payments=_payments(Payment.contact_id, record.id), timeline=_timeline("contact", record.id),
                       active_nav="payments")


@bp.get("/companies/<int:company_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def company(company_id: int):
    record = get_owned_or_404(Company, company_id)
    contacts = list(db.session.scalars(scoped(Contact).where(Contact.company_id == record.id)))
    return render_page("crm/company.html", record=record, contacts=contacts,
                       payments=_payments(Payment.company_id, record.id), timeline=_timeline("company", record.id),
                       active_nav="payments")


@bp.get("/deals/<int:deal_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def deal(deal_id: int):
    record = get_owned_or_404(Deal, deal_id)
    contact = db.session.get(Contact, record.contact_id) if record.contact_id else None
    return render_page("crm/deal.html", record=record, contact=contact,
                       payments=_payments(Payment.deal_id, record.id), timeline=_timeline("deal", record.id),
                       active_nav="payments")


class PipelineForm(Form):
    """A new deal pipeline: its name and its stages, one a line (checked by the CRM service)."""

    name = StringField(default="")
    stages = StringField(default="")


@bp.route("/settings/pipelines", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def pipelines():
    form = PipelineForm()
    errors, values = {}, form.value_dict()
    if form.is_submitted():
        try:
            pipeline = crm.create_pipeline(current_actor(), values["name"], values["stages"])
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Pipeline “%(name)s” created.", name=pipeline.name), "success")
            return htmx_redirect(url_for("crm.pipelines"))
    return render_page("crm/pipelines.html", status=422 if errors else 200,
                       pipelines=crm.pipelines_for(current_user.account_id), errors=errors, values=values,
                       section="pipelines", active_nav="settings")


