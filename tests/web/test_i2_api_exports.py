"""I2: exports by API (Kassa's own `/api/kassa/exports`): the payments the index's filter language selects, of the
key's account and mode only, built by the worker as the exports page's (X1); the status and progress while it
runs, the file once done. An export is requested by a member or by a key, exactly one of the two (migration
0042). Every answer held to the operation's schema (I5); another account's or the other mode's export is
`resource_missing`, a restricted key needs the `exports` scope (I1), bad input is a 400 naming the parameter."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Export
from kassa.services.api import endpoints
from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.app import page_text, run_outbox
from tests.support.payments import actor_for, bulk_payments, login


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per second", "KASSA_API_LIVE_RATE_LIMIT": "1000 per second"}


@pytest.fixture
def owner(app):
    return make_merchant(company="Export Shop")


class Api:
    def __init__(self, client, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def call(self, operation: str, method: str, path: str, **kwargs):
        response = self.client.open(f"/api{path}", method=method, headers=self.headers, **kwargs)
        body = None if endpoints.BY_NAME[operation].files and response.status_code == 200 else response.json
        errors = endpoints.response_errors(operation, response.status_code, body)
        assert errors == [], (path, response.status_code, errors)
        return response


def api_for(client, user, mode: str = "test", scopes: dict | None = None) -> Api:
    return Api(client, create_key(actor_for(user), f"Books {mode}", mode, scopes)[1])


@pytest.fixture
def api(client, owner):
    return api_for(client, owner)


def seed(account_id: int, mode: str = "test", n: int = 12, email: str = "buyer") -> None:
    """`n` payments, amounts 10.00, 11.00, …; every third one failed."""
    start = now() - timedelta(days=1)
    bulk_payments(account_id, [
        {"amount_minor": 1000 + 100 * i, "created_at": start + timedelta(minutes=i), "mode": mode,
         "buyer_email": f"{email}{i:03d}@example.com", "status": "failed" if i % 3 == 0 else "succeeded",
         "display_status": "failed" if i % 3 == 0 else "succeeded"}
        for i in range(n)])


def exports_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Export))


def emails_in_csv(data: bytes) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return {row["Contact email"] for row in rows}


def test_i2_an_export_holds_exactly_what_the_filter_selects_of_the_keys_account_and_mode(app, api, owner):
    seed(owner.account_id)
    seed(owner.account_id, mode="live", email="live")
    seed(make_merchant(company="Theirs").account_id, email="theirs")
    groups = [[["status", "any_of", ["failed"]]], [["amount", "gt", ["19"]]]]  # failed OR over 19.00
    created = api.call("create_export", "POST", "/kassa/exports", data={"filter": json.dumps(groups)})
    assert created.status_code == 200, created.json
    body = created.json
    assert body["object"] == "kassa.export" and body["id"].startswith("exp_")
    assert (body["status"], body["format"], body["file"], body["livemode"]) == ("queued", "csv", None, False)
    expected = {f"buyer{i:03d}@example.com" for i in range(12) if i % 3 == 0 or 1000 + 100 * i > 1900}
    assert body["rows_total"] == len(expected) and body["rows_done"] == 0 and body["progress"] == 0
    early = api.call("export_file", "GET", f"/kassa/exports/{body['id']}/file")
    assert early.status_code == 400 and early.json["error"]["code"] == "export_not_ready"

    run_outbox()
    done = api.call("export", "GET", f"/kassa/exports/{body['id']}").json
    assert (done["status"], done["progress"], done["rows_done"]) == ("done", 100, len(expected))
    assert done["file"] == f"/kassa/exports/{body['id']}/file" and done["size_bytes"] > 0
    download = api.call("export_file", "GET", f"/kassa/exports/{body['id']}/file")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "no-store" in download.headers["Cache-Control"]
    assert emails_in_csv(download.data) == expected

    row = db.session.get(Export, int(body["id"][4:]))
    assert row.user_id is None and row.api_key_id is not None  # I2: the key asked, not a member


def test_i2_an_xlsx_export_without_a_filter_is_every_payment_of_the_mode(app, client, owner):
    seed(owner.account_id, mode="live", n=5, email="live")
    seed(owner.account_id, n=3)
    live = api_for(client, owner, "live")
    body = live.call("create_export", "POST", "/kassa/exports", data={"format": "xlsx"}).json
    assert body["livemode"] is True and body["format"] == "xlsx"
    run_outbox()
    download = live.call("export_file", "GET", f"/kassa/exports/{body['id']}/file")
    assert download.status_code == 200 and download.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(download.data)).active
    header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    column = header.index("Contact email")
    emails = {row[column] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert emails == {f"live{i:03d}@example.com" for i in range(5)}


def test_i2_the_merchant_sees_the_keys_export_on_the_exports_page(app, client, api, owner):
    seed(owner.account_id, n=2)
    api.call("create_export", "POST", "/kassa/exports", data={})
    run_outbox()
    login(client, owner)
    page = client.get("/exports/")
    assert page.status_code == 200 and "API · Books test" in page_text(page)


@pytest.mark.parametrize(("data", "param"), [
    ({"filter": "not json"}, "filter"),
    ({"filter": json.dumps([[["colour", "is", ["red"]]]])}, "filter"),
    ({"filter": json.dumps([[["amount", "gt", ["x"]]]])}, "filter"),
    ({"format": "xls"}, "format"),
    ({"format": "pdf"}, "format"),
    ({"columns": "amount"}, "columns"),
])
def test_i2_bad_export_input_is_a_400_naming_the_parameter_and_exports_nothing(api, data, param):
    before = exports_count()
    response = api.call("create_export", "POST", "/kassa/exports", data=data)
    assert response.status_code == 400 and response.json["error"]["param"] == param
    assert exports_count() == before


def test_i2_another_accounts_or_modes_or_a_members_export_is_missing(app, client, api, owner):
    seed(owner.account_id, n=2)
    mine = api.call("create_export", "POST", "/kassa/exports", data={}).json["id"]
    theirs_owner = make_merchant(company="Theirs")
    theirs = api_for(client, theirs_owner).call("create_export", "POST", "/kassa/exports", data={}).json["id"]
    run_outbox()
    live = api_for(client, owner, "live")
    with write_transaction(db.session) as session:  # a member's export, from the exports page
        member = Export(account_id=owner.account_id, user_id=owner.id, kind="payments", name="Mine",
                        file_format="csv", params={"modes": ["test"]}, download_token="member-token")
        session.add(member)
        session.flush()
        member_id = f"exp_{member.id}"
    for caller, export_id in ((api, theirs), (live, mine), (api, member_id), (api, "exp_x"), (api, "pi_1")):
        for operation, path in (("export", f"/kassa/exports/{export_id}"),
                                ("export_file", f"/kassa/exports/{export_id}/file")):
            response = caller.call(operation, "GET", path)
            assert response.status_code == 404 and response.json["error"]["code"] == "resource_missing", path
    assert api.call("export_file", "GET", f"/kassa/exports/{mine}/file").status_code == 200


def test_i2_a_restricted_key_needs_the_exports_scope(client, owner):
    payments_only = api_for(client, owner, scopes={"payments": "read"})
    assert payments_only.call("create_export", "POST", "/kassa/exports", data={}).status_code == 403
    reader = api_for(client, owner, scopes={"exports": "read"})
    assert reader.call("create_export", "POST", "/kassa/exports", data={}).status_code == 403
    writer = api_for(client, owner, scopes={"exports": "write"})
    made = writer.call("create_export", "POST", "/kassa/exports", data={}).json["id"]
    assert reader.call("export", "GET", f"/kassa/exports/{made}").status_code == 200


def test_i2_an_export_is_requested_by_a_member_or_a_key_never_neither(app, owner):
    """Migration 0042: exports.user_id is nullable now, and a check holds exactly one of user_id, api_key_id."""
    key = create_key(actor_for(owner), "Books", "test")[0]
    for user_id, api_key_id in ((None, None), (owner.id, key.id)):
        with pytest.raises(IntegrityError), write_transaction(db.session) as session:
            session.add(Export(account_id=owner.account_id, user_id=user_id, api_key_id=api_key_id,
                               kind="payments", name="x", file_format="csv", params={},
                               download_token=f"t-{user_id}-{api_key_id}"))
        db.session.rollback()
