"""`make bench`: run every benchmark module and print one JSON line each."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "benchmarks.dashboard_shell_rps",
    "benchmarks.receipt_pdf_ms",
    "benchmarks.checkout_bench",
    "benchmarks.payments_index",
    "benchmarks.payments_search",
    "benchmarks.dashboard_bench",  # P8: the revenue dashboard at 1M payments (its dataset built once, kept)
    "benchmarks.api_bench",
    "benchmarks.api_checkout_sessions_bench",  # I2: an API checkout session's page against the cached page
    "benchmarks.billing_run",
    "benchmarks.exports_bench",
    "benchmarks.webhooks_bench",
    "benchmarks.webhook_deliveries_bench",  # I6: outgoing webhooks per second from one worker
    "benchmarks.workflows_bench",  # W6: workflow evaluation, events/s with 20 workflows on
    "benchmarks.stripe_confirmation_bench",
    "benchmarks.g3_load",  # G3: two minutes of load with the four faults (also `make load`)
]


def main(names: list[str]) -> int:
    failed = 0
    for module_name in BENCHMARKS:
        if names and module_name.rsplit(".", 1)[-1] not in names:
            continue
        try:
            importlib.import_module(module_name).main()
        except Exception as exc:  # report and carry on: one broken figure must not hide the others
            failed += 1
            print(f'{{"bench": "{module_name}", "error": "{type(exc).__name__}: {exc}"}}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
