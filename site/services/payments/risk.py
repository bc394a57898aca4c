"""The card-testing guard (H4): scripts try stolen card numbers on public pages that take a card.

What counts is a *failed* card entry (a decline, or a number the processor calls invalid), never a payment
that went through: a regular customer can pay with the same card as often as they like. Counted, each in a
rolling window and configurable (KASSA_RISK_*, 0 turns a limit off):

- failed entries per merchant account (all its links and pages),
- failed entries per IP address,
- distinct card (or bank account) numbers that failed, per IP address and per page (checkout session or
  card-update page) — many different numbers from one place is what card testing looks like,
- failed entries per payment link: at the limit the link's card payments pause and the merchant is emailed.

Atomic under concurrency: before the processor is called, `reserve` takes a slot in every counter with one
conditional UPDATE each (``… SET used = used + 1 WHERE used < limit RETURNING``), in the caller's write
transaction. A full counter refuses the request; fifteen parallel requests can therefore never all reach the
processor — at most `limit` of them hold a slot at once. The outcome settles the slots: a decline keeps them
(`keep`), a success or an error that says nothing about the card gives them back (`release`).

Test mode: the sandbox only takes test cards, so nothing real can be tested there; the documented decline
cards (SPEC T3) are exempt so a merchant trying them is never locked out, and the test card
4100 0000 0000 0019 shows the block a card tester would see.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kassa.clock import now
from kassa.database import dialect_name, lock_one, write_transaction
from kassa.errors import TooManyRequests
from kassa.extensions import db
from kassa.models import Mode, PaymentLink, RiskCounter, RiskLevel
from kassa.processors import testcards
from kassa.services.platform.notifications import notify_link_paused

# Processor errors that look like probing: wrong numbers count like declines (every CardDeclined counts too).
COUNTED_CODES = {
    "not_a_test_card", "invalid_number", "incorrect_cvc", "invalid_cvc",
    "invalid_routing_number", "invalid_account_number", "not_a_test_account",
}

DEFAULTS = {
    "KASSA_RISK_IP_DECLINES": 5, "KASSA_RISK_IP_WINDOW": 3600,
    "KASSA_RISK_IP_CARDS": 4, "KASSA_RISK_SESSION_CARDS": 3, "KASSA_RISK_CARDS_WINDOW": 86400,
    "KASSA_RISK_ACCOUNT_DECLINES": 50, "KASSA_RISK_ACCOUNT_WINDOW": 3600,
    "KASSA_RISK_LINK_DECLINES": 10, "KASSA_RISK_LINK_WINDOW": 600, "KASSA_RISK_LINK_PAUSE": 1800,
}

_NO_LIMIT = 2**31  # the per-(place, card) counters only tell whether a number is new there


def _setting(name: str) -> int:
    return int(current_app.config.get(name, DEFAULTS[name]))


def card_fingerprint(number: str) -> str:
    """A keyed hash to recognise the same card again without ever storing its number."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"card:{number}".encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class CardEntry:
    """One submit of card (or bank account) details, as the guard sees it."""

    account_id: int
    mode: str
    method: str  # "card" | "ach"
    number: str  # the card number, or "routing:account" for a bank debit; only its hash is kept
    ip: str | None
    page: str  # "checkout:<id>" or "billing:<id>": distinct numbers are counted per page too
    link_id: int | None = None


# -- refusals -------------------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    return format_timedelta(timedelta(seconds=max(seconds, 60)), add_direction=True)


def _refusal(scope: str, seconds: float) -> TooManyRequests:
    when = _when(seconds)
    if scope == "account":
        message = _("Payments to this seller are paused for safety after too many declined cards. "
                    "Try again %(when)s.", when=when)
    elif scope == "ip_cards":
        message = _("Too many different cards were declined from your connection. Try again %(when)s.", when=when)
    elif scope == "page_cards":
        message = _("Too many different cards were declined on this page. Try again %(when)s.", when=when)
    elif scope == "link":
        message = _("Card payments on this page are paused for a few minutes for safety. Try again later.")
    else:
        message = _("Too many declined payments from your connection. Try again %(when)s.", when=when)
    return TooManyRequests(message)


# -- counters -------------------------------------------------------------------------------------------


