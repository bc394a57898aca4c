"""Absolute URLs for emails and PDFs, built from KASSA_BASE_URL whether or not a request is running."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    base = current_app.config["KASSA_BASE_URL"]
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        adapter = current_app.url_map.bind("localhost", script_name="/", url_scheme="http")
        path = adapter.build(endpoint, values)
    return base + path
