"""Who may see what: the current account's scope for every query, and permission checks (A1, A2)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g
from flask_login import current_user, login_required
from sqlalchemy import Select, select

from kassa.actor import Actor
from kassa.database import parse_id
from kassa.extensions import db
from kassa.models import Permission
from kassa.netutil import client_ip

M = TypeVar("M")


def current_account_id() -> int:
    if not current_user.is_authenticated:
        abort(401)
    return current_user.account_id


def scoped(model: type[M]) -> Select:
    """SELECT model rows of the current account only. Every merchant query starts here (A2)."""
    return select(model).where(model.account_id == current_account_id())


def get_owned_or_404(model: type[M], object_id: Any) -> M:
    """The row with this id if it belongs to the current account; 404 otherwise, never someone else's."""
    key = parse_id(object_id)
    if key is None:  # not a number, or too big for any id (the driver would overflow)
        abort(404)
    obj = db.session.scalar(scoped(model).where(model.id == key))
    if obj is None:
        abort(404)
    return obj


def current_actor() -> Actor:
    if current_user.is_authenticated:
        return Actor(user=current_user._get_current_object(), account_id=current_user.account_id, ip=client_ip())
    return Actor(user=None, account_id=None, ip=client_ip())


F = TypeVar("F", bound=Callable[..., Any])


def permission_required(permission: Permission) -> Callable[[F], F]:
    """Log in first, then 403 with the name of the missing permission."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.can(permission):
                g.missing_permission = permission
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def visible_modes() -> tuple[str, ...]:
    """Live data always; test data too while the user's "View test data" switch is on."""
    return ("live", "test") if current_user.view_test_data else ("live",)
