"""The Tasks inbox (W2): tasks workflows create, marked done and undone by the team."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, parse_id, write_transaction
from kassa.errors import NotFound
from kassa.extensions import db
from kassa.models import Task


def open_tasks(account_id: int, limit: int = 200) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.account_id == account_id, Task.done_at.is_(None))
                                   .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(limit)))


def done_tasks(account_id: int, limit: int = 50) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.account_id == account_id, Task.done_at.is_not(None))
                                   .order_by(Task.done_at.desc(), Task.id.desc()).limit(limit)))


def set_done(actor: Actor, task_id: int, done: bool) -> Task:
    with write_transaction(db.session) as session:
        key = parse_id(task_id)
        task = lock_one(session, Task, key) if key else None
        if task is None or task.account_id != actor.account_id:
            raise NotFound(_("Task not found."))
        task.done_at = (task.done_at or now()) if done else None
        return task
