"""What the test run requires: under CI=true, PostgreSQL and Chromium are mandatory, never skipped."""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("KASSA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("KASSA_TEST_CHROMIUM", "/usr/bin/chromium")


def database_backends() -> list[str]:
    """Backends every DB test runs on. Outside CI a developer may narrow it with KASSA_TEST_DBS=sqlite."""
    wanted = [b.strip() for b in os.environ.get("KASSA_TEST_DBS", "sqlite,postgresql").split(",") if b.strip()]
    if IN_CI and "postgresql" not in wanted:
        raise RuntimeError("CI must test PostgreSQL: KASSA_TEST_DBS may not leave it out under CI=true")
    unknown = set(wanted) - {"sqlite", "postgresql"}
    if unknown:
        raise RuntimeError(f"unknown KASSA_TEST_DBS entries: {sorted(unknown)}")
    return wanted


def browser_tests_enabled() -> bool:
    if IN_CI:
        return True
    return os.environ.get("KASSA_TEST_BROWSER", "1") != "0"
