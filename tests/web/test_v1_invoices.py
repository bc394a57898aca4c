"""V1 Invoices a merchant writes: lines (typed or from the product library, with Q1 line discounts), a customer
(contact and company), issue and due dates, notes and terms; draft → open (the number taken at finalize, from the
account's one gap-free series, also when two are finalized at once) → void with a reason; overdue read from the due
date; edit only while draft; the branded PDF in the customer's language; another merchant's invoice is a 404."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kassa.clock import account_today
from kassa.errors import Conflict
from kassa.extensions import db
from kassa.models import Account, AuditEvent, Contact, Invoice, InvoiceLine, InvoiceStatus, Product
from kassa.services.payments import invoice_states
from kassa.services.platform.counters import next_number
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in
from tests.support.checkout_flow import pdf_text
from tests.support.invoices import editor_form
from tests.support.payments import login, soup_of

PDF_COPY = Path("/tmp/v1-invoice.pdf")  # a copy to look at (pdftoppm)


def _invoices(account_id: int) -> list[Invoice]:
    db.session.rollback()
    return list(db.session.scalars(select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.id)))


def _draft(client, owner, **overrides) -> Invoice:
    response = client.post("/invoices/new", data=editor_form(**overrides))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return _invoices(owner.account_id)[-1]


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def test_v1_a_draft_invoice_has_lines_customer_dates_and_no_number(client, owner):
    assert "No invoices yet" in client.get("/invoices/").get_data(as_text=True)  # the empty state
    invoice = _draft(client, owner)
    assert invoice.status == InvoiceStatus.DRAFT.value and invoice.number is None and invoice.payment_id is None
    # 2 × 45.00 − 10 % = 81.00, + 12.50 = 93.50
    assert [(line.description, line.quantity, line.unit_amount_minor, line.discount_type, line.discount_value,
             line.amount_minor)
            for line in invoice.lines] == [("Bicycle repair", 2, 4500, "percent", 1000, 8100),
                                        ("Parts", 1, 1250, "", 0, 1250)]
    assert (invoice.amount_minor, invoice.currency) == (9350, "EUR")
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 12, 1), date(2026, 12, 31))
    contact = db.session.get(Contact, invoice.contact_id)
    assert (contact.email, contact.first_name, contact.last_name, contact.language) == (
        "anna@example.com", "Anna", "de Vries", "nl")
    assert contact.company_id == invoice.company_id is not None
    listing = client.get("/invoices/").get_data(as_text=True)
    assert "Draft" in listing and "Anna de Vries" in listing and "93.50" in listing


def test_v1_finalize_takes_the_next_number_of_the_one_series_and_locks_editing(client, owner):
    next_number(owner.account_id, "invoice")  # a per-payment invoice (R5) already took number 1
    db.session.commit()
    invoice = _draft(client, owner)
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    invoice = _invoices(owner.account_id)[-1]
    assert (invoice.status, invoice.number) == ("open", 2) and invoice.finalized_at is not None
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303  # again: a no-op
    assert _invoices(owner.account_id)[-1].number == 2
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "INV-" in page and "Open" in page
    # Edit only while draft: a POST to edit an open invoice says why and changes nothing.
    response = client.post(f"/invoices/{invoice.id}/edit", data=editor_form(**{"lines-0-unit_price": "1.00"}),
                           follow_redirects=True)
    assert "no longer a draft" in response.get_data(as_text=True)
    after = _invoices(owner.account_id)[-1]
    assert after.amount_minor == 9350 and after.lines[0].unit_amount_minor == 4500
    assert client.post(f"/invoices/{invoice.id}/delete").status_code == 303
    assert _invoices(owner.account_id)[-1].id == invoice.id  # an open invoice isn't deleted


def test_v1_void_needs_a_reason_after_a_confirmation_step(client, owner):
    invoice = _draft(client, owner)
    client.post(f"/invoices/{invoice.id}/finalize")
    confirm = client.get(f"/invoices/{invoice.id}/void")
    assert confirm.status_code == 200 and "Void invoice" in confirm.get_data(as_text=True)
    response = client.post(f"/invoices/{invoice.id}/void", data={"reason": "   "})
    assert response.status_code == 422 and "Say why" in response.get_data(as_text=True)
    assert _invoices(owner.account_id)[-1].status == "open"
    assert client.post(f"/invoices/{invoice.id}/void", data={"reason": "Sent to the wrong customer"}).status_code == 303
    voided = _invoices(owner.account_id)[-1]
    assert (voided.status, voided.void_reason) == ("void", "Sent to the wrong customer") and voided.number == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "invoice.voided", AuditEvent.object_id == str(voided.id))) == 1
    # A void invoice can't be finalized again or voided twice into something else.
    client.post(f"/invoices/{invoice.id}/finalize")
    assert _invoices(owner.account_id)[-1].status == "void"


def test_v1_a_draft_is_voided_never_but_deleted_without_leaving_a_gap(client, owner):
    draft = _draft(client, owner)
    assert client.post(f"/invoices/{draft.id}/void", data={"reason": "x"}).status_code == 303
    assert _invoices(owner.account_id)[-1].status == "draft"  # draft → void is not a move: nothing changed
    assert client.post(f"/invoices/{draft.id}/delete").status_code == 303
    assert _invoices(owner.account_id) == []
    second = _draft(client, owner)
    client.post(f"/invoices/{second.id}/finalize")
    assert _invoices(owner.account_id)[-1].number == 1


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"lines-0-unit_price": "-5"}, "lines-0-unit_price", None),
    ({"lines-0-unit_price": "99999999999999999"}, "lines-0-unit_price", None),
    ({"lines-0-quantity": "0"}, "lines-0-quantity", "Enter a quantity"),
    ({"lines-0-quantity": "١٢"}, "lines-0-quantity", "Enter a quantity"),
    ({"lines-0-discount_value": "150"}, "lines-0-discount_value", "percentage"),
    ({"lines-0-discount_type": "amount", "lines-0-discount_value": "1000.00"}, "lines-0-discount_value", None),
    ({"lines-0-discount_type": "bogus"}, "lines-0-discount_type", None),
    ({"issue_date": "2026-02-30"}, "issue_date", "Enter a date"),
    ({"due_date": "2026-11-01"}, "due_date", "before the issue date"),
    ({"due_date": "9999-12-31"}, "due_date", "ten years"),
    ({"customer_email": "not an email"}, "customer_email", None),
    ({"currency": "XXQ"}, "currency", "currency"),
    ({"language": "de"}, "language", "language"),
    ({"lines-0-description": "", "lines-1-description": ""}, "lines-0-description", "Describe"),
])
def test_v1_hostile_input_is_refused_at_its_field_keeps_what_was_typed_and_saves_nothing(client, owner, overrides,
                                                                                            field, message):
    response = client.post("/invoices/new", data=editor_form(**overrides))
    assert response.status_code == 422
    page = soup_of(response)
    error = page.select_one(f"#f-{field}-error")
    assert error is not None, f"no error at {field}"
    if message:
        assert message in error.get_text()
    # Nothing typed is lost: every posted value is back in its field.
    for name, value in editor_form(**overrides).items():
        if name == "action":
            continue
        control = page.select_one(f"[name='{name}']")
        assert control is not None, name
        shown = control.get_text() if control.name == "textarea" else (
            control.select_one("option[selected]")["value"] if control.name == "select" and
            control.select_one("option[selected]") else control.get("value", ""))
        if control.name != "select":
            assert shown == value.strip(), name
    assert _invoices(owner.account_id) == []


def test_v1_no_lines_and_too_many_lines_are_refused(client, owner):
    form = {k: v for k, v in editor_form().items() if not k.startswith("lines-")}
    response = client.post("/invoices/new", data=form)
    assert response.status_code == 422 and "at least one line" in response.get_data(as_text=True)
    many = editor_form()
    for i in range(2, 60):
        many.update({f"lines-{i}-description": f"Hour {i}", f"lines-{i}-quantity": "1",
                     f"lines-{i}-unit_price": "1.00"})
    response = client.post("/invoices/new", data=many)
    assert response.status_code == 422 and "at most 50 lines" in response.get_data(as_text=True)
    assert _invoices(owner.account_id) == []


def test_v1_lines_are_added_and_removed_without_javascript_and_with_htmx(client, owner):
    added = client.post("/invoices/new", data=editor_form(action="add_line"))
    page = soup_of(added)
    assert added.status_code == 200 and page.select_one("[name='lines-2-description']") is not None
    assert page.select_one("[name='lines-0-description']")["value"] == "Bicycle repair"  # kept
    removed = client.post("/invoices/new", data=editor_form(action="remove:0"), headers={"HX-Request": "true"})
    fragment = soup_of(removed)
    assert fragment.select_one("#editor-region") is not None and fragment.select_one("html") is None
    assert fragment.select_one("[name='lines-0-description']")["value"] == "Parts"
    assert fragment.select_one("[name='lines-1-description']") is None
    assert _invoices(owner.account_id) == []  # only Save writes


def test_v1_lines_come_from_the_product_library_and_a_foreign_product_stays_out(client, owner):
    mine = Product(account_id=owner.account_id, name="Tune-up", unit_amount_minor=3900, currency="EUR",
                   frequency="one_time")
    other = make_merchant()
    theirs = Product(account_id=other.account_id, name="Secret product", unit_amount_minor=100, currency="EUR",
                     frequency="one_time")
    db.session.add_all([mine, theirs])
    db.session.commit()
    library = client.post("/invoices/new", data=editor_form(action="open_library"))
    assert "Tune-up" in library.get_data(as_text=True) and "Secret product" not in library.get_data(as_text=True)
    picked = client.post("/invoices/new", data=editor_form(action="add_products",
                                                           library_product=[str(mine.id), str(theirs.id)]))
    page = soup_of(picked)
    assert page.select_one("[name='lines-2-description']")["value"] == "Tune-up"
    assert page.select_one("[name='lines-2-product_id']")["value"] == str(mine.id)
    assert page.select_one("[name='lines-3-description']") is None
    # A forged product id of another account is saved as a typed line, without the link to that product.
    invoice = _draft(client, owner, **{"lines-0-product_id": str(theirs.id)})
    assert invoice.lines[0].product_id is None


def test_v1_edit_a_draft_round_trips_every_value(client, owner):
    invoice = _draft(client, owner)
    form = soup_of(client.get(f"/invoices/{invoice.id}/edit"))
    assert form.select_one("[name='lines-0-unit_price']")["value"] == "45.00"
    assert form.select_one("[name='lines-0-discount_value']")["value"] == "10"
    assert form.select_one("[name='customer_email']")["value"] == "anna@example.com"
    response = client.post(f"/invoices/{invoice.id}/edit", data=editor_form(**{"lines-1-quantity": "3"}))
    assert response.status_code == 303
    assert _invoices(owner.account_id)[-1].amount_minor == 8100 + 3 * 1250
    assert len(_invoices(owner.account_id)) == 1


def test_v1_overdue_is_read_from_the_due_date_not_stored(client, owner):
    account = db.session.get(Account, owner.account_id)
    today = account_today(account)
    invoice = _draft(client, owner, issue_date=(today - timedelta(days=40)).isoformat(),
                     due_date=(today - timedelta(days=10)).isoformat())
    client.post(f"/invoices/{invoice.id}/finalize")
    invoice = _invoices(owner.account_id)[-1]
    assert invoice.status == "open" and invoice.is_overdue(today)
    assert "Overdue" in client.get("/invoices/").get_data(as_text=True)
    assert not invoice.is_overdue(today - timedelta(days=20))


def test_v1_pdf_is_branded_numbered_and_in_the_customers_language(client, owner):
    invoice = _draft(client, owner)
    draft_pdf = client.get(f"/invoices/{invoice.id}/pdf")
    assert draft_pdf.status_code == 200 and draft_pdf.mimetype == "application/pdf"
    assert "Concept" in pdf_text(draft_pdf.data)  # Dutch "Draft"
    client.post(f"/invoices/{invoice.id}/finalize")
    response = client.get(f"/invoices/{invoice.id}/pdf")
    text = pdf_text(response.data)
    PDF_COPY.write_bytes(response.data)
    assert "Factuur" in text and "INV-" in text and "Fietsenmaker" in text
    assert "Bicycle repair" in text and "93,50" in text and "Thanks for your business." in text
    assert "Vervaldatum" in text  # due date, in Dutch
    assert "filename=\"invoice-INV-" in response.headers["Content-Disposition"]


def test_v1_another_merchants_invoice_is_a_404_everywhere(client, owner):
    invoice = _draft(client, owner)
    intruder = make_merchant()
    other = client.application.test_client()
    log_in(other, intruder.email, PASSWORD)
    for method, path in [("get", f"/invoices/{invoice.id}"), ("get", f"/invoices/{invoice.id}/edit"),
                         ("post", f"/invoices/{invoice.id}/edit"), ("post", f"/invoices/{invoice.id}/finalize"),
                         ("get", f"/invoices/{invoice.id}/void"), ("post", f"/invoices/{invoice.id}/void"),
                         ("post", f"/invoices/{invoice.id}/delete"), ("get", f"/invoices/{invoice.id}/pdf")]:
        assert getattr(other, method)(path, data={"reason": "x"} if method == "post" else None).status_code == 404, path
    assert "Anna" not in other.get("/invoices/").get_data(as_text=True)
    assert _invoices(owner.account_id)[-1].status == "draft"


def test_v1_two_invoices_finalized_at_once_get_consecutive_numbers(app, client, owner):
    """V1: parallel finalize requests on both databases: numbers 1..n, no gap, no duplicate."""
    ids = [_draft(client, owner).id for _ in range(4)]
    clients = []
    for _ in ids:
        parallel = app.test_client()
        login(parallel, owner)
        clients.append(parallel)
    barrier = threading.Barrier(len(ids))

    def finalize(pair) -> int:
        parallel, invoice_id = pair
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                return parallel.post(f"/invoices/{invoice_id}/finalize").status_code
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        codes = list(pool.map(finalize, zip(clients, ids, strict=True), timeout=120))
    assert codes == [303] * len(ids)
    numbers = sorted(i.number for i in _invoices(owner.account_id))
    assert numbers == [1, 2, 3, 4]


def test_v1_the_state_machine_allows_only_its_moves(app, owner):
    # (V3: a paid invoice can move back to open when its payment is deleted or refunded; a void one never.)
    invoice = Invoice(id=1, account_id=owner.account_id, status="void", amount_minor=1, currency="EUR")
    with pytest.raises(Conflict):
        invoice_states.move_invoice(invoice, InvoiceStatus.OPEN, at=None)
    assert (InvoiceStatus.DRAFT, InvoiceStatus.VOID) not in invoice_states.TRANSITIONS
    assert (InvoiceStatus.PAID, InvoiceStatus.VOID) not in invoice_states.TRANSITIONS


def test_v1_per_payment_invoices_keep_their_shape(app, owner):
    """R5 invoices made before V1 are paid, numbered, with a payment and no lines; lines only belong to V1's."""
    assert InvoiceLine.__table__.c.invoice_id.nullable is False
    assert Invoice.__table__.c.number.nullable and Invoice.__table__.c.payment_id.nullable


