"""Q6 Tax / VAT: the account's tax rates (settings), "Collect tax" on a link, the buyer's country picking the
rate (billing address or the small "Country" select), inclusive and exclusive rates, the buyer's VAT number and
the EU reverse charge, and what a payment keeps (tax, country, VAT number, breakdown) and shows (summary,
receipt PDF and email, payment panel, export, revenue report), renewals included."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Account, Payment, PaymentAttempt, TaxRate
from kassa.order_summary import BuyerChoices, OrderItem, build_order_summary
from kassa.services.accounts import tax_rates
from kassa.services.exports.export_sources import headers_and_rows
from kassa.services.links.link_drafts import ItemDraft
from kassa.services.payments.receipts import render_payment_receipt
from kassa.tax import TaxContext, TaxRateSpec, vat_id_valid
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import (
    actor_for,
    all_payments,
    count,
    emails,
    field_errors,
    make_link,
    soup_of,
)
from tests.support.links import errors_of


def _rate(owner, name="BTW hoog", percentage="21", *, inclusive=False, countries="NL"):
    return tax_rates.create_rate(actor_for(owner), name=name, percentage=percentage, inclusive=inclusive,
                                 countries=countries)


def _shop(*, inclusive=False, billing=False, vat_number="", price="100.00", frequency="one_time", currency="EUR"):
    owner = make_merchant(company="Koffiebranderij", currency=currency, country="NL")
    _rate(owner, inclusive=inclusive)
    _rate(owner, "MwSt", "19", inclusive=inclusive, countries="DE, AT")
    if vat_number:
        tax_rates.set_vat_number(actor_for(owner), vat_number)
    link = make_link(owner, items=[ItemDraft(name="Beans", unit_price=price, quantity="1", frequency=frequency)],
                     currency=currency, collect_tax=True, collect_billing_address=billing)
    return owner, link


def _pay(client, path, **overrides):
    return client.post(path, data=buyer_form("card", **overrides))


def _tax_row(response) -> str:
    node = soup_of(response).select_one("#tax")
    return " ".join(node.get_text(" ").split()) if node else ""


# -- pricing (the pure function) ---------------------------------------------------------------------


def test_q6_rounding_exclusive_and_inclusive_per_line_in_minor_units():
    items = [OrderItem("A", "", 1999, "EUR", 1, "one_time", None, None),
             OrderItem("B", "", 333, "EUR", 3, "one_time", None, None)]
    rate = TaxRateSpec(id=1, name="VAT", percentage_bp=2100, inclusive=False)
    summary = build_order_summary(items, "EUR", BuyerChoices(country="NL"), TaxContext(rates=(rate,)))
    # 19.99 × 21 % = 4.1979 → 4.20; 9.99 × 21 % = 2.0979 → 2.10
    assert [line.tax.amount_minor for line in summary.lines] == [420, 210]
    assert summary.due_today.amount_minor == 1999 + 999 + 630
    inclusive = TaxRateSpec(id=1, name="VAT", percentage_bp=2100, inclusive=True)
    summary = build_order_summary(items, "EUR", BuyerChoices(country="NL"), TaxContext(rates=(inclusive,)))
    # 19.99 − round(19.99 / 1.21 = 16.52066) = 3.47; 9.99 − round(8.2562) = 1.73
    assert [line.tax.amount_minor for line in summary.lines] == [347, 173]
    assert summary.due_today.amount_minor == 1999 + 999
    jpy = build_order_summary([OrderItem("A", "", 1001, "JPY", 1, "one_time", None, None)], "JPY",
                              BuyerChoices(country="NL"), TaxContext(rates=(rate,)))
    assert jpy.tax_today.amount_minor == 210 and jpy.due_today.amount_minor == 1211  # 210.21 → 210 yen


@pytest.mark.parametrize(("vat_id", "valid"), [
    ("NL123456789B01", True), ("DE123456789", True), ("FRXX123456789", True), ("FR12345678901", True),
    ("BE0123456789", True), ("EL123456789", True), ("ATU12345678", True), ("NL123456789", False),
    ("DE12345678", False), ("BE2123456789", False), ("FR1234567890", False), ("US123456789", False), ("", False),
])
def test_q6_vat_id_formats_per_eu_country(vat_id, valid):
    assert vat_id_valid(vat_id) is valid


# -- settings: tax rates and the VAT number -----------------------------------------------------------


def test_q6_settings_tax_rates_empty_state_create_edit_archive(client, app):
    owner = make_merchant(company="Roastery", currency="EUR", country="NL")
    log_in(client, owner.email, PASSWORD)
    page = client.get("/settings/tax-rates")
    assert page.status_code == 200 and "No tax rates yet" in page_text(page)
    bad = client.post("/settings/tax-rates/new", data={"name": "", "percentage": "121", "countries": "NL, Holland"})
    assert bad.status_code == 422
    errors = errors_of(bad)
    assert "Enter a name" in errors["name"] and "from 0.01 to 100" in errors["percentage"]
    assert "HOLLAND" in errors["countries"]
    assert count(TaxRate) == 0
    created = client.post("/settings/tax-rates/new", data={"name": "BTW hoog", "percentage": "21",
                                                             "inclusive": "1", "countries": "nl, be"})
    assert created.status_code == 303
    rate = db.session.scalar(select(TaxRate))
    assert (rate.name, rate.percentage_bp, rate.inclusive, rate.countries) == ("BTW hoog", 2100, True, ["NL", "BE"])
    listed = page_text(client.get("/settings/tax-rates"))
    assert "BTW hoog" in listed and "21 %" in listed and "NL, BE" in listed
    edit = client.get(f"/settings/tax-rates/{rate.id}/edit")
    assert soup_of(edit).select_one("#f-percentage")["value"] == "21"
    assert client.post(f"/settings/tax-rates/{rate.id}/edit", data={"name": "BTW laag", "percentage": "9",
                                                                     "countries": ""}).status_code == 303
    db.session.rollback()
    rate = db.session.get(TaxRate, rate.id)
    assert (rate.name, rate.percentage_bp, rate.inclusive, rate.countries) == ("BTW laag", 900, False, [])
    confirm = client.get(f"/settings/tax-rates/{rate.id}/archive")
    assert confirm.status_code == 200 and "Archive BTW laag?" in page_text(confirm)
    assert client.post(f"/settings/tax-rates/{rate.id}/archive").status_code in (200, 303)
    db.session.rollback()
    assert db.session.get(TaxRate, rate.id).active is False


def test_q6_vat_number_is_checked_against_the_account_country(client, app):
    owner = make_merchant(company="Roastery", currency="EUR", country="NL")
    log_in(client, owner.email, PASSWORD)
    for typed, message in (("NL12345678", "valid EU VAT number"), ("DE123456789", "another country")):
        response = client.post("/settings/tax-rates/vat-number", data={"vat_number": typed})
        assert response.status_code == 422 and message in errors_of(response)["vat_number"]
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).vat_number == ""
    assert client.post("/settings/tax-rates/vat-number", data={"vat_number": "nl 1234.56789.b01"}).status_code == 303
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).vat_number == "NL123456789B01"


def test_q6_another_merchants_tax_rate_is_a_404(client, app):
    other = make_merchant(company="Other")
    rate = _rate(other)
    me = make_merchant(company="Mine")
    log_in(client, me.email, PASSWORD)
    assert client.get(f"/settings/tax-rates/{rate.id}/edit").status_code == 404
    assert client.post(f"/settings/tax-rates/{rate.id}/edit", data={"name": "Mine now", "percentage": "1"}
                       ).status_code == 404
    assert client.get(f"/settings/tax-rates/{rate.id}/archive").status_code == 404
    assert client.post(f"/settings/tax-rates/{rate.id}/archive").status_code == 404
    db.session.rollback()
    rate = db.session.get(TaxRate, rate.id)
    assert (rate.name, rate.active) == ("BTW hoog", True)
    assert "BTW hoog" not in page_text(client.get("/settings/tax-rates"))


# -- the link editor ------------------------------------------------------------------------------


def test_q6_link_editor_collect_tax_is_saved_and_previewed(client, app):
    owner = make_merchant(company="Roastery", currency="EUR", country="NL")
    _rate(owner)
    log_in(client, owner.email, PASSWORD)
    from tests.support.links import item_fields, link_form

    preview = client.post("/links/preview", data=link_form(item_fields(0, "Beans", "20.00"), currency="EUR",
                                                           collect_tax="1"))
    text = page_text(preview)
    assert "BTW hoog (21%)" in text and "€4.20" in text and "€24.20" in text
    response = client.post("/links/new", data=link_form(item_fields(0, "Beans", "20.00"), currency="EUR",
                                                        collect_tax="1"))
    assert response.status_code == 303, errors_of(response)
    from kassa.models import PaymentLink

    link = db.session.scalars(select(PaymentLink)).all()[-1]
    assert link.collect_tax is True
    assert soup_of(client.get(f"/links/{link.id}/edit")).select_one("#f-collect_tax").has_attr("checked")


# -- the checkout ----------------------------------------------------------------------------------


def test_q6_exclusive_tax_by_the_country_select_without_javascript(client, app):
    owner, link = _shop(vat_number="NL123456789B01")
    path = start_checkout(client, link.slug)
    page = client.get(path)
    soup = soup_of(page)
    # Only the countries the rates name, and "Other country"; the merchant's country first chosen.
    assert [o["value"] for o in soup.select("#f-tax_country option")] == ["NL", "DE", "AT", "XX"]
    assert soup.select_one("#f-tax_country option[selected]")["value"] == "NL"
    assert "BTW hoog (21%)" in _tax_row(page) and soup.select_one("#summary-total").get_text() == "€121.00"
    # "Update total" with another country: re-priced, nothing charged.
    updated = client.post(path, data=buyer_form("card", tax_country="DE", action="update"))
    assert updated.status_code == 200
    assert "MwSt (19%)" in _tax_row(updated) and "€19.00" in _tax_row(updated)
    assert soup_of(updated).select_one("#summary-total").get_text() == "€119.00"
    assert count(PaymentAttempt) == 0
    assert _pay(client, path, tax_country="DE").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.net_minor, payment.buyer_country) == (
        11900, 1900, 10000, "DE")
    assert payment.tax_details["breakdown"] == [{"name": "MwSt", "percentage_bp": 1900, "inclusive": False,
                                                 "taxable_minor": 10000, "tax_minor": 1900}]
    # The payment panel shows the tax; the receipt PDF (pdftotext) the breakdown and the merchant's VAT number.
    log_in(client, owner.email, PASSWORD)
    panel = page_text(client.get(f"/payments/{payment.id}"))
    assert "MwSt (19%)" in panel and "€19.00" in panel
    with app.test_request_context():
        _name, _type, pdf = render_payment_receipt(payment)
    text = _pdftotext(pdf)
    assert "MwSt (19%)" in text and "€19.00" in text and "€119.00" in text and "NL123456789B01" in text
    mail = emails("receipt")[-1]
    assert "MwSt (19%)" in mail.text_body


def _pdftotext(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(out.decode().split())


def test_q6_javascript_reprice_posts_the_country_and_gets_the_tax_row(client, app):
    """What checkout.js sends when the country changes: the choices only; the tax row comes back whole."""
    _owner, link = _shop()
    path = start_checkout(client, link.slug)
    answer = client.post(path, data={"lang": "nl", "tax_country": "AT", "action": "update"})
    assert answer.status_code == 200
    assert "MwSt (19%)" in _tax_row(answer)
    assert soup_of(answer).select_one("#summary-total")["data-minor"] == "11900"
    assert count(PaymentAttempt) == 0


def test_q6_inclusive_tax_is_part_of_the_price(client, app):
    _owner, link = _shop(inclusive=True, price="121.00")
    path = start_checkout(client, link.slug)
    page = client.get(path)
    assert "Incl. BTW hoog (21%)" in _tax_row(page) and "€21.00" in _tax_row(page)
    assert soup_of(page).select_one("#summary-total").get_text() == "€121.00"
    assert _pay(client, path, tax_country="NL").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.net_minor) == (12100, 2100, 12100)
    assert payment.tax_details["breakdown"][0]["taxable_minor"] == 10000


def test_q6_country_without_a_rate_pays_no_tax(client, app):
    _owner, link = _shop()
    path = start_checkout(client, link.slug)
    assert _pay(client, path, tax_country="XX").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.buyer_country) == (10000, 0, "XX")
    assert payment.tax_details["breakdown"] == []


def test_q6_billing_address_country_decides_the_rate(client, app):
    _owner, link = _shop(billing=True)
    path = start_checkout(client, link.slug)
    page = soup_of(client.get(path))
    assert page.select_one("#f-tax_country") is None  # the billing address's country says it
    assert _pay(client, path, billing_country="AT").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.buyer_country) == (11900, 1900, "AT")


def test_q6_reverse_charge_for_a_valid_vat_id_of_another_eu_country(client, app):
    _owner, link = _shop(vat_number="NL123456789B01")
    path = start_checkout(client, link.slug)
    updated = client.post(path, data=buyer_form("card", tax_country="DE", vat_id="DE 123 456 789",
                                                 action="update"))
    assert "Reverse charge: VAT to be accounted for by the recipient" in _tax_row(updated)
    assert soup_of(updated).select_one("#summary-total").get_text() == "€100.00"
    assert _pay(client, path, tax_country="DE", vat_id="de123456789", lang="nl").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.buyer_vat_id, payment.reverse_charge) == (
        10000, 0, "DE123456789", True)
    with app.test_request_context():
        text = _pdftotext(render_payment_receipt(payment)[2])
    assert "DE123456789" in text and "NL123456789B01" in text
    assert "Verlegging van btw" in text or "verlegd" in text.lower()  # the Dutch note


def test_q6_domestic_vat_id_is_no_reverse_charge(client, app):
    _owner, link = _shop()
    path = start_checkout(client, link.slug)
    assert _pay(client, path, tax_country="NL", vat_id="NL123456789B01").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor, payment.reverse_charge) == (12100, 2100, False)


@pytest.mark.parametrize(("vat_id", "message"), [
    ("NL123", "This isn't a valid NL VAT number"), ("XY123456789", "starts with its country code"),
])
def test_q6_invalid_vat_id_is_refused_at_the_field_and_nothing_is_charged(client, app, vat_id, message):
    _owner, link = _shop()
    path = start_checkout(client, link.slug)
    response = _pay(client, path, tax_country="DE", vat_id=vat_id)
    assert response.status_code == 422
    assert message in field_errors(response)["vat_id"]
    assert count(Payment) == 0 and count(PaymentAttempt) == 0
    assert _pay(client, path, tax_country="DE", vat_id="").status_code == 303  # the legitimate repeat


def test_q6_a_country_the_select_does_not_offer_is_refused(client, app):
    _owner, link = _shop()
    path = start_checkout(client, link.slug)
    response = _pay(client, path, tax_country="FR")
    assert response.status_code == 422 and "Choose your country" in field_errors(response)["tax_country"]
    assert count(PaymentAttempt) == 0


def test_q6_export_columns_tax_country_vat_id(client, app):
    owner, link = _shop()
    path = start_checkout(client, link.slug)
    assert _pay(client, path, tax_country="DE", vat_id="BE0123456789").status_code == 303
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "tax"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    assert (str(row["Tax"]), row["Country"], row["VAT id"]) == ("0.00", "DE", "BE0123456789")
    path = start_checkout(client, link.slug)
    assert _pay(client, path, tax_country="NL").status_code == 303
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "tax"], "modes": ["test"]}, "en")
    taxes = sorted(str(dict(zip([h.label for h in headers], r, strict=False))["Tax"]) for r in rows)
    assert taxes == ["0.00", "21.00"]


def test_q6_revenue_report_shows_the_tax_total(client, app):
    owner, link = _shop()
    path = start_checkout(client, link.slug)
    assert _pay(client, path, tax_country="NL").status_code == 303
    from kassa.services.backoffice.revenue import performance

    db.session.rollback()
    figures = performance(db.session.get(Account, owner.account_id), ("test",)).current
    assert (figures.gross, figures.tax) == (12100, 2100)
    log_in(client, owner.email, PASSWORD)
    assert "Including tax" in soup_of(client.get("/reports/")).select_one("#tax-total").get_text()


def test_q6_renewals_charge_the_tax_of_the_checkout(client, app):
    from tests.support.billing import advance, renewals_of

    owner, link = _shop(frequency="monthly", price="10.00")
    path = start_checkout(client, link.slug)
    page = page_text(client.get(path))
    assert "€12.10" in page  # "Then €12.10 every month": the group includes its tax
    assert _pay(client, path, tax_country="NL").status_code == 303
    payment = all_payments()[-1]
    assert (payment.amount_minor, payment.tax_minor) == (1210, 210)
    subscription_id = payment.subscription_id
    advance(owner, subscription_id, days=32)
    renewals = renewals_of(subscription_id)
    assert renewals, "no renewal was charged"
    renewal = renewals[0]
    assert (renewal.amount_minor, renewal.tax_minor, renewal.net_minor, renewal.buyer_country) == (
        1210, 210, 1000, "NL")
    assert renewal.tax_details["breakdown"][0]["tax_minor"] == 210
