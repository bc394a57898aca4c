"""H5: every money step is crash-consistent: 0 lost, 0 doubled, the ledger equal to the processor's records.

For each flow (checkout charge, refund, dispute answer, subscription renewal, payout) a dry run counts the
flow's crash points: the processor call (before it, after it, its answer lost), every write the processor
makes to its own store during the call, and every database commit of the flow. Then, for every point and
several trials, a fresh merchant runs the flow with a crash there (tests/support/faults.py: a `Crash`, which
nothing in the app catches, like `kill -9`; transactions in progress roll back), the recovery runs (ticks on
a moving clock: reconcile, retries, events; then the user does once more what they had asked for, if it left
no trace) and the merchant's records are compared with the sandbox's:

- lost: money the processor moved that Kassa doesn't show, or Kassa shows money the processor didn't move;
- doubled: one intent moved money (or was answered) more than once;
- ledger: the ledger's entries for charges, fees, refunds and disputes minus what the processor's records
  say they must be, summed as absolute differences (minor units).

The figures are printed (`-s`) per flow: steps × trials and the three counts, all of which must be 0.
KASSA_CRASH_TRIALS sets the trials per step (default 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    CheckoutSession,
    Dispute,
    LedgerEntry,
    Payment,
    PaymentAttempt,
    Payout,
    Refund,
    SandboxRecord,
    Subscription,
    User,
)
from kassa.services.disputes.disputes import dispute_fee
from tests.factories import make_merchant
from tests.support.billing import buy, renewals_of, subscription_shop
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import make_shop
from tests.support.faults import FaultPlan, faults  # noqa: F401  (the fixture)
from tests.support.payments import sandbox_payment

TRIALS = int(os.environ.get("KASSA_CRASH_TRIALS", "2"))


@pytest.fixture
def app_config() -> dict:
    # Every trial pays with the same test card: the card-testing guard is not what this test is about.
    return {"KASSA_RISK_CARD_USES": 1_000_000}
FRAUD_CARD = "4000000000000259"  # T5: the charge succeeds, then a dispute opens


@dataclass
class Tally:
    flow: str
    steps: list[str] = field(default_factory=list)
    trials: int = 0
    lost: int = 0
    doubled: int = 0
    ledger: int = 0
    findings: list[str] = field(default_factory=list)
    trials_per_step: int = TRIALS

    def add(self, step: str, lost: int, doubled: int, ledger: int, detail: str = "") -> None:
        self.trials += 1
        self.lost, self.doubled, self.ledger = self.lost + lost, self.doubled + doubled, self.ledger + ledger
        if lost or doubled or ledger:
            self.findings.append(f"{step}: lost={lost} doubled={doubled} ledger={ledger} {detail}")

    def report(self) -> None:
        print(f"\nH5 {self.flow} on {db.engine.dialect.name}: {len(self.steps)} steps x {self.trials_per_step} trials = "
              f"{self.trials} crashes; lost {self.lost}, doubled {self.doubled}, ledger differences {self.ledger}"
              f"\n  steps: {', '.join(self.steps)}")
        assert not self.findings, "\n".join(self.findings)


# -- running the matrix ---------------------------------------------------------------------------------------


def _steps(plan: FaultPlan) -> list[tuple[str, int]]:
    """Every crash point the dry run passed through."""
    return [("commit", k) for k in range(1, plan.commits + 1)] + [("before", 1), ("after", 1), ("lost", 1)] + [
        ("write", k) for k in range(1, plan.writes + 1)]


def run_matrix(plan: FaultPlan, flow: str, setup: Callable[[], dict], act: Callable[[dict], None],
               recover: Callable[[dict], None], check: Callable[[dict], tuple[int, int, int, str]],
               *, trials: int | None = None,
               crash_run: Callable[[dict, str, int], str | None] | None = None) -> Tally:
    """Dry run (no crash) to find the points, then every point × TRIALS, each on a fresh setup. `crash_run`
    runs an armed trial some other way (in a child process that kills itself) and says where it died."""
    from kassa.extensions import limiter

    trials = trials or TRIALS
    tally = Tally(flow)
    ctx = setup()
    plan.reset()
    act(ctx)
    assert plan.fired is None
    steps = _steps(plan)
    plan.reset()
    recover(ctx)
    tally.add("dry run", *check(ctx))
    tally.trials = 0
    tally.steps = [f"{kind} {n}" if kind in ("commit", "write") else kind for kind, n in steps]
    tally.trials_per_step = trials
    for kind, n in steps:
        for _trial in range(trials):
            limiter.reset()  # every trial's buyer and merchant come from one test IP
            ctx = setup()
            if crash_run is not None:
                fired = crash_run(ctx, kind, n)
            else:
                plan.arm(kind, n)
                with plan.crash_expected():
                    act(ctx)
                fired = plan.fired
            plan.reset()
            db.session.remove()
            recover(ctx)
            lost, doubled, ledger, detail = check(ctx)
            tally.add(f"{kind} {n} ({fired})", lost, doubled, ledger, detail)
    return tally


def ticks(base: datetime, *offsets: timedelta) -> None:
    """`flask kassa tick` at each moment after `base` (reconcile, retries, processor events, billing, payouts)."""
    from kassa.services.platform.ticks import run_tick

    for offset in offsets:
        with time_machine.travel(base + offset, tick=False):
            report = run_tick()
        assert not report.failed, report.failed
        db.session.remove()


RECOVERY = (timedelta(minutes=1), timedelta(minutes=12), timedelta(minutes=13), timedelta(hours=1))


def sandbox_rows(account_id: int, prefix: str) -> list[dict]:
    db.session.rollback()
    return [row for row, in db.session.execute(
        select(SandboxRecord.data).where(SandboxRecord.account_id == account_id,
                                         SandboxRecord.key.like(f"{prefix}:%")))]


def ledger_sum(account_id: int, *types: str) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
        LedgerEntry.account_id == account_id, LedgerEntry.type.in_(types))))


def charges_vs_payments(account_id: int, intents: int) -> tuple[int, int, int, str]:
    """The sandbox's charges against Kassa's payments (by reference) and charge/fee ledger entries."""
    charges = {row["result"]["processor_ref"]: row["result"] for row in sandbox_rows(account_id, "charge")}
    payments = db.session.scalars(select(Payment).where(Payment.account_id == account_id,
                                                        Payment.processor_ref.is_not(None))).all()
    refs = [p.processor_ref for p in payments]
    lost = len(set(charges) ^ set(refs))
    doubled = max(len(charges) - intents, 0) + (len(refs) - len(set(refs)))
    ledger = abs(ledger_sum(account_id, "charge") - sum(c["amount_settlement_minor"] for c in charges.values()))
    ledger += abs(ledger_sum(account_id, "fee") + sum(c["fee_settlement_minor"] for c in charges.values()))
    return lost, doubled, ledger, f"charges={sorted(charges)} payments={refs}"


# -- checkout charge ------------------------------------------------------------------------------------------


def test_h5_checkout_charge_survives_a_crash_at_every_step(app, faults):  # noqa: F811
    """A buyer's pay request dies at each point of the charge: after recovery (reconcile tick, then the buyer
    submitting once more if the checkout isn't complete) the account has exactly one charge at the processor
    and exactly one payment for it, and its ledger equals the charge."""

    def setup() -> dict:
        owner, link = make_shop()
        buyer, account_id = app.test_client(), owner.account_id
        return {"owner": account_id, "buyer": buyer, "path": start_checkout(buyer, link.slug), "base": now()}

    def act(ctx: dict) -> None:
        submit_checkout(ctx["buyer"], ctx["path"])

    def recover(ctx: dict) -> None:
        ticks(ctx["base"], *RECOVERY)
        token = ctx["path"].rsplit("/", 1)[-1]
        checkout = db.session.scalar(select(CheckoutSession).where(CheckoutSession.token == token))
        if checkout.status != "completed":  # the buyer saw no confirmation: they pay again
            with time_machine.travel(ctx["base"] + timedelta(hours=2), tick=False):
                response = submit_checkout(ctx["buyer"], ctx["path"])
            assert response.status_code == 303, response.status_code
            db.session.remove()

    def check(ctx: dict) -> tuple[int, int, int, str]:
        account_id = ctx["owner"]
        lost, doubled, ledger, detail = charges_vs_payments(account_id, 1)
        open_attempts = db.session.scalar(select(func.count()).select_from(PaymentAttempt).where(
            PaymentAttempt.account_id == account_id, PaymentAttempt.status.in_(("pending", "unknown"))))
        paid = db.session.scalar(select(func.count()).select_from(Payment).where(Payment.account_id == account_id))
        return lost + open_attempts + (paid != 1), doubled, ledger, detail

    run_matrix(faults, "checkout charge", setup, act, recover, check).report()


# -- refund ---------------------------------------------------------------------------------------------------


def _refund_setup() -> dict:
    owner = make_merchant()
    user_id, account_id = owner.id, owner.account_id
    payment = sandbox_payment(account_id, amount_minor=5000)
    _refund_setup.n = getattr(_refund_setup, "n", 0) + 1
    n = _refund_setup.n
    return {"user": user_id, "account": account_id, "payment": payment.id, "charge": payment.processor_ref,
            "amount": "50.00" if n % 2 else "20.00", "key": f"refund-crash-{n}", "base": now()}


def _refund_act(ctx: dict) -> None:
    from kassa.services.payments.refunds import refund_payment

    actor = Actor(user=db.session.get(User, ctx["user"]), account_id=ctx["account"])
    refund_payment(actor, ctx["payment"], amount_text=ctx["amount"], reason="duplicate", note="", locale="en",
                   idempotency_key=ctx["key"])


def _refund_recover(ctx: dict) -> None:
    ticks(ctx["base"], *RECOVERY)
    if not db.session.scalar(select(Refund.id).where(Refund.payment_id == ctx["payment"])):
        with time_machine.travel(ctx["base"] + timedelta(hours=2), tick=False):
            _refund_act(ctx)  # the merchant saw no confirmation: the same form again (same key)
        db.session.remove()
    ticks(ctx["base"], timedelta(hours=3), timedelta(hours=4))


def _refund_check(ctx: dict) -> tuple[int, int, int, str]:
    made = sandbox_rows(ctx["account"], "refund")
    settled = sum(row["amount_minor"] for row in made if not row.get("failure"))
    refunds = db.session.scalars(select(Refund).where(Refund.payment_id == ctx["payment"])).all()
    payment = db.session.get(Payment, ctx["payment"])
    shown = {r.processor_ref for r in refunds if r.status == "succeeded"}
    lost = len({row["ref"] for row in made} ^ shown) + sum(r.status == "pending" for r in refunds)
    lost += (payment.refunded_minor != settled) + (payment.refund_reserved_minor != payment.refunded_minor)
    doubled = max(len(made) - 1, 0) + max(len(refunds) - 1, 0)
    ledger = abs(ledger_sum(ctx["account"], "refund", "refund_failure") + settled)
    detail = (f"sandbox={[(r['ref'], r['amount_minor']) for r in made]} "
              f"kassa={[(r.processor_ref, r.status, r.amount_minor) for r in refunds]} "
              f"reserved={payment.refund_reserved_minor} refunded={payment.refunded_minor}")
    return lost, doubled, ledger, detail


def test_h5_refund_survives_a_crash_at_every_step(app, faults):  # noqa: F811
    """A refund dies at each point (the reported case: the sandbox made it, Kassa recorded it failed): after
    recovery the processor made exactly one refund, Kassa shows exactly that one as succeeded, the payment's
    reservation and refunded amount equal it (F6), and the ledger's refund entries equal it. Trials alternate a
    full and a partial refund (a full one sent again would be refused as too large, and recorded failed)."""
    run_matrix(faults, "refund", _refund_setup, _refund_act, _refund_recover, _refund_check).report()


def test_h5_refund_survives_kill_9_at_every_step(app, faults, database_url):  # noqa: F811
    """The same points, each hit by a real `kill -9`: the refund runs in a child process (tests/support/
    crash_child.py) that kills itself there, with no cleanup and its connections cut mid-transaction."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def crash_run(ctx: dict, kind: str, n: int) -> str | None:
        db.session.remove()
        child = subprocess.run(
            [sys.executable, "-m", "tests.support.crash_child", database_url, kind, str(n), "refund",
             str(ctx["user"]), str(ctx["payment"]), ctx["amount"], ctx["key"]],
            cwd=root, capture_output=True, text=True, timeout=120, check=False)
        assert child.returncode in (0, -signal.SIGKILL), child.stderr[-2000:]
        killed = child.returncode == -signal.SIGKILL
        deaths.append((kind, killed))
        return "killed" if killed else None

    deaths: list[tuple[str, bool]] = []
    tally = run_matrix(faults, "refund (kill -9)", _refund_setup, _refund_act, _refund_recover, _refund_check,
                       trials=1, crash_run=crash_run)
    # Every point but "lost" (a lost answer is no crash: the request carries on) really killed the child.
    assert [kind for kind, killed in deaths if not killed] == ["lost"], deaths
    tally.report()


