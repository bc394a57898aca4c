"""Issue 13, what a public checkout URL lets strangers do: test mode only through the signed test link, receipt
emails and PDF renders limited and cached (H7); a finished checkout shows personal data only to the browser
that paid, for a while (H8); Actions → Send receipt limited (H13)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, CheckoutSession, Contact, EmailMessage, Payment
from tests.factories import make_merchant, make_payment
from tests.support.app import page_text
from tests.support.checkout import path_of, pay_with_card, signed_test_path, submit_checkout
from tests.support.checkout_flow import (
    T2_CARDS,
    count,
    field_error,
    make_link,
    make_shop,
    only_payment,
    pdf_text,
)
from tests.support.links import soup_of
from tests.support.payments import login

BUYER_DATA = ("ann.buyer@example.com", "Ann Buyer", "Main Street 1", "Springfield", "•••• 4242")
# Different test cards: today's card guard stops one card after 3 payments (H4 changes that, elsewhere).
CARDS = [number for number, _brand, _funding in T2_CARDS]


def _receipt_emails(to: str | None = None) -> int:
    query = select(EmailMessage).where(EmailMessage.kind == "receipt")
    return len([m for m in db.session.scalars(query) if to is None or to in m.to_addrs])


def _from_ip(client, ip: str):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


# -- H7: test mode only through the signed test link ---------------------------------------------------


def test_h7_mode_test_on_the_public_link_gives_the_live_checkout(client):
    """`?mode=test` on anyone's public link no longer opens a test checkout: the session is live, the page
    shows no test banner, and a test card pays nothing, emails nothing and creates no CRM records."""
    _owner, link = make_shop("Victim Shop")

    response = client.get(f"/pay/{link.slug}?mode=test")
    assert response.status_code == 303
    checkout = db.session.scalars(select(CheckoutSession)).one()
    assert checkout.mode == "live"
    page = client.get(response.headers["Location"])
    assert soup_of(page).select_one(".testmode") is None

    submit_checkout(client, f"/checkout/{checkout.token}", email="victim@elsewhere.example")
    assert count(Payment) == 0 and count(EmailMessage) == 0 and count(Contact) == 0


def test_h7_the_links_page_test_action_is_a_signed_url_bound_to_its_link(client):
    """The Test action on Payment links is an <a> whose href is the link's signed test URL; it opens a test
    checkout. The signature of one link doesn't open another, and a made-up one is a 404 with no session."""
    owner = make_merchant()
    login(client, owner)
    first, second = make_link(owner), make_link(owner)
    listing = soup_of(client.get("/links/"))
    actions = [a for a in listing.select(".menu__panel a") if a.get_text(" ", strip=True).startswith("Test")]
    hrefs = {a["href"] for a in actions}
    assert hrefs == {signed_test_path(first.slug), signed_test_path(second.slug)}
    assert all("mode=" not in href and "/test/" in href for href in hrefs)

    opened = client.get(signed_test_path(first.slug))
    assert opened.status_code == 303
    assert db.session.scalars(select(CheckoutSession)).one().mode == "test"

    moved = f"/pay/{second.slug}/test/{signed_test_path(first.slug).rsplit('/', 1)[1]}"
    assert client.get(moved).status_code == 404
    assert client.get(f"/pay/{first.slug}/test/AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert count(CheckoutSession) == 1


def test_h7_a_new_test_link_revokes_the_old_one(client):
    """Actions → New test link: the test URL handed out before opens nothing (404), the new one on the
    Payment links page opens a test checkout, and the public link is unchanged."""
    owner = make_merchant()
    login(client, owner)
    link = make_link(owner)
    old = signed_test_path(link.slug)

    renewed = client.post(f"/links/{link.id}/test-link")
    assert renewed.status_code in (302, 303)
    listing = soup_of(client.get("/links/"))
    [new] = [a["href"] for a in listing.select(".menu__panel a") if a.get_text(" ", strip=True).startswith("Test")]
    assert new != old and new == signed_test_path(link.slug)
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 303
    assert client.get(f"/pay/{link.slug}").status_code == 303
    assert [c.mode for c in db.session.scalars(select(CheckoutSession).order_by(CheckoutSession.id))] == [
        "test", "live"]


@pytest.mark.parametrize("app_config", [{"KASSA_TEST_RECEIPT_IP_LIMIT": "2 per hour",
                                         "KASSA_TEST_RECEIPT_LINK_LIMIT": "100 per hour"}])
def test_h7_test_receipt_emails_are_limited_per_client_address(client, app_config):
    """Three test payments from one address (on three links): two receipts are emailed, the third payment
    still succeeds without one; another address still gets its receipt."""
    owner = make_merchant()
    links = [make_link(owner) for _ in range(3)]
    _from_ip(client, "203.0.113.7")
    confirmations = []
    for n, link in enumerate(links):
        response = pay_with_card(client, link.slug, email=f"victim{n}@elsewhere.example", card_number=CARDS[n])
        assert response.status_code == 303
        confirmations.append(page_text(client.get(path_of(response.headers["Location"]))))
    assert count(Payment) == 3
    assert _receipt_emails() == 2
    # The confirmation says what happened: emailed twice, then not claimed for the third.
    assert ["receipt has been sent" in text for text in confirmations] == [True, True, False]
    assert "wasn't emailed this time" in confirmations[2]

    _from_ip(client, "203.0.113.8")
    pay_with_card(client, links[0].slug, email="other@elsewhere.example", card_number=CARDS[3])
    assert _receipt_emails("other@elsewhere.example") == 1


@pytest.mark.parametrize("app_config", [{"KASSA_TEST_RECEIPT_IP_LIMIT": "100 per hour",
                                         "KASSA_TEST_RECEIPT_LINK_LIMIT": "2 per hour"}])
def test_h7_test_receipt_emails_are_limited_per_link(client, app_config):
    """Three test payments of one link from three addresses: two receipts; another link still emails."""
    owner = make_merchant()
    busy, quiet = make_link(owner), make_link(owner)
    for n in range(3):
        _from_ip(client, f"203.0.113.{n + 1}")
        assert pay_with_card(client, busy.slug, email=f"victim{n}@elsewhere.example",
                             card_number=CARDS[n]).status_code == 303
    assert count(Payment) == 3
    assert _receipt_emails() == 2

    pay_with_card(client, quiet.slug, email="quiet@elsewhere.example", card_number=CARDS[3])
    assert _receipt_emails("quiet@elsewhere.example") == 1


def _paid_receipt_url(client, link, email: str = "ann.buyer@example.com", card: str = CARDS[0]) -> str:
    response = pay_with_card(client, link.slug, email=email, card_number=card)
    download = soup_of(client.get(response.checkout_path)).find("a", string=lambda s: s and "Download receipt" in s)
    return download["href"]


def test_h7_a_rendered_receipt_pdf_is_cached_until_what_it_shows_changes(client, monkeypatch):
    """Repeat downloads and the receipt email reuse one render; a branding change renders it anew."""
    from kassa.renderers import receipt as receipt_renderer

    renders = []
    real = receipt_renderer.render_pdf
    monkeypatch.setattr(receipt_renderer, "render_pdf", lambda *a, **kw: renders.append(1) or real(*a, **kw))
    owner, link = make_shop("Cache Shop")
    url = _paid_receipt_url(client, link)

    downloads = [client.get(url) for _ in range(3)]
    assert [d.status_code for d in downloads] == [200, 200, 200]
    assert downloads[0].data == downloads[1].data == downloads[2].data
    from tests.support.app import run_outbox

    run_outbox()  # the receipt email attaches the same PDF
    assert len(renders) == 1

    with write_transaction(db.session) as session:
        session.get(Account, owner.account_id).name = "Renamed Shop"
    changed = client.get(url)
    assert changed.status_code == 200 and "Renamed Shop" in pdf_text(changed.data)
    assert len(renders) == 2


@pytest.mark.parametrize("app_config", [{"KASSA_RECEIPT_RENDER_IP_LIMIT": "2 per hour"}])
def test_h7_receipt_pdf_renders_are_limited_per_client_address(client, app_config):
    """A third receipt render from one address within the limit is a 429 that says when to come back; a
    receipt already rendered still downloads."""
    _owner, link = make_shop("Render Shop")
    urls = [_paid_receipt_url(client, link, email=f"b{n}@buyer.example", card=CARDS[n]) for n in range(3)]
    assert [client.get(u).status_code for u in urls[:2]] == [200, 200]

    refused = client.get(urls[2])
    assert refused.status_code == 429
    assert "Try again in" in page_text(refused)
    assert client.get(urls[0]).status_code == 200


# -- H8: a finished checkout's personal data, only for the browser that paid -----------------------------


def _paid(client, card: str = CARDS[0]):
    _owner, link = make_shop("Privacy Shop")
    response = pay_with_card(client, link.slug, card_number=card)
    assert response.status_code == 303
    page = client.get(response.checkout_path)
    link_tag = soup_of(page).find("a", string=lambda s: s and "Download receipt" in s)
    return response.checkout_path, page, link_tag["href"] if link_tag else None


def test_h8_only_the_paying_browser_sees_the_buyer_and_downloads_the_receipt(client, app):
    """The payer sees their confirmation and downloads the receipt; a fresh browser with the same URL sees
    "This payment is complete" with no email, name, address or card, and gets 403 for the bare receipt URL.
    Posting the form again to the finished checkout doesn't make it the payer."""
    path, page, receipt_url = _paid(client)
    assert "ann.buyer@example.com" in page_text(page) and "•••• 4242" in page_text(page)
    assert receipt_url and client.get(receipt_url).status_code == 200

    stranger = app.test_client()
    seen = stranger.get(path)
    assert seen.status_code == 200
    text = seen.get_data(as_text=True)
    assert "This payment is complete" in page_text(seen)
    assert not [data for data in BUYER_DATA if data in text]
    assert stranger.get(f"{path}/receipt.pdf").status_code in (403, 404)

    submit_checkout(stranger, path)
    again = stranger.get(path).get_data(as_text=True)
    assert not [data for data in BUYER_DATA if data in again]


def test_h8_after_the_time_limit_the_payer_sees_the_neutral_page_and_the_receipt_link_expires(client):
    """An hour (KASSA_CONFIRMATION_SECONDS) after paying, the payer's browser too sees no personal data, and
    the signed receipt link it was given is refused."""
    path, _page, receipt_url = _paid(client)
    with time_machine.travel(now() + timedelta(hours=1, minutes=1)):
        later = client.get(path)
        assert "This payment is complete" in page_text(later)
        assert "ann.buyer@example.com" not in later.get_data(as_text=True)
        assert client.get(receipt_url).status_code == 403
    assert only_payment().buyer_email == "ann.buyer@example.com"


def test_h8_a_forged_receipt_link_or_cookie_is_refused(client, app):
    """A receipt signature made up, or taken from another checkout, is refused; so is a hand-made cookie."""
    path, _page, receipt_url = _paid(client)
    other_path, _other, other_url = _paid(client, CARDS[1])
    sig = receipt_url.split("sig=", 1)[1]
    assert client.get(f"{path}/receipt.pdf?sig={sig[:-3]}abc").status_code == 403
    assert client.get(f"{other_path}/receipt.pdf?sig={sig}").status_code == 403
    assert client.get(other_url).status_code == 200

    stranger = app.test_client()
    checkout_id = db.session.scalars(select(CheckoutSession.id)).first()
    stranger.set_cookie("kassa_paid", f"[[{checkout_id}, {int(now().timestamp())}]]", path="/checkout/")
    assert "ann.buyer@example.com" not in stranger.get(path).get_data(as_text=True)


# -- H13: Actions → Send receipt is limited ----------------------------------------------------------------


def _send(client, payment, to: str = "someone@x.example"):
    return client.post(f"/payments/{payment.id}/send-receipt", data={"receipt": str(payment.id), "recipients": to})


@pytest.mark.parametrize("app_config", [{"KASSA_SEND_RECEIPT_PAYMENT_LIMIT": "2 per hour"}])
def test_h13_send_receipt_is_rate_limited_per_payment(client, app_config):
    """Two sends of one payment's receipt go out; the third is a 429 with the message at the recipients
    field, what was typed kept, and no email; another payment can still be sent."""
    owner = make_merchant()
    login(client, owner)
    payment, other = make_payment(owner.account_id), make_payment(owner.account_id)
    assert [_send(client, payment).status_code for _ in range(2)] == [303, 303]

    refused = _send(client, payment, to="third@x.example")
    assert refused.status_code == 429
    assert "sent too often" in field_error(refused, "recipients")
    assert soup_of(refused).find(id="f-recipients").get_text() == "third@x.example"
    sent = [m.to_addrs for m in db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "receipt_resent"))]
    assert len(sent) == 2
    assert _send(client, other).status_code == 303


@pytest.mark.parametrize("app_config", [{"KASSA_SEND_RECEIPT_USER_LIMIT": "2 per hour"}])
def test_h13_send_receipt_is_rate_limited_per_user(client, app_config):
    """One user sending receipts of three payments: the third send is refused with a 429."""
    owner = make_merchant()
    login(client, owner)
    payments = [make_payment(owner.account_id) for _ in range(3)]
    assert [_send(client, p).status_code for p in payments] == [303, 303, 429]
