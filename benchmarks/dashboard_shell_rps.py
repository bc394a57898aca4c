"""dashboard_shell_rps: requests/s of the logged-in dashboard home, against the limit (Q12): a bare Flask route
under the same gunicorn returning exactly the page's bytes (fetched once from the running app)."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

from benchmarks.common import (
    cpu_ms_per_request,
    emit,
    gunicorn,
    login_cookie,
    prepare_database,
    server_cpu_seconds,
    wrk_rps,
)


def main() -> dict:
    from kassa.cli import DEMO_EMAIL, DEMO_PASSWORD

    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        env = prepare_database(Path(tmp) / "instance")
        body = Path(tmp) / "dashboard.html"
        with gunicorn("wsgi:app", env) as base:
            cookie = login_cookie(base, DEMO_EMAIL, DEMO_PASSWORD)
            request = urllib.request.Request(base + "/", headers={"Cookie": cookie})
            body.write_bytes(urllib.request.urlopen(request).read())
            wrk_rps(base + "/", seconds=2, headers={"Cookie": cookie})  # warm-up
            cpu_before = server_cpu_seconds(base)
            value = wrk_rps(base + "/", seconds=5, headers={"Cookie": cookie})
            cpu_ms = (server_cpu_seconds(base) - cpu_before) * 1000 / max(1.0, value * 5)
        with gunicorn("benchmarks.baseline_app:limit_app", {"KASSA_BASELINE_BODY": str(body)}) as base:
            baseline_size = len(urllib.request.urlopen(base + "/").read())
            wrk_rps(base + "/", seconds=2)
            baseline, baseline_cpu_ms = cpu_ms_per_request(base + "/", base, seconds=5)
        size = body.stat().st_size
    return emit("dashboard_shell_rps", value, "req/s", baseline=baseline, n=None, page_bytes=size,
                baseline_bytes=baseline_size, baseline_kind="bare Flask route returning the same bytes",
                cpu_ms=round(cpu_ms, 3), baseline_cpu_ms=round(baseline_cpu_ms, 3),
                cpu_ratio=round(baseline_cpu_ms / cpu_ms, 3), load_average=round(os.getloadavg()[0], 1))


if __name__ == "__main__":
    main()
