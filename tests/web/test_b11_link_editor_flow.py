"""B11, the link editor's flow: the library swaps only the line items (and says so to htmx), the live preview
is the whole checkout (contact fields per mode, payment methods, addresses, pay button), and Create leads to a
share step (address, QR code, embed snippet, the warning while no live processor is connected)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import PaymentLink
from kassa.services.links import products
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout import path_of
from tests.support.checkout_flow import actor_for, make_link
from tests.support.links import create_link, create_product, item_fields, link_form, soup_of

HTMX_ITEMS = {"HX-Request": "true", "HX-Target": "items-panel"}


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def _text(tag) -> str:
    return " ".join(tag.get_text(" ").split())


def _preview(client, **overrides):
    response = client.post("/links/preview", data=link_form(**overrides), headers={"HX-Request": "true"})
    assert response.status_code == 200
    return soup_of(response).select_one("[data-checkout-preview]")


# -- the preview is the whole checkout -----------------------------------------------------------------------


def test_b11_preview_shows_contact_fields_per_mode_methods_addresses_and_the_pay_button(client, owner):
    preview = _preview(client, field_first_name="required", field_last_name="required", field_company="optional",
                       field_phone="off", allow_ach="1", collect_shipping_address="1")
    labels = [_text(node) for node in preview.select(".cop__label")]
    assert "Email *" in labels and "First name *" in labels and "Last name *" in labels
    assert "Company" in labels  # optional: no asterisk
    assert not any(label.startswith("Phone") for label in labels)  # off: not asked
    assert [_text(m) for m in preview.select(".cop__method")] == ["Card", "Bank account"]
    assert "Card number *" in labels and "Name on card *" in labels
    subs = [_text(node) for node in preview.select(".cop__sub")]
    assert subs == ["Billing address", "Shipping address"]
    assert _text(preview.select_one("[data-preview-pay]")) == "Pay €20.00"
    assert _text(preview.select_one(".summary")).count("Bike service") == 1  # the checkout's order summary
    assert preview.select("input, select, button, textarea") == []  # a picture: nothing to focus or send


def test_b11_preview_follows_each_setting(client, owner):
    # Bank debit only: its fields, no card fields, no billing address (that belongs to the card).
    ach_only = _preview(client, allow_card=None, allow_ach="1", field_phone="optional")
    labels = [_text(node) for node in ach_only.select(".cop__label")]
    assert "Routing number *" in labels and "Account number *" in labels and "Phone number" in labels
    assert "Card number *" not in labels and not ach_only.select(".cop__methods, .cop__sub")
    # A recurring item: bank debit isn't offered even if ticked, and the buyer sees the future-charges line.
    recurring = _preview(client, allow_ach="1", **item_fields(0, frequency="monthly"))
    assert not recurring.select(".cop__methods")
    assert "charge your card for the future payments" in _text(recurring)
    # No address at all; no method at all.
    bare = _preview(client, collect_billing_address=None)
    assert not bare.select(".cop__sub")
    none = _preview(client, allow_card=None)
    assert "Accept at least one payment method." in _text(none)


def test_b11_full_editor_page_carries_the_whole_checkout_preview(client, owner):
    soup = soup_of(client.get("/links/new"))
    preview = soup.select_one("#link-preview [data-checkout-preview]")
    assert preview is not None and preview.select_one("[data-preview-pay]") is not None
    assert soup.select_one("aside.editor__preview")["tabindex"] == "0"  # it scrolls on its own: reachable by key


# -- the library keeps the page where it is ------------------------------------------------------------------


def test_b11_library_buttons_target_the_items_panel_and_work_without_javascript(client, owner):
    create_product(client, name="Helmet", unit_price="59.90")
    soup = soup_of(client.post("/links/new", data=link_form(action="open_library")))
    for value in ("open_library", "search_library", "add_products", "refresh"):
        button = soup.find("button", attrs={"name": "action", "value": value, "hx-target": "#items-panel"})
        assert button is not None, value
        assert "show:none" in button["hx-swap"]
        assert button["formaction"] == "/links/new#items-title"  # without JS the page comes back at the items


def test_b11_adding_library_products_answers_with_the_items_panel_and_out_of_band_updates(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="59.90")
    club = create_product(client, name="Bike club", unit_price="9.00", frequency="monthly")
    data = link_form(item_fields(0, name="Bell", unit_price="5.00"), action="add_products", allow_ach="1",
                     library_product=[str(helmet.id), str(club.id)])
    response = client.post("/links/new", data=data, headers=HTMX_ITEMS)
    assert response.status_code == 200
    soup = soup_of(response)
    panel = soup.select_one("section#items-panel")
    assert panel is not None and soup.select_one("form#link-editor") is None  # only the items, not the editor
    assert [i["value"] for i in panel.select("input[name$='-name']")] == ["Bell", "Bike club", "Helmet"]
    focus = panel.select("[data-focus-after-swap]")
    assert [node["id"] for node in focus] == ["item-1-title"]  # the first product that came in
    # The preview and the payment methods change with the items: sent out of band.
    preview = soup.select_one("#link-preview[hx-swap-oob]")
    assert "Pay €73.90" in _text(preview)
    methods = soup.select_one("fieldset#f-payment_methods[hx-swap-oob]")
    assert "Not available: bank debit is only for one-time payments" in _text(methods)  # a recurring item came in
    assert _link_count() == 0  # nothing saved


def test_b11_library_answers_whole_editor_to_other_targets_and_whole_page_without_htmx(client, owner):
    helmet = create_product(client, name="Helmet", unit_price="59.90")
    data = link_form(item_fields(0, name="", unit_price=""), action="add_products", library_product=[str(helmet.id)])
    region = soup_of(client.post("/links/new", data=data, headers={"HX-Request": "true", "HX-Target": "editor-region"}))
    assert region.select_one("form#link-editor") is not None and region.select_one("[hx-swap-oob]") is None
    page = client.post("/links/new", data=data)
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    assert soup_of(page).select_one("#f-items-0-name")["value"] == "Helmet"  # the empty starter row is replaced


def test_b11_another_merchants_product_is_not_added(client, owner):
    other = make_merchant(company="Other Shop")
    theirs = products.create_product(actor_for(other), {
        "name": "Secret", "description": "", "unit_price": "1.00", "currency": "EUR", "frequency": "one_time",
        "term_type": "auto_renew", "term_count": "", "sku": ""}, "en")
    soup = soup_of(client.post("/links/new", data=link_form(action="add_products",
                                                             library_product=[str(theirs.id)]),
                               headers=HTMX_ITEMS))
    assert "Secret" not in _text(soup) and not soup.select("[data-focus-after-swap]")


def _link_count() -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentLink))


# -- after Create: the share step ----------------------------------------------------------------------------


def test_b11_create_leads_to_the_share_step_with_url_qr_and_embed(client, owner):
    response = client.post("/links/new", data=link_form(name="Spring service"))
    link = db.session.scalars(select(PaymentLink)).one()
    assert path_of(response.headers["Location"]) == f"/links/{link.id}/created"
    step = client.get(f"/links/{link.id}/created")
    assert step.status_code == 200
    soup = soup_of(step)
    assert _text(soup.select_one("h1")) == "“Spring service” is ready to share"
    url = soup.select_one("#share-url")["value"]
    assert url.endswith(f"/pay/{link.slug}")
    assert soup.select_one("button[data-copy='share-url']") is not None
    assert soup.select_one(".qr svg") is not None
    assert soup.find("a", href=f"/links/{link.id}/qr.png") is not None
    snippet = soup.select_one("#embed-snippet").get_text()
    assert f'<a href="{url}" data-kassa-button>' in snippet
    assert soup.select_one("iframe.embed-preview")["src"] == f"/links/{link.id}/embed-preview"
    # No live processor yet: the warning, with the signed test link.
    warning = soup.select_one(".alert--warning")
    assert "can't take payments yet" in _text(warning)
    assert warning.find("a", string="Open test checkout")["href"].startswith(f"/pay/{link.slug}/test")
    assert soup.find("a", string="Edit")["href"] == f"/links/{link.id}/edit"


def test_b11_editing_a_link_goes_back_to_the_list_not_the_share_step(client, owner):
    link = create_link(client)
    response = client.post(f"/links/{link.id}/edit", data=link_form(name="Renamed"))
    assert path_of(response.headers["Location"]) == f"/links/?highlight={link.id}"


def test_b11_share_step_of_another_merchant_or_a_deleted_link_is_404(client, owner):
    link_id = create_link(client).id
    assert client.post(f"/links/{link_id}/delete").status_code in (204, 303)
    assert client.get(f"/links/{link_id}/created").status_code == 404
    other = make_merchant(company="Other Shop")
    theirs = make_link(other)
    assert client.get(f"/links/{theirs.id}/created").status_code == 404
    assert "Other Shop" not in page_text(client.get("/links/"))
