"""Security headers: a strict nonce-based CSP on every response, plus the usual hardening headers."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
import zlib
from base64 import urlsafe_b64encode

from flask import Flask, Response, current_app, g, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm
from werkzeug.http import dump_cookie


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = new_nonce()
    return g.csp_nonce


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def allow_form_action(origin: str) -> None:
    """Let this response's forms (and the redirects after them) reach another origin, e.g. a thank-you page."""
    g.setdefault("csp_form_action", []).append(origin)


def allow_stripe_js() -> None:
    """K6: this response runs Stripe.js (a live checkout's Payment Element): its CSP allows exactly Stripe's
    origins (KASSA_STRIPE_CSP) for scripts, frames and API calls. Every other response allows none."""
    g.csp_stripe = True


def allow_framing(ancestors: str = "*") -> None:
    """The embed route opens what it needs; every other page refuses to be framed."""
    g.csp_frame_ancestors = ancestors


def _content_security_policy() -> str:
    return content_security_policy(csp_nonce(), g.get("csp_form_action", ()), g.get("csp_frame_ancestors", "'none'"),
                                   current_app.config["KASSA_STRIPE_CSP"] if g.get("csp_stripe") else None)


def content_security_policy(nonce: str, form_action=(), frame_ancestors: str = "'none'",
                            stripe: dict | None = None) -> str:
    """The policy of one response: its nonce, the extra form-action origins, who may frame it, and Stripe's
    origins (K6) when it runs Stripe.js. Built from arguments so the checkout's first visit (Q12,
    blueprints/checkout_first_visit.py), which runs outside Flask's request, writes the very same header."""
    form_action = " ".join(["'self'", *form_action])
    # strict-dynamic + nonce: only scripts we tagged run; no inline code, no third-party origins.
    script_src = f"script-src 'nonce-{nonce}' 'strict-dynamic'"
    extra: list[str] = []
    connect_src = "connect-src 'self'"
    if stripe is not None:
        # No 'strict-dynamic' here: it would let Stripe.js load scripts from anywhere (CSP3 browsers ignore host
        # lists beside it). Our scripts run by nonce; Stripe's only from Stripe's origins.
        script_src = " ".join([f"script-src 'nonce-{nonce}'", *stripe["script-src"]])
        extra.append(" ".join(["frame-src", *stripe["frame-src"]]))
        connect_src = " ".join([connect_src, *stripe["connect-src"]])
    return "; ".join(
        [
            "default-src 'self'",
            script_src,
            *extra,
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            connect_src,
            f"form-action {form_action}",
            f"frame-ancestors {frame_ancestors}",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


class _OneCallHMAC(HMACAlgorithm):
    """itsdangerous' HMAC, computed by `hmac.digest` (one C call) instead of a Python `hmac.HMAC` object: with
    the digest given as a callable, as itsdangerous and Flask give it, `hmac.new` takes the pure-Python path.
    The same bytes (Q12: a tenth of a checkout GET went into its two signatures)."""

    def __init__(self, digest_method, name: str) -> None:
        super().__init__(digest_method)
        self.name = name

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, self.name)


class _KeyOnceSigner(TimestampSigner):
    """itsdangerous' TimestampSigner (of the timed serializers), deriving each key once instead of on every
    signature and check (an HMAC of the secret key and salt each time, the same bytes every time), and signing
    with _OneCallHMAC: Q12, the checkout GET signs twice (CSRF token, session cookie). Same keys, same
    signatures: nothing changes."""

    _derived: dict[tuple, bytes] = {}  # the serializer makes a new signer per call: kept on the class

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sep = want_bytes(self.sep)
        if type(self.algorithm) is HMACAlgorithm:
            self.algorithm = _OneCallHMAC(self.algorithm.digest_method, self.algorithm.digest_method().name)

    def sign(self, value) -> bytes:
        """TimestampSigner.sign in one function: the same bytes (value, timestamp, signature), fewer calls."""
        sep = self._sep
        value = want_bytes(value) + sep + _b64(int_to_bytes(self.get_timestamp()))
        return value + sep + _b64(self.algorithm.get_signature(self.derive_key(), value))

    def derive_key(self, secret_key=None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        cache_key = (secret, self.salt, self.key_derivation, self.digest_method)
        key = self._derived.get(cache_key)
        if key is None:
            key = self._derived[cache_key] = super().derive_key(secret)
        return key


def _signer_once(serializer: URLSafeTimedSerializer) -> URLSafeTimedSerializer:
    """The serializer, signing with _KeyOnceSigner and building its signer for a salt once instead of on each
    `dumps` and `loads` (a signer holds its keys and settings only: one serves every call)."""
    serializer.signer = _KeyOnceSigner
    build, signers = serializer.make_signer, {}

    def make_signer(salt=None):
        signer = signers.get(salt)
        if signer is None:
            signer = signers[salt] = build(salt)
        return signer

    serializer.make_signer = make_signer
    if serializer.is_text_serializer and type(serializer) is URLSafeTimedSerializer:
        serializer.dumps = _lean_dumps(serializer)
    return serializer


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")  # itsdangerous' base64_encode, for bytes


# Payloads up to this many bytes are signed uncompressed, without trying zlib: its frame (6 bytes) and block
# header leave nothing to gain on a buyer's short values (a random CSRF token never shrinks), and each attempt
# sets up and clears ~256 KB of zlib state, ~10% of a first checkout visit's CPU (Q12). The token is as valid:
# itsdangerous reads a payload compressed or not (a leading "." says which), and the signature covers it.
UNCOMPRESSED_UP_TO = 80


def _lean_dumps(serializer: URLSafeTimedSerializer):
    """URLSafeTimedSerializer.dumps (its `dump_payload`, the URL-safe mixin's compression, the signer's `sign`)
    written out in one function, without the dozen nested calls that cost more than the HMAC itself (Q12: a
    first visit signs a CSRF token and a session). The same token byte for byte, except that a payload of up to
    UNCOMPRESSED_UP_TO bytes is never compressed (the test compares both)."""
    text, kwargs, make_signer = serializer.serializer, serializer.serializer_kwargs, serializer.make_signer

    def dumps(obj, salt=None) -> str:
        json = want_bytes(text.dumps(obj, **kwargs))
        payload = _b64(json)
        if len(json) > UNCOMPRESSED_UP_TO:
            compressed = zlib.compress(json)
            if len(compressed) < len(json) - 1:
                payload = b"." + _b64(compressed)
        return make_signer(salt).sign(payload).decode("utf-8")

    return dumps


class _SessionJSON(TaggedJSONSerializer):
    """Flask's session serializer, with a shortcut for the sessions buyers have (a CSRF token, a language: text
    and numbers only). For those, tagging changes nothing and the JSON is written as Flask's JSON provider writes
    it (sorted keys, ASCII, compact): the same cookie, without walking the tag registry (Q12). A dict key that
    starts with a space could be read as a tag: such sessions, and anything else, take the tagging path."""

    _plain = (str, int, float, type(None))

    def dumps(self, value) -> str:
        if type(value) is not dict or not all(
                type(key) is str and not key.startswith(" ") and type(item) in self._plain
                for key, item in value.items()):
            return super().dumps(value)
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per set of keys instead of twice
    per request (reading and writing the cookie): Q12, a few percent of a checkout GET. A rotated secret key
    (or fallback list) is a new set and builds a new serializer."""

    _built: tuple = (None, None)
    serializer = _SessionJSON()

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._built
        if built[0] != keys:
            serializer = super().get_signing_serializer(app)
            if serializer is not None:
                _signer_once(serializer)
            built = self._built = (keys, serializer)
        return built[1]


_csrf_serializers: dict = {}


def csrf_field_name(app: Flask) -> str:
    return app.config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"


def signed_csrf_token(app: Flask, raw: str) -> str | None:
    """The form's CSRF token for the session's `raw` one, as Flask-WTF signs it (its salt, the CSRF secret
    key), with the serializer and derived key kept per secret key (Q12); None without a secret key."""
    secret_key = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    if not secret_key:
        return None
    serializer = _csrf_serializers.get(secret_key)
    if serializer is None:
        serializer = _csrf_serializers[secret_key] = _signer_once(URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token"))
    return serializer.dumps(raw)


def new_raw_csrf_token() -> str:
    return secrets.token_hex(20)  # as Flask-WTF's: 160 random bits in hex


def generate_csrf() -> str:
    """Flask-WTF's `generate_csrf()` (the same token, stored and signed the same way, so CSRFProtect checks it
    unchanged), with its serializer and derived key kept per secret key instead of rebuilt on every call (Q12:
    ~8% of a checkout GET). Raises as Flask-WTF's does without a secret key."""
    app = current_app
    field_name = csrf_field_name(app)
    if not (app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key):
        from flask_wtf.csrf import generate_csrf as flask_wtf_generate_csrf

        return flask_wtf_generate_csrf()  # its own error message
    token = g.get(field_name)
    if token is None:
        raw = session.get(field_name)
        if not isinstance(raw, str):
            raw = session[field_name] = new_raw_csrf_token()
        token = signed_csrf_token(app, raw)
        setattr(g, field_name, token)
    return token


def new_session_cookie(app: Flask, values: dict) -> str | None:
    """The Set-Cookie value Flask's `save_session` writes for a session new in this request holding `values`
    (not permanent: no expiry), with the app's session interface, cookie settings and signing; None when there
    is nothing to write or no way to sign. For the checkout's first visit (Q12), which runs outside Flask's
    request: the test compares it with what Flask sets."""
    interface = app.session_interface
    if not values or not isinstance(interface, SecureCookieSessionInterface):
        return None
    serializer = interface.get_signing_serializer(app)
    if serializer is None:
        return None
    fresh = interface.session_class(values)
    name, value = interface.get_cookie_name(app), serializer.dumps(dict(fresh))
    settings = (name, interface.get_expiration_time(app, fresh), interface.get_cookie_path(app),
                interface.get_cookie_domain(app), interface.get_cookie_secure(app), interface.get_cookie_httponly(app),
                interface.get_cookie_samesite(app), interface.get_cookie_partitioned(app), app.config["MAX_COOKIE_SIZE"])
    attributes = _cookie_attributes.get(settings)
    if attributes is None:
        attributes = _cookie_attributes[settings] = _cookie(settings, "")[len(name) + 1:]
    if len(_cookie_attributes) > 8:  # settings change only in tests: keep a few
        _cookie_attributes.clear()
    cookie = f"{name}={value}{attributes}"
    if settings[1] is not None or not name.isascii() or not _SIGNED.fullmatch(value) or len(cookie) > settings[-1]:
        # An expiry, a name or value werkzeug would rewrite, a cookie it would warn about: werkzeug writes it.
        return _cookie(settings, value)
    # Werkzeug's dump_cookie writes `name=value` and then the attributes, which depend on the settings only:
    # those are written once per set of settings (Q12), the same header.
    return cookie


_cookie_attributes: dict[tuple, str] = {}
_SIGNED = re.compile(r"[A-Za-z0-9_.\-]+")  # a signed cookie value: URL-safe base64 and dots (never quoted)


def _cookie(settings: tuple, value: str) -> str:
    name, expires, path, domain, secure, httponly, samesite, partitioned, max_size = settings
    return dump_cookie(name, value, expires=expires, path=path, domain=domain, secure=secure, httponly=httponly,
                       samesite=samesite, partitioned=partitioned, max_size=max_size)


_FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)"),
)


