"""Checkout test helpers (issue 5): a merchant with a link, and readers for what a checkout left behind.

Paying itself goes through `tests.support.checkout` (`pay_with_card`, `start_checkout`, `buyer_form`);
this module builds links through the real service and reads rows, pages, emails and PDFs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from email.message import Message

from bs4 import BeautifulSoup
from pypdf import PdfReader
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import (
    CheckoutSession,
    EmailMessage,
    Payment,
    PaymentAttempt,
    PaymentLink,
    SandboxRecord,
    User,
)
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from kassa.services.links.links import create_link, set_active, update_link
from tests.factories import make_merchant

# SPEC T2, as the seed lists it: number, brand code, funding.
T2_CARDS = [
    ("4242424242424242", "visa", "credit"),
    ("4000056655665556", "visa", "debit"),
    ("5555555555554444", "mastercard", "credit"),
    ("2223003122003222", "mastercard", "credit"),
    ("5200828282828210", "mastercard", "debit"),
    ("5105105105105100", "mastercard", "prepaid"),
    ("378282246310005", "amex", "credit"),
    ("371449635398431", "amex", "credit"),
    ("6011111111111117", "discover", "credit"),
    ("6011000990139424", "discover", "credit"),
    ("3056930009020004", "diners", "credit"),
    ("36227206271667", "diners", "credit"),
    ("3566002020360505", "jcb", "credit"),
    ("6200000000000005", "unionpay", "credit"),
]
BRAND_NAMES = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
               "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay"}

# SPEC T3: number, the form field the buyer must look at, the message (English catalogue id).
T3_CARDS = [
    ("4000000000000036", "billing_postal_code", "The postal code could not be verified and the payment was declined."),
    ("4000000000000002", "card_number", "Your card was declined."),
    ("4000000000009995", "card_number", "The payment was declined because of insufficient funds."),
    ("4000000000000069", "card_number", "The payment was declined because the card has expired."),
    ("4000000000000127", "card_cvc", "The payment was declined because of an incorrect CVC."),
]

# SPEC T4 (routing 110000000): account number, final status, failure code, failure message.
T4_ACCOUNTS = [
    ("000123456789", "succeeded", None, None),
    ("000111111116", "failed", "debit_failed", "The bank debit failed when it was used."),
    ("000111111113", "failed", "account_closed", "The bank account is closed."),
    ("000222222227", "failed", "insufficient_funds", "The bank debit failed because of insufficient funds."),
    ("000333333335", "failed", "debit_not_authorized", "The account holder did not authorize this debit."),
    ("000444444440", "failed", "invalid_currency", "The bank account cannot be debited in this currency."),
]


def cvc_for(number: str) -> str:
    """Any CVC works for a test card: 3 digits, 4 for American Express."""
    return "7341" if number.startswith(("34", "37")) else "734"


# -- merchants and links ----------------------------------------------------------------------------


def item(name: str = "Concert ticket", price: str = "25.00", *, quantity: str = "1", frequency: str = "one_time",
         term_type: str = "auto_renew", term_count: str = "", description: str = "") -> ItemDraft:
    return ItemDraft(name=name, description=description, unit_price=price, quantity=quantity, frequency=frequency,
                     term_type=term_type, term_count=term_count)


def actor_for(user: User) -> Actor:
    return Actor(user=user, account_id=user.account_id)


def make_link(owner: User, *, items: Iterable[ItemDraft] | None = None, name: str = "Spring concert",
              currency: str = "USD", fields: dict[str, str] | None = None, **options) -> PaymentLink:
    """A payment link made through the real service (validation included), as the editor would save it."""
    draft_fields = {"company": "optional", "first_name": "optional", "last_name": "optional", "phone": "optional"}
    draft_fields.update(fields or {})
    draft = LinkDraft(name=name, currency=currency, items=list(items or [item()]), fields=draft_fields, **options)
    return create_link(actor_for(owner), draft, "en")


def make_shop(company: str | None = None, **link_options) -> tuple[User, PaymentLink]:
    owner = make_merchant(company=company)
    return owner, make_link(owner, **link_options)


def edit_link(owner: User, link: PaymentLink, *, items: Iterable[ItemDraft], **options) -> PaymentLink:
    draft_fields = {"company": "optional", "first_name": "optional", "last_name": "optional", "phone": "optional"}
    draft = LinkDraft(name=options.pop("name", "Edited link"), currency=options.pop("currency", "USD"),
                      items=list(items), fields=draft_fields, **options)
    return update_link(actor_for(owner), link.id, draft, "en")


def deactivate(owner: User, link: PaymentLink) -> None:
    set_active(actor_for(owner), link.id, False)


# -- reading what happened --------------------------------------------------------------------------


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def all_payments() -> list[Payment]:
    db.session.rollback()
    return list(db.session.scalars(select(Payment).order_by(Payment.id)))


def only_payment() -> Payment:
    payments = all_payments()
    assert len(payments) == 1, f"expected one payment, found {len(payments)}"
    return payments[0]


def sandbox_charges() -> int:
    """Charges the sandbox processor recorded: money that moved (or would have, in test mode)."""
    return count(SandboxRecord, SandboxRecord.key.like("charge:%"))


def attempts() -> list[PaymentAttempt]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)))


def checkout_for(path: str) -> CheckoutSession:
    token = path.rstrip("/").rsplit("/", 1)[-1]
    db.session.rollback()
    return db.session.scalar(select(CheckoutSession).where(CheckoutSession.token == token))


def emails(kind: str | None = None) -> list[EmailMessage]:
    db.session.rollback()
    query = select(EmailMessage).order_by(EmailMessage.id)
    if kind:
        query = query.where(EmailMessage.kind == kind)
    return list(db.session.scalars(query))


# -- reading pages ----------------------------------------------------------------------------------


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def field_error(response, field: str) -> str:
    """The message shown under a form field ("" when there is none or it is hidden)."""
    node = soup_of(response).find(id=f"f-{field}-error")
    if node is None or node.has_attr("hidden"):
        return ""
    return " ".join(node.get_text(" ").split())


def field_errors(response) -> dict[str, str]:
    found = {}
    for node in soup_of(response).select("p.field__error"):
        if not node.has_attr("hidden") and node.get_text(strip=True):
            found[node["id"].removeprefix("f-").removesuffix("-error")] = " ".join(node.get_text(" ").split())
    return found


def field_value(response, field: str) -> str | None:
    node = soup_of(response).find(attrs={"name": field})
    if node is None:
        return None
    if node.name == "select":
        selected = node.find("option", selected=True)
        return selected["value"] if selected else None
    return node.get("value", "")


def alert(response) -> str:
    node = soup_of(response).select_one('[role="alert"]')
    return " ".join(node.get_text(" ").split()) if node else ""


# -- emails and PDFs --------------------------------------------------------------------------------


def plain(text: str) -> str:
    """Babel puts (narrow) no-break spaces in amounts and dates; tests compare with plain spaces."""
    return " ".join(re.sub("[\u00a0\u202f\u2009]", " ", text).split())


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return plain("\n".join(page.extract_text() for page in reader.pages))


def fill_colours(pdf: bytes) -> set[tuple[int, ...]]:
    """Every RGB fill colour the first page paints with, as 0-255 integers."""
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data().decode("latin-1")
    return {tuple(round(float(c) * 255) for c in match)
            for match in re.findall(r"([\d.]+) ([\d.]+) ([\d.]+) rg", content)}


def pdf_attachment(message: Message) -> bytes:
    pdfs = [data for name, data in _attachments(message) if name.endswith(".pdf")]
    assert len(pdfs) == 1, f"expected one PDF attachment, found {len(pdfs)}"
    return pdfs[0]


def _attachments(message: Message) -> list[tuple[str, bytes]]:
    return [(part.get_filename(), part.get_payload(decode=True)) for part in message.walk() if part.get_filename()]


def subject_of(message: Message) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message["Subject"] or "")))