# -- dispute answer -------------------------------------------------------------------------------------------


def test_h5_dispute_answer_survives_a_crash_at_every_step(app, faults):  # noqa: F811
    """Submitting evidence (trials alternate with accepting) dies at each point: after recovery (the tick settles
    the answer from the processor's record, or sends it again; the merchant answers once more only if nothing
    was kept) the processor got exactly one answer, Kassa shows the processor's outcome, and the ledger's
    dispute entries equal it."""
    from kassa.services.disputes import disputes

    def setup() -> dict:
        owner, link = make_shop()
        user_id, account_id, buyer = owner.id, owner.account_id, app.test_client()
        response = submit_checkout(buyer, start_checkout(buyer, link.slug), card_number=FRAUD_CARD)
        assert response.status_code == 303, response.status_code
        ticks(now(), timedelta(0))  # the sandbox's dispute.created
        dispute = db.session.scalar(select(Dispute).where(Dispute.account_id == account_id))
        actor = Actor(user=db.session.get(User, user_id), account_id=account_id)
        disputes.save_draft(actor, dispute.id, "evidence", {"additional_information": "winning_evidence"})
        setup.n = getattr(setup, "n", 0) + 1
        return {"user": user_id, "account": account_id, "dispute": dispute.id, "ref": dispute.processor_ref,
                "answer": "accept" if setup.n % 2 == 0 else "evidence", "base": now()}

    def act(ctx: dict) -> None:
        actor = Actor(user=db.session.get(User, ctx["user"]), account_id=ctx["account"])
        try:
            if ctx["answer"] == "accept":
                disputes.accept(actor, ctx["dispute"])
            else:
                disputes.submit_evidence(actor, ctx["dispute"])
        except disputes.Conflict:
            pass  # the processor's answer was lost: the merchant is told it is being checked

    def recover(ctx: dict) -> None:
        ticks(ctx["base"], *RECOVERY)
        dispute = db.session.get(Dispute, ctx["dispute"])
        if dispute.status == "needs_response" and dispute.answer is None:
            with time_machine.travel(ctx["base"] + timedelta(hours=2), tick=False):
                act(ctx)  # nothing was kept of the click: the merchant answers again
            db.session.remove()
        ticks(ctx["base"], timedelta(hours=3), timedelta(days=1))

    def check(ctx: dict) -> tuple[int, int, int, str]:
        from kassa.processors.registry import _country_lookup
        from kassa.processors.sandbox import SandboxProcessor
        from kassa.processors.sandbox_db_store import DbSandboxStore

        sandbox = SandboxProcessor(DbSandboxStore(db.engine), _country_lookup(db.engine))
        seen = sandbox.lookup_dispute(ctx["account"], ctx["ref"], now() + timedelta(days=30))
        decisions = [row for row in sandbox_rows(ctx["account"], "event") if row["object_ref"] == ctx["ref"]
                     and row["type"] in ("dispute.won", "dispute.lost")]
        dispute = db.session.get(Dispute, ctx["dispute"])
        expected = "lost" if ctx["answer"] == "accept" else "won"
        lost = (seen.status != expected) + (dispute.status != seen.status)
        doubled = max(len(decisions) - 1, 0)
        amount = dispute.amount_minor
        want = -amount - dispute_fee(dispute.currency) + (amount if seen.status == "won" else 0)
        ledger = abs(ledger_sum(ctx["account"], "dispute", "dispute_fee", "dispute_reversal") - want)
        return lost, doubled, ledger, f"processor={seen.status} kassa={dispute.status} decisions={len(decisions)}"

    run_matrix(faults, "dispute answer", setup, act, recover, check).report()