def _take(scope: str, key: str, limit: int, window: int) -> tuple[int, int] | None:
    """One slot in (scope, key): (used after taking, generation), or None when the counter is full.

    A single UPDATE decides, so it is atomic: PostgreSQL re-checks `used < limit` after waiting for a
    concurrent writer's row lock; SQLite has one writer at a time (BEGIN IMMEDIATE)."""
    session = db.session
    moment = now()
    table = RiskCounter.__table__
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    session.execute(insert(table).values(scope=scope, key=key, window_start=moment, used=0, generation=0)
                    .on_conflict_do_nothing())
    expired = table.c.window_start <= moment - timedelta(seconds=window)
    at = literal(moment, table.c.window_start.type)
    row = session.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key, or_(expired, table.c.used < limit))
        .values(used=case((expired, 1), else_=table.c.used + 1),
                window_start=case((expired, at), else_=table.c.window_start),
                generation=case((expired, table.c.generation + 1), else_=table.c.generation))
        .returning(table.c.used, table.c.generation)
    ).one_or_none()
    return None if row is None else (row.used, row.generation)


def _generation(scope: str, key: str) -> int:
    return db.session.scalar(select(RiskCounter.generation).where(RiskCounter.scope == scope, RiskCounter.key == key))


def _refuse_full(scope: str, key: str, window: int) -> TooManyRequests:
    started = db.session.scalar(select(RiskCounter.window_start).where(RiskCounter.scope == scope,
                                                                       RiskCounter.key == key))
    left = (started + timedelta(seconds=window) - now()).total_seconds() if started else window
    return _refusal(scope, left)


def _give_back(scope: str, key: str, generation: int) -> int | None:
    """Return one slot taken in this window; a slot of a window that has since started over is not."""
    table = RiskCounter.__table__
    return db.session.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key, table.c.generation == generation, table.c.used > 0)
        .values(used=table.c.used - 1)
        .returning(table.c.used)
    ).scalar_one_or_none()


# -- the guard ------------------------------------------------------------------------------------------

# Test mode: the documented decline cards never lock anyone out (their declines are not counted).
_EXEMPT_TEST_NUMBERS = frozenset(card.number for card in testcards.FAILING_CARDS)


def reserve(entry: CardEntry) -> list[list[Any]]:
    """Take a slot in every counter before the processor is called (in the caller's write transaction).

    Raises TooManyRequests, with what to do, when a limit is reached: the caller's transaction then rolls
    back every slot already taken. Returns the slots held, to settle with `keep` or `release`."""
    test_mode = entry.mode == Mode.TEST.value
    if test_mode and entry.number == testcards.BLOCKED_CARD:
        raise _refusal("ip", _setting("KASSA_RISK_IP_WINDOW"))  # exactly what a blocked card tester sees
    if entry.method == "card" and entry.link_id is not None:
        link = db.session.get(PaymentLink, entry.link_id)
        if link is not None and link.card_paused_until is not None and link.card_paused_until > now():
            raise _refusal("link", (link.card_paused_until - now()).total_seconds())
    if test_mode and entry.method == "card" and entry.number in _EXEMPT_TEST_NUMBERS:
        return []

    fingerprint = card_fingerprint(f"{entry.method}:{entry.number}")
    cards_window = _setting("KASSA_RISK_CARDS_WINDOW")
    mode = entry.mode
    # (scope, key, limit, window, distinct-counter key) in one fixed order, so that concurrent
    # transactions lock counter rows in the same order and never deadlock.
    plan: list[tuple[str, str, int, int, str | None]] = [
        ("account", f"{mode}:{entry.account_id}", _setting("KASSA_RISK_ACCOUNT_DECLINES"),
         _setting("KASSA_RISK_ACCOUNT_WINDOW"), None),
    ]
    if entry.ip:
        plan += [
            ("ip", f"{mode}:{entry.ip}", _setting("KASSA_RISK_IP_DECLINES"), _setting("KASSA_RISK_IP_WINDOW"), None),
            ("ip_card", f"{mode}:{entry.ip}:{fingerprint}", _setting("KASSA_RISK_IP_CARDS"), cards_window,
             f"{mode}:{entry.ip}"),
        ]
    if entry.method == "card" and entry.link_id is not None and not test_mode:
        # Live only: a pause stops the link's real buyers, which test-mode typing must never cause.
        plan.append(("link", str(entry.link_id), _setting("KASSA_RISK_LINK_DECLINES"),
                     _setting("KASSA_RISK_LINK_WINDOW"), None))
    plan.append(("page_card", f"{mode}:{entry.page}:{fingerprint}", _setting("KASSA_RISK_SESSION_CARDS"),
                 cards_window, f"{mode}:{entry.page}"))

    hold: list[list[Any]] = []
    for scope, key, limit, window, distinct_key in plan:
        if limit <= 0:
            continue
        if distinct_key is None:
            taken = _take(scope, key, limit, window)
            if taken is None:
                raise _refuse_full(scope, key, window)
            hold.append([scope, key, taken[1]])
            continue
        # Distinct numbers: (place, card) says whether this number is new here; only a new one takes a
        # slot in (place). Both are remembered so the last success of a number gives its place slot back.
        used, generation = _take(scope, key, _NO_LIMIT, window)  # type: ignore[misc]
        if used == 1:
            taken = _take(f"{scope}s", distinct_key, limit, window)
            if taken is None:
                raise _refuse_full(f"{scope}s", distinct_key, window)
            distinct_generation = taken[1]
        else:
            distinct_generation = _generation(f"{scope}s", distinct_key)
        hold.append([scope, key, generation, distinct_key, distinct_generation])
    return hold


