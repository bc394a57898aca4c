"""G3: load and faults on the production profile, the short version (about 25 s of load, ~2 minutes in all).

`benchmarks/g3_load.py` starts `flask kassa run-prod` on a PostgreSQL cluster, a Redis and an SMTP server of its
own (never the suite's shared ones: restarting those would break the tests running beside this one). Buyers
pay a test link by card through nginx and the checkout form, a merchant filters the payments index,
refunds part of a payment and exports the filtered view (built by a worker), while one app server and one worker are killed with SIGKILL and Redis and
PostgreSQL are restarted. Afterwards: every payment charged once, every refund within what was paid, every
email sent once, every export done, the ledger equal to the processor, payouts adding up; and the errors clients saw all fall
inside a fault. Latencies are reported by `make load`, never asserted here."""

from __future__ import annotations

import pytest

from benchmarks import g3_load

# One profile for the module, on one xdist worker (make test runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("g3_load")


# Session scope, not module: xdist may run another module's test between this group's tests on the same
# worker, and a module fixture would then be set up twice (seen in CI: two load runs, two profiles).
@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> g3_load.Run:
    from kassa.production import nginx_binary

    if nginx_binary() is None:  # a failure, never a skip: make test installs it (prod-deps)
        pytest.fail("nginx is required for the production profile tests: apt-get install -y nginx")
    return g3_load.run(tmp_path_factory.mktemp("g3"), seconds=25, buyers=3, merchants=1)


def test_g3_after_load_and_faults_every_payment_refund_and_email_adds_up(finished):
    checked = finished.invariants
    assert checked["passed"], checked.get("failure")
    # the run did what it is for: buyers paid, the merchant refunded, receipts went out
    assert checked["succeeded"] > 0 and checked["refunds"] > 0 and checked["emails"] >= checked["succeeded"]


def test_g3_every_fault_was_injected_under_load_and_the_profile_came_back(finished):
    faults = finished.report["faults"]
    assert list(faults) == list(g3_load.FAULTS)
    assert all(fault["requests"] > 0 for fault in faults.values()), faults  # each hit requests in flight
    served = finished.report["types"]
    for kind in ("checkout_open", "checkout_pay", "payments_filter", "payments_search", "refund_open", "refund",
                 "export"):
        assert served[kind]["n"] > served[kind]["errors"], (kind, served[kind])


def test_g3_clients_see_errors_only_while_a_fault_lasts(finished):
    """Requests in flight at a kill or a restart may fail; nothing sent after the profile is whole again
    (and a grace of GRACE_S) does. A killed worker is seen by no client at all."""
    report = finished.report
    assert report["unexplained_errors"] == {}, (report["error_log"], report["nginx_errors"])
    assert report["faults"]["kill_worker"]["errors"] == {}, report["error_log"]
