"""Outgoing webhooks (I6): the account's events, signed and POSTed to the merchant's endpoints.

- **Endpoints**: a Super admin adds a URL (public https; the loopback only when KASSA_WEBHOOK_ALLOW_LOOPBACK is
  set, for development and tests), the event types it wants (the W6 triggers) and test or live mode. Its signing
  secret (`whsec_…`) is shown once and kept encrypted, so it can be revealed again.
- **Deliveries** are made from the account event feed by a tick task (`make_deliveries`), never in a web
  request: per endpoint, the events after its cursor, of its types and mode, each inserted once — INSERT … ON
  CONFLICT DO NOTHING on the unique (endpoint, event) — with one outbox message per row actually inserted, in
  the same transaction. Two ticks at once make one delivery.
- **Sending** is the outbox batch handler `webhook_delivery` (`send_deliveries`): the worker claims due messages
  in one transaction (FOR UPDATE SKIP LOCKED on PostgreSQL), the deliveries are read in one query, then POSTed
  with no transaction held by a bounded pool of threads (`KASSA_WEBHOOK_CONCURRENCY`, default 8) that keep their
  connections alive, and every outcome is recorded set-based in one transaction (the deliveries updated, one
  `webhook_attempts` row per POST, the messages closed). The body is signed with
  `Kassa-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` — and a second `v1=` with the previous
  secret while a rolled secret's overlap lasts (`roll_secret`: none, 1 h or 24 h). A 2xx is delivered; anything
  else is retried with exponential back-off (1 minute doubling, at most 12 hours apart) for 3 days, each retry a
  new outbox message due at that time. Then the delivery is failed.
- **Disabling**: an endpoint whose deliveries failed `KASSA_WEBHOOK_DISABLE_AFTER` times in a row, or that has
  failed without a success for 3 days, is disabled and the account's Super admins are emailed.
- **SSRF**: the URL is checked when saved and again before every POST (its addresses resolved now: a name
  that later points inside the network is refused then); redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from kassa import secrets_box
from kassa.actor import Actor
from kassa.clock import now
from kassa.database import dialect_name, lock_one, locked, write_transaction
from kassa.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kassa.event_types import AccountEventType
from kassa.extensions import db
from kassa.models import (
    Account,
    AccountEvent,
    Dispute,
    Mode,
    Payment,
    Payout,
    Permission,
    Subscription,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from kassa.services.api import stripe_objects
from kassa.services.platform import outbox
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.urls import absolute_url

JOB = "webhook_delivery"
SIGNATURE_HEADER = "Kassa-Signature"
RETRY_FOR = timedelta(days=3)
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY_GAP = timedelta(hours=12)
BATCH = 500
MAX_URL = 2000
KEPT_RESPONSE = 2000  # characters of the receiver's answer kept in the delivery log
MAX_DESCRIPTION = 200


def retry_delay(attempts: int) -> timedelta:
    """After the `attempts`-th failed attempt: 1 min, 2, 4, 8 … doubling, at most 12 hours."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY_GAP)


# -- the URL: public https only (SSRF) ------------------------------------------------------------------


def _loopback_allowed() -> bool:
    return bool(current_app.config.get("KASSA_WEBHOOK_ALLOW_LOOPBACK"))


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def url_problem(url: str) -> str | None:
    """Why Kassa won't POST to `url` (None: it will). Public https only; the loopback too when the
    configuration allows it (development, tests). Every address the name resolves to must be allowed."""
    if not url or len(url) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return _("Enter the endpoint's full URL, like https://example.com/kassa/webhooks.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("Enter the endpoint's full URL, like https://example.com/kassa/webhooks.")
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        return _("Enter the endpoint's full URL, like https://example.com/kassa/webhooks.")
    if parts.username or parts.password:
        return _("The URL can't contain a user name or password.")
    if port is not None and not 0 < port < 65536:
        return _("Enter the endpoint's full URL, like https://example.com/kassa/webhooks.")
    try:
        addresses = _addresses(host)
    except (OSError, UnicodeError):
        return _("That host name could not be found.")
    if not addresses:
        return _("That host name could not be found.")
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if address.is_loopback and _loopback_allowed():
            continue
        if not address.is_global or address.is_multicast:
            return _("Webhooks can only go to public internet addresses, not to private or local networks.")
    if parts.scheme != "https" and not all(a.is_loopback for a in addresses):
        return _("Use an https URL: events carry your customers' data.")
    return None


# -- endpoints --------------------------------------------------------------------------------------


def _require_admin(actor: Actor) -> None:
    if actor.user is None or not actor.user.can(Permission.MANAGE_SETTINGS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_SETTINGS.label))


