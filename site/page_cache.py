"""Pages rendered once and filled in per request: the same HTML for every visitor but a few values.

The buyer's checkout page is identical for every session of one link version in one language, except for
its session token (in two URLs), the CSRF token and the CSP nonce. Rendering it costs milliseconds of
Jinja and Babel work; filling three values into a cached copy costs microseconds. The template is rendered
with random per-process marks in place of those values, split at the marks, and joined with the real
values on each request. The marks are unguessable, so text a merchant controls can never contain one.

The caller's key must cover everything else the page shows (the whole account row, the frozen link
snapshot, the language, the mode, …). Pages are not cached while templates reload (debug), so editing
a template shows at once.

M8: the per-request values are declared slots (CHECKOUT_SLOTS), and nothing else of one session may end
up in a cached copy. When an entry is built, the page was rendered with the marks as sentinels; the
building request's own values (its slot values and the secrets in its session cookie) must then appear
nowhere in it, and no mark may appear mangled (cut, case-changed) outside a slot. Otherwise SlotLeak is
raised and nothing is cached: the next visitor would have been served this session's value. The check
runs only when an entry is built, never on the per-request fill.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import Flask, current_app, render_template, session

# Values filled in per request must not need escaping in HTML text, attributes or URL paths.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")

# M8: the only per-request values of the cached checkout page (site/templates/checkout/page.html).
CHECKOUT_SLOTS: tuple[str, ...] = (
    "token",  # the checkout session's token, in the page's own URL and the form's action
    "csrf",  # the CSRF token of the buyer's browser session (hidden form field)
    "nonce",  # this response's CSP nonce (the inline style and the script tag)
)

# Session values shaped like random tokens are secrets of the building session (M8): no page text holds
# them by chance, unlike short or structured values such as the remembered language code "nl" or a time.
_SESSION_SECRET = re.compile(r"[A-Za-z0-9_.\-]{16,}")


# Q12: a cached page is stored with each run of whitespace that holds a line break cut to one line break (the
# template's indentation and blank lines): the same rendering, ~1 KB less on the checkout. No cached page has
# <pre> or <textarea>, where whitespace shows.
_LINE_BREAKS = re.compile(r"[ \t\r\f\v]*\n\s*")


# Then a line break between a tag and the tag of a block (or never rendered) element goes too: whitespace there
# lays nothing out (no buyer page has an inline-block element), ~200 bytes less on a checkout with two addresses.
_BLOCK_BREAKS = re.compile(r">\n(?=</?(?:html|head|body|meta|link|title|style|script|header|footer|main|aside|"
                           r"section|div|form|fieldset|legend|h[1-6]|p|ul|ol|li|dl|dt|dd|details|summary|datalist|"
                           r"option|table|tr|td|th)[\s/>])")


# Then the quotes around attribute values that need none (HTML allows a value without space, quote, `=`, `<`,
# `>` or backtick unquoted), for the attributes every field repeats (class, for, autocomplete, …): ~330 bytes on
# the largest checkout. Ids, names, values, URLs and data-/aria- attributes keep theirs (what tests and scripts
# look for as text). Free text is never touched: Jinja escapes a quote in text as &#34;, so `="` is only ever a
# real attribute's opening quote.
_UNQUOTED = re.compile(r'(\s(?:class|for|type|autocomplete|inputmode|lang|list|tabindex|maxlength|method|rel|charset|'
                       r'nonce|autocapitalize|spellcheck))="([A-Za-z0-9_.:#-]+)"')


def compact(html: str) -> str:
    return _UNQUOTED.sub(r"\1=\2", _BLOCK_BREAKS.sub(">", _LINE_BREAKS.sub("\n", html)))


class SlotLeak(RuntimeError):
    """M8: a page about to be cached holds a per-session value outside its declared slots."""


class PageCache:
    def __init__(self, names: tuple[str, ...], maxsize: int = 128) -> None:
        self.slots = tuple(names)
        self._marks = {name: f"k{secrets.token_hex(16)}" for name in names}
        self._names = {mark: name for name, mark in self._marks.items()}
        self._split = re.compile("(" + "|".join(self._marks.values()) + ")")
        # key → (the page split at its marks, with slot names at odd indices; what the caller stored beside it;
        # the same parts UTF-8 encoded, for `cached_bytes`)
        self._entries: OrderedDict[Hashable, tuple[list[str], object, list]] = OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def mark(self, name: str) -> str:
        """The stand-in rendered where the per-request value `name` goes."""
        return self._marks[name]

    @staticmethod
    def enabled(app: Flask | None = None) -> bool:
        return not (app or current_app).jinja_env.auto_reload

    def cached(self, key: Hashable, values: dict[str, str]) -> tuple[str, object] | None:
        """The page for `key` filled with `values`, and what `render` stored beside it; None on a miss or when
        a value is not safe to fill in."""
        entry = self._entry(key, values)
        if entry is None:
            return None
        parts, meta, _encoded = entry
        return self._fill(parts, values), meta

    def cached_bytes(self, key: Hashable, values: dict[str, str]) -> tuple[bytes, object] | None:
        """`cached`, as the UTF-8 bytes of the response body: filled from parts encoded once, not the whole
        page encoded on every request (Q12: the checkout's first visit, blueprints/checkout_first_visit.py)."""
        entry = self._entry(key, values)
        if entry is None:
            return None
        _parts, meta, encoded = entry
        page = encoded.copy()
        page[1::2] = [values[name].encode() for name in encoded[1::2]]
        return b"".join(page), meta

    def _entry(self, key: Hashable, values: dict[str, str]) -> tuple | None:
        if not all(SAFE_VALUE.fullmatch(value) for value in values.values()):
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        return entry

    def render(self, key: Hashable, template: str, context: Callable[[], dict], values: dict[str, str],
               meta: object = None) -> str | None:
        """The page for `key`, rendering `template` with `context()` (called only on a miss) the first time, and
        keeping `meta` beside it (what the page's response needs besides its HTML, e.g. a CSP allowance).

        `values` maps each name to this request's value; None when a value is not safe to fill in (the
        caller then renders the page normally)."""
        hit = self.cached(key, values)
        if hit is not None:
            return hit[0]
        if not all(SAFE_VALUE.fullmatch(value) for value in values.values()):
            return None
        if set(values) != set(self.slots):
            raise ValueError(f"filled values {sorted(values)} are not the declared slots {sorted(self.slots)}")
        parts = self._split.split(compact(render_template(template, **context())))
        self._check(template, parts, values)
        for i in range(1, len(parts), 2):
            parts[i] = self._names[parts[i]]
        encoded = [part.encode() if i % 2 == 0 else part for i, part in enumerate(parts)]
        with self._lock:
            self._entries[key] = (parts, meta, encoded)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return self._fill(parts, values)

    @staticmethod
    def _fill(parts: list[str], values: dict[str, str]) -> str:
        page = parts.copy()
        page[1::2] = [values[name] for name in parts[1::2]]
        return "".join(page)

    def _check(self, template: str, parts: list[str], values: dict[str, str]) -> None:
        """M8: the rendered copy (split at the marks) may hold nothing of the session that built it."""
        text = "".join(parts[0::2])  # everything outside the slots
        secrets_of_session = {f"slot {name!r}": value for name, value in values.items()}
        for name, value in session.items():
            if isinstance(value, str) and _SESSION_SECRET.fullmatch(value):
                secrets_of_session[f"session value {name!r}"] = value
        for what, value in secrets_of_session.items():
            if value and value in text:
                raise SlotLeak(f"{template}: this session's {what} is rendered outside the declared slots "
                               f"{self.slots}; the cached page would show it to every visitor")
        lowered = text.lower()
        for name, mark in self._marks.items():
            # A mark that was cut or transformed is not split out, so the slot would never be filled.
            if mark[1:13] in lowered:
                raise SlotLeak(f"{template}: the {name!r} slot is rendered altered (cut or transformed)")

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
