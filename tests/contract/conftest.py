"""The processor contract suite (M2): every processor Kassa can move money with passes the same tests.

`processor` runs each test once per entry of PROCESSORS, inside the app (as services call processors), so on
SQLite and on PostgreSQL. Today that is the sandbox, whose memory is the app's database. Stripe (K13, next
issue) adds its entry here: a factory returning a `StripeProcessor` on localstripe with a fixture transport."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kassa.processors.base import Processor


def _sandbox() -> Processor:
    from kassa.processors.registry import sandbox

    return sandbox()


PROCESSORS: dict[str, Callable[[], Processor]] = {
    "sandbox": _sandbox,
    # "stripe": _stripe,  (K13: StripeProcessor on localstripe, through a fixture transport)
}


@pytest.fixture(params=sorted(PROCESSORS))
def processor(request: pytest.FixtureRequest, app) -> Processor:
    return PROCESSORS[request.param]()
