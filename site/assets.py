"""Bundled, minified assets for the buyer pages, where every byte counts (the checkout ships < 30 KB).

No build step: the CSS and JS sources in static/ are concatenated and minified in Python the first
time they are asked for, then served from memory under a content hash, cacheable for a year, gzipped
once for browsers that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import rcssmin
import rjsmin
from flask import Blueprint, Response, abort, request, url_for

STATIC = Path(__file__).resolve().parent / "static"

BUNDLES: dict[str, tuple[str, list[str]]] = {
    "checkout.css": ("text/css", ["css/checkout.css", "css/summary.css"]),
    # Q12: rules only the confirmation, the card update and a live (Stripe) checkout use, out of the budget.
    "checkout-more.css": ("text/css", ["css/checkout-more.css"]),
    "checkout.js": ("text/javascript", ["js/checkout.js"]),
    # Q3/Q4: re-pricing without a page load, only on a checkout whose order summary has a line to adjust (Q12).
    "checkout-reprice.js": ("text/javascript", ["js/checkout-reprice.js"]),
    # K6: live checkouts on Stripe only (the Payment Element and next actions); no other page loads it.
    "checkout-stripe.js": ("text/javascript", ["js/checkout-stripe.js"]),
}

bp = Blueprint("assets", __name__)
_cache: dict[str, tuple[float, bytes, str, bytes]] = {}


def _built(name: str) -> tuple[float, bytes, str, bytes]:
    """(sources' mtime, minified bytes, content hash, gzipped bytes), rebuilt when a source changes."""
    content_type, sources = BUNDLES[name]
    paths = [STATIC / source for source in sources]
    stamp = max(path.stat().st_mtime for path in paths)
    cached = _cache.get(name)
    if cached and cached[0] == stamp:
        return cached
    text = "\n".join(path.read_text() for path in paths)
    body = (rcssmin.cssmin(text) if content_type == "text/css" else _jsmin(text)).encode()
    digest = hashlib.sha256(body).hexdigest()[:12]
    _cache[name] = (stamp, body, digest, gzip.compress(body, compresslevel=9, mtime=0))
    return _cache[name]


# Q12: two rewrites rjsmin leaves out, each the same program: a lone arrow parameter needs no parentheses, and a
# `const` binding is a `let` one that is never reassigned (it is never, or the script would already have thrown).
# No string in our scripts holds either text (tests/web/test_q12_checkout_get_cost.py checks); the browser tests
# run the built bundles.
_ARROW_PARAM = re.compile(r"(?<![\w$])\(([A-Za-z_$][\w$]*)\)=>")  # not after a name: `async(e)=>` stays
_CONST = re.compile(r"\bconst\b")


def _jsmin(text: str) -> str:
    return _CONST.sub("let", _ARROW_PARAM.sub(r"\1=>", rjsmin.jsmin(text)))


def _build(name: str) -> tuple[bytes, str]:
    _stamp, body, digest, _gzipped = _built(name)
    return body, digest


def asset_url(name: str) -> str:
    _body, digest = _build(name)
    return url_for("assets.bundle", name=name, v=digest)


def bundle_bytes(name: str) -> bytes:
    return _build(name)[0]


@bp.get("/assets/<name>")
def bundle(name: str):
    if name not in BUNDLES:
        abort(404)
    _stamp, body, _digest, gzipped = _built(name)
    # Static bytes, no secrets and nothing the visitor sent: compressing them leaks nothing (unlike pages
    # with a CSRF token, which are left to the reverse proxy to compress or not).
    compressed = request.accept_encodings["gzip"] > 0
    response = Response(gzipped if compressed else body, mimetype=BUNDLES[name][0])
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    # The URL carries the content hash, so the bytes behind it never change.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
