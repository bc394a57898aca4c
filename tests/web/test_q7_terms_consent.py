"""Q7 terms of service consent: a link may require the buyer to tick "I agree to the terms of service" (the
link's own https address, else the account's from Settings); a missing tick is a field error and nothing is
charged; the consent time (UTC) and the address shown are kept on the payment, its panel and exports."""

from __future__ import annotations

import pytest

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Payment, PaymentAttempt, PaymentLink
from kassa.services.exports.export_sources import headers_and_rows
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import count, only_payment, sandbox_charges
from tests.support.links import create_link, errors_of, link_form, soup_of

TERMS = "https://roastery.example/terms"


def _owner(client, company="Roastery"):
    owner = make_merchant(company=company)
    log_in(client, owner.email, PASSWORD)
    return owner


def test_q7_checkout_shows_the_required_terms_checkbox_opening_in_a_new_tab(client, app):
    _owner(client)
    link = create_link(client, require_terms="1", terms_url=TERMS)
    page = soup_of(client.get(start_checkout(client, link.slug)))
    box = page.select_one("#f-terms")
    assert box["type"] == "checkbox" and box.has_attr("required")
    anchor = page.select_one("label[for=f-terms] a")
    assert anchor["href"] == TERMS and anchor["target"] == "_blank" and anchor["rel"] == ["noopener"]
    assert "I agree to the terms of service" in page.select_one("label[for=f-terms]").get_text()


def test_q7_without_the_option_there_is_no_checkbox_and_nothing_is_stored(client, app):
    _owner(client)
    link = create_link(client, terms_url=TERMS)  # an address, but the option is off
    path = start_checkout(client, link.slug)
    assert soup_of(client.get(path)).select_one("#f-terms") is None
    assert client.post(path, data=buyer_form()).status_code == 303
    payment = only_payment()
    assert (payment.terms_accepted_at, payment.terms_url) == (None, None)


def test_q7_unticked_box_is_a_field_error_and_nothing_is_charged(client, app):
    _owner(client)
    link = create_link(client, require_terms="1", terms_url=TERMS)
    path = start_checkout(client, link.slug)
    response = client.post(path, data=buyer_form())
    assert response.status_code == 422
    assert errors_of(response)["terms"] == "To pay, agree to the terms of service."
    assert (count(Payment), count(PaymentAttempt), sandbox_charges()) == (0, 0, 0)
    # The legitimate retry, ticked: paid, with the consent time and the address shown.
    assert client.post(path, data=buyer_form(terms="1")).status_code == 303
    payment = only_payment()
    assert payment.terms_url == TERMS and payment.terms_accepted_at is not None
    assert payment.terms_accepted_at.utcoffset().total_seconds() == 0


def test_q7_panel_and_export_show_the_consent(client, app):
    owner = _owner(client)
    link = create_link(client, require_terms="1", terms_url=TERMS)
    client.post(start_checkout(client, link.slug), data=buyer_form(terms="1"))
    payment = only_payment()
    panel = page_text(client.get(f"/payments/{payment.id}"))
    assert "Terms of service" in panel and "Agreed on" in panel and TERMS in panel
    headers, rows = headers_and_rows(owner.account_id, owner.id, "payments",
                                     {"columns": ["amount", "terms"], "modes": ["test"]}, "en")
    row = dict(zip([h.label for h in headers], next(iter(rows)), strict=False))
    assert row["Terms address"] == TERMS and row["Terms agreed"] is not None


def test_q7_the_account_terms_address_is_used_when_the_link_has_none(client, app):
    owner = _owner(client)
    response = client.post("/settings/account", data={
        "name": "Roastery", "country": "NL", "default_currency": "EUR", "timezone": "Europe/Amsterdam",
        "language": "en", "address": "", "support_email": "", "refund_policy": "", "terms_url": TERMS})
    assert response.status_code == 303
    link = create_link(client, require_terms="1")
    page = soup_of(client.get(start_checkout(client, link.slug)))
    assert page.select_one("label[for=f-terms] a")["href"] == TERMS
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).terms_url == TERMS


@pytest.mark.parametrize("url", ["http://roastery.example/terms", "roastery.example/terms", "javascript:alert(1)",
                                 "https://exa mple.com/terms"])
def test_q7_bad_terms_address_is_refused_in_the_editor_and_settings(client, app, url):
    owner = _owner(client)
    before = count(PaymentLink)
    response = client.post("/links/new", data=link_form(require_terms="1", terms_url=url))
    assert response.status_code == 422
    assert "Enter a full address starting with https://" in errors_of(response)["terms_url"]
    assert count(PaymentLink) == before
    response = client.post("/settings/account", data={
        "name": "Roastery", "country": "NL", "default_currency": "EUR", "timezone": "Europe/Amsterdam",
        "language": "en", "address": "", "support_email": "", "refund_policy": "", "terms_url": url})
    assert response.status_code == 422 and "terms_url" in errors_of(response)
    db.session.rollback()
    assert db.session.get(Account, owner.account_id).terms_url == ""


def test_q7_requiring_terms_without_any_address_is_refused(client, app):
    _owner(client)
    response = client.post("/links/new", data=link_form(require_terms="1"))
    assert response.status_code == 422
    assert "add it in Settings" in errors_of(response)["terms_url"]


def test_q7_another_merchant_cannot_see_the_consent(client, app):
    _owner(client)
    link = create_link(client, require_terms="1", terms_url=TERMS)
    client.post(start_checkout(client, link.slug), data=buyer_form(terms="1"))
    payment = only_payment()
    other = app.test_client()
    _owner(other, company="Other")
    assert other.get(f"/payments/{payment.id}").status_code == 404


def test_q7_consent_survives_a_link_edit_for_sessions_already_open(client, app):
    owner = _owner(client)
    link = create_link(client, require_terms="1", terms_url=TERMS)
    path = start_checkout(client, link.slug)
    client.post(f"/links/{link.id}/edit", data=link_form(require_terms="1", terms_url=TERMS + "-v2"))
    client.post(path, data=buyer_form(terms="1"))
    assert only_payment().terms_url == TERMS  # the address the buyer was shown (L17 snapshot)
    with write_transaction(db.session):
        pass
    assert owner.account_id
