"""Refuse requests carrying a NUL character before any view sees them (PostgreSQL can't store or compare NUL).

No form of Kassa has a use for NUL: it only arrives from crafted requests or broken clients. Stripping it in
every service is easy to forget (and would silently change what the user sent), so one guard answers 400
with a clear message for NUL anywhere in the path, the query string, the form (names, values, file names)
or a JSON body, and nothing is read or written.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import gettext as _

from kassa.errors import KassaError
from kassa.forms import form_has_nul

NUL = "\x00"


class NulCharacter(KassaError):
    status_code = 400


def _has_nul(document: Any) -> bool:
    """Any string (key or value) in a decoded JSON document containing NUL; iterative, so depth can't hurt."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _pairs_have_nul(pairs) -> bool:
    return any(NUL in key or NUL in value for key, value in pairs)


def request_has_nul() -> bool:
    """True when the path, query string, form fields, upload names or JSON body contain NUL."""
    if NUL in request.path:
        return True
    query = request.environ.get("QUERY_STRING", "")
    # A NUL in the query string arrives percent-encoded (or raw, from a broken client): without either, no
    # argument can decode to one, and the arguments need not be parsed (Q12: most GETs have no query at all).
    if ("%00" in query or NUL in query) and _pairs_have_nul(request.args.items(multi=True)):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    if request.is_json:
        return _has_nul(request.get_json(silent=True))
    if form_has_nul():  # every posted field, declared by a form or not: no form is built before this runs
        return True
    return any(NUL in key or NUL in (upload.filename or "") for key, upload in request.files.items(multi=True))


def refuse_nul() -> None:
    if request_has_nul():
        raise NulCharacter(_("The request contains a NUL character, which no field accepts. Remove it and try "
                             "again."))


def register(app: Flask) -> None:
    app.before_request(refuse_nul)
