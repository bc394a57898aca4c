"""Segments (W3, W8, W5): contacts by their payments' properties in the payments index's own filter language,
built with the index's filter builder; live counts, a member list with the payments' properties as columns,
pagination, export as CSV/XLSX through the export machinery; workflow-made members; delete after a
confirmation (refused while a workflow uses the segment); another merchant's segment is a 404."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Contact, Export, Payment, Segment, SegmentMember, Workflow
from kassa.services.backoffice import segments
from kassa.services.crm.crm import find_or_create_contact
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import log_in, page_text, run_outbox
from tests.support.links import errors_of


def paid(owner, email: str, **fields) -> Payment:
    """A payment of the contact with this email (the contact made as checkout makes it)."""
    payment = make_payment(owner.account_id, email=email, **fields)
    with write_transaction(db.session) as session:
        contact = find_or_create_contact(owner.account_id, payment.mode, email, first_name=email.split("@")[0].title())
        session.get(Payment, payment.id).contact_id = contact.id
    return payment


def builder_form(name: str, conditions: list[tuple[str, str, list[str] | str]], **extra) -> dict:
    """The editor's post: the filter builder's rows (one group) as the index's panel posts them."""
    data: dict = {"name": name, "action": "apply", **extra}
    for i, (prop, op, values) in enumerate(conditions):
        data[f"c-0-{i}-prop"], data[f"c-0-{i}-op"] = prop, op
        if isinstance(values, list):
            data[f"c-0-{i}-vals"] = values
        else:
            data[f"c-0-{i}-v1"] = values
    return data


def create(client, name: str, conditions, **extra) -> Segment:
    response = client.post("/segments/new", data=builder_form(name, conditions, **extra))
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    return db.session.scalars(select(Segment).order_by(Segment.id.desc())).first()


