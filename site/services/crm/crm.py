"""The minimal CRM behind payments: pipelines and stages (L9), contacts, companies, deals, timelines (R2–R6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import Company, Contact, Deal, Pipeline, Stage, TimelineEntry
from kassa.services.platform.audit import record_audit
from kassa.timeline_kinds import TimelineKind

CLOSED_WON = "Closed won"

# HubSpot's default sales pipeline, which the seed product creates when a merchant has none.
DEFAULT_STAGES = [
    ("Appointment scheduled", 20),
    ("Qualified to buy", 40),
    ("Presentation scheduled", 60),
    ("Decision maker bought-in", 80),
    ("Contract sent", 90),
    (CLOSED_WON, 100),
    ("Closed lost", 0),
]


def pipelines_for(account_id: int) -> list[Pipeline]:
    return list(
        db.session.scalars(
            select(Pipeline).where(Pipeline.account_id == account_id).order_by(Pipeline.is_default.desc(), Pipeline.id)
        )
    )


def _create_pipeline(account_id: int, name: str, stages: list[tuple[str, int]], *, is_default: bool) -> Pipeline:
    pipeline = Pipeline(account_id=account_id, name=name, is_default=is_default)
    db.session.add(pipeline)
    db.session.flush()
    for position, (stage_name, probability) in enumerate(stages):
        db.session.add(
            Stage(account_id=account_id, pipeline_id=pipeline.id, name=stage_name, probability=probability,
                  position=position)
        )
    db.session.flush()
    return pipeline


def ensure_default_pipeline(account_id: int) -> Pipeline:
    """The account's default pipeline, created with the standard stages if missing. Call in a write."""
    pipeline = db.session.scalar(
        select(Pipeline).where(Pipeline.account_id == account_id).order_by(Pipeline.is_default.desc(), Pipeline.id)
    )
    if pipeline is None:
        pipeline = _create_pipeline(account_id, "Sales pipeline", DEFAULT_STAGES, is_default=True)
    return pipeline


def winning_stage(pipeline: Pipeline) -> Stage:
    """"Closed won", or else the stage with 100 % win probability, or else the most likely one (L9)."""
    stages = list(pipeline.stages)
    for stage in stages:
        if stage.name.lower() == CLOSED_WON.lower():
            return stage
    certain = [stage for stage in stages if stage.probability == 100]
    if certain:
        return certain[0]
    if not stages:
        stage = Stage(account_id=pipeline.account_id, pipeline_id=pipeline.id, name=CLOSED_WON, probability=100)
        db.session.add(stage)
        db.session.flush()
        return stage
    return max(stages, key=lambda s: (s.probability, s.position))


def resolve_deal_stage(account_id: int, pipeline_id: int | None, stage_id: int | None) -> tuple[Pipeline, Stage]:
    """Where a link's deals go: its chosen pipeline and stage, or the defaults of L9. Call in a write."""
    pipeline = None
    if pipeline_id is not None:
        pipeline = db.session.scalar(
            select(Pipeline).where(Pipeline.id == pipeline_id, Pipeline.account_id == account_id)
        )
    if pipeline is None:
        pipeline = ensure_default_pipeline(account_id)
    if stage_id is not None:
        stage = db.session.scalar(select(Stage).where(Stage.id == stage_id, Stage.pipeline_id == pipeline.id))
        if stage is not None:
            return pipeline, stage
    return pipeline, winning_stage(pipeline)


