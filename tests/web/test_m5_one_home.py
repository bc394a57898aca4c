"""M5: each concept has one home. Display ids are formatted only by ``kassa.display_ids``; in-app
notifications live in ``kassa.services.platform.notifications`` and are marked read by POST only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from kassa.database import write_transaction
from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import EmailMessage, Notification
from tests.factories import make_merchant
from tests.support.checkout import pay_with_ach
from tests.support.checkout_flow import item, make_link, only_payment
from tests.support.payments import login, soup_of

SITE = Path(__file__).resolve().parents[2] / "site"
SOURCES = [p for p in SITE.rglob("*") if p.suffix in {".py", ".html", ".txt", ".js"}
           and "translations" not in p.parts and "migrations" not in p.parts]

# A display-id prefix followed by a hand-made zero-padded number: f"P-{x:06d}", "R-%06d", 'P{x:06d}',
# PO-{{ "%06d"|format(...) }} — what every caller used to write for itself.
HAND_FORMATTED_ID = re.compile(r"""\b(?:P|R|PO|INV)-?(?:\{[^}]*:06d\}|%(?:\([a-z_]+\))?06d|\{\{\s*"%06d")""")


def _hand_formatted(path: Path) -> list[str]:
    return [f"{path.relative_to(SITE)}:{n}: {line.strip()}"
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if HAND_FORMATTED_ID.search(line)]


def test_m5_display_ids_are_formatted_only_by_the_display_ids_module():
    """No service, export, PDF, email or template formats a P-/R-/PO-/INV- id by hand any more; they all
    go through ``display_id`` (filter ``display_id`` in templates)."""
    allowed = {SITE / "display_ids.py"}
    offenders = [hit for path in SOURCES if path not in allowed for hit in _hand_formatted(path)]
    assert offenders == []


def test_m5_display_id_formats_every_kind_with_a_dash():
    """One format for every kind: prefix, dash, six digits."""
    assert [display_id(kind, 42) for kind in ("payment", "receipt", "payout", "invoice")] == [
        "P-000042", "R-000042", "PO-000042", "INV-000042"]
    with pytest.raises(ValueError):
        display_id("mandate", 1)


def test_m5_mandate_copy_file_name_has_the_payment_id_with_its_dash(client):
    """The emailed debit authorization is named after the payment's display id, dash included
    (it used to be ``authorization-P000001.pdf``), and its subject uses the same id."""
    owner = make_merchant()
    login(client, owner)
    link = make_link(owner, items=[item("Workshop", "120.00")], allow_ach=True)
    assert pay_with_ach(client, link.slug).status_code == 303
    payment = only_payment()
    assert client.post(f"/payments/{payment.id}/authorization").status_code == 303
    db.session.rollback()
    message = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "authorization_copy"))
    assert [a["filename"] for a in message.attachments] == [f"authorization-P-{payment.id:06d}.pdf"]
    assert f"P-{payment.id:06d}" in message.subject


# -- in-app notifications ----------------------------------------------------------------------------


def _notify(user, text: str) -> int:
    with write_transaction(db.session) as session:
        note = Notification(account_id=user.account_id, user_id=user.id, text=text)
        session.add(note)
    return note.id


def _unread(user) -> list[str]:
    db.session.rollback()
    return sorted(db.session.scalars(select(Notification.text).where(Notification.user_id == user.id,
                                                                     Notification.read_at.is_(None))))


def test_m5_viewing_notifications_writes_nothing(client):
    """GET /exports/notifications shows the notifications but marks none read (it used to mark them all)."""
    owner = make_merchant()
    login(client, owner)
    _notify(owner, "Your export is ready")
    page = client.get("/exports/notifications")
    assert page.status_code == 200
    assert "Your export is ready" in page.get_data(as_text=True)
    assert client.get("/exports/notifications").status_code == 200
    assert _unread(owner) == ["Your export is ready"]
    assert soup_of(client.get("/exports/")).select_one(".bell__count") is not None


def test_m5_marking_notifications_read_is_a_post_up_to_what_was_shown(client):
    """The page's "Mark all as read" form POSTs (plain form → 303; htmx → HX-Redirect) and marks read only
    what the page showed: a notification that arrived later stays unread. Other users' stay unread."""
    owner = make_merchant()
    colleague = make_merchant()
    login(client, owner)
    _notify(owner, "first")
    _notify(colleague, "theirs")
    form = soup_of(client.get("/exports/notifications")).select_one("form[action='/exports/notifications/read']")
    assert form is not None and form.get("hx-post") == form["action"]
    _notify(owner, "arrived later")
    data = {"up_to": form.select_one("[name=up_to]")["value"]}
    response = client.post(form["action"], data=data)
    assert response.status_code == 303 and response.location.endswith("/exports/notifications")
    assert _unread(owner) == ["arrived later"]
    assert _unread(colleague) == ["theirs"]
    htmx = client.post(form["action"], data={}, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].endswith("/exports/notifications")
    assert _unread(owner) == []
    assert soup_of(client.get("/exports/notifications")).select_one("form[action='/exports/notifications/read']") is None


def test_m5_in_app_notifications_live_in_the_notifications_service():
    """One home: nothing outside services/platform/notifications.py creates, counts or marks Notification rows."""
    pattern = re.compile(r"\bNotification\b\s*[(.]|\bNotification\)")
    offenders = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py")
                 if path not in {SITE / "services" / "platform" / "notifications.py", SITE / "models.py"}
                 and "migrations" not in path.parts
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []


# -- pagination --------------------------------------------------------------------------------------


def test_m5_page_sizes_and_paging_arithmetic_have_one_home():
    """``PAGE_SIZE`` is defined once (kassa.pagination) and no list computes its own offset or fetches
    "one more row to see if there is a next page" by hand."""
    definitions = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py")
                   for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                   if re.match(r"\s*[A-Z_]*PAGE_SIZE\s*=", line)]
    assert definitions == ["pagination.py:18", "pagination.py:19"]
    by_hand = re.compile(r"\.offset\(\(page|\.limit\([A-Z_]*PAGE_SIZE \+ 1\)|len\(rows\) > [A-Z_]*PAGE_SIZE")
    offenders = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py") if path != SITE / "pagination.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if by_hand.search(line)]
    assert offenders == []


