"""A link frozen at the moment a buyer opened it (L17, P5): the checkout session keeps this snapshot, and the
payment copies its items from it, so editing the link later changes neither.

Read by checkout (to show and charge) and by payments (to record what was sold), hence here in links,
below both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from kassa.extensions import db
from kassa.models import CONTACT_FIELDS, Account, PaymentLink, TaxRate
from kassa.order_summary import NO_CHOICES, BuyerChoices, OrderItem, OrderSummary, build_order_summary
from kassa.processors.base import bank_debit_for
from kassa.tax import TaxContext, TaxRateSpec


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
        # Q7: the terms the buyer must agree to (the link's own address, else the account's), or None
        "terms_url": (link.terms_url or link.account.terms_url or None) if link.require_terms else None,
        "pipeline_id": link.pipeline_id,
        "stage_id": link.stage_id,
        # Q8: the questions asked, as they were when the buyer opened the link
        "custom_fields": list(link.custom_fields or []),
        # Q6: the account's active rates as they are now, frozen with the link (absent: no tax collected)
        **({"tax": account_tax_context(link.account_id).stored()} if link.collect_tax else {}),
        "trial_days": link.trial_days or 0,  # Q9
    }


def account_tax_context(account_id: int) -> TaxContext:
    """Q6: the account's active tax rates (oldest first) and its country (for the reverse charge)."""
    rates = db.session.scalars(select(TaxRate).where(TaxRate.account_id == account_id, TaxRate.active.is_(True))
                               .order_by(TaxRate.id)).all()
    account = db.session.get(Account, account_id)
    return TaxContext(rates=tuple(TaxRateSpec(id=rate.id, name=rate.name, percentage_bp=rate.percentage_bp,
                                              inclusive=rate.inclusive, countries=tuple(rate.countries or ()))
                                  for rate in rates),
                      merchant_country=account.country if account else "")


def snapshot_tax(snapshot: dict[str, Any]) -> TaxContext | None:
    """Q6: the tax context a checkout was frozen with, or None when its link doesn't collect tax."""
    return TaxContext.from_stored(snapshot.get("tax"))


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
    tax = snapshot_tax(snapshot)
    if tax is not None and not choices.country:  # Q6: until the buyer says, the merchant's country
        choices = replace(choices, country=tax.merchant_country)
    return build_order_summary(snapshot_items(snapshot), snapshot["currency"], choices, tax,
                               trial_days=int(snapshot.get("trial_days") or 0))
