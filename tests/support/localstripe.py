"""localstripe as a pytest fixture (K13): a subprocess on 127.0.0.1, a free port, persistence off.

It never skips: a contract run that cannot start its Stripe double fails, under CI=true and everywhere else."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 20.0  # seconds: the subprocess imports aiohttp and localstripe, then serves


def _ready(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/balance", headers={"Authorization": "Bearer sk_test_kassa"})
    try:
        with urllib.request.urlopen(request, timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen) -> str:
    """Stop localstripe and return what it wrote on stderr (why it failed, when it did)."""
    process.terminate()
    try:
        return process.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The base address of a fresh localstripe (its store empty), stopped when the session ends."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.localstripe_server"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = process.stdout.readline().strip()
    if not port.isdigit():
        raise RuntimeError(f"localstripe did not start: {_stop(process)}")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN
    while not _ready(url):  # poll until it answers (a short pause between polls, no fixed wait)
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"localstripe did not answer on {url}: {_stop(process)}")
        time.sleep(0.05)
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture
def fresh_localstripe(localstripe_url: str) -> str:
    """localstripe with its store emptied first (DELETE /_config/data), for a test whose Kassa ids (accounts,
    subscriptions: the same 1, 2… on each database) make idempotency keys another test already sent."""
    request = urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE",
                                     headers={"Authorization": "Bearer sk_test_kassa"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    return localstripe_url
