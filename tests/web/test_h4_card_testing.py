"""H4: the card-testing guard counts declines and invalid numbers (never successes), per account, IP, link and
page, distinct numbers per IP and page; atomic under concurrency; on every card entry point; test-mode
decline cards never lock anyone out and 4100 0000 0000 0019 shows the block.

Live mode runs on the sandbox here (KASSA_LIVE_PROCESSOR), wrapped to count the processor calls.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import AttemptStatus, Payment, PaymentAttempt, PaymentLink
from kassa.processors import registry
from kassa.services.payments.risk import DEFAULTS
from tests.factories import make_merchant
from tests.support.app import page_text, run_outbox
from tests.support.billing import buy, subscription_shop
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import T3_CARDS, alert, count, field_value, make_link, make_shop, subject_of
from tests.support.faults import FaultyProcessor
from tests.support.mailserver import Mailbox

DECLINED = "4000000000000002"
BLOCKED = "4100000000000019"
GOOD = "4242424242424242"
NOT_A_TEST_CARD = ["4111111111111111", "4012888888881881", "5500000000000004", "4000000000000010",
                   "4222222222222220", "4000000000000044"]  # Luhn-valid: only the processor says they're invalid


class ProcessorCalls:
    """Wraps the sandbox: counts every call that would reach a processor (charge, save_card)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.gate: threading.Barrier | None = None  # concurrency control: admitted calls meet here first
        self.gate_broken = False

    def factory(self):
        processor = registry.SandboxProcessor(registry.DbSandboxStore(db.engine), registry._country_lookup(db.engine))
        for name in ("charge", "save_card"):
            setattr(processor, name, self._counted(name, getattr(processor, name)))
        return processor

    def _counted(self, name, real):
        def call(*args, **kwargs):
            with self.lock:
                self.calls.append(name)
            if self.gate is not None:
                try:
                    self.gate.wait()
                except threading.BrokenBarrierError:
                    self.gate_broken = True
            return real(*args, **kwargs)
        return call

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture
def processor(monkeypatch) -> ProcessorCalls:
    calls = ProcessorCalls()
    monkeypatch.setattr(registry, "sandbox", calls.factory)  # test mode
    return calls


@pytest.fixture
def app_config(request, smtp_app_config):
    """SMTP always; live mode on the (counted) sandbox; other limits by indirect parametrization."""
    return {**smtp_app_config, **getattr(request, "param", {})}


@pytest.fixture(autouse=True)
def live_processor(app, processor):
    app.config["KASSA_LIVE_PROCESSOR"] = processor.factory


@pytest.fixture
def shop(app):
    return make_shop("Guarded Shop", allow_ach=True)


def _pay(client, slug: str, ip: str, *, mode: str = "live", path: str | None = None, **overrides):
    path = path or start_checkout(client, slug, mode=mode)
    response = client.post(path, data=buyer_form(**overrides), environ_base={"REMOTE_ADDR": ip})
    response.checkout_path = path
    return response


def _limits(**values) -> list:
    return [pytest.param({f"KASSA_RISK_{k.upper()}": v for k, v in values.items()}, id="limits")]


# -- atomic under concurrency -------------------------------------------------------------------------