# -- timeline kinds ----------------------------------------------------------------------------------


def test_m5_timeline_kinds_are_constants_from_one_module(app):
    """Every call that records timeline activity names a ``TimelineKind`` (no hand-typed "payment.failed"),
    every kind has a label, and an unknown kind is refused instead of stored."""
    from kassa.services.billing.billing_rows import timeline_rows
    from kassa.services.crm.crm import add_timeline
    from kassa.timeline_kinds import TimelineKind, timeline_label

    call = re.compile(r"""(?:add_timeline|add_timeline_at|timeline_rows)\((?:session, )?[\w.]+, +f?["']""")
    offenders = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py")
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if call.search(line)]
    assert offenders == []
    with app.test_request_context():
        assert [kind for kind in TimelineKind if timeline_label(kind) == kind.value] == []
    with pytest.raises(ValueError):
        add_timeline(1, "payment.teleported", subjects=[("payment", 1)])
    with pytest.raises(ValueError):
        timeline_rows(1, "payment.teleported", [("payment", 1)], None)
    [row] = timeline_rows(1, TimelineKind.PAYMENT_FAILED, [("payment", 1)], None)
    assert type(row["kind"]) is str and row["kind"] == "payment.failed"


# -- row locks ---------------------------------------------------------------------------------------


def test_m5_row_locks_have_one_home():
    """Only kassa.database takes row locks (``locked``, ``lock_one``); services no longer carry their own
    FOR UPDATE helpers. The sandbox processor keeps its own store's locks (it stands for a remote service)."""
    skip = {SITE / "database.py"}
    offenders = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py")
                 if path not in skip and "processors" not in path.parts
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "with_for_update" in line or re.match(r"def (_lock|lock)(_session)?\(", line)]
    assert offenders == []


def test_m5_lock_one_returns_the_rows_current_values(app):
    """``lock_one`` reads the row as it is once locked, not the copy the session loaded earlier."""
    from kassa.database import lock_one, write_transaction
    from kassa.models import Account

    owner = make_merchant()
    account = db.session.get(Account, owner.account_id)
    with db.engine.begin() as connection:  # another transaction renames the account behind the session's back
        connection.execute(Account.__table__.update().where(Account.__table__.c.id == account.id).values(name="New"))
    with write_transaction(db.session) as session:
        assert lock_one(session, Account, account.id).name == "New"
        assert lock_one(session, Account, 10**12) is None


# -- status labels -----------------------------------------------------------------------------------


def test_m5_status_labels_and_tones_live_on_their_status_enums(app):
    """Each status enum carries its own label and badge tone (models.py); no blueprint or template keeps a
    second table of them (the subscriptions blueprint used to)."""
    from kassa.models import DisplayStatus, LinkStatus, PayoutStatus, SubscriptionStatus

    tables = [f"{path.relative_to(SITE)}:{n}" for path in SITE.rglob("*.py") if path != SITE / "models.py"
              for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.match(r"[A-Z_]*STATUS_(LABELS|TONES)\s*=", line)]
    assert tables == []
    with app.test_request_context():
        for enum in (DisplayStatus, LinkStatus, PayoutStatus, SubscriptionStatus):
            assert all(status.label and status.tone in {"success", "danger", "warning", "info", "neutral"}
                       for status in enum)
        assert SubscriptionStatus("past_due").label == "Past due"
