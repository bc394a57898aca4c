"""V2, V4: the invoice pay page and the quote page are one piece of code (blueprints/token_page.py,
services/checkout/token_checkout.py, issue 21's clean-up), so they must behave alike where they are alike and stay
apart where they must: a token signed for one kind never opens the other kind's page, both pages keep the buyer's
language choice, send no-store and no-referrer, and say "not found" in the language asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import CheckoutSession, Invoice, Quote
from kassa.processors import registry
from kassa.services.checkout import token_checkout
from kassa.services.checkout.invoice_checkout import pay_token
from kassa.services.checkout.quote_checkout import quote_token
from tests.factories import make_merchant
from tests.support.checkout_flow import count
from tests.support.invoices import editor_form
from tests.support.payments import login, soup_of

INVOICE_SALT = "kassa.invoice-pay"
QUOTE_SALT = "kassa.quote-page"


@pytest.fixture
def owner(app, client):
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # both are paid in live mode (no Stripe in tests)
    user = make_merchant(company="Fietsenmaker")
    login(client, user)
    return user


def _open(client, owner, model, path: str, form: dict):
    assert client.post(f"/{path}/new", data=form).status_code == 303
    db.session.rollback()
    row = db.session.scalars(select(model).where(model.account_id == owner.account_id)
                             .order_by(model.id.desc())).first()
    assert client.post(f"/{path}/{row.id}/finalize").status_code == 303
    db.session.rollback()
    return db.session.get(model, row.id)


@pytest.fixture
def both(client, owner):
    """An open invoice and an open quote of one merchant, for a Dutch-speaking customer."""
    invoice = _open(client, owner, Invoice, "invoices", editor_form())
    quote_form = {**editor_form(due_date=None), "expiry_date": "2027-01-31", "lines-0-frequency": "one_time",
                  "lines-1-frequency": "monthly"}
    quote = _open(client, owner, Quote, "quotes", quote_form)
    return invoice, quote


def _title(response) -> str:
    return " ".join(soup_of(response).select_one("h1").get_text(" ").split())


def test_v2_v4_a_token_signed_for_one_kind_never_opens_the_other_kinds_page(app, both):
    """V2, V4: the shared signer keeps each kind's salt. The quote's id signed as an invoice token (and the
    invoice's as a quote token) is a 404 on every route of the other page, though a row with that id exists; the
    kind's own token opens it. Nothing is started."""
    invoice, quote = both
    anyone = app.test_client()
    assert anyone.get(f"/invoice/{pay_token(invoice)}").status_code == 200
    assert anyone.get(f"/quote/{quote_token(quote)}").status_code == 200
    as_quote = token_checkout.sign_id(INVOICE_SALT, quote.id)   # an invoice-kind token naming the quote's id
    as_invoice = token_checkout.sign_id(QUOTE_SALT, invoice.id)  # a quote-kind token naming the invoice's id
    assert as_quote != quote_token(quote) and as_invoice != pay_token(invoice)
    for path in (f"/quote/{as_quote}", f"/quote/{as_quote}/pdf"):
        assert anyone.get(path).status_code == 404, path
    for action in ("accept", "decline", "pay"):
        assert anyone.post(f"/quote/{as_quote}/{action}", data={"name": "X", "agree": "y"}).status_code == 404
    for path in (f"/invoice/{as_invoice}", f"/invoice/{as_invoice}/pdf"):
        assert anyone.get(path).status_code == 404, path
    assert anyone.post(f"/invoice/{as_invoice}/pay").status_code == 404
    assert token_checkout.signed_id(QUOTE_SALT, as_quote) is None
    assert token_checkout.signed_id(INVOICE_SALT, pay_token(invoice)) == invoice.id
    assert count(CheckoutSession) == 0
    db.session.rollback()
    assert db.session.get(Quote, quote.id).status == "open" and db.session.get(Quote, quote.id).accepted_at is None


def test_v2_v4_both_pages_keep_the_buyers_language_and_are_never_cached(app, both):
    """V2, V4 (C7): the customer's language (Dutch) first; French chosen on the invoice page is the quote page's
    language too (one remembered choice); both answers are private, no-store and send no referrer."""
    invoice, quote = both
    buyer = app.test_client()
    first = buyer.get(f"/quote/{quote_token(quote)}")
    assert _title(first).startswith("Offerte ")
    chosen = buyer.get(f"/invoice/{pay_token(invoice)}?lang=fr")
    assert _title(chosen).startswith("Facture ")
    then = buyer.get(f"/quote/{quote_token(quote)}")
    assert _title(then).startswith("Devis ")
    for response in (first, chosen, then):
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("path", "title"), [("/invoice/bogus?lang=fr", "Facture introuvable"),
                                              ("/quote/bogus?lang=fr", "Devis introuvable"),
                                              ("/invoice/bogus?lang=nl", "Factuur niet gevonden"),
                                              ("/quote/bogus?lang=xx", "Quote not found")])
def test_v2_v4_a_bad_token_is_a_404_in_the_language_asked_for(app, owner, path, title):
    """V2, V4: a token that names nothing is the checkout's "unavailable" page in the language asked for (English
    for a language Kassa doesn't speak), with its own kind's title."""
    response = app.test_client().get(path)
    assert response.status_code == 404
    assert title in " ".join(soup_of(response).get_text(" ").split())
