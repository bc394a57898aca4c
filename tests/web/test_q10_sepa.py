"""Q10 SEPA Direct Debit in the sandbox beside ACH: a EUR link offers SEPA (never US ACH), a USD link ACH (never SEPA);
the IBAN is checked at its field; the SEPA Core mandate is shown, accepted and stored with its wording's version; the
debit settles or fails (with the bank's reason, told to the buyer) after the sandbox's 5 clearing days; the
processing email and the receipt carry the pre-notification; the index, filters and exports say "SEPA Direct Debit"."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import openpyxl
import pytest
import time_machine
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Export, Mandate, Payment
from kassa.services.platform.ticks import run_tick
from tests.support.app import page_text, run_outbox
from tests.support.checkout import pay_with_ach, pay_with_sepa, start_checkout, submit_checkout
from tests.support.checkout_flow import (
    count,
    field_error,
    field_errors,
    make_link,
    make_shop,
    only_payment,
    pdf_attachment,
    pdf_text,
    sandbox_charges,
    soup_of,
    subject_of,
)
from tests.support.mailserver import Mailbox
from tests.support.payments import login

# Thursday 4 March 2027 10:00 UTC: 5 business days later is Thursday 11 March (across a weekend).
SUBMITTED = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)
AFTER_4_BUSINESS_DAYS = datetime(2027, 3, 10, 23, 0, tzinfo=UTC)
AFTER_5_BUSINESS_DAYS = datetime(2027, 3, 11, 10, 1, tzinfo=UTC)
BUYER = "sepa.buyer@example.com"
SEPA_IBANS = [
    ("DE89370400440532013000", "succeeded", None, None),
    ("NL39RABO0300065264", "succeeded", None, None),
    ("AT861904300235473202", "failed", "insufficient_funds", "The bank debit failed because of insufficient funds."),
    ("AT981904300000343434", "failed", "charge_exceeds_source_limit",
     "The bank debit failed because it is over this bank account's limit."),
]


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def eur_shop(app):
    return make_shop("Koffiebranderij Boon", currency="EUR", allow_ach=True)


def _tick() -> None:
    report = run_tick()
    assert report.failed == {}, report.failed


def _payment(payment_id: int) -> Payment:
    db.session.rollback()
    return db.session.get(Payment, payment_id)


def test_q10_a_eur_link_offers_sepa_and_no_ach_and_a_usd_link_ach_and_no_sepa(client, eur_shop):
    owner, eur_link = eur_shop
    usd_link = make_link(owner, currency="USD", allow_ach=True)

    eur_page = soup_of(client.get(start_checkout(client, eur_link.slug)))
    assert [r["value"] for r in eur_page.select("input[name=method]")] == ["card", "sepa"]
    assert eur_page.select_one("#f-iban") is not None and eur_page.select_one("#f-routing_number") is None
    assert "SEPA Core Direct Debit mandate" in eur_page.select_one("#mandate-text").get_text()
    assert "NL39 RABO 0300 0652 64" in eur_page.select_one(".testcards").get_text()  # Stripe's test IBAN

    usd_page = soup_of(client.get(start_checkout(client, usd_link.slug)))
    assert [r["value"] for r in usd_page.select("input[name=method]")] == ["card", "ach"]
    assert usd_page.select_one("#f-iban") is None and usd_page.select_one("#f-routing_number") is not None
    assert "SEPA" not in usd_page.get_text()


@pytest.mark.parametrize(("currency", "method"), [("EUR", "ach"), ("USD", "sepa")])
def test_q10_a_tampered_post_with_a_method_the_link_doesnt_offer_is_refused_and_nothing_is_charged(
        client, app, currency, method):
    _owner, link = make_shop(f"Tamper {currency}", currency=currency, allow_ach=True)
    path = start_checkout(client, link.slug)
    # Both methods' fields, so only the method itself can be what is refused.
    response = submit_checkout(client, path, method, iban="NL39RABO0300065264", sepa_mandate="1",
                               routing_number="110000000", account_number="000123456789", ach_mandate="1")
    assert response.status_code == 422
    assert "method" in field_errors(response) or "Choose how to pay." in page_text(response)
    assert count(Payment) == 0 and sandbox_charges() == 0


@pytest.mark.parametrize(("iban", "message"), [
    ("NL39RABO0300065265", "Your IBAN is invalid. Check it for typos."),
    ("NL39RABO030006526", "Your IBAN is incomplete."),
    ("US64SVBKUS6S3300958879", "Your IBAN must start with the code of a SEPA country, like NL, BE, DE or FR."),
    ("", "Enter your IBAN."),
    ("BE62510007547061", "Use a test IBAN in test mode."),  # valid, but not one of Stripe's test IBANs
])
def test_q10_a_bad_iban_is_shown_at_the_iban_field_and_nothing_changes(client, eur_shop, iban, message):
    _owner, link = eur_shop
    response = pay_with_sepa(client, link.slug, iban=iban)
    assert response.status_code == 422
    assert field_error(response, "iban") == message
    assert soup_of(response).select_one("#f-iban").get("value", "") == iban  # kept for the buyer to fix
    assert count(Payment) == 0 and count(Mandate) == 0 and sandbox_charges() == 0


def test_q10_the_mandate_must_be_accepted(client, eur_shop):
    _owner, link = eur_shop
    response = pay_with_sepa(client, link.slug, sepa_mandate=None)
    assert field_error(response, "sepa_mandate") == "To pay by SEPA Direct Debit, accept the mandate."
    assert count(Payment) == 0


def test_q10_the_accepted_mandate_is_stored_with_ip_user_agent_time_and_wording_version(client, eur_shop):
    _owner, link = eur_shop
    with time_machine.travel(SUBMITTED, tick=False):
        path = start_checkout(client, link.slug)
        response = client.post(path, data={**_sepa_form(), "iban": "de89 3704 0044 0532 0130 00"},
                               headers={"User-Agent": "Mozilla/5.0 (Q10 phone)"})
    assert response.status_code == 303, field_errors(response)
    payment = only_payment()
    mandate = db.session.scalar(select(Mandate))
    assert (payment.method, payment.bank_last4, payment.card_last4) == ("sepa", "3000", None)
    assert mandate.payment_id == payment.id
    assert (mandate.scheme, mandate.text_version, mandate.iban_country, mandate.routing_number) == (
        "sepa", "sepa-core-1", "DE", "")
    assert mandate.reference == f"KASSA-P-{payment.id:06d}"
    assert (mandate.ip, mandate.user_agent, mandate.accepted_at) == ("127.0.0.1", "Mozilla/5.0 (Q10 phone)", SUBMITTED)
    assert (mandate.account_holder_name, mandate.bank_last4) == ("Ann Buyer", "3000")
    assert mandate.text.startswith("SEPA Core Direct Debit mandate. By accepting this mandate, you authorise (A) "
                                   "Koffiebranderij Boon")
    assert "€25.00" in mandate.text and "within 8 weeks" in mandate.text


def _sepa_form() -> dict[str, str]:
    from tests.support.checkout import buyer_form
    return buyer_form("sepa")


@pytest.mark.parametrize(("iban", "final", "code", "reason"), SEPA_IBANS, ids=[i[0] for i in SEPA_IBANS])
def test_q10_sepa_debit_processes_for_5_business_days_then_settles_or_fails_with_the_reason(
        client, eur_shop, mailbox: Mailbox, iban, final, code, reason):
    _owner, link = eur_shop
    with time_machine.travel(SUBMITTED):
        response = pay_with_sepa(client, link.slug, iban=iban, email=BUYER)
        assert response.status_code == 303, field_errors(response)
        payment = only_payment()
        assert (payment.status, payment.method, payment.bank_last4) == ("processing", "sepa", iban[-4:])
        processing_page = page_text(client.get(response.checkout_path))
        assert "will be debited by SEPA Direct Debit" in processing_page
        assert f"SEPA Direct Debit •••• {iban[-4:]}" in processing_page
        run_outbox()
        [first] = mailbox.to(BUYER)
        assert subject_of(first) == "Your bank payment to Koffiebranderij Boon is processing"
        # The pre-notification: amount, date of debit, mandate reference, creditor.
        assert (f"SEPA Direct Debit pre-notification: Koffiebranderij Boon will debit €25.00 from your account (IBAN "
                f"ending in {iban[-4:]}) on Mar 11, 2027, under mandate reference KASSA-P-{payment.id:06d}."
                ) in " ".join(Mailbox.text_of(first).split())

    with time_machine.travel(AFTER_4_BUSINESS_DAYS):
        _tick()
        assert _payment(payment.id).status == "processing"

    with time_machine.travel(AFTER_5_BUSINESS_DAYS):
        _tick()
        settled = _payment(payment.id)
        assert (settled.status, settled.failure_code, settled.failure_message) == (final, code, reason)
        run_outbox()
        latest = mailbox.to(BUYER)[-1]
        assert len(mailbox.to(BUYER)) == 2
        if final == "succeeded":
            assert subject_of(latest) == "Your receipt from Koffiebranderij Boon (R-000001)"
            receipt = pdf_text(pdf_attachment(latest))
            assert "SEPA Direct Debit •••• " + iban[-4:] in receipt
            for part in ("pre-notification", "Koffiebranderij Boon will debit €25.00", "Mar 11, 2027",
                         f"KASSA-P-{payment.id:06d}"):
                assert part in receipt, part
        else:
            assert subject_of(latest) == "Your bank payment to Koffiebranderij Boon didn't go through"
            assert reason in Mailbox.text_of(latest)
            assert reason in page_text(client.get(response.checkout_path))
        _tick()  # idempotent
        run_outbox()
        assert len(mailbox.to(BUYER)) == 2
    assert sandbox_charges() == 1


def test_q10_the_index_filter_and_export_show_sepa_direct_debit_with_the_last_4_only(client, eur_shop):
    owner, link = eur_shop
    usd_link = make_link(owner, currency="USD", allow_ach=True)
    assert pay_with_sepa(client, link.slug, email="sepa@example.com").status_code == 303
    assert pay_with_ach(client, usd_link.slug, email="ach@example.com").status_code == 303
    login(client, owner)

    index = client.get("/payments/")
    assert "SEPA Direct Debit •••• 5264" in page_text(index)
    assert "NL39RABO0300065264" not in index.get_data(as_text=True)
    filtered = page_text(client.get("/payments/", query_string={"method": "sepa"}))
    assert "sepa@example.com" in filtered and "ach@example.com" not in filtered
    assert "Payment method: SEPA Direct Debit" in filtered

    sepa = db.session.scalar(select(Payment).where(Payment.method == "sepa"))
    panel = page_text(client.get(f"/payments/{sepa.id}"))
    assert "SEPA Direct Debit •••• 5264" in panel

    href = soup_of(client.get("/payments/?method=sepa")).find("a", string=lambda s: s and s.strip() == "Export")["href"]
    dialog = soup_of(client.get(href))
    data = {"state": dialog.select_one('input[name="state"]')["value"],
            "tab": dialog.select_one('input[name="tab"]')["value"], "name": "SEPA", "language": "en",
            "columns": [box["value"] for box in dialog.select('input[name="columns"][checked]')]}
    files = {}
    for file_format in ("csv", "xlsx"):
        assert client.post("/exports/payments", data={**data, "file_format": file_format}).status_code == 303
        run_outbox()
        db.session.rollback()
        export = db.session.scalar(select(Export).order_by(Export.id.desc()))
        assert export.status == "done"
        files[file_format] = client.get(f"/exports/{export.id}/download").data
    # CSV keeps the stored codes (B10), spreadsheets show the app's words; the last 4 only, never the IBAN.
    rows = list(csv.reader(io.StringIO(files["csv"].decode("utf-8-sig"))))
    method_col, last4_col = rows[0].index("Payment method"), rows[0].index("Last 4")
    assert [(row[method_col], row[last4_col]) for row in rows[1:]] == [("sepa", "5264")]
    sheet = openpyxl.load_workbook(io.BytesIO(files["xlsx"])).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert [row[values[0].index("Payment method")] for row in values[1:]] == ["SEPA Direct Debit"]
    assert b"RABO0300065264" not in files["csv"]


def test_q10_the_link_editor_offers_the_bank_debit_of_the_currency(client, app):
    owner, _link = make_shop("Editor Q10")
    login(client, owner)
    base = {"name": "Beans", "items-0-name": "Beans", "items-0-unit_price": "12.50", "items-0-quantity": "1",
            "items-0-frequency": "one_time", "allow_card": "1", "allow_ach": "1", "action": "refresh"}
    page = soup_of(client.post("/links/new", data={**base, "currency": "EUR"}))
    label = page.select_one("label[for=f-allow_ach]") or page.find("input", attrs={"name": "allow_ach"}).parent
    assert "SEPA Direct Debit" in label.get_text()
    page = soup_of(client.post("/links/new", data={**base, "currency": "USD"}))
    assert "Bank debit (ACH)" in page.get_text() and "SEPA" not in page.select_one("#f-payment_methods").get_text()
    saved = client.post("/links/new", data={**base, "currency": "GBP", "action": "save"})
    assert ("Bank debit is available for links in USD (ACH) and EUR (SEPA Direct Debit)."
            in page_text(saved))


def test_q10_the_sepa_checkout_page_stays_under_30_kb_with_its_css_and_js(client, eur_shop):
    """Q10/Q12: the SEPA checkout (card and SEPA fields, mandate, test IBANs) with its stylesheet and script."""
    _owner, link = eur_shop
    html = client.get(start_checkout(client, link.slug)).data
    assets = re.findall(rb'(?:href|src)="(/assets/[^"]+)"', html)
    assert assets
    total = len(html) + sum(len(client.get(a.decode().replace("&amp;", "&")).data) for a in assets)
    assert b'name="iban"' in html and total < 30 * 1024, total
