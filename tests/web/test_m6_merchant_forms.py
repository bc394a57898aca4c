"""M6: every form of the merchant pages is a WTForms form reading the posted fields only."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from kassa.blueprints.disputes import QUESTIONS
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Dispute, Export, Pipeline, User
from tests.factories import make_merchant
from tests.support.app import page_text, run_outbox
from tests.support.checkout_flow import field_error
from tests.support.links import create_link, create_product
from tests.support.payments import bulk_payments, login, soup_of
from tests.web.test_disputes import pay_disputed
from tests.web.test_exports import csv_rows


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


# -- exports ------------------------------------------------------------------------------------------------


def _export(client, **form):
    data = {"state": "", "tab": "payments", "name": "Mine", "file_format": "csv", "language": "en", **form}
    return client.post("/exports/payments", data=data)


def _last_export() -> Export:
    db.session.rollback()
    return db.session.scalar(select(Export).order_by(Export.id.desc()))


def test_m6_an_export_with_associations_has_their_columns(client, shop):
    bulk_payments(shop.account_id, [{"amount_minor": 1000}])
    assert _export(client, columns=["amount"], associations="1").status_code == 303
    run_outbox()
    header = csv_rows(client, _last_export())[0]
    assert header == ["Gross amount", "Currency", "Associated contact", "Associated company", "Associated deal",
                      "Associated subscription"]


@pytest.mark.parametrize("value", ["0", "", "on"])
def test_m6_only_1_switches_associations_on(client, shop, value):
    bulk_payments(shop.account_id, [{"amount_minor": 1000}])
    assert _export(client, columns=["amount"], associations=value).status_code == 303
    run_outbox()
    assert csv_rows(client, _last_export())[0] == ["Gross amount", "Currency"]


def test_m6_unknown_columns_are_left_out_and_none_means_the_views_columns(client, shop):
    bulk_payments(shop.account_id, [{"amount_minor": 1000}])
    assert _export(client, state="cols=amount,status", columns=["fee", "no_such_column"]).status_code == 303
    assert _last_export().params["columns"] == ["fee"]
    assert _export(client, state="cols=amount,status", columns=["no_such_column"]).status_code == 303
    assert _last_export().params["columns"] == ["amount", "status"]


def test_m6_the_disputes_tab_exports_disputed_payments_only(client, shop):
    bulk_payments(shop.account_id, [{"amount_minor": 1000}, {"amount_minor": 2000}])
    dialog = soup_of(client.get("/exports/payments?tab=disputes&state="))
    assert dialog.select_one('input[name="tab"]')["value"] == "disputes"
    assert _export(client, tab="disputes").status_code == 303
    export = _last_export()
    assert (export.params["tab"], export.rows_total) == ("disputes", 0)
    assert _export(client, tab="refunds").status_code == 303  # an unknown tab is the payments tab
    export = _last_export()
    assert (export.params["tab"], export.rows_total) == ("payments", 2)


def test_m6_an_export_of_a_view_that_cannot_be_read_is_a_bad_request(client, shop):
    assert client.get("/exports/payments?state=sort%3Dno_such_sort").status_code == 400
    assert _export(client, state="sort=no_such_sort").status_code == 400
    assert db.session.scalar(select(Export.id)) is None


# -- the header's switches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "payments", None])
def test_m6_the_switches_go_back_to_a_same_site_page_only(client, shop, target):
    data = {"next": target} if target else {}
    for url, form in (("/preferences/test-data", {"value": "1"}), ("/preferences/language", {"language": "fr"})):
        response = client.post(url, data={**form, **data})
        assert (response.status_code, response.location) == (303, "/")
    assert client.post("/preferences/language", data={"language": "en", "next": "/payments/?page=2"}).location \
        == "/payments/?page=2"


@pytest.mark.parametrize("language", ["de", "", "EN"])
def test_m6_a_language_the_switch_does_not_offer_changes_nothing(client, shop, language):
    client.post("/preferences/language", data={"language": "nl", "next": "/"})
    response = client.post("/preferences/language", data={"language": language, "next": "/links/"})
    assert (response.status_code, response.location) == (303, "/links/")
    assert "Betaallinks" in page_text(client.get("/"))


# -- deal pipelines -----------------------------------------------------------------------------------------


def test_m6_a_pipeline_is_added_from_its_name_and_stage_lines(client, shop):
    response = client.post("/settings/pipelines", data={"name": "Workshops", "stages": "Booked, 50\n\nPaid, 100"})
    assert response.status_code == 303
    page = client.get("/settings/pipelines")
    assert "Pipeline “Workshops” created." in page_text(page)
    section = soup_of(page).find("h3", string="Workshops").parent
    assert [" ".join(li.get_text(" ").split()) for li in section.select("li")] == ["Booked (50 %)", "Paid (100 %)"]


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"name": " ", "stages": "Booked, 50"}, "name", "Enter a name for the pipeline."),
    ({"name": "x" * 101, "stages": "Booked, 50"}, "name", "Use at most 100 characters."),
    ({"name": "Workshops", "stages": "Booked, 150"}, "stages",
     "Write one stage per line as “name, win probability 0–100”."),
    ({"name": "Workshops", "stages": "Booked, ５０"}, "stages",
     "Write one stage per line as “name, win probability 0–100”."),
    ({"name": "Workshops"}, "stages", "Add at least one stage."),
])
def test_m6_a_pipeline_field_error_keeps_what_was_typed(client, shop, form, field, message):
    response = client.post("/settings/pipelines", data=form)
    assert response.status_code == 422
    assert field_error(response, field) == f"Error: {message}"
    page = soup_of(response)
    assert page.select_one('input[name="name"]')["value"] == form["name"]
    assert page.select_one('textarea[name="stages"]').get_text() == form.get("stages", "")
    assert db.session.scalar(select(Pipeline.id).where(Pipeline.is_default.is_(False))) is None


# -- products and links: archive and status -----------------------------------------------------------------


def test_m6_archive_without_a_value_archives_and_anything_but_1_restores(client, shop):
    product = create_product(client, name="Old saddle")
    assert client.post(f"/products/{product.id}/archive").status_code == 303
    db.session.refresh(product)
    assert product.archived_at is not None
    assert client.post(f"/products/{product.id}/archive", data={"archived": "yes"}).status_code == 303
    db.session.refresh(product)
    assert product.archived_at is None


@pytest.mark.parametrize("status", ["", "ACTIVE", None])
def test_m6_a_link_status_other_than_active_deactivates(client, shop, status):
    link = create_link(client, name="Seasonal")
    response = client.post(f"/links/{link.id}/status", data={"status": status} if status is not None else {})
    assert response.status_code == 303
    db.session.refresh(link)
    assert link.status == "inactive"


# -- the dispute wizard -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(QUESTIONS))
def test_m6_step_one_saves_the_questions_of_each_reason_and_only_those(client, shop, reason):
    _payment, dispute = pay_disputed(client, shop)
    with write_transaction(db.session) as session:
        session.get(Dispute, dispute.id).reason = reason
    answers = {key: f" Answer for {key} " for key in QUESTIONS[reason]}
    others = {key: "not this reason's" for key in QUESTIONS["fraudulent" if reason != "fraudulent" else "general"]}
    response = client.post(f"/disputes/{dispute.id}/counter/1", data={**others, **answers})
    assert response.status_code == 303 and response.location.endswith(f"/disputes/{dispute.id}/counter/2")
    db.session.rollback()
    assert db.session.get(Dispute, dispute.id).draft == {
        "questions": {key: f"Answer for {key}" for key in QUESTIONS[reason]}}


@pytest.mark.parametrize(("step", "go", "target"), [(1, "back", 1), (3, "back", 2), (3, "", 4), (2, "next", 3)])
def test_m6_back_goes_to_the_previous_step_and_anything_else_on(client, shop, step, go, target):
    _payment, dispute = pay_disputed(client, shop)
    response = client.post(f"/disputes/{dispute.id}/counter/{step}", data={"go": go})
    assert response.status_code == 303
    assert response.location.endswith(f"/disputes/{dispute.id}/counter/{target}")


# -- settings -----------------------------------------------------------------------------------------------


def test_m6_profile_language_is_saved_and_an_unknown_one_is_a_field_error(client, shop):
    response = client.post("/settings/profile", data={"language": "fr"})
    assert (response.status_code, response.location) == (303, "/settings/profile")
    assert db.session.get(User, shop.id).language == "fr"
    assert "Vos préférences sont enregistrées." in page_text(client.get("/settings/profile"))  # said after it
    for data in ({"language": "de"}, {}):
        response = client.post("/settings/profile", data=data)
        assert response.status_code == 200
        assert field_error(response, "language") == "Erreur : Choisissez une langue."
        db.session.rollback()
        assert db.session.get(User, shop.id).language == "fr"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_m6_remove_logo_removes_it_and_a_file_under_another_name_is_not_a_logo(client, shop):
    response = client.post("/settings/branding", data={"brand_color": "#aa3300", "logo": (io.BytesIO(_png()), "a.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    account = db.session.get(Account, shop.account_id)
    assert account.logo_path
    # An upload sent under a text field's name is not read as that field: the colour is missing.
    response = client.post("/settings/branding", data={"brand_color": (io.BytesIO(b"#112233"), "c.txt")},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Enter a colour like #2f5bd3." in field_error(response, "brand_color")
    for value in ("0", "on"):
        assert client.post("/settings/branding", data={"brand_color": "#aa3300", "remove_logo": value}).status_code == 303
        db.session.refresh(account)
        assert account.logo_path
    assert client.post("/settings/branding", data={"brand_color": "#aa3300", "remove_logo": "1"}).status_code == 303
    db.session.refresh(account)
    assert account.logo_path is None and account.brand_color == "#aa3300"


def test_m6_invoices_are_switched_off_by_an_unticked_box(client, shop):
    assert client.post("/settings/payments", data={"create_invoices": "1", "retry_days": "1, 3"}).status_code == 303
    assert db.session.get(Account, shop.account_id).create_invoices is True
    assert client.post("/settings/payments", data={"retry_days": "1, 3"}).status_code == 303
    db.session.rollback()
    assert db.session.get(Account, shop.account_id).create_invoices is False