# -- subscription renewal -------------------------------------------------------------------------------------


def test_h5_subscription_renewal_survives_a_crash_at_every_step(app, faults):  # noqa: F811
    """The billing tick dies at each point of a renewal: after recovery (the next ticks charge again with the
    same keys) the period was charged exactly once, recorded once, and the ledger equals the charges."""
    from kassa.services.billing.billing import bill_due_subscriptions

    def setup() -> dict:
        owner, link = subscription_shop()
        account_id = owner.account_id
        sub_id = buy(app.test_client(), link).id
        with write_transaction(db.session) as session:  # the subscription's test clock a month on: renewal due
            session.get(Subscription, sub_id).clock_offset_seconds = int(timedelta(days=31).total_seconds())
        return {"account": account_id, "sub": sub_id, "base": now()}

    def act(ctx: dict) -> None:
        bill_due_subscriptions()

    def recover(ctx: dict) -> None:
        ticks(ctx["base"], *RECOVERY)

    def check(ctx: dict) -> tuple[int, int, int, str]:
        lost, doubled, ledger, detail = charges_vs_payments(ctx["account"], 2)  # the checkout's and the renewal
        renewals = renewals_of(ctx["sub"])
        lost += sum(p.status != "succeeded" for p in renewals) + (len(renewals) < 1)
        doubled += max(len(renewals) - 1, 0)
        return lost, doubled, ledger, detail + f" renewals={[(p.id, p.status) for p in renewals]}"

    run_matrix(faults, "subscription renewal", setup, act, recover, check).report()