def release(hold: list[list[Any]] | None) -> None:
    """The entry went through (or failed for a reason that says nothing about the card): give its slots back,
    in the caller's write transaction."""
    for held in hold or ():
        scope, key, generation = held[:3]
        left = _give_back(scope, key, generation)
        if len(held) == 5 and left == 0 and held[4] is not None:
            _give_back(f"{scope}s", held[3], held[4])  # no held use of this number is left here


def keep(hold: list[list[Any]] | None, link_id: int | None) -> None:
    """The entry was declined (or the number is invalid): its slots stay taken. At the link's limit, the
    link's card payments pause and the merchant is emailed (once per pause)."""
    if not any(held[0] == "link" for held in hold or ()) or link_id is None:
        return
    declines = db.session.scalar(select(RiskCounter.used).where(RiskCounter.scope == "link",
                                                                RiskCounter.key == str(link_id))) or 0
    if declines < _setting("KASSA_RISK_LINK_DECLINES"):
        return
    link = lock_one(db.session, PaymentLink, link_id)  # two declines at the limit at once send one email
    if link is None or (link.card_paused_until is not None and link.card_paused_until > now()):
        return
    link.card_paused_until = now() + timedelta(seconds=_setting("KASSA_RISK_LINK_PAUSE"))

    notify_link_paused(link, declines)


# B2: a decline's risk signal, from how full the guard's counters are once it is counted: at 80 % of a limit
# the next few declines are refused, at 40 % the pattern is no longer one unlucky buyer.
_HIGH, _ELEVATED = 0.8, 0.4
_LIMITS = {"account": "KASSA_RISK_ACCOUNT_DECLINES", "ip": "KASSA_RISK_IP_DECLINES", "ip_cards": "KASSA_RISK_IP_CARDS",
           "link": "KASSA_RISK_LINK_DECLINES", "page_cards": "KASSA_RISK_SESSION_CARDS"}


def signal(hold: list[list[Any]] | None) -> tuple[RiskLevel, str | None]:
    """B2: (level, the scope that decided it) for a declined entry, read from the counters it holds (after
    `keep`). A distinct-number slot is judged by its place's count of distinct numbers. An entry the guard
    doesn't count (the documented test decline cards) is normal, with no scope."""
    worst, scope_of_worst = 0.0, None
    for held in hold or ():
        scope, key = (f"{held[0]}s", held[3]) if len(held) == 5 else (held[0], held[1])
        limit = _setting(_LIMITS[scope])
        if limit <= 0:
            continue
        used = db.session.scalar(select(RiskCounter.used).where(RiskCounter.scope == scope,
                                                                RiskCounter.key == key)) or 0
        if used / limit > worst:
            worst, scope_of_worst = used / limit, scope
    if worst >= _HIGH:
        return RiskLevel.HIGH, scope_of_worst
    if worst >= _ELEVATED:
        return RiskLevel.ELEVATED, scope_of_worst
    return RiskLevel.NORMAL, None


def prune_counters() -> int:
    """Forget counters whose window ended long ago: one row per (place, number) tried would otherwise pile up.
    A pruned counter starts over at its next use, as an expired one does."""
    windows = [_setting(name) for name in DEFAULTS if name.endswith("_WINDOW")]
    cutoff = now() - timedelta(seconds=max(windows) + 3600)
    with write_transaction(db.session) as session:
        return session.execute(delete(RiskCounter).where(RiskCounter.window_start < cutoff)).rowcount or 0
