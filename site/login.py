"""Flask-Login wiring: sessions carry "user id:session epoch", so logout and password resets end them."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_babel import lazy_gettext as _l

from kassa.extensions import db, login_manager
from kassa.models import User
from kassa.rendering import htmx_redirect, is_htmx


def load_user(token: str) -> User | None:
    user_id, _sep, epoch = (token or "").partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active_user or user.session_epoch != int(epoch):
        return None
    return user


def init_login(app: Flask) -> None:
    login_manager.user_loader(load_user)
    login_manager.login_message = _l("Log in to continue.")
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def _unauthorized():
        target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if is_htmx():
            return htmx_redirect(target)
        return redirect(target)
