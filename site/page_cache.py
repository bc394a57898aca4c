"""Pages rendered once and filled in per request: the same HTML for every visitor but a few values.

The buyer's checkout page is identical for every session of one link version in one language, except for
its session token (in two URLs), the CSRF token and the CSP nonce. Rendering it costs milliseconds of
Jinja and Babel work; filling three values into a cached copy costs microseconds. The template is rendered
with random per-process marks in place of those values, split at the marks, and joined with the real
values on each request. The marks are unguessable, so text a merchant controls can never contain one.

The caller's key must cover everything else the page shows (the whole account row, the frozen link
snapshot, the language, the mode, …). Pages are not cached while templates reload (debug), so editing
a template shows at once.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import current_app, render_template

# Values filled in per request must not need escaping in HTML text, attributes or URL paths.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")


class PageCache:
    def __init__(self, names: tuple[str, ...], maxsize: int = 128) -> None:
        self._marks = {name: f"k{secrets.token_hex(16)}" for name in names}
        self._names = {mark: name for name, mark in self._marks.items()}
        self._split = re.compile("(" + "|".join(self._marks.values()) + ")")
        self._entries: OrderedDict[Hashable, list[str]] = OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def mark(self, name: str) -> str:
        """The stand-in rendered where the per-request value `name` goes."""
        return self._marks[name]

    @staticmethod
    def enabled() -> bool:
        return not current_app.jinja_env.auto_reload

    def render(self, key: Hashable, template: str, context: Callable[[], dict], values: dict[str, str]) -> str | None:
        """The page for `key`, rendering `template` with `context()` (called only on a miss) the first time.

        `values` maps each name to this request's value; None when a value is not safe to fill in (the
        caller then renders the page normally)."""
        if not all(SAFE_VALUE.fullmatch(value) for value in values.values()):
            return None
        with self._lock:
            parts = self._entries.get(key)
            if parts is not None:
                self._entries.move_to_end(key)
        if parts is None:
            parts = self._split.split(render_template(template, **context()))
            for i in range(1, len(parts), 2):
                parts[i] = self._names[parts[i]]
            with self._lock:
                self._entries[key] = parts
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
        page = parts.copy()
        page[1::2] = [values[name] for name in parts[1::2]]
        return "".join(page)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
