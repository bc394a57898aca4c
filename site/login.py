"""Flask-Login wiring: sessions carry "user id:session epoch", so logout and password resets end them."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_babel import lazy_gettext as _l

from kassa.extensions import db, login_manager
from kassa.forms import parse_id, parse_int
from kassa.models import User
from kassa.rendering import htmx_redirect, is_htmx


def load_user(token: str) -> User | None:
    user_id, _sep, epoch = (token or "").partition(":")
    user_number, epoch_number = parse_id(user_id), parse_int(epoch, minimum=0)
    if user_number is None or epoch_number is None:
        return None
    user = db.session.get(User, user_number)
    if user is None or not user.is_active_user or user.session_epoch != epoch_number:
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
