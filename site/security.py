"""Security headers: a strict nonce-based CSP on every response, plus the usual hardening headers."""

from __future__ import annotations

import secrets
import time

from flask import Flask, Response, current_app, g
from flask.sessions import SecureCookieSessionInterface


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


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
    nonce = csp_nonce()
    form_action = " ".join(["'self'", *g.get("csp_form_action", [])])
    frame_ancestors = g.get("csp_frame_ancestors", "'none'")
    # strict-dynamic + nonce: only scripts we tagged run; no inline code, no third-party origins.
    script_src = f"script-src 'nonce-{nonce}' 'strict-dynamic'"
    extra: list[str] = []
    connect_src = "connect-src 'self'"
    if g.get("csp_stripe"):
        stripe = current_app.config["KASSA_STRIPE_CSP"]
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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per set of keys instead of twice
    per request (reading and writing the cookie): Q12, a few percent of a checkout GET. A rotated secret key
    (or fallback list) is a new set and builds a new serializer."""

    _built: tuple = (None, None)

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._built
        if built[0] != keys:
            built = self._built = (keys, super().get_signing_serializer(app))
        return built[1]


def init_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.session_interface = SessionInterface()

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _content_security_policy())
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if g.get("csp_frame_ancestors") is None:
            headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)")
        started = g.get("request_started")
        if started is not None and app.config.get("KASSA_SERVER_TIMING"):
            # Server-Timing: how long the app itself took, for the benchmarks only (H12: in production the
            # time a login or sign-up took would tell an attacker whether the address has an account).
            headers.setdefault("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
        if app.config.get("KASSA_HTTPS"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
