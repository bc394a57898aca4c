"""I8: schemathesis (pinned in pyproject's dev extras) generates requests from /api/openapi.json for every
operation and sends them through the WSGI app, on SQLite and on PostgreSQL: no answer is a server error, and
every answer — 200 or error — matches the document's schema, status codes and content type. The run is
derandomized (the same requests each time) and the number of requests is printed and checked."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.payments import actor_for, sandbox_payment

EXAMPLES_PER_OPERATION = 25
# The operations are checked in parts (operation i in part i % PARTS), each part a test, so xdist spreads the
# ~80 s a database took on one worker; every operation is in exactly one part and gets all its examples.
PARTS = 4
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "100000 per second",  # one key makes every call here (I7 apart)
            "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": "100000 per second"}


@pytest.mark.parametrize("part", range(PARTS))
def test_i8_schemathesis_finds_no_server_error_and_every_answer_matches_the_document(app, capsys, part):
    owner = make_merchant()
    secret = create_key(actor_for(owner), "Schemathesis", "test")[1]
    for amount in (500, 1500, 2500):
        sandbox_payment(owner.account_id, amount_minor=amount, mode="test")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = {"Authorization": f"Bearer {secret}"}
    sent: dict[str, int] = {}
    statuses: dict[int, int] = {}
    every_operation = [result.ok() for result in schema.get_all_operations()]
    assert len(every_operation) == len(schema.raw_schema["paths"] and
                                       [m for p in schema.raw_schema["paths"].values() for m in p])
    operations = every_operation[part::PARTS]
    assert operations

    def runner(operation):
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)
            sent[operation.label] = sent.get(operation.label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        return run

    for operation in operations:
        runner(operation)()

    total = sum(sent.values())
    with capsys.disabled():
        print(f"\nI8 schemathesis part {part + 1}/{PARTS}: {total} requests over {len(sent)} of "
              f"{len(every_operation)} operations, statuses {sorted(statuses.items())}")
    assert len(sent) == len(operations) and total >= 10 * len(operations), sent
    assert statuses.get(200, 0) >= len(operations) // 2 and 401 not in statuses, statuses  # the key was used
