"""Public media: merchant logos (shown on checkout pages and receipts, so no login)."""

from __future__ import annotations

import re

from flask import Blueprint, abort, send_from_directory

from kassa.services.accounts.accounts import logo_dir

bp = Blueprint("media", __name__)

LOGO_NAME = re.compile(r"^[A-Za-z0-9_-]{16}\.png$")


@bp.get("/media/logos/<name>")
def logo(name: str):
    if not LOGO_NAME.match(name):
        abort(404)
    response = send_from_directory(logo_dir(), name, mimetype="image/png", max_age=31536000)
    # Logo files are never rewritten: a new upload gets a new random name.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
