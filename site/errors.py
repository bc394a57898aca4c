"""Typed errors that services raise; each carries a user-facing message and fits an HTTP status."""

from __future__ import annotations


class KassaError(Exception):
    """Base for errors a user can cause. `message` is already translated; `field` names the form field."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(KassaError):
    status_code = 422

    def __init__(self, message: str, *, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message, field=field)
        # Several fields at once, e.g. a whole line item editor; `field` alone covers the simple case.
        self.errors = dict(errors or ({field: message} if field else {}))


class PaymentDeclined(ValidationFailed):
    """B8: the bank declined the card. Not a typing mistake: a buyer's page says so in its own message (the
    field it concerns is still marked), not under "Check the highlighted fields"."""


class NotFound(KassaError):
    status_code = 404


class Forbidden(KassaError):
    status_code = 403


class Conflict(KassaError):
    """The request was fine but the state has moved on (already refunded, already submitted, ...)."""

    status_code = 409


class Gone(KassaError):
    status_code = 410


class TooManyRequests(KassaError):
    status_code = 429


class EventNotReady(Exception):
    """The event refers to something not recorded yet (e.g. a refund whose reply is still in flight):
    nothing is applied and the event is offered again on the next tick. Raised by the domain handlers that
    services/events.py dispatches to, so it lives here, below both."""
