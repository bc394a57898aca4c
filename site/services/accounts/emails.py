"""Email addresses in their one canonical form (H3): stored, looked up and counted the same way everywhere.

Its own module because accounts (support address), users (sign-in), checkout and receipts all need it
and users already builds on accounts.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

from kassa.errors import ValidationFailed


def _fold(raw: str) -> str:
    # H3: NFKC maps full-width and other compatibility forms (ｃ, ＠) to plain ones; casefold is the Unicode
    # case-insensitive form (lower() misses some); NFKC again because casefolding can un-normalise.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", (raw or "").strip()).casefold())


def normalize_email(raw: str, *, field: str = "email") -> str:
    """The one canonical form of an address (H3), used wherever an email is stored, looked up or counted:
    NFKC + casefold, and the domain in its IDNA (ASCII) form. Syntax-checked, no DNS lookups (runs offline)."""
    text = _fold(raw)
    if not text:
        raise ValidationFailed(_("Enter an email address."), field=field)
    if len(text) > 254:
        raise ValidationFailed(_("That email address is too long."), field=field)
    try:
        result = validate_email(text, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError:
        raise ValidationFailed(_("Enter a valid email address, like name@example.com."), field=field) from None
    return f"{result.local_part}@{result.ascii_domain}".lower()


def email_key(raw: str) -> str:
    """What rate limits count an address under (H3): its canonical form, or for text that is not a valid
    address, the same folding, so no spelling of one address gets a fresh allowance."""
    try:
        return normalize_email(raw)
    except ValidationFailed:
        return _fold(raw)[:254]
