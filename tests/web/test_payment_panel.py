"""One payment's panel (P4–P6): cards, amounts in two currencies, associations; Send receipt (E5) and the
copy of the bank-debit authorization (E6)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import AuditEvent, Contact, EmailMessage, Mandate, Payment, Role, Subscription
from tests.factories import make_merchant, make_payment, make_user
from tests.support.app import run_outbox
from tests.support.checkout import pay_with_ach, pay_with_card
from tests.support.checkout_flow import (
    field_error,
    item,
    make_link,
    only_payment,
    pdf_attachment,
    pdf_text,
    plain,
    subject_of,
)
from tests.support.payments import add_items, login, soup_of, text_of

CARDS = ["card-history", "card-items", "card-subscriptions", "card-associations", "card-refunds"]


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def owner(client):
    owner = make_merchant()
    login(client, owner)
    return owner


def _panel(client, payment_id: int, **headers):
    response = client.get(f"/payments/{payment_id}", headers=headers)
    assert response.status_code == 200
    return soup_of(response)


def _dd(panel, term: str) -> str:
    dt = panel.find("dt", string=term)
    return text_of(dt.find_next_sibling("dd"))


# -- P4 the panel -----------------------------------------------------------------------------------


def test_p4_panel_is_a_full_page_and_an_htmx_fragment_with_every_card(client, owner):
    link = make_link(owner, name="Spring concert", items=[item("Concert ticket", "25.00", quantity="2")])
    assert pay_with_card(client, link.slug).status_code == 303
    payment = only_payment()

    page = _panel(client, payment.id)
    fragment = _panel(client, payment.id, **{"HX-Request": "true"})

    assert page.find("html") is not None and page.find("a", string="← Payments") is not None
    assert fragment.find("html") is None and fragment.find("nav") is None
    for panel in (page, fragment):
        aside = panel.select_one("#payment-panel[role=dialog]")
        assert aside is not None and aside.find("h2").get_text(strip=True) == "Payment $50.00"
        for card in CARDS:
            details = panel.select_one(f"details#{card}")
            assert details is not None, card
            assert details.has_attr("data-remember") and details.find("summary") is not None  # collapsible
    head = page.select_one(".pp__head")
    assert "$50.00" in text_of(head.select_one(".pp__amount")) and "Succeeded" in text_of(head)
    assert _dd(head, "Buyer") == "Ann Buyer ann.buyer@example.com"
    assert _dd(head, "Payment method").startswith("Visa •••• 4242")
    assert _dd(head, "Source") == "Payment link · Spring concert"  # V6: the kind and the name
    assert _dd(head, "Receipt number") == f"R-{payment.receipt_number:06d}"
    items = text_of(page.select_one("#card-items"))
    assert "Concert ticket" in items and "$50.00" in items
    history = text_of(page.select_one("#card-history"))
    assert "Payment submitted" in history and "Payment succeeded" in history
    assert "Not part of a subscription." in text_of(page.select_one("#card-subscriptions"))
    assert "No refunds." in text_of(page.select_one("#card-refunds"))
    assert "Test" in text_of(head)  # a test-mode payment is marked


def test_p4_gross_amount_in_the_index_opens_the_panel(client, owner):
    payment = make_payment(owner.account_id, amount_minor=1234)
    add_items(payment.id, ("Extra", 100, 2))
    index = soup_of(client.get("/payments/"))
    link = index.select_one("a.amount-link")
    assert link.get_text(strip=True) == "$12.34"
    assert link["href"] == f"/payments/{payment.id}" and link["hx-get"] == link["href"]
    assert link["hx-target"] == "#panel-slot"
    panel = _panel(client, payment.id, **{"HX-Request": "true"})
    assert "Extra" in text_of(panel.select_one("#card-items"))


def test_p4_subscriptions_card_lists_the_payments_subscription(client, owner):
    link = make_link(owner, items=[item("Coffee club", "18.00", frequency="monthly")])
    pay_with_card(client, link.slug)
    payment = only_payment()
    card = text_of(_panel(client, payment.id).select_one("#card-subscriptions"))
    assert "$18.00" in card and "month" in card.lower()


# -- P5 two currencies ------------------------------------------------------------------------------


def test_p5_foreign_currency_payment_shows_fee_and_net_in_both_currencies_with_the_rate(client, owner):
    # A USD account selling in EUR: the sandbox settles in USD at its fixed rate (0.92 EUR per USD).
    link = make_link(owner, currency="EUR", items=[item("Museum pass", "100.00")])
    pay_with_card(client, link.slug)
    payment = only_payment()
    assert (payment.currency, payment.settlement_currency) == ("EUR", "USD")
    rate = Decimal(payment.exchange_rate)
    assert rate == Decimal("1.086956522")
    assert payment.fee_minor == 320  # 2.9 % + 0.30
    assert payment.fee_settlement_minor == 348  # €3.20 × 1.086956522, rounded half up
    assert payment.net_settlement_minor == 10870 - 348

    amounts = _panel(client, payment.id).select_one("#card-amounts")
    assert _dd(amounts, "Gross") == "€100.00"
    assert _dd(amounts, "Fee") == "€3.20 ($3.48)"
    assert _dd(amounts, "Net") == "€96.80 ($105.22)"
    assert "settlement currency (USD), at the processor's rate of 1.086956522" in text_of(amounts)


def test_p5_same_currency_shows_no_conversion(client, owner):
    payment = make_payment(owner.account_id, amount_minor=10_000, fee_minor=320)
    amounts = _panel(client, payment.id).select_one("#card-amounts")
    assert _dd(amounts, "Fee") == "$3.20" and _dd(amounts, "Net") == "$96.80"
    assert "rate" not in text_of(amounts)


def test_p5_factory_payment_in_eur_settled_in_usd(client, owner):
    payment = make_payment(owner.account_id, amount_minor=5000, currency="EUR", fee_minor=175,
                           settlement_currency="USD", fee_settlement_minor=191, net_settlement_minor=5259,
                           exchange_rate="1.09")
    amounts = _panel(client, payment.id).select_one("#card-amounts")
    assert _dd(amounts, "Fee") == "€1.75 ($1.91)"
    assert _dd(amounts, "Net") == "€48.25 ($52.59)"
    assert "rate of 1.09" in text_of(amounts)


# -- P6 associations --------------------------------------------------------------------------------


def _contact(account_id: int, email: str, mode: str = "test", **names) -> Contact:
    with write_transaction(db.session) as session:
        contact = Contact(account_id=account_id, mode=mode, email=email, **names)
        session.add(contact)
        session.flush()
        return contact


def _assoc(panel) -> dict[str, str]:
    rows = panel.select("#card-associations li.assoc__row")
    return {text_of(row.select_one(".assoc__kind")): text_of(row.select_one("div")).split(" ", 1)[1] for row in rows}


def test_p6_add_replace_label_and_remove_an_association(client, owner):
    payment = make_payment(owner.account_id)
    ann = _contact(owner.account_id, "ann@x.example", first_name="Ann", last_name="Smith")
    bob = _contact(owner.account_id, "bob@x.example", first_name="Bob", last_name="Jones")
    url = f"/payments/{payment.id}/associations/contact"

    # + Add: the dialog searches this account's contacts in the payment's mode.
    dialog = soup_of(client.get(url, query_string={"q": "ann"}))
    assert [text_of(label) for label in dialog.select("fieldset label")] == ["Ann Smith ann@x.example"]
    assert client.post(url, data={"record_id": str(ann.id), "label": "Buyer"}).status_code == 303
    panel = _panel(client, payment.id)
    assert _assoc(panel)["Contact"] == "Ann Smith Buyer"
    assert panel.select_one("#card-associations a", string="Ann Smith")["href"] == f"/contacts/{ann.id}"

    # Replace: never two of a kind.
    client.post(url, data={"record_id": str(bob.id)})
    db.session.expire_all()
    row = db.session.get(Payment, payment.id)
    assert (row.contact_id, row.contact_label) == (bob.id, None)

    # Label only.
    client.post(url, data={"action": "label", "label": "Billing contact"})
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).contact_label == "Billing contact"
    assert "Bob Jones Billing contact" in _assoc(_panel(client, payment.id))["Contact"]

    # Remove.
    client.post(url, data={"action": "remove"})
    db.session.expire_all()
    row = db.session.get(Payment, payment.id)
    assert (row.contact_id, row.contact_label) == (None, None)
    panel = _panel(client, payment.id)
    assert "+ Add" in text_of(panel.select_one("#card-associations li.assoc__row:not(.assoc__row--source)"))
    history = text_of(panel.select_one("#card-history"))
    assert history.count("Associations changed") == 3
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "payment.association_changed")) == 3


def test_p6_each_kind_once_company_deal_subscription(client, owner):
    from tests.web.test_tenancy import _company, _deal

    link = make_link(owner, items=[item("Coffee club", "18.00", frequency="monthly")])
    pay_with_card(client, link.slug)
    payment = only_payment()
    company_id, deal_id = _company(owner.account_id), _deal(owner.account_id)
    with write_transaction(db.session) as session:  # the test-tenancy makers make live records
        from kassa.models import Company, Deal

        session.get(Company, company_id).mode = "test"
        session.get(Deal, deal_id).mode = "test"
    subscription_id = payment.subscription_id
    for kind, record_id in (("company", company_id), ("deal", deal_id), ("subscription", subscription_id)):
        response = client.post(f"/payments/{payment.id}/associations/{kind}", data={"record_id": str(record_id)})
        assert response.status_code == 303, kind
    db.session.expire_all()
    row = db.session.get(Payment, payment.id)
    assert (row.company_id, row.deal_id, row.subscription_id) == (company_id, deal_id, subscription_id)
    assert _assoc(_panel(client, payment.id))["Subscription"].startswith(f"Subscription #{subscription_id}")


def test_p6_records_of_another_account_or_mode_are_refused(client, owner):
    payment = make_payment(owner.account_id, mode="test")
    other = make_merchant()
    theirs = _contact(other.account_id, "theirs@x.example")
    live = _contact(owner.account_id, "live@x.example", mode="live")
    url = f"/payments/{payment.id}/associations/contact"

    for record in (theirs, live):
        assert client.post(url, data={"record_id": str(record.id)}).status_code == 404
    assert client.post(url, data={"record_id": "99999999999999999999999"}).status_code == 404
    search = soup_of(client.get(url))
    assert "theirs@x.example" not in text_of(search) and "live@x.example" not in text_of(search)
    assert client.get(f"/payments/{payment.id}/associations/wallet").status_code == 404
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).contact_id is None


def test_p6_label_without_an_association_and_a_missing_choice_show_a_message(client, owner):
    payment = make_payment(owner.account_id)
    url = f"/payments/{payment.id}/associations/deal"
    response = client.post(url, data={"action": "label", "label": "x"}, follow_redirects=True)
    assert "Add the association first." in text_of(soup_of(response))
    response = client.post(url, data={"record_id": ""}, follow_redirects=True)
    assert "Choose a record." in text_of(soup_of(response))
    htmx = client.post(url, data={"record_id": ""}, headers={"HX-Request": "true"})
    assert json.loads(htmx.headers["HX-Trigger"])["kassa:toast"] == {"message": "Choose a record.", "kind": "error"}


# -- E5 send receipt --------------------------------------------------------------------------------


def test_e5_send_receipt_to_changed_and_added_recipients_through_the_outbox(client, owner, mailbox):
    link = make_link(owner, items=[item("Concert ticket", "25.00")])
    pay_with_card(client, link.slug, email="buyer@example.com")
    payment = only_payment()
    run_outbox()
    mailbox.messages.clear()

    dialog = soup_of(client.get(f"/payments/{payment.id}/send-receipt"))
    assert dialog.select_one("#f-recipients").get_text() == "buyer@example.com"
    options = [text_of(o) for o in dialog.select("#f-receipt option")]
    assert len(options) == 1 and options[0].startswith(f"R-{payment.receipt_number:06d} · $25.00")

    response = client.post(f"/payments/{payment.id}/send-receipt", data={
        "receipt": str(payment.id), "recipients": "buyer@example.com, Accounts@Company.example"})
    assert response.status_code == 303
    assert mailbox.messages == []  # queued in the outbox, sent by the worker
    run_outbox()

    assert {m["To"] for m in mailbox.messages} == {"buyer@example.com", "accounts@company.example"} or \
        len(mailbox.messages) == 1
    sent = mailbox.to("accounts@company.example")
    assert sent, [m["To"] for m in mailbox.messages]
    pdf = pdf_text(pdf_attachment(sent[0]))
    assert f"R-{payment.receipt_number:06d}" in pdf and "Concert ticket" in pdf
    email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "receipt_resent"))
    assert email.to_addrs == ["buyer@example.com", "accounts@company.example"]
    assert email.status == "sent"
    history = text_of(_panel(client, payment.id).select_one("#card-history"))
    assert f"Receipt sent · buyer@example.com, accounts@company.example by {owner.name}" in history
    # The email log lists it.
    log = text_of(soup_of(client.get("/settings/emails")))
    assert "accounts@company.example" in log


@pytest.mark.parametrize(("recipients", "message"), [
    ("", "Enter at least one email address."),
    ("not-an-email", "“not-an-email” is not a valid email address."),
    ("a@x.example, b@", "“b@” is not a valid email address."),
    (", ".join(f"r{i}@x.example" for i in range(11)), "Send to at most 10 addresses at once."),
])
def test_e5_recipients_are_validated(client, owner, recipients, message):
    payment = make_payment(owner.account_id)
    response = client.post(f"/payments/{payment.id}/send-receipt", data={"receipt": str(payment.id),
                                                                        "recipients": recipients})
    assert response.status_code == 422
    assert message in field_error(response, "recipients")
    assert db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "receipt_resent")) is None


def test_e5_ten_recipients_are_fine(client, owner, mailbox):
    payment = make_payment(owner.account_id)
    to = ", ".join(f"r{i}@x.example" for i in range(10))
    assert client.post(f"/payments/{payment.id}/send-receipt", data={"receipt": str(payment.id),
                                                                     "recipients": to}).status_code == 303
    run_outbox()
    from email.utils import getaddresses

    assert sorted(addr for _name, addr in getaddresses([m["To"] for m in mailbox.messages])) == sorted(
        to.split(", "))


def test_e5_subscription_payment_can_send_any_of_its_charges_receipts(client, owner, mailbox):
    link = make_link(owner, items=[item("Coffee club", "18.00", frequency="monthly")])
    pay_with_card(client, link.slug)
    first = only_payment()
    renewal = make_payment(owner.account_id, amount_minor=1800, subscription_id=first.subscription_id,
                           source="subscription")
    other = make_payment(owner.account_id)  # not a charge of this subscription
    run_outbox()
    mailbox.messages.clear()

    dialog = soup_of(client.get(f"/payments/{renewal.id}/send-receipt"))
    values = {o["value"] for o in dialog.select("#f-receipt option")}
    assert values == {str(first.id), str(renewal.id)}

    response = client.post(f"/payments/{renewal.id}/send-receipt", data={"receipt": str(first.id),
                                                                        "recipients": "me@x.example"})
    assert response.status_code == 303
    run_outbox()
    [message] = mailbox.to("me@x.example")
    assert f"R-{first.receipt_number:06d}" in pdf_text(pdf_attachment(message))
    # Another payment's receipt can't be smuggled in.
    refused = client.post(f"/payments/{renewal.id}/send-receipt", data={"receipt": str(other.id),
                                                                       "recipients": "me@x.example"})
    assert refused.status_code == 422
    assert "Choose one of this payment's receipts." in field_error(refused, "receipt")
    assert db.session.get(Subscription, first.subscription_id).status == "active"


def test_e5_a_payment_without_a_receipt_has_no_send_action(client, owner):
    payment = make_payment(owner.account_id, status="processing", method="ach")
    panel = _panel(client, payment.id)
    assert panel.select_one(".pp__actions").find("a", string="Send receipt") is None
    response = client.post(f"/payments/{payment.id}/send-receipt", data={"receipt": str(payment.id),
                                                                        "recipients": "me@x.example"})
    assert response.status_code == 422


# -- E6 authorization copy --------------------------------------------------------------------------


def test_e6_ach_payment_authorization_copy_is_emailed_to_the_current_user_as_a_pdf(client, owner, mailbox):
    link = make_link(owner, items=[item("Workshop", "120.00")], allow_ach=True)
    assert pay_with_ach(client, link.slug).status_code == 303
    payment = only_payment()
    mandate = db.session.scalar(select(Mandate).where(Mandate.payment_id == payment.id))
    assert mandate is not None
    run_outbox()
    mailbox.messages.clear()

    panel = _panel(client, payment.id)
    action = panel.select_one(".pp__actions").find("a", string="Get a copy of the authorization")
    assert action is not None
    dialog = soup_of(client.get(action["href"]))
    assert owner.email in text_of(dialog)
    assert client.post(f"/payments/{payment.id}/authorization").status_code == 303
    run_outbox()

    [message] = mailbox.to(owner.email)
    text = pdf_text(pdf_attachment(message))
    assert "•••• 6789" in text or "6789" in text
    assert plain(mandate.text)[:60] in text
    assert "By accepting, you authorize" in text
    assert "Debit authorization" in text
    assert subject_of(message)
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payment.authorization_copy_sent"))


def test_e6_a_card_payment_has_no_authorization_to_copy(client, owner, mailbox):
    payment = make_payment(owner.account_id)
    panel = _panel(client, payment.id)
    assert panel.select_one(".pp__actions").find("a", string="Get a copy of the authorization") is None
    response = client.post(f"/payments/{payment.id}/authorization", follow_redirects=True)
    assert "Only bank debit payments have a debit authorization." in text_of(soup_of(response))
    run_outbox()
    assert mailbox.messages == []


# -- roles ------------------------------------------------------------------------------------------


def test_a1_member_cannot_open_panel_or_its_actions(client):
    owner = make_merchant()
    payment = make_payment(owner.account_id)
    member = make_user(owner.account_id, Role.MEMBER)
    login(client, member)
    for method, path in (("GET", f"/payments/{payment.id}"), ("GET", f"/payments/{payment.id}/send-receipt"),
                         ("POST", f"/payments/{payment.id}/send-receipt"),
                         ("POST", f"/payments/{payment.id}/authorization"),
                         ("GET", f"/payments/{payment.id}/associations/contact"),
                         ("POST", f"/payments/{payment.id}/associations/contact")):
        assert client.open(path, method=method).status_code == 403, path


def test_a1_payments_manager_may(client):
    owner = make_merchant()
    payment = make_payment(owner.account_id)
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, manager)
    assert client.get(f"/payments/{payment.id}").status_code == 200
    assert client.post(f"/payments/{payment.id}/send-receipt", data={
        "receipt": str(payment.id), "recipients": "x@y.example"}).status_code == 303


def test_p6_a_nul_character_in_search_or_label_is_refused_not_a_500(client, owner):
    """PostgreSQL refuses NUL in text; a crafted request gets a 400 with a message and changes nothing."""
    payment = make_payment(owner.account_id)
    ann = _contact(owner.account_id, "ann@x.example", first_name="Ann")
    url = f"/payments/{payment.id}/associations/contact"
    assert client.get(url, query_string={"q": "an\x00n"}).status_code == 400
    refused = client.post(url, data={"record_id": str(ann.id), "label": "Bu\x00yer"})
    assert refused.status_code == 400
    assert "NUL character" in text_of(soup_of(refused))
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).contact_id is None
    assert client.post(url, data={"record_id": str(ann.id), "label": "Buyer"}).status_code == 303
    assert client.post(url, data={"action": "label", "label": "Pay\x00er"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).contact_label == "Buyer"
