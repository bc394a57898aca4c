"""Q3 on a live checkout through Stripe (K6): the Payment Element's amount follows the server's re-priced
total, and the PaymentIntent is created at confirm time for the server's total with the buyer's quantity —
never for what the page said. Through the recording fixture transport (every request checked, K13)."""

from __future__ import annotations

from kassa.services.links.link_drafts import ItemDraft
from tests.factories import make_merchant
from tests.support.checkout import start_checkout
from tests.support.checkout_flow import all_payments, attempts, field_errors, make_link, soup_of
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


def _live_shop():
    owner = make_merchant(company="Live Roastery")
    link = make_link(owner, items=[ItemDraft(name="Beans", unit_price="25.00", quantity="1", quantity_adjustable="1",
                                             quantity_min="1", quantity_max="4", discount_type="percent",
                                             discount_value="10")])
    _connect(owner.account_id)
    return owner, link


def _amount_sent(recorded) -> list[str]:
    return [dict(sent.params).get("amount") for sent in recorded.sent
            if (sent.method, sent.path) == ("POST", "/v1/payment_intents")]


def test_q3_live_payment_element_and_payment_intent_follow_the_servers_total(client, app, transport):  # noqa: F811
    owner, link = _live_shop()
    path = start_checkout(client, link.slug, mode="live")
    assert soup_of(client.get(path)).select_one("#f-payment_method")["data-amount"] == "2250"
    # The quantity changes: the re-priced page (what checkout.js reads) carries the Element's new amount.
    updated = soup_of(client.post(path, data={"qty_0": "3", "action": "update"}))
    assert updated.select_one("#summary-total")["data-minor"] == "6750"
    assert updated.select_one("#f-payment_method")["data-amount"] == "6750"
    assert transport.sent == []  # re-pricing talks to no one

    key = _key_of(path)
    intent = _intent(key, owner.account_id, "succeeded", amount=6750,
                     latest_charge={**CHARGE, "amount": 6750, "balance_transaction": {**TXN, "amount": 6750}},
                     metadata={"kassa_account": str(owner.account_id), "kassa_key": key,
                               "kassa_request": "6750|USD|pm_1Visa|0"})
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(200, intent)],
    })
    # A tampered quantity reaches no one.
    refused = client.post(path, data=_form(qty_0="40"))
    assert refused.status_code == 422 and "qty_0" in field_errors(refused) and _amount_sent(transport) == []
    assert client.post(path, data=_form(qty_0="3")).status_code == 303
    assert _amount_sent(transport) == ["6750"]
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.gross_minor, payment.discount_minor, payment.items[0].quantity) == (
        6750, 7500, 750, 3)
    assert [a.amount_minor for a in attempts()] == [6750]
