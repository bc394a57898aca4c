"""Segments of contacts (W3, W8): a name and a filter over payments in the payments index's own language (W5,
`payment_filters`: the same properties, dispute ones included, D7).

Who is in a segment: a contact of the account with at least one payment matching the filter — or one a
workflow added (`SegmentMember` "added") — and not one a workflow removed since ("removed"; a later add puts it
back). A segment without conditions matches no payment: it holds only the contacts workflows add.
Workflows (their add/remove actions, their "contact is in segment" criterion) and exports use this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, and_, delete, exists, false, func, or_, select

from kassa.actor import Actor
from kassa.clock import account_today, now
from kassa.database import lock_one, parse_id, write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import Account, Contact, Payment, Segment, SegmentMember, Workflow
from kassa.pagination import NUMBERED_PAGE_SIZE as PAGE_SIZE  # a segment's contacts: numbered pages
from kassa.pagination import numbered_page
from kassa.services.backoffice.payment_filters import (
    Filter,
    FilterContext,
    dump_filter,
    filter_clause,
    parse_filter,
)
from kassa.services.platform.audit import record_audit

MAX_SEGMENTS = 100


def list_segments(account_id: int) -> list[Segment]:
    return list(db.session.scalars(select(Segment).where(Segment.account_id == account_id)
                                   .order_by(Segment.name, Segment.id)))


def get_segment(account_id: int, segment_id: Any) -> Segment:
    key = parse_id(segment_id)
    segment = db.session.get(Segment, key) if key else None
    if segment is None or segment.account_id != account_id:
        raise NotFound(_("Segment not found."))
    return segment


def groups_of(segment: Segment) -> Filter:
    return parse_filter(json.dumps(segment.criteria)) if segment.criteria else ()


def _context(account_id: int) -> FilterContext:
    account = db.session.get(Account, account_id)
    return FilterContext(timezone=account.timezone, today=account_today(account))


def member_clause(segment: Segment, contact_id=Contact.id) -> ColumnElement:
    """True for the contacts in the segment (`contact_id`: the contact column of the outer query; for a query
    over payments use `payment_contact_in`)."""
    groups = groups_of(segment)
    # Never correlated to an outer query's payments: the payments here are the contact's (any of them).
    matches = exists().where(Payment.account_id == segment.account_id, Payment.contact_id == contact_id,
                             filter_clause(groups, _context(segment.account_id))).correlate_except(Payment) \
        if groups else false()

    def marked(state: str):
        return exists().where(SegmentMember.segment_id == segment.id, SegmentMember.contact_id == contact_id,
                              SegmentMember.state == state)

    return or_(marked("added"), and_(matches, ~marked("removed")))


def payment_contact_in(segment: Segment) -> ColumnElement:
    """W8 as a workflow criterion: true for payments whose contact is in the segment."""
    return Payment.contact_id.in_(select(Contact.id).where(Contact.account_id == segment.account_id,
                                                           member_clause(segment)))


def members_query(segment: Segment):
    return select(Contact).where(Contact.account_id == segment.account_id, member_clause(segment))


def count_members(segment: Segment) -> int:
    return db.session.scalar(select(func.count()).select_from(
        select(Contact.id).where(Contact.account_id == segment.account_id, member_clause(segment)).subquery()))


def contains(segment_id: int | None, contact_id: int | None) -> bool:
    if segment_id is None or contact_id is None:
        return False
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        return False
    return db.session.scalar(select(exists().where(Contact.id == contact_id, Contact.account_id == segment.account_id,
                                                   member_clause(segment)))) or False


@dataclass
class MemberRow:
    """One contact of a segment with its payments' properties: how many succeeded, when the last one did and
    with which method, and what they paid (net of refunds) in each currency."""

    contact: Contact
    payments: int = 0
    last_paid_at: datetime | None = None
    last_method: str | None = None
    totals: list[tuple[int, str]] = field(default_factory=list)  # (amount_minor, currency)


def _paid():
    return and_(Payment.succeeded_at.is_not(None))


def member_page(segment: Segment, page: int) -> tuple[list[MemberRow], int]:
    """A page of members (by email) with their payment properties, and the number of members."""
    found = numbered_page(members_query(segment), (Contact.email, Contact.id), page, size=PAGE_SIZE)
    total, contacts = found.total, found.rows
    rows = {c.id: MemberRow(c) for c in contacts}
    if rows:
        for contact_id, currency, n, amount, last in db.session.execute(
                select(Payment.contact_id, Payment.currency, func.count(),
                       func.sum(Payment.amount_minor - Payment.refunded_minor), func.max(Payment.succeeded_at))
                .where(Payment.account_id == segment.account_id, Payment.contact_id.in_(rows), _paid())
                .group_by(Payment.contact_id, Payment.currency).order_by(Payment.currency)):
            row = rows[contact_id]
            row.payments += n
            row.totals.append((int(amount or 0), currency))
            if row.last_paid_at is None or (last is not None and last > row.last_paid_at):
                row.last_paid_at = last
        for contact_id, method in db.session.execute(
                select(Payment.contact_id, Payment.method)
                .where(Payment.account_id == segment.account_id, Payment.contact_id.in_(rows), _paid())
                .order_by(Payment.contact_id, Payment.succeeded_at.desc(), Payment.id.desc())):
            if rows[contact_id].last_method is None:
                rows[contact_id].last_method = method
    return list(rows.values()), total


def export_query(segment: Segment):
    """W8: one row per member and currency it paid in (a member who paid nothing: one row without amounts),
    for the export machinery: name parts, email, count, net total, currency, last payment, its method."""
    paid = (select(Payment.contact_id.label("contact_id"), Payment.currency.label("currency"),
                   func.count().label("n"), func.sum(Payment.amount_minor - Payment.refunded_minor).label("total"),
                   func.max(Payment.succeeded_at).label("last"))
            .where(Payment.account_id == segment.account_id, Payment.contact_id.is_not(None), _paid())
            .group_by(Payment.contact_id, Payment.currency).subquery())
    last_method = (select(Payment.method).where(Payment.contact_id == Contact.id, _paid())
                   .order_by(Payment.succeeded_at.desc(), Payment.id.desc()).limit(1).scalar_subquery())
    return (select(Contact.first_name, Contact.last_name, Contact.email, paid.c.n, paid.c.total, paid.c.currency,
                   paid.c.last, last_method)
            .outerjoin(paid, paid.c.contact_id == Contact.id)
            .where(Contact.account_id == segment.account_id, member_clause(segment))
            .order_by(Contact.email, Contact.id, paid.c.currency))


# -- create, edit, delete -----------------------------------------------------------------------------


def _checked(name: str, groups: Filter) -> tuple[str, list[Any]]:
    name = (name or "").replace("\x00", "").strip()
    if not name:
        raise ValidationFailed(_("Give the segment a name."), field="name")
    if len(name) > 120:
        raise ValidationFailed(_("Use at most %(n)d characters.", n=120), field="name")
    return name, json.loads(dump_filter(groups))


def create_segment(actor: Actor, name: str, groups: Filter) -> Segment:
    name, criteria = _checked(name, groups)
    with write_transaction(db.session) as session:
        if len(list_segments(actor.account_id)) >= MAX_SEGMENTS:
            raise ValidationFailed(_("You have %(n)d segments already; delete one first.", n=MAX_SEGMENTS),
                                   field="name")
        segment = Segment(account_id=actor.account_id, name=name, criteria=criteria)
        session.add(segment)
        session.flush()
        record_audit(actor, "segment.created", object_type="segment", object_id=segment.id)
        return segment


def update_segment(actor: Actor, segment_id: int, name: str, groups: Filter) -> Segment:
    name, criteria = _checked(name, groups)
    with write_transaction(db.session) as session:
        get_segment(actor.account_id, segment_id)
        segment = lock_one(session, Segment, segment_id)
        segment.name, segment.criteria = name, criteria
        record_audit(actor, "segment.updated", object_type="segment", object_id=segment.id)
        return segment


def workflows_using(segment: Segment) -> list[Workflow]:
    """Workflows whose criterion or add/remove action names this segment."""
    workflows = db.session.scalars(select(Workflow).where(Workflow.account_id == segment.account_id)
                                   .order_by(Workflow.name, Workflow.id))
    return [w for w in workflows if w.segment_id == segment.id
            or any(a.get("segment_id") == segment.id for a in w.actions or [])]


def delete_segment(actor: Actor, segment_id: int) -> str:
    """Refused while a workflow uses the segment (it would silently stop matching or acting)."""
    with write_transaction(db.session) as session:
        get_segment(actor.account_id, segment_id)
        segment = lock_one(session, Segment, segment_id)
        if users := workflows_using(segment):
            raise ValidationFailed(_("The workflow “%(name)s” uses this segment. Change it first.", name=users[0].name))
        name = segment.name
        session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
        session.delete(segment)
        record_audit(actor, "segment.deleted", object_type="segment", object_id=segment_id)
        return name


def mark(segment_id: int, contact_id: int, state: str, workflow_id: int | None) -> None:
    """W6 add/remove: in the caller's transaction; the latest action on a (segment, contact) wins."""
    member = db.session.get(SegmentMember, (segment_id, contact_id))
    if member is None:
        segment = db.session.get(Segment, segment_id)
        db.session.add(SegmentMember(segment_id=segment_id, contact_id=contact_id, account_id=segment.account_id,
                                     state=state, workflow_id=workflow_id, changed_at=now()))
    else:
        member.state, member.workflow_id, member.changed_at = state, workflow_id, now()
    db.session.flush()
