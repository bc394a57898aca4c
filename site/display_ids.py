"""Display ids (M5): the one place that turns a number into what people read — P-000042, R-000007,
PO-000003, INV-000012. Services, exports, PDFs, emails and templates (filter ``display_id``) all call
``display_id``; nobody formats a prefix by hand, so the prefixes and the dash can't drift apart again
(the mandate's file name used to drop the dash)."""

from __future__ import annotations

from enum import StrEnum


class IdKind(StrEnum):
    PAYMENT = "payment"
    RECEIPT = "receipt"
    PAYOUT = "payout"
    INVOICE = "invoice"
    QUOTE = "quote"
    CREDIT_NOTE = "credit_note"


PREFIXES: dict[IdKind, str] = {
    IdKind.PAYMENT: "P",
    IdKind.RECEIPT: "R",
    IdKind.PAYOUT: "PO",
    IdKind.INVOICE: "INV",
    IdKind.QUOTE: "Q",
    IdKind.CREDIT_NOTE: "CN",
}


def display_id(kind: IdKind | str, number: int) -> str:
    """``display_id("payment", 42)`` → ``"P-000042"``."""
    return f"{PREFIXES[IdKind(kind)]}-{int(number):06d}"


def display_id_or_none(kind: IdKind | str, number: int | None) -> str | None:
    """The display id, or None when there is no number (no receipt yet, entry without a payout)."""
    return display_id(kind, number) if number else None


def display_id_filter(number: int | None, kind: str) -> str:
    """Jinja: ``{{ payment.id|display_id("payment") }}``; an empty number renders as "—"."""
    return display_id(kind, number) if number else "—"
