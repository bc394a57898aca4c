"""H11: a link's thank-you URL can't add directives to the checkout page's Content-Security-Policy.

Before the fix the editor accepted any text that started with http(s):// and had no plain space, and the
checkout page copied `scheme://netloc` of it into `form-action` verbatim: `;` and a form feed (which
`urlsplit` keeps in the netloc) ended the directive and appended new ones such as `frame-ancestors *`.
Now the editor accepts only http(s) addresses that parse cleanly, and the CSP source is rebuilt from the
parsed origin, so even a hostile value written straight into the database can't reach the header.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import PaymentLink
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in
from tests.support.checkout import pay_with_card, start_checkout
from tests.support.links import create_link, errors_of, link_form
from tests.support.payments import soup_of

HOSTILE_URLS = [
    "https://shop.example;frame-ancestors *",
    "https://shop.example/thanks\x0c; frame-ancestors *",
    "https://shop.example\x0c;frame-ancestors *;script-src *",
    "https://shop.example, https://evil.example",
    "https://shop.example/'unsafe-inline'",
    'https://shop.example/"x',
    "https://shop.example/\tthanks",
    "https://shop.example/\u2028thanks",
    "https://shop_ex ample/",
    "https://shop.example:99999/",
]
MESSAGE = "This address can't be used"


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def _directives(response) -> list[tuple[str, str]]:
    """The CSP header as (directive name, sources) in order."""
    header = response.headers["Content-Security-Policy"]
    found = []
    for part in header.split(";"):
        name, _sep, sources = part.strip().partition(" ")
        found.append((name, sources))
    return found


def _link_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(PaymentLink))


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_h11_thank_you_url_that_does_not_parse_cleanly_is_refused_with_a_message(client, owner, url):
    """The editor refuses the address at its field with a clear message, keeps what was typed, saves nothing."""
    response = client.post("/links/new", data=link_form(confirmation="redirect", redirect_url=url,
                                                        name="Spring service"))
    assert response.status_code == 422
    errors = errors_of(response)
    assert set(errors) == {"redirect_url"}, errors
    assert MESSAGE in errors["redirect_url"] or "https://" in errors["redirect_url"]
    assert soup_of(response).find("input", attrs={"name": "name"})["value"] == "Spring service"
    assert _link_count() == 0


def test_h11_directive_characters_get_the_specific_message(client, owner):
    response = client.post("/links/new", data=link_form(confirmation="redirect",
                                                        redirect_url="https://shop.example;frame-ancestors *"))
    assert response.status_code == 422
    assert MESSAGE in errors_of(response)["redirect_url"]


@pytest.mark.parametrize("url", HOSTILE_URLS[:4])
def test_h11_a_hostile_url_stored_in_the_database_cannot_inject_a_directive(client, owner, url):
    """Written straight into the table (as a link saved before H11 would be): the checkout page's CSP has each
    directive once, `frame-ancestors 'none'`, `form-action 'self'` only; paying shows Kassa's own page."""
    link = create_link(client, confirmation="redirect", redirect_url="https://shop.example/thanks")
    with write_transaction(db.session) as session:
        session.execute(update(PaymentLink).where(PaymentLink.id == link.id).values(redirect_url=url))
    page = client.get(start_checkout(client, link.slug))
    assert page.status_code == 200
    directives = _directives(page)
    names = [name for name, _sources in directives]
    assert len(names) == len(set(names)), directives
    assert dict(directives)["frame-ancestors"] == "'none'"
    assert dict(directives)["form-action"] == "'self'"
    assert "\x0c" not in page.headers["Content-Security-Policy"]
    paid = pay_with_card(client, link.slug)
    assert paid.status_code == 303
    assert paid.headers["Location"].endswith(paid.checkout_path)


def test_h11_csp_source_is_the_parsed_origin_only(client, owner):
    """A clean address with user info, upper case, a port and a path gives exactly `https://host:port`."""
    url = "https://Ann@Shop.Example:8443/thanks?order=1#top"
    link = create_link(client, confirmation="redirect", redirect_url=url)
    page = client.get(start_checkout(client, link.slug))
    assert dict(_directives(page))["form-action"] == "'self' https://shop.example:8443"
    paid = pay_with_card(client, link.slug)
    assert paid.status_code == 303 and paid.headers["Location"].lower() == url.lower()  # werkzeug lowers the host
