"""M6: forms are read through WTForms forms (kassa.forms.Form): what the pages post is what the forms declare,
only posted form fields are read (never a JSON body or an upload in a text field's place), and repeated rows
(`items-<n>-…`, `c-<g>-<i>-…`) follow their numbers while junk names make no row."""

from __future__ import annotations

import io

import pytest

from kassa.blueprints.checkout_forms import CardForm, CheckoutForm
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.services.billing.notices import update_url_token
from tests.factories import make_merchant
from tests.support.billing import buy
from tests.support.checkout import start_checkout
from tests.support.checkout_flow import item, make_link
from tests.support.links import errors_of, form_values, item_fields, link_form, soup_of
from tests.support.payments import login, sandbox_payment


@pytest.fixture
def owner(client):
    user = make_merchant(company="Forms BV")
    login(client, user)
    return user


def _input_names(response, form_id: str) -> set[str]:
    form = soup_of(response).select_one(f"form#{form_id}")
    assert form is not None, f"no form#{form_id}"
    return {control["name"] for control in form.select("input[name], select[name], textarea[name]")}


def _field_names(form_class) -> set[str]:
    return {field.name for field in form_class(formdata=None)}


def test_m6_every_input_of_the_checkout_and_card_update_pages_is_a_field_of_their_form(client, owner):
    """A page input its form doesn't declare would be dropped: what the buyer typed would not come back
    after an error."""
    link = make_link(owner, allow_ach=True, collect_billing_address=True, collect_shipping_address=True,
                     fields={name: "required" for name in ("company", "first_name", "last_name", "phone")})
    page = client.get(start_checkout(client, link.slug))
    names = _input_names(page, "checkout-form")
    assert {"card_number", "routing_number", "billing_line1", "shipping_country", "phone"} <= names
    assert names - {"csrf_token"} <= _field_names(CheckoutForm)

    sub = buy(client, make_link(owner, items=[item("Lessons", "10.00", frequency="monthly")]))
    with write_transaction(db.session):
        token = update_url_token(sub.id)
    names = _input_names(client.get(f"/billing/{token}"), "checkout-form")
    assert names - {"csrf_token"} == {"card_number", "card_expiry", "card_cvc", "card_name"} <= _field_names(CardForm)


def test_m6_a_json_body_or_an_upload_is_not_read_as_the_form(client, owner):
    """FlaskForm on its own would read a JSON body as the form (a number or a list where text belongs was a
    500) and mix uploads into text fields; a Kassa form reads the posted form fields only."""
    empty = client.post("/links/preview")
    assert empty.status_code == 200
    for body in ({"name": 5, "currency": ["EUR"], "items-0-name": {"a": 1}, "allow_card": True}, [1, 2], "text"):
        response = client.post("/links/preview", json=body)
        assert (response.status_code, response.data) == (200, empty.data), body
    upload = client.post("/links/preview", data={"name": (io.BytesIO(b"x"), "name.txt"),
                                                 "items-0-name": (io.BytesIO(b"y"), "y.txt")})
    assert (upload.status_code, upload.data) == (200, empty.data)

    link = make_link(owner)
    checkout = start_checkout(client, link.slug)
    assert client.post(checkout, json={"email": 5, "method": ["card"]}).status_code == 422
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    nothing = client.post(f"/payments/{payment.id}/refund")
    response = client.post(f"/payments/{payment.id}/refund", json={"amount": 1, "reason": ["fraudulent"]})
    assert response.status_code == nothing.status_code == 422
    assert errors_of(response) == errors_of(nothing) != {}


def test_m6_line_item_rows_follow_their_numbers_and_junk_names_make_no_row(client, owner):
    data = link_form(item_fields(7, "Second", "2.00"), item_fields(2, "First", "1.00"), action="refresh")
    data.update({"items-²-name": "superscript", "items-12345-name": "five digits", "items-3-NAME": "capitals",
                 "items-4": "no part", "itemsX4-name": "no dash"})
    response = client.post("/links/new", data=data)
    assert response.status_code == 200
    values = form_values(response)
    rows = sorted(key for key in values if key.startswith("items-") and key.endswith("-name"))
    assert rows == ["items-0-name", "items-1-name"]
    assert (values["items-0-name"], values["items-1-name"]) == ("First", "Second")
    assert (values["items-0-unit_price"], values["items-1-unit_price"]) == ("1.00", "2.00")


def test_m6_filter_panel_groups_and_conditions_follow_their_numbers(client, owner):
    sandbox_payment(owner.account_id, amount_minor=5000)
    response = client.post("/payments/filters", data={
        "c-5-0-prop": "email", "c-5-0-op": "contains", "c-5-0-v1": "later",
        "c-1-3-prop": "email", "c-1-3-op": "contains", "c-1-3-v1": "second",
        "c-1-0-prop": "email", "c-1-0-op": "contains", "c-1-0-v1": "first",
        "c-²-0-prop": "email", "c-1-²-v1": "superscript", "c-1-1-junk": "x", "c-123-0-prop": "email",
        "action": "refresh"})
    assert response.status_code == 200
    values = {control["name"]: control.get("value") for control in soup_of(response).select("input[name$='-v1']")}
    assert values == {"c-0-0-v1": "first", "c-0-1-v1": "second", "c-1-0-v1": "later"}
