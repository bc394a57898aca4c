"""Kassa's objects in Stripe's shape (I3): Stripe's field names, id prefixes, statuses, lowercase currencies and
Unix times, so the official `stripe` client reads them unchanged. One Kassa payment is both a PaymentIntent
(`pi_…`) and its charge (`ch_…`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from kassa.clock import local_midnight_utc, now
from kassa.forms import parse_id
from kassa.models import (
    CheckoutSession,
    CheckoutStatus,
    Contact,
    Dispute,
    DisputeStatus,
    Export,
    LedgerEntry,
    Mode,
    Payment,
    PaymentLink,
    PaymentStatus,
    Payout,
    Product,
    Refund,
    RefundReason,
    Subscription,
)
from kassa.services.links.links import sign_test_link
from kassa.services.links.snapshots import snapshot_summary
from kassa.urls import absolute_url

PREFIXES = {"customer": "cus_", "subscription": "sub_", "payout": "po_", "balance_transaction": "txn_",
            "product": "prod_", "payment_link": "plink_", "payment_intent": "pi_", "charge": "ch_", "refund": "re_", "dispute": "dp_",
            "checkout_session": "cs_", "export": "exp_"}


def object_id(kind: str, number: int) -> str:
    return f"{PREFIXES[kind]}{number}"


def parse_object_id(kind: str, text: object) -> int | None:
    """The Kassa id in a Stripe-shaped id of this kind (`pi_42` → 42); None for anything else."""
    prefix = PREFIXES[kind]
    if not isinstance(text, str) or not text.startswith(prefix):
        return None
    return parse_id(text[len(prefix):])


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def payment_link(link: PaymentLink, mode: str) -> dict[str, Any]:
    """For a test key, `url` is the link's test URL (H7), whose checkouts are test payments, as a test-mode
    Stripe link's are; for a live key, the public URL."""
    redirect = link.confirmation == "redirect" and link.redirect_url
    url = (absolute_url("checkout.start", slug=link.slug) if mode == Mode.LIVE.value
           else absolute_url("checkout.start_test", slug=link.slug, signature=sign_test_link(link)))
    return {
        "id": object_id("payment_link", link.id), "object": "payment_link", "active": link.is_active,
        "url": url, "currency": link.currency.lower(),
        "livemode": mode == Mode.LIVE.value, "metadata": dict(link.metadata_json or {}),
        "after_completion": ({"type": "redirect", "redirect": {"url": link.redirect_url}} if redirect
                             else {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": None}}),
        "allow_promotion_codes": False, "billing_address_collection": "required" if link.collect_billing_address
        else "auto",
    }


_INTENT_STATUS = {
    PaymentStatus.SUCCEEDED.value: "succeeded",
    PaymentStatus.PROCESSING.value: "processing",
    # Stripe puts a declined PaymentIntent back to requires_payment_method, its error in last_payment_error.
    PaymentStatus.FAILED.value: "requires_payment_method",
    PaymentStatus.INCOMPLETE.value: "requires_action",
}
_METHOD_TYPES = {"card": "card", "ach": "us_bank_account", "sepa": "sepa_debit"}


# A list page builds up to 100 of these per call: the enum values looked up once, not per field.
_FAILED, _SUCCEEDED, _LIVE = PaymentStatus.FAILED.value, PaymentStatus.SUCCEEDED.value, Mode.LIVE.value


def payment_intent(payment: Payment) -> dict[str, Any]:
    """A payment (an object, or a row of resources.INTENT_COLUMNS) as a PaymentIntent."""
    status = payment.status
    failed = status == _FAILED
    return {
        "id": f"pi_{payment.id}", "object": "payment_intent",
        "amount": payment.amount_minor,
        "amount_received": payment.amount_minor if status == _SUCCEEDED else 0,
        "currency": payment.currency.lower(), "status": _INTENT_STATUS.get(status, status),
        "created": _unix(payment.created_at), "livemode": payment.mode == _LIVE,
        "latest_charge": f"ch_{payment.id}", "receipt_email": payment.buyer_email,
        "payment_method_types": [_METHOD_TYPES.get(payment.method, payment.method)],
        "description": None, "metadata": {},
        "last_payment_error": ({"code": payment.failure_code, "message": payment.failure_message} if failed else None),
        "amount_refunded": payment.refund_reserved_minor,  # Kassa's: Stripe keeps it on the charge
    }


_CHARGE_STATUS = {PaymentStatus.SUCCEEDED.value: "succeeded", PaymentStatus.PROCESSING.value: "pending",
                  PaymentStatus.FAILED.value: "failed", PaymentStatus.INCOMPLETE.value: "pending"}


def charge(payment: Payment) -> dict[str, Any]:
    """The payment as its charge: what was collected, refunded and disputed, and the card or bank it came from."""
    paid = payment.status == PaymentStatus.SUCCEEDED.value
    kind = _METHOD_TYPES.get(payment.method, payment.method)
    details: dict[str, Any] = {"type": kind}
    if payment.method == "card":
        details["card"] = {"brand": payment.card_brand, "last4": payment.card_last4,
                           "exp_month": payment.card_exp_month, "exp_year": payment.card_exp_year,
                           "funding": payment.card_funding}
    else:
        details[kind] = {"last4": payment.bank_last4}
    return {
        "id": object_id("charge", payment.id), "object": "charge", "amount": payment.amount_minor,
        "amount_captured": payment.amount_minor if paid else 0, "amount_refunded": payment.refunded_minor,
        "refunded": paid and payment.refunded_minor >= payment.amount_minor, "captured": paid, "paid": paid,
        "currency": payment.currency.lower(), "status": _CHARGE_STATUS.get(payment.status, payment.status),
        "payment_intent": object_id("payment_intent", payment.id), "created": _unix(payment.created_at),
        "livemode": payment.mode == Mode.LIVE.value, "disputed": payment.dispute_created_at is not None,
        "receipt_email": payment.buyer_email, "receipt_number": payment.receipt_number and str(payment.receipt_number),
        "billing_details": {"email": payment.buyer_email, "name": payment.buyer_name or None,
                            "phone": payment.buyer_phone or None},
        "payment_method_details": details, "failure_code": payment.failure_code,
        "failure_message": payment.failure_message, "description": None, "metadata": {},
    }


_STRIPE_REFUND_REASONS = {RefundReason.DUPLICATE.value, RefundReason.FRAUDULENT.value,
                          RefundReason.REQUESTED_BY_CUSTOMER.value}


def refund(row: Refund) -> dict[str, Any]:
    return {
        "id": object_id("refund", row.id), "object": "refund", "amount": row.amount_minor,
        "currency": row.currency.lower(), "charge": object_id("charge", row.payment_id),
        "payment_intent": object_id("payment_intent", row.payment_id), "status": row.status,
        "reason": row.reason if row.reason in _STRIPE_REFUND_REASONS else None,
        "created": _unix(row.created_at), "metadata": {},
        "failure_reason": row.failure_code if row.status == "failed" else None,
    }


def _dispute_status(dispute: Dispute) -> str:
    if not dispute.is_inquiry:
        return dispute.status
    # An inquiry (retrieval request) is Stripe's "warning_…" dispute.
    if dispute.status in (DisputeStatus.WON.value, DisputeStatus.LOST.value):
        return "warning_closed"
    return f"warning_{dispute.status}"


def dispute(row: Dispute, payment: Payment) -> dict[str, Any]:
    submitted = row.submitted_at is not None
    return {
        "id": object_id("dispute", row.id), "object": "dispute", "amount": row.amount_minor,
        "currency": row.currency.lower(), "charge": object_id("charge", row.payment_id),
        "payment_intent": object_id("payment_intent", row.payment_id), "reason": row.reason,
        "status": _dispute_status(row), "created": _unix(row.created_at),
        "livemode": payment.mode == Mode.LIVE.value, "is_charge_refundable": False, "metadata": {},
        "balance_transactions": [],
        "evidence_details": {
            "due_by": _unix(row.evidence_due_by), "has_evidence": submitted,
            "past_due": not submitted and row.is_open and row.evidence_due_by <= now(),
            "submission_count": 1 if submitted else 0,
        },
    }


def customer(contact: Contact) -> dict[str, Any]:
    name = f"{contact.first_name} {contact.last_name}".strip()
    return {"id": object_id("customer", contact.id), "object": "customer", "email": contact.email,
            "name": name or None, "phone": contact.phone or None, "created": _unix(contact.created_at),
            "livemode": contact.mode == Mode.LIVE.value, "metadata": {}}


def list_envelope(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


_SUBSCRIPTION_STATUS = {"cancelled": "canceled", "completed": "canceled"}
_INTERVAL_OF = {"weekly": ("week", 1), "biweekly": ("week", 2), "monthly": ("month", 1), "quarterly": ("month", 3),
                "semiannual": ("month", 6), "yearly": ("year", 1), "biennial": ("year", 2)}


def subscription(row: Subscription) -> dict[str, Any]:
    """Stripe's Subscription: `status` (`trialing`, `active`, `past_due`, `canceled` — a fixed term that ran its
    course is `canceled` too, Kassa's `completed` in `kassa_status`), `cancel_at_period_end`, `canceled_at`,
    `ended_at`, `current_period_end` (the next charge), and Kassa's `amount` per period and its `interval`."""
    interval, count = _INTERVAL_OF.get(row.frequency, (row.frequency, 1))
    return {
        "id": object_id("subscription", row.id), "object": "subscription",
        "status": _SUBSCRIPTION_STATUS.get(row.status, row.status), "kassa_status": row.status,
        "customer": object_id("customer", row.contact_id), "currency": row.currency.lower(),
        "amount": row.amount_minor, "interval": interval, "interval_count": count,
        "created": _unix(row.created_at), "livemode": row.mode == Mode.LIVE.value,
        "cancel_at_period_end": bool(row.cancel_at_period_end), "canceled_at": _unix(row.cancelled_at),
        "ended_at": _unix(row.ended_at), "current_period_end": _unix(row.next_charge_at),
        "latest_invoice": None, "metadata": {},
    }


_PAYOUT_STATUS = {"pending": "pending", "in_transit": "in_transit", "paid": "paid", "failed": "failed",
                  "canceled": "canceled"}


def _day_unix(day: date | None) -> int | None:
    return int(local_midnight_utc(day, "UTC").timestamp()) if day is not None else None


def payout(row: Payout) -> dict[str, Any]:
    return {
        "id": object_id("payout", row.id), "object": "payout", "amount": row.amount_minor,
        "currency": row.currency.lower(), "status": _PAYOUT_STATUS.get(row.status, "pending"),
        "arrival_date": _day_unix(row.arrival_date), "created": _unix(row.created_at),
        "livemode": row.mode == Mode.LIVE.value, "failure_message": row.failure_message,
        "method": "standard", "type": "bank_account", "automatic": True, "metadata": {},
    }


_SOURCES = (("payout_id", "payout"), ("dispute_id", "dispute"), ("refund_id", "refund"), ("payment_id", "charge"))
_TXN_TYPES = {"charge": "charge", "fee": "stripe_fee", "refund": "refund", "refund_failure": "refund_failure",
              "dispute": "adjustment", "dispute_fee": "stripe_fee", "dispute_reversal": "adjustment",
              "payout": "payout", "payout_failure": "payout_failure", "adjustment": "adjustment"}


def balance_transaction(row: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as Stripe's BalanceTransaction: `amount` signed (money in positive), `type` in Stripe's
    words and Kassa's own in `reporting_category`, `source` the charge, refund, dispute or payout it comes from."""
    source = next((object_id(kind, getattr(row, column)) for column, kind in _SOURCES if getattr(row, column)), None)
    return {
        "id": object_id("balance_transaction", row.id), "object": "balance_transaction",
        "amount": row.amount_minor, "net": row.amount_minor, "fee": 0, "currency": row.currency.lower(),
        "type": _TXN_TYPES.get(row.type, "adjustment"), "reporting_category": row.type,
        "created": _unix(row.occurred_at), "available_on": _day_unix(row.available_on),
        "status": "available" if row.available_on <= now().date() else "pending",
        "description": row.description or None, "source": source,
    }


def product(row: Product, mode: str) -> dict[str, Any]:
    interval, count = _INTERVAL_OF.get(row.frequency, (None, None))
    return {
        "id": object_id("product", row.id), "object": "product", "name": row.name,
        "description": row.description or None, "active": row.archived_at is None,
        "created": _unix(row.created_at), "updated": _unix(row.updated_at), "livemode": mode == Mode.LIVE.value,
        "metadata": {"sku": row.sku} if row.sku else {},
        "unit_amount": row.unit_amount_minor, "currency": row.currency.lower(),
        "recurring": {"interval": interval, "interval_count": count} if interval else None,
    }


def checkout_session_status(row: CheckoutSession) -> str:
    if row.status == CheckoutStatus.COMPLETED.value:
        return "complete"
    if row.status == CheckoutStatus.EXPIRED.value or row.expires_at <= now():
        return "expired"
    return "open"


def checkout_session(row: CheckoutSession, payment: Payment | None) -> dict[str, Any]:
    """Stripe's Checkout Session: `url` (what the buyer opens, while the session is open; Stripe's is null after),
    `status` open/complete/expired, `payment_status` paid/unpaid/no_payment_required (a free trial started),
    `amount_total` (the link's total with its default choices until paid, then what was paid)."""
    status = checkout_session_status(row)
    snapshot = row.snapshot or {}
    paid = payment is not None and payment.status == PaymentStatus.SUCCEEDED.value
    if paid:
        payment_status = "paid"
    elif status == "complete" and payment is None:
        payment_status = "no_payment_required"
    else:
        payment_status = "unpaid"
    summary = snapshot_summary(snapshot)
    total = payment.amount_minor if payment is not None else summary.due_today.amount_minor
    redirect = snapshot.get("redirect_url") if snapshot.get("confirmation") == "redirect" else None
    return {
        "id": object_id("checkout_session", row.id), "object": "checkout.session",
        "url": absolute_url("checkout.page", token=row.token) if status == "open" else None,
        "payment_link": object_id("payment_link", row.link_id) if row.link_id else None,
        "customer_email": snapshot.get("email"), "status": status, "payment_status": payment_status,
        "amount_total": total, "currency": str(snapshot.get("currency") or "").lower(),
        "payment_intent": object_id("payment_intent", payment.id) if payment is not None else None,
        "success_url": redirect or None, "created": _unix(row.created_at), "expires_at": _unix(row.expires_at),
        "livemode": row.mode == Mode.LIVE.value, "mode": "subscription" if summary.has_recurring else "payment", "metadata": dict(row.metadata_json or {}),
    }


def export(row: Export, mode: str) -> dict[str, Any]:
    """Kassa's own object: a payments export built in the background, its progress, and its file once done."""
    done = row.status == "done"
    expired = row.expires_at is not None and row.expires_at <= now()
    total = row.rows_total
    return {
        "id": object_id("export", row.id), "object": "kassa.export", "status": row.status,
        "format": row.file_format, "filter": row.params.get("filter"), "rows_done": row.rows_done,
        "rows_total": total, "progress": (100 if done else min(99, row.rows_done * 100 // total) if total else 0),
        "size_bytes": row.size_bytes if done else None, "created": _unix(row.created_at),
        "finished_at": _unix(row.finished_at), "expires_at": _unix(row.expires_at),
        "file": f"/kassa/exports/{object_id('export', row.id)}/file" if done and not expired else None,
        "livemode": mode == Mode.LIVE.value,
    }
