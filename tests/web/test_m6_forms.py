"""M6: every form of the merchant pages is a WTForms form reading the posted fields only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Export
from tests.factories import make_merchant
from tests.support.checkout_flow import field_error
from tests.support.payments import login


@pytest.fixture
def shop(client):
    owner = make_merchant(company="Form Shop")
    login(client, owner)
    return owner


@pytest.mark.parametrize("body", ['[1, 2]', '{"from": 5, "to": [1]}', '7'])
def test_m6_a_json_body_is_not_read_as_a_form(client, shop, body):
    """Flask-WTF reads a JSON body when no form field came; a list or a number there was a 500."""
    response = client.post("/reports/", data=body, content_type="application/json")
    # Read as a post without fields: the defaults are asked for, as an empty form post does.
    assert response.status_code == client.post("/reports/", data={}).status_code == 303


# -- reports ------------------------------------------------------------------------------------------------


REPORT = {"kind": "balance", "file_format": "csv", "from": "2027-02-01", "to": "2027-02-28", "language": "en"}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("kind", "ledger", "Choose a report."), ("kind", "", "Choose a report."),
    ("file_format", "pdf", "Choose CSV, XLS or XLSX."), ("language", "de", "Choose a language."),
])
def test_m6_a_report_option_that_is_not_offered_is_a_field_error(client, shop, field, value, message):
    response = client.post("/reports/", data={**REPORT, field: value})
    assert response.status_code == 422
    assert field_error(response, field) == f"Error: {message}"
    assert db.session.scalar(select(Export.id)) is None


def test_m6_a_report_with_headers_in_another_language_is_queued_in_it(client, shop):
    response = client.post("/reports/", data={**REPORT, "language": "fr"})
    assert response.status_code == 303
    assert db.session.scalar(select(Export.language)) == "fr"
