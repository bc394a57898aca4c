"""Absolute URLs for emails and PDFs, built from KASSA_BASE_URL whether or not a request is running."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    base = current_app.config["KASSA_BASE_URL"]
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        adapter = current_app.url_map.bind("localhost", script_name="/", url_scheme="http")
        path = adapter.build(endpoint, values)
    return base + path


# -- web addresses merchants type (H11) -----------------------------------------------------------------

# Characters that have no place in a web address typed into a form and that would change the meaning of a
# header the address is copied into: `;` and `,` separate CSP directives and sources, quotes and backslashes
# end strings, `<>` end tags. Whitespace and control characters (form feed included) are refused separately.
_FORBIDDEN_IN_URL = set(";,'\"`\\<>{}|^")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _ascii_host(host: str) -> str | None:
    """The host in ASCII (IDNA for international names) when it is a valid DNS name or IP address."""
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]" if host.endswith("]") else None
        except ValueError:
            return None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_host.rstrip(".").split(".")
    if not ascii_host or len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_host


def web_origin(url: object) -> str | None:
    """`scheme://host[:port]` of an http(s) address that parses cleanly, or None.

    Clean means: http or https, a host that is a DNS name or IP address, a valid port, and no whitespace,
    control characters, quotes, `;` or `,` anywhere. The origin is rebuilt from the parsed parts, never cut
    out of the text, so whatever else the address holds can't reach a header (H11: a thank-you URL with `;`
    and a form feed added `frame-ancestors *` to the checkout page's CSP).
    """
    if not isinstance(url, str) or not url or len(url) > 2000:
        return None
    if any(ch in _FORBIDDEN_IN_URL or ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host_text = parts.netloc.rpartition("@")[2]
    host_text = host_text.partition("]")[0] + "]" if host_text.startswith("[") else host_text.partition(":")[0]
    host = _ascii_host(host_text)
    try:
        port = parts.port
    except ValueError:
        return None
    if host is None:
        return None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
