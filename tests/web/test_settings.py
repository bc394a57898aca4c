"""Settings pages: account, branding (E3), notifications, profile."""

from __future__ import annotations

import io

import pytest
from bs4 import BeautifulSoup
from PIL import Image
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Account, AuditEvent
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text


@pytest.fixture
def owner(client):
    user = make_merchant(company="Acme")
    log_in(client, user.email, PASSWORD)
    return user


def _account_form(**overrides):
    data = {
        "name": "Acme BV", "country": "NL", "default_currency": "EUR", "timezone": "Europe/Amsterdam",
        "language": "nl", "address": "Dam 1\nAmsterdam", "support_email": "help@acme.example",
    }
    data.update(overrides)
    return data


def _errors(response) -> dict[str, str]:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return {node["id"][2:-6]: node.get_text(" ", strip=True) for node in soup.select(".field__error")}


def test_account_settings_saved_and_audited(client, owner):
    assert client.post("/settings/account", data=_account_form()).status_code == 303
    account = db.session.get(Account, owner.account_id)
    assert (account.name, account.country, account.default_currency, account.timezone, account.language) == (
        "Acme BV", "NL", "EUR", "Europe/Amsterdam", "nl")
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.updated"))
    assert audit.actor_id == owner.id and audit.data["before"]["name"] == "Acme"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "company name"),
        ("country", "XX", "country"),
        ("default_currency", "EURO", "currency"),
        ("timezone", "Mars/Olympus", "time zone"),
        ("language", "de", "language"),
        ("support_email", "help@", "valid email"),
        ("address", "x" * 501, "500"),
    ],
)
def test_account_settings_reject_bad_input_and_change_nothing(client, owner, field, value, message):
    response = client.post("/settings/account", data=_account_form(**{field: value}))
    assert response.status_code == 422
    assert message in _errors(response)[field].lower() or message in _errors(response)[field]
    assert db.session.get(Account, owner.account_id).name == "Acme"


def _image(fmt: str, size=(400, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def test_e3_logo_upload_is_reencoded_and_served_publicly(client, owner, app):
    response = client.post(
        "/settings/branding",
        data={"brand_color": "#AA3300", "logo": (io.BytesIO(_image("JPEG")), "logo.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    account = db.session.get(Account, owner.account_id)
    assert account.brand_color == "#aa3300"
    assert account.logo_path and account.logo_path.endswith(".png")
    client.post("/logout")
    logo = client.get(f"/media/logos/{account.logo_path}")
    assert logo.status_code == 200 and logo.mimetype == "image/png"
    assert Image.open(io.BytesIO(logo.data)).format == "PNG"
    assert "immutable" in logo.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("payload", "name", "message"),
    [
        (b"GIF89a" + b"\x00" * 100, "logo.png", "PNG or JPEG"),
        (b"%PDF-1.4 not an image", "logo.jpg", "PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 + 10), "big.png", "1 MB"),
    ],
)
def test_e3_logo_upload_refuses_bad_files(client, owner, payload, name, message):
    response = client.post(
        "/settings/branding",
        data={"brand_color": "#112233", "logo": (io.BytesIO(payload), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert message in _errors(response)["logo"]
    account = db.session.get(Account, owner.account_id)
    assert account.logo_path is None and account.brand_color != "#112233"


def test_e3_gif_content_named_png_is_refused_by_content(client, owner):
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="GIF")
    response = client.post(
        "/settings/branding",
        data={"brand_color": "#112233", "logo": (io.BytesIO(out.getvalue()), "logo.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422


def test_e3_brand_colour_validated(client, owner):
    response = client.post("/settings/branding", data={"brand_color": "red; background:url(x)"})
    assert response.status_code == 422
    assert "#2f5bd3" in _errors(response)["brand_color"]


def test_branding_preview_uses_brand_colour_without_inline_styles(client, owner):
    client.post("/settings/branding", data={"brand_color": "#aa3300"})
    html = client.get("/settings/branding").get_data(as_text=True)
    assert "--brand: #aa3300" in html
    assert " style=" not in html


def test_notification_switches_saved(client, owner):
    client.post("/settings/notifications", data={"enabled": ["dispute_opened", "payout_sent"]})
    account = db.session.get(Account, owner.account_id)
    assert account.notification_enabled("dispute_opened") is True
    assert account.notification_enabled("payment_received") is False
    assert account.notification_enabled("payout_sent") is True


def test_user_language_switch_translates_the_dashboard(client, owner):
    client.post("/preferences/language", data={"language": "nl", "next": "/"})
    assert "Betaallinks" in page_text(client.get("/"))
    client.post("/preferences/language", data={"language": "fr", "next": "/"})
    assert "Liens de paiement" in page_text(client.get("/"))


def test_view_test_data_switch_is_remembered_per_user(client, owner):
    client.post("/preferences/test-data", data={"value": "0", "next": "/"})
    assert "viewing test data" not in page_text(client.get("/"))
    client.post("/preferences/test-data", data={"value": "1", "next": "/"})
    assert "viewing test data" in page_text(client.get("/"))
