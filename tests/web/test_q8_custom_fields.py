"""Q8 custom fields: up to 5 per link (text, number, dropdown; required or optional; shown on the receipt or
not), edited with the link's other rows (with and without JavaScript), frozen in the link's snapshot, asked at
checkout in an "Additional information" section, checked at the field (en/nl/fr), kept on the attempt and the
payment, and shown on the payment panel, the receipt (PDF and email), exports and the index's filter."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Export, Payment, PaymentFieldValue, PaymentLink
from kassa.services.links.custom_fields import FieldDraft
from kassa.services.payments.receipts import render_payment_receipt
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text, run_outbox
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import (
    attempts,
    checkout_for,
    edit_link,
    emails,
    field_error,
    item,
    make_link,
    only_payment,
    pdf_text,
    sandbox_charges,
    soup_of,
)
from tests.support.links import errors_of as _errors_of
from tests.support.links import form_values, item_fields, link_form

DECLINED_CARD = "4000 0000 0000 0002"


def _fields() -> list[FieldDraft]:
    return [
        FieldDraft("Grind", "dropdown", "Whole beans, Filter, Espresso", required="1", receipt="1"),
        FieldDraft("Cups a day", "number"),
        FieldDraft("Gift note", "text", receipt="1"),
        FieldDraft("Order reference", "text", required="1"),
    ]


@pytest.fixture
def shop(client):
    owner = make_merchant(company="Koffie Noord", currency="EUR", country="NL")
    return owner, make_link(owner, name="Beans", custom_fields=_fields())


def _answers(**overrides):
    data = {"cf_0": "Filter", "cf_1": "2,5", "cf_2": "Happy birthday!", "cf_3": "PO-1234"}
    data.update(overrides)
    return data


def _options(response, name: str) -> list[tuple[str, bool]]:
    """A dropdown's options as (text, selected), read from the HTML itself: its <option>s are left unclosed
    (Q12), which html.parser nests."""
    body = re.search(rf'<select id="f-{name}"[^>]*>(.*?)</select>', response.get_data(as_text=True), re.S).group(1)
    return [(unescape(text), bool(selected)) for selected, text in re.findall(r"<option( selected)?>([^<]*)", body)]


def _selected(response, name: str) -> str | None:
    return next((text for text, selected in _options(response, name) if selected), None)


def _value(response, name: str) -> str | None:
    node = soup_of(response).select_one(f"input[name={name}]")
    return node.get("value") if node else None


def errors_of(response) -> dict[str, str]:
    """The editor's field errors without the screen-reader prefix ("Error: ")."""
    return {name: message.removeprefix("Error: ") for name, message in _errors_of(response).items()}


def _custom_rows(n: int, **row) -> dict:
    data = {}
    for i in range(n):
        p = f"custom-{i}-"
        data.update({p + "label": row.get("label", f"Question {i + 1}"), p + "type": row.get("type", "text"),
                     p + "options": row.get("options", "")})
    return data


# -- the editor ---------------------------------------------------------------------------------------------


