"""Q11 subscription confirmation and buyer portal: the confirmation page, receipt email and PDF say what recurs,
the next charge date and where to manage it; the signed portal link in every receipt email lists the buyer's
payments (receipt PDFs), their active subscriptions with "Update payment method" and, where the link allows it,
"Cancel" (at the end of the paid period). Nobody sees another buyer's or account's data."""

from __future__ import annotations

import re

import pytest

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Account, Payment, User
from kassa.renderers.receipt import receipt_html
from kassa.services.accounts.portal_tokens import portal_token, rotate_portal_key
from kassa.services.payments.receipts import receipt_data
from tests.support.app import page_text
from tests.support.billing import BUYER, buy, emails_of, frozen, reload, subscription_shop
from tests.support.checkout import path_of
from tests.support.checkout_flow import item as make_item
from tests.support.checkout_flow import make_link, plain, soup_of


def _shop(*, cancel: bool = True, company: str = "Lesson Studio"):
    return subscription_shop(company, frequency="monthly", term_type="auto_renew", price="10.00") if not cancel \
        else _cancellable_shop(company)


def _cancellable_shop(company: str):
    owner, _link = subscription_shop(company, frequency="monthly", term_type="auto_renew", price="10.00")
    link = make_link(owner, name="Cancellable", items=[make_item("Lessons", "10.00", frequency="monthly")],
                     buyer_can_cancel=True)
    return owner, link


def _portal_path(email: str = BUYER) -> str:
    (message,) = emails_of("receipt", email)[-1:]
    found = re.search(r"https?://[^\s\"<>]+/my/[^\s\"<>]+", message.text_body)
    assert found, message.text_body
    return path_of(found.group(0))


def test_q11_confirmation_email_and_receipt_say_what_recurs_when_and_where_to_manage(client, app):
    with frozen():
        _owner, link = _shop()
        buy(client, link)
        payment = db.session.query(Payment).one()
        confirmation = page_text(client.get(f"/checkout/{payment.checkout_session_id and _token(payment)}"))
        text = plain(confirmation)
        assert "Your subscription: $10.00 every month until cancelled." in text
        assert "Next charge: Feb 15, 2027." in text and "Manage your subscription" in text
        (email,) = emails_of("receipt")
        body = plain(email.text_body)
        assert "$10.00 every month until cancelled" in body and "Next charge: Feb 15, 2027." in body
        assert "/my/" in body and "/my/" in email.html_body
        with app.test_request_context():
            pdf = plain(receipt_html(receipt_data(payment)))
        assert "Next charge: Feb 15, 2027." in pdf and "/my/" in pdf and "every month until cancelled" in pdf


def _token(payment: Payment) -> str:
    from kassa.models import CheckoutSession

    return db.session.get(CheckoutSession, payment.checkout_session_id).token


def test_q11_portal_lists_payments_and_subscriptions_in_the_buyers_language(client, app):
    with frozen():
        _owner, link = _shop()
        buy(client, link, lang="nl")
        page = client.get(_portal_path())
        assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
        soup = soup_of(page)
        assert soup.html["lang"] == "nl"
        text = plain(page_text(page))
        assert "Lesson Studio" in text and "US$ 10,00" in text
        assert soup.select_one(".psub") is not None and soup.select(".plist li")
        assert "Cancel" not in [a.get_text() for a in soup.select(".psub a")]  # the link doesn't allow it


def test_q11_receipt_download_from_the_portal(client, app):
    with frozen():
        _owner, link = _shop()
        buy(client, link)
        path = _portal_path()
        href = soup_of(client.get(path)).select_one(".plist a")["href"]
        pdf = client.get(href)
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
        assert pdf.headers["Content-Disposition"].startswith("attachment")


def test_q11_update_payment_method_goes_to_the_card_update_page(client, app):
    with frozen():
        _owner, link = _shop()
        sub = buy(client, link)
        path = _portal_path()
        response = client.post(f"{path}/subscriptions/{sub.id}/card")
        assert response.status_code == 303
        page = client.get(path_of(response.headers["Location"]))
        assert page.status_code == 200 and "Update your card" in page_text(page)