def test_h4_parallel_declines_stop_at_the_limit(app, client, shop, processor):
    """15 declines sent at once from one IP: at most KASSA_RISK_IP_DECLINES (5) reach the processor, the others
    are refused (429) before it. Control: the admitted calls all wait for each other inside the processor, so
    none had finished when the last was admitted — a guard counting finished declines would have let all 15
    through (as the old one did)."""
    _owner, link = shop
    n, limit = 15, DEFAULTS["KASSA_RISK_IP_DECLINES"]
    paths = [start_checkout(client, link.slug, mode="live") for _ in range(n)]
    processor.gate = threading.Barrier(limit, timeout=60)
    start = threading.Barrier(n)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(path: str) -> None:
        try:
            buyer = app.test_client()
            with app.app_context():
                start.wait()
                response = buyer.post(path, data=buyer_form(card_number=DECLINED),
                                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
                statuses.append(response.status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    print(f"\nH4 figure [{db.engine.dialect.name}]: {n} parallel declines from one IP -> "
          f"{len(processor)} processor calls (limit {limit})")
    assert len(processor) <= limit
    assert len(processor) == limit and not processor.gate_broken  # the control: all admitted at once
    assert sorted(statuses) == [422] * limit + [429] * (n - limit)
    assert count(PaymentAttempt) == limit
    assert count(PaymentAttempt, PaymentAttempt.status == AttemptStatus.DECLINED.value) == limit
    # B2: each decline that reached the processor is one failed payment; the refused ones are none.
    assert count(Payment, Payment.status == "failed") == count(Payment) == limit
    # The declines were kept: the address stays blocked, without calling the processor.
    processor.gate = None
    again = _pay(client, link.slug, "203.0.113.9")
    assert again.status_code == 429 and len(processor) == limit


def test_h4_parallel_successes_and_declines_on_one_merchant(app, client, shop, processor):
    """Ten buyers pay at once on one link (same card, ten addresses) while one address sends ten declines at once
    to another link of the same merchant: all ten payments go through, at most 5 declines reach the processor,
    and nothing fails (the guard's counters and the payment's account lock never wait on each other)."""
    owner, link = shop
    other = make_link(owner, name="Other link")
    jobs = [(start_checkout(client, link.slug, mode="live"), f"198.51.100.{100 + i}", GOOD) for i in range(10)]
    jobs += [(start_checkout(client, other.slug, mode="live"), "203.0.113.99", DECLINED) for _ in range(10)]
    start = threading.Barrier(len(jobs))
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def submit(path: str, ip: str, number: str) -> None:
        try:
            buyer = app.test_client()
            with app.app_context():
                start.wait()
                response = buyer.post(path, data=buyer_form(card_number=number), environ_base={"REMOTE_ADDR": ip})
                results.append((number, response.status_code))
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert sorted(status for number, status in results if number == GOOD) == [303] * 10
    assert sorted(status for number, status in results if number == DECLINED) == [422] * 5 + [429] * 5
    assert count(Payment, Payment.status == "succeeded") == 10
    assert len(processor) == 15


# -- successes never count ---------------------------------------------------------------------------


def test_h4_ten_payments_with_one_card_in_a_day_are_all_paid(client, shop, processor):
    """A regular customer pays ten times a day with the same card from the same place: ten payments, then the
    same buyer pays again; a success never uses up a limit."""
    _owner, link = shop
    statuses = [_pay(client, link.slug, "198.51.100.7", card_number=GOOD, email="regular@example.com").status_code
                for _ in range(10)]

    print(f"\nH4 figure [{db.engine.dialect.name}]: 10 payments with one card -> {count(Payment)} paid")
    assert statuses == [303] * 10
    assert count(Payment, Payment.status == "succeeded") == 10
    assert _pay(client, link.slug, "198.51.100.7", card_number=GOOD, email="regular@example.com").status_code == 303
    assert count(Payment) == 11 and len(processor) == 11


def test_h4_a_success_gives_its_slot_back(client, shop):
    """Four declines and then five successes from one IP: the successes never bring the IP to its limit of 5
    (nor use up the card); the fifth decline does."""
    _owner, link = shop
    for number in (DECLINED, "4000000000009995", DECLINED, "4000000000009995"):
        assert _pay(client, link.slug, "198.51.100.8", card_number=number).status_code == 422
    for _ in range(5):
        assert _pay(client, link.slug, "198.51.100.8").status_code == 303
    assert _pay(client, link.slug, "198.51.100.8", card_number="4000000000000036").status_code == 422  # the 5th
    assert _pay(client, link.slug, "198.51.100.8").status_code == 429


@pytest.mark.parametrize("app_config", _limits(ip_declines=1), indirect=True)
def test_h4_a_payment_whose_answer_was_lost_gives_its_slot_back_when_reconciled(
        app, client, shop, faults, monkeypatch):
    """KASSA_RISK_IP_DECLINES=1. The processor's answer is lost: while the outcome is unknown the attempt holds
    its slot (another try from that IP waits its turn: 429); when the tick finds the payment, the slot is given
    back and the buyer's IP pays again. A timeout that moved no money gives it back too."""
    from kassa.services.checkout import checkout as checkout_service
    from kassa.services.platform.ticks import run_tick

    def unknown(attempt_id, key, account_id, processor):
        with write_transaction(db.session) as session:
            session.get(PaymentAttempt, attempt_id).status = AttemptStatus.UNKNOWN.value

    _owner, link = shop
    live = app.config["KASSA_LIVE_PROCESSOR"]  # the counted sandbox, behind the test-only fault wrapper (M3)
    monkeypatch.setitem(app.config, "KASSA_LIVE_PROCESSOR", lambda: FaultyProcessor(live(), faults))
    faults.inject("lose_response")
    monkeypatch.setattr(checkout_service, "_mark_unknown_and_lookup", unknown)
    assert _pay(client, link.slug, "198.51.100.30").status_code == 202
    assert _pay(client, link.slug, "198.51.100.30").status_code == 429
    with time_machine.travel(now() + checkout_service.RECONCILE_AFTER + timedelta(seconds=5)):
        assert run_tick().failed == {}
        assert count(Payment) == 1
        faults.inject("timeout")
        assert _pay(client, link.slug, "198.51.100.30").status_code == 202
    with time_machine.travel(now() + 2 * checkout_service.RECONCILE_AFTER + timedelta(seconds=10)):
        assert run_tick().failed == {}
        assert count(PaymentAttempt, PaymentAttempt.status == AttemptStatus.FAILED.value) == 1
        assert _pay(client, link.slug, "198.51.100.30").status_code == 303
    assert count(Payment) == 2


# -- per IP ---------------------------------------------------------------------------------------------


def test_h4_declines_from_one_ip_block_it_before_the_processor_and_keep_what_was_typed(client, shop, processor):
    """Five declines or invalid numbers (default) from one IP: the sixth try is refused before the processor
    for an hour; the page keeps everything typed except the card number and CVC; another IP pays as usual."""
    _owner, link = shop
    # Numbers the processor calls invalid (here: not a test card) count like declines.
    for number in (DECLINED, NOT_A_TEST_CARD[0], "4000000000009995", DECLINED, NOT_A_TEST_CARD[0]):
        response = _pay(client, link.slug, "203.0.113.7", card_number=number)
        assert response.status_code == 422, alert(response)
    calls = len(processor)

    blocked = _pay(client, link.slug, "203.0.113.7", email="kept@example.com", first_name="Kim")

    assert blocked.status_code == 429
    assert alert(blocked) == "Too many declined payments from your connection. Try again in 1 hour."
    assert len(processor) == calls and count(PaymentAttempt) == 5
    assert field_value(blocked, "email") == "kept@example.com" and field_value(blocked, "first_name") == "Kim"
    assert field_value(blocked, "card_name") == "Ann Buyer"
    assert field_value(blocked, "billing_line1") == "Main Street 1"
    assert field_value(blocked, "card_number") == "" and field_value(blocked, "card_cvc") == ""
    assert _pay(client, link.slug, "198.51.100.20").status_code == 303
    with time_machine.travel(now() + timedelta(hours=1, seconds=5)):
        assert _pay(client, link.slug, "203.0.113.7", card_number="5555555555554444").status_code == 303


@pytest.mark.parametrize("app_config", _limits(ip_declines=2, ip_window=120), indirect=True)
def test_h4_ip_limit_and_window_are_configurable(client, shop, processor):
    """KASSA_RISK_IP_DECLINES=2, KASSA_RISK_IP_WINDOW=120: the third try is refused, 2 minutes later it works."""
    _owner, link = shop
    for number in (DECLINED, "4000000000009995"):
        assert _pay(client, link.slug, "203.0.113.1", card_number=number).status_code == 422
    refused = _pay(client, link.slug, "203.0.113.1")
    assert refused.status_code == 429
    assert alert(refused) == "Too many declined payments from your connection. Try again in 2 minutes."
    assert len(processor) == 2
    with time_machine.travel(now() + timedelta(seconds=125)):
        assert _pay(client, link.slug, "203.0.113.1").status_code == 303


@pytest.mark.parametrize("app_config", _limits(ip_declines=2), indirect=True)
def test_h4_bank_debits_are_guarded_too(client, shop, processor):
    """Invalid bank accounts count on the checkout's bank-debit form as cards do."""
    _owner, link = shop
    for account in ("000999999991", "000999999992"):
        response = _pay(client, link.slug, "203.0.113.30", method="ach", account_number=account)
        assert response.status_code == 422, alert(response)
    refused = _pay(client, link.slug, "203.0.113.30", method="ach")
    assert refused.status_code == 429 and len(processor) == 2
    assert field_value(refused, "account_holder_name") == "Ann Buyer"


# -- distinct numbers per IP and per page --------------------------------------------------------------


@pytest.mark.parametrize("app_config", _limits(ip_declines=100, ip_cards=2, cards_window=600), indirect=True)
def test_h4_distinct_cards_per_ip(client, shop, processor):
    """KASSA_RISK_IP_CARDS=2: retrying one card is fine, a third different declined card from the same IP is
    refused before the processor (a new good card too); KASSA_RISK_CARDS_WINDOW=600 later it works again."""
    _owner, link = shop
    for number in (DECLINED, DECLINED, DECLINED, "4000000000009995"):
        assert _pay(client, link.slug, "203.0.113.40", card_number=number).status_code == 422
    calls = len(processor)

    refused = _pay(client, link.slug, "203.0.113.40", card_number="4000000000000069")

    assert refused.status_code == 429
    assert alert(refused) == "Too many different cards were declined from your connection. Try again in 10 minutes."
    assert _pay(client, link.slug, "203.0.113.40", card_number=GOOD).status_code == 429
    assert len(processor) == calls
    assert _pay(client, link.slug, "203.0.113.40", card_number=DECLINED).status_code == 422  # a known card
    assert _pay(client, link.slug, "203.0.113.41", card_number=GOOD).status_code == 303  # elsewhere
    with time_machine.travel(now() + timedelta(seconds=605)):
        assert _pay(client, link.slug, "203.0.113.40", card_number=GOOD).status_code == 303


@pytest.mark.parametrize("app_config", _limits(session_cards=2), indirect=True)
def test_h4_distinct_cards_per_checkout_page(client, shop, processor):
    """KASSA_RISK_SESSION_CARDS=2: one checkout page tried from ever-changing IPs gets two different declined
    cards, then is refused."""
    _owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    assert _pay(client, link.slug, "192.0.2.1", path=path, card_number=DECLINED).status_code == 422
    assert _pay(client, link.slug, "192.0.2.2", path=path, card_number="4000000000009995").status_code == 422
    refused = _pay(client, link.slug, "192.0.2.3", path=path, card_number="4000000000000069")
    assert refused.status_code == 429
    assert alert(refused) == "Too many different cards were declined on this page. Try again in 1 day."
    assert len(processor) == 2


# -- per account and per link ----------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", _limits(account_declines=3, account_window=120), indirect=True)
def test_h4_per_account_limit(client, shop, processor):
    """KASSA_RISK_ACCOUNT_DECLINES=3: declines from many IPs on several links of one merchant; the fourth card
    entry is refused, on any of its links; another merchant is not affected; KASSA_RISK_ACCOUNT_WINDOW=120."""
    owner, link = shop
    other_link = make_link(owner, name="Other link")
    for _ in range(4):
        assert _pay(client, link.slug, "198.51.100.60").status_code == 303  # successes don't count
    for i, slug in enumerate((link.slug, other_link.slug, link.slug)):
        assert _pay(client, slug, f"192.0.2.{10 + i}", card_number=DECLINED).status_code == 422

    refused = _pay(client, other_link.slug, "192.0.2.99")

    assert refused.status_code == 429
    assert alert(refused) == ("Payments to this seller are paused for safety after too many declined cards. "
                              "Try again in 2 minutes.")
    assert len(processor) == 4 + 3
    other_owner = make_merchant(company="Other Shop")
    assert _pay(client, make_link(other_owner).slug, "192.0.2.99").status_code == 303
    with time_machine.travel(now() + timedelta(seconds=125)):
        assert _pay(client, other_link.slug, "192.0.2.99").status_code == 303


@pytest.mark.parametrize("app_config", _limits(link_declines=3, link_window=60, link_pause=300), indirect=True)
def test_h4_link_limit_pauses_card_payments_and_emails_the_merchant(client, shop, processor, mailbox: Mailbox):
    """KASSA_RISK_LINK_DECLINES=3 in KASSA_RISK_LINK_WINDOW=60: the third decline pauses the link's card payments
    for KASSA_RISK_LINK_PAUSE=300 s and emails the merchant once; bank debits and other links still work.
    Declines in test mode (a merchant trying the decline cards) never pause the live link."""
    owner, link = shop
    for i, number in enumerate((DECLINED, "4000000000009995", "4000000000000069")):  # a merchant testing
        assert _pay(client, link.slug, f"192.0.2.{30 + i}", mode="test", card_number=number).status_code == 422
    assert _pay(client, link.slug, "192.0.2.33").status_code == 303  # test mode never pauses the live link
    for i, number in enumerate((DECLINED, "4000000000009995", "4000000000000069")):
        assert _pay(client, link.slug, f"192.0.2.{20 + i}", card_number=number).status_code == 422
    calls = len(processor)

    paused = _pay(client, link.slug, "198.51.100.99")

    assert paused.status_code == 429
    assert alert(paused) == "Card payments on this page are paused for a few minutes for safety. Try again later."
    assert len(processor) == calls
    run_outbox()
    paused_mail = [m for m in mailbox.to(owner.email) if "paused" in subject_of(m)]
    assert [subject_of(m) for m in paused_mail] == ["Card payments paused on “Spring concert”"]
    assert "3 card payments were declined" in Mailbox.text_of(paused_mail[0])
    assert _pay(client, link.slug, "198.51.100.98", method="ach").status_code == 303
    assert _pay(client, make_link(owner, name="Other").slug, "198.51.100.97").status_code == 303
    with time_machine.travel(now() + timedelta(seconds=305)):
        assert _pay(client, link.slug, "198.51.100.96").status_code == 303
        assert db.session.get(PaymentLink, link.id).card_paused_until < now()


# -- test mode -------------------------------------------------------------------------------------------


def test_h4_test_mode_decline_cards_never_lock_out_and_the_blocked_card_shows_the_block(client, shop, processor):
    """A merchant tries the five documented decline cards three times each from one IP in test mode: every one
    is declined by the processor, none locks anyone out. 4100 0000 0000 0019 shows the block (429, before the
    processor) without locking out either."""
    _owner, link = shop
    for _ in range(3):
        for number, _field, message in T3_CARDS:
            response = _pay(client, link.slug, "198.51.100.1", mode="test", card_number=number)
            assert response.status_code == 422, alert(response)
            assert message in page_text(response)
    assert len(processor) == 15
    assert _pay(client, link.slug, "198.51.100.1", mode="test").status_code == 303

    blocked = _pay(client, link.slug, "198.51.100.1", mode="test", card_number=BLOCKED, lang="nl")

    assert blocked.status_code == 429
    assert alert(blocked) == "Te veel geweigerde betalingen vanaf je verbinding. Probeer het over 1 uur opnieuw."
    assert len(processor) == 16
    assert _pay(client, link.slug, "198.51.100.1", mode="test").status_code == 303


def test_h4_test_mode_never_blocks_live_buyers(client, shop):
    """Invalid numbers typed in test mode count in test mode only: the same IP still pays live."""
    _owner, link = shop
    for number in NOT_A_TEST_CARD[:3] + NOT_A_TEST_CARD[:2]:
        assert _pay(client, link.slug, "198.51.100.2", mode="test", card_number=number).status_code == 422
    assert _pay(client, link.slug, "198.51.100.2", mode="test").status_code == 429
    assert _pay(client, link.slug, "198.51.100.2").status_code == 303


# -- the card-update page --------------------------------------------------------------------------------


def _card(number: str) -> dict[str, str]:
    return {"card_number": number, "card_expiry": "12 / 34", "card_cvc": "123", "card_name": "Sam Subscriber"}


@pytest.mark.parametrize("app_config", _limits(ip_declines=2), indirect=True)
def test_h4_card_update_page_is_guarded(client, app, processor):
    """/billing/<token>: invalid numbers count per IP (KASSA_RISK_IP_DECLINES=2); the third card is refused
    before the processor, with the name kept; the documented decline cards don't lock out in test mode, and
    4100 0000 0000 0019 shows the block there too."""
    from kassa.services.billing.notices import update_url_token

    _owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    with write_transaction(db.session):
        token = update_url_token(sub.id)
    path, ip = f"/billing/{token}", {"REMOTE_ADDR": "203.0.113.50"}
    calls = len(processor)
    for number, _field, _message in T3_CARDS * 2:
        assert client.post(path, data=_card(number), environ_base=ip).status_code == 422
    blocked = client.post(path, data=_card(BLOCKED), environ_base=ip)
    assert blocked.status_code == 429 and len(processor) == calls + 10

    for number in NOT_A_TEST_CARD[:2]:
        assert client.post(path, data=_card(number), environ_base=ip).status_code == 422
    refused = client.post(path, data=_card("5555555555554444"), environ_base=ip)

    assert refused.status_code == 429
    assert "Too many declined payments from your connection. Try again in 1 hour." in refused.get_data(as_text=True)
    assert len(processor) == calls + 12
    assert field_value(refused, "card_name") == "Sam Subscriber" and field_value(refused, "card_number") == ""
    saved = client.post(path, data=_card("5555555555554444"), environ_base={"REMOTE_ADDR": "198.51.100.3"})
    assert saved.status_code == 200 and "Your card is saved." in saved.get_data(as_text=True)


def test_h4_the_tick_forgets_counters_long_after_their_window(client, shop):
    """Counters are one row per place and per (place, number): the tick deletes those whose window ended more
    than an hour past the longest window, so they don't pile up."""
    from kassa.models import RiskCounter
    from kassa.services.platform.ticks import run_tick

    _owner, link = shop
    assert _pay(client, link.slug, "203.0.113.60", card_number=DECLINED).status_code == 422
    assert count(RiskCounter) > 0
    assert run_tick().failed == {}
    assert count(RiskCounter) > 0  # still in its window
    with time_machine.travel(now() + timedelta(days=1, hours=1, minutes=1)):
        report = run_tick()
    assert report.failed == {} and report.done["risk_counters"] > 0
    assert count(RiskCounter) == 0


# -- configuration ---------------------------------------------------------------------------------------


def test_h4_every_limit_is_a_setting():
    """Each KASSA_RISK_* default, read from the environment by config.py (and listed in the README)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert DEFAULTS == {
        "KASSA_RISK_IP_DECLINES": 5, "KASSA_RISK_IP_WINDOW": 3600,
        "KASSA_RISK_IP_CARDS": 4, "KASSA_RISK_SESSION_CARDS": 3, "KASSA_RISK_CARDS_WINDOW": 86400,
        "KASSA_RISK_ACCOUNT_DECLINES": 50, "KASSA_RISK_ACCOUNT_WINDOW": 3600,
        "KASSA_RISK_LINK_DECLINES": 10, "KASSA_RISK_LINK_WINDOW": 600, "KASSA_RISK_LINK_PAUSE": 1800,
    }
    assert all(f"`{name}`" in readme for name in DEFAULTS)
    assert "`4100 0000 0000 0019`" in readme
