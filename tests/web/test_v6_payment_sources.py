"""V6 One payment source model: the payments index, its filter language, its columns and exports know where each
payment came from (a payment link, an invoice, a quote, a subscription, a manual payment) and its name, and the
payment's panel links to it."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from kassa.clock import account_today
from kassa.extensions import db
from kassa.models import Account, Invoice, Payment, PaymentSource
from tests.factories import make_merchant, make_payment
from tests.support.checkout_flow import item, make_link
from tests.support.invoices import editor_form
from tests.support.payments import error_alert, login, row_ids, soup_of, table_rows, text_of
from tests.web.test_b10_exports import export_file, read_sheet


def _open_invoice(client, owner) -> Invoice:
    assert client.post("/invoices/new", data=editor_form(language="en")).status_code == 303
    db.session.rollback()
    invoice = db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                                 .order_by(Invoice.id.desc())).first()
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    db.session.rollback()
    return db.session.get(Invoice, invoice.id)


@pytest.fixture
def shop(client):
    """One live payment of each source: a link's, a subscription renewal's, an invoice paid at the checkout (V2),
    a manual payment recorded on another invoice (V3), and a quote's (V4's source, ahead of quotes)."""
    owner = make_merchant(company="Bron")
    login(client, owner)
    link = make_link(owner, items=[item("Lesson", "25.00")], name="Yoga spring")
    paid_online, paid_by_hand = _open_invoice(client, owner), _open_invoice(client, owner)
    ids = {
        "payment_link": make_payment(owner.account_id, mode="live", link_id=link.id, source="payment_link").id,
        "subscription": make_payment(owner.account_id, mode="live", link_id=link.id, source="subscription").id,
        "invoice": make_payment(owner.account_id, mode="live", source="invoice", invoice_id=paid_online.id,
                                currency="EUR").id,
        "quote": make_payment(owner.account_id, mode="live", source="quote").id,
    }
    today = account_today(db.session.get(Account, owner.account_id)).isoformat()
    response = client.post(f"/invoices/{paid_by_hand.id}/payments/new",
                           data={"method": "cash", "date": today, "amount": "93.50", "reference": ""})
    assert response.status_code == 303
    db.session.rollback()
    ids["manual"] = db.session.scalar(select(Payment.id).where(Payment.method == "manual"))
    return {"owner": owner, "ids": ids, "link": link, "invoices": (paid_online, paid_by_hand)}


def _ids(client, adv) -> set[int]:
    response = client.get("/payments/", query_string={"adv": json.dumps(adv)})
    assert response.status_code == 200, error_alert(response)
    return set(row_ids(response))


@pytest.mark.parametrize("kind", [kind.value for kind in PaymentSource])
def test_v6_the_source_filter_finds_each_source_and_only_it(client, shop, kind):
    ids = shop["ids"]
    assert _ids(client, [[["source", "any_of", [kind]]]]) == {ids[kind]}
    assert _ids(client, [[["source", "none_of", [kind]]]]) == set(ids.values()) - {ids[kind]}


def test_v6_sources_combine_with_other_conditions_and_bad_values_are_a_400(client, shop):
    ids = shop["ids"]
    assert _ids(client, [[["source", "any_of", ["invoice", "manual"]]]]) == {ids["invoice"], ids["manual"]}
    # OR of two groups, AND inside one: manual payments by method, invoices by source
    assert _ids(client, [[["source", "any_of", ["invoice"]], ["currency", "is", ["EUR"]]],
                         [["method", "any_of", ["manual"]]]]) == {ids["invoice"], ids["manual"]}
    for bad in (["bogus"], [], ["manual", "x" * 300]):
        response = client.get("/payments/", query_string={"adv": json.dumps([[["source", "any_of", bad]]])})
        assert response.status_code == 400 and "Source" in error_alert(response)


def test_v6_the_filter_panel_offers_source_with_every_kind(client, shop):
    assert soup_of(client.get("/payments/filters")).select_one('option[value="source"]').get_text() == "Source"
    panel = client.get("/payments/filters", query_string={"adv": json.dumps([[["source", "any_of", ["quote"]]]])})
    assert panel.status_code == 200
    boxes = {box["value"]: box.has_attr("checked") for box in soup_of(panel).select('input[name$="-vals"]')}
    assert boxes == {"payment_link": False, "invoice": False, "quote": True, "subscription": False, "manual": False}
    # The panel's own form applies it (the same builder as every property).
    chip = client.get("/payments/", query_string={"adv": json.dumps([[["source", "any_of", ["manual"]]]])})
    assert "Source is any of Manual payment" in text_of(soup_of(chip))


def test_v6_the_source_column_names_each_payment_source(client, shop):
    ids = shop["ids"]
    response = client.get("/payments/", query_string={"columns": ["amount", "method", "source"]})
    rows = dict(zip(row_ids(response), table_rows(response), strict=True))
    assert rows[ids["payment_link"]]["Source"] == "Payment link Yoga spring"
    assert rows[ids["subscription"]]["Source"] == "Subscription Yoga spring"
    assert rows[ids["invoice"]]["Source"] == "Invoice INV-000001"
    assert rows[ids["manual"]]["Source"] == "Manual payment INV-000002"
    assert rows[ids["manual"]]["Payment method"] == "Manual"
    assert rows[ids["quote"]]["Source"] == "Quote"


def test_v6_the_payment_panel_links_to_its_invoice_or_link(client, shop):
    ids = shop["ids"]
    paid_online, paid_by_hand = shop["invoices"]
    panel = soup_of(client.get(f"/payments/{ids['manual']}"))
    source = panel.select_one(".assoc__row--source a")
    assert source["href"] == f"/invoices/{paid_by_hand.id}" and "Manual payment INV-000002" in text_of(source)
    assert "Cash" in text_of(panel)  # paid by
    online = soup_of(client.get(f"/payments/{ids['invoice']}")).select_one(".assoc__row--source a")
    assert online["href"] == f"/invoices/{paid_online.id}"
    by_link = soup_of(client.get(f"/payments/{ids['payment_link']}")).select_one(".assoc__row--source a")
    assert by_link["href"] == f"/links/{shop['link'].id}/share" and "Yoga spring" in text_of(by_link)
    quote = soup_of(client.get(f"/payments/{ids['quote']}")).select_one(".assoc__row--source")
    assert "Quote" in text_of(quote) and quote.select_one("a") is None


def test_v6_exports_name_the_source_and_its_type(client, shop):
    ids = shop["ids"]
    _export, data = export_file(shop["owner"], "csv", columns=["amount", "source", "source_type", "invoice"])
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    by_type = {row["Source type"]: row for row in rows}
    assert set(by_type) == {"payment_link", "subscription", "invoice", "quote", "manual"}
    assert (by_type["manual"]["Source"], by_type["manual"]["Invoice number"]) == ("INV-000002", "INV-000002")
    assert (by_type["invoice"]["Source"], by_type["invoice"]["Invoice number"]) == ("INV-000001", "INV-000001")
    assert by_type["payment_link"]["Source"] == "Yoga spring" and by_type["quote"]["Source"] == ""
    assert len(rows) == len(ids)
    # A spreadsheet says it in words, in the export's language.
    _export, data = export_file(shop["owner"], "xlsx", columns=["amount", "method", "source_type"])
    _book, sheet = read_sheet(data)
    header = [cell.value for cell in sheet[1]]
    kinds = {row[header.index("Source type")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert kinds == {"Payment link", "Subscription", "Invoice", "Quote", "Manual payment"}
    methods = {row[header.index("Payment method")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "Manual" in methods
