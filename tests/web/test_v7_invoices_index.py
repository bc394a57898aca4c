"""V7: the Invoices index — filters by status (each status, and overdue read from the due date), customer (name,
email or company), due date from / until and amount from / up to; bad filters shown at their field while the list
stays whole; saved views through P3's machinery (private or shared, another account's or a colleague's private
view a 404); pages of 25 keeping the filters; the empty states. And the aging report as of a past day: the buckets
as they were on that day, with invoices paid since still open then and invoices finalized since left out."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import select, update

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Export, Invoice, Role, SavedView, User
from kassa.services.exports import exports
from tests.factories import make_merchant, make_payment, make_user
from tests.support.app import run_outbox
from tests.support.invoices import editor_form
from tests.support.payments import login, soup_of

TODAY = date(2027, 5, 20)
NOW = datetime(2027, 5, 20, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    """The whole test on one day (sessions, due dates and "overdue" read against it)."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def _invoice(client, owner, *, email="anna@example.com", name="Anna de Vries", company="Fietsen BV",
             due: date = TODAY + timedelta(days=10), price="45.00", finalize=True) -> Invoice:
    response = client.post("/invoices/new", data=editor_form(
        customer_email=email, customer_name=name, company_name=company, language="en",
        due_date=due.isoformat(), issue_date=(due - timedelta(days=30)).isoformat(), **{
            "lines-0-unit_price": price, "lines-0-quantity": "1", "lines-0-discount_type": "",
            "lines-0-discount_value": "", "lines-1-description": None, "lines-1-quantity": None,
            "lines-1-unit_price": None}))
    assert response.status_code == 303, soup_of(response).get_text(" ")[:1500]
    db.session.rollback()
    invoice = db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                                 .order_by(Invoice.id.desc())).first()
    if finalize:
        assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    return invoice


def _set(invoice: Invoice, **values) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(Invoice).where(Invoice.id == invoice.id).values(**values))


def _listed(client, query: str = "", **params) -> list[int]:
    response = client.get(f"/invoices/{query}", **({"query_string": params} if params else {}))
    assert response.status_code == 200
    return [int(a["href"].rstrip("/").split("/")[-1]) for a in soup_of(response).select("#invoice-table tbody th a")]


@pytest.fixture
def book(client, owner):
    """Seven invoices, one in each state, with their customers, due dates and amounts."""
    with time_machine.travel(NOW, tick=False):
        made = {
            "draft": _invoice(client, owner, email="dirk@example.com", name="Dirk Draft", company="",
                              price="10.00", finalize=False),
            "open": _invoice(client, owner, email="olga@example.com", name="Olga Open", company="Oost BV",
                             price="20.00", due=TODAY + timedelta(days=5)),
            "overdue": _invoice(client, owner, email="otto@example.com", name="Otto Late", company="",
                                price="30.00", due=TODAY - timedelta(days=3)),
            "partially_paid": _invoice(client, owner, email="piet@example.com", name="Piet Part", company="",
                                       price="40.00", due=TODAY - timedelta(days=40)),
            "paid": _invoice(client, owner, email="paula@example.com", name="Paula Paid", company="Zuid NV",
                             price="50.00", due=TODAY - timedelta(days=60)),
            "void": _invoice(client, owner, email="victor@example.com", name="Victor Void", company="",
                             price="60.00"),
            "uncollectible": _invoice(client, owner, email="ursula@example.com", name="Ursula U", company="",
                                      price="70.00", due=TODAY - timedelta(days=100)),
        }
    _set(made["partially_paid"], status="partially_paid", amount_paid_minor=1000)
    _set(made["paid"], status="paid", amount_paid_minor=5000)
    _set(made["void"], status="void")
    _set(made["uncollectible"], status="uncollectible")
    return {name: invoice.id for name, invoice in made.items()}


@pytest.mark.parametrize("status", ["", "draft", "open", "partially_paid", "paid", "void", "uncollectible",
                                    "overdue"])
