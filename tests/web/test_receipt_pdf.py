"""E2/E3: the branded PDF receipt, in the buyer's language, and the local-only fetcher behind every PDF."""

from __future__ import annotations

import io
import re
import select
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import force_locale, gettext
from PIL import Image
from pypdf import PdfReader

from kassa.money import Money
from kassa.renderers.pdf import STATIC_DIR, ForbiddenResource, render_pdf, url_fetcher
from kassa.renderers.receipt import ReceiptData, ReceiptLine, render_receipt


@pytest.fixture
def app(tmp_path, monkeypatch) -> Iterator[Flask]:
    """A bare app context: the renderer needs templates and Babel, not the database."""
    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("KASSA_SMTP_URL", "KASSA_REDIS_URL", "KASSA_DATABASE_URL", "KASSA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    from kassa import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        yield app


@pytest.fixture
def upload_dir(app: Flask) -> Path:
    path = Path(app.config["KASSA_UPLOAD_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (240, 80), (214, 69, 65, 255)).save(path, format="PNG")
    return path


def receipt(currency: str = "EUR", **changes) -> ReceiptData:
    def m(minor: int) -> Money:
        return Money(minor, currency)

    data = ReceiptData(
        number="R-000042",
        issued_at=datetime(2025, 3, 12, 13, 3, tzinfo=UTC),
        timezone="Europe/Amsterdam",
        language="en",
        merchant_name="Bakkerij De Gouden Korst",
        merchant_address="Kerkstraat 12\n1017 GC Amsterdam",
        merchant_email="hallo@goudenkorst.example",
        brand_color="#d64541",
        logo_file=None,
        buyer_email="jane.doe@example.com",
        buyer_name="Jane Doe",
        billing_address="221B Baker Street\nLondon NW1 6XE",
        lines=(
            ReceiptLine("Sourdough subscription", "One loaf every Saturday", 1, m(1000), m(1000),
                        "every month, 7 payments"),
            ReceiptLine("Croissants", "Box of six", 2, m(625), m(1250), None),
        ),
        total=m(2250),
        amount_paid=m(2250),
        payment_method="Visa •••• 4242",
        test_mode=False,
    )
    return replace(data, **changes)


def pdf_text(pdf: bytes) -> str:
    """All text of the PDF, with the no-break spaces Babel puts in amounts and dates made plain."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return " ".join(re.sub("[\u00a0\u202f\u2009]", " ", text).split())


def image_xobjects(pdf: bytes) -> list:
    images = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        images += [x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image"]
    return images


def fill_colours(pdf: bytes) -> set[tuple[int, int, int]]:
    """Every RGB fill colour the first page paints with, as 0-255 integers."""
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data().decode("latin-1")
    return {tuple(round(float(c) * 255) for c in match)
            for match in re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) rg", content)}


def test_e2_receipt_is_a_pdf_attachment_named_after_its_number(app):
    filename, content_type, pdf = render_receipt(receipt())

    assert filename == "receipt-R-000042.pdf"
    assert content_type == "application/pdf"
    assert pdf.startswith(b"%PDF-")


def test_e2_receipt_filename_keeps_only_plain_characters(app):
    filename, _, _ = render_receipt(receipt(number='R/../42 "x"'))

    assert filename == "receipt-R-42-x.pdf"


def test_e2_receipt_shows_merchant_buyer_number_items_and_amounts(app):
    data = receipt(refunded=Money(500, "EUR"), recurring_note="Then €10.00 every month until cancelled")

    text = pdf_text(render_receipt(data)[2])

    for expected in (
        "Bakkerij De Gouden Korst", "Kerkstraat 12", "1017 GC Amsterdam", "hallo@goudenkorst.example",
        "R-000042", "Mar 12, 2025, 2:03 PM CET",  # 13:03 UTC is 14:03 in Amsterdam (B7: one style, zone named)
        "Jane Doe", "jane.doe@example.com", "221B Baker Street",
        "Sourdough subscription", "One loaf every Saturday", "every month, 7 payments",
        "Croissants", "Box of six", "€6.25", "€12.50",
        "Total €22.50", "Amount paid €22.50", "Refunded -€5.00",
        "Visa •••• 4242", "Then €10.00 every month until cancelled",
    ):
        assert expected in text, expected
    assert "Receipt" in text


def test_e2_receipt_without_optional_parts_prints_none_of_their_labels(app):
    text = pdf_text(render_receipt(receipt(billing_address=None, refunded=None, recurring_note=None))[2])

    assert "Refunded" not in text
    assert "221B Baker Street" not in text


def test_e2_receipt_without_a_merchant_email_has_no_contact_line(app):
    with_email = pdf_text(render_receipt(receipt())[2])
    without_email = pdf_text(render_receipt(receipt(merchant_email=""))[2])

    assert "Questions about this payment? Contact Bakkerij De Gouden Korst at hallo@goudenkorst.example." in with_email
    assert "Questions about this payment" not in without_email


def test_e2_receipt_title_can_be_overridden(app):
    text = pdf_text(render_receipt(receipt(title="Payment confirmation"))[2])

    assert "Payment confirmation" in text


@pytest.mark.parametrize(
    ("language", "total", "date"),
    [("nl", "€ 22,50", "12 mrt 2025"), ("fr", "22,50 €", "12 mars 2025")],
)
def test_e2_receipt_is_in_the_buyers_language(app, language, total, date):
    _, _, pdf = render_receipt(receipt(language=language))

    text = pdf_text(pdf)
    assert total in text
    assert date in text
    assert "14:03" in text  # 24-hour clock in both, in the merchant's zone
    with force_locale(language):
        labels = [gettext("Receipt"), gettext("Amount paid"), gettext("Payment method"), gettext("Billed to")]
    for label in labels:
        assert label.upper() in text.upper(), label
    assert PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Lang"] == language


def test_e2_receipt_dates_follow_the_merchants_time_zone(app):
    data = receipt(timezone="America/New_York", issued_at=datetime(2025, 7, 2, 2, 30, tzinfo=UTC))

    text = pdf_text(render_receipt(data)[2])

    assert "Jul 1, 2025, 10:30 PM EDT" in text


def test_e2_receipt_in_jpy_has_no_decimals(app):
    data = receipt("JPY", lines=(ReceiptLine("Matcha", "", 3, Money(1250, "JPY"), Money(3750, "JPY"), None),),
                   total=Money(3750, "JPY"), amount_paid=Money(3750, "JPY"))

    text = pdf_text(render_receipt(data)[2])

    assert "¥1,250" in text
    assert "Total ¥3,750" in text
    assert "3,750.00" not in text


def test_e2_receipt_in_kwd_has_three_decimals(app):
    data = receipt("KWD", lines=(ReceiptLine("Dates", "", 1, Money(12345, "KWD"), Money(12345, "KWD"), None),),
                   total=Money(12345, "KWD"), amount_paid=Money(12345, "KWD"), language="fr")

    text = pdf_text(render_receipt(data)[2])

    assert "12,345 KWD" in text
    assert Money(12345, "KWD").format("fr").replace("\u00a0", " ").replace("\u202f", " ") in text


def test_e2_test_mode_receipt_is_watermarked_and_says_no_money_moved(app):
    text = pdf_text(render_receipt(receipt(test_mode=True))[2])

    assert "TEST" in text
    assert "Test payment — no money was moved" in text


def test_e2_live_receipt_has_no_test_marks(app):
    text = pdf_text(render_receipt(receipt(test_mode=False))[2])

    assert "TEST" not in text
    assert "no money was moved" not in text


def test_e3_receipt_embeds_the_merchants_logo(app, upload_dir):
    logo = write_png(upload_dir / "logos" / "abcdefghijklmnop.png")

    with_logo = render_receipt(receipt(logo_file=logo))[2]
    without_logo = render_receipt(receipt(logo_file=None))[2]

    assert len(image_xobjects(with_logo)) == 1
    assert image_xobjects(without_logo) == []


def test_e3_missing_logo_file_renders_without_it(app, upload_dir):
    _, _, pdf = render_receipt(receipt(logo_file=upload_dir / "logos" / "gone000000000000.png"))

    assert image_xobjects(pdf) == []
    assert "Bakkerij De Gouden Korst" in pdf_text(pdf)


def test_e3_logo_outside_the_upload_folder_is_not_read(app, upload_dir, tmp_path):
    outside = write_png(tmp_path / "elsewhere" / "logo.png")

    _, _, pdf = render_receipt(receipt(logo_file=outside))

    assert image_xobjects(pdf) == []


def test_e3_receipt_has_a_bar_in_the_brand_colour(app):
    assert (214, 69, 65) in fill_colours(render_receipt(receipt(brand_color="#d64541"))[2])
    assert (11, 107, 58) in fill_colours(render_receipt(receipt(brand_color="#0B6B3A"))[2])


def test_e3_a_malformed_brand_colour_falls_back_to_the_default(app):
    colours = fill_colours(render_receipt(receipt(brand_color="red; } body { display: none"))[2])

    assert (0x2F, 0x5B, 0xD3) in colours


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/logo.png",
        "https://example.com/logo.png",
        "ftp://example.com/logo.png",
        "file:///etc/passwd",
        "file://otherhost/srv/logo.png",
        "//example.com/logo.png",
    ],
)
def test_pdf_fetcher_refuses_network_and_foreign_files(app, url):
    with pytest.raises(ForbiddenResource):
        url_fetcher().fetch(url)


def test_pdf_fetcher_refuses_dot_dot_escapes(app, upload_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not print")

    with pytest.raises(ForbiddenResource):
        url_fetcher().fetch(f"file://{upload_dir}/../../secret.txt")
    with pytest.raises(ForbiddenResource):
        url_fetcher().fetch(f"file://{STATIC_DIR}/../../../../../../etc/passwd")
    with pytest.raises(ForbiddenResource):
        url_fetcher().fetch(f"file://{upload_dir}/%2e%2e/%2e%2e/secret.txt")


def test_pdf_fetcher_refuses_a_symlink_out_of_the_upload_folder(app, upload_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not print")
    (upload_dir / "link.txt").symlink_to(secret)

    with pytest.raises(ForbiddenResource):
        url_fetcher().fetch((upload_dir / "link.txt").as_uri())


def test_pdf_fetcher_reads_data_uris_static_files_and_uploads(app, upload_dir):
    logo = write_png(upload_dir / "logos" / "abcdefghijklmnop.png")

    data = url_fetcher().fetch("data:text/plain;base64,aGVsbG8=")
    upload = url_fetcher().fetch(logo.as_uri() + "?v=1")
    static = url_fetcher().fetch((STATIC_DIR / "css" / "pdf.css").as_uri())

    assert data.read() == b"hello"
    assert upload.content_type == "image/png"
    assert upload.read() == logo.read_bytes()
    assert static.content_type == "text/css"


def test_pdf_rendering_never_opens_a_network_connection(app):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    html = f"""<!doctype html><html><head>
        <link rel="stylesheet" href="{base}/style.css">
        <style>@import url("{base}/import.css"); body {{ background: url("{base}/bg.png"); }}
               @font-face {{ font-family: Remote; src: url("{base}/font.woff2"); }}</style>
        </head><body><p>Paid in full.</p><img src="{base}/logo.png"><img src="https://example.com/x.png">
        </body></html>"""
    try:
        pdf = render_pdf(html, base_dir=STATIC_DIR)

        readable, _, _ = select.select([listener], [], [], 0)
        assert readable == [], "the renderer connected to the network"
    finally:
        listener.close()
    assert "Paid in full." in pdf_text(pdf)
    assert image_xobjects(pdf) == []


def test_pdf_relative_urls_resolve_inside_the_base_folder_only(app, upload_dir):
    write_png(upload_dir / "logos" / "abcdefghijklmnop.png")

    inside = render_pdf('<img src="logos/abcdefghijklmnop.png">', base_dir=upload_dir)
    escaping = render_pdf('<img src="../../../../../../../etc/hostname">', base_dir=upload_dir)

    assert len(image_xobjects(inside)) == 1
    assert image_xobjects(escaping) == []
