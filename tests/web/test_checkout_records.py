"""What a payment creates (R1–R6, T1) and the emails it sends (E1–E3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    CheckoutSession,
    Company,
    Contact,
    Deal,
    Payment,
    Role,
    Stage,
    Subscription,
    TimelineEntry,
)
from kassa.services.accounts.accounts import update_account, update_branding, update_notifications
from kassa.services.crm.crm import create_pipeline
from kassa.services.platform.ticks import run_tick
from tests.factories import make_user
from tests.support.app import page_text, run_outbox
from tests.support.checkout import pay_with_ach, pay_with_card, start_checkout, submit_checkout
from tests.support.checkout_flow import (
    actor_for,
    all_payments,
    count,
    edit_link,
    fill_colours,
    item,
    make_link,
    make_shop,
    only_payment,
    pdf_attachment,
    pdf_text,
    subject_of,
)
from tests.support.links import soup_of
from tests.support.mailserver import Mailbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _timeline(subject_type: str, subject_id: int) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(
        select(TimelineEntry.kind).where(TimelineEntry.subject_type == subject_type,
                                         TimelineEntry.subject_id == subject_id).order_by(TimelineEntry.id)
    ))


def _paid(client, slug: str, **overrides) -> Payment:
    response = pay_with_card(client, slug, **overrides)
    assert response.status_code == 303, page_text(response)[:500]
    return all_payments()[-1]


# -- R1: the payment record and its frozen copy -----------------------------------------------------


def test_r1_payment_keeps_its_own_line_items_when_the_link_is_edited_later(client, app):
    owner, link = make_shop("Frozen Shop", items=[
        item("T-shirt", "10.00", quantity="2", description="Organic cotton"), item("Sticker", "5.50")])
    started_before_edit = start_checkout(client, link.slug)
    payment = _paid(client, link.slug)

    edit_link(owner, link, items=[item("T-shirt (new)", "99.00")])
    assert submit_checkout(client, started_before_edit).status_code == 303  # started before: old price

    db.session.rollback()
    payment = db.session.get(Payment, payment.id)
    assert [(i.name, i.description, i.unit_amount_minor, i.quantity, i.frequency) for i in payment.items] == [
        ("T-shirt", "Organic cotton", 1000, 2, "one_time"), ("Sticker", "", 550, 1, "one_time")]
    assert payment.amount_minor == 2550 and payment.currency == "USD"
    assert all_payments()[-1].amount_minor == 2550
    # A checkout started after the edit sells the new version.
    assert _paid(client, link.slug).amount_minor == 9900
    assert [i.name for i in db.session.get(Payment, payment.id).items] == ["T-shirt", "Sticker"]


def test_r1_payment_is_associated_with_its_link_checkout_contact_company_and_deal(client, app):
    _owner, link = make_shop("Assoc Shop")
    response = pay_with_card(client, link.slug)
    payment = only_payment()
    checkout = db.session.scalar(select(CheckoutSession))

    assert payment.link_id == link.id
    assert payment.checkout_session_id == checkout.id and checkout.payment_id == payment.id
    assert payment.contact.email == "ann.buyer@example.com"
    assert payment.company.name == "Buyer Inc"
    assert payment.deal.contact_id == payment.contact_id and payment.deal.company_id == payment.company_id
    assert payment.source == "payment_link"
    assert payment.billing_address["postal_code"] == "12345"
    assert response.status_code == 303


# -- R2: contacts -----------------------------------------------------------------------------------


def test_r2_contact_is_found_by_email_case_insensitively_and_details_are_filled(client, app):
    _owner, link = make_shop("Contact Shop")
    _paid(client, link.slug, email="Ann.Buyer@Example.COM", first_name="", last_name="", phone="", company="")
    contact = db.session.scalar(select(Contact))
    assert (contact.email, contact.first_name, contact.phone) == ("ann.buyer@example.com", "", "")

    _paid(client, link.slug, email="ann.buyer@example.com", first_name="Ann", last_name="Buyer",
          phone="+31 20 123 4567")

    assert count(Contact) == 1
    db.session.rollback()
    contact = db.session.scalar(select(Contact))
    assert (contact.first_name, contact.last_name, contact.phone) == ("Ann", "Buyer", "+31 20 123 4567")
    assert {p.contact_id for p in all_payments()} == {contact.id}
    # A different address is a different contact.
    _paid(client, link.slug, email="bob@example.com")
    assert count(Contact) == 2


def test_r2_company_is_found_or_created_from_the_company_field(client, app):
    _owner, link = make_shop("Company Shop")
    first = _paid(client, link.slug, company="Acme Bikes", email="a@acme.example")
    second = _paid(client, link.slug, company="acme bikes", email="b@acme.example")
    third = _paid(client, link.slug, company="", email="c@other.example")

    assert count(Company) == 1
    company = db.session.scalar(select(Company))
    assert company.name == "Acme Bikes"
    assert first.company_id == second.company_id == company.id
    assert third.company_id is None
    assert db.session.scalar(select(Contact).where(Contact.email == "a@acme.example")).company_id == company.id


def test_a2_the_same_buyer_is_a_separate_contact_in_each_merchant_account(client, app):
    _owner_a, link_a = make_shop("Shop A")
    _owner_b, link_b = make_shop("Shop B")
    a = _paid(client, link_a.slug, email="same@buyer.example")
    b = _paid(client, link_b.slug, email="same@buyer.example")

    assert a.contact_id != b.contact_id
    assert {c.account_id for c in db.session.scalars(select(Contact))} == {a.account_id, b.account_id}


# -- R3: deals --------------------------------------------------------------------------------------


def test_r3_deal_is_closed_won_in_the_default_pipeline_with_the_total_paid(client, app):
    _owner, link = make_shop("Deal Shop", items=[item("Lesson", "40.00", quantity="3"), item("Book", "12.35")])
    payment = _paid(client, link.slug)

    deal = db.session.get(Deal, payment.deal_id)
    assert deal.amount_minor == payment.amount_minor == 13235
    assert deal.currency == "USD"
    assert deal.pipeline.is_default and deal.pipeline.name == "Sales pipeline"
    assert deal.stage.name == "Closed won" and deal.stage.probability == 100
    assert count(Deal) == 1


def test_r3_deal_goes_to_the_links_pipeline_and_stage(client, app):
    from tests.factories import make_merchant

    owner = make_merchant(company="Pipeline Shop")
    pipeline = create_pipeline(actor_for(owner), "Workshops", "Booked, 50\nPaid, 100")
    booked = db.session.scalar(select(Stage).where(Stage.pipeline_id == pipeline.id, Stage.name == "Booked"))
    link = make_link(owner, pipeline_id=pipeline.id, stage_id=booked.id)

    deal = db.session.get(Deal, _paid(client, link.slug).deal_id)

    assert (deal.pipeline_id, deal.stage_id) == (pipeline.id, booked.id)


# -- R4: subscriptions ------------------------------------------------------------------------------


def test_r4_recurring_items_are_grouped_into_subscriptions_by_frequency_and_term(client, app):
    _owner, link = make_shop("Sub Shop", items=[
        item("Coffee beans", "15.00", frequency="monthly", term_type="fixed", term_count="12"),
        item("Filter papers", "3.00", quantity="2", frequency="monthly", term_type="fixed", term_count="12"),
        item("Machine service", "60.00", frequency="yearly", term_type="auto_renew"),
        item("Grinder", "80.00"),
    ])
    with time_machine.travel(datetime(2027, 1, 15, 12, 0, tzinfo=UTC)):
        payment = _paid(client, link.slug)

    assert payment.amount_minor == 1500 + 600 + 6000 + 8000
    subscriptions = list(db.session.scalars(select(Subscription).order_by(Subscription.id)))
    assert len(subscriptions) == 2
    monthly, yearly = subscriptions
    assert (monthly.frequency, monthly.term_type, monthly.term_count, monthly.amount_minor) == (
        "monthly", "fixed", 12, 2100)
    assert [i.name for i in monthly.items] == ["Coffee beans", "Filter papers"]
    assert (yearly.frequency, yearly.term_type, yearly.term_count, yearly.amount_minor) == (
        "yearly", "auto_renew", None, 6000)
    assert [i.name for i in yearly.items] == ["Machine service"]
    for subscription in subscriptions:
        assert subscription.contact_id == payment.contact_id
        assert subscription.deal_id == payment.deal_id
        assert subscription.first_payment_id == payment.id
        assert subscription.payments_made == 1
        assert subscription.status == "active"
        assert subscription.payment_method_token  # the card is kept (as a token) for the next charges
    assert monthly.next_charge_at.date().isoformat() == "2027-02-15"
    assert yearly.next_charge_at.date().isoformat() == "2028-01-15"
    # R3: recurring charges do not make new deals; the first payment made one.
    assert count(Deal) == 1


def test_r4_same_frequency_but_different_term_makes_separate_subscriptions(client, app):
    _owner, link = make_shop("Terms Shop", items=[
        item("A", "10.00", frequency="monthly", term_type="fixed", term_count="12"),
        item("B", "10.00", frequency="monthly", term_type="fixed", term_count="6"),
        item("C", "10.00", frequency="monthly", term_type="auto_renew"),
    ])
    _paid(client, link.slug)

    assert count(Subscription) == 3


# -- R6: timelines ----------------------------------------------------------------------------------


def test_r6_card_payment_shows_submitted_and_succeeded_on_contact_deal_and_company(client, app):
    _owner, link = make_shop("Timeline Shop")
    payment = _paid(client, link.slug)

    for subject_type, subject_id in (("contact", payment.contact_id), ("deal", payment.deal_id),
                                     ("company", payment.company_id), ("payment", payment.id)):
        assert _timeline(subject_type, subject_id) == ["payment.submitted", "payment.succeeded"], subject_type


def test_r6_failed_bank_debit_shows_submitted_then_failed_on_contact_deal_and_company(client, app):
    _owner, link = make_shop("Timeline ACH", allow_ach=True)
    with time_machine.travel(datetime(2027, 3, 4, 10, 0, tzinfo=UTC)):
        assert pay_with_ach(client, link.slug, account_number="000111111113").status_code == 303
    with time_machine.travel(datetime(2027, 3, 10, 10, 5, tzinfo=UTC)):
        assert run_tick().failed == {}
    payment = only_payment()

    assert payment.status == "failed"
    for subject_type, subject_id in (("contact", payment.contact_id), ("deal", payment.deal_id),
                                     ("company", payment.company_id)):
        assert _timeline(subject_type, subject_id) == ["payment.submitted", "payment.failed"], subject_type


# -- T1: test records are flagged -------------------------------------------------------------------


def test_t1_test_mode_payment_makes_contact_company_deal_and_subscription_flagged_test(client, app):
    _owner, link = make_shop("Flag Shop", items=[item("Plan", "9.00", frequency="monthly")])
    payment = _paid(client, link.slug)

    assert payment.mode == "test"
    assert {c.mode for c in db.session.scalars(select(Contact))} == {"test"}
    assert {c.mode for c in db.session.scalars(select(Company))} == {"test"}
    assert {d.mode for d in db.session.scalars(select(Deal))} == {"test"}
    assert {s.mode for s in db.session.scalars(select(Subscription))} == {"test"}


# -- receipt numbers --------------------------------------------------------------------------------


def test_e2_receipt_numbers_are_sequential_per_account_and_independent_between_accounts(client, app):
    _owner_a, link_a = make_shop("Numbers A", allow_ach=True)
    _owner_b, link_b = make_shop("Numbers B")

    a1 = _paid(client, link_a.slug, email="1@a.example")
    b1 = _paid(client, link_b.slug, email="1@b.example")
    assert pay_with_ach(client, link_a.slug, email="2@a.example").status_code == 303  # processing: no number yet
    a2 = _paid(client, link_a.slug, email="3@a.example", card_number="5555555555554444")
    b2 = _paid(client, link_b.slug, email="2@b.example", card_number="5555555555554444")

    assert [a1.receipt_number, a2.receipt_number] == [1, 2]
    assert [b1.receipt_number, b2.receipt_number] == [1, 2]
    ach = db.session.scalar(select(Payment).where(Payment.method == "ach"))
    assert ach.receipt_number is None


# -- E2/E3: the buyer's receipt ---------------------------------------------------------------------


def test_e2_buyer_receipt_email_has_a_pdf_with_amount_merchant_and_test_mark(client, app, mailbox):
    owner, link = make_shop("Bakkerij De Gouden Korst", items=[item("Croissant", "3.25", quantity="4")])
    _paid(client, link.slug, email="receipt@buyer.example")
    run_outbox()

    [message] = mailbox.to("receipt@buyer.example")
    assert subject_of(message) == "Your receipt from Bakkerij De Gouden Korst (R-000001)"
    body = Mailbox.text_of(message)
    assert "$13.00" in body and "Visa •••• 4242" in body
    assert "This was a test payment: no money was moved." in body
    text = pdf_text(pdf_attachment(message))
    assert "$13.00" in text
    assert "Bakkerij De Gouden Korst" in text
    assert "TEST" in text
    assert "R-000001" in text and "Croissant" in text
    assert [name for name, _ in Mailbox.attachments_of(message)] == ["receipt-R-000001.pdf"]
    assert owner.email not in message["To"]


def test_c4_confirmation_offers_the_receipt_download(client, app):
    _owner, link = make_shop("Download Shop")
    response = pay_with_card(client, link.slug)
    page = client.get(response.checkout_path)
    download = soup_of(page).find("a", string=lambda s: s and "Download receipt" in s)
    assert download is not None

    pdf = client.get(download["href"])  # H8: the signed link on the page, not the bare URL

    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "$25.00" in pdf_text(pdf.data) and "Download Shop" in pdf_text(pdf.data)


def test_e3_branding_change_applies_to_the_next_receipt(client, app, mailbox):
    owner, link = make_shop("Old Name Shop")
    _paid(client, link.slug, email="first@buyer.example")
    run_outbox()
    first = pdf_attachment(mailbox.to("first@buyer.example")[0])
    assert "Old Name Shop" in pdf_text(first)
    assert (11, 107, 58) not in fill_colours(first)

    account = db.session.get(Account, owner.account_id)
    update_branding(actor_for(owner), brand_color="#0B6B3A", logo=None)
    update_account(actor_for(owner), name="New Name Shop", country=account.country,
                   default_currency=account.default_currency, timezone=account.timezone,
                   language=account.language, address="Dam 1\nAmsterdam", support_email="help@new.example")
    _paid(client, link.slug, email="second@buyer.example", card_number="5555555555554444")
    run_outbox()

    [second] = mailbox.to("second@buyer.example")
    pdf = pdf_attachment(second)
    assert "New Name Shop" in pdf_text(pdf) and "Old Name Shop" not in pdf_text(pdf)
    assert "Dam 1" in pdf_text(pdf)
    assert (11, 107, 58) in fill_colours(pdf)
    assert subject_of(second).startswith("Your receipt from New Name Shop")
    html = next(p for p in second.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "#0b6b3a" in html.lower()


# -- E1: the merchant's notification ----------------------------------------------------------------


def test_e1_merchant_notification_goes_to_super_admins_and_payments_managers_only(client, app, mailbox):
    owner, link = make_shop("Team Shop")
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    member = make_user(owner.account_id, Role.MEMBER)
    second_admin = make_user(owner.account_id, Role.SUPER_ADMIN)

    _paid(client, link.slug, email="buyer@team.example")
    run_outbox()

    for user in (owner, manager, second_admin):
        [note] = mailbox.to(user.email)
        assert subject_of(note) == "[Test] You received $25.00"
        assert "buyer@team.example paid $25.00." in Mailbox.text_of(note)
    assert mailbox.to(member.email) == []
    assert len(mailbox.to("buyer@team.example")) == 1


def test_e1_merchant_notification_is_not_sent_when_switched_off(client, app, mailbox):
    owner, link = make_shop("Quiet Shop")
    update_notifications(actor_for(owner), {"payment_received": False})
    assert db.session.get(Account, owner.account_id).notifications["payment_received"] is False

    _paid(client, link.slug, email="buyer@quiet.example")
    run_outbox()

    assert mailbox.to(owner.email) == []
    assert len(mailbox.to("buyer@quiet.example")) == 1  # the buyer's receipt still goes out


def test_e1_switched_off_directly_on_the_account_also_stops_it(client, app, mailbox):
    owner, link = make_shop("Quiet Shop 2")
    with write_transaction(db.session) as session:
        account = session.get(Account, owner.account_id)
        account.notifications = {**account.notifications, "payment_received": False}

    _paid(client, link.slug, email="buyer@quiet2.example")
    run_outbox()

    assert mailbox.to(owner.email) == []


def test_e1_bank_debit_notifies_the_merchant_when_it_succeeds_not_at_submit(client, app, mailbox):
    owner, link = make_shop("ACH Team", allow_ach=True)
    with time_machine.travel(datetime(2027, 3, 4, 10, 0, tzinfo=UTC)):
        pay_with_ach(client, link.slug)
        run_outbox()
        assert mailbox.to(owner.email) == []
    with time_machine.travel(datetime(2027, 3, 10, 10, 5, tzinfo=UTC)):
        run_tick()
        run_outbox()
    assert [subject_of(m) for m in mailbox.to(owner.email)] == ["[Test] You received $25.00"]


def test_r6_merchant_sees_the_payment_on_the_contact_company_and_deal_pages(client, app):
    from tests.factories import PASSWORD, make_merchant
    from tests.support.app import log_in

    owner, link = make_shop("Record Pages")
    payment = _paid(client, link.slug, email="pages@buyer.example", company="Pages Inc")
    stranger = make_merchant(company="Someone Else")
    log_in(client, owner.email, PASSWORD)

    for path in (f"/contacts/{payment.contact_id}", f"/companies/{payment.company_id}", f"/deals/{payment.deal_id}"):
        response = client.get(path)
        assert response.status_code == 200, path
        text = page_text(response)
        assert "Payment submitted" in text and "Payment succeeded" in text, path
        assert "$25.00" in text, path
    assert "pages@buyer.example" in page_text(client.get(f"/contacts/{payment.contact_id}"))
    # A2: another merchant gets 404 for these records.
    client.post("/logout")
    log_in(client, stranger.email, PASSWORD)
    for path in (f"/contacts/{payment.contact_id}", f"/companies/{payment.company_id}", f"/deals/{payment.deal_id}"):
        assert client.get(path).status_code == 404, path
