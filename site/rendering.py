"""Render a whole page, or only the block an htmx request asked for (DESIGN §7.10)."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    # History restores ask for the whole page even though they come from htmx.
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def render_page(template: str, block: str | None = None, *, status: int = 200, fragment: bool = False,
                **context: Any) -> Response:
    """The full page for normal requests; just `block` for htmx requests (or always, with `fragment=True`,
    for endpoints that only ever serve a fragment). Always `Vary: HX-Request`."""
    if block and (fragment or is_htmx()):
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def htmx_redirect(location: str) -> Response:
    """Send the browser somewhere else: a 303 for plain forms, HX-Location-free redirect for htmx."""
    from flask import redirect

    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)


def htmx_update(target: str, html: str, *, message: str | None = None, kind: str = "success",
                close_dialog: bool = True, also: tuple[str, ...] = ()) -> Response:
    """Answer an htmx action by swapping `html` into `target`, closing the dialog and showing a toast."""
    import json

    response = make_response(html)
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = "innerHTML"
    events: dict = {}
    if close_dialog:
        events["kassa:close-dialog"] = True
    if message:
        events["kassa:toast"] = {"message": message, "kind": kind}
    for name in also:  # other parts of the page that listen for these events refresh themselves
        events[name] = True
    if events:
        response.headers["HX-Trigger"] = json.dumps(events)
    response.vary.add("HX-Request")
    return response


def private_download(data: bytes, content_type: str, filename: str, fallback: str = "download") -> Response:
    """A file the browser saves (receipts, invoices): a safe file name in the header, and kept by no cache,
    shared or the browser's own (it holds a buyer's or a merchant's data)."""
    from kassa.forms import safe_filename

    response = Response(data, mimetype=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_filename(filename, fallback)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