def security_headers(app: Flask, policy: str, framed: bool, started: float | None,
                     cpu_started: float | None = None) -> list[tuple[str, str]]:
    """The hardening headers of a response, in order: its Content-Security-Policy `policy`, the fixed ones,
    X-Frame-Options unless the page may be `framed`, Server-Timing since `started` (benchmarks only), HSTS on
    HTTPS. One list for Flask's responses and the checkout's first visit (Q12), which runs outside Flask."""
    headers = [("Content-Security-Policy", policy), *_FIXED_HEADERS]
    if not framed:
        headers.append(("X-Frame-Options", "DENY"))
    if started is not None and app.config.get("KASSA_SERVER_TIMING"):
        # Server-Timing: how long the app itself took, for the benchmarks only (H12: in production the
        # time a login or sign-up took would tell an attacker whether the address has an account).
        timing = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        if cpu_started is not None:  # the CPU the request's thread used: hardly moved by a busy machine
            timing += f", cpu;dur={(time.thread_time() - cpu_started) * 1000:.2f}"
        headers.append(("Server-Timing", timing))
    if app.config.get("KASSA_HTTPS"):
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def init_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["csrf_token"] = generate_csrf  # in place of Flask-WTF's own (the same tokens)
    app.session_interface = SessionInterface()

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()
        g.request_cpu_started = time.thread_time()

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        # What a view set itself wins (as with setdefault); the header names are read once, not once per header
        # (Q12: a Headers.setdefault scans the whole list, seven times per response).
        present = {name.lower() for name, _value in headers}
        for name, value in security_headers(app, _content_security_policy(), g.get("csp_frame_ancestors") is not None,
                                            g.get("request_started"), g.get("request_cpu_started")):
            if name.lower() not in present:
                headers.add(name, value)
        return response
