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


# One test, not three over a shared fixture: xdist was seen giving the module's tests to both workers, which then
# each ran the load (twice the time, and each run loading the machine under the other).
def _finished(tmp_path_factory) -> g3_load.Run:
    from kassa.production import nginx_binary

    if nginx_binary() is None:  # a failure, never a skip: make test installs it (prod-deps)
        pytest.fail("nginx is required for the production profile tests: apt-get install -y nginx")
    return g3_load.run(tmp_path_factory.mktemp("g3"), seconds=25, buyers=3, merchants=1)


def test_g3_load_with_faults_loses_and_doubles_nothing_and_clients_see_errors_only_during_faults(tmp_path_factory):
    finished = _finished(tmp_path_factory)

    # After load and faults, every payment, refund and email adds up.
    checked = finished.invariants
    assert checked["passed"], checked.get("failure")
    # the run did what it is for: buyers paid, the merchant refunded, receipts went out
    assert checked["succeeded"] > 0 and checked["refunds"] > 0 and checked["emails"] >= checked["succeeded"]

    # Every fault was injected under load, and the profile came back.
    faults = finished.report["faults"]
    assert list(faults) == list(g3_load.FAULTS)
    assert all(fault["requests"] > 0 for fault in faults.values()), faults  # each hit requests in flight
    served = finished.report["types"]
    for kind in ("checkout_open", "checkout_pay", "payments_filter", "payments_search", "refund_open", "refund",
                 "export"):
        assert served[kind]["n"] > served[kind]["errors"], (kind, served[kind])

    # Requests in flight at a kill or a restart may fail; nothing sent after the profile is whole again (and a
    # grace of GRACE_S) does. A killed worker is seen by no client at all.
    report = finished.report
    assert report["unexplained_errors"] == {}, (report["error_log"], report["nginx_errors"])
    assert report["faults"]["kill_worker"]["errors"] == {}, report["error_log"]
