"""A link frozen at the moment a buyer opened it (L17, P5): the checkout session keeps this snapshot, and the
payment copies its items from it, so editing the link later changes neither.

Read by checkout (to show and charge) and by payments (to record what was sold), hence here in links,
below both.
"""

from __future__ import annotations

from typing import Any

from kassa.models import CONTACT_FIELDS, PaymentLink
from kassa.order_summary import NO_CHOICES, BuyerChoices, OrderItem, OrderSummary, build_order_summary
from kassa.processors.base import bank_debit_for


def link_snapshot(link: PaymentLink) -> dict[str, Any]:
    """Everything the checkout needs from the link, frozen: editing the link later changes nothing here."""
    return {
        "link_id": link.id,
        "version": link.version,
        "currency": link.currency,
        "items": [
            {
                "name": item.name, "description": item.description, "unit_amount_minor": item.unit_amount_minor,
                "currency": item.currency, "quantity": item.quantity, "frequency": item.frequency,
                "term_type": item.term_type, "term_count": item.term_count, "product_id": item.product_id,
                # Q1, Q3, Q4: the line's pricing options, frozen with it
                "discount_type": item.discount_type or "", "discount_value": item.discount_value or 0,
                "quantity_adjustable": bool(item.quantity_adjustable), "quantity_min": item.quantity_min or 1,
                "quantity_max": item.quantity_max or 1, "custom_amount": bool(item.custom_amount),
                "amount_min_minor": item.amount_min_minor, "amount_max_minor": item.amount_max_minor,
            }
            for item in link.items
        ],
        "fields": {name: getattr(link, f"field_{name}") for name in CONTACT_FIELDS},
        "allow_card": link.allow_card,
        "allow_ach": link.allow_ach and not link.has_recurring,
        "collect_billing_address": link.collect_billing_address,
        "collect_shipping_address": link.collect_shipping_address,
        "confirmation": link.confirmation,
        "redirect_url": link.redirect_url,
        "pipeline_id": link.pipeline_id,
        "stage_id": link.stage_id,
        "trial_days": link.trial_days or 0,  # Q9
    }


def offered_methods(snapshot: dict[str, Any]) -> list[str]:
    """How the buyer can pay (Q10): card when the link takes cards; the bank debit of the link's currency (ACH for
    USD, SEPA Direct Debit for EUR, none otherwise) when it takes bank debits. Never empty: a link whose only
    method no longer applies to its currency is paid by card."""
    debit = bank_debit_for(snapshot["currency"]) if snapshot["allow_ach"] else None
    methods = [m for m, on in (("card", snapshot["allow_card"]), (debit, debit is not None)) if on]
    return methods or ["card"]


def snapshot_items(snapshot: dict[str, Any]) -> list[OrderItem]:
    return [OrderItem(**item) for item in snapshot["items"]]


def snapshot_summary(snapshot: dict[str, Any], choices: BuyerChoices = NO_CHOICES) -> OrderSummary:
    """What this frozen link costs with the buyer's choices (Q3 quantities, Q4 typed prices)."""
    return build_order_summary(snapshot_items(snapshot), snapshot["currency"], choices,
                               trial_days=int(snapshot.get("trial_days") or 0))