def test_v1_an_open_invoice_marked_uncollectible_keeps_its_number_and_can_still_be_voided(client, owner):
    invoice = _draft(client, owner)
    assert client.post(f"/invoices/{invoice.id}/uncollectible").status_code == 303
    assert _invoices(owner.account_id)[-1].status == "draft"  # a draft can't be written off: nothing changed
    client.post(f"/invoices/{invoice.id}/finalize")
    assert client.post(f"/invoices/{invoice.id}/uncollectible").status_code == 303
    marked = _invoices(owner.account_id)[-1]
    assert (marked.status, marked.number) == ("uncollectible", 1)
    assert "Uncollectible" in client.get("/invoices/?status=uncollectible").get_data(as_text=True)
    assert "No invoice matches these filters." in client.get("/invoices/?status=open").get_data(as_text=True)
    client.post(f"/invoices/{invoice.id}/void", data={"reason": "Written off"})
    assert _invoices(owner.account_id)[-1].status == "void"


def test_v1_the_same_draft_finalized_twice_at_once_takes_one_number(app, client, owner):
    """V1: a double click in two tabs: one number is taken, the next invoice gets the one after it (no gap)."""
    invoice_id = _draft(client, owner).id
    clients = []
    for _ in range(3):
        parallel = app.test_client()
        login(parallel, owner)
        clients.append(parallel)
    barrier = threading.Barrier(len(clients))

    def finalize(parallel) -> int:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                return parallel.post(f"/invoices/{invoice_id}/finalize").status_code
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        assert list(pool.map(finalize, clients, timeout=120)) == [303] * len(clients)
    assert [(i.status, i.number) for i in _invoices(owner.account_id)] == [("open", 1)]
    following = _draft(client, owner)
    client.post(f"/invoices/{following.id}/finalize")
    assert [i.number for i in _invoices(owner.account_id)] == [1, 2]


def test_v1_hostile_void_reasons_and_list_parameters(client, owner):
    invoice = _draft(client, owner)
    client.post(f"/invoices/{invoice.id}/finalize")
    response = client.post(f"/invoices/{invoice.id}/void", data={"reason": "x" * 501})
    assert response.status_code == 422 and "at most 500" in response.get_data(as_text=True)
    assert 'value="' + "x" * 501 in response.get_data(as_text=True)  # what was typed is shown back
    assert _invoices(owner.account_id)[-1].status == "open"
    for query in ("?page=99999999999999999999", "?page=-1", "?status=bogus", "?status=%C2%B2"):
        assert client.get(f"/invoices/{query}").status_code == 200, query
    assert client.get("/invoices/?status=%00").status_code == 400  # the app-wide NUL guard
    assert client.get("/invoices/99999999999999999999").status_code == 404
