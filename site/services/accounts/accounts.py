"""Account settings and branding (E3): company details, locale, brand colour and logo."""

from __future__ import annotations

import io
import re
import secrets
import warnings
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from babel import Locale
from flask import current_app
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import Forbidden, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.i18n import LANGUAGES
from kassa.models import DEFAULT_NOTIFICATIONS, Account, Mode, Permission
from kassa.money import is_known_currency
from kassa.processors.registry import stripe_connection
from kassa.services.accounts.emails import normalize_email
from kassa.services.platform.audit import record_audit
from kassa.urls import web_origin

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIZE = (800, 300)
# H2: a few KB of PNG can declare 13,000 x 13,000 pixels and decode to over a gigabyte. The header's size is
# checked before any pixel is decoded; 4096 x 4096 is far above any logo and decodes in tens of MB.
LOGO_MAX_PIXELS = 4096 * 4096
# Pillow's own guard (warning above this, error above twice this) as a second line; only logos use Pillow.
Image.MAX_IMAGE_PIXELS = LOGO_MAX_PIXELS
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def require_settings(actor: Actor) -> None:
    if actor.user is None or not actor.user.can(Permission.MANAGE_SETTINGS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_SETTINGS.label))


# Babel's territory list also holds groupings and placeholders that are not countries, and CLDR's own codes for
# parts of countries that ISO 3166-1 (and so Stripe) has no code for: Ascension Island, Clipperton, Diego Garcia,
# Ceuta and Melilla, the Canary Islands, Tristan da Cunha (Q12: ~140 bytes of every checkout's country list).
NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB", "AC", "CP", "DG", "EA", "IC", "TA"}


@lru_cache(maxsize=16)
def country_choices(locale: str) -> list[tuple[str, str]]:
    names = Locale.parse(locale).territories
    return sorted(
        ((code, name) for code, name in names.items()
         if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES),
        key=lambda item: item[1],
    )


@lru_cache(maxsize=1)
def _country_codes_by_name() -> dict[str, str]:
    by_name: dict[str, str] = {}
    for language in LANGUAGES:
        for code, name in country_choices(language):
            by_name.setdefault(name.casefold(), code)
    return by_name


def country_code(text: str) -> str | None:
    """The two-letter code of a country given as its code ("nl") or its name in any of Kassa's languages
    ("Netherlands", "Pays-Bas"), case-insensitive; None when it is no country. Q12: a checkout with two
    address forms offers its countries once, as names in a shared list the buyer may also type into."""
    text = " ".join(text.split())
    if len(text) == 2 and text.upper() in dict(country_choices("en")):
        return text.upper()
    return _country_codes_by_name().get(text.casefold())


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """IANA zones this machine can convert with (scanning tzdata is slow, so once per process)."""
    return frozenset(available_timezones())


def timezone_choices() -> list[tuple[str, str]]:
    return [(tz, tz.replace("_", " ")) for tz in sorted(known_timezones())]


def locale_errors(*, country: str, currency: str, timezone: str, language: str,
                  currency_field: str = "currency") -> dict[str, str]:
    """H1: country, currency, time zone and language checked against the real lists, keyed by field.

    A zone nobody can convert with (`Mars/Olympus_Mons`) made every date of that account fail, down to
    recording its payments, so nothing outside these lists is ever stored."""
    errors: dict[str, str] = {}
    if country not in dict(country_choices("en")):
        errors["country"] = _("Choose a country.")
    if not is_known_currency(currency):
        errors[currency_field] = _("Choose a currency.")
    if timezone not in known_timezones():
        errors["timezone"] = _("Choose a time zone.")
    if language not in LANGUAGES:
        errors["language"] = _("Choose a language.")
    return errors


def check_terms_url(url: str) -> str | None:
    """Q7: terms of service are a full https address (buyers open it from the checkout)."""
    if len(url) > 2000:
        return _("Use at most 2000 characters.")
    if urlsplit(url).scheme != "https" or web_origin(url) is None:
        return _("Enter a full address starting with https://, like https://shop.example/terms.")
    return None


def update_account(
    actor: Actor,
    *,
    name: str,
    country: str,
    default_currency: str,
    timezone: str,
    language: str,
    address: str,
    support_email: str,
    refund_policy: str = "",
    terms_url: str = "",
) -> Account:
    require_settings(actor)
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = _("Enter your company name.")
    elif len(name) > 200:
        errors["name"] = _("Use at most 200 characters.")
    country = (country or "").strip().upper()
    default_currency = (default_currency or "").strip().upper()
    errors.update(locale_errors(country=country, currency=default_currency, timezone=timezone, language=language,
                                currency_field="default_currency"))
    address = (address or "").strip()
    if len(address) > 500:
        errors["address"] = _("Use at most 500 characters.")
    refund_policy = (refund_policy or "").strip()
    if len(refund_policy) > 5000:
        errors["refund_policy"] = _("Use at most %(n)d characters.", n=5000)
    terms_url = (terms_url or "").strip()
    if terms_url and (problem := check_terms_url(terms_url)):
        errors["terms_url"] = problem
    support_email = (support_email or "").strip()
    if support_email:
        try:
            support_email = normalize_email(support_email, field="support_email")
        except ValidationFailed as exc:
            errors["support_email"] = exc.message
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        before = {"name": account.name, "country": account.country, "currency": account.default_currency}
        account.name = name
        account.country = country
        account.default_currency = default_currency
        account.timezone = timezone
        account.language = language
        account.address = address
        account.support_email = support_email
        account.refund_policy = refund_policy
        account.terms_url = terms_url
        record_audit(actor, "account.updated", object_type="account", object_id=account.id,
                     data={"before": before})
        return account


