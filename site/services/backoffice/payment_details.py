"""Everything one payment's panel shows (P4–P6): amounts in both currencies, cards, actions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select

from kassa.extensions import db
from kassa.models import (
    Account,
    Company,
    Contact,
    Deal,
    Mandate,
    Payment,
    PaymentLink,
    Refund,
    Subscription,
    TimelineEntry,
    User,
)
from kassa.money import Money
from kassa.services.backoffice import payment_sources
from kassa.services.money.dispute_facts import deadline_info, latest_dispute, sent_evidence
from kassa.services.payments.invoices import invoice_label, payment_invoice
from kassa.services.payments.receipts import payment_summary
from kassa.services.payments.refunds import Refundability, refundable


def amounts(payment: Payment) -> dict[str, Any]:
    """P5: gross, fee and net in the payment's currency, and fee and net in the settlement currency too."""
    gross = Money(payment.amount_minor, payment.currency)
    fee = Money(payment.fee_minor, payment.currency)
    result: dict[str, Any] = {"gross": gross, "fee": fee, "net": gross - fee,
                              "refunded": Money(payment.refunded_minor, payment.currency),
                              "converted": payment.settlement_currency != payment.currency}
    if result["converted"]:
        result.update(
            settlement_fee=Money(payment.fee_settlement_minor, payment.settlement_currency),
            settlement_net=Money(payment.net_settlement_minor, payment.settlement_currency),
            rate=Decimal(payment.exchange_rate),
        )
    return result


def panel_context(payment: Payment, locale: str) -> dict[str, Any]:
    account = db.session.get(Account, payment.account_id)
    subscriptions = list(db.session.scalars(
        select(Subscription).where(Subscription.account_id == payment.account_id,
                                   or_(Subscription.first_payment_id == payment.id,
                                       Subscription.id == payment.subscription_id))
        .order_by(Subscription.id)
    ))
    history = list(db.session.scalars(
        select(TimelineEntry).where(TimelineEntry.account_id == payment.account_id,
                                    TimelineEntry.subject_type == "payment", TimelineEntry.subject_id == payment.id)
        .order_by(TimelineEntry.created_at.desc(), TimelineEntry.id.desc()).limit(200)
    ))
    refunds = list(db.session.scalars(select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)))
    invoice = payment_invoice(payment)
    actor_ids = {entry.actor_id for entry in history if entry.actor_id}
    actors = {user.id: user.name or user.email
              for user in db.session.scalars(select(User).where(User.id.in_(actor_ids)))} if actor_ids else {}
    return {
        "payment": payment,
        "account": account,
        "amounts": amounts(payment),
        "summary": payment_summary(payment),  # Q2/Q6: with the promo row and the tax it was charged
        "link": db.session.get(PaymentLink, payment.link_id) if payment.link_id else None,
        "contact": db.session.get(Contact, payment.contact_id) if payment.contact_id else None,
        "company": db.session.get(Company, payment.company_id) if payment.company_id else None,
        "deal": db.session.get(Deal, payment.deal_id) if payment.deal_id else None,
        "subscription": db.session.get(Subscription, payment.subscription_id) if payment.subscription_id else None,
        "subscriptions": subscriptions,
        "history": history,
        "actors": actors,
        "refunds": refunds,
        "invoice": invoice,
        "source": payment_sources.of(payment),  # V6: link, invoice, quote, subscription or manual, and its name
        "invoice_number": invoice_label(invoice) if invoice else None,
        "refundability": refundable(payment, account),
        "dispute": latest_dispute(payment.id),
        "dispute_deadline": deadline_info(latest_dispute(payment.id), account) if latest_dispute(payment.id) else None,
        "dispute_sent": sent_evidence(dispute) if (dispute := latest_dispute(payment.id)) else None,  # B5
        "has_mandate": db.session.scalar(select(Mandate.id).where(Mandate.payment_id == payment.id)) is not None,
        "locale": locale,
    }


def refund_dialog_context(payment: Payment, check: Refundability) -> dict[str, Any]:
    return {
        "check": check,
        "fee": Money(payment.fee_minor, payment.currency),
        "in_subscription": payment.subscription_id is not None,
        "reasons": ["requested_by_customer", "duplicate", "fraudulent", "other"],
    }
