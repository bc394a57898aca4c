"""Workflow criteria beyond the payments index's filter (W4, W8): "renewal payments only" (a subscription's
charges after its first payment: E1 notifies only the first) and "the buyer's contact is in segment X"
(`segments.member_clause`, so a segment means the same here as on its page)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, true

from kassa.extensions import db
from kassa.models import Payment, Segment, Subscription, Workflow
from kassa.services.backoffice import segments


def renewal_clause() -> ColumnElement:
    return and_(Payment.source == "subscription", Payment.subscription_id.is_not(None),
                ~exists().where(Subscription.first_payment_id == Payment.id))


def extra_clause(workflow: Workflow) -> ColumnElement:
    clauses = []
    if workflow.renewals_only:
        clauses.append(renewal_clause())
    if workflow.segment_id is not None:
        segment = db.session.get(Segment, workflow.segment_id)
        if segment is None or segment.account_id != workflow.account_id:
            clauses.append(false())
        else:
            clauses.append(segments.payment_contact_in(segment))
    return and_(true(), *clauses)
