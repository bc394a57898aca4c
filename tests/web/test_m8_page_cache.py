"""M8: the cached checkout page holds nothing of one session; only the declared slots differ per request.

The checkout page is rendered once per link version, language and mode (kassa.page_cache) and filled per
request with the session token, CSRF token and CSP nonce (CHECKOUT_SLOTS). These tests open one link from
several browsers, let one buyer type values and hit validation errors, and diff what the others get.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask import session

from kassa.blueprints import checkout as checkout_bp
from kassa.page_cache import CHECKOUT_SLOTS, SlotLeak
from kassa.security import csp_nonce
from tests.support.checkout import buyer_form, signed_test_path
from tests.support.checkout_flow import field_errors, make_shop

# What buyer A types: distinctive enough that finding any of it in another page can only be a leak.
A_TYPED = {
    "email": "zebulon.quixote@example.org",
    "first_name": "Zebulon",
    "last_name": "Quixotevich",
    "company": "Quixote Windmills Ltd",
    "card_name": "Zebulon Q Cardholder",
    "billing_line1": "Wisteria Lane 4711",
    "billing_city": "Fairviewtown",
    "billing_postal_code": "98765",
    "card_number": "4242 4242 4242 4241",  # fails the Luhn check: the page comes back with an error
}


@pytest.fixture
def app_config():
    # The CSRF token must be real (a per-session slot), as in production.
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def shop(app):
    return make_shop("Windmill Parts", allow_ach=True)


def _start(client, slug: str, language: str) -> str:
    response = client.get(signed_test_path(slug), headers={"Accept-Language": language})
    assert response.status_code == 303, response.status_code
    return response.headers["Location"]


def _slots_of(path: str, html: str) -> dict[str, str]:
    """This page's own values of the declared slots, read from the page."""
    page = soup_of_html(html)
    values = {
        "token": path.rstrip("/").rsplit("/", 1)[-1],
        "csrf": page.find("input", attrs={"name": "csrf_token"})["value"],
        "nonce": page.find("script", attrs={"nonce": True})["nonce"],
    }
    assert set(values) == set(CHECKOUT_SLOTS)
    return values


def soup_of_html(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _placeholdered(html: str, slots: dict[str, str]) -> str:
    for name, value in slots.items():
        assert value in html, f"the page lacks its own {name}"
        html = html.replace(value, f"<<{name}>>")
    return html


def _get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_m8_two_sessions_differ_only_in_the_declared_slots(app, shop):
    """Buyer A (English) types contact, card and address values and gets validation errors; then A, buyer B
    (English, shares A's cached copy) and buyer C (Dutch, its own copy) open their pages. A's and B's pages
    are byte-identical once each one's token, CSRF token and nonce are replaced by placeholders; each page
    holds its own slot values and none of the others'; nothing A typed, nor A's error text, shows up in B's
    or C's page."""
    _owner, link = shop
    a, b, c = app.test_client(), app.test_client(), app.test_client()
    path_a, path_b, path_c = _start(a, link.slug, "en"), _start(b, link.slug, "en-US"), _start(c, link.slug, "nl")

    with app.test_request_context():
        pages = checkout_bp.page_cache()
        assert pages.enabled(), "the test app must serve the checkout from the page cache"
        pages.clear()

    # A submits typed values with a bad card number: the 422 page shows them back (nothing typed lost).
    first_a = _get(a, path_a)
    form = buyer_form(**A_TYPED)
    form["csrf_token"] = _slots_of(path_a, first_a)["csrf"]
    failed = a.post(path_a, data=form)
    assert failed.status_code == 422, failed.status_code
    errors = field_errors(failed)
    assert set(errors) == {"card_number"}, errors
    failed_html = failed.get_data(as_text=True)
    for field, value in A_TYPED.items():
        if field != "card_number":
            assert value in failed_html, f"A's typed {field} was not kept"

    # Now every buyer opens their page fresh; A's request after the failed submit builds nothing new.
    html_a, html_b, html_c = _get(a, path_a), _get(b, path_b), _get(c, path_c)
    with app.test_request_context():
        assert len(checkout_bp.page_cache()) == 2  # one copy for English (A and B), one for Dutch (C)
    assert soup_of_html(html_a).html["lang"] == soup_of_html(html_b).html["lang"] == "en"
    assert soup_of_html(html_c).html["lang"] == "nl"

    slots_a, slots_b, slots_c = _slots_of(path_a, html_a), _slots_of(path_b, html_b), _slots_of(path_c, html_c)
    for name in CHECKOUT_SLOTS:
        assert len({slots_a[name], slots_b[name], slots_c[name]}) == 3, f"the {name} slot is shared"
    assert _placeholdered(html_a, slots_a) == _placeholdered(html_b, slots_b)

    a_only = [value for field, value in A_TYPED.items() if field != "card_number"] + list(slots_a.values())
    for other, html in (("B", html_b), ("C", html_c)):
        leaked = [value for value in a_only if value in html]
        assert not leaked, f"{other}'s page shows A's {leaked}"
        # A's error: the message is in every page for checkout.js (data-msg-*), but shown in no other page.
        page = soup_of_html(html)
        assert errors["card_number"] not in page.get_text(" ")
        assert not page.select('[aria-invalid], .field--error, p.field__error:not([hidden])')
    others = [*slots_b.values(), *slots_c.values()]
    assert not [value for value in others if value in html_a]


LEAKS = {
    # The session's real token in a URL instead of the token slot's mark.
    "token": lambda view: {"page_url": f"/checkout/{view.checkout.token}"},
    # This response's real nonce shown as text.
    "nonce": lambda view: {"alert": csp_nonce()},
    # The raw CSRF secret of the browser session (not the signed slot value).
    "session csrf": lambda view: {"alert": session["csrf_token"]},
    # A slot's mark cut short: never filled in, so part of the mark would be served to every visitor.
    "cut mark": lambda view: {"page_url": f"/checkout/{checkout_bp.page_cache().mark('token')[:20]}"},
}


@pytest.mark.parametrize("leak", list(LEAKS))
def test_m8_a_per_session_value_outside_a_slot_is_refused(app, client, shop, monkeypatch, leak):
    """A deliberately leaking page context (a value of the building session rendered outside the declared
    slots) makes building the cache entry fail with SlotLeak, and nothing is cached for the next visitor."""
    _owner, link = shop
    real_context = checkout_bp._page_context

    def leaking_context(view, **kwargs):
        context = real_context(view, **kwargs)
        if kwargs.get("token"):  # only the copy rendered for the cache
            context.update(LEAKS[leak](view))
        return context

    monkeypatch.setattr(checkout_bp, "_page_context", leaking_context)
    path = _start(client, link.slug, "en")
    with app.test_request_context():
        checkout_bp.page_cache().clear()

    with pytest.raises(SlotLeak):
        client.get(path)
    with app.test_request_context():
        assert len(checkout_bp.page_cache()) == 0


def test_m8_the_guard_passes_the_real_page(app, client, shop):
    """Control for the test above: the unmodified page builds its cache entry and serves it."""
    _owner, link = shop
    path = _start(client, link.slug, "en")
    with app.test_request_context():
        checkout_bp.page_cache().clear()
    assert client.get(path).status_code == 200
    with app.test_request_context():
        assert len(checkout_bp.page_cache()) == 1