def event_type_labels() -> dict[str, str]:
    return {event.value: event.label for event in AccountEventType}


def _check(url: str, event_types: list[str], mode: str, description: str) -> tuple[str, list[str], str]:
    errors: dict[str, str] = {}
    url = (url or "").replace("\x00", "").strip()
    description = (description or "").replace("\x00", "").strip()
    problem = url_problem(url)
    if problem:
        errors["url"] = problem
    known = [value for value in (event.value for event in AccountEventType) if value in set(event_types or ())]
    if not known or len(known) != len(set(event_types or ())):
        errors["event_types"] = _("Choose at least one event type.")
    if mode not in (Mode.TEST.value, Mode.LIVE.value):
        errors["mode"] = _("Choose test or live.")
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = _("Use at most %(n)d characters.", n=MAX_DESCRIPTION)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    return url, known, description


def list_endpoints(account_id: int) -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id)
                                   .order_by(WebhookEndpoint.id)))


def create_endpoint(actor: Actor, url: str, event_types: list[str], mode: str,
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown once; revealable later). It gets the events from now on."""
    _require_admin(actor)
    url, event_types, description = _check(url, event_types, mode, description)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with write_transaction(db.session) as session:
        latest = session.scalar(select(func.max(AccountEvent.id)).where(
            AccountEvent.account_id == actor.account_id)) or 0
        endpoint = WebhookEndpoint(account_id=actor.account_id, url=url, event_types=event_types, mode=mode,
                                   description=description, secret_encrypted=secrets_box.encrypt(secret),
                                   cursor=latest, created_by_id=actor.user_id)
        session.add(endpoint)
        session.flush()
        record_audit(actor, "webhook_endpoint.created", object_type="webhook_endpoint", object_id=endpoint.id,
                     data={"url": url, "event_types": event_types, "mode": mode})
    return endpoint, secret


def update_endpoint(actor: Actor, endpoint_id: int, url: str, event_types: list[str], description: str = ""
                    ) -> WebhookEndpoint:
    _require_admin(actor)
    with write_transaction(db.session) as session:
        endpoint = _own(session, actor, endpoint_id)
        url, event_types, description = _check(url, event_types, endpoint.mode, description)
        endpoint.url, endpoint.event_types, endpoint.description = url, event_types, description
        record_audit(actor, "webhook_endpoint.updated", object_type="webhook_endpoint", object_id=endpoint.id,
                     data={"url": url, "event_types": event_types})
        return endpoint


def set_enabled(actor: Actor, endpoint_id: int, enabled: bool) -> WebhookEndpoint:
    """Turn an endpoint on (its failure count starts again; events from now on) or off (pending deliveries
    are cancelled)."""
    _require_admin(actor)
    with write_transaction(db.session) as session:
        endpoint = _own(session, actor, endpoint_id)
        if endpoint.enabled == enabled:
            return endpoint
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_reason = endpoint.disabled_at = None
            endpoint.consecutive_failures, endpoint.failing_since = 0, None
            endpoint.cursor = session.scalar(select(func.max(AccountEvent.id)).where(
                AccountEvent.account_id == endpoint.account_id)) or 0
        else:
            endpoint.disabled_reason, endpoint.disabled_at = "manual", now()
        record_audit(actor, "webhook_endpoint.enabled" if enabled else "webhook_endpoint.disabled", object_type="webhook_endpoint", object_id=endpoint.id)
        return endpoint


def reveal_secret(actor: Actor, endpoint_id: int) -> str:
    _require_admin(actor)
    with write_transaction(db.session) as session:
        endpoint = _own(session, actor, endpoint_id)
        record_audit(actor, "webhook_endpoint.secret_revealed", object_type="webhook_endpoint", object_id=endpoint.id)
        return secrets_box.decrypt(endpoint.secret_encrypted)


# How long a rolled secret's previous one stays valid: none, 1 hour or 24 hours (as Stripe offers).
ROLL_OVERLAPS: dict[str, timedelta] = {"none": timedelta(0), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}


def roll_overlap_labels() -> dict[str, str]:
    return {"none": _("Now: the old secret stops working at once"), "1h": _("In 1 hour"), "24h": _("In 24 hours")}


def roll_secret(actor: Actor, endpoint_id: int, overlap: str) -> str:
    """A new signing secret for the endpoint (returned, to be shown once). The old one stays valid for the chosen
    overlap: until then every delivery carries both signatures, so the receiver can switch secrets in its own
    time. Rolling again during an overlap ends the older one (one previous secret at a time)."""
    _require_admin(actor)
    if overlap not in ROLL_OVERLAPS:
        raise ValidationFailed(_("Choose when the old secret stops working."),
                               errors={"overlap": _("Choose when the old secret stops working.")})
    secret = "whsec_" + secrets.token_urlsafe(32)
    with write_transaction(db.session) as session:
        endpoint = _own(session, actor, endpoint_id)
        keep = ROLL_OVERLAPS[overlap]
        if keep:
            endpoint.previous_secret_encrypted = endpoint.secret_encrypted
            endpoint.previous_secret_expires_at = now() + keep
        else:
            endpoint.previous_secret_encrypted = endpoint.previous_secret_expires_at = None
        endpoint.secret_encrypted = secrets_box.encrypt(secret)
        record_audit(actor, "webhook_endpoint.secret_rolled", object_type="webhook_endpoint", object_id=endpoint.id,
                     data={"old_secret_valid_until": endpoint.previous_secret_expires_at.isoformat()
                           if endpoint.previous_secret_expires_at else None})
    return secret


def previous_secret_valid_until(endpoint: WebhookEndpoint) -> datetime | None:
    """Until when a rolled secret's previous one still signs deliveries (None: it doesn't)."""
    until = endpoint.previous_secret_expires_at
    return until if endpoint.previous_secret_encrypted and until and until > now() else None


def _own(session, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    endpoint = lock_one(session, WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.account_id != actor.account_id:
        raise NotFound(_("Webhook endpoint not found."))
    return endpoint


def deliveries_of(endpoint_id: int, limit: int = 100) -> list[WebhookDelivery]:
    """The delivery log, newest first, each delivery with its attempts (newest first)."""
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                                   .options(selectinload(WebhookDelivery.attempts_made))
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


def resend(actor: Actor, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (the delivery log's Resend), whatever its state; its log keeps counting."""
    _require_admin(actor)
    with write_transaction(db.session) as session:
        delivery = lock_one(session, WebhookDelivery, delivery_id)
        if delivery is None or delivery.account_id != actor.account_id:
            raise NotFound(_("Webhook endpoint not found."))
        if not session.get(WebhookEndpoint, delivery.endpoint_id).enabled:
            raise Conflict(_("Turn the endpoint on to resend its events."))
        delivery.status, delivery.next_attempt_at = "pending", now()
        outbox.enqueue(JOB, {"delivery_id": delivery.id, "resend": True}, account_id=delivery.account_id,
                       dedupe_key=f"webhook:{delivery.id}:resend:{secrets.token_hex(6)}")
        record_audit(actor, "webhook_delivery.resent", object_type="webhook_endpoint", object_id=delivery.endpoint_id,
                     data={"delivery_id": delivery.id})
        return delivery


