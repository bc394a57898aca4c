"""G4: structured logs. One JSON object per line (KASSA_LOG_FORMAT=json), each carrying the request id of the
request it belongs to, or of the request whose job the worker is running.

The log context is a contextvar, not `flask.g`: the worker has no request, yet its lines must name the request
that queued the job (the outbox row keeps the id, `outbox.run_claimed` puts it back here). An outbox message
written while the context holds a request id keeps that id (the column default reads it), so a job queued by a
job queued by a request still names the request.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

# (request id, account id) of the work under way; None outside any request or job.
_context: ContextVar[tuple[str | None, int | None] | None] = ContextVar("kassa_log_context", default=None)

# What a proxy may hand us as a request id: short, and nothing that could break a log line or a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

ACCESS_LOGGER = "kassa.access"


def current_request_id() -> str | None:
    """The request id of the request or job under way (the outbox stores it with each message it queues)."""
    context = _context.get()
    return context[0] if context else None


@contextmanager
def log_context(request_id: str | None, account_id: int | None = None) -> Iterator[None]:
    """Lines logged inside name this request id and account (the worker, around a job)."""
    token = _context.set((request_id, account_id))
    try:
        yield
    finally:
        _context.reset(token)


def incoming_request_id(trusted_proxy: bool) -> str:
    """The id of this request: the proxy's X-Request-Id when a trusted proxy sent it (nginx: `$request_id`), so
    the proxy's log and ours share it; otherwise a new one. A client talking to us directly could otherwise
    choose the id, and make its requests look like someone else's in the logs."""
    return request_id_from(request.headers.get("X-Request-Id", "") if trusted_proxy else None)


def request_id_from(offered: str | None) -> str:
    """`offered` (the X-Request-Id of a trusted proxy; None when the request didn't come through one) if it is
    a well-formed id, else a new one. Without Flask's request: the checkout's first visit (Q12) uses it too."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return _new_request_id()


_ids: tuple[int, str, Iterator[int]] | None = None


def _new_request_id() -> str:
    """32 hex digits: 16 random per process (made again after a fork: each gunicorn worker its own) and a
    counter. Unique, not secret (nothing is authorised by it), and a fraction of uuid4's cost, which asks the
    kernel for random bytes on every request."""
    global _ids
    ids = _ids
    pid = os.getpid()
    if ids is None or ids[0] != pid:
        ids = _ids = (pid, secrets.token_hex(8), itertools.count(1))
    return f"{ids[1]}{next(ids[2]):016x}"


def start_request(request_id: str) -> object:
    return _context.set((request_id, None))


def end_request(token: object) -> None:
    _context.reset(token)  # type: ignore[arg-type]


def _signed_in_account() -> int | None:
    """The account of the signed-in user, if this request already loaded them (never loads them for a log line)."""
    user = g.get("_login_user")
    return getattr(user, "account_id", None) if user is not None and getattr(user, "is_authenticated", False) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, account_id, and for the access line
    route, method, path, status and duration_ms. An exception's traceback goes in "exception"."""

    _EXTRA = ("route", "method", "path", "status", "duration_ms", "job", "job_kind")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get()
        if context is not None:
            request_id, account_id = context
            entry["request_id"] = request_id
            if account_id is None and has_request_context():
                account_id = _signed_in_account()
            if account_id is not None:
                entry["account_id"] = account_id
        for name in self._EXTRA:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_HANDLER_NAME = "kassa-json"


def configure(app: Flask) -> None:
    """KASSA_LOG_FORMAT=json: every logger writes JSON lines to stderr (INFO and up), and Kassa writes one access
    line per request (Werkzeug's own access lines are silenced, they would say it twice in another format).
    Anything else ("text", the default): Python's and Flask's usual logging, unchanged."""
    if app.config.get("KASSA_LOG_FORMAT") != "json":
        return
    from flask.logging import default_handler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:  # a second app in this process (tests): one handler only
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    app.logger.removeHandler(default_handler)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
