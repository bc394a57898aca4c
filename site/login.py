"""Flask-Login wiring: sessions carry "user id:session epoch", so logout and password resets end them."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, user_logged_in
from sqlalchemy.orm import joinedload

from kassa.clock import now
from kassa.extensions import db, login_manager
from kassa.forms import parse_id, parse_int
from kassa.models import User
from kassa.rendering import htmx_redirect, is_htmx


def load_user(token: str) -> User | None:
    user_id, _sep, epoch = (token or "").partition(":")
    user_number, epoch_number = parse_id(user_id), parse_int(epoch, minimum=0)
    if user_number is None or epoch_number is None:
        return None
    # With the account in the same query: nearly every page reads current_user.account (one round trip less).
    user = db.session.get(User, user_number, options=[joinedload(User.account)])
    if user is None or not user.is_active_user or user.session_epoch != epoch_number:
        return None
    return user


# H14: when the signed-in session began and when it was last used, in the (signed) session cookie.
AUTH_AT, SEEN_AT = "auth_at", "seen_at"
SEEN_RESOLUTION = 60  # seconds: refresh "last used" at most once a minute, not rewrite the cookie every request


def _stamp_login(_app, user, **_extra) -> None:
    at = now().timestamp()
    session[AUTH_AT] = session[SEEN_AT] = at


def _enforce_session_lifetime() -> None:
    """H14: a signed-in session ends after KASSA_SESSION_IDLE_HOURS without a request and, however busy,
    KASSA_SESSION_MAX_DAYS after its login (both on kassa.clock, so tests can move time)."""
    if "_user_id" not in session:
        return
    at = now().timestamp()
    started, seen = session.get(AUTH_AT), session.get(SEEN_AT)
    if not isinstance(started, (int, float)) or not isinstance(seen, (int, float)):
        # A session from before these limits: its lifetime starts now.
        session[AUTH_AT] = session[SEEN_AT] = at
        return
    idle = timedelta(hours=current_app.config["KASSA_SESSION_IDLE_HOURS"]).total_seconds()
    lifetime = timedelta(days=current_app.config["KASSA_SESSION_MAX_DAYS"]).total_seconds()
    if at - seen > idle or at - started > lifetime:
        session.clear()
        flash(_("Your session ended. Log in again to continue."), "info")
        return
    if at - seen >= SEEN_RESOLUTION:
        session[SEEN_AT] = at


def _no_store_when_signed_in(response: Response) -> Response:
    """H14: pages for a signed-in user are never kept by the browser or a shared cache (back button after
    logout, a shared computer, a proxy). Public, immutable assets keep their own caching."""
    # The session check first: public pages (checkout) never load a user or touch the session here.
    if session.get("_user_id") and current_user.is_authenticated and not response.cache_control.public:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_login(app: Flask) -> None:
    login_manager.user_loader(load_user)
    user_logged_in.connect(_stamp_login, app)
    app.before_request(_enforce_session_lifetime)
    app.after_request(_no_store_when_signed_in)
    login_manager.login_message = _l("Log in to continue.")
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def _unauthorized():
        target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if is_htmx():
            return htmx_redirect(target)
        return redirect(target)
