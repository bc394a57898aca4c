"""Q5: a link's usage limit, counted like seats.

A live checkout takes a seat when the buyer confirms (in the transaction that writes the payment attempt,
before the processor is called): a conditional UPDATE that succeeds only while a seat is free, so however many
buyers confirm at once, at most `usage_limit` of them are ever charged. A decline or a failure gives the seat
back; a completed payment keeps it and counts, and the payment that completes the last seat deactivates the
link in the transaction that records it. Test checkouts take no seats (a merchant trying the link uses none).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, or_, update

from kassa.models import LinkStatus, PaymentLink


def take_seat(session, link_id: int, at: datetime) -> bool:
    """One seat of a limited link for a payment about to be charged; False when none is free (or the link has
    ended or was deactivated meanwhile). A link without a limit needs no seat: True, nothing written."""
    link = session.get(PaymentLink, link_id)
    if link is None or link.usage_limit is None:
        return True
    taken = session.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id, PaymentLink.status == LinkStatus.ACTIVE.value,
               PaymentLink.usage_limit.is_not(None), PaymentLink.usage_reserved < PaymentLink.usage_limit,
               or_(PaymentLink.ends_at.is_(None), PaymentLink.ends_at > at))
        .values(usage_reserved=PaymentLink.usage_reserved + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def give_back_seat(session, link_id: int | None) -> None:
    """The charge didn't happen (declined, failed): the seat is free for the next buyer."""
    if link_id is None:
        return
    session.execute(
        update(PaymentLink).where(PaymentLink.id == link_id, PaymentLink.usage_reserved > 0)
        .values(usage_reserved=PaymentLink.usage_reserved - 1)
        .execution_options(synchronize_session=False)
    )


def count_completed(session, link_id: int | None, at: datetime) -> None:
    """A payment on a seat completed: counted; the one that fills the limit deactivates the link."""
    if link_id is None:
        return
    full = (PaymentLink.usage_limit.is_not(None)) & (PaymentLink.usage_count + 1 >= PaymentLink.usage_limit)
    session.execute(
        update(PaymentLink).where(PaymentLink.id == link_id)
        .values(usage_count=PaymentLink.usage_count + 1,
                status=case((full, LinkStatus.INACTIVE.value), else_=PaymentLink.status),
                limit_reached_at=case((full, at), else_=PaymentLink.limit_reached_at))
        .execution_options(synchronize_session=False)
    )
