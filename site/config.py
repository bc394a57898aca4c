"""Settings from KASSA_* environment variables, with defaults that run on one machine."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kassa.services.payments.risk import DEFAULTS as RISK_DEFAULTS


def _env(name: str, default: str | None = None) -> str | None:
    """A setting from the environment; or, for a secret kept in a file (Docker and systemd credentials, G8),
    from the file `<name>_FILE` names. A file that can't be read stops the start with what to fix."""
    value = os.environ.get(name)
    if value in (None, "") and os.environ.get(f"{name}_FILE"):
        path = os.environ[f"{name}_FILE"]
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RuntimeError(f"{name}_FILE names {path}, which can't be read ({exc.strerror}).") from None
    return value if value not in (None, "") else default


def _instance_secret(instance_path: Path, name: str, make) -> str:
    """The secret kept in instance/<name>, made by `make()` the first time. Owner-only permissions. Written to
    a private temporary file and then linked into place, so processes starting together (serve and its
    worker, several gunicorn workers) all end up with the one complete value, never a half-written file."""
    key_file = instance_path / name
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=instance_path, prefix=f".{name}.")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        with contextlib.suppress(FileExistsError):  # another process got there first: its value wins
            os.link(tmp, key_file)
    finally:
        os.unlink(tmp)
    return key_file.read_text().strip()


def _secret_key(instance_path: Path) -> str:
    """Use KASSA_SECRET_KEY, else a key generated once and kept in instance/ so sessions survive restarts."""
    configured = _env("KASSA_SECRET_KEY")
    if configured:
        return configured
    return _instance_secret(instance_path, "secret_key", lambda: secrets.token_urlsafe(48))


def _encryption_keys(instance_path: Path) -> list[str]:
    """K5: the Fernet keys that encrypt stored processor secrets, newest first.

    KASSA_ENCRYPTION_KEYS (comma-separated) in production; else one key generated once into instance/ for
    development. Never derived from SECRET_KEY: rotating the session secret must not make stored Stripe keys
    unreadable, and a leaked session secret must not decrypt them."""
    configured = _env("KASSA_ENCRYPTION_KEYS")
    if configured:
        return [key.strip() for key in configured.split(",") if key.strip()]
    key_file = instance_path / "encryption_key"
    if not key_file.exists():
        logging.getLogger("kassa").warning(
            "KASSA_ENCRYPTION_KEYS is not set: using a development key in %s. Set KASSA_ENCRYPTION_KEYS in "
            "production and keep it apart from the database backups.", key_file)
    # A Fernet key is 32 random bytes in URL-safe base64 (what Fernet.generate_key makes).
    return [_instance_secret(instance_path, "encryption_key",
                             lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())]


def missing_production_secrets() -> list[str]:
    """G8: the secrets a production instance (a public https:// KASSA_BASE_URL) must take from its environment.
    Kept in instance/, as on a developer's machine, they would differ per machine behind a load balancer
    (sessions signed by one server refused by the next) and go wherever the instance folder's backups go."""
    # The environment's address, not the config's: what a deployment sets (a test app may set KASSA_HTTPS alone).
    if not (_env("KASSA_BASE_URL") or "").startswith("https://"):
        return []
    return [name for name in ("KASSA_SECRET_KEY", "KASSA_ENCRYPTION_KEYS") if not _env(name)]