def test_v7_every_status_option_filters_the_index(client, owner, book, status):
    options = [o["value"] for o in soup_of(client.get("/invoices/")).select("#f-status option")]
    assert status in options
    with time_machine.travel(NOW, tick=False):
        listed = set(_listed(client, status=status))
    expected = {"": set(book.values()), "open": {book["open"], book["overdue"]},
                "overdue": {book["overdue"], book["partially_paid"]}}.get(status, {book.get(status)})
    assert listed == expected


def test_v7_customer_due_and_amount_filters_alone_and_together(client, owner, book):
    with time_machine.travel(NOW, tick=False):
        assert set(_listed(client, q="OLGA")) == {book["open"]}  # a name, any case
        assert set(_listed(client, q="paula@example")) == {book["paid"]}  # an email
        assert set(_listed(client, q="zuid")) == {book["paid"]}  # a company
        assert set(_listed(client, q="otto late")) == {book["overdue"]}  # first and last name
        assert set(_listed(client, due_from=(TODAY - timedelta(days=50)).isoformat(),
                           due_to=TODAY.isoformat())) == {book["overdue"], book["partially_paid"]}
        assert set(_listed(client, amount_min="40.00")) == {book[n] for n in ("partially_paid", "paid", "void",
                                                                              "uncollectible")}
        assert set(_listed(client, amount_max="20")) == {book["draft"], book["open"]}
        assert set(_listed(client, amount_min="30", amount_max="50.00", status="overdue")) == {
            book["overdue"], book["partially_paid"]}
        assert _listed(client, q="nobody at all") == []
        page = soup_of(client.get("/invoices/", query_string={"q": "nobody at all"}))
        assert "No invoice matches these filters." in page.get_text(" ")


@pytest.mark.parametrize("params, field", [
    ({"status": "<script>alert(1)</script>"}, "status"),
    ({"due_from": "2027-02-30"}, "due_from"),
    ({"due_to": "yesterday"}, "due_to"),
    ({"due_from": "2027-05-10", "due_to": "2027-05-01"}, "due_to"),
    ({"amount_min": "abc"}, "amount_min"),
    ({"amount_max": "-5"}, "amount_max"),
    ({"amount_min": "99999999999999999"}, "amount_min"),
    ({"amount_min": "50", "amount_max": "10"}, "amount_max"),
], ids=["status", "date", "word", "reversed-dates", "amount", "negative", "huge", "reversed-amounts"])
def test_v7_hostile_filters_are_shown_at_their_field_and_the_list_stays_whole(client, owner, book, params,
                                                                             field):
    response = client.get("/invoices/", query_string=params)
    assert response.status_code == 200
    assert soup_of(response).select_one(f"#f-{field}-error") is not None
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    with time_machine.travel(NOW, tick=False):
        assert len(_listed(client, **params)) >= 1


def test_v7_wildcards_in_the_customer_search_are_plain_characters(client, owner, book):
    assert _listed(client, q="%") == [] and _listed(client, q="_") == []
    assert _listed(client, q="x" * 5000) == []  # bounded, no error
    assert client.get("/invoices/?q=%00").status_code == 400  # the app-wide NUL guard


