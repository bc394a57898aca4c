"""The payment link editor (SPEC L1–L14): line items from the library or custom, prices and terms,
link settings, checkout fields, payment methods, confirmation; bad and hostile input; htmx fragments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    CheckoutSession,
    Deal,
    LinkItem,
    Payment,
    PaymentLink,
    Pipeline,
    Product,
    Role,
    Stage,
    Subscription,
)
from kassa.services.crm.crm import create_pipeline
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import log_in, page_text
from tests.support.checkout import path_of, pay_with_ach, pay_with_card, signed_test_path, start_checkout
from tests.support.links import (
    create_link,
    create_product,
    errors_of,
    form_values,
    item_fields,
    link_form,
    soup_of,
)

FREQUENCIES = ["one_time", "weekly", "biweekly", "monthly", "quarterly", "semiannual", "yearly", "biennial"]
EVERY = {
    "weekly": "every week", "biweekly": "every two weeks", "monthly": "every month",
    "quarterly": "every three months", "semiannual": "every six months", "yearly": "every year",
    "biennial": "every two years",
}


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def _link_count() -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentLink))


def _item_count() -> int:
    return db.session.scalar(select(func.count()).select_from(LinkItem))


def _checkout_page(client, link: PaymentLink):
    response = client.get(start_checkout(client, link.slug))
    assert response.status_code == 200
    return response


def _rows(response) -> list[dict[str, str]]:
    """The line item rows of a rendered editor, as the form would submit them."""
    values = form_values(response)
    rows = []
    index = 0
    while f"items-{index}-name" in values:
        prefix = f"items-{index}-"
        rows.append({key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)})
        index += 1
    return rows


def _only_link() -> PaymentLink:
    return db.session.scalars(select(PaymentLink)).one()


# -- L1: create ------------------------------------------------------------------------------------


def test_l1_create_page_has_the_editor_sections_in_order(client, owner):
    response = client.get("/links/new")
    assert response.status_code == 200
    soup = soup_of(response)
    headings = [h.get_text(strip=True) for h in soup.select("form#link-editor section.panel > h2, "
                                                             "form#link-editor section.panel > .panel__head h2")]
    assert headings == ["Line items", "Link settings", "Checkout", "Custom fields", "Payment confirmation",
                        "Availability"]
    # One empty custom row to start with, the currency is the account's, the preview is beside the form.
    assert [row["name"] for row in _rows(response)] == [""]
    assert form_values(response)["currency"] == "EUR"
    assert soup.select_one("aside.editor__preview #link-preview")
    assert soup.select_one('button[name="action"][value="save"]').get_text(strip=True) == "Create"


def test_l1_create_saves_the_link_with_a_permanent_slug(client, owner):
    link = create_link(client, item_fields(0, "Bike service", "20.00", description="Brakes and gears"))
    assert (link.account_id, link.name, link.currency, link.status) == (owner.account_id, "Spring service", "EUR",
                                                                        "active")
    assert len(link.slug) >= 10 and link.slug == link.slug.lower() and link.created_by_id == owner.id
    [item] = link.items
    assert (item.name, item.description, item.unit_amount_minor, item.currency, item.quantity, item.frequency,
            item.term_type, item.term_count, item.product_id) == (
        "Bike service", "Brakes and gears", 2000, "EUR", 1, "one_time", None, None, None)


def test_l1_create_from_the_rendered_page_as_a_browser_would(client, owner):
    values = form_values(client.get("/links/new"))
    values.update({"name": "From the page", "items-0-name": "Lock", "items-0-unit_price": "15", "action": "save"})
    assert client.post("/links/new", data=values).status_code == 303
    link = _only_link()
    assert link.items[0].unit_amount_minor == 1500
    # Defaults of a new link: card on, ACH off, billing address on, shipping off, default confirmation.
    assert (link.allow_card, link.allow_ach, link.collect_billing_address, link.collect_shipping_address,
            link.confirmation) == (True, False, True, False, "default")


# -- L2: line items from the library, or custom --------------------------------------------------------


def test_l2_library_dialog_lists_products_with_checkboxes_and_search(client, owner):
    create_product(client, name="Helmet", unit_price="59.90", sku="HLM-1")
    create_product(client, name="Care plan", unit_price="9.50", frequency="monthly", term_type="auto_renew")
    opened = client.post("/links/new", data=link_form(action="open_library"))
    assert opened.status_code == 200
    soup = soup_of(opened)
    labels = {box["value"]: soup.select_one(f'label[for="{box["id"]}"]').get_text(" ", strip=True)
              for box in soup.select('input[type="checkbox"][name="library_product"]')}
    assert len(labels) == 2
    assert any("Helmet" in text and "€59.90" in text for text in labels.values())
    assert any("Care plan" in text and "Monthly" in text for text in labels.values())
    # The draft typed so far survives opening the library.
    assert _rows(opened)[0]["name"] == "Bike service"

    searched = client.post("/links/new", data=link_form(action="search_library", library_search="hlm"))
    names = [label.get_text(" ", strip=True) for label in soup_of(searched).select(".library__item label")]
    assert len(names) == 1 and "Helmet" in names[0]
    nothing = client.post("/links/new", data=link_form(action="search_library", library_search="unicycle"))
    assert "No product matches" in page_text(nothing)


def test_l2_add_products_prefills_rows_from_the_library(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="59.90", description="Size M")
    plan = create_product(client, name="Care plan", unit_price="9.50", frequency="monthly", term_type="fixed",
                          term_count="12")
    # Start from the blank editor: its untouched empty row is replaced by the products.
    values = form_values(client.get("/links/new"))
    values.update({"action": "add_products", "library_product": [str(helmet.id), str(plan.id)]})
    added = client.post("/links/new", data=values)
    assert added.status_code == 200
    rows = _rows(added)
    assert [(r["name"], r["unit_price"], r["frequency"], r.get("term_type"), r["term_count"], r["product_id"])
            for r in rows] == [
        ("Care plan", "9.50", "monthly", "fixed", "12", str(plan.id)),
        ("Helmet", "59.90", "one_time", "auto_renew", "", str(helmet.id)),
    ]
    assert rows[1]["description"] == "Size M"
    assert len(soup_of(added).select(".item .badge")) == 2  # "From library"

    values = form_values(added)
    values.update({"name": "Helmet and care", "action": "save"})
    assert client.post("/links/new", data=values).status_code == 303
    items = _only_link().items
    assert [(i.name, i.unit_amount_minor, i.frequency, i.term_type, i.term_count, i.product_id) for i in items] == [
        ("Care plan", 950, "monthly", "fixed", 12, plan.id),
        ("Helmet", 5990, "one_time", None, None, helmet.id),
    ]


def test_l2_library_products_and_custom_items_together(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="59.90")
    values = form_values(client.post("/links/new", data=link_form(
        item_fields(0, "Gift wrap", "3.00", description="Made for this link"), action="add_products",
        library_product=[str(helmet.id)])))
    assert [r["name"] for r in _rows_from(values)] == ["Gift wrap", "Helmet"]
    values["action"] = "add_item"
    with_custom = client.post("/links/new", data=values)
    values = form_values(with_custom)
    values.update({"items-2-name": "Engraving", "items-2-unit_price": "12.00", "action": "save"})
    assert client.post("/links/new", data=values).status_code == 303
    items = _only_link().items
    assert [(i.name, i.product_id, i.description) for i in items] == [
        ("Gift wrap", None, "Made for this link"), ("Helmet", helmet.id, "Full bike check"), ("Engraving", None, "")]


def _rows_from(values: dict) -> list[dict]:
    rows, index = [], 0
    while f"items-{index}-name" in values:
        rows.append({"name": values[f"items-{index}-name"]})
        index += 1
    return rows


def test_l2_adding_another_accounts_product_ids_adds_nothing(client, owner):
    other = make_merchant(company="Other", currency="EUR")
    with write_transaction(db.session) as session:
        theirs = Product(account_id=other.account_id, name="Their product", unit_amount_minor=100, currency="EUR")
        session.add(theirs)
    response = client.post("/links/new", data=link_form(action="add_products", library_product=[str(theirs.id)]))
    assert [row["name"] for row in _rows(response)] == ["Bike service"]
    assert "Their product" not in page_text(response)


# -- L3: a unit price of 0 is refused, and other bad amounts -------------------------------------------


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("0", "can't be 0"),
        ("0.00", "can't be 0"),
        ("€0", "can't be 0"),
        ("-5", "can't be negative"),
        ("12,3,4", "Enter an amount like"),
        ("twelve", "Enter an amount like"),
        ("", "Enter an amount"),
        ("1.999", "at most 2 decimals"),
        ("$12", "Enter the amount in EUR"),
        ("9" * 30, "too large"),
    ],
)
def test_l3_bad_unit_price_refused_at_the_field(client, owner, price, message):
    response = client.post("/links/new", data=link_form(item_fields(0, "Bike service", price)))
    assert response.status_code == 422
    errors = errors_of(response)
    assert message in errors["items-0-unit_price"], errors
    control = soup_of(response).select_one("#f-items-0-unit_price")
    assert control["value"] == price.strip() and control["aria-invalid"] == "true"
    assert "f-items-0-unit_price-error" in control["aria-describedby"]
    # The error summary links to the field.
    assert soup_of(response).select_one('.error-summary a[href="#f-items-0-unit_price"]')
    assert _link_count() == 0


def test_l3_zero_price_on_the_second_row_is_reported_on_that_row(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0), item_fields(1, "Free sticker", "0")))
    assert response.status_code == 422
    assert set(errors_of(response)) == {"items-1-unit_price"}
    assert _link_count() == 0


# -- L4: editing a library row never changes the product ------------------------------------------------


def test_l4_editing_a_library_row_on_the_link_never_changes_the_product(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="59.90", description="Size M")
    link = create_link(client, item_fields(0, "Helmet (team price)", "49.00", quantity="3", frequency="yearly",
                                           term_type="fixed", term_count="2", description="Any size",
                                           product_id=helmet.id, currency="EUR"))
    [item] = link.items
    assert (item.name, item.unit_amount_minor, item.quantity, item.frequency, item.product_id) == (
        "Helmet (team price)", 4900, 3, "yearly", helmet.id)
    db.session.refresh(helmet)
    assert (helmet.name, helmet.unit_amount_minor, helmet.description, helmet.frequency, helmet.term_count) == (
        "Helmet", 5990, "Size M", "one_time", None)

    # Edit the link again, then the product: neither changes the other.
    edit = client.get(f"/links/{link.id}/edit")
    values = form_values(edit)
    assert values["items-0-product_id"] == str(helmet.id)
    values.update({"items-0-unit_price": "45.00", "action": "save"})
    assert client.post(f"/links/{link.id}/edit", data=values).status_code == 303
    client.post(f"/products/{helmet.id}/edit", data={"name": "Helmet v2", "unit_price": "65.00", "currency": "EUR",
                                                    "frequency": "one_time", "description": ""})
    db.session.refresh(helmet)
    link = db.session.get(PaymentLink, link.id)
    assert helmet.unit_amount_minor == 6500 and helmet.name == "Helmet v2"
    assert (link.items[0].name, link.items[0].unit_amount_minor) == ("Helmet (team price)", 4500)


# -- L5, L6: billing frequency and terms --------------------------------------------------------------


def test_l5_editor_offers_every_frequency(client, owner):
    soup = soup_of(client.get("/links/new"))
    options = [(o["value"], o.get_text(strip=True)) for o in soup.select("#f-items-0-frequency option")]
    assert options == [
        ("one_time", "One-time"), ("weekly", "Weekly"), ("biweekly", "Every two weeks"), ("monthly", "Monthly"),
        ("quarterly", "Quarterly (every three months)"), ("semiannual", "Every six months"), ("yearly", "Yearly"),
        ("biennial", "Every two years"),
    ]


@pytest.mark.parametrize("frequency", FREQUENCIES)
def test_l5_every_frequency_is_saved_and_shown_to_the_buyer(client, owner, frequency):
    link = create_link(client, item_fields(0, "Plan", "20.00", frequency=frequency, term_type="auto_renew"))
    assert link.items[0].frequency == frequency
    text = page_text(_checkout_page(client, link))
    assert "Total due today €20.00" in text
    if frequency == "one_time":
        assert "Then " not in text and "until cancelled" not in text
    else:
        assert f"Then €20.00 {EVERY[frequency]} until cancelled" in text
        assert link.items[0].term_type == "auto_renew" and link.items[0].term_count is None


def test_l5_unknown_frequency_refused(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, frequency="hourly")))
    assert response.status_code == 422 and "billing frequency" in errors_of(response)["items-0-frequency"]


def test_l6_recurring_row_shows_the_terms_and_one_time_row_does_not(client, owner):
    one_time = client.post("/links/new", data=link_form(action="refresh"))
    assert not soup_of(one_time).select('input[type="radio"][name="items-0-term_type"]')
    recurring = client.post("/links/new", data=link_form(item_fields(0, frequency="monthly"), action="refresh"))
    soup = soup_of(recurring)
    terms = {r["value"]: soup.select_one(f'label[for="{r["id"]}"]').get_text(strip=True)
             for r in soup.select('input[type="radio"][name="items-0-term_type"]')}
    assert terms == {"fixed": "Fixed number of payments", "auto_renew": "Auto-renew until cancelled"}
    assert soup.select_one("#f-items-0-term_count")


@pytest.mark.parametrize(
    ("frequency", "count", "sentence", "months_between"),
    [
        ("monthly", "7", "Then €20.00 every month, 7 payments in total", 1),
        ("quarterly", "8", "Then €20.00 every three months, 8 payments in total", 3),
    ],
)
def test_l6_fixed_number_of_payments(client, owner, frequency, count, sentence, months_between):
    link = create_link(client, item_fields(0, "Lessons", "20.00", frequency=frequency, term_type="fixed",
                                           term_count=count))
    item = link.items[0]
    assert (item.frequency, item.term_type, item.term_count) == (frequency, "fixed", int(count))
    assert sentence in page_text(_checkout_page(client, link))

    response = pay_with_card(client, link.slug)
    assert response.status_code == 303
    subscription = db.session.scalars(select(Subscription)).one()
    assert (subscription.frequency, subscription.term_type, subscription.term_count, subscription.payments_made) == (
        frequency, "fixed", int(count), 1)
    gap = subscription.next_charge_at - subscription.anchor_at
    assert timedelta(days=28 * months_between) <= gap <= timedelta(days=31 * months_between)


def test_l6_auto_renew_has_no_end(client, owner):
    link = create_link(client, item_fields(0, "Membership", "20.00", frequency="monthly", term_type="auto_renew",
                                           term_count="7"))
    assert (link.items[0].term_type, link.items[0].term_count) == ("auto_renew", None)
    text = page_text(_checkout_page(client, link))
    assert "Then €20.00 every month until cancelled" in text and "payments in total" not in text


@pytest.mark.parametrize("count", ["1", "0", "121", "", "seven", "-3", "2.5"])
def test_l6_fixed_term_outside_2_to_120_refused(client, owner, count):
    response = client.post("/links/new", data=link_form(item_fields(0, frequency="monthly", term_type="fixed",
                                                                    term_count=count)))
    assert response.status_code == 422
    assert "2 to 120" in errors_of(response)["items-0-term_count"]
    assert _link_count() == 0


@pytest.mark.parametrize("count", ["2", "120"])
def test_l6_fixed_term_bounds_accepted(client, owner, count):
    link = create_link(client, item_fields(0, frequency="weekly", term_type="fixed", term_count=count))
    assert link.items[0].term_count == int(count)


def test_l6_missing_term_type_refused(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, frequency="monthly", term_type="")))
    assert response.status_code == 422 and "billing terms" in errors_of(response)["items-0-term_type"]


def test_l6_different_terms_are_separate_recurring_groups(client, owner):
    link = create_link(client, item_fields(0, "Setup", "50.00"),
                       item_fields(1, "Lessons", "20.00", frequency="monthly", term_type="fixed", term_count="7"),
                       item_fields(2, "Locker", "5.00", frequency="monthly", term_type="auto_renew"))
    text = page_text(_checkout_page(client, link))
    assert "Total due today €75.00" in text
    assert "Then €20.00 every month, 7 payments in total" in text
    assert "Then €5.00 every month until cancelled" in text


# -- L7: add, remove, reorder, edit rows ---------------------------------------------------------------


def test_l7_add_line_item_adds_an_empty_row_and_focuses_it(client, owner):
    response = client.post("/links/new", data=link_form(action="add_item"))
    rows = _rows(response)
    assert [r["name"] for r in rows] == ["Bike service", ""]
    assert soup_of(response).select_one("#f-items-1-name").has_attr("autofocus")
    assert _link_count() == 0  # editing actions never save


def test_l7_remove_and_reorder_rows(client, owner):
    three = link_form(item_fields(0, "A", "1.00"), item_fields(1, "B", "2.00"), item_fields(2, "C", "3.00"))

    def names(action: str) -> list[str]:
        return [row["name"] for row in _rows(client.post("/links/new", data={**three, "action": action}))]

    assert names("remove:1") == ["A", "C"]
    assert names("remove:0") == ["B", "C"]
    assert names("up:2") == ["A", "C", "B"]
    assert names("down:0") == ["B", "A", "C"]
    # Out-of-range or malformed moves change nothing.
    for action in ("up:0", "down:2", "remove:9", "up:x", "remove:-1", "down:"):
        assert names(action) == ["A", "B", "C"], action
    # Each row keeps its own values when moved.
    moved = _rows(client.post("/links/new", data={**three, "action": "up:2"}))
    assert (moved[1]["name"], moved[1]["unit_price"]) == ("C", "3.00")


def test_l7_buttons_are_labelled_per_row(client, owner):
    three = link_form(item_fields(0, "A", "1.00"), item_fields(1, "B", "2.00"), item_fields(2, "C", "3.00"),
                      action="refresh")
    soup = soup_of(client.post("/links/new", data=three))
    labels = [b["aria-label"] for b in soup.select(".item__actions button")]
    assert labels == ["Move item 1 down", "Remove item 1", "Move item 2 up", "Move item 2 down", "Remove item 2",
                      "Move item 3 up", "Remove item 3"]


def test_l7_removing_every_row_then_saving_asks_for_an_item(client, owner):
    values = link_form(action="remove:0")
    emptied = client.post("/links/new", data=values)
    assert _rows(emptied) == []
    assert "No line items yet" in page_text(emptied)
    values = form_values(emptied)
    values["action"] = "save"
    response = client.post("/links/new", data=values)
    assert response.status_code == 422 and "at least one line item" in errors_of(response)["items"]


def test_l7_name_and_description_edited_and_saved_in_order(client, owner):
    link = create_link(client, item_fields(0, "A", "1.00"), item_fields(1, "B", "2.00"))
    values = form_values(client.get(f"/links/{link.id}/edit"))
    values.update({"items-1-name": "B renamed", "items-1-description": "Now with a description", "action": "down:0"})
    values = form_values(client.post(f"/links/{link.id}/edit", data=values))
    values["action"] = "save"
    assert client.post(f"/links/{link.id}/edit", data=values).status_code == 303
    link = db.session.get(PaymentLink, link.id)
    assert [(i.position, i.name, i.description) for i in link.items] == [
        (0, "B renamed", "Now with a description"), (1, "A", "")]


# -- L8: the link name is internal --------------------------------------------------------------------


def test_l8_link_name_never_shown_to_buyers(client, owner):
    secret = "Internal codename ZEBRA-42"
    link = create_link(client, name=secret)
    assert secret in page_text(client.get("/links/"))
    start = client.get(signed_test_path(link.slug))
    assert secret not in start.get_data(as_text=True)
    checkout_path = path_of(start.headers["Location"])
    assert secret not in client.get(checkout_path).get_data(as_text=True)
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303
    confirmation = client.get(path_of(response.headers["Location"]))
    assert confirmation.status_code == 200
    assert secret not in confirmation.get_data(as_text=True)
    # Nor in what the buyer is emailed.
    from kassa.models import EmailMessage
    for message in db.session.scalars(select(EmailMessage)):
        if "ann.buyer@example.com" in message.to_addrs:
            assert secret not in message.subject + message.text_body + message.html_body


def test_l8_link_name_required_and_at_most_200(client, owner):
    response = client.post("/links/new", data=link_form(name=""))
    assert response.status_code == 422 and "Only you see it" in errors_of(response)["name"]
    response = client.post("/links/new", data=link_form(name="n" * 201))
    assert response.status_code == 422 and "200 characters" in errors_of(response)["name"]
    assert create_link(client, name="n" * 200).name == "n" * 200


def test_item_name_required_and_at_most_200(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, name="")))
    assert response.status_code == 422 and "name for this item" in errors_of(response)["items-0-name"]
    response = client.post("/links/new", data=link_form(item_fields(0, name="i" * 201)))
    assert response.status_code == 422 and "200 characters" in errors_of(response)["items-0-name"]
    response = client.post("/links/new", data=link_form(item_fields(0, description="d" * 2001)))
    assert response.status_code == 422 and "2000 characters" in errors_of(response)["items-0-description"]
    assert _link_count() == 0


# -- L9: deal pipeline and stage ------------------------------------------------------------------------


def test_l9_without_a_choice_the_first_payment_creates_the_default_pipeline_closed_won(client, owner):
    link = create_link(client)
    assert link.pipeline_id is None and link.stage_id is None
    assert db.session.scalar(select(func.count()).select_from(Pipeline)) == 0
    assert pay_with_card(client, link.slug).status_code == 303
    pipeline = db.session.scalars(select(Pipeline)).one()
    assert pipeline.account_id == owner.account_id and pipeline.is_default
    deal = db.session.scalars(select(Deal)).one()
    assert (deal.pipeline_id, deal.stage.name, deal.stage.probability) == (pipeline.id, "Closed won", 100)
    assert deal.amount_minor == 2000 and deal.currency == "EUR"
    # A second payment reuses the pipeline instead of creating another.
    assert pay_with_card(client, link.slug, email="bob@example.com").status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Pipeline)) == 1


def _pipeline(owner, name="Partners", stages="Proposal sent, 50\nSigned, 100\nLost, 0") -> Pipeline:
    return create_pipeline(Actor(user=owner, account_id=owner.account_id), name, stages)


def test_l9_chosen_pipeline_and_stage_are_used(client, owner):
    pipeline = _pipeline(owner)
    proposal = next(s for s in pipeline.stages if s.name == "Proposal sent")
    # The stage menu lists the chosen pipeline's stages once it is picked.
    refreshed = client.post("/links/new", data=link_form(pipeline_id=str(pipeline.id), action="refresh"))
    stages = [o.get_text(strip=True) for o in soup_of(refreshed).select("#f-stage_id option")]
    assert stages == ["Closed won (100 %)", "Proposal sent (50 %)", "Signed (100 %)", "Lost (0 %)"]
    link = create_link(client, pipeline_id=str(pipeline.id), stage_id=str(proposal.id))
    assert (link.pipeline_id, link.stage_id) == (pipeline.id, proposal.id)
    assert pay_with_card(client, link.slug).status_code == 303
    deal = db.session.scalars(select(Deal)).one()
    assert (deal.pipeline_id, deal.stage_id) == (pipeline.id, proposal.id)


def test_l9_chosen_pipeline_without_stage_uses_its_100_percent_stage(client, owner):
    pipeline = _pipeline(owner)
    link = create_link(client, pipeline_id=str(pipeline.id))
    assert pay_with_card(client, link.slug).status_code == 303
    deal = db.session.scalars(select(Deal)).one()
    assert (deal.pipeline_id, deal.stage.name) == (pipeline.id, "Signed")


def test_l9_foreign_or_mismatched_pipeline_and_stage_refused(client, owner):
    mine = _pipeline(owner)
    other_owner = make_merchant(company="Other")
    theirs = _pipeline(other_owner, name="Theirs")
    their_stage = theirs.stages[0]
    cases = [
        ({"pipeline_id": str(theirs.id)}, "pipeline_id"),
        ({"pipeline_id": str(mine.id), "stage_id": str(their_stage.id)}, "stage_id"),
        ({"pipeline_id": "", "stage_id": str(mine.stages[0].id)}, "stage_id"),
    ]
    for overrides, field in cases:
        response = client.post("/links/new", data=link_form(**overrides))
        assert response.status_code == 422, overrides
        assert field in errors_of(response), (overrides, errors_of(response))
    assert _link_count() == 0
    assert "Theirs" not in page_text(client.get("/links/new"))


# -- L10: contact fields ---------------------------------------------------------------------------------


def test_l10_contact_field_modes_show_on_the_checkout_with_required_markers(client, owner):
    link = create_link(client, field_company="required", field_first_name="optional", field_last_name="required",
                       field_phone="off")
    soup = soup_of(_checkout_page(client, link))

    def marked(name: str) -> bool:
        # Q12: checkout.css marks the label of a field whose own input is required (no class repeated per label)
        return soup.select_one(f'.field:has(>[required]) > label[for="f-{name}"]') is not None

    from kassa.assets import bundle_bytes

    assert b".field:has(>[required])>label::after" in bundle_bytes("checkout.css")  # the marker's rule
    assert soup.select_one("#f-email").has_attr("required") and marked("email")
    assert soup.select_one("#f-company").has_attr("required") and marked("company")
    assert soup.select_one("#f-last_name").has_attr("required") and marked("last_name")
    assert not soup.select_one("#f-first_name").has_attr("required") and not marked("first_name")
    assert soup.select_one("#f-phone") is None

    # A required field left empty is refused at that field; an optional one is not.
    response = pay_with_card(client, link.slug, company="", first_name="")
    assert response.status_code == 422
    assert set(errors_of(response)) == {"company"}
    assert pay_with_card(client, link.slug, first_name="").status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    assert payment.buyer_company == "Buyer Inc"


def test_l10_editor_offers_off_optional_required_for_each_field_and_says_email_is_always_asked(client, owner):
    response = client.get("/links/new")
    soup = soup_of(response)
    for name in ("company", "first_name", "last_name", "phone"):
        options = [o["value"] for o in soup.select(f"#f-field_{name} option")]
        assert options == ["off", "optional", "required"], name
    assert "Email is always collected." in page_text(response)


def test_l10_bad_field_mode_refused(client, owner):
    response = client.post("/links/new", data=link_form(field_phone="sometimes"))
    assert response.status_code == 422 and "field_phone" in errors_of(response)
    assert _link_count() == 0


# -- L11: payment methods ----------------------------------------------------------------------------------


def test_l11_ach_refused_on_a_link_with_recurring_items(client, owner):
    response = client.post("/links/new", data=link_form(
        item_fields(0, "Setup", "50.00"), item_fields(1, "Plan", "20.00", frequency="monthly"), allow_ach="1"))
    assert response.status_code == 422
    assert "only for one-time payments" in errors_of(response)["payment_methods"]
    assert _link_count() == 0


def test_l11_editor_disables_ach_with_the_reason_once_an_item_recurs(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, frequency="monthly"), action="refresh"))
    ach = soup_of(response).select_one("#f-allow_ach")
    assert ach.has_attr("disabled")
    assert "only for one-time payments" in soup_of(response).select_one("#f-allow_ach-help").get_text()
    one_time = soup_of(client.post("/links/new", data=link_form(action="refresh"))).select_one("#f-allow_ach")
    assert not one_time.has_attr("disabled")


def test_l11_ach_offered_for_one_time_links_and_pays(client, owner):
    link = create_link(client, allow_ach="1", currency="USD")  # Q10: ACH is for USD links
    soup = soup_of(_checkout_page(client, link))
    assert {r["value"] for r in soup.select('input[name="method"][type="radio"]')} == {"card", "ach"}
    response = pay_with_ach(client, link.slug)
    assert response.status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    assert (payment.method, payment.bank_last4) == ("ach", "6789")


def test_l11_ach_only_link_has_no_card_form(client, owner):
    link = create_link(client, allow_card=None, allow_ach="1", currency="USD")
    soup = soup_of(_checkout_page(client, link))
    assert soup.select_one("#f-card_number") is None and soup.select_one("#f-routing_number")
    assert pay_with_card(client, link.slug).status_code == 422  # a card can't be used here


def test_l11_at_least_one_method(client, owner):
    response = client.post("/links/new", data=link_form(allow_card=None))
    assert response.status_code == 422 and "at least one payment method" in errors_of(response)["payment_methods"]


# -- L12: addresses ------------------------------------------------------------------------------------------


def test_l12_billing_address_on_by_default_with_the_fraud_hint(client, owner):
    response = client.get("/links/new")
    soup = soup_of(response)
    assert soup.select_one("#f-collect_billing_address").has_attr("checked")
    assert not soup.select_one("#f-collect_shipping_address").has_attr("checked")
    assert "reduces the chance of fraud" in soup.select_one("#f-collect_billing_address-help").get_text()


@pytest.mark.parametrize(("billing", "shipping"), [(True, False), (False, False), (True, True), (False, True)])
def test_l12_address_options_reach_the_checkout(client, owner, billing, shipping):
    link = create_link(client, collect_billing_address="1" if billing else None,
                       collect_shipping_address="1" if shipping else None)
    soup = soup_of(_checkout_page(client, link))
    assert (soup.select_one("#f-billing_line1") is not None) is billing
    assert (soup.select_one("#f-shipping_line1") is not None) is shipping
    response = pay_with_card(client, link.slug, shipping_same=None)
    assert response.status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    assert (payment.billing_address is not None) is billing
    assert (payment.shipping_address is not None) is shipping
    if billing:
        assert payment.billing_address["city"] == "Springfield"
    if shipping:
        assert payment.shipping_address["city"] == "Shelbyville"


def test_l12_missing_billing_address_refused_at_checkout(client, owner):
    link = create_link(client)
    response = pay_with_card(client, link.slug, billing_line1="", billing_city=None)
    assert response.status_code == 422
    assert {"billing_line1", "billing_city"} <= set(errors_of(response))
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


# -- L13: payment confirmation ---------------------------------------------------------------------------------


def test_l13_default_confirmation_shows_the_success_page(client, owner):
    link = create_link(client)
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303
    assert path_of(response.headers["Location"]) == response.checkout_path
    confirmation = client.get(response.checkout_path)
    assert confirmation.status_code == 200 and "€20.00" in page_text(confirmation)


def test_l13_redirect_to_the_thank_you_page_after_paying(client, owner):
    url = "https://shop.example/thanks?order=1"
    link = create_link(client, confirmation="redirect", redirect_url=url)
    assert (link.confirmation, link.redirect_url) == ("redirect", url)
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303 and response.headers["Location"] == url
    # The checkout page's CSP lets its form post lead there (browsers check the redirect against it),
    # and only there.
    page = client.get(start_checkout(client, link.slug))
    form_action = next(d for d in page.headers["Content-Security-Policy"].split("; ") if d.startswith("form-action"))
    assert form_action == "form-action 'self' https://shop.example"
    plain = client.get(start_checkout(client, create_link(client).slug))
    assert "form-action 'self';" in plain.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "/relative", "ftp://x", "https://", "https://" + "a" * 2000 + ".example",
     "data:text/html,hi", "http://exa mple.com/", "", "  "],
)
def test_l13_thank_you_url_must_be_absolute_http(client, owner, url):
    response = client.post("/links/new", data=link_form(confirmation="redirect", redirect_url=url))
    assert response.status_code == 422
    assert "redirect_url" in errors_of(response)
    assert _link_count() == 0


def test_l13_url_ignored_with_the_default_page(client, owner):
    link = create_link(client, confirmation="default", redirect_url="")
    assert link.redirect_url is None
    response = client.post("/links/new", data=link_form(confirmation="elsewhere"))
    assert response.status_code == 422 and "confirmation" in errors_of(response)


# -- L14: save goes back to the list ---------------------------------------------------------------------------------


def test_l14_b11_save_goes_to_the_share_step_then_the_list_with_a_success_message(client, owner):
    response = client.post("/links/new", data=link_form(name="Summer camp"))
    assert response.status_code == 303
    link = _only_link()
    assert path_of(response.headers["Location"]) == f"/links/{link.id}/created"  # B11: the share step
    step = soup_of(client.get(path_of(response.headers["Location"])))
    assert "Payment link “Summer camp” created. Test it, then share it." in step.select_one("#toasts").get_text()
    done = step.find("a", string="Done")["href"]
    assert done == f"/links/?highlight={link.id}"
    listing = client.get(done)
    soup = soup_of(listing)
    highlighted = soup.select_one("tr.row--highlight")
    assert highlighted is not None and "Summer camp" in highlighted.get_text()
    # Test, Copy link, Share, Embed, Edit, Delete are there for it.
    actions = page_text_of(highlighted)
    for label in ("Test", "Copy link", "Share", "Embed", "Edit", "Delete"):
        assert label in actions, label

    edited = client.post(f"/links/{link.id}/edit", data=link_form(name="Summer camp 2"))
    assert edited.status_code == 303
    assert "Payment link “Summer camp 2” saved." in page_text(client.get(path_of(edited.headers["Location"])))


def page_text_of(tag) -> str:
    return " ".join(tag.get_text(" ").split())


def test_l14_htmx_save_answers_with_hx_redirect(client, owner):
    response = client.post("/links/new", data=link_form(), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/links/{_only_link().id}/created"


# -- limits and hostile input -----------------------------------------------------------------------------------


def test_more_than_50_items_refused(client, owner):
    items = [item_fields(i, f"Item {i}", "1.00") for i in range(51)]
    response = client.post("/links/new", data=link_form(*items))
    assert response.status_code == 422
    assert "at most 50 line items" in errors_of(response)["items"]
    assert _link_count() == 0
    link = create_link(client, *items[:50])
    assert len(link.items) == 50


def test_mixed_currencies_refused_at_the_row(client, owner):
    usd = create_product(client, name="US adapter", unit_price="10.00", currency="USD")
    response = client.post("/links/new", data=link_form(
        item_fields(0), item_fields(1, "US adapter", "10.00", product_id=usd.id, currency="USD")))
    assert response.status_code == 422
    errors = errors_of(response)
    assert set(errors) == {"items-1-unit_price"}
    assert "priced in USD but the link is in EUR" in errors["items-1-unit_price"]
    assert _link_count() == 0


def test_adding_a_product_in_another_currency_is_flagged_before_saving(client, owner):
    usd = create_product(client, name="US adapter", unit_price="10.00", currency="USD")
    added = client.post("/links/new", data=link_form(action="add_products", library_product=[str(usd.id)]))
    values = form_values(added)
    assert values["items-1-currency"] == "USD"
    # The preview leaves the row out rather than adding dollars to euros.
    assert "US adapter" not in page_text_of(soup_of(added).select_one("#link-preview"))
    values["action"] = "save"
    response = client.post("/links/new", data=values)
    assert response.status_code == 422 and "USD" in errors_of(response)["items-1-unit_price"]


def test_unknown_link_currency_refused(client, owner):
    response = client.post("/links/new", data=link_form(currency="EURO"))
    assert response.status_code == 422 and "currency" in errors_of(response)
    response = client.post("/links/new", data=link_form(currency="xyz"))
    assert response.status_code == 422 and "currency" in errors_of(response)


def test_lower_case_currency_is_normalised(client, owner):
    assert create_link(client, currency="usd").currency == "USD"


@pytest.mark.parametrize("quantity", ["0", "1000", "-1", "abc", "", "2.5"])
def test_quantity_outside_1_to_999_refused(client, owner, quantity):
    response = client.post("/links/new", data=link_form(item_fields(0, quantity=quantity)))
    assert response.status_code == 422
    assert "1 to 999" in errors_of(response)["items-0-quantity"]
    assert _link_count() == 0


def test_quantity_bounds_accepted_and_priced(client, owner):
    link = create_link(client, item_fields(0, "Bolt", "0.50", quantity="999"), item_fields(1, "Nut", "1.00"))
    assert [i.quantity for i in link.items] == [999, 1]
    text = page_text(_checkout_page(client, link))
    assert "× 999" in text and "€499.50" in text and "Total due today €500.50" in text


def test_forged_product_id_of_another_account_refused(client, owner):
    other = make_merchant(company="Other", currency="EUR")
    with write_transaction(db.session) as session:
        theirs = Product(account_id=other.account_id, name="Their product", unit_amount_minor=100, currency="EUR")
        session.add(theirs)
    response = client.post("/links/new", data=link_form(item_fields(0, product_id=theirs.id, currency="EUR")))
    assert response.status_code == 422
    assert "not in your library" in errors_of(response)["items-0-name"]
    assert _link_count() == 0 and _item_count() == 0


def test_nonexistent_product_id_refused(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, product_id=999999, currency="EUR")))
    assert response.status_code == 422 and "not in your library" in errors_of(response)["items-0-name"]


def test_hostile_huge_name_gives_422_and_writes_nothing(client, owner):
    response = client.post("/links/new", data=link_form(item_fields(0, name="x" * 10_000, description="y" * 10_000),
                                                        name="z" * 10_000))
    assert response.status_code == 422
    errors = errors_of(response)
    assert {"name", "items-0-name", "items-0-description"} <= set(errors)
    assert _link_count() == 0 and _item_count() == 0


def test_hostile_500_item_rows_gives_422_and_writes_nothing(client, owner):
    items = [item_fields(i, f"Item {i}", "1.00") for i in range(500)]
    response = client.post("/links/new", data=link_form(*items))
    assert response.status_code == 422
    assert "at most 50 line items" in errors_of(response)["items"]
    # The page sent back does not echo hundreds of rows.
    assert len(_rows(response)) <= 60
    assert _link_count() == 0 and _item_count() == 0


def test_hostile_item_indexes_and_markup_are_harmless(client, owner):
    data = link_form(item_fields(0, name="<script>alert(1)</script>"))
    data.update(item_fields(99999999999999999999, "Far away", "1.00"))
    response = client.post("/links/new", data={**data, "action": "refresh"})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    link = create_link(client, item_fields(0, name="<b>bold</b>"))
    assert link.items[0].name == "<b>bold</b>"
    assert "<b>bold</b>" not in client.get("/links/").get_data(as_text=True)


# -- live preview -------------------------------------------------------------------------------------------------


def test_preview_returns_only_the_summary_fragment(client, owner):
    data = link_form(item_fields(0, "Lessons", "20.00", frequency="monthly", term_type="fixed", term_count="7"))
    for headers in ({"HX-Request": "true"}, {}):
        response = client.post("/links/preview", data=data, headers=headers)
        assert response.status_code == 200, headers
        html = response.get_data(as_text=True)
        assert "<html" not in html and "<form" not in html, headers
        text = page_text(response)
        assert "Then €20.00 every month, 7 payments in total" in text
        assert "Total due today €20.00" in text
        assert "Monthly · 7 payments" in text


def test_preview_is_the_same_summary_the_buyer_sees(client, owner):
    items = (item_fields(0, "Setup", "50.00", quantity="2"),
             item_fields(1, "Lessons", "20.00", frequency="monthly", term_type="fixed", term_count="7"),
             item_fields(2, "Locker", "5.00", frequency="yearly", term_type="auto_renew"))
    preview = soup_of(client.post("/links/preview", data=link_form(*items), headers={"HX-Request": "true"}))
    link = create_link(client, *items)
    checkout = soup_of(_checkout_page(client, link))
    assert page_text_of(preview.select_one(".summary")) == page_text_of(checkout.select_one(".summary"))


def test_preview_skips_unfinished_rows(client, owner):
    data = link_form(item_fields(0, "Done", "10.00"), item_fields(1, "", "5.00"), item_fields(2, "Half", "abc"),
                     item_fields(3, "Zero", "0"))
    text = page_text(client.post("/links/preview", data=data, headers={"HX-Request": "true"}))
    assert "Done" in text and "Half" not in text and "Zero" not in text and "Total due today €10.00" in text
    empty = page_text(client.post("/links/preview", data={"currency": "EUR"}, headers={"HX-Request": "true"}))
    assert "Add a line item with a name and a price" in empty


def test_editor_page_preview_reflects_the_draft(client, owner):
    response = client.post("/links/new", data=link_form(
        item_fields(0, "Lessons", "20.00", frequency="quarterly", term_type="fixed", term_count="8"), action="refresh"))
    preview = page_text_of(soup_of(response).select_one("#link-preview"))
    assert "Then €20.00 every three months, 8 payments in total" in preview


# -- htmx ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["add_item", "remove:0", "refresh", "open_library", "save"])
def test_htmx_editor_actions_return_the_editor_fragment(client, owner, action):
    data = link_form(action=action)
    if action == "save":
        data["items-0-unit_price"] = "0"  # an error: the editor comes back instead of a redirect
    response = client.post("/links/new", data=data, headers={"HX-Request": "true"})
    assert response.status_code == (422 if action == "save" else 200)
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="editor-region"' in html
    assert "HX-Request" in response.headers.get("Vary", "")


def test_full_page_post_without_htmx_returns_the_whole_page(client, owner):
    response = client.post("/links/new", data=link_form(action="add_item"))
    assert "<html" in response.get_data(as_text=True)


# -- editing ---------------------------------------------------------------------------------------------------------


def test_edit_prefills_every_setting(client, owner):
    pipeline = _pipeline(owner)
    link = create_link(client, item_fields(0, "Lessons", "20.00", quantity="2", frequency="monthly",
                                           term_type="fixed", term_count="7", description="Weekly lesson"),
                       name="Lessons link", field_phone="required", collect_shipping_address="1",
                       confirmation="redirect", redirect_url="https://shop.example/thanks",
                       pipeline_id=str(pipeline.id), stage_id=str(pipeline.stages[1].id))
    response = client.get(f"/links/{link.id}/edit")
    assert response.status_code == 200
    values = form_values(response)
    expected = {
        "name": "Lessons link", "currency": "EUR", "items-0-name": "Lessons", "items-0-unit_price": "20.00",
        "items-0-quantity": "2", "items-0-frequency": "monthly", "items-0-term_type": "fixed",
        "items-0-term_count": "7", "items-0-description": "Weekly lesson", "field_phone": "required",
        "field_company": "off", "collect_shipping_address": "1", "collect_billing_address": "1",
        "confirmation": "redirect", "redirect_url": "https://shop.example/thanks", "allow_card": "1",
        "pipeline_id": str(pipeline.id), "stage_id": str(pipeline.stages[1].id),
    }
    assert {key: values.get(key) for key in expected} == expected
    # Saving the prefilled form unchanged changes nothing but the version.
    values["action"] = "save"
    assert client.post(f"/links/{link.id}/edit", data=values).status_code == 303
    edited = db.session.get(PaymentLink, link.id)
    assert edited.version == 2 and edited.slug == link.slug
    assert [(i.name, i.unit_amount_minor, i.quantity, i.term_count) for i in edited.items] == [
        ("Lessons", 2000, 2, 7)]


def test_edit_refused_with_errors_keeps_the_saved_link(client, owner):
    link = create_link(client)
    response = client.post(f"/links/{link.id}/edit", data=link_form(item_fields(0, unit_price="0"), name="Changed"))
    assert response.status_code == 422
    link = db.session.get(PaymentLink, link.id)
    assert (link.name, link.version, link.items[0].unit_amount_minor) == ("Spring service", 1, 2000)


def test_edit_page_shows_the_unchanged_url(client, owner):
    link = create_link(client)
    assert f"/pay/{link.slug}" in page_text(client.get(f"/links/{link.id}/edit"))


def test_deleted_link_cannot_be_edited(client, owner):
    unpaid, paid = create_link(client, name="Unpaid"), create_link(client, name="Paid")
    unpaid_id, paid_id = unpaid.id, paid.id
    assert pay_with_card(client, paid.slug).status_code == 303
    for link_id in (unpaid_id, paid_id):  # hard-deleted, and soft-deleted because it has a payment
        assert client.post(f"/links/{link_id}/delete").status_code == 303
        assert client.get(f"/links/{link_id}/edit").status_code == 404
        assert client.post(f"/links/{link_id}/edit", data=link_form()).status_code == 404


# -- access -----------------------------------------------------------------------------------------------------------


def test_payments_manager_manages_links(client):
    owner = make_merchant(currency="EUR")
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    log_in(client, manager.email, PASSWORD)
    assert client.get("/links/new").status_code == 200
    assert create_link(client).created_by_id == manager.id


def test_member_gets_403_on_every_editor_route(client):
    owner = make_merchant(currency="EUR")
    with write_transaction(db.session) as session:
        link = PaymentLink(account_id=owner.account_id, slug="membertest01", name="Mine", currency="EUR",
                           items=[LinkItem(name="X", unit_amount_minor=100, currency="EUR")])
        session.add(link)
    member = make_user(owner.account_id, Role.MEMBER)
    log_in(client, member.email, PASSWORD)
    for method, path in [("GET", "/links/new"), ("POST", "/links/new"), ("GET", f"/links/{link.id}/edit"),
                         ("POST", f"/links/{link.id}/edit"), ("POST", "/links/preview")]:
        response = client.open(path, method=method, data=link_form() if method == "POST" else None)
        assert response.status_code == 403, f"{method} {path}"
        assert "Manage payment links" in page_text(response)
    assert _link_count() == 1
    assert db.session.get(PaymentLink, link.id).name == "Mine"


def test_checkout_session_count_unchanged_by_editor_actions(client, owner):
    """Editor buttons re-render the draft; none of them writes anything."""
    for action in ("add_item", "remove:0", "up:0", "refresh", "open_library", "add_products"):
        client.post("/links/new", data=link_form(action=action))
    assert _link_count() == 0 and _item_count() == 0
    assert db.session.scalar(select(func.count()).select_from(CheckoutSession)) == 0
    assert db.session.scalar(select(func.count()).select_from(Stage)) == 0


HUGE = "9" * 25


def test_hostile_huge_ids_are_refused_not_crashing(client, owner):
    # An id no row can have is no choice at all: the default pipeline, as with an empty menu.
    for overrides in ({"pipeline_id": HUGE}, {"pipeline_id": "", "stage_id": HUGE}, {"pipeline_id": "-1"}):
        link = create_link(client, **overrides)
        assert (link.pipeline_id, link.stage_id) == (None, None), overrides
    client.post("/links/new", data=link_form(action="refresh", pipeline_id=HUGE))
    # A product id no row can have leaves a plain custom item.
    assert create_link(client, item_fields(0, product_id=HUGE, currency="EUR")).items[0].product_id is None
    response = client.post("/links/new", data=link_form(action="add_products", library_product=[HUGE]))
    assert response.status_code == 200 and [r["name"] for r in _rows(response)] == ["Bike service"]
    for path in (f"/links/{HUGE}/edit", f"/products/{HUGE}/edit", f"/links/{HUGE}/share", f"/links/{HUGE}/delete"):
        assert client.get(path).status_code == 404, path
    assert _link_count() == 4


def test_largest_price_accepted_and_one_above_refused(client, owner):
    # H13: a link's total is capped (KASSA_LINK_MAX_TOTAL_MINOR, default 99,999,999 minor units), below the
    # largest price a line can parse to (10^11); see tests/web/test_h13_link_limits.py.
    link = create_link(client, item_fields(0, "Island", "999,999.99"))
    assert link.items[0].unit_amount_minor == 99_999_999
    response = client.post("/links/new", data=link_form(item_fields(0, "Island", "1,000,000,000.01")))
    assert response.status_code == 422 and "too large" in errors_of(response)["items-0-unit_price"]
    response = client.post("/links/new", data=link_form(item_fields(0, "Island", "200,000,000.00", quantity="999")))
    assert response.status_code == 422 and "too large" in errors_of(response)["items-0-quantity"]


def test_l13_thank_you_url_typed_but_unused_is_still_checked(client, owner):
    """With the default page chosen, a typed thank-you URL is kept, so it is checked all the same."""
    for url in ("https://shop.example/" + "a" * 2500, "javascript:alert(1)"):
        response = client.post("/links/new", data=link_form(confirmation="default", redirect_url=url))
        assert response.status_code == 422 and "redirect_url" in errors_of(response)
    assert _link_count() == 0
    link = create_link(client, confirmation="default", redirect_url="https://shop.example/later")
    assert (link.confirmation, link.redirect_url) == ("default", "https://shop.example/later")
    response = pay_with_card(client, link.slug)
    assert path_of(response.headers["Location"]) == response.checkout_path  # the default page is used


def test_prices_round_trip_in_dutch(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="1,234.50")
    client.post("/preferences/language", data={"language": "nl", "next": "/"})
    link = create_link(client, item_fields(0, "Fiets", "1.234,50"), item_fields(1, "Bel", "4,5"))
    assert [i.unit_amount_minor for i in link.items] == [123450, 450]
    values = form_values(client.get(f"/links/{link.id}/edit"))
    assert (values["items-0-unit_price"], values["items-1-unit_price"]) == ("1234,50", "4,50")
    values.update({"action": "add_products", "library_product": [str(helmet.id)]})
    values = form_values(client.post(f"/links/{link.id}/edit", data=values))
    assert values["items-2-unit_price"] == "1234,50"
    values["action"] = "save"
    assert client.post(f"/links/{link.id}/edit", data=values).status_code == 303
    link = db.session.get(PaymentLink, link.id)
    assert [i.unit_amount_minor for i in link.items] == [123450, 450, 123450]
