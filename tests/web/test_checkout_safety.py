"""Checkout safety: sessions (L17), one payment per checkout (C5), card testing, card data, crash safety."""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from kassa.clock import now
from kassa.database import PrecompiledRead, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    AttemptStatus,
    CheckoutSession,
    EmailMessage,
    Payment,
    PaymentAttempt,
)
from kassa.services.checkout import checkout as checkout_service
from kassa.services.platform.ticks import run_tick
from tests.support.app import page_text, run_outbox
from tests.support.checkout import (
    buyer_form,
    pay_with_ach,
    pay_with_card,
    signed_test_path,
    start_checkout,
    submit_checkout,
)
from tests.support.checkout_flow import (
    T2_CARDS,
    T3_CARDS,
    attempts,
    count,
    deactivate,
    edit_link,
    emails,
    item,
    make_shop,
    only_payment,
    pdf_attachment,
    pdf_text,
    sandbox_charges,
    soup_of,
    subject_of,
)
from tests.support.mailserver import Mailbox

BUYER = "safe.buyer@example.com"


@pytest.fixture
def app_config(request, smtp_app_config):
    """SMTP always; tests that need other limits pass them with indirect parametrization."""
    return {**smtp_app_config, **getattr(request, "param", {})}


@pytest.fixture
def shop(app):
    return make_shop("Safe Shop")


def _post(client, path, ip: str, **overrides):
    return client.post(path, data=buyer_form(**overrides), environ_base={"REMOTE_ADDR": ip})


def _tick() -> None:
    report = run_tick()
    assert report.failed == {}, report.failed


# -- sessions (L17) ---------------------------------------------------------------------------------


def test_l17_every_visit_starts_its_own_checkout_session(client, shop):
    _owner, link = shop
    first, second = start_checkout(client, link.slug), start_checkout(client, link.slug)

    assert first != second
    assert count(CheckoutSession) == 2
    assert len(first.rsplit("/", 1)[-1]) >= 40  # an unguessable token


def test_l17_checkout_expires_after_24_hours_and_start_again_opens_a_new_one(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)

    with time_machine.travel(now() + timedelta(hours=24, minutes=1)):
        expired = client.get(path)
        assert expired.status_code == 410
        assert "This checkout has expired" in page_text(expired)
        again = soup_of(expired).find("a", string=lambda s: s and "Start again" in s)
        assert again is not None
        assert again["href"] == signed_test_path(link.slug)
        # Paying an expired checkout charges nothing.
        refused = submit_checkout(client, path)
        assert refused.status_code in (303, 410)
        assert client.get(path).status_code == 410
        assert count(PaymentAttempt) == 0 and sandbox_charges() == 0

        restarted = client.get(again["href"])
        assert restarted.status_code == 303
        new_path = restarted.headers["Location"]
        assert new_path.endswith("/checkout/" + new_path.rsplit("/", 1)[-1]) and not new_path.endswith(path)
        assert client.get(new_path).status_code == 200
        assert submit_checkout(client, new_path).status_code == 303
    assert only_payment().status == "succeeded"


def test_l17_checkout_is_still_open_just_before_24_hours(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)

    with time_machine.travel(now() + timedelta(hours=23, minutes=59)):
        assert client.get(path).status_code == 200
        assert submit_checkout(client, path).status_code == 303


def test_l17_completed_checkout_shows_its_confirmation_and_is_never_paid_twice(client, shop):
    _owner, link = shop
    first = pay_with_card(client, link.slug)
    path = first.checkout_path
    assert first.status_code == 303

    page = client.get(path)
    assert page.status_code == 200
    assert "Thank you! Your payment was received." in page_text(page)
    assert soup_of(page).find("form", id="checkout-form") is None

    again = submit_checkout(client, path, card_number="5555555555554444")
    assert again.status_code == 303
    assert count(Payment) == 1 and sandbox_charges() == 1
    assert only_payment().card_last4 == "4242"


