"""Notifications, all in one place (M5): emails to the merchant (E1), payment-status emails to the buyer
(ACH processing / failed), and the in-app notifications behind the bell (X2: exports ready, …)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import force_locale
from sqlalchemy import func, select, update

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Notification, Payment, PaymentLink, Permission, User
from kassa.money import Money
from kassa.services.platform.mail import queue_email
from kassa.urls import absolute_url


def payment_team(account_id: int) -> list[User]:
    """Who hears about payments: active users who may manage payments (Super admins, Payments managers)."""
    users = db.session.scalars(
        select(User).where(User.account_id == account_id, User.is_active_user.is_(True)).order_by(User.id)
    )
    return [user for user in users if user.can(Permission.MANAGE_PAYMENTS)]


def _to_team(account: Account, kind: str, template: str, context: dict, related: tuple[str, int]) -> None:
    for user in payment_team(account.id):
        queue_email(kind=kind, to=[user.email], template=template, language=user.language or account.language,
                    context={**context, "account": account, "brand_color": account.brand_color},
                    account_id=account.id, related=related)


def notify_payment_received(payment: Payment) -> None:
    """E1: a payment came in (switchable). Subscription renewals don't call this: first payment only."""
    account = db.session.get(Account, payment.account_id)
    if not account.notification_enabled("payment_received"):
        return
    _to_team(account, "payment_received", "email/merchant_payment.html",
             {"payment": payment, "amount": Money(payment.amount_minor, payment.currency),
              "link": db.session.get(PaymentLink, payment.link_id) if payment.link_id else None},
             ("payment", payment.id))


def notify_link_paused(link: PaymentLink, declines: int) -> None:
    """The card-testing guard paused card payments on a link: the merchant must know right away."""
    account = db.session.get(Account, link.account_id)
    _to_team(account, "link_paused", "email/link_paused.html",
             {"link": link, "declines": declines, "until": link.card_paused_until,
              "links_url": absolute_url("links.index")}, ("payment_link", link.id))


def _to_buyer(payment: Payment, kind: str, template: str, **extra: Any) -> None:
    account = db.session.get(Account, payment.account_id)
    queue_email(kind=kind, to=[payment.buyer_email], template=template, language=payment.language,
                context={"payment": payment, "account": account, "brand_color": account.brand_color,
                         "amount": Money(payment.amount_minor, payment.currency), **extra},
                account_id=account.id, related=("payment", payment.id))


def notify_ach_processing(payment: Payment, *, pre_notification: str | None = None) -> None:
    """A bank debit was submitted: it takes a few business days; the receipt follows when it clears. A SEPA debit's
    email carries its pre-notification (Q10: amount, date of debit, mandate reference, creditor)."""
    _to_buyer(payment, "ach_processing", "email/ach_processing.html", pre_notification=pre_notification)


def notify_ach_failed(payment: Payment) -> None:
    _to_buyer(payment, "ach_failed", "email/ach_failed.html")


def notify_refund(payment: Payment, refund) -> None:
    """The buyer hears that money is on its way back, in their language (F3: cards days, ACH 5–10)."""
    account = db.session.get(Account, payment.account_id)
    queue_email(kind="refund", to=[payment.buyer_email], template="email/refund.html", language=payment.language,
                context={"payment": payment, "account": account, "brand_color": account.brand_color,
                         "amount": Money(refund.amount_minor, refund.currency),
                         "paid": Money(payment.amount_minor, payment.currency)},
                account_id=account.id, related=("payment", payment.id))


# -- in-app notifications (the bell) -----------------------------------------------------------------
# M5: these used to live in services/exports/exports.py, and showing the list marked everything read — a GET that
# wrote. Reading is now a GET that writes nothing; marking read is an explicit POST (mark_read).

RECENT_LIMIT = 50


def notify_in_app(account_id: int, user_id: int, text: str, url: str | None = None) -> Notification:
    """In the caller's transaction: one notification for one user."""
    note = Notification(account_id=account_id, user_id=user_id, text=text, url=url)
    db.session.add(note)
    return note


def notify_team_in_app(account_id: int, text: Callable[[], str], url: str | None = None) -> int:
    """B1: the bell of everyone who handles payments (disputes, failed renewals, failed payouts), each in their
    own language (`text` is called under it). In the caller's transaction, so an event applied once — the
    caller's own guard — notifies once. Returns how many notifications were added."""
    account = db.session.get(Account, account_id)
    team = payment_team(account_id)
    for user in team:
        with force_locale(user.language or account.language):
            notify_in_app(account_id, user.id, text()[:300], url)
    return len(team)


def recent(user_id: int, limit: int = RECENT_LIMIT) -> list[Notification]:
    """The user's latest notifications, newest first. Reads only."""
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.created_at.desc(), Notification.id.desc())
                                   .limit(limit)))


def unread_count(user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def mark_read(user_id: int, up_to_id: int | None = None) -> int:
    """Mark the user's unread notifications read — only those up to ``up_to_id`` when given (the newest one
    the user saw), so one that arrived after the page was shown stays unread. Returns how many."""
    condition = [Notification.user_id == user_id, Notification.read_at.is_(None)]
    if up_to_id is not None:
        condition.append(Notification.id <= up_to_id)
    with write_transaction(db.session) as session:
        return session.execute(update(Notification).where(*condition).values(read_at=now())).rowcount or 0
