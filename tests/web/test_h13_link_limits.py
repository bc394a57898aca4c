"""H13 (part): links only in currencies the processor can settle, and a cap on a link's total.

Before, a link could be saved in any ISO currency (a payment in PLN for an account settling in EUR then failed
at the processor for every buyer) and with any total up to 10^11 minor units per line; now the link editor
refuses both at the field, says what to do, and keeps everything typed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import PaymentLink
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in
from tests.support.checkout import pay_with_card
from tests.support.links import create_link, errors_of, form_values, item_fields, link_form


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def _links() -> int:
    db.session.rollback()
    return len(db.session.scalars(select(PaymentLink.id)).all())


def test_h13_link_currency_the_processor_cannot_settle_is_refused_at_the_field(client, owner):
    """PLN is a real currency, but the sandbox can't settle it into the account's EUR: refused at the currency
    field with the currencies that work; the typed values stay; nothing is saved."""
    response = client.post("/links/new", data=link_form(currency="PLN", name="Polish order"))
    assert response.status_code == 422
    message = errors_of(response)["currency"]
    assert "PLN" in message and "EUR" in message and "USD" in message and "PLN," not in message
    values = form_values(response)
    assert values["currency"] == "PLN" and values["name"] == "Polish order"
    assert _links() == 0


def test_h13_link_in_a_settleable_currency_is_saved_and_paid(client, owner):
    """The control: USD converts into EUR in the sandbox, so the link saves and a buyer can pay it."""
    link = create_link(client, currency="USD")
    assert link.currency == "USD"
    assert pay_with_card(client, link.slug).status_code == 303


def test_h13_same_currency_as_the_account_works_outside_the_rate_table(client):
    """An account settling in PLN can sell in PLN (the sandbox takes any ISO currency it settles as is)."""
    user = make_merchant(company="Warsaw Bikes", currency="PLN", country="PL")
    log_in(client, user.email, PASSWORD)
    link = create_link(client, currency="PLN")
    assert pay_with_card(client, link.slug).status_code == 303


def test_h13_link_total_above_the_cap_is_refused_with_the_limit(client, owner):
    """Default cap 99,999,999 minor units (€999,999.99): 2 × €500,000.00 is refused with the limit in the
    message; exactly the cap is accepted."""
    over = client.post("/links/new", data=link_form(item_fields(0, "Yacht", "500000.00", quantity="2")))
    assert over.status_code == 422
    message = errors_of(over)["items"]
    assert "€1,000,000.00" in message and "€999,999.99" in message
    assert form_values(over)["items-0-unit_price"] == "500000.00"
    assert _links() == 0
    create_link(client, item_fields(0, "Yacht", "999999.99"))
    assert _links() == 1


def test_h13_link_total_cap_is_configurable(app, client, owner):
    """KASSA_LINK_MAX_TOTAL_MINOR=10000: a €60 + €50 link is refused, €100.00 is fine."""
    app.config["KASSA_LINK_MAX_TOTAL_MINOR"] = 10_000
    over = client.post("/links/new", data=link_form(item_fields(0, "A", "60.00"), item_fields(1, "B", "50.00")))
    assert over.status_code == 422
    assert "€100.00" in errors_of(over)["items"]
    create_link(client, item_fields(0, "A", "60.00"), item_fields(1, "B", "40.00"))