def _reencode_logo(data: bytes) -> bytes:
    """Decode and re-encode the upload: only pixels survive, never whatever else was in the file."""
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationFailed(_("The logo must be 1 MB or smaller."), field="logo")
    too_large = ValidationFailed(
        _("The logo is too large: at most %(n)d by %(n)d pixels. Resize it and upload it again.", n=4096),
        field="logo",
    )
    try:
        with warnings.catch_warnings():
            # H2: Pillow only warns between its limit and twice its limit; treat the warning as a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Image.open is lazy: it reads the header (format, declared size) and decodes no pixels.
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ("PNG", "JPEG"):
                    raise ValidationFailed(_("Upload a PNG or JPEG image."), field="logo")
                width, height = probe.size
                if width * height > LOGO_MAX_PIXELS:
                    raise too_large
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", LOGO_MAX_SIZE)  # JPEG: decode straight at a reduced scale
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValidationFailed(_("Upload a PNG or JPEG image."), field="logo") from None
    # H2: step a large image down to twice the target size with nearest neighbour first: it copies no more
    # than the small result, where Pillow's filtered resize (and reduce) go through a full-size premultiplied
    # copy of RGBA images and a full-size RGBA copy of palette ones. The final filtered resize smooths it.
    if image.width > 2 * LOGO_MAX_SIZE[0] or image.height > 2 * LOGO_MAX_SIZE[1]:
        ratio = min(2 * LOGO_MAX_SIZE[0] / image.width, 2 * LOGO_MAX_SIZE[1] / image.height)
        image = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))),
                             Image.Resampling.NEAREST)
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA")
    image.thumbnail(LOGO_MAX_SIZE)
    image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def logo_dir() -> Path:
    path = Path(current_app.config["KASSA_UPLOAD_DIR"]) / "logos"
    path.mkdir(parents=True, exist_ok=True)
    return path


def update_branding(actor: Actor, *, brand_color: str, logo: bytes | None, remove_logo: bool = False) -> Account:
    require_settings(actor)
    brand_color = (brand_color or "").strip()
    if not HEX_COLOUR.match(brand_color):
        raise ValidationFailed(_("Enter a colour like #2f5bd3."), field="brand_color")
    png = _reencode_logo(logo) if logo else None
    new_name = None
    if png is not None:
        # A random file name: the logo is public (checkout, receipts) but account ids should not be guessable.
        new_name = f"{secrets.token_urlsafe(12)}.png"
        (logo_dir() / new_name).write_bytes(png)
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        account.brand_color = brand_color.lower()
        if new_name or remove_logo:
            account.logo_path = new_name
            account.logo_version += 1
        record_audit(actor, "account.branding_updated", object_type="account", object_id=account.id,
                     data={"brand_color": account.brand_color, "logo_changed": bool(new_name or remove_logo)})
        return account


def update_notifications(actor: Actor, settings: dict[str, bool]) -> Account:
    require_settings(actor)
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        account.notifications = {key: bool(settings.get(key, False)) for key in DEFAULT_NOTIFICATIONS}
        record_audit(actor, "account.notifications_updated", object_type="account", object_id=account.id,
                     data=dict(account.notifications))
        return account


TEST_PROCESSORS = ("sandbox", "stripe")  # K12: what test mode runs on (Account.test_processor)


MAX_REMINDER_DAYS = 60


def update_payment_settings(actor: Actor, *, create_invoices: bool, retry_days_text: str,
                            test_processor: str | None = None, reminder_days_before: str | None = None,
                            reminder_days_after: str | None = None) -> Account:
    """Settings → Payments: invoices on or off (R5), when failed renewals are retried (issue 8), and what test
    mode runs on (K12: the built-in sandbox, or Stripe test mode once test keys are connected; None keeps it)."""
    require_settings(actor)
    parts = [p.strip() for p in (retry_days_text or "").replace(";", ",").split(",") if p.strip()]
    days = [parse_int(p, minimum=1, maximum=30) for p in parts]
    errors: dict[str, str] = {}
    if not parts or len(parts) > 6 or None in days:
        errors["retry_days"] = _("Enter 1 to 6 numbers of days from 1 to 30, separated by commas, like 1, 3, 5.")
    # V2: invoice reminders, days before and after the due date (0 or empty: none); None keeps the setting
    reminders = {}
    for name, text in (("invoice_reminder_days_before", reminder_days_before),
                       ("invoice_reminder_days_after", reminder_days_after)):
        if text is None:
            continue
        days_value = parse_int(text.strip() or "0", minimum=0, maximum=MAX_REMINDER_DAYS)
        if days_value is None:
            errors[name] = _("Enter a number of days from 0 to %(max)d (0: no reminder).", max=MAX_REMINDER_DAYS)
        reminders[name] = days_value
    if test_processor is not None and test_processor not in TEST_PROCESSORS:
        errors["test_processor"] = _("Choose what test mode uses.")
    elif test_processor == "stripe" and stripe_connection(actor.account_id, Mode.TEST.value) is None:
        errors["test_processor"] = _("Connect Stripe with test keys (sk_test_… and pk_test_…) first; until then "
                                     "test mode uses Kassa's built-in sandbox.")
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        account.create_invoices = create_invoices
        account.retry_days = days
        data = {"create_invoices": create_invoices, "retry_days": days, **reminders}
        for name, value in reminders.items():
            setattr(account, name, value)
        if test_processor is not None:
            account.test_processor = data["test_processor"] = test_processor
        record_audit(actor, "account.payment_settings_updated", object_type="account", object_id=account.id,
                     data=data)
        return account
