"""Q5 usage limit: a link stops after N completed payments (seats taken at confirm, given back on a decline,
counted in the transaction that records the payment) or at a date, with a polite page for later buyers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Payment, PaymentLink
from kassa.processors.registry import sandbox
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import count, sandbox_charges
from tests.support.links import create_link, errors_of, link_form, soup_of


@pytest.fixture
def live(app):
    app.config["KASSA_LIVE_PROCESSOR"] = sandbox  # live checkouts (the ones that take seats) on the sandbox
    return app


def _owner(client, company="Roastery"):
    owner = make_merchant(company=company)
    log_in(client, owner.email, PASSWORD)
    return owner


def _link(link_id: int) -> PaymentLink:
    db.session.rollback()
    return db.session.get(PaymentLink, link_id)


def _pay(client, slug: str, **overrides):
    path = start_checkout(client, slug, mode="live")
    return client.post(path, data=buyer_form(**overrides)), path


def _polite(response) -> str:
    assert response.status_code == 410, response.status_code
    return page_text(response)


# -- the editor ----------------------------------------------------------------------------------------


def test_q5_editor_saves_limit_and_end_date_in_the_account_time_zone(client, app):
    owner = _owner(client)
    with write_transaction(db.session) as session:
        session.get(Account, owner.account_id).timezone = "Europe/Amsterdam"
    link = create_link(client, usage_limit="5", ends_at="2030-01-31T18:00")
    link = _link(link.id)
    assert link.usage_limit == 5
    assert (link.ends_at.year, link.ends_at.hour) == (2030, 17)  # 18:00 in Amsterdam (CET) is 17:00 UTC
    page = soup_of(client.get(f"/links/{link.id}/edit"))
    assert page.select_one("#f-usage_limit")["value"] == "5"
    assert page.select_one("#f-ends_at")["value"] == "2030-01-31T18:00"
    assert "0 of 5 payments" in page_text(client.get("/links/"))


@pytest.mark.parametrize(("field", "value"), [("usage_limit", "0"), ("usage_limit", "1000001"),
                                              ("usage_limit", "five"), ("usage_limit", "2.5"),
                                              ("ends_at", "tomorrow"), ("ends_at", "2030-02-30T10:00")])
def test_q5_bad_limit_or_date_is_refused_at_the_field_and_nothing_is_saved(client, app, field, value):
    _owner(client)
    before = count(PaymentLink)
    response = client.post("/links/new", data=link_form(**{field: value}))
    assert response.status_code == 422
    message = errors_of(response)[field]
    assert message.endswith(".") and ("1,000,000" in message or "date and time" in message)
    assert count(PaymentLink) == before


# -- the limit, one buyer after another -----------------------------------------------------------------


def test_q5_link_completes_after_n_payments_and_later_buyers_get_the_polite_page(client, live):
    _owner(client, company="Bean There")
    link = create_link(client, usage_limit="2")
    for n in range(2):
        response, _path = _pay(client, link.slug, email=f"buyer{n}@example.com")
        assert response.status_code == 303
    link = _link(link.id)
    assert (link.usage_count, link.usage_reserved, link.status) == (2, 2, "inactive")
    assert link.limit_reached_at is not None
    text = _polite(client.get(f"/pay/{link.slug}"))
    assert "This link is no longer accepting payments" in text and "Bean There" in text
    listing = page_text(client.get("/links/"))
    assert "Completed (2 of 2)" in listing
    assert "Completed (2 of 2)" in page_text(client.get(f"/links/{link.id}/edit"))
    # Reactivating from the list is refused with the reason; nothing changes.
    client.post(f"/links/{link.id}/status", data={"status": "active"})
    assert _link(link.id).status == "inactive"
    assert "Raise the limit" in page_text(client.get("/links/"))


def test_q5_a_buyer_who_opened_the_page_before_the_last_seat_went_is_not_charged(client, live):
    _owner(client)
    link = create_link(client, usage_limit="1")
    late_path = start_checkout(client, link.slug, mode="live")  # opened while a seat was free
    response, _path = _pay(client, link.slug)
    assert response.status_code == 303
    charges = sandbox_charges()
    response = client.post(late_path, data=buyer_form(email="late@example.com"))
    assert response.status_code == 303  # back to the page, which now says so
    assert "no longer accepting payments" in _polite(client.get(response.headers["Location"]))
    assert sandbox_charges() == charges
    assert count(Payment, Payment.buyer_email == "late@example.com") == 0


def test_q5_a_decline_gives_the_seat_back(client, live):
    _owner(client)
    link = create_link(client, usage_limit="1")
    response, path = _pay(client, link.slug, card_number="4000000000000002")
    assert response.status_code == 422
    assert (_link(link.id).usage_reserved, _link(link.id).usage_count) == (0, 0)
    response = client.post(path, data=buyer_form())  # the same buyer, another card: the seat is still there
    assert response.status_code == 303
    assert (_link(link.id).usage_count, _link(link.id).status) == (1, "inactive")


def test_q5_test_checkouts_take_no_seats(client, live):
    _owner(client)
    link = create_link(client, usage_limit="1")
    path = start_checkout(client, link.slug, mode="test")
    assert client.post(path, data=buyer_form()).status_code == 303
    assert (_link(link.id).usage_count, _link(link.id).status) == (0, "active")


def test_q5_raising_the_limit_reactivates_and_lowering_it_deactivates(client, live):
    _owner(client)
    link = create_link(client, usage_limit="1")
    _pay(client, link.slug)
    assert _link(link.id).status == "inactive"
    response = client.post(f"/links/{link.id}/edit", data=link_form(usage_limit="3"))
    assert response.status_code == 303, errors_of(response)
    assert (_link(link.id).status, _link(link.id).limit_reached_at) == ("active", None)
    assert _pay(client, link.slug)[0].status_code == 303  # the legitimate next buyer pays
    client.post(f"/links/{link.id}/edit", data=link_form(usage_limit="2"))  # down to what it has completed
    assert _link(link.id).status == "inactive"
    assert "Completed (2 of 2)" in page_text(client.get("/links/"))
    # A link deactivated by hand stays deactivated when its limit is raised.
    other = create_link(client, usage_limit="5")
    client.post(f"/links/{other.id}/status", data={"status": "inactive"})
    client.post(f"/links/{other.id}/edit", data=link_form(usage_limit="9"))
    assert _link(other.id).status == "inactive"


def test_q5_end_date_closes_the_link_and_the_list_says_ended(client, live):
    _owner(client, company="Bean There")
    link = create_link(client, ends_at="2030-01-01T00:00")
    assert _pay(client, link.slug)[0].status_code == 303  # before the date: open
    path = start_checkout(client, link.slug, mode="live")
    with write_transaction(db.session) as session:
        session.get(PaymentLink, link.id).ends_at = now() - timedelta(minutes=1)
    charges = sandbox_charges()
    response = client.post(path, data=buyer_form(email="late@example.com"))
    assert "Bean There" in _polite(client.get(response.headers["Location"]))
    assert sandbox_charges() == charges
    assert "Bean There is no longer accepting payments" in _polite(client.get(f"/pay/{link.slug}"))
    assert "Ended on" in page_text(client.get("/links/"))


def test_q5_polite_page_is_translated(client, live):
    _owner(client, company="Bean There")
    link = create_link(client, usage_limit="1")
    _pay(client, link.slug)
    text = _polite(client.get(f"/pay/{link.slug}", headers={"Accept-Language": "nl"}))
    assert "Bean There" in text and "This link is no longer accepting payments" not in text


def test_q5_another_merchant_cannot_edit_the_limit(client, live):
    owner = _owner(client)
    link = create_link(client, usage_limit="3")
    client = app_client = live.test_client()
    _owner(app_client, company="Other")
    response = client.post(f"/links/{link.id}/edit", data=link_form(usage_limit="1000"))
    assert response.status_code == 404
    assert _link(link.id).usage_limit == 3 and owner.account_id == _link(link.id).account_id


# -- concurrency ---------------------------------------------------------------------------------------

BUYERS = 15
LIMIT = 5


def test_q5_fifteen_parallel_buyers_on_a_five_payment_link_exactly_five_pay(client, live):
    _owner(client)
    link = create_link(client, usage_limit=str(LIMIT))
    slug = link.slug
    paths = [start_checkout(live.test_client(), slug, mode="live") for _ in range(BUYERS)]
    barrier = threading.Barrier(BUYERS)
    outcomes: list[object] = [None] * BUYERS

    def buyer(slot: int) -> None:
        buyer_client = live.test_client()
        try:
            context = live.app_context()
            context.push()
            barrier.wait(timeout=60)
            response = buyer_client.post(paths[slot], data=buyer_form(email=f"b{slot}@example.com"),
                                         environ_base={"REMOTE_ADDR": f"10.0.0.{slot + 1}"})
            location = response.headers.get("Location", "")
            outcomes[slot] = (response.status_code, buyer_client.get(location).status_code if location else None)
        except Exception as exc:  # a crash is a finding: reported by the assertion below
            outcomes[slot] = ("crash", repr(exc))
        finally:
            db.session.remove()
            context.pop()

    threads = [threading.Thread(target=buyer, args=(slot,)) for slot in range(BUYERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(o[0] == "crash" for o in outcomes), outcomes
    paid = [o for o in outcomes if o == (303, 200)]  # to the confirmation page
    refused = [o for o in outcomes if o == (303, 410)]  # to the polite page
    assert (len(paid), len(refused)) == (LIMIT, BUYERS - LIMIT), outcomes
    db.session.rollback()
    assert count(Payment, Payment.link_id == link.id, Payment.status == "succeeded") == LIMIT
    assert sandbox_charges() == LIMIT  # nobody beyond the limit was charged
    link = db.session.scalar(select(PaymentLink).where(PaymentLink.id == link.id))
    assert (link.usage_count, link.usage_reserved, link.status) == (LIMIT, LIMIT, "inactive")