# -- the event as the receiver sees it ----------------------------------------------------------------


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _object(event: AccountEvent) -> dict[str, Any]:
    """`data.object`: the object as the API shows it (Stripe's shape where Stripe has it)."""
    session = db.session
    if event.object_type == "payment":
        return stripe_objects.payment_intent(session.get(Payment, event.object_id))
    if event.object_type == "dispute":
        dispute = session.get(Dispute, event.object_id)
        return stripe_objects.dispute(dispute, session.get(Payment, dispute.payment_id))
    if event.object_type == "subscription":
        sub = session.get(Subscription, event.object_id)
        return {"id": f"sub_{sub.id}", "object": "subscription", "status": sub.status,
                "amount": sub.amount_minor, "currency": sub.currency.lower(), "interval": sub.frequency,
                "created": _unix(sub.created_at), "canceled_at": _unix(sub.cancelled_at),
                "ended_at": _unix(sub.ended_at), "livemode": sub.mode == Mode.LIVE.value}
    if event.object_type == "payout":
        payout = session.get(Payout, event.object_id)
        return {"id": f"po_{payout.id}", "object": "payout", "status": payout.status,
                "amount": payout.amount_minor, "currency": payout.currency.lower(),
                "arrival_date": _unix(payout.paid_at), "failure_message": payout.failure_message,
                "livemode": payout.mode == Mode.LIVE.value}
    return {"id": str(event.object_id), "object": event.object_type}


