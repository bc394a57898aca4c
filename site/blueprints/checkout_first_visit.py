"""Q12: a buyer's first visit to the checkout page, answered without Flask's request machinery.

A buyer arrives at GET /checkout/<token> (the redirect from /pay/<slug>) with no cookie and no query string.
When the page cache holds the page, all the app does for that request is: read the page's state (one
precompiled read), give the new visitor a CSRF token (and the session cookie holding it), fill the cached
page, and add the headers every response gets. Flask's request and application contexts, routing, session
machinery and the dozen app-wide hooks around that work cost more CPU than the work itself (docs/architecture.md
§8), while doing nothing else for this one request. This WSGI wrapper does that work itself and hands
everything else to Flask unchanged: any other request, a visitor with a cookie (language, CSRF token or
login), a page the cache doesn't hold, a checkout that shows no form, and anything that goes wrong (Flask then
answers it as always, its error page and its log line).

The response is the one Flask's path writes: the same status, the same headers in the same order, the same
body, each with its own random values (CSRF token, nonce, request id); the CSRF token is signed as Flask-WTF
signs it and stored in a session cookie as Flask stores it, so the form's POST is checked unchanged. The
request's other effects are the same too: its request id (the X-Request-Id of a trusted proxy, G4) in the log
context while it runs, its latency observation and its access line (`metrics.record_request`).
tests/web/test_q12_checkout_first_visit.py compares both paths header by header for every kind of page.

Each app-wide hook either has its work done here or does nothing on such a request: KNOWN_HOOKS says which. A
hook this module doesn't know (or a change to the route, the view or the session interface) turns the path
off, so Flask runs the hook as on any request, and the Q12 test fails until the hook is accounted for here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from kassa import logs, metrics
from kassa.blueprints import checkout
from kassa.extensions import db
from kassa.netutil import forwarded_through
from kassa.security import (
    SessionInterface,
    content_security_policy,
    csrf_field_name,
    new_nonce,
    new_raw_csrf_token,
    new_session_cookie,
    security_headers,
    signed_csrf_token,
)
from kassa.services.checkout import checkout as checkout_service

ENDPOINT = "checkout.page"
# What the `<token>` of checkout.page's rule can be that the page cache can fill in (page_cache.SAFE_VALUE
# without the dot): never a NUL (input_guard), never a path separator.
_PATH = re.compile(r"/checkout/([A-Za-z0-9_-]+)\Z")

# The hooks Flask runs around checkout.page (app-wide, and the checkout blueprint's), and why a first visit
# needs no more than this module does.
KNOWN_HOOKS: dict[str, dict[str, str]] = {
    "before_request_funcs": {
        "kassa.metrics.register.<locals>.begin_request": "the request id and log context: done here",
        "flask_wtf.csrf.CSRFProtect.init_app.<locals>.csrf_protect": "checks WTF_CSRF_METHODS only, never GET",
        "kassa.login._enforce_session_lifetime": "a signed-in session's lifetime: a first visit has no session",
        "kassa.security.init_security_headers.<locals>._start_timer": "Server-Timing's start: done here",
        "kassa.input_guard.refuse_nul": "the path matched by _PATH holds no NUL, and there is no query or body",
    },
    "after_request_funcs": {
        "kassa.metrics.register.<locals>.finish_request": "X-Request-Id, latency, access line: done here",
        "flask_limiter._extension.Limiter.__inject_headers": "headers of the limits checked: checkout.page has none",
        "flask_login.login_manager.LoginManager._update_remember_cookie": "a signed-in session's remember cookie",
        "kassa.login._no_store_when_signed_in": "Cache-Control of a signed-in session: a first visit has none",
        "kassa.security.init_security_headers.<locals>._headers": "CSP and the hardening headers: done here",
    },
    "teardown_request_funcs": {
        "kassa.metrics.register.<locals>.end_request": "ends the log context: done here",
        "flask_limiter._extension.Limiter.__release_context": "forgets the limits checked: there were none",
    },
    "url_value_preprocessors": {},
}


def hook_name(func: Callable) -> str:
    func = getattr(func, "func", func)  # a functools.partial (Flask-Limiter's)
    return f"{func.__module__}.{func.__qualname__}"


def unknown_setup(app: Flask) -> list[str]:
    """What about `app` this module doesn't account for (empty when it may answer first visits)."""
    problems = []
    for attribute, known in KNOWN_HOOKS.items():
        registry = getattr(app, attribute)
        for scope in (None, ENDPOINT.split(".")[0]):
            problems += [f"{attribute}[{scope!r}]: {hook_name(func)}" for func in registry.get(scope, ())
                         if hook_name(func) not in known]
    if app.view_functions.get(ENDPOINT) is not checkout.page:
        problems.append(f"the view of {ENDPOINT} is not blueprints.checkout.page")
    if type(app.session_interface) is not SessionInterface:
        problems.append("the session interface is not kassa.security.SessionInterface")
    if app.url_map.host_matching or app.subdomain_matching:
        problems.append("the URL map matches hosts or subdomains")
    sample = "/checkout/" + "Az09_-" * 7
    try:
        matched = app.url_map.bind("localhost").match(sample, "GET")
    except Exception:  # a redirect or a 404: not the route this module answers
        matched = None
    if matched != (ENDPOINT, {"token": "Az09_-" * 7}):
        problems.append(f"GET {sample} is not routed to {ENDPOINT}")
    return problems


