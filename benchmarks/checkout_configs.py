"""Q12: the payment-link configurations whose checkout pages must each stay under 30 KB of HTML+CSS+JS.

`checkout_bench` reports `checkout_page_bytes` for each of them and `tests/web/test_q12_checkout_size.py`
asserts the budget on both databases, from the same definitions (this module), so the benchmark and the test
can never measure different pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kassa import secrets_box
from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import PaymentLink, StripeConnection
from kassa.services.accounts import tax_rates
from kassa.services.links import promo_codes
from kassa.services.links.custom_fields import FieldDraft
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from kassa.services.links.links import create_link, sign_test_link

BUDGET_BYTES = 30 * 1024

ALL_FIELDS = {"company": "required", "first_name": "required", "last_name": "required", "phone": "required"}
# Q8: the most custom fields a link can have, every type, required and optional.
CUSTOM_FIELDS = [FieldDraft("Grind", "dropdown", "Whole beans, Filter, Espresso", "1", "1"),
                 FieldDraft("Cups a day", "number", required="1"), FieldDraft("Gift note", receipt="1"),
                 FieldDraft("Roast", "dropdown", "Light\nDark"), FieldDraft("Order reference", "text", required="1")]
TERMS = {"require_terms": True, "terms_url": "https://northwind.example/terms"}  # Q7


@dataclass(frozen=True)
class Configuration:
    draft: dict = field(default_factory=dict)  # LinkDraft fields besides name, currency and items
    items: int = 1
    recurring: bool = False
    live_stripe: bool = False  # K6: a live checkout of an account connected to Stripe (the Payment Element)
    # Q10: the bank debit follows the link's currency (EUR: SEPA Direct Debit, USD: ACH); None = the shop's.
    currency: str | None = None
    promo: bool = False  # Q2: the account has an active promo code for this link ("Add promo code" shows)


CONFIGURATIONS: dict[str, Configuration] = {
    "card_only": Configuration({"collect_billing_address": False}),
    "card": Configuration(),  # a new link's defaults: card and billing address
    "card_ach": Configuration({"allow_ach": True}, currency="USD"),
    "card_sepa": Configuration({"allow_ach": True}, currency="EUR"),
    "shipping": Configuration({"collect_billing_address": False, "collect_shipping_address": True}),
    "billing_shipping": Configuration({"allow_ach": True, "collect_shipping_address": True}),
    "recurring": Configuration(recurring=True),
    # Q9: a free trial (nothing due today: "Free for 14 days, then …", the card saved). Not in `everything`:
    # a trial needs a recurring item, and recurring items rule out the bank debit `everything` turns on.
    "recurring_trial": Configuration({"trial_days": "14"}, recurring=True, currency="EUR"),
    "live_stripe": Configuration({"collect_shipping_address": True}, live_stripe=True),
    "everything": Configuration({"allow_ach": True, "collect_shipping_address": True, "fields": ALL_FIELDS,
                                 "custom_fields": CUSTOM_FIELDS, "collect_tax": True, **TERMS}, items=3,
                                currency="EUR", promo=True),
    "everything_ach": Configuration({"allow_ach": True, "collect_shipping_address": True, "fields": ALL_FIELDS},
                                    items=3, currency="USD", promo=True),
}


def _items(config: Configuration, currency: str) -> list[ItemDraft]:
    frequency = "monthly" if config.recurring else "one_time"
    return [ItemDraft(name=f"Item {i + 1} with a descriptive name", unit_price=f"{24 + i}.50", currency=currency,
                      description="Whole beans, roasted this week, shipped within two working days.",
                      frequency=frequency, quantity=str(i + 1)) for i in range(config.items)]


def create_configuration_links(actor: Actor, currency: str) -> dict[str, tuple[PaymentLink, bool]]:
    """One link per configuration for the actor's account: name → (link, live). Connects the account to Stripe
    in live mode (placeholder keys: the page is only rendered, nothing is charged) for `live_stripe`."""
    links = {}
    for name, config in CONFIGURATIONS.items():
        link_currency = config.currency or currency
        draft = LinkDraft(name=f"Q12 {name}", currency=link_currency, items=_items(config, link_currency),
                          **config.draft)
        if draft.collect_tax and not tax_rates.account_rates(actor.account_id):  # Q6: a rate to apply
            tax_rates.create_rate(actor, name="BTW hoog", percentage="21", inclusive=False, countries="NL, BE")
        links[name] = (create_link(actor, draft, "en"), config.live_stripe)
    promo_links = [str(links[name][0].id) for name, config in CONFIGURATIONS.items() if config.promo]
    if promo_links:  # Q2: a code limited to these links, so only their pages show the promo field
        promo_codes.create_code(actor, {"code": "Q12PROMO", "kind": "percent", "percent": "10",
                                        "link_ids": promo_links}, "en")
    if any(config.live_stripe for config in CONFIGURATIONS.values()):
        with write_transaction(db.session) as session:
            session.add(StripeConnection(
                account_id=actor.account_id, mode="live", secret_key_encrypted=secrets_box.encrypt("sk_live_q12"),
                secret_key_last4="_q12", publishable_key="pk_live_q12placeholder", stripe_account_id="acct_q12",
                stripe_account_name="Q12", country="NL", default_currency=currency, connected_at=now()))
    return links


def start_path(link: PaymentLink, live: bool) -> str:
    """Where a buyer starts: the public URL for a live checkout, the signed test URL otherwise (H7)."""
    return f"/pay/{link.slug}" if live else f"/pay/{link.slug}/test/{sign_test_link(link)}"


ASSET = re.compile(rb'(?:href|src)="(/assets/[^"]+)"')


def page_bytes(get: Callable[[str], bytes], page_path: str) -> dict[str, int]:
    """HTML, CSS and JS bytes (uncompressed) of a checkout page: `get(path)` returns a response body. Only
    Kassa's own bytes: a live Stripe page also loads Stripe.js from Stripe's origin, which no budget of ours
    can count."""
    html = get(page_path)
    sizes = {"html": len(html), "css": 0, "js": 0}
    for asset in ASSET.findall(html):
        path = asset.decode().replace("&amp;", "&")
        sizes["css" if ".css" in path else "js"] += len(get(path))
    sizes["total"] = sizes["html"] + sizes["css"] + sizes["js"]
    return sizes
