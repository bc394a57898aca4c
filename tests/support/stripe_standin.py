"""The test-only Stripe.js stand-in (tests/browser/fixtures/stripe-standin.js) served from its own origin, the role
js.stripe.com plays, pointing at localstripe (K6/K8 browser tests). localstripe's own Stripe.js has no Payment
Element."""

from __future__ import annotations

import http.server
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.browser import serving
from tests.support.localstripe import localstripe_url  # noqa: F401  (the fixture)

STANDIN = Path(__file__).resolve().parents[1] / "browser" / "fixtures" / "stripe-standin.js"


@pytest.fixture(scope="module")
def stripe_js(localstripe_url):  # noqa: F811
    """The stand-in's address on its own origin, pointing at localstripe."""
    body = STANDIN.read_text().replace("__API__", localstripe_url).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/v3/" else 404)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if self.path == "/v3/" else b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}/v3/"


def standin_config(localstripe_url: str, stripe_js: str) -> dict:  # noqa: F811
    """App config sending Kassa's Stripe calls to localstripe and its pages' Stripe.js to the stand-in; the CSP
    allows exactly those two origins where Stripe's would be."""
    standin = f"http://{urlsplit(stripe_js).netloc}"
    return {"KASSA_STRIPE_BASE_ADDRESSES": {"api": localstripe_url, "files": localstripe_url,
                                            "connect": localstripe_url},
            "KASSA_STRIPE_JS_URL": stripe_js,
            "KASSA_STRIPE_CSP": {"script-src": [standin], "frame-src": [standin], "connect-src": [localstripe_url]}}