def install(app: Flask) -> None:
    app.wsgi_app = FirstVisit(app, app.wsgi_app)  # type: ignore[method-assign]


class FirstVisit:
    """The WSGI wrapper: see the module's docstring."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        with app.app_context():
            self.engine = db.engine  # made once by Flask-SQLAlchemy's init_app: the same engine for the app's life
        self.enabled = True  # the tests turn it off to compare with Flask's own path
        self._checked: tuple | None = None
        self._known = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") == "GET" and "HTTP_COOKIE" not in environ
                and not environ.get("QUERY_STRING") and self.enabled):
            match = _PATH.match(environ.get("PATH_INFO") or "")
            if match is not None and self._setup_known():
                try:
                    answered = self._answer(environ, match.group(1))
                except Exception:  # Flask's path answers it as any failing request (error page, log)
                    answered = None
                if answered is not None:
                    headers, body = answered
                    start_response("200 OK", headers)
                    return [body]
        return self.wsgi_app(environ, start_response)

    def _setup_known(self) -> bool:
        """Whether every hook is one KNOWN_HOOKS accounts for: checked again whenever the hooks change."""
        app = self.app
        now = (tuple(app.before_request_funcs.get(None, ())), tuple(app.after_request_funcs.get(None, ())),
               tuple(app.teardown_request_funcs.get(None, ())), len(app.before_request_funcs),
               len(app.after_request_funcs), len(app.teardown_request_funcs), len(app.url_value_preprocessors),
               app.session_interface, app.view_functions.get(ENDPOINT))
        if now != self._checked:
            self._known, self._checked = not unknown_setup(app), now
        return self._known

    def _answer(self, environ: dict, token: str) -> tuple[list[tuple[str, str]], bytes] | None:
        app = self.app
        config = app.config
        script_root = environ.get("SCRIPT_NAME") or ""
        if (config.get("TRUSTED_HOSTS") is not None or config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
                or "GET" in config["WTF_CSRF_METHODS"] or not script_root.isascii()):
            return None  # Flask would check the host, write a remember cookie, check a CSRF token on a GET
        started, cpu_started = time.perf_counter(), time.thread_time()
        proxied = forwarded_through(config.get("KASSA_TRUSTED_PROXIES", 0), environ.get("HTTP_X_FORWARDED_FOR", ""))
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID", "") if proxied else None)
        log_context = logs.start_request(request_id)
        try:
            # No app context either: everything below is handed the app (and its engine) instead of finding
            # them through Flask's context (a few percent of this request).
            page = self._page(environ, token, script_root.rstrip("/"))
            if page is None:
                return None
            body, (form_action, stripe_js), cookie, nonce = page
            policy = content_security_policy(nonce, (form_action,) if form_action else (), "'none'",
                                             config["KASSA_STRIPE_CSP"] if stripe_js else None)
            # In the order Flask's response has them: its own, the after_request hooks' (last registered first),
            # then the session's.
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                       *security_headers(app, policy, False, started, cpu_started), ("X-Request-Id", request_id),
                       ("Vary", "Cookie"), ("Set-Cookie", cookie)]
            metrics.record_request(app, ENDPOINT, "GET", environ["PATH_INFO"], 200, time.perf_counter() - started)
            return headers, body
        finally:
            logs.end_request(log_context)

    def _page(self, environ: dict, token: str, script_root: str) -> tuple | None:
        """What `checkout.page` serves from the cache for a visitor without a session: (the body, what the cache
        keeps beside it, the Set-Cookie value, the CSP nonce); None when it would do anything else."""
        app = self.app
        pages = checkout.page_cache(app)
        if not pages.enabled(app):
            return None
        state = checkout_service.page_state(token, self.engine)
        if state is None or not state.shows_form:
            return None
        accept = parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept)
        key = checkout.page_key(state, checkout.default_language(state.stored_language, accept), script_root, app)
        raw = new_raw_csrf_token()
        csrf = signed_csrf_token(app, raw)
        if csrf is None:
            return None
        nonce = new_nonce()
        hit = pages.cached_bytes(key, {"token": token, "csrf": csrf, "nonce": nonce})
        if hit is None:
            return None
        cookie = new_session_cookie(app, {csrf_field_name(app): raw})
        if cookie is None:
            return None
        return *hit, cookie, nonce