def event_body(event: AccountEvent) -> str:
    """The delivery's JSON body, shaped as a Stripe event."""
    return json.dumps({
        "id": f"evt_{event.id}", "object": "event", "type": event.type, "created": _unix(event.occurred_at),
        "livemode": event.mode == Mode.LIVE.value, "data": {"object": _object(event), "details": event.data},
    }, separators=(",", ":"), sort_keys=True, default=str)


def sign(secrets_now: str | list[str], timestamp: int, body: str) -> str:
    """The `Kassa-Signature` header's value: `t=<unix>,v1=<hex>`, with one `v1=` per valid secret (two while a
    rolled secret's previous one is still valid; a receiver accepts the event when any of them matches)."""
    if isinstance(secrets_now, str):
        secrets_now = [secrets_now]
    signed = f"{timestamp}.{body}".encode()
    return ",".join([f"t={timestamp}"] + [
        f"v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}" for secret in secrets_now])


# -- the tick: deliveries from the feed ---------------------------------------------------------------


def _deliver_endpoint(endpoint_id: int) -> int:
    """One transaction: lock the endpoint, read its events after the cursor, insert their deliveries once,
    queue one outbox message per row inserted, move the cursor. Returns how many deliveries are new."""
    with write_transaction(db.session) as session:
        endpoint = lock_one(session, WebhookEndpoint, endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return 0
        events = list(session.scalars(select(AccountEvent).where(
            AccountEvent.account_id == endpoint.account_id, AccountEvent.id > endpoint.cursor)
            .order_by(AccountEvent.id).limit(BATCH)))
        if not events:
            return 0
        endpoint.cursor = events[-1].id
        wanted = [e for e in events if e.mode == endpoint.mode and e.type in set(endpoint.event_types)]
        if not wanted:
            return 0
        at = now()
        rows = [{"account_id": endpoint.account_id, "endpoint_id": endpoint.id, "event_id": event.id,
                 "event_type": event.type, "body": event_body(event), "status": "pending", "attempts": 0,
                 "next_attempt_at": at, "created_at": at} for event in wanted]
        insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
        new_ids = session.scalars(insert(WebhookDelivery).values(rows).on_conflict_do_nothing(
            index_elements=["endpoint_id", "event_id"]).returning(WebhookDelivery.id)).all()
        for delivery_id in new_ids:
            outbox.enqueue(JOB, {"delivery_id": delivery_id}, account_id=endpoint.account_id,
                           dedupe_key=f"webhook:{delivery_id}:1")
        return len(new_ids)


def make_deliveries() -> int:
    """Tick task (I6): every enabled endpoint's new events become deliveries (one endpoint failing skips it)."""
    endpoint_ids = list(db.session.scalars(select(WebhookEndpoint.id).where(
        WebhookEndpoint.enabled.is_(True), for_tick_account(WebhookEndpoint.account_id))
        .order_by(WebhookEndpoint.id)))
    db.session.rollback()
    return each_item("webhooks", endpoint_ids, _deliver_endpoint, describe=lambda eid: f"webhook endpoint {eid}")


# -- the worker: a batch of POSTs ------------------------------------------------------------------------


class _Answer:
    def __init__(self, status: int | None, body: str | None, error: str | None, duration_ms: int) -> None:
        self.status, self.body, self.error, self.duration_ms = status, body, error, duration_ms

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_ConnectionKey = tuple[str, str, int | None]


def post(url: str, body: str, headers: dict[str, str], timeout: float,
         connections: dict[_ConnectionKey, http.client.HTTPConnection] | None = None) -> _Answer:
    """POST without following redirects; the URL is checked again first (its name may point elsewhere now).
    With `connections`, a kept-alive connection to the same host is reused (and left open for the next)."""
    started = time.perf_counter()
    problem = url_problem(url)
    if problem:
        return _Answer(None, None, problem, 0)
    parts = urlsplit(url)
    key = (parts.scheme, parts.hostname, parts.port)
    connection = connections.pop(key, None) if connections is not None else None
    if connection is None:
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    keep = False
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        text = response.read(KEPT_RESPONSE * 4).decode("utf-8", "replace")[:KEPT_RESPONSE]
        keep = connections is not None and not response.will_close and response.isclosed()
        return _Answer(response.status, text, None, int((time.perf_counter() - started) * 1000))
    except (OSError, http.client.HTTPException) as exc:
        return _Answer(None, None, f"{type(exc).__name__}: {exc}"[:500], int((time.perf_counter() - started) * 1000))
    finally:
        if keep:
            connections[key] = connection
        else:
            connection.close()


def signing_secrets(endpoint: WebhookEndpoint, at: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the endpoint's, and the one before while it is still valid."""
    found = [secrets_box.decrypt(endpoint.secret_encrypted)]
    until = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and until and until > at:
        found.append(secrets_box.decrypt(endpoint.previous_secret_encrypted))
    return found


class _Send:
    """One POST to make: read under the claim, made with no transaction held."""

    def __init__(self, message: tuple[int, int] | None, delivery_id: int, resend: bool, url: str, body: str,
                 headers: dict[str, str]) -> None:
        self.message, self.delivery_id, self.resend, self.url, self.body, self.headers = (
            message, delivery_id, resend, url, body, headers)
        self.answer: _Answer | None = None


def _pool_size() -> int:
    return max(1, int(current_app.config.get("KASSA_WEBHOOK_CONCURRENCY", 8)))


def _post_all(sends: list[_Send], timeout: float) -> None:
    """POST every send, at most KASSA_WEBHOOK_CONCURRENCY at once; each sending thread keeps its connections
    alive for the next POST to the same host. The URL check (SSRF) runs before every POST, in the thread."""
    app = current_app._get_current_object()
    local = threading.local()

    def one(send: _Send) -> None:
        if not hasattr(local, "connections"):
            local.connections = {}
            opened.append(local.connections)
        with app.app_context():
            send.answer = post(send.url, send.body, send.headers, timeout, local.connections)

    opened: list[dict] = []
    workers = min(_pool_size(), len(sends))
    try:
        if workers <= 1:
            for send in sends:
                one(send)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks") as pool:
                list(pool.map(one, sends))
    finally:
        for connections in opened:
            for connection in connections.values():
                connection.close()


def send_deliveries(claimed: list[tuple[int, int, dict[str, Any]]]) -> None:
    """Outbox batch handler (I6): the claimed deliveries are read in one go, POSTed concurrently with no
    transaction held, and their outcomes (attempts, statuses, retries, failure counts, the outbox messages
    closed) recorded in one transaction. A failure schedules the next attempt as a new outbox message (the
    webhook's own 3-day back-off), so a failed POST is never an error of the handler."""
    _send([((message_id, attempt), payload) for message_id, attempt, payload in claimed])


def send_delivery(payload: dict[str, Any]) -> None:
    """Outbox handler for one message run on its own (`outbox.run_claimed`): the same as a batch of one."""
    _send([(None, payload)])


def _send(items: list[tuple[tuple[int, int] | None, dict[str, Any]]]) -> None:
    at = now()
    ids = {payload["delivery_id"] for _message, payload in items}
    deliveries = {d.id: d for d in db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))}
    endpoints = {e.id: e for e in db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.id.in_({d.endpoint_id for d in deliveries.values()})))}
    signers: dict[int, list[str]] = {}
    sends: list[_Send] = []
    closed: list[tuple[int, int]] = []  # outbox messages with nothing to send
    cancel: list[int] = []
    # A failing endpoint gets one POST per batch: its outcome decides whether the endpoint is turned off before
    # the next is sent (KASSA_WEBHOOK_DISABLE_AFTER stays exact); its other messages are given back, due now.
    deferred: list[tuple[int, int]] = []
    probing: set[int] = set()
    for message, payload in items:
        delivery = deliveries.get(payload["delivery_id"])
        resend = bool(payload.get("resend"))
        if delivery is None or (delivery.status != "pending" and not resend):
            closed += [message] if message else []
            continue
        endpoint = endpoints[delivery.endpoint_id]
        if not endpoint.enabled:
            closed += [message] if message else []
            cancel.append(delivery.id)
            continue
        if endpoint.consecutive_failures and message is not None:
            if endpoint.id in probing:
                deferred.append(message)
                continue
            probing.add(endpoint.id)
        if endpoint.id not in signers:
            signers[endpoint.id] = signing_secrets(endpoint, at)
        headers = {"Content-Type": "application/json", "User-Agent": "Kassa-Webhooks/1.0",
                   SIGNATURE_HEADER: sign(signers[endpoint.id], int(at.timestamp()), delivery.body)}
        sends.append(_Send(message, delivery.id, resend, endpoint.url, delivery.body, headers))
    timeout = current_app.config.get("KASSA_WEBHOOK_TIMEOUT", 10)
    db.session.rollback()  # no transaction held during the POSTs
    if sends:
        _post_all(sends, timeout)
    _record(sends, closed, cancel, deferred)


