"""Embeddable buy buttons (L18): /embed.js for any website and the per-link stylesheet it loads."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template

from kassa.colors import text_on
from kassa.services.links.links import link_by_slug

bp = Blueprint("embed", __name__)

EMBED_JS = Path(__file__).resolve().parent.parent / "static" / "embed" / "embed.js"


def _public(response: Response, max_age: int) -> Response:
    # Other sites load these: let them be cached, and fetched from any origin.
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/embed.js")
def script():
    return _public(Response(EMBED_JS.read_bytes(), mimetype="text/javascript"), max_age=3600)


@bp.get("/embed/<slug>.css")
def stylesheet(slug: str):
    """The button's look in the merchant's brand colour (an inactive link keeps its look; its page says 410)."""
    link = link_by_slug(slug)
    brand = link.account.brand_color
    css = render_template("embed/button.css", slug=link.slug, brand=brand, text=text_on(brand))
    return _public(Response(css, mimetype="text/css"), max_age=300)