def test_q11_cancel_asks_first_then_ends_at_period_end(client, app):
    with frozen():
        _owner, link = _shop(cancel=True)
        sub = buy(client, link)
        path = _portal_path()
        confirm = client.get(f"{path}/subscriptions/{sub.id}/cancel")
        assert confirm.status_code == 200 and "Feb 15, 2027" in plain(page_text(confirm))
        assert reload(sub).cancel_at_period_end is False  # asking changes nothing
        done = client.post(f"{path}/subscriptions/{sub.id}/cancel", data={"confirm": "1"})
        assert done.status_code == 303
        sub = reload(sub)
        assert (sub.cancel_at_period_end, sub.status) == (True, "active")  # ends when the paid month does
        assert "Cancelled: it ends on Feb 15, 2027." in plain(page_text(client.get(path_of(done.headers["Location"]))))
        again = client.post(f"{path}/subscriptions/{sub.id}/cancel", data={"confirm": "1"})
        assert again.status_code == 409


def test_q11_cancel_refused_where_the_link_does_not_allow_it(client, app):
    with frozen():
        _owner, link = _shop(cancel=False)
        sub = buy(client, link)
        path = _portal_path()
        response = client.post(f"{path}/subscriptions/{sub.id}/cancel", data={"confirm": "1"})
        assert response.status_code == 409 and "Contact Lesson Studio" in page_text(response)
        assert reload(sub).cancel_at_period_end is False


def test_q11_another_buyer_or_account_or_a_tampered_token_gets_404(client, app):
    with frozen():
        owner, link = _shop(cancel=True)
        sub = buy(client, link)
        path = _portal_path()
        other_sub = buy(client, link, email="other.buyer@example.com")
        other_payment = db.session.query(Payment).filter_by(buyer_email="other.buyer@example.com").one()
        # Another buyer's subscription and receipt through my token: 404, nothing changes.
        assert client.get(f"{path}/subscriptions/{other_sub.id}/cancel").status_code == 404
        assert client.post(f"{path}/subscriptions/{other_sub.id}/cancel", data={"confirm": "1"}).status_code == 404
        assert client.post(f"{path}/subscriptions/{other_sub.id}/card").status_code == 404
        assert client.get(f"{path}/receipts/{other_payment.id}.pdf").status_code == 404
        assert reload(other_sub).cancel_at_period_end is False
        # Tampered: a changed character, a truncated token, another email signed for nothing, garbage.
        token = path.rsplit("/", 1)[1]
        # Not the last character: base64 of a 20-byte signature leaves its last character's low bits unused, so
        # "A" → "B" there can decode to the same bytes (a valid token, and a test failing 1 run in 16).
        flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
        for bad in (flipped, token[:-3], "x", "WzEsICJhQGIuYyJd.abc"):
            assert client.get(f"/my/{bad}").status_code == 404
        # Another account's owner can't reach this buyer's data with their own account's token for the email.
        other_owner, _other_link = subscription_shop("Elsewhere", frequency="monthly", term_type="auto_renew")
        from kassa.database import write_transaction

        with write_transaction(db.session) as session:
            foreign = portal_token(session.get(Account, other_owner.account_id), BUYER)
        listing = page_text(client.get(f"/my/{foreign}"))
        assert "Lesson Studio" not in listing and "Elsewhere" in listing
        assert client.get(f"/my/{foreign}/subscriptions/{sub.id}/cancel").status_code == 404
        # Rotating the account's key revokes every portal link it sent.
        rotate_portal_key(Actor(user=db.session.get(User, owner.id), account_id=owner.account_id))
        assert client.get(path).status_code == 404


@pytest.mark.parametrize("value", ["1"])
def test_q11_editor_saves_the_buyer_cancel_option(client, app, value):
    from tests.factories import PASSWORD, make_merchant
    from tests.support.app import log_in
    from tests.support.links import create_link

    owner = make_merchant(company="Roastery")
    log_in(client, owner.email, PASSWORD)
    link = create_link(client, buyer_can_cancel=value)
    db.session.rollback()
    assert link.buyer_can_cancel is True
    assert soup_of(client.get(f"/links/{link.id}/edit")).select_one("#f-buyer_can_cancel").has_attr("checked")


def test_q11_settings_button_revokes_every_portal_link(client, app):
    from tests.factories import PASSWORD
    from tests.support.app import log_in

    with frozen():
        owner, link = _shop()
        buy(client, link)
        path = _portal_path()
        assert client.get(path).status_code == 200
        log_in(client, owner.email, PASSWORD)
        response = client.post("/settings/account/portal-links")
        assert response.status_code == 303
        assert client.get(path).status_code == 404
        # The next receipt carries a new link that works.
        buy(client, link, email="later@example.com")
        assert client.get(_portal_path("later@example.com")).status_code == 200