def test_v7_saved_views_private_shared_and_another_accounts(app, client, owner, book):
    state = "status=overdue&q=piet"
    assert client.post("/invoices/views", data={"name": "Late Piet", "state_args": state}).status_code == 303
    assert client.post("/invoices/views", data={"name": "Big ones", "shared": "1",
                                                "state_args": "amount_min=50&bogus=1"}).status_code == 303
    assert client.post("/invoices/views", data={"name": "   ", "state_args": state}).status_code == 303  # refused
    views = {v.name: v for v in db.session.scalars(select(SavedView).where(SavedView.tab == "invoices"))}
    assert set(views) == {"Late Piet", "Big ones"}
    assert views["Late Piet"].state == {"status": "overdue", "q": "piet"} and not views["Late Piet"].shared
    assert views["Big ones"].state == {"amount_min": "50"} and views["Big ones"].shared
    with time_machine.travel(NOW, tick=False):
        assert _listed(client, view=views["Late Piet"].id) == [book["partially_paid"]]
        assert set(_listed(client, view=views["Big ones"].id)) == {book[n] for n in ("paid", "void",
                                                                                   "uncollectible")}
        page = soup_of(client.get("/invoices/", query_string={"view": views["Late Piet"].id}))
    nav = [a.get_text(" ", strip=True) for a in page.select("nav.tabs a")]
    assert nav[0] == "All invoices" and "Late Piet" in nav and any(n.startswith("Big ones") for n in nav)
    assert page.select_one("nav.tabs a[aria-current=page]").get_text(strip=True) == "Late Piet"
    # The payments index keeps its own views: the invoices' are not there.
    assert "Late Piet" not in client.get("/payments/").get_data(as_text=True)
    # A colleague sees the shared view only; another merchant neither.
    colleague = app.test_client()
    login(colleague, make_user(owner.account_id, role=Role.SUPER_ADMIN, email="colleague@example.com"))
    assert colleague.get("/invoices/", query_string={"view": views["Big ones"].id}).status_code == 200
    assert colleague.get("/invoices/", query_string={"view": views["Late Piet"].id}).status_code == 404
    assert colleague.post(f"/invoices/views/{views['Big ones'].id}/delete").status_code == 303  # not theirs
    stranger = app.test_client()
    login(stranger, make_merchant(company="Someone Else"))
    for view in views.values():
        assert stranger.get("/invoices/", query_string={"view": view.id}).status_code == 404
        assert stranger.post(f"/invoices/views/{view.id}/delete").status_code == 404
    assert db.session.scalar(select(db.func.count()).select_from(SavedView)) == 2
    assert client.post(f"/invoices/views/{views['Late Piet'].id}/delete").status_code == 303
    db.session.rollback()
    assert [v.name for v in db.session.scalars(select(SavedView))] == ["Big ones"]


def test_v7_pages_of_twenty_five_keep_the_filters_and_the_empty_state(client, owner):
    page = soup_of(client.get("/invoices/"))
    assert "No invoices yet" in page.get_text(" ")
    first = _invoice(client, owner, email="many@example.com", name="Many Times", company="", finalize=False)
    with db.engine.begin() as conn:
        rows = [{c: getattr(first, c) for c in ("account_id", "contact_id", "currency", "status", "issue_date",
                                                 "due_date", "amount_minor", "issued_at")} for _ in range(29)]
        conn.execute(Invoice.__table__.insert(), rows)
    assert len(_listed(client, q="many")) == 25
    response = soup_of(client.get("/invoices/", query_string={"q": "many"}))
    next_link = response.select_one("a[rel=next]") or next(a for a in response.select("a")
                                                            if "page=2" in a.get("href", ""))
    assert "q=many" in next_link["href"]
    assert len(_listed(client, next_link["href"].split("/invoices/")[1])) == 5


# -- the aging report as of a past day ----------------------------------------------------------------


