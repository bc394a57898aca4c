"""Q6 on a live checkout through Stripe (K6): Kassa computes the tax (never Stripe Tax); the Payment Element's
amount and the PaymentIntent's amount are the total including the exclusive tax of the buyer's country, as the
server re-priced it. Through the recording fixture transport (every request checked, K13)."""

from __future__ import annotations

from kassa.services.accounts.tax_rates import create_rate
from kassa.services.links.link_drafts import ItemDraft
from tests.factories import make_merchant
from tests.support.checkout import start_checkout
from tests.support.checkout_flow import actor_for, all_payments, attempts, make_link, soup_of
from tests.web.test_k6_live_checkout import (  # noqa: F401 (app_config, transport: the fixtures K6 uses)
    CARD_PM,
    CHARGE,
    EMPTY_LIST,
    TXN,
    _connect,
    _form,
    _intent,
    _key_of,
    app_config,
    transport,
)


def _amount_sent(recorded) -> list[str]:
    return [dict(sent.params).get("amount") for sent in recorded.sent
            if (sent.method, sent.path) == ("POST", "/v1/payment_intents")]


def test_q6_live_payment_intent_amount_includes_the_tax(client, app, transport):  # noqa: F811
    owner = make_merchant(company="Live Roastery", country="NL")
    create_rate(actor_for(owner), name="BTW hoog", percentage="21", inclusive=False, countries="NL")
    link = make_link(owner, items=[ItemDraft(name="Beans", unit_price="25.00", quantity="1")], collect_tax=True)
    _connect(owner.account_id)
    path = start_checkout(client, link.slug, mode="live")
    # The billing country (the merchant's until the buyer says) decides: 25.00 + 21 % = 30.25.
    assert soup_of(client.get(path)).select_one("#f-payment_method")["data-amount"] == "3025"
    updated = soup_of(client.post(path, data={"billing_country": "US", "action": "update"}))
    assert updated.select_one("#f-payment_method")["data-amount"] == "2500"  # no rate for the US
    assert transport.sent == []  # re-pricing talks to no one

    key = _key_of(path)
    intent = _intent(key, owner.account_id, "succeeded", amount=3025,
                     latest_charge={**CHARGE, "amount": 3025, "balance_transaction": {**TXN, "amount": 3025}},
                     metadata={"kassa_account": str(owner.account_id), "kassa_key": key,
                               "kassa_request": "3025|USD|pm_1Visa|0"})
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(200, intent)],
    })
    assert client.post(path, data=_form(billing_country="NL")).status_code == 303
    assert _amount_sent(transport) == ["3025"]
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.net_minor, payment.buyer_country) == (
        3025, 525, 2500, "NL")
    assert [a.amount_minor for a in attempts()] == [3025]