def test_l19_deactivated_link_is_gone_for_new_buyers(client, shop):
    owner, link = shop
    deactivate(owner, link)

    response = client.get(signed_test_path(link.slug))

    assert response.status_code == 410
    assert "This link is no longer accepting payments" in page_text(response)
    assert count(CheckoutSession) == 0


def test_l19_open_checkout_of_a_deactivated_link_takes_no_payment(client, shop):
    owner, link = shop
    path = start_checkout(client, link.slug)
    deactivate(owner, link)

    page = client.get(path)
    assert page.status_code == 410
    assert "This link is no longer accepting payments" in page_text(page)

    response = submit_checkout(client, path)
    assert response.status_code in (303, 410)
    assert client.get(path).status_code == 410
    assert count(PaymentAttempt) == 0 and sandbox_charges() == 0 and count(Payment) == 0


def test_l17_unknown_link_and_unknown_checkout_are_404(client, shop):
    assert client.get("/pay/nosuchlinkxx/test/AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert "Payment link not found" in page_text(client.get("/pay/nosuchlinkxx"))
    assert client.get("/checkout/not-a-real-token").status_code == 404
    assert client.post("/checkout/not-a-real-token", data=buyer_form()).status_code == 404
    assert count(PaymentAttempt) == 0


def test_t1_live_checkout_without_a_live_processor_says_so_politely_and_never_charges(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    assert checkout_service.get_session(path.rsplit("/", 1)[-1]).mode == "live"

    page = client.get(path)
    assert page.status_code == 200
    assert "Safe Shop isn't taking online payments yet" in page_text(page)
    assert soup_of(page).find("form", id="checkout-form") is None
    assert soup_of(page).select_one(".testmode") is None

    response = submit_checkout(client, path)
    assert response.status_code == 409
    assert "Safe Shop isn't taking online payments yet" in page_text(response)
    assert count(PaymentAttempt) == 0 and sandbox_charges() == 0 and count(Payment) == 0


# -- one payment per checkout (C5, DESIGN §5) -------------------------------------------------------


def test_c5_double_submit_of_the_same_form_makes_one_payment(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)

    responses = [submit_checkout(client, path), submit_checkout(client, path)]

    assert [r.status_code for r in responses] == [303, 303]
    assert count(Payment) == 1 and sandbox_charges() == 1
    assert len(emails("receipt")) == 1


def test_c5_ten_concurrent_submits_of_one_checkout_charge_exactly_once(app, client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit():
        try:
            buyer = app.test_client()
            with app.app_context():
                barrier.wait()
                statuses.append(buyer.post(path, data=buyer_form()).status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert len(statuses) == 10
    assert set(statuses) <= {303, 202}, statuses
    assert count(Payment) == 1
    assert sandbox_charges() == 1
    assert [a.status for a in attempts()] == [AttemptStatus.SUCCEEDED.value]
    assert len(emails("receipt")) == 1
    # H8: `client` opened the checkout but paid nothing: it sees the outcome without the buyer's details.
    assert "This payment is complete" in page_text(client.get(path))


# -- card testing: tests/web/test_h4_card_testing.py (H4 replaced the guard these tests described) ----------


# -- card data is never stored ----------------------------------------------------------------------


def _cvc(i: int, number: str) -> str:
    return f"9{i:03d}" if number.startswith(("34", "37")) else f"9{i:02d}"


def _scan_rows() -> list[tuple[str, str, object]]:
    """(table, column, value) for every text and JSON value in the database."""
    found = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(table.select()).mappings():
                for column, value in row.items():
                    if isinstance(value, str | dict | list):
                        found.append((table.name, column, value))
    return found


def _json_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _json_keys(v)}
    return set()


def test_card_data_no_full_card_number_or_cvc_in_database_emails_or_logs(app, client, mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    _owner, link = make_shop("Scan Shop", allow_ach=True)
    cvcs: dict[str, str] = {}
    numbers = [c[0] for c in T2_CARDS] + [c[0] for c in T3_CARDS]
    for i, number in enumerate(numbers):
        cvcs[number] = _cvc(i, number)
        response = _post(client, start_checkout(client, link.slug), f"10.0.{i}.1", card_number=number,
                         card_cvc=cvcs[number], email=f"buyer{i}@scan.example")
        assert response.status_code in (303, 422)
    assert pay_with_ach(client, link.slug, email="bank@scan.example").status_code == 303
    assert count(Payment, Payment.status != "failed") == len(T2_CARDS) + 1
    # B2: each declined card is a failed payment the merchant sees, with brand and last 4 only (scanned below).
    assert count(Payment, Payment.status == "failed") == len(T3_CARDS)
    run_outbox()
    assert len(mailbox.messages) >= len(T2_CARDS) * 2

    secrets = [*numbers, "000123456789"]
    # Database: every text and JSON value of every table.
    for table, column, value in _scan_rows():
        blob = value if isinstance(value, str) else json.dumps(value)
        for secret in secrets:
            assert secret not in blob, f"{secret} found in {table}.{column}"
        if not isinstance(value, str):
            keys = {k.lower() for k in _json_keys(value)}
            assert not {k for k in keys if "cvc" in k or "card_number" in k or k == "number"}, (table, column, keys)
            for cvc in cvcs.values():
                assert f'"{cvc}"' not in blob, f"a CVC found in {table}.{column}"
    # Emails: the stored bodies were scanned above; now what reached the mail server, PDFs included.
    for message in mailbox.messages:
        raw = message.as_string()
        texts = [raw] + [pdf_text(data) for name, data in Mailbox.attachments_of(message) if name.endswith(".pdf")]
        for body in texts:
            for secret in secrets:
                assert secret not in body
    # Logs.
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in logged
    assert "cvc=" not in logged.lower()
    # The SQLite file itself, write-ahead log included.
    url = make_url(str(db.engine.url))
    if url.get_backend_name() == "sqlite":
        with db.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = Path(url.database)
        raw = path.read_bytes() + (Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b"")
        for secret in secrets:
            assert secret.encode() not in raw, f"{secret} found in the SQLite file"
        # Card numbers are stored as last 4 only: the brands' last 4 are there, so the scan can see data.
        assert b"4242" in raw


# -- crash safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lose_response", "error_after_success"])
def test_crash_safety_money_moved_but_answer_lost_gives_exactly_one_payment_and_receipt(
        client, shop, mailbox, faults, fault):
    _owner, link = shop
    faults.inject(fault)

    response = pay_with_card(client, link.slug, email=BUYER)

    assert response.status_code in (303, 202)
    with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
        _tick()
        _tick()
        run_outbox()
    payment = only_payment()
    assert payment.status == "succeeded"
    assert sandbox_charges() == 1
    assert [a.status for a in attempts()] == ["succeeded"]
    assert len(mailbox.to(BUYER)) == 1
    assert subject_of(mailbox.to(BUYER)[0]).startswith("Your receipt from Safe Shop")
    assert "Thank you! Your payment was received." in page_text(client.get(response.checkout_path))
    # The buyer pressing Pay again changes nothing.
    assert submit_checkout(client, response.checkout_path).status_code == 303
    assert count(Payment) == 1 and sandbox_charges() == 1


def test_crash_safety_reconciler_records_a_charge_whose_answer_never_came_back(
        client, shop, mailbox, faults, monkeypatch):
    """The app lost the answer and could not ask again (a crash): the tick finds the charge by its key."""
    _owner, link = shop
    faults.inject("lose_response")
    monkeypatch.setattr(checkout_service, "_mark_unknown_and_lookup",
                        lambda attempt_id, key, account_id, processor: _unknown(attempt_id))

    response = pay_with_card(client, link.slug, email=BUYER)

    assert response.status_code == 202
    assert "Confirming your payment" in page_text(response)
    assert count(Payment) == 0 and sandbox_charges() == 1
    assert client.get(response.checkout_path).status_code == 202
    # Not yet stale: the tick leaves it alone.
    _tick()
    assert count(Payment) == 0
    with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
        _tick()
        _tick()
        run_outbox()
    assert only_payment().status == "succeeded"
    assert sandbox_charges() == 1
    assert len(mailbox.to(BUYER)) == 1
    assert "Thank you! Your payment was received." in page_text(client.get(response.checkout_path))


def _unknown(attempt_id: int) -> None:
    with write_transaction(db.session) as session:
        session.get(PaymentAttempt, attempt_id).status = AttemptStatus.UNKNOWN.value
    return None


def test_crash_safety_timeout_moves_no_money_and_a_retry_after_the_tick_pays_once(client, shop, mailbox, faults):
    _owner, link = shop
    faults.inject("timeout")

    response = pay_with_card(client, link.slug, email=BUYER)

    assert response.status_code == 202
    assert count(Payment) == 0 and sandbox_charges() == 0
    # While the outcome is unknown, the page waits and a second Pay is not sent to the processor.
    assert client.get(response.checkout_path).status_code == 202
    assert submit_checkout(client, response.checkout_path).status_code == 202
    assert sandbox_charges() == 0
    with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
        _tick()
        assert [a.status for a in attempts()] == ["failed"]
        assert count(Payment) == 0 and sandbox_charges() == 0
        page = client.get(response.checkout_path)
        assert page.status_code == 200 and soup_of(page).find("form", id="checkout-form") is not None
        retry = submit_checkout(client, response.checkout_path, email=BUYER)
        assert retry.status_code == 303
        _tick()
        run_outbox()
    assert only_payment().status == "succeeded"
    assert sandbox_charges() == 1
    assert [a.status for a in attempts()] == ["failed", "succeeded"]
    assert len(mailbox.to(BUYER)) == 1
    assert count(EmailMessage, EmailMessage.kind == "receipt") == 1


def test_crash_safety_receipt_survives_a_worker_crash_and_is_sent_once(client, shop, mailbox):
    """Emails go through the outbox: the receipt is written with the payment and delivered exactly once."""
    _owner, link = shop
    mailbox.refuse_next = 1
    pay_with_card(client, link.slug, email=BUYER)
    run_outbox()
    assert mailbox.to(BUYER) == []
    with time_machine.travel(now() + timedelta(minutes=5)):
        run_outbox()
        run_outbox()
    [receipt] = mailbox.to(BUYER)
    assert "$25.00" in pdf_text(pdf_attachment(receipt))
    assert db.session.scalar(select(EmailMessage.status).where(EmailMessage.kind == "receipt")) == "sent"


def test_r2_concurrent_checkouts_by_one_new_buyer_make_one_contact_company_and_pipeline(app, client, shop):
    """Two tabs (or a couple sharing an address) paying at once: every payment is recorded, no duplicates."""
    from kassa.models import Company, Contact, Pipeline

    _owner, link = shop
    paths = [start_checkout(client, link.slug) for _ in range(6)]
    cards = ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117", "3566002020360505",
             "6200000000000005"]
    barrier = threading.Barrier(len(paths))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(path: str, number: str, ip: str):
        try:
            buyer = app.test_client()
            with app.app_context():
                barrier.wait()
                form = buyer_form(card_number=number, card_cvc="1234" if number.startswith("37") else "123",
                                  email="Same.Buyer@example.com", company="Same Household")
                statuses.append(buyer.post(path, data=form, environ_base={"REMOTE_ADDR": ip}).status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(path, number, f"10.9.0.{i}"))
               for i, (path, number) in enumerate(zip(paths, cards, strict=True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert sorted(statuses) == [303] * len(paths), statuses
    assert count(Payment) == len(paths) and sandbox_charges() == len(paths)
    assert count(Contact) == 1
    assert count(Company) == 1
    assert count(Pipeline) == 1


def test_crash_safety_a_tick_during_a_slow_processor_call_never_lets_a_second_tab_charge_again(
        app, client, shop, monkeypatch):
    """The processor takes longer than RECONCILE_AFTER to answer; meanwhile another machine's tick runs and
    the buyer presses Pay in a second tab. The attempt is still with the processor: nothing may charge twice."""
    from kassa.processors.sandbox import SandboxProcessor

    _owner, link = shop
    path = start_checkout(client, link.slug)
    original = SandboxProcessor.charge
    second_tab: list[int] = []
    slowed: list[bool] = []

    def slow_charge(self, request):
        if not slowed:
            slowed.append(True)
            with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
                _tick()
                second_tab.append(app.test_client().post(path, data=buyer_form()).status_code)
        return original(self, request)

    monkeypatch.setattr(SandboxProcessor, "charge", slow_charge)

    first = submit_checkout(client, path)

    assert first.status_code == 303
    assert second_tab == [202]
    assert sandbox_charges() == 1
    assert count(Payment) == 1
    _tick()
    assert count(Payment) == 1 and only_payment().status == "succeeded"


def test_crash_safety_attempt_left_pending_by_a_crash_is_settled_once_no_call_can_still_be_running(
        app, client, shop, mailbox, monkeypatch):
    """The app died between the charge and recording it: the attempt stays pending with its key, and the tick
    records the payment once a processor call could no longer be running."""
    from kassa.processors.sandbox import SandboxProcessor

    _owner, link = shop
    original = SandboxProcessor.charge

    def charge_then_crash(self, request):
        original(self, request)
        raise SystemExit("the worker process died")

    monkeypatch.setattr(SandboxProcessor, "charge", charge_then_crash)
    path = start_checkout(client, link.slug)
    with pytest.raises(SystemExit):
        submit_checkout(client, path, email=BUYER)
    monkeypatch.setattr(SandboxProcessor, "charge", original)

    assert [a.status for a in attempts()] == ["pending"]
    assert sandbox_charges() == 1 and count(Payment) == 0
    assert client.get(path).status_code == 202  # the buyer sees "confirming your payment"
    with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
        _tick()
        assert [a.status for a in attempts()] == ["pending"]  # it might still be with the processor
        assert submit_checkout(client, path, email=BUYER).status_code == 202
    with time_machine.travel(now() + checkout_service.IN_FLIGHT_LIMIT + timedelta(seconds=5)):
        _tick()
        run_outbox()
        # H8: the request that charged died before it could mark this browser as the payer, so the page
        # shows the outcome without personal data; the receipt went out by email.
        assert "This payment is complete" in page_text(client.get(path))
    assert only_payment().status == "succeeded"
    assert sandbox_charges() == 1
    assert len(mailbox.to(BUYER)) == 1


# -- the checkout page is served from a rendered copy (issue 5 throughput) ----------------------------


def _nonce_of(response) -> str:
    return re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)


def _csrf_of(response) -> str:
    return soup_of(response).find("input", attrs={"name": "csrf_token"})["value"]


def _without_per_request_values(response) -> str:
    """The page with this request's CSP nonce and CSRF token blanked out, to compare two views."""
    html = response.get_data(as_text=True)
    return html.replace(_nonce_of(response), "NONCE").replace(_csrf_of(response), "CSRF")


def test_c6_checkout_page_reads_the_database_once_and_writes_nothing(app, client, shop, monkeypatch):
    """Q12: a cached page's view runs one precompiled read on one pooled connection (on SQLite: the thread's
    own, taken from the pool once, so none per view), and no statement through SQLAlchemy's execution (no ORM
    load, no write)."""
    _owner, link = shop
    path = start_checkout(client, link.slug)
    client.get(path)  # the first view renders the page; later ones fill in a rendered copy
    statements: list[str] = []
    reads: list[str] = []
    checkouts: list[object] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement.strip().split(None, 1)[0].upper())

    real_read = PrecompiledRead.one_or_none

    def counted(self, engine, **params):
        reads.append(str(self.statement).split(None, 1)[0].upper())
        return real_read(self, engine, **params)

    monkeypatch.setattr(PrecompiledRead, "one_or_none", counted)
    event.listen(db.engine, "before_cursor_execute", record)
    def checked_out(*args):
        checkouts.append(args)

    event.listen(db.engine.pool, "checkout", checked_out)
    try:
        page = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        event.remove(db.engine.pool, "checkout", checked_out)

    assert page.status_code == 200
    assert [s for s in statements if s != "BEGIN"] == []
    assert reads == ["SELECT"]
    assert len(checkouts) == (0 if db.engine.dialect.name == "sqlite" else 1)


def test_c6_a_cached_checkout_page_is_the_page_the_template_renders(app, client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)
    token = path.rsplit("/", 1)[-1]
    first, second = client.get(path), client.get(path)
    app.jinja_env.auto_reload = True  # as in debug: every view renders the template
    rendered = client.get(path)

    assert first.status_code == second.status_code == rendered.status_code == 200
    assert _without_per_request_values(first) == _without_per_request_values(second) \
        == _without_per_request_values(rendered)
    form = soup_of(second).find("form", id="checkout-form")
    assert form["action"] == f"/checkout/{token}"
    assert soup_of(second).find("form", class_="lang")["action"] == f"/checkout/{token}"


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_c6_every_view_of_a_cached_checkout_page_has_its_own_nonce_and_csrf_token(app, shop):
    _owner, link = shop
    buyer, other = app.test_client(), app.test_client()
    path = start_checkout(buyer, link.slug)
    views = [buyer.get(path), buyer.get(path), other.get(path)]

    nonces = [_nonce_of(view) for view in views]
    assert len(set(nonces)) == 3
    for view, nonce in zip(views, nonces, strict=True):
        tagged = soup_of(view).find_all(["script", "style"])
        assert tagged and all(tag["nonce"] == nonce for tag in tagged)
    assert _csrf_of(views[2]) != _csrf_of(views[1])
    # Each buyer's token only works in their own session.
    refused = other.post(path, data={**buyer_form(), "csrf_token": _csrf_of(views[1])})
    assert refused.status_code == 400 and count(PaymentAttempt) == 0
    paid = buyer.post(path, data={**buyer_form(), "csrf_token": _csrf_of(views[1])})
    assert paid.status_code == 303 and only_payment().status == "succeeded"


def test_c1_branding_changes_show_on_an_open_checkout_at_once_and_link_edits_on_new_ones(app, client, shop):
    owner, link = shop
    path = start_checkout(client, link.slug)
    assert "Safe Shop" in page_text(client.get(path))

    with write_transaction(db.session) as session:
        account = session.get(Account, owner.account_id)
        account.name, account.brand_color = "Safer Shop", "#0b6b3a"
    page = client.get(path)
    assert "Safer Shop" in page_text(page) and "--brand:#0b6b3a" in page.get_data(as_text=True)

    edit_link(owner, link, items=[item("Summer concert", "30.00")])
    assert "Concert ticket" in page_text(client.get(path))  # this session keeps what it was opened with
    fresh = page_text(client.get(start_checkout(client, link.slug)))
    assert "Summer concert" in fresh and "Concert ticket" not in fresh


def test_c6_checkout_assets_are_sent_gzipped_to_browsers_that_accept_it_and_no_icon_is_fetched(client, shop):
    import gzip

    _owner, link = shop
    page = soup_of(client.get(start_checkout(client, link.slug)))
    assert page.find("link", rel="icon")["href"] == "data:,"  # no request for /favicon.ico, so no 404 logged
    urls = [page.find("link", rel="stylesheet")["href"], page.find("script")["src"]]
    for url in urls:
        plain_bytes = client.get(url)
        zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert plain_bytes.status_code == zipped.status_code == 200
        assert "Content-Encoding" not in plain_bytes.headers
        assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
        assert gzip.decompress(zipped.get_data()) == plain_bytes.get_data()
        assert len(zipped.get_data()) < len(plain_bytes.get_data()) / 2