def _aging(owner, as_of: str | None) -> list[dict]:
    user = db.session.get(User, owner.id)
    export = exports.request_export(Actor(user=user, account_id=owner.account_id), kind="ar_aging", name="Aging",
                                    file_format="csv", language="en",
                                    params={"modes": ["live"], **({"as_of": as_of} if as_of else {})})
    run_outbox()
    db.session.rollback()
    export = db.session.get(Export, export.id)
    assert export.status == "done", export.error
    data = exports.downloadable(owner.account_id, export.id)[1].read_bytes()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_v7_aging_as_of_a_past_day_gives_the_buckets_as_they_were(client, owner):
    as_of = TODAY - timedelta(days=20)
    with time_machine.travel(NOW, tick=False):
        paid_since = _invoice(client, owner, price="100.00", due=as_of - timedelta(days=15))  # 15 days late then
        partly = _invoice(client, owner, price="200.00", due=as_of - timedelta(days=45))  # 45 days late then
        void_since = _invoice(client, owner, price="300.00", due=as_of + timedelta(days=3))  # not due yet then
        newer = _invoice(client, owner, price="400.00", due=as_of - timedelta(days=5))  # finalized after the day
        void_before = _invoice(client, owner, price="500.00", due=as_of - timedelta(days=5))
        _invoice(client, owner, price="600.00", finalize=False)  # a draft: never owed
    for invoice in (paid_since, partly, void_since, void_before):
        _set(invoice, finalized_at=_at(as_of - timedelta(days=60)))
    _set(newer, finalized_at=_at(as_of + timedelta(days=1)))
    _set(void_since, status="void", voided_at=_at(as_of + timedelta(days=2)))
    _set(void_before, status="void", voided_at=_at(as_of - timedelta(days=1)))
    # Payments: paid_since in full after the day; partly 50.00 before it and 150.00 after.
    for invoice, amount, day in ((paid_since, 10000, as_of + timedelta(days=4)),
                                 (partly, 5000, as_of - timedelta(days=10)),
                                 (partly, 15000, as_of + timedelta(days=1))):
        make_payment(owner.account_id, amount_minor=amount, currency="EUR", mode="live", source="invoice",
                     invoice_id=invoice.id, created_at=_at(day), succeeded_at=_at(day))
    _set(paid_since, status="paid", amount_paid_minor=10000)
    _set(partly, status="paid", amount_paid_minor=20000)

    with time_machine.travel(NOW, tick=False):
        today_rows = _aging(owner, None)
        past_rows = _aging(owner, as_of.isoformat())
        future_rows = _aging(owner, (TODAY + timedelta(days=30)).isoformat())  # a future day: today
        bad_rows = _aging(owner, "not-a-date")  # unreadable: today
    label = lambda invoice: f"INV-{db.session.get(Invoice, invoice.id).number:06d}"  # noqa: E731
    # Today only the newer invoice is owed (the others are paid or void now).
    assert [row["Invoice"] for row in today_rows] == [label(newer)] and future_rows == bad_rows == today_rows
    by_number = {row["Invoice"]: row for row in past_rows}
    assert set(by_number) == {label(paid_since), label(partly), label(void_since)}
    expected = {label(paid_since): ("100.00", 15, 1), label(partly): ("150.00", 45, 2),
                label(void_since): ("300.00", 0, 0)}
    buckets = ["Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]
    for number, (due, late, bucket) in expected.items():
        row = by_number[number]
        assert (row["Amount due"], int(row["Days past due"])) == (due, late), number
        assert [row[b] for b in buckets] == [due if i == bucket else "0.00" for i in range(5)], number
    assert sum(Decimal(row[b]) for row in past_rows for b in buckets) == Decimal("550.00")


# -- export of what is filtered ----------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "xls"])
def test_v7_the_filtered_index_exports_exactly_its_rows(client, owner, book, file_format):
    page = soup_of(client.get("/invoices/", query_string={"status": "overdue", "amount_min": "35"}))
    state = page.select_one("#export-invoices input[name=state_args]")["value"]
    formats = [o["value"] for o in page.select("#f-export-format option")]
    assert formats == ["csv", "xlsx", "xls"]
    response = client.post("/invoices/export", data={"state_args": state, "file_format": file_format})
    assert response.status_code == 303 and "/exports" in response.headers["Location"]
    run_outbox()
    db.session.rollback()
    export = db.session.scalars(select(Export).where(Export.kind == "invoices")).one()
    assert export.status == "done", export.error
    assert export.params["filters"] == {"status": "overdue", "amount_min": "35"}
    data = exports.downloadable(owner.account_id, export.id)[1].read_bytes()
    number = f"INV-{db.session.get(Invoice, book['partially_paid']).number:06d}"
    if file_format == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert [(r["Invoice"], r["Status"], r["Amount"], r["Amount paid"], r["Amount due"]) for r in rows] == [
            (number, "Overdue", "40.00", "10.00", "30.00")]
    else:
        assert export.rows_total == 1 and len(data) > 0


def test_v7_an_export_with_a_bad_format_changes_nothing(client, owner, book):
    response = client.post("/invoices/export", data={"state_args": "status=open", "file_format": "exe"})
    assert response.status_code == 303
    assert db.session.scalar(select(db.func.count()).select_from(Export)) == 0
    other = client.application.test_client()
    login(other, make_merchant(company="Someone Else"))
    assert other.post("/invoices/export", data={"state_args": "", "file_format": "csv"}).status_code == 303
    run_outbox()
    db.session.rollback()
    theirs = db.session.scalars(select(Export)).one()
    assert theirs.rows_total == 0  # another merchant's export holds none of these invoices