def validate_pipeline_choice(account_id: int, pipeline_id: int | None, stage_id: int | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if pipeline_id is None:
        if stage_id is not None:
            errors["stage_id"] = _("Choose a pipeline first, or leave both on the default.")
        return errors
    pipeline = db.session.scalar(select(Pipeline).where(Pipeline.id == pipeline_id, Pipeline.account_id == account_id))
    if pipeline is None:
        errors["pipeline_id"] = _("Choose one of your pipelines.")
    elif stage_id is not None and stage_id not in {stage.id for stage in pipeline.stages}:
        errors["stage_id"] = _("Choose a stage of the selected pipeline.")
    return errors


def create_pipeline(actor: Actor, name: str, stages_text: str) -> Pipeline:
    """A pipeline from a name and lines like "Proposal sent, 60"."""
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Enter a name for the pipeline.")
    elif len(name) > 100:
        errors["name"] = _("Use at most 100 characters.")
    stages: list[tuple[str, int]] = []
    for raw in (stages_text or "").splitlines():
        if not raw.strip():
            continue
        label, _sep, probability = raw.rpartition(",")
        label, probability = (label.strip(), probability.strip()) if _sep else (raw.strip(), "0")
        percent = parse_int(probability, minimum=0, maximum=100)
        if not label or percent is None or len(label) > 100:
            errors["stages"] = _("Write one stage per line as “name, win probability 0–100”.")
            break
        stages.append((label, percent))
    if not errors and not stages:
        errors["stages"] = _("Add at least one stage.")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    with write_transaction(db.session):
        ensure_default_pipeline(actor.account_id)
        pipeline = _create_pipeline(actor.account_id, name, stages, is_default=False)
        record_audit(actor, "pipeline.created", object_type="pipeline", object_id=pipeline.id, data={"name": name})
        return pipeline


# -- contacts, companies, deals (R2, R3) ----------------------------------------------------------


def find_or_create_contact(account_id: int, mode: str, email: str, *, first_name: str = "", last_name: str = "",
                           phone: str = "", language: str = "en") -> Contact:
    """R2: the contact with this email (case-insensitive), or a new one. Given details fill blanks and
    update the buyer's language, so later emails reach them in the language they last used."""
    email = email.strip().lower()
    contact = db.session.scalar(
        select(Contact).where(Contact.account_id == account_id, Contact.mode == mode, Contact.email == email)
    )
    if contact is None:
        contact = Contact(account_id=account_id, mode=mode, email=email)
        db.session.add(contact)
    contact.first_name = first_name or contact.first_name or ""
    contact.last_name = last_name or contact.last_name or ""
    contact.phone = phone or contact.phone or ""
    contact.language = language or contact.language
    db.session.flush()
    return contact


def find_or_create_company(account_id: int, mode: str, name: str) -> Company | None:
    name = (name or "").strip()
    if not name:
        return None
    company = db.session.scalar(
        select(Company).where(Company.account_id == account_id, Company.mode == mode,
                              func.lower(Company.name) == name.lower())
    )
    if company is None:
        company = Company(account_id=account_id, mode=mode, name=name)
        db.session.add(company)
        db.session.flush()
    return company


def create_deal(account_id: int, mode: str, *, name: str, amount_minor: int, currency: str, pipeline_id: int | None,
                stage_id: int | None, contact: Contact | None, company: Company | None) -> Deal:
    """R3: one deal per link payment, amount = total paid, in the link's pipeline and stage."""
    pipeline, stage = resolve_deal_stage(account_id, pipeline_id, stage_id)
    deal = Deal(account_id=account_id, mode=mode, name=name[:300], amount_minor=amount_minor, currency=currency,
                pipeline_id=pipeline.id, stage_id=stage.id, contact_id=contact.id if contact else None,
                company_id=company.id if company else None)
    db.session.add(deal)
    db.session.flush()
    return deal


def add_timeline(account_id: int, kind: TimelineKind, *, subjects: list[tuple[str, int | None]],
                 payment_id: int | None = None, data: dict | None = None, actor_id: int | None = None,
                 at: datetime | None = None) -> None:
    """R6: one entry per subject (payment, contact, company, deal, subscription) that the activity concerns,
    dated `at` (default: when written)."""
    kind = TimelineKind(kind).value  # M5: only a known kind is stored (as its plain string)
    dated = {"created_at": at} if at is not None else {}
    for subject_type, subject_id in subjects:
        if subject_id is None:
            continue
        db.session.add(TimelineEntry(account_id=account_id, subject_type=subject_type, subject_id=subject_id,
                                     kind=kind, payment_id=payment_id, data=data or {}, actor_id=actor_id, **dated))


def payment_subjects(payment: Any) -> list[tuple[str, int | None]]:
    """Where payment activity shows (R6): the payment itself and its contact, company, deal, subscription."""
    return [("payment", payment.id), ("contact", payment.contact_id), ("company", payment.company_id),
            ("deal", payment.deal_id), ("subscription", payment.subscription_id)]
