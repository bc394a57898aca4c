"""Building products and payment links in tests, through the real editor forms (L1–L19)."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import PaymentLink, Product


def item_fields(index: int, name: str = "Bike service", unit_price: str = "20.00", *, quantity: str = "1",
                frequency: str = "one_time", term_type: str = "auto_renew", term_count: str = "",
                description: str = "", product_id: int | None = None, currency: str | None = None) -> dict:
    """The form fields of one line item row (`items-N-…`)."""
    p = f"items-{index}-"
    data = {
        p + "name": name, p + "description": description, p + "unit_price": unit_price, p + "quantity": quantity,
        p + "frequency": frequency, p + "term_type": term_type, p + "term_count": term_count,
    }
    if product_id is not None:
        data[p + "product_id"] = str(product_id)
    if currency is not None:
        data[p + "currency"] = currency
    return data


def link_form(*items: dict, action: str = "save", **overrides) -> dict:
    """A complete, valid editor form: one one-time €20 item unless `items` are given."""
    data = {
        "name": "Spring service", "currency": "EUR",
        "field_company": "off", "field_first_name": "off", "field_last_name": "off", "field_phone": "off",
        "allow_card": "1", "collect_billing_address": "1", "confirmation": "default", "redirect_url": "",
        "pipeline_id": "", "stage_id": "", "action": action,
    }
    for item in items or (item_fields(0),):
        data.update(item)
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def create_link(client, *items: dict, **overrides) -> PaymentLink:
    """Create a link through POST /links/new and return it from the database."""
    before = set(db.session.scalars(select(PaymentLink.id)))
    response = client.post("/links/new", data=link_form(*items, **overrides))
    assert response.status_code == 303, errors_of(response) or response.get_data(as_text=True)[:800]
    (new_id,) = set(db.session.scalars(select(PaymentLink.id))) - before
    return db.session.get(PaymentLink, new_id)


def product_form(**overrides) -> dict:
    data = {
        "name": "Tune-up", "description": "Full bike check", "unit_price": "45.00", "currency": "EUR",
        "frequency": "one_time", "term_type": "auto_renew", "term_count": "", "sku": "",
    }
    data.update(overrides)
    return data


def create_product(client, **overrides) -> Product:
    """Create a product through POST /products/new and return it from the database."""
    response = client.post("/products/new", data=product_form(**overrides))
    assert response.status_code == 303, errors_of(response) or response.get_data(as_text=True)[:800]
    return db.session.scalars(select(Product).order_by(Product.id.desc())).first()


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def errors_of(response) -> dict[str, str]:
    """Field errors as rendered: {field name: message} from `<p class="field__error" id="f-<field>-error">`."""
    found = {}
    for node in soup_of(response).select("p.field__error"):
        node_id = node.get("id", "")
        if node_id.startswith("f-") and node_id.endswith("-error") and not node.has_attr("hidden"):
            found[node_id[2:-6]] = " ".join(node.get_text(" ").split())
    return found


def form_values(response, form_id: str = "link-editor") -> dict[str, str | list[str]]:
    """What a browser would submit for the rendered form: enabled fields, checked boxes, selected options."""
    form = soup_of(response).select_one(f"form#{form_id}")
    assert form is not None, f"no form#{form_id} in the page"
    values: dict[str, list[str]] = {}
    for control in form.select("input, select, textarea"):
        name = control.get("name")
        if not name or control.has_attr("disabled"):
            continue
        if control.name == "input":
            kind = control.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                continue
            if kind in ("checkbox", "radio") and not control.has_attr("checked"):
                continue
            value = control.get("value", "on" if kind in ("checkbox", "radio") else "")
        elif control.name == "select":
            options = control.select("option")
            chosen = [o for o in options if o.has_attr("selected")] or options[:1]
            value = chosen[0].get("value", chosen[0].get_text()) if chosen else ""
        else:
            value = control.get_text()
        values.setdefault(name, []).append(value)
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}
