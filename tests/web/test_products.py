"""The product library (issue 4): create and edit with field-level validation, archive and restore,
delete only what no link uses, search, pagination, and who may manage it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import AuditEvent, Product, Role
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import log_in, page_text
from tests.support.links import create_link, create_product, errors_of, item_fields, product_form, soup_of


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR")
    log_in(client, user.email, PASSWORD)
    return user


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Product))


def _listed(response) -> list[str]:
    """Product names in the library table (not in toasts or headings)."""
    return [row.th.a.get_text(strip=True) for row in soup_of(response).select("#product-table tbody tr")]


def _bulk_products(account_id: int, names: list[str]) -> None:
    with write_transaction(db.session) as session:
        for name in names:
            session.add(Product(account_id=account_id, name=name, unit_amount_minor=1000, currency="EUR"))


# -- create and edit ------------------------------------------------------------------------------


def test_create_product_stores_exact_minor_units_and_audits(client, owner):
    product = create_product(client, name="Yearly care plan", unit_price="1,234.50", frequency="yearly",
                             term_type="fixed", term_count="3", sku="CARE-Y")
    assert (product.account_id, product.name, product.unit_amount_minor, product.currency) == (
        owner.account_id, "Yearly care plan", 123450, "EUR")
    assert (product.frequency, product.term_type, product.term_count, product.sku) == ("yearly", "fixed", 3, "CARE-Y")
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "product.created"))
    assert audit.actor_id == owner.id and audit.amount_after_minor == 123450
    # The list shows it with its price and terms.
    text = page_text(client.get("/products/"))
    assert "Yearly care plan" in text and "€1,234.50" in text and "3 payments" in text


def test_create_product_page_has_labelled_fields(client, owner):
    soup = soup_of(client.get("/products/new"))
    for name in ("name", "description", "unit_price", "currency", "frequency", "term_count", "sku"):
        assert soup.select_one(f'label[for="f-{name}"]'), name


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"unit_price": "0"}, "unit_price", "can't be 0"),  # L3
        ({"unit_price": "0.00"}, "unit_price", "can't be 0"),
        ({"unit_price": "-5"}, "unit_price", "negative"),
        ({"unit_price": "12,3,4"}, "unit_price", "Enter an amount like"),
        ({"unit_price": "abc"}, "unit_price", "Enter an amount like"),
        ({"unit_price": "12.345"}, "unit_price", "at most 2 decimals"),
        ({"unit_price": ""}, "unit_price", "Enter an amount"),
        ({"unit_price": "99999999999999"}, "unit_price", "too large"),
        ({"currency": "XYZ"}, "currency", "Choose a currency"),
        ({"currency": ""}, "currency", "Choose a currency"),
        ({"frequency": "monthly", "term_type": "fixed", "term_count": "1"}, "term_count", "2 to 120"),
        ({"frequency": "monthly", "term_type": "fixed", "term_count": "121"}, "term_count", "2 to 120"),
        ({"frequency": "monthly", "term_type": "fixed", "term_count": "seven"}, "term_count", "2 to 120"),
        ({"frequency": "monthly", "term_type": "sometimes"}, "term_type", "billing terms"),
        ({"frequency": "hourly"}, "frequency", "billing frequency"),
        ({"name": ""}, "name", "Enter a product name"),
        ({"name": "   "}, "name", "Enter a product name"),
        ({"name": "x" * 201}, "name", "200 characters"),
        ({"description": "d" * 2001}, "description", "2000 characters"),
        ({"sku": "s" * 65}, "sku", "64 characters"),
    ],
)
def test_product_validation_message_at_the_field_and_nothing_saved(client, owner, overrides, field, message):
    response = client.post("/products/new", data=product_form(**overrides))
    assert response.status_code == 422
    errors = errors_of(response)
    assert message in errors[field], errors
    # What was typed is shown back, and the error is tied to its input.
    soup = soup_of(response)
    control = soup.select_one(f"#f-{field}")
    if control is not None and control.name == "input":
        assert control.get("aria-invalid") == "true"
        assert f"f-{field}-error" in control.get("aria-describedby", "")
    assert _count() == 0


def test_product_fixed_term_bounds_are_accepted(client, owner):
    assert create_product(client, frequency="monthly", term_type="fixed", term_count="2").term_count == 2
    assert create_product(client, frequency="monthly", term_type="fixed", term_count="120").term_count == 120


def test_one_time_product_ignores_terms(client, owner):
    product = create_product(client, frequency="one_time", term_type="fixed", term_count="999")
    assert (product.frequency, product.term_type, product.term_count) == ("one_time", None, None)


def test_jpy_product_has_no_decimals(client, owner):
    assert create_product(client, currency="JPY", unit_price="1500").unit_amount_minor == 1500
    response = client.post("/products/new", data=product_form(currency="JPY", unit_price="15.50"))
    assert response.status_code == 422 and "no decimals" in errors_of(response)["unit_price"]


def test_edit_product_prefills_and_saves(client, owner):
    product = create_product(client)
    soup = soup_of(client.get(f"/products/{product.id}/edit"))
    assert soup.select_one("#f-name")["value"] == "Tune-up"
    assert soup.select_one("#f-unit_price")["value"] == "45.00"
    response = client.post(f"/products/{product.id}/edit", data=product_form(name="Tune-up deluxe", unit_price="55"))
    assert response.status_code == 303
    db.session.refresh(product)
    assert (product.name, product.unit_amount_minor) == ("Tune-up deluxe", 5500)


def test_edit_product_refuses_zero_price_and_keeps_old_values(client, owner):
    product = create_product(client)
    response = client.post(f"/products/{product.id}/edit", data=product_form(unit_price="0"))
    assert response.status_code == 422 and "can't be 0" in errors_of(response)["unit_price"]
    db.session.refresh(product)
    assert product.unit_amount_minor == 4500


# -- archive, restore, delete -----------------------------------------------------------------------


def test_archive_and_restore(client, owner):
    product = create_product(client, name="Old saddle")
    response = client.post(f"/products/{product.id}/archive", data={"archived": "1"})
    assert response.status_code == 303
    db.session.refresh(product)
    assert product.archived_at is not None
    assert "“Old saddle” archived" in page_text(client.get(response.headers["Location"]))
    assert _listed(client.get("/products/")) == []
    assert _listed(client.get("/products/?archived=1")) == ["Old saddle"]

    client.post(f"/products/{product.id}/archive", data={"archived": "0"})
    db.session.refresh(product)
    assert product.archived_at is None
    assert _listed(client.get("/products/")) == ["Old saddle"]
    assert _listed(client.get("/products/?archived=1")) == []


def test_archived_product_is_not_offered_in_the_link_library(client, owner):
    create_product(client, name="Current helmet")
    old = create_product(client, name="Old saddle")
    client.post(f"/products/{old.id}/archive", data={"archived": "1"})
    response = client.post("/links/new", data={"currency": "EUR", "action": "open_library"})
    soup = soup_of(response)
    offered = [label.get_text(" ", strip=True) for label in soup.select(".library__item label")]
    assert any("Current helmet" in text for text in offered)
    assert not any("Old saddle" in text for text in offered)


def test_delete_unused_product(client, owner):
    product = create_product(client, name="Spare bell")
    dialog = client.get(f"/products/{product.id}/delete")
    assert dialog.status_code == 200 and soup_of(dialog).select_one("dialog")
    response = client.post(f"/products/{product.id}/delete")
    assert response.status_code == 303
    assert _count() == 0
    assert "deleted" in page_text(client.get(response.headers["Location"]))


def test_delete_product_used_on_a_link_is_refused_archive_instead(client, owner):
    product = create_product(client, name="Tune-up")
    create_link(client, item_fields(0, "Tune-up", "45.00", product_id=product.id, currency="EUR"))

    dialog = client.get(f"/products/{product.id}/delete")
    soup = soup_of(dialog)
    assert "can't be deleted" in page_text(dialog)
    assert soup.select_one(f'dialog form[action="/products/{product.id}/archive"]')
    assert not soup.select_one(f'dialog form[action="/products/{product.id}/delete"]')

    response = client.post(f"/products/{product.id}/delete")
    assert response.status_code == 303
    assert db.session.get(Product, product.id) is not None
    assert "Archive it instead" in page_text(client.get(response.headers["Location"]))

    # Archiving is the way out, and the link keeps working.
    client.post(f"/products/{product.id}/archive", data={"archived": "1"})
    db.session.refresh(product)
    assert product.archived_at is not None


def test_htmx_delete_dialog_is_a_fragment(client, owner):
    product = create_product(client)
    response = client.get(f"/products/{product.id}/delete", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<dialog" in html


# -- search and pagination --------------------------------------------------------------------------


def test_search_by_name_and_sku_case_insensitive(client, owner):
    create_product(client, name="Brake pads", sku="BRK-01")
    create_product(client, name="Chain oil", sku="OIL-7")
    create_product(client, name="Brake cable")
    assert _listed(client.get("/products/?q=brake")) == ["Brake cable", "Brake pads"]
    assert _listed(client.get("/products/?q=oil-7")) == ["Chain oil"]
    assert _listed(client.get("/products/?q=BRAKE P")) == ["Brake pads"]
    assert "No product matches" in page_text(client.get("/products/?q=unicycle"))


def test_search_with_like_wildcards_is_literal(client, owner):
    create_product(client, name="Chain oil")
    create_product(client, name="100% wool socks")
    assert _listed(client.get("/products/?q=%25")) == ["100% wool socks"]
    assert _listed(client.get("/products/?q=_")) == []


def test_pagination_over_25_products(client, owner):
    _bulk_products(owner.account_id, [f"Product {n:02d}" for n in range(1, 31)])
    first = client.get("/products/")
    rows = soup_of(first).select("table tbody tr")
    assert len(rows) == 25
    assert "30 products" in page_text(first)
    next_link = soup_of(first).select_one('a[rel="next"]')
    second = client.get(next_link["href"])
    assert _listed(second) == [f"Product {n:02d}" for n in range(26, 31)]
    assert not soup_of(second).select_one('a[rel="next"]')
    assert soup_of(second).select_one('a[rel="prev"]')


def test_empty_library_offers_create(client, owner):
    response = client.get("/products/")
    soup = soup_of(response)
    assert "Your product library is empty" in page_text(response)
    assert soup.select_one('.empty a[href="/products/new"]')


def test_products_of_another_account_are_not_listed(client, owner):
    other = make_merchant(company="Other")
    _bulk_products(other.account_id, ["Their secret product"])
    assert _listed(client.get("/products/")) == []
    assert _listed(client.get("/products/?q=secret")) == []


# -- access -------------------------------------------------------------------------------------------


def test_payments_manager_manages_products(client):
    owner = make_merchant()
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    log_in(client, manager.email, PASSWORD)
    assert client.get("/products/").status_code == 200
    assert create_product(client).account_id == owner.account_id


def test_member_gets_403_on_every_product_route(client):
    owner = make_merchant()
    _bulk_products(owner.account_id, ["Tune-up"])
    product_id = db.session.scalar(select(Product.id))
    member = make_user(owner.account_id, Role.MEMBER)
    log_in(client, member.email, PASSWORD)
    for method, path in [
        ("GET", "/products/"), ("GET", "/products/new"), ("POST", "/products/new"),
        ("GET", f"/products/{product_id}/edit"), ("POST", f"/products/{product_id}/edit"),
        ("POST", f"/products/{product_id}/archive"), ("GET", f"/products/{product_id}/delete"),
        ("POST", f"/products/{product_id}/delete"),
    ]:
        response = client.open(path, method=method, data=product_form() if method == "POST" else None)
        assert response.status_code == 403, f"{method} {path}"
        assert "Manage payment links" in page_text(response)
    assert db.session.get(Product, product_id).archived_at is None
    assert _count() == 1


def test_logged_out_is_sent_to_login(client):
    response = client.get("/products/")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
