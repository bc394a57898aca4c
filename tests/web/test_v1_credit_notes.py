"""V1 (what was missing): tax on invoice lines and credit notes.

Tax: each line may take one of the account's tax rates (Q6: Settings → Tax rates), computed as Q6 computes a
checkout's (per line on its net after the discount, half up; exclusive added, inclusive the part of the price that is
tax). The editor shows the totals with the tax per rate, the invoice page and PDF too, and the amount due includes it.
A rate of another account, an archived one or a made-up id is refused at its field and nothing is saved.

Credit notes: a refund (full or partial) of a payment that paid an invoice makes one credit note when it succeeds,
numbered from the account's own gap-free series (CN-000001), with a branded PDF in the customer's language titled
"Credit note" and naming the invoice; the invoice page lists them. A refund event applied twice (or twice at once)
makes one note; the unique constraint refuses a second row.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import CreditNote, Invoice, Payment, Refund, TaxRate
from kassa.processors import registry
from kassa.services.checkout.invoice_checkout import pay_token
from kassa.services.payments.credit_notes import credit_for_refund
from kassa.services.payments.refunds import complete_refund
from tests.factories import make_merchant
from tests.support.checkout import buyer_form, path_of
from tests.support.checkout_flow import count, pdf_text
from tests.support.concurrency import at_once
from tests.support.invoices import editor_form
from tests.support.payments import advance, login, soup_of

# Two rates and no tax: line 0 exclusive 21 % on 81.00 (2 × 45.00 − 10 %) = 17.01; line 1 inclusive 9 % in 12.50
# = 12.50 − round(12.50 / 1.09 = 11.4679) = 1.03; line 2 no tax. Total 81.00 + 17.01 + 12.50 + 5.00 = 115.51.
TOTAL_MINOR, TAX_MINOR = 11551, 1804


@pytest.fixture
def owner(app, client):
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # invoices are paid in live mode
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def _rates(account_id: int) -> tuple[TaxRate, TaxRate]:
    with write_transaction(db.session) as session:
        high = TaxRate(account_id=account_id, name="BTW hoog", percentage_bp=2100, inclusive=False, countries=[])
        low = TaxRate(account_id=account_id, name="BTW laag", percentage_bp=900, inclusive=True, countries=["NL"])
        session.add_all([high, low])
    return high, low


def _taxed_form(high: TaxRate, low: TaxRate, **overrides) -> dict[str, str]:
    return editor_form(**{"lines-0-tax_rate_id": str(high.id), "lines-1-tax_rate_id": str(low.id),
                          "lines-2-description": "Bell", "lines-2-quantity": "1", "lines-2-unit_price": "5.00",
                          "lines-2-tax_rate_id": "", **overrides})


def _latest(owner) -> Invoice:
    db.session.rollback()
    return db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                              .order_by(Invoice.id.desc())).first()


def _text(response) -> str:
    return " ".join(soup_of(response).get_text(" ").split())


def _open(client, owner, form) -> Invoice:
    response = client.post("/invoices/new", data=form)
    assert response.status_code == 303, _text(response)[:2000]
    invoice = _latest(owner)
    assert client.post(f"/invoices/{invoice.id}/finalize").status_code == 303
    return _latest(owner)


# -- tax on lines --------------------------------------------------------------------------------------


def test_v1_tax_rates_per_line_exclusive_inclusive_and_none_on_the_editor_page_and_pdf(client, owner):
    high, low = _rates(owner.account_id)
    editor = soup_of(client.get("/invoices/new"))
    options = [(o["value"], o.get_text(strip=True)) for o in editor.select("#f-lines-0-tax_rate_id option")]
    assert options == [("", "No tax"), (str(high.id), "BTW hoog (21%)"), (str(low.id), "Incl. BTW laag (9%)")]
    # The editor's totals follow the lines (here after "Add line": the draft re-rendered, nothing saved).
    preview = client.post("/invoices/new", data=_taxed_form(high, low, action="add_line"))
    assert preview.status_code == 200 and count(Invoice) == 0
    totals = _text(preview)
    assert "BTW hoog (21%) on €81.00 €17.01" in totals and "Incl. BTW laag (9%) on €12.50 €1.03" in totals
    assert "Total tax €18.04" in totals and "Total €115.51" in totals

    invoice = _open(client, owner, _taxed_form(high, low, language="en"))
    assert (invoice.amount_minor, invoice.tax_minor, invoice.amount_due_minor) == (TOTAL_MINOR, TAX_MINOR,
                                                                                  TOTAL_MINOR)
    lines = [(line.tax_name, line.tax_percentage_bp, line.tax_inclusive, line.tax_minor) for line in invoice.lines]
    assert lines == [("BTW hoog", 2100, False, 1701), ("BTW laag", 900, True, 103), ("", 0, False, 0)]
    page = _text(client.get(f"/invoices/{invoice.id}"))
    assert "Total tax €18.04" in page and "Amount due €115.51" in page
    assert "BTW hoog (21%) on €81.00 €17.01" in page
    pdf = pdf_text(client.get(f"/invoices/{invoice.id}/pdf").get_data())
    assert "BTW hoog (21%)" in pdf and "17.01" in pdf and "Incl. BTW laag (9%)" in pdf and "1.03" in pdf
    assert "Total tax" in pdf and "18.04" in pdf and "115.51" in pdf
    # The pay page asks for the amount due, tax included.
    assert "Pay €115.51" in _text(app_client(client).get(f"/invoice/{pay_token(invoice)}"))


def app_client(client):
    return client.application.test_client()


def test_v1_tax_a_saved_rate_is_kept_as_it_was_and_round_trips_through_the_editor(client, owner):
    high, low = _rates(owner.account_id)
    assert client.post("/invoices/new", data=_taxed_form(high, low)).status_code == 303
    invoice = _latest(owner)
    editor = soup_of(client.get(f"/invoices/{invoice.id}/edit"))
    chosen = [node.select_one("option[selected]") for node in editor.select("select[name$='-tax_rate_id']")]
    assert [o["value"] if o else "" for o in chosen] == [str(high.id), str(low.id), ""]
    with write_transaction(db.session) as session:  # the rate changes later: the invoice keeps what it had
        session.get(TaxRate, high.id).percentage_bp = 2500
    assert _latest(owner).lines[0].tax_percentage_bp == 2100 and _latest(owner).tax_minor == TAX_MINOR


@pytest.mark.parametrize("bad", ["theirs", "archived", "abc", "999999", "-1"])
def test_v1_tax_a_foreign_archived_or_made_up_rate_is_refused_at_its_field(client, owner, bad):
    high, low = _rates(owner.account_id)
    other = make_merchant(company="Someone Else")
    with write_transaction(db.session) as session:
        theirs = TaxRate(account_id=other.account_id, name="Theirs", percentage_bp=2100, inclusive=False,
                         countries=[])
        archived = TaxRate(account_id=owner.account_id, name="Old", percentage_bp=1900, inclusive=False,
                           countries=[], active=False)
        session.add_all([theirs, archived])
    value = {"theirs": str(theirs.id), "archived": str(archived.id)}.get(bad, bad)
    response = client.post("/invoices/new", data=_taxed_form(high, low, **{"lines-1-tax_rate_id": value}))
    assert response.status_code == 422
    error = soup_of(response).select_one("#f-lines-1-tax_rate_id-error")
    assert error is not None and "Choose one of your tax rates" in error.get_text()
    assert count(Invoice) == 0


# -- credit notes --------------------------------------------------------------------------------------


def _pay(client, invoice: Invoice) -> Payment:
    buyer = client.application.test_client()
    response = buyer.post(f"/invoice/{pay_token(invoice)}/pay")
    assert response.status_code == 303
    paid = buyer.post(path_of(response.headers["Location"]), data=buyer_form())
    assert paid.status_code == 303, _text(paid)[:1000]
    db.session.rollback()
    return db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).one()


def _refund(client, payment: Payment, amount: str) -> Refund:
    dialog = soup_of(client.get(f"/payments/{payment.id}/refund"))
    key = dialog.select_one('input[name="key"]')["value"]
    response = client.post(f"/payments/{payment.id}/refund", data={"amount": amount,
                                                                   "reason": "requested_by_customer", "note": "",
                                                                   "key": key})
    assert response.status_code in (200, 303), _text(response)[:1000]
    db.session.rollback()
    return db.session.scalars(select(Refund).where(Refund.payment_id == payment.id)
                              .order_by(Refund.id.desc())).first()


def test_v1_partial_then_full_refunds_of_a_paid_invoice_make_numbered_credit_notes_in_dutch(client, owner):
    high, low = _rates(owner.account_id)
    invoice = _open(client, owner, _taxed_form(high, low))  # customer language nl
    payment = _pay(client, invoice)
    assert _latest(owner).status == "paid"
    _refund(client, payment, "15.51")
    assert count(CreditNote) == 0  # the refund is still processing: nothing credited yet
    advance(timedelta(minutes=2))
    _refund(client, payment, "100.00")
    advance(timedelta(minutes=2))
    notes = list(db.session.scalars(select(CreditNote).order_by(CreditNote.number)))
    assert [(n.number, n.amount_minor, n.invoice_id) for n in notes] == [(1, 1551, invoice.id),
                                                                        (2, 10000, invoice.id)]
    # the credit notes settle what was refunded: the invoice stays paid and owes nothing
    db.session.expire_all()
    assert (_latest(owner).status, _latest(owner).amount_due_minor) == ("paid", 0)
    page = soup_of(client.get(f"/invoices/{invoice.id}"))
    listed = " ".join(page.select_one("#credit-notes").get_text(" ").split())
    assert "CN-000001" in listed and "CN-000002" in listed and "€15.51" in listed and "€100.00" in listed
    href = page.select_one("#credit-notes a")["href"]
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "no-store" in response.headers["Cache-Control"]
    text = pdf_text(response.get_data())
    number = f"INV-{invoice.number:06d}"
    assert "Creditnota" in text and "CN-000001" in text and number in text and "15,51" in text, text
    assert "Fietsenmaker" in text and "Anna de Vries" in text


def test_v1_a_refund_event_applied_twice_or_twice_at_once_makes_one_credit_note(app, client, owner):
    invoice = _open(client, owner, editor_form(language="en"))
    payment = _pay(client, invoice)
    refund = _refund(client, payment, "20.00")
    assert refund.status == "pending"

    def settle() -> bool:
        with write_transaction(db.session):
            return complete_refund(refund.id)

    assert sorted(at_once(app, settle)) == [False, True]
    db.session.rollback()
    assert count(CreditNote) == 1 and db.session.get(Payment, payment.id).refunded_minor == 2000
    assert settle() is False and count(CreditNote) == 1  # the event delivered again later
    with write_transaction(db.session):  # the note of a refund is found, not made again
        note = credit_for_refund(db.session.get(Refund, refund.id), db.session.get(Payment, payment.id))
    assert note.number == 1 and count(CreditNote) == 1
    with pytest.raises(IntegrityError), write_transaction(db.session) as session:
        session.add(CreditNote(account_id=owner.account_id, number=99, invoice_id=invoice.id, refund_id=refund.id,
                               payment_id=payment.id, amount_minor=2000, currency="EUR"))
    db.session.rollback()
    assert count(CreditNote) == 1


def test_v1_a_refunded_payment_without_an_invoice_makes_no_credit_note(client, owner):
    from tests.support.payments import sandbox_payment

    payment = sandbox_payment(owner.account_id, amount_minor=3000)
    _refund(client, payment, "10.00")
    advance(timedelta(minutes=2))
    assert db.session.get(Payment, payment.id).refunded_minor == 1000 and count(CreditNote) == 0


def test_v1_another_merchants_credit_note_is_a_404(app, client, owner):
    invoice = _open(client, owner, editor_form(language="en"))
    payment = _pay(client, invoice)
    _refund(client, payment, "10.00")
    advance(timedelta(minutes=2))
    note = db.session.scalars(select(CreditNote)).one()
    path = f"/invoices/{invoice.id}/credit-notes/{note.id}/pdf"
    assert client.get(path).status_code == 200
    other = app.test_client()
    login(other, make_merchant(company="Someone Else"))
    assert other.get(path).status_code == 404
    # The merchant's own other invoice doesn't show this invoice's note either.
    second = _open(client, owner, editor_form(language="en"))
    assert client.get(f"/invoices/{second.id}/credit-notes/{note.id}/pdf").status_code == 404
    assert client.get(f"/invoices/{invoice.id}/credit-notes/999999/pdf").status_code == 404