# -- payout ---------------------------------------------------------------------------------------------------


def test_h5_payout_survives_a_crash_at_every_step(app, faults):  # noqa: F811
    """The payout tick dies at each of its commits and around its processor call (send_payout, M2): after
    recovery each day has at most one payout, every available entry is in exactly one payout, each payout's
    amount is the sum of its entries, and all are paid."""
    from kassa.services.payouts.payouts import run_payouts

    def setup() -> dict:
        owner, link = make_shop()
        account_id, buyer = owner.account_id, app.test_client()
        assert submit_checkout(buyer, start_checkout(buyer, link.slug)).status_code == 303
        db.session.remove()
        return {"account": account_id, "base": now() + timedelta(days=7)}

    def act(ctx: dict) -> None:
        with time_machine.travel(ctx["base"], tick=False):
            run_payouts()

    def recover(ctx: dict) -> None:
        ticks(ctx["base"], timedelta(0), timedelta(minutes=5), timedelta(days=4), timedelta(days=5))

    def check(ctx: dict) -> tuple[int, int, int, str]:
        account_id = ctx["account"]
        payouts = db.session.scalars(select(Payout).where(Payout.account_id == account_id)).all()
        unpaid = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.account_id == account_id, LedgerEntry.payout_id.is_(None),
            LedgerEntry.available_on <= ctx["base"].date()))
        per_day = [p.payout_date for p in payouts]
        lost = unpaid + sum(p.status != "paid" for p in payouts) + (len(payouts) == 0)
        doubled = len(per_day) - len(set(per_day))
        ledger = 0
        for payout in payouts:
            entries = ledger_sum_of_payout(payout.id)
            ledger += abs(entries - payout.amount_minor)
        _lost, _doubled, charge_ledger, _detail = charges_vs_payments(account_id, 1)
        return lost + _lost, doubled + _doubled, ledger + charge_ledger, f"payouts={[(p.id, p.status) for p in payouts]}"

    run_matrix(faults, "payout", setup, act, recover, check).report()