def _record(sends: list[_Send], closed: list[tuple[int, int]], cancel: list[int],
            deferred: list[tuple[int, int]]) -> None:
    """One transaction for the whole batch, set-based: the deliveries and their endpoints locked (in id order,
    so two workers never wait on each other in a circle), every delivery updated and every attempt inserted in
    one statement each, the retries queued, the outbox messages closed (or given back)."""
    with write_transaction(db.session) as session:
        if cancel:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(cancel),
                                                          WebhookDelivery.status == "pending")
                            .values(status="cancelled", next_attempt_at=None)
                            .execution_options(synchronize_session=False))
        if sends:
            _record_answers(session, sends)
        outbox.finish_done(session, closed + [send.message for send in sends if send.message])
        outbox.release_claimed(session, deferred)


def _record_answers(session, sends: list[_Send]) -> None:
    columns = (WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.account_id, WebhookDelivery.attempts,
               WebhookDelivery.created_at, WebhookDelivery.delivered_at)
    current = {row.id: row for row in session.execute(locked(session, select(*columns).where(
        WebhookDelivery.id.in_({send.delivery_id for send in sends})).order_by(WebhookDelivery.id)))}
    endpoints = {e.id: e for e in session.scalars(locked(session, select(WebhookEndpoint).where(
        WebhookEndpoint.id.in_({row.endpoint_id for row in current.values()})).order_by(WebhookEndpoint.id))
        .execution_options(populate_existing=True))}
    at = now()
    limit = current_app.config.get("KASSA_WEBHOOK_DISABLE_AFTER", 100)
    changes: dict[int, dict[str, Any]] = {}
    attempts: list[dict[str, Any]] = []
    for send in sends:
        row, answer = current[send.delivery_id], send.answer
        endpoint = endpoints[row.endpoint_id]
        number = changes[row.id]["attempts"] + 1 if row.id in changes else row.attempts + 1
        change = {"id": row.id, "attempts": number, "last_attempt_at": at, "response_status": answer.status,
                  "response_body": answer.body, "duration_ms": answer.duration_ms, "error": answer.error,
                  "delivered_at": row.delivered_at}
        attempts.append({"account_id": row.account_id, "delivery_id": row.id, "number": number,
                         "resend": send.resend, "attempted_at": at, "request_headers": send.headers,
                         "response_status": answer.status, "response_body": answer.body, "error": answer.error,
                         "duration_ms": answer.duration_ms})
        changes[row.id] = change
        if answer.ok:
            change.update(status="succeeded", delivered_at=at, next_attempt_at=None)
            endpoint.consecutive_failures, endpoint.failing_since = 0, None
            continue
        endpoint.consecutive_failures += 1
        endpoint.failing_since = endpoint.failing_since or at
        following = at + retry_delay(number)
        if following <= row.created_at + RETRY_FOR:
            change.update(status="pending", next_attempt_at=following)
            outbox.enqueue(JOB, {"delivery_id": row.id}, account_id=row.account_id, not_before=following,
                           dedupe_key=f"webhook:{row.id}:{number + 1}:{secrets.token_hex(4)}")
        else:
            change.update(status="failed", next_attempt_at=None)
        # Off when too many failed in a row, or nothing succeeded for 3 days: failing since before this
        # delivery (made about then) that has now failed for its 3 days, or for longer than 3 days anyway.
        failing_throughout = change["status"] == "failed" and endpoint.failing_since <= row.created_at + FIRST_RETRY
        if endpoint.enabled and (endpoint.consecutive_failures >= limit or failing_throughout
                                 or endpoint.failing_since <= at - RETRY_FOR):
            _disable_failing(session, endpoint, at)
    session.execute(update(WebhookDelivery), list(changes.values()))  # by primary key: one executemany
    session.execute(insert(WebhookAttempt), attempts)


def _disable_failing(session, endpoint: WebhookEndpoint, at: datetime) -> None:
    """Every delivery failed for 3 days, or too many in a row: stop, and tell the account's Super admins."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, "failing", at
    account = session.get(Account, endpoint.account_id)
    admins = [user for user in session.scalars(select(User).where(
        User.account_id == account.id, User.is_active_user.is_(True)).order_by(User.id))
        if user.can(Permission.MANAGE_SETTINGS)]
    for user in admins:
        queue_email(kind="webhook_disabled", to=[user.email], template="email/webhook_disabled.html",
                    language=user.language or account.language, account_id=account.id,
                    related=("webhook_endpoint", endpoint.id),
                    context={"account": account, "brand_color": account.brand_color, "endpoint": endpoint,
                             "failures": endpoint.consecutive_failures,
                             "endpoint_url": absolute_url("settings.webhook_endpoint", endpoint_id=endpoint.id)})
