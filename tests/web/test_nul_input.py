"""NUL characters in any input are refused app-wide with a 400 and a clear message (PostgreSQL can't store them).

Without the guard in kassa/input_guard.py a NUL reached PostgreSQL from several forms and crashed the request
with a 500 (or was silently dropped by the few services that stripped it). Every case here runs on SQLite and
PostgreSQL and checks that the answer is a 400 naming the problem and that no table changed.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kassa.extensions import db
from kassa.services.backoffice import saved_views
from tests.factories import make_merchant
from tests.support.app import page_text
from tests.support.links import create_link, create_product, item_fields, link_form, product_form
from tests.support.payments import actor_for, login, sandbox_payment, soup_of, text_of

MESSAGE = "The request contains a NUL character"


@pytest.fixture
def shop(client):
    owner = make_merchant(company="Acme")
    login(client, owner)
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    link = create_link(client)
    product = create_product(client)
    view = saved_views.save_view(actor_for(owner), tab="payments", name="Failures", shared=False,
                                 state={"status": ["failed"]})
    return {"owner": owner, "payment": payment.id, "link": link.id, "product": product.id, "view": view.id}


def _snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, so "nothing changed" means nothing anywhere."""
    db.session.rollback()
    rows = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows[table.name] = [tuple(row) for row in conn.execute(sa.select(table).order_by(*order))]
    return rows


def _requests(s: dict) -> list[tuple[str, str, dict]]:
    """(method, url, data) of the forms and filters a merchant uses, each with a NUL in one value."""
    return [
        # Settings
        ("POST", "/settings/account", {"name": "Acme\x00 BV", "country": "NL", "default_currency": "EUR",
                                       "timezone": "Europe/Amsterdam", "language": "en", "address": "Dam 1",
                                       "support_email": "help@acme.example"}),
        ("POST", "/settings/profile", {"language": "nl\x00"}),
        # The link editor, new and existing, and its search in the product library
        ("POST", "/links/new", link_form(name="Spring\x00 service")),
        ("POST", f"/links/{s['link']}/edit", link_form(item_fields(0, "Bike\x00 service"))),
        ("POST", "/links/new", link_form(action="search_library", library_search="hel\x00m")),
        # Products
        ("POST", "/products/new", product_form(name="Tune\x00up")),
        ("POST", f"/products/{s['product']}/edit", product_form(description="Full\x00 check")),
        ("GET", "/products/", {"q": "tune\x00"}),
        ("GET", "/links/", {"q": "spring\x00"}),
        # A refund's note
        ("POST", f"/payments/{s['payment']}/refund", {"amount": "1.00", "reason": "other", "note": "Good\x00will"}),
        # Saved views: a new one, a rename
        ("POST", "/payments/views", {"name": "Fail\x00ures", "state_args": "status=failed"}),
        ("POST", f"/payments/views/{s['view']}", {"action": "rename", "name": "Bank\x00 failures"}),
        # Filters: quick filters, an advanced filter in the URL and in the side panel, an association search
        ("GET", "/payments/", {"email": "ann\x00@x.example"}),
        ("GET", "/payments/", {"adv": '[[["email", "contains", ["a\x00b"]]]]'}),
        ("GET", "/payments/disputes", {"currency": "\x00"}),
        ("POST", "/payments/filters", {"c-0-0-prop": "email", "c-0-0-op": "contains", "c-0-0-v1": "a\x00b",
                                       "action": "apply", "tab": "payments", "base_args": ""}),
        ("GET", f"/payments/{s['payment']}/associations/contact", {"q": "an\x00n"}),
        ("POST", f"/payments/{s['payment']}/associations/contact", {"action": "label", "label": "Pay\x00er"}),
        # NUL in a field's name rather than its value
        ("POST", "/payments/views", {"na\x00me": "x", "name": "Failures 2", "state_args": ""}),
    ]


def test_nul_in_any_form_or_filter_is_a_400_with_a_message_and_changes_nothing(client, shop):
    before = _snapshot()
    for method, url, data in _requests(shop):
        response = client.get(url, query_string=data) if method == "GET" else client.post(url, data=data)
        assert response.status_code == 400, (url, data, response.status_code)
        assert MESSAGE in page_text(response), (url, data)
    assert _snapshot() == before


def test_nul_answer_to_htmx_is_an_inline_alert(client, shop):
    """htmx shows the alert of a 4xx answer as a toast: it must carry the message."""
    response = client.post("/payments/filters", headers={"HX-Request": "true"},
                           data={"c-0-0-prop": "email", "c-0-0-op": "contains", "c-0-0-v1": "\x00", "action": "apply",
                                 "tab": "payments", "base_args": ""})
    assert response.status_code == 400
    alert = soup_of(response).select_one('.alert[role="alert"]')
    assert alert is not None and MESSAGE in text_of(alert)
    assert soup_of(response).find("html") is None


def test_nul_in_a_json_body_the_path_or_an_upload_name_is_a_400(client, shop):
    import io

    before = _snapshot()
    assert client.post("/payments/views", json={"name": "Fail\x00ures", "tags": [{"deep": ["\x00"]}]}
                       ).status_code == 400
    assert client.get("/pay/abc%00def").status_code == 400
    upload = client.post("/settings/branding", data={"brand_color": "#112233",
                                                     "logo": (io.BytesIO(b"x"), "logo\x00.png")},
                         content_type="multipart/form-data")
    assert upload.status_code == 400
    assert _snapshot() == before


def test_text_without_nul_still_goes_through(client, shop):
    """The guard looks for NUL only: other control characters and non-ASCII text are the forms' business."""
    response = client.post("/payments/views", data={"name": "Échecs\tbancaires", "state_args": "status=failed"})
    assert response.status_code == 303
    assert client.get("/payments/", query_string={"email": "zoë@x.example"}).status_code == 200