def ledger_sum_of_payout(payout_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
        LedgerEntry.payout_id == payout_id, LedgerEntry.type != "payout")))


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


# -- the processor's side under concurrency -------------------------------------------------------------------


def test_h5_parallel_refunds_of_one_charge_at_the_processor_never_exceed_it(app):
    """Eight refunds of 60 % of one charge reach the sandbox at once (different keys, straight to the processor,
    no Kassa reservation in front): its one transaction per refund, the charge's row locked, lets exactly one
    through and refuses seven as too large; the charge lists exactly the one refund it made."""
    import threading

    from kassa.processors.base import ProcessorFailure
    from kassa.processors.registry import sandbox

    owner = make_merchant()
    account_id = owner.account_id
    payment = sandbox_payment(account_id, amount_minor=10_000)
    charge_ref, at = payment.processor_ref, now()
    db.session.remove()
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def refund(i: int) -> None:
        with app.app_context():
            processor = sandbox()
            barrier.wait(timeout=60)
            try:
                processor.refund(account_id, charge_ref, 6000, "USD", f"parallel-{i}", at)
                outcome = "refunded"
            except ProcessorFailure as exc:
                outcome = exc.code
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["amount_too_large"] * (threads_n - 1) + ["refunded"], outcomes
    made = sandbox_rows(account_id, "refund")
    [charge] = [row for row in sandbox_rows(account_id, "charge") if row["result"]["processor_ref"] == charge_ref]
    assert len(made) == 1 and charge["refund_refs"] == [made[0]["ref"]]
