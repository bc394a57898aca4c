"""dashboard_shell_rps: requests/s of the logged-in dashboard home, against a bare-template baseline."""

from __future__ import annotations

import tempfile
import urllib.request
from pathlib import Path

from benchmarks.common import emit, gunicorn, login_cookie, prepare_database, wrk_rps


def main() -> dict:
    from kassa.cli import DEMO_EMAIL, DEMO_PASSWORD

    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        env = prepare_database(Path(tmp) / "instance")
        with gunicorn("wsgi:app", env) as base:
            cookie = login_cookie(base, DEMO_EMAIL, DEMO_PASSWORD)
            request = urllib.request.Request(base + "/", headers={"Cookie": cookie})
            size = len(urllib.request.urlopen(request).read())
            wrk_rps(base + "/", seconds=2, headers={"Cookie": cookie})  # warm-up
            value = wrk_rps(base + "/", seconds=5, headers={"Cookie": cookie})
        with gunicorn("benchmarks.baseline_app:app", {"KASSA_BASELINE_BYTES": str(size)}) as base:
            baseline_size = len(urllib.request.urlopen(base + "/").read())
            wrk_rps(base + "/", seconds=2)
            baseline = wrk_rps(base + "/", seconds=5)
    return emit("dashboard_shell_rps", value, "req/s", baseline=baseline, n=None,
                page_bytes=size, baseline_bytes=baseline_size)


if __name__ == "__main__":
    main()