def parse_smtp_url(url: str) -> dict:
    """smtp://user:pass@host:port?tls=starttls|ssl → Flask-Mail settings."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    tls = (query.get("tls") or [""])[0].lower()
    use_ssl = parts.scheme == "smtps" or tls == "ssl"
    return {
        "MAIL_SERVER": parts.hostname or "127.0.0.1",
        "MAIL_PORT": parts.port or (465 if use_ssl else 25),
        "MAIL_USERNAME": unquote(parts.username) if parts.username else None,
        "MAIL_PASSWORD": unquote(parts.password) if parts.password else None,
        "MAIL_USE_TLS": tls == "starttls",
        "MAIL_USE_SSL": use_ssl,
    }


def build_config(instance_path: Path) -> dict:
    """Everything the app reads from the environment, resolved once at start-up."""
    database_url = _env("KASSA_DATABASE_URL") or f"sqlite:///{instance_path / 'kassa.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    base_url = (_env("KASSA_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    https = base_url.startswith("https://")
    redis_url = _env("KASSA_REDIS_URL")
    smtp_url = _env("KASSA_SMTP_URL")
    config: dict = {
        "SECRET_KEY": _secret_key(instance_path),
        # G8: the previous secret keys, still good for reading sessions signed before a rotation (never for
        # signing), so rotating the key doesn't log everyone out. Drop them once the sessions have expired.
        "SECRET_KEY_FALLBACKS": [key.strip() for key in (_env("KASSA_SECRET_KEY_FALLBACKS") or "").split(",")
                                 if key.strip()],
        # K5: Fernet keys for stored processor secrets, newest first (see kassa.secrets_box).
        "KASSA_ENCRYPTION_KEYS": _encryption_keys(instance_path),
        # K5: the Stripe SDK's transport and hosts; None means Stripe's own. Tests pass a fixture transport.
        "KASSA_STRIPE_HTTP_CLIENT": None,
        "KASSA_STRIPE_BASE_ADDRESSES": None,
        # K6: Stripe.js, loaded on live checkout pages only, and the origins their CSP then allows (Stripe's
        # documented list, docs.stripe.com/security/guide#content-security-policy, without the Google Maps
        # origins that only the Address Element's autocomplete needs). Tests point both at local stand-ins.
        "KASSA_STRIPE_JS_URL": "https://js.stripe.com/v3/",
        "KASSA_STRIPE_CSP": {
            "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
            "connect-src": ["https://api.stripe.com"],
        },
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A pooled PostgreSQL connection may have died with a server restart: test it before use. A SQLite
        # connection is a file handle that can't go stale, and the test query cost every request ~0.1 ms (Q12).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not database_url.startswith("sqlite")},
        "KASSA_BASE_URL": base_url,
        "KASSA_REDIS_URL": redis_url,
        "KASSA_SMTP_URL": smtp_url,
        "KASSA_HTTPS": https,
        # How many proxies in front of us may set X-Forwarded-For; 0 means trust none.
        "KASSA_TRUSTED_PROXIES": int(_env("KASSA_TRUSTED_PROXIES", "0") or 0),
        "KASSA_MAIL_FROM": _env("KASSA_MAIL_FROM", "Kassa <no-reply@example.com>"),
        # Flask-Mail silently drops mail when TESTING; our tests talk to a real SMTP server instead.
        "MAIL_SUPPRESS_SEND": False,
        "KASSA_UPLOAD_DIR": str(instance_path / "uploads"),
        "KASSA_EXPORT_DIR": str(instance_path / "exports"),
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        # The __Host- prefix pins the cookie to this exact origin; browsers only accept it over https.
        "SESSION_COOKIE_NAME": "__Host-kassa" if https else "kassa",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": https,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_STRATEGY": "moving-window",
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        # Login throttling (issue 3): failures per email+IP, and per account from any IP.
        "KASSA_LOGIN_LIMIT": _env("KASSA_LOGIN_LIMIT", "10 per 15 minutes"),
        "KASSA_LOGIN_ACCOUNT_LIMIT": _env("KASSA_LOGIN_ACCOUNT_LIMIT", "100 per hour"),
        # H12: failures allowed from a browser that logged in to that account before (its device cookie);
        # such a browser is exempt from the two limits above, which strangers can run up.
        "KASSA_LOGIN_DEVICE_LIMIT": _env("KASSA_LOGIN_DEVICE_LIMIT", "10 per 15 minutes"),
        # Server-Timing header with the app's own time: benchmarks only (H12).
        "KASSA_SERVER_TIMING": _env("KASSA_SERVER_TIMING", "") in ("1", "true", "yes"),
        # Signed-in sessions (H14): end after this long without a request, and this long after login at most.
        "KASSA_SESSION_IDLE_HOURS": float(_env("KASSA_SESSION_IDLE_HOURS", "12") or 12),
        "KASSA_SESSION_MAX_DAYS": float(_env("KASSA_SESSION_MAX_DAYS", "30") or 30),
        # G4: "json" writes one JSON object per log line (with the request id) and an access line per request;
        # "text" (the default, for `make run`) leaves Python's usual logging alone.
        "KASSA_LOG_FORMAT": (_env("KASSA_LOG_FORMAT", "text") or "text").lower(),
        # G4: the bearer token GET /metrics asks for; unset, /metrics does not exist (404).
        "KASSA_METRICS_TOKEN": _env("KASSA_METRICS_TOKEN"),
        "KASSA_OUTBOX_MAX_ATTEMPTS": int(_env("KASSA_OUTBOX_MAX_ATTEMPTS", "8") or 8),
        # I6: outgoing webhooks. Endpoints must be public https addresses; a development or test setup may allow
        # the loopback (http://127.0.0.1) here, never private networks. Disabled after this many failures in a row
        # (or when every delivery failed for 3 days); each POST waits this many seconds at most.
        "KASSA_WEBHOOK_ALLOW_LOOPBACK": _env("KASSA_WEBHOOK_ALLOW_LOOPBACK", "") in ("1", "true", "yes"),
        "KASSA_WEBHOOK_DISABLE_AFTER": int(_env("KASSA_WEBHOOK_DISABLE_AFTER", "100") or 100),
        "KASSA_WEBHOOK_TIMEOUT": float(_env("KASSA_WEBHOOK_TIMEOUT", "10") or 10),
        # K7: how often the tick polls each Stripe connection's recent events for webhooks Kassa missed.
        "KASSA_STRIPE_POLL_SECONDS": int(_env("KASSA_STRIPE_POLL_SECONDS", "300") or 300),
        # I7: API calls per key, as Stripe's (100 a second live, 25 in test mode).
        "KASSA_API_LIVE_RATE_LIMIT": _env("KASSA_API_LIVE_RATE_LIMIT", "100 per second"),
        "KASSA_API_TEST_RATE_LIMIT": _env("KASSA_API_TEST_RATE_LIMIT", "25 per second"),
        # I7: API calls per account and mode, all its keys together: many keys can't multiply the key limit.
        "KASSA_API_LIVE_ACCOUNT_RATE_LIMIT": _env("KASSA_API_LIVE_ACCOUNT_RATE_LIMIT", "200 per second"),
        "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": _env("KASSA_API_TEST_ACCOUNT_RATE_LIMIT", "50 per second"),
        # Requests per client IP on the public checkout (on top of the card-testing guard).
        "KASSA_CHECKOUT_START_LIMIT": _env("KASSA_CHECKOUT_START_LIMIT", "60 per minute"),
        "KASSA_CHECKOUT_SUBMIT_LIMIT": _env("KASSA_CHECKOUT_SUBMIT_LIMIT", "30 per minute"),
        # H7: receipt PDFs rendered once, then served from here (keyed by payment and what the PDF shows).
        "KASSA_RECEIPT_CACHE_DIR": _env("KASSA_RECEIPT_CACHE_DIR", str(instance_path / "receipts")),
        # H7: receipt PDF renders for buyers' downloads, per link and per client address (cached copies are free).
        "KASSA_RECEIPT_RENDER_LINK_LIMIT": _env("KASSA_RECEIPT_RENDER_LINK_LIMIT", "60 per hour"),
        "KASSA_RECEIPT_RENDER_IP_LIMIT": _env("KASSA_RECEIPT_RENDER_IP_LIMIT", "10 per 10 minutes"),
        # H7: receipt emails from test checkouts, per link and per client address.
        "KASSA_TEST_RECEIPT_LINK_LIMIT": _env("KASSA_TEST_RECEIPT_LINK_LIMIT", "50 per hour"),
        "KASSA_TEST_RECEIPT_IP_LIMIT": _env("KASSA_TEST_RECEIPT_IP_LIMIT", "20 per hour"),
        # H8: how long the browser that paid sees the buyer's details on the confirmation page, and how long
        # a receipt download link works (seconds).
        "KASSA_CONFIRMATION_SECONDS": int(_env("KASSA_CONFIRMATION_SECONDS", "3600") or 3600),
        # H13: Actions → Send receipt, per user and per payment.
        "KASSA_SEND_RECEIPT_USER_LIMIT": _env("KASSA_SEND_RECEIPT_USER_LIMIT", "30 per hour"),
        "KASSA_SEND_RECEIPT_PAYMENT_LIMIT": _env("KASSA_SEND_RECEIPT_PAYMENT_LIMIT", "5 per hour"),
        # Subscription batches a billing tick charges at once (PostgreSQL only; SQLite has one writer at a time).
        "KASSA_BILLING_WORKERS": int(_env("KASSA_BILLING_WORKERS", "2") or 2),
        # H13: the most one payment link can ask for, in minor units of its currency (Stripe's limit, $999,999.99).
        "KASSA_LINK_MAX_TOTAL_MINOR": int(_env("KASSA_LINK_MAX_TOTAL_MINOR", "99999999") or 99_999_999),
    }
    # Card-testing limits (issue 5), overridable per deployment: KASSA_RISK_IP_DECLINES=5 and so on.

    for name, default in RISK_DEFAULTS.items():
        config[name] = int(_env(name, str(default)))
    if smtp_url:
        config.update(parse_smtp_url(smtp_url))
    return config