@pytest.fixture
def owner(client):
    user = make_merchant(company="Koffie Noord", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def test_q8_the_editor_saves_each_type_with_its_options_and_the_link_version_freezes_them(client, owner):
    data = link_form(**{
        "custom-0-label": "Grind", "custom-0-type": "dropdown", "custom-0-options": "Whole beans, Filter",
        "custom-0-required": "1", "custom-0-receipt": "1",
        "custom-1-label": "Cups a day", "custom-1-type": "number", "custom-1-options": "",
        "custom-2-label": "Gift note", "custom-2-type": "text", "custom-2-options": "",
        "custom-3-label": "Roast", "custom-3-type": "dropdown", "custom-3-options": "Light\r\n  Medium  dark \r\nDark\r\n",
    })
    assert client.post("/links/new", data=data).status_code == 303
    link = db.session.scalar(select(PaymentLink))
    assert link.custom_fields == [
        {"label": "Grind", "type": "dropdown", "options": ["Whole beans", "Filter"], "required": True, "receipt": True},
        {"label": "Cups a day", "type": "number", "options": [], "required": False, "receipt": False},
        {"label": "Gift note", "type": "text", "options": [], "required": False, "receipt": False},
        {"label": "Roast", "type": "dropdown", "options": ["Light", "Medium dark", "Dark"], "required": False,
         "receipt": False},
    ]
    # The editor shows them back, a dropdown's options one a line.
    values = form_values(client.get(f"/links/{link.id}/edit"))
    assert values["custom-0-options"] == "Whole beans\nFilter" and values["custom-0-required"] == "1"
    assert values["custom-3-label"] == "Roast" and "custom-3-required" not in values

    # A checkout opened before an edit keeps the version it was opened with (the payment refers to it).
    before = start_checkout(client, link.slug)
    edited = form_values(client.get(f"/links/{link.id}/edit"))
    edited.update({"custom-0-label": "Grind size", "action": "save"})
    assert client.post(f"/links/{link.id}/edit", data=edited).status_code == 303
    after = start_checkout(client, link.slug)
    assert "Grind" in page_text(client.get(before)) and "Grind size" not in page_text(client.get(before))
    assert "Grind size" in page_text(client.get(after))
    assert checkout_for(before).snapshot["custom_fields"][0]["label"] == "Grind"
    assert checkout_for(after).link_version == checkout_for(before).link_version + 1


@pytest.mark.parametrize("htmx", [False, True])
def test_q8_adding_and_removing_a_field_keeps_everything_typed(client, owner, htmx):
    headers = {"HX-Request": "true", "HX-Target": "editor-region"} if htmx else {}
    typed = link_form(item_fields(0, name="Half-typed beans", unit_price="12,5x"), name="Draft name",
                      **{"custom-0-label": "First question", "custom-0-type": "dropdown",
                         "custom-0-options": "A\nB", "custom-0-required": "1"})
    added = client.post("/links/new", data={**typed, "action": "add_field"}, headers=headers)
    assert added.status_code == 200
    values = form_values(added)
    assert values["items-0-name"] == "Half-typed beans" and values["items-0-unit_price"] == "12,5x"
    assert values["name"] == "Draft name"
    assert values["custom-0-label"] == "First question" and values["custom-0-options"] == "A\nB"
    assert values["custom-0-required"] == "1" and values["custom-1-label"] == ""
    assert soup_of(added).select_one("#f-custom-1-label").has_attr("autofocus")

    values.update({"custom-1-label": "Second question", "custom-1-type": "number"})
    removed = client.post("/links/new", data={**values, "action": "remove_field:0"}, headers=headers)
    values = form_values(removed)
    assert values["custom-0-label"] == "Second question" and values["custom-0-type"] == "number"
    assert "custom-1-label" not in values and values["items-0-unit_price"] == "12,5x"
    assert db.session.scalar(select(PaymentLink)) is None  # nothing saved by editing


def test_q8_a_sixth_field_is_refused_in_the_editor_and_nothing_typed_is_lost(client, owner):
    five = link_form(**_custom_rows(5))
    response = client.post("/links/new", data={**five, "action": "add_field"})
    assert response.status_code == 422
    assert errors_of(response)["custom"] == "A link can have at most 5 custom fields. Remove one to add another."
    values = form_values(response)
    assert [values[f"custom-{i}-label"] for i in range(5)] == [f"Question {i + 1}" for i in range(5)]
    assert "custom-5-label" not in values

    # A sixth row posted by hand is refused on save too.
    response = client.post("/links/new", data=link_form(**_custom_rows(6)))
    assert response.status_code == 422
    assert "at most 5 custom fields" in errors_of(response)["custom"]
    assert db.session.scalar(select(PaymentLink)) is None
    # Five save.
    assert client.post("/links/new", data=five).status_code == 303


@pytest.mark.parametrize(("row", "field", "message"), [
    ({"label": ""}, "label", "Enter the question the buyer answers, like “Company VAT number”."),
    ({"label": "x" * 51}, "label", "Use at most 50 characters."),
    ({"type": "date"}, "type", "Choose text, number or dropdown."),
    ({"type": "dropdown", "options": " , ,"}, "options",
     "Enter the dropdown's options, one a line or separated by commas."),
    ({"type": "dropdown", "options": ",".join(f"o{i}" for i in range(21))}, "options",
     "A dropdown has at most 20 options."),
    ({"type": "dropdown", "options": "short," + "y" * 51}, "options", "Each option can have at most 50 characters."),
    ({"type": "dropdown", "options": "Dark\ndark"}, "options", "Each option can be listed once."),
])
def test_q8_bad_field_settings_are_refused_at_the_field_and_kept_as_typed(client, owner, row, field, message):
    data = link_form(**_custom_rows(1, **row))
    response = client.post("/links/new", data=data)
    assert response.status_code == 422
    assert errors_of(response)[f"custom-0-{field}"] == message
    values = form_values(response)
    assert values["custom-0-label"] == data["custom-0-label"]
    assert db.session.scalar(select(PaymentLink)) is None


def test_q8_two_fields_with_one_label_are_refused(client, owner):
    response = client.post("/links/new", data=link_form(**_custom_rows(2, label="Roast")))
    assert errors_of(response)["custom-1-label"] == "Another field has this label. Give each field its own."


def test_q8_the_live_preview_shows_the_fields(client, owner):
    data = link_form(**{"custom-0-label": "Grind", "custom-0-type": "dropdown", "custom-0-options": "Filter, Beans",
                        "custom-0-required": "1", "custom-1-label": "Gift note", "custom-1-type": "text"})
    preview = soup_of(client.post("/links/preview", data=data))
    assert "Additional information" in preview.get_text()
    labels = [" ".join(node.get_text(" ").split()) for node in preview.select(".cop__label")]
    assert "Grind *" in labels and "Gift note" in labels
    assert "Filter, Beans" in preview.get_text()


# -- the checkout -------------------------------------------------------------------------------------------


def test_q8_the_checkout_asks_the_fields_in_their_own_section_required_marked(client, shop):
    _owner, _link = shop
    response = client.get(start_checkout(client, _link.slug))
    page = soup_of(response)
    headings = [h.get_text() for h in page.select("h2.sec")]
    assert headings.index("Additional information") == headings.index("Contact") + 1
    grind = page.select_one("select#f-cf_0")
    assert grind.has_attr("required") and page.select_one("label[for=f-cf_0]")["class"] == ["req"]
    assert [text for text, _selected in _options(response, "cf_0")] == ["", "Whole beans", "Filter", "Espresso"]
    cups = page.select_one("input#f-cf_1")
    assert cups["inputmode"] == "decimal" and not cups.has_attr("required")
    assert not page.select_one("label[for=f-cf_1]").has_attr("class")
    assert page.select_one("input#f-cf_3").has_attr("required")


@pytest.mark.parametrize(("language", "messages"), [
    ("en", {"cf_0": "Choose one of the options.", "cf_1": "Enter a number, like 12 or 3.5.",
            "cf_2": "Use at most 255 characters.", "cf_3": "This field is required."}),
    ("nl", {"cf_0": "Kies een van de opties.", "cf_1": "Vul een getal in, zoals 12 of 3,5.",
            "cf_2": "Gebruik maximaal 255 tekens.", "cf_3": "Dit veld is verplicht."}),
    ("fr", {"cf_0": "Choisissez l’une des options.", "cf_1": "Saisissez un nombre, comme 12 ou 3,5.",
            "cf_2": "Utilisez au maximum 255 caractères.", "cf_3": "Ce champ est obligatoire."}),
])
def test_q8_bad_answers_are_refused_at_the_field_nothing_charged_nothing_lost(client, shop, language, messages):
    _owner, link = shop
    path = start_checkout(client, link.slug, lang=language)
    # A tampered dropdown value, a number that isn't one, a note too long, a required answer missing.
    response = submit_checkout(client, path, lang=language, **_answers(cf_0="Decaf", cf_1="two", cf_2="x" * 256,
                                                                       cf_3=" "))
    assert response.status_code == 422
    for name, message in messages.items():
        assert field_error(response, name) == message
    assert sandbox_charges() == 0 and db.session.scalar(select(Payment)) is None
    # Everything typed comes back (except what the page can't show: a value that is no option).
    assert _value(response, "cf_1") == "two" and _value(response, "cf_2") == "x" * 256
    assert _value(response, "card_name") and _value(response, "email") == "ann.buyer@example.com"
    # B8: the summary names each field by its label.
    summary = [" ".join(a.get_text(" ").split()) for a in soup_of(response).select("#error-summary a")]
    assert f"Grind: {messages['cf_0']}" in summary and f"Order reference: {messages['cf_3']}" in summary
    assert soup_of(response).select_one("#f-cf_1")["aria-invalid"] == "true"


def test_q8_answers_are_kept_on_the_attempt_and_the_payment_optional_ones_left_out(client, shop):
    owner, link = shop
    response = submit_checkout(client, start_checkout(client, link.slug), **_answers(cf_1="", cf_2=""))
    assert response.status_code == 303
    payment = only_payment()
    assert payment.custom_fields == [{"label": "Grind", "value": "Filter", "receipt": True},
                                     {"label": "Order reference", "value": "PO-1234", "receipt": False}]
    assert [a["name"] for a in attempts()[0].buyer["custom_fields"]] == ["cf_0", "cf_3"]
    rows = db.session.scalars(select(PaymentFieldValue).order_by(PaymentFieldValue.position)).all()
    assert [(r.label, r.value, r.account_id) for r in rows] == [("Grind", "Filter", owner.account_id),
                                                                 ("Order reference", "PO-1234", owner.account_id)]


def test_q8_a_decline_keeps_the_answers_on_the_page_and_on_the_failed_payment(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)
    response = submit_checkout(client, path, card_number=DECLINED_CARD, **_answers())
    assert response.status_code == 422 and "Your payment was declined" in page_text(response)
    assert _selected(response, "cf_0") == "Filter" and _value(response, "cf_1") == "2,5"
    assert _value(response, "cf_2") == "Happy birthday!" and _value(response, "cf_3") == "PO-1234"
    failed = only_payment()
    assert failed.status == "failed" and [a["label"] for a in failed.custom_fields] == [
        "Grind", "Cups a day", "Gift note", "Order reference"]
    # The legitimate repeat pays.
    assert submit_checkout(client, path, **_answers()).status_code == 303


def test_q8_the_panel_shows_every_answer_and_the_receipt_only_those_marked_for_it(client, shop):
    owner, link = shop
    assert submit_checkout(client, start_checkout(client, link.slug), **_answers()).status_code == 303
    payment = only_payment()
    log_in(client, owner.email, PASSWORD)
    panel = soup_of(client.get(f"/payments/{payment.id}"))
    card = " ".join(panel.select_one("#card-custom-fields").get_text(" ").split())
    for label, value in [("Grind", "Filter"), ("Cups a day", "2,5"), ("Gift note", "Happy birthday!"),
                         ("Order reference", "PO-1234")]:
        assert f"{label} {value}" in card

    pdf = " ".join(pdf_text(render_payment_receipt(payment)[2]).split())
    assert "Grind Filter" in pdf and "Gift note Happy birthday!" in pdf
    assert "Cups a day" not in pdf and "PO-1234" not in pdf
    [receipt] = emails("receipt")
    assert "Grind: Filter" in receipt.text_body and "Gift note: Happy birthday!" in receipt.text_body
    assert "PO-1234" not in receipt.text_body and "PO-1234" not in receipt.html_body
    assert "Happy birthday!" in receipt.html_body


def test_q8_a_link_without_receipt_fields_prints_no_section(client, app):
    owner = make_merchant(company="Plain Shop")
    link = make_link(owner, custom_fields=[FieldDraft("Reference", required="1")])
    assert submit_checkout(client, start_checkout(client, link.slug), cf_0="R-9").status_code == 303
    pdf = pdf_text(render_payment_receipt(only_payment())[2])
    assert "Additional information" not in pdf and "R-9" not in pdf


# -- exports and the index filter ---------------------------------------------------------------------------


def _pay(client, link, email, **answers):
    response = submit_checkout(client, start_checkout(client, link.slug), email=email, **_answers(**answers))
    assert response.status_code == 303


def _ids(response) -> set[str]:
    return {row["data-id"] for row in soup_of(response).select("tr[data-id]")} or {
        a["href"] for a in soup_of(response).select("tbody a[href*='/payments/']")}


def test_q8_export_has_one_custom_fields_column(client, shop):
    owner, link = shop
    plain = make_link(owner, name="No questions")
    _pay(client, link, "one@example.com", cf_2="")
    assert submit_checkout(client, start_checkout(client, plain.slug), email="two@example.com").status_code == 303
    log_in(client, owner.email, PASSWORD)
    from kassa.actor import Actor
    from kassa.models import User
    from kassa.services.exports import exports

    user = db.session.get(User, owner.id)
    export = exports.request_export(
        Actor(user=user, account_id=owner.account_id), kind="payments", name="Answers", file_format="csv",
        language="en", params={"state": "", "tab": "payments", "columns": ["email", "custom_fields"],
                               "modes": ["test"]})
    run_outbox()
    db.session.rollback()
    assert db.session.get(Export, export.id).status == "done"
    data = exports.downloadable(owner.account_id, export.id)[1].read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["Contact email", "Custom fields"]
    assert sorted(rows[1:]) == [["one@example.com", "Grind: Filter; Cups a day: 2,5; Order reference: PO-1234"],
                                ["two@example.com", ""]]


def test_q8_the_index_filters_by_a_custom_field_label_and_text_with_a_chip(client, shop):
    owner, link = shop
    _pay(client, link, "filter@example.com", cf_0="Filter")
    _pay(client, link, "beans@example.com", cf_0="Whole beans")
    other_owner = make_merchant(company="Other Roaster")
    other = make_link(other_owner, custom_fields=[FieldDraft("Grind")])
    assert submit_checkout(client, start_checkout(client, other.slug), email="other@example.com",
                           cf_0="Filter").status_code == 303
    log_in(client, owner.email, PASSWORD)

    adv = json.dumps([[["custom_field", "contains", ["grind", "FILT"]]]])
    response = client.get("/payments/", query_string={"adv": adv, "mode": "test"})
    text = page_text(response)
    assert "filter@example.com" in text and "beans@example.com" not in text
    assert "other@example.com" not in text  # another account's answers never match
    assert "Custom field “grind” contains “FILT”" in text  # the chip (B4)
    # Another label doesn't match the same text; no text means "answered".
    miss = page_text(client.get("/payments/", query_string={
        "adv": json.dumps([[["custom_field", "contains", ["Gift note", "filt"]]]]), "mode": "test"}))
    assert "filter@example.com" not in miss
    answered = page_text(client.get("/payments/", query_string={
        "adv": json.dumps([[["custom_field", "contains", ["Grind", ""]]]]), "mode": "test"}))
    assert "filter@example.com" in answered and "beans@example.com" in answered
    # A label is needed: refused with a message, nothing filtered.
    bad = client.get("/payments/", query_string={"adv": json.dumps([[["custom_field", "contains", [" "]]]])})
    assert bad.status_code == 400 and "Enter the label of the custom field" in page_text(bad)

    # The filter panel builds the same condition from its two boxes.
    panel = client.post("/payments/filters", data={
        "base_args": "mode=test", "tab": "payments", "action": "apply", "c-0-0-prop": "custom_field",
        "c-0-0-op": "contains", "c-0-0-v1": "Grind", "c-0-0-v2": "whole"})
    location = panel.headers.get("HX-Redirect") or panel.headers.get("Location")
    assert location, panel.get_data(as_text=True)[:500]
    filtered = page_text(client.get(location))
    assert "beans@example.com" in filtered and "filter@example.com" not in filtered


def test_q8_another_merchant_gets_404_for_the_payment_and_the_link(client, shop):
    _owner, link = shop
    _pay(client, link, "mine@example.com")
    payment = only_payment()
    stranger = make_merchant(company="Stranger")
    log_in(client, stranger.email, PASSWORD)
    assert client.get(f"/payments/{payment.id}").status_code == 404
    assert client.get(f"/links/{link.id}/edit").status_code == 404
    edit = link_form(**_custom_rows(1))
    assert client.post(f"/links/{link.id}/edit", data=edit).status_code == 404
    db.session.rollback()
    assert db.session.get(PaymentLink, link.id).custom_fields[0]["label"] == "Grind"


def test_q8_an_edit_without_fields_removes_them_for_new_checkouts_only(client, shop):
    owner, link = shop
    before = start_checkout(client, link.slug)
    edit_link(owner, link, items=[item()], currency="EUR")
    after = start_checkout(client, link.slug)
    assert soup_of(client.get(after)).select_one("#f-cf_0") is None
    # The checkout opened before still asks, and its answers are still required.
    response = submit_checkout(client, before, cf_3="")
    assert response.status_code == 422 and field_error(response, "cf_3") == "This field is required."
