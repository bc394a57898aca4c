"""Paying through the real checkout in tests: open a link, fill the buyer's form, submit it.

    response = pay_with_card(client, link.slug)                       # test card 4242…, test mode
    response = pay_with_card(client, link.slug, card_number="4000000000000002")
    response = pay_with_card(client, link.slug, method="ach")         # test bank account that succeeds
    response = pay_with_card(client, link.slug, first_name=None)      # None leaves a field out

Success is a 303 back to the checkout URL (its confirmation page) or to the link's thank-you URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

TEST_CARD = "4242424242424242"
TEST_ROUTING = "110000000"
TEST_ACCOUNT = "000123456789"

CARD_FIELDS = {
    "card_number": TEST_CARD,
    "card_expiry": "12 / 34",
    "card_cvc": "123",
    "card_name": "Ann Buyer",
}
ACH_FIELDS = {
    "routing_number": TEST_ROUTING,
    "account_number": TEST_ACCOUNT,
    "account_holder_name": "Ann Buyer",
    "ach_mandate": "1",
}
SEPA_FIELDS = {  # Q10: Stripe's test IBAN that succeeds, typed as a buyer would (spaces, lower case)
    "iban": "nl39 rabo 0300 0652 64",
    "account_holder_name": "Ann Buyer",
    "sepa_mandate": "1",
}
ADDRESS_FIELDS = {
    "billing_line1": "Main Street 1",
    "billing_city": "Springfield",
    "billing_postal_code": "12345",
    "billing_country": "US",
    "shipping_line1": "Harbour Road 2",
    "shipping_city": "Shelbyville",
    "shipping_postal_code": "54321",
    "shipping_country": "US",
}
# The contact fields a link may ask for (L10); the checkout ignores the ones the link has switched off.
CONTACT_FIELDS = {"first_name": "Ann", "last_name": "Buyer", "company": "Buyer Inc", "phone": "+1 555 0100"}


def path_of(location: str) -> str:
    """A Location header (absolute or not) as a path the test client can open."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def signed_test_path(slug: str, app=None) -> str:
    """H7: the link's signed test URL path (what Payment links → Actions → Test points to), the only way into
    a test checkout. Pass `app` when the caller holds no app context of it (browser tests: `live_server.app`)."""
    from flask import current_app, has_app_context
    from sqlalchemy import select

    from kassa.extensions import db
    from kassa.models import PaymentLink
    from kassa.services.links.links import sign_test_link

    if app is not None and not (has_app_context() and current_app._get_current_object() is app):
        with app.app_context():
            try:
                return signed_test_path(slug)
            finally:
                db.session.remove()
    link = db.session.scalar(select(PaymentLink).where(PaymentLink.slug == slug))
    assert link is not None, f"no link {slug}"
    return f"/pay/{slug}/test/{sign_test_link(link)}"


def start_checkout(client, slug: str, *, mode: str = "test", **query: str) -> str:
    """Open the link (L17: a new checkout session each time): its signed test URL in test mode, else the
    public `/pay/<slug>`; returns the `/checkout/<token>` path."""
    url = signed_test_path(slug) if mode == "test" else f"/pay/{slug}"
    response = client.get(url, query_string=query or None)
    assert response.status_code == 303, f"/pay/{slug} gave {response.status_code}"
    path = path_of(response.headers["Location"])
    assert path.startswith("/checkout/"), path
    return path


def buyer_form(method: str = "card", *, email: str = "ann.buyer@example.com", **overrides: str | None) -> dict:
    """Everything a buyer fills in for `method` ("card" or "ach"); `None` in overrides drops a field."""
    data: dict[str, str | None] = {"email": email, "method": method, **CONTACT_FIELDS}
    data.update({"card": CARD_FIELDS, "sepa": SEPA_FIELDS}.get(method, ACH_FIELDS))
    data.update(ADDRESS_FIELDS)
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def submit_checkout(client, checkout_path: str, method: str = "card", **overrides: str | None):
    """POST the buyer's form to an open checkout page; returns the response (not followed)."""
    return client.post(checkout_path, data=buyer_form(method, **overrides))


def pay_with_card(client, slug: str, *, mode: str = "test", method: str = "card", **overrides: str | None):
    """Open the link in a new checkout session and pay it; returns the submit response (not followed).

    `method="ach"` pays by test bank debit instead. The checkout path is on `response.checkout_path`.
    """
    path = start_checkout(client, slug, mode=mode)
    response = submit_checkout(client, path, method, **overrides)
    response.checkout_path = path  # type: ignore[attr-defined]
    return response


def pay_with_ach(client, slug: str, *, mode: str = "test", **overrides: str | None):
    return pay_with_card(client, slug, mode=mode, method="ach", **overrides)


def pay_with_sepa(client, slug: str, *, mode: str = "test", **overrides: str | None):
    """Q10: pay a EUR link by SEPA Direct Debit with a test IBAN (NL39RABO0300065264 unless overridden)."""
    return pay_with_card(client, slug, mode=mode, method="sepa", **overrides)
