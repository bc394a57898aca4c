"""The branded PDF receipt (E2, E3): a frozen snapshot of one charge in, a PDF attachment out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale

from kassa.money import Money
from kassa.renderers import STATIC_DIR, render_pdf
from kassa.timefmt import DATETIME_ZONE, format_when

CONTENT_TYPE = "application/pdf"
DEFAULT_BRAND_COLOR = "#2f5bd3"
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class ReceiptLine:
    name: str
    description: str
    quantity: int
    unit_amount: Money
    amount: Money
    recurrence: str | None  # already translated, e.g. "every month, 7 payments"
    # Q1: `amount` is the line before its discount; the discount is printed as its own row under the line
    discount: Money | None = None
    discount_label: str | None = None  # already translated, e.g. "Discount (10%)"


@dataclass(frozen=True)
class ReceiptData:
    number: str  # "R-000042": sequential per account, formatted by the caller
    issued_at: datetime  # aware UTC
    timezone: str  # the merchant's zone, for the printed date
    language: str  # the buyer's: "en" | "nl" | "fr"
    merchant_name: str
    merchant_address: str  # several lines
    merchant_email: str
    brand_color: str  # "#rrggbb"
    logo_file: Path | None  # a PNG under the upload folder
    buyer_email: str
    buyer_name: str
    billing_address: str | None
    lines: tuple[ReceiptLine, ...]
    total: Money
    amount_paid: Money
    payment_method: str  # already formatted, e.g. "Visa •••• 4242"
    test_mode: bool
    refunded: Money | None = None
    # Q1: before the discounts, and the discounts (printed only when there is one)
    subtotal: Money | None = None
    discount: Money | None = None
    # Q2: the promo code and what it took off (printed only when there is one)
    promo_code: str | None = None
    promo: Money | None = None
    recurring_note: str | None = None  # e.g. "Then €10.00 every month until cancelled"
    pre_notification: str | None = None  # Q10: a SEPA debit's amount, date of debit, mandate reference, creditor
    # Q8: the answers to the link's custom fields marked "show on receipt": ((label, value), ...)
    custom_fields: tuple[tuple[str, str], ...] = ()
    # Q6: the merchant's VAT number, the buyer's, the tax per rate (label already translated, tax, taxable amount)
    # and the reverse-charge note (translated), each printed only when there is one
    merchant_vat_number: str = ""
    buyer_vat_id: str = ""
    tax_rows: tuple[tuple[str, Money, Money], ...] = ()
    reverse_charge_note: str | None = None
    title: str | None = None  # defaults to the translated "Receipt"
    number_label: str | None = None  # defaults to the translated "Receipt number"
    # V1: a merchant's invoice: its dates (label and value, translated) instead of "Date paid", the amount still
    # due instead of the payment method, and the merchant's notes and terms
    dates: tuple[tuple[str, str], ...] = ()
    amount_due: Money | None = None
    notes: str = ""
    terms: str = ""
    # V4: a quote: "Quote for" instead of "Billed to", its own label for what is due, no "Amount paid" row
    party_label: str | None = None
    due_label: str | None = None
    show_paid: bool = True
    # V1 (Q6): an invoice's tax in total, printed under the tax per rate
    tax_total: Money | None = None
    # V1: a credit note: the amount credited instead of a payment method and amount paid
    credit_note: bool = False


def receipt_filename(number: str) -> str:
    # The number ends up in a Content-Disposition header and on the buyer's disk: keep it plain.
    return f"receipt-{re.sub(r'[^A-Za-z0-9_-]+', '-', number).strip('-') or 'receipt'}.pdf"


def issued_text(data: ReceiptData) -> str:
    """B7: when it was paid, in the merchant's zone (named) and the buyer's language — as the confirmation page,
    the receipt email and the merchant's payment panel show it."""
    return format_when(data.issued_at, DATETIME_ZONE, locale=data.language, timezone=data.timezone)


def _logo_url(logo_file: Path | None) -> str | None:
    """A file URL for the logo, or None when there is none (a missing file prints no broken image)."""
    if logo_file is None:
        return None
    try:
        stat = Path(logo_file).stat()
    except OSError:
        current_app.logger.warning("receipt logo %s is missing; rendering without it", logo_file)
        return None
    # The version makes the image cache key change if a file is ever rewritten in place.
    return f"{Path(logo_file).resolve().as_uri()}?v={stat.st_mtime_ns}-{stat.st_size}"


def render_receipt(data: ReceiptData) -> tuple[str, str, bytes]:
    """(filename, "application/pdf", bytes) of the receipt, in the buyer's language. Needs an app context."""
    return receipt_filename(data.number), CONTENT_TYPE, receipt_pdf(receipt_html(data))


def receipt_pdf(html: str) -> bytes:
    """The slow half (about 1.7 s, one at a time): the PDF of `receipt_html()`."""
    return render_pdf(html, base_dir=STATIC_DIR)


def receipt_html(data: ReceiptData) -> str:
    """The fast half: the HTML the PDF is made from. It holds everything the PDF shows (the logo by file
    version), so it serves as the key of a rendered PDF (H7)."""
    brand = data.brand_color if _HEX_COLOR.fullmatch(data.brand_color or "") else DEFAULT_BRAND_COLOR
    with force_locale(data.language):
        return render_template(
            "pdf/receipt.html",
            r=data,
            brand_color=brand.lower(),
            logo_url=_logo_url(data.logo_file),
            issued=issued_text(data),
            issued_iso=data.issued_at.isoformat(),
        )
