"""Saved views of an index (P3): a name for a set of filters, columns and sort; private or shared."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import delete, or_, select

from kassa.actor import Actor
from kassa.database import parse_id, write_transaction
from kassa.errors import Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import SavedView, UserViewDefault

MAX_VIEWS = 50
TABS = ("payments", "disputes", "subscriptions", "invoices")  # V7: the Invoices index too


def visible_views(account_id: int, user_id: int, tab: str) -> list[SavedView]:
    """The user's own views and the account's shared ones."""
    return list(db.session.scalars(
        select(SavedView)
        .where(SavedView.account_id == account_id, SavedView.tab == tab,
               or_(SavedView.owner_id == user_id, SavedView.shared.is_(True)))
        .order_by(SavedView.name, SavedView.id)
    ))


def get_view(account_id: int, user_id: int, view_id: int) -> SavedView:
    view = db.session.get(SavedView, view_id) if parse_id(view_id) else None  # a huge id would overflow the driver
    if view is None or view.account_id != account_id or (view.owner_id != user_id and not view.shared):
        raise NotFound(_("Saved view not found."))
    return view


def _clean_name(name: str) -> str:
    name = (name or "").replace("\x00", "").strip()  # PostgreSQL can't store NUL
    if not name:
        raise ValidationFailed(_("Give the view a name."), field="name")
    if len(name) > 80:
        raise ValidationFailed(_("Use at most 80 characters."), field="name")
    return name


def save_view(actor: Actor, *, tab: str, name: str, shared: bool, state: dict) -> SavedView:
    if tab not in TABS:
        raise ValidationFailed(_("Unknown tab."))
    name = _clean_name(name)
    with write_transaction(db.session) as session:
        count = len(visible_views(actor.account_id, actor.user_id, tab))
        if count >= MAX_VIEWS:
            raise ValidationFailed(_("You have %(n)d views already; delete one first.", n=MAX_VIEWS), field="name")
        view = SavedView(account_id=actor.account_id, owner_id=actor.user_id, tab=tab, name=name, shared=shared,
                         state=state)
        session.add(view)
        session.flush()
        return view


def _editable(session, actor: Actor, view_id: int) -> SavedView:
    view = get_view(actor.account_id, actor.user_id, view_id)
    if view.owner_id != actor.user_id:
        raise Forbidden(_("Only the person who created a shared view can change or delete it."))
    return session.get(SavedView, view.id)


def update_view(actor: Actor, view_id: int, *, name: str | None = None, shared: bool | None = None,
                state: dict | None = None) -> SavedView:
    with write_transaction(db.session) as session:
        view = _editable(session, actor, view_id)
        if name is not None:
            view.name = _clean_name(name)
        if shared is not None:
            view.shared = shared
        if state is not None:
            view.state = state
        return view


def delete_view(actor: Actor, view_id: int) -> None:
    with write_transaction(db.session) as session:
        view = _editable(session, actor, view_id)
        session.execute(delete(UserViewDefault).where(UserViewDefault.view_id == view.id))
        session.delete(view)


def set_default(actor: Actor, tab: str, view_id: int | None) -> None:
    """Make a view (or none: the plain tab) the one a user lands on."""
    with write_transaction(db.session) as session:
        session.execute(delete(UserViewDefault).where(UserViewDefault.user_id == actor.user_id,
                                                      UserViewDefault.tab == tab))
        if view_id is not None:
            get_view(actor.account_id, actor.user_id, view_id)
            session.add(UserViewDefault(user_id=actor.user_id, tab=tab, view_id=view_id))


def index_views(account_id: int, user_id: int, tab: str) -> tuple[list[SavedView], dict[str, SavedView]]:
    """What an index page shows of saved views, in one query (B3: every query is a round trip on PostgreSQL):
    `tab`'s views as visible_views gives them, and the user's default view of each tab that has one. A default
    that is no longer theirs to see (a shared view unshared since) is none."""
    rows = db.session.execute(
        select(SavedView, UserViewDefault.tab)
        .outerjoin(UserViewDefault, (UserViewDefault.view_id == SavedView.id) & (UserViewDefault.user_id == user_id))
        .where(SavedView.account_id == account_id, or_(SavedView.owner_id == user_id, SavedView.shared.is_(True)))
        .order_by(SavedView.name, SavedView.id)).all()
    views = list({view.id: view for view, _default in rows if view.tab == tab}.values())
    return views, {default: view for view, default in rows if default is not None}
