"""Error pages: a clear message for every status, an inline alert for htmx requests, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from kassa.errors import KassaError
from kassa.rendering import is_htmx

log = logging.getLogger(__name__)


def _titles() -> dict[int, str]:
    return {
        400: _("That request didn't work"),
        401: _("Log in to continue"),
        403: _("You don't have access to this page"),
        404: _("Page not found"),
        405: _("That action isn't allowed here"),
        409: _("That couldn't be done"),
        410: _("No longer available"),
        413: _("That file is too large"),
        422: _("Check what you entered"),
        429: _("Too many attempts"),
        500: _("Something went wrong on our side"),
    }


def _default_message(status: int) -> str:
    return {
        403: _("Ask a Super admin of your account for access."),
        404: _("The page or record doesn't exist, or it belongs to another account."),
        405: _("Go back and try again from the page."),
        413: _("Upload a smaller file."),
        429: _("Wait a little and try again."),
        500: _("The problem has been logged. Try again in a moment."),
    }.get(status, _("Go back and try again."))


def render_error(status: int, message: str | None = None):
    title = _titles().get(status, _titles()[400])
    missing = g.get("missing_permission")
    if status == 403 and missing is not None and not message:
        message = _("This needs the “%(permission)s” permission. Ask a Super admin of your account.",
                    permission=missing.label)
    message = message or _default_message(status)
    template = "errors/_alert.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(KassaError)
    def _kassa_error(exc: KassaError):
        return render_error(exc.status_code, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return render_error(400, _("This form has expired or was sent from another site. Reload the page and try again."))

    @app.errorhandler(429)
    def _too_many(exc: HTTPException):
        return render_error(429, _("Too many attempts. Wait a few minutes and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        if request.path.startswith(("/api/v1/", "/api/kassa/")):  # I3: no view matched: the API's handlers didn't run
            from kassa.blueprints.api import api_error_response

            return api_error_response(exc)
        return render_error(exc.code)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if app.testing and app.config.get("KASSA_RAISE_ERRORS", True):
            raise exc
        if request.path.startswith(("/api/v1/", "/api/kassa/")):  # I7: the API answers JSON, even here
            from kassa.blueprints.api import api_error_response

            return api_error_response(InternalServerError())
        return render_error(500)