def test_w3_card_payers_segment_with_live_counts_and_payment_properties(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    paid(owner, "ada@example.com", method="card", amount_minor=2500)
    paid(owner, "ada@example.com", method="card", amount_minor=1000, currency="EUR")
    later = now() + timedelta(minutes=5)
    paid(owner, "ada@example.com", method="ach", amount_minor=500, created_at=later)  # one match is enough
    paid(owner, "bob@example.com", method="ach", amount_minor=4000)
    paid(owner, "cy@example.com", method="card", status="failed")  # a failed card payment matches too

    segment = create(client, "Card payers", [("method", "any_of", ["card"])])
    assert segment.criteria == [[["method", "any_of", ["card"]]]]  # W5: the index's filter as it stores it
    assert segments.count_members(segment) == 2

    listing = page_text(client.get("/segments/"))
    assert "Card payers" in listing and "2" in listing
    page = page_text(client.get(f"/segments/{segment.id}"))
    assert "ada@example.com" in page and "cy@example.com" in page and "bob@example.com" not in page
    assert "at least one payment" in page  # the UI says how membership works
    # Ada: 3 successful payments, totals per currency net of refunds, last method (the ACH one was last).
    assert "$30.00" in page and "€10.00" in page and "Bank debit (ACH)" in page
    # Live: a new card payment puts Bob in the segment without saving it again.
    paid(owner, "bob@example.com", method="card")
    assert "bob@example.com" in page_text(client.get(f"/segments/{segment.id}"))
    assert "3" in page_text(client.get("/segments/"))


def test_w5_segment_uses_dispute_properties_and_or_groups(client):
    """D7: a dispute property works in a segment like in the index; two groups are OR'ed."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    disputed = paid(owner, "dee@example.com", amount_minor=9000)
    with write_transaction(db.session) as session:
        payment = session.get(Payment, disputed.id)
        payment.dispute_reason, payment.dispute_amount_minor = "fraudulent", 9000
    paid(owner, "sepa@example.com", method="sepa")
    paid(owner, "plain@example.com")
    data = builder_form("Disputes or SEPA", [("dispute_reason", "any_of", ["fraudulent"])])
    data.update({"c-1-0-prop": "method", "c-1-0-op": "any_of", "c-1-0-vals": ["sepa"]})
    response = client.post("/segments/new", data=data)
    assert response.status_code == 303, errors_of(response)
    segment = db.session.scalars(select(Segment)).one()
    members = page_text(client.get(f"/segments/{segment.id}"))
    assert "dee@example.com" in members and "sepa@example.com" in members and "plain@example.com" not in members


def test_w3_builder_buttons_and_bad_input_change_nothing(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    # The builder's buttons re-render the form (add a condition, a group, remove one, refresh, clear).
    for action, expected in (("add_condition:0", 'name="c-0-1-prop"'), ("add_group", 'name="c-1-0-prop"')):
        body = client.post("/segments/new", data=builder_form("S", [("method", "any_of", ["card"])], action=action))
        assert body.status_code == 200 and expected in body.get_data(as_text=True)
    body = client.post("/segments/new", data={**builder_form("S", [("method", "any_of", ["card"]),
                                                                    ("amount", "gt", "5")]), "action": "remove:0-0"})
    assert 'name="c-0-1-prop"' not in body.get_data(as_text=True) and "c-0-0-op" in body.get_data(as_text=True)
    refreshed = client.post("/segments/new", data={**builder_form("S", [("amount", "gt", "")]), "action": "refresh"},
                            headers={"HX-Request": "true"})
    assert refreshed.status_code == 200 and 'id="segment-builder"' in refreshed.get_data(as_text=True)
    assert "<html" not in refreshed.get_data(as_text=True)  # htmx gets the builder alone
    cleared = client.post("/segments/new", data={**builder_form("S", [("amount", "gt", "5")]), "action": "clear"})
    assert 'value="5"' not in cleared.get_data(as_text=True)
    # Errors at the field, nothing saved: no name, a condition without its value, too long a name.
    for data, field in ((builder_form("", [("method", "any_of", ["card"])]), "name"),
                        (builder_form("Big", [("amount", "gt", "lots")]), "c-0-0"),
                        (builder_form("x" * 121, [("method", "any_of", ["card"])]), "name")):
        response = client.post("/segments/new", data=data)
        shown = {**errors_of(response), **({"c-0-0": 1} if 'id="c-0-0-error"' in response.get_data(as_text=True) else {})}
        assert response.status_code == 422 and field in shown, shown
    assert db.session.scalars(select(Segment)).all() == []
    # "Create segment from this filter": the editor opens with the index's filter in the builder.
    opened = client.get('/segments/new?adv=[[["method","any_of",["ach"]]]]').get_data(as_text=True)
    assert 'value="ach" checked' in opened


def test_w3_edit_manual_only_and_workflow_members(client):
    """A segment without conditions holds only the contacts workflows add; "removed" beats matching payments."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    ada = paid(owner, "ada@example.com", method="card")
    bob = paid(owner, "bob@example.com", method="ach")
    segment = create(client, "VIP", [("method", "any_of", ["card"])])
    response = client.post(f"/segments/{segment.id}/edit",
                           data=builder_form("VIP buyers", [("method", "any_of", ["card"])], manual_only="1"))
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    segment = db.session.get(Segment, segment.id)
    assert (segment.name, segment.criteria, segments.count_members(segment)) == ("VIP buyers", [], 0)
    assert "only the contacts workflows add" in page_text(client.get(f"/segments/{segment.id}"))
    with write_transaction(db.session):
        segments.mark(segment.id, bob.contact_id, "added", None)
    assert segments.contains(segment.id, bob.contact_id) and not segments.contains(segment.id, ada.contact_id)
    # Back to card payers: Ada matches; removing her keeps her out even though her payment matches.
    client.post(f"/segments/{segment.id}/edit", data=builder_form("VIP buyers", [("method", "any_of", ["card"])]))
    db.session.rollback()
    segment = db.session.get(Segment, segment.id)
    assert segments.count_members(segment) == 2
    with write_transaction(db.session):
        segments.mark(segment.id, ada.contact_id, "removed", None)
    assert not segments.contains(segment.id, ada.contact_id) and segments.count_members(segment) == 1
    with write_transaction(db.session):
        segments.mark(segment.id, ada.contact_id, "added", None)  # the latest action wins
    assert segments.contains(segment.id, ada.contact_id)
    assert db.session.scalar(select(SegmentMember.state).where(SegmentMember.contact_id == ada.contact_id)) == "added"


def test_w8_pagination_and_empty_state(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    segment = create(client, "Card", [("method", "any_of", ["card"])])
    assert "No contacts in this segment yet" in page_text(client.get(f"/segments/{segment.id}"))
    assert "No segments yet" not in page_text(client.get("/segments/"))
    for n in range(segments.PAGE_SIZE + 2):
        paid(owner, f"p{n:02d}@example.com")
    first, second = client.get(f"/segments/{segment.id}"), client.get(f"/segments/{segment.id}?page=2")
    assert "p00@example.com" in page_text(first) and "p26@example.com" not in page_text(first)
    assert "p26@example.com" in page_text(second) and "p00@example.com" not in page_text(second)
    assert "27 contacts" in page_text(first) and 'rel="next"' in first.get_data(as_text=True)
    assert "p26@example.com" in page_text(client.get(f"/segments/{segment.id}?page=99"))  # past the end: last


def test_w8_export_csv_and_xlsx_through_the_export_machinery(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    paid(owner, "ada@example.com", method="card", amount_minor=2500)
    paid(owner, "ada@example.com", method="card", amount_minor=1050, currency="EUR")
    paid(owner, "bob@example.com", method="ach")
    segment = create(client, "Card payers", [("method", "any_of", ["card"])])
    bad = client.post(f"/segments/{segment.id}/export", data={"file_format": "pdf"})
    assert bad.status_code == 422 and "file_format" in errors_of(bad)
    assert db.session.scalars(select(Export)).all() == []
    for file_format in ("csv", "xlsx"):
        response = client.post(f"/segments/{segment.id}/export", data={"file_format": file_format})
        assert response.status_code == 303 and "/exports/" in response.headers["Location"]
    run_outbox()
    db.session.rollback()
    csv_export, xlsx_export = db.session.scalars(select(Export).order_by(Export.id)).all()
    assert (csv_export.kind, csv_export.status, csv_export.rows_total) == ("segment", "done", 2)
    body = client.get(f"/exports/{csv_export.id}/download").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["First name", "Last name", "Email", "Payments", "Total paid", "Currency", "Last payment",
                       "Payment method"]
    assert [(r[2], r[3], r[4], r[5]) for r in rows[1:]] == [("ada@example.com", "1", "10.50", "EUR"),
                                                          ("ada@example.com", "1", "25.00", "USD")]
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"/exports/{xlsx_export.id}/download").data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[1][2] == "ada@example.com" and float(values[2][4]) == 25.0  # numbers stay numbers


def test_w3_delete_after_confirmation_refused_while_a_workflow_uses_it(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    segment = create(client, "Card", [("method", "any_of", ["card"])])
    assert "Delete Card?" in page_text(client.get(f"/segments/{segment.id}/delete"))
    with write_transaction(db.session) as session:
        session.add(Workflow(account_id=owner.account_id, name="Uses it", trigger="payment.succeeded", criteria=[],
                             actions=[{"type": "segment_add", "segment_id": segment.id}]))
    refused = client.post(f"/segments/{segment.id}/delete")
    assert refused.status_code == 422 and "Uses it" in page_text(refused)
    with write_transaction(db.session) as session:
        session.execute(Workflow.__table__.delete())
    segment_id = segment.id
    assert client.post(f"/segments/{segment_id}/delete").status_code == 303
    db.session.rollback()
    assert db.session.get(Segment, segment_id) is None and db.session.scalars(select(Contact)).all() == []


def test_w3_another_merchants_segment_is_a_404(client):
    theirs = make_merchant()
    with write_transaction(db.session) as session:
        segment = Segment(account_id=theirs.account_id, name="Theirs", criteria=[])
        session.add(segment)
        session.flush()
        segment_id = segment.id
    mine = make_merchant()
    log_in(client, mine.email, PASSWORD)
    for path in (f"/segments/{segment_id}", f"/segments/{segment_id}/edit", f"/segments/{segment_id}/delete"):
        assert client.get(path).status_code == 404
    assert client.post(f"/segments/{segment_id}/export", data={"file_format": "csv"}).status_code == 404
    assert client.post(f"/segments/{segment_id}/delete").status_code == 404
    assert "Theirs" not in page_text(client.get("/segments/"))
