"""I2/I3: checkout sessions by API, for shops that send their buyers to Kassa — a session of one of the account's
payment links with the buyer's email filled in, its `url` the buyer opens, paying it completes it, `expire` closes
it; retrieve and the cursor list. The cached checkout page (Q12) never shows one buyer's email to another. Every
answer is held to the operation's schema (I5); another account's (or the other mode's) id is `resource_missing`,
a restricted key needs the `checkout_sessions` scope (I1), and bad input is a 400 naming the parameter with
nothing created (I7). Stripe-shaped metadata (I3) on sessions and payment links."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from kassa.blueprints import checkout as checkout_bp
from kassa.clock import now
from kassa.extensions import db
from kassa.models import CheckoutSession, PaymentLink
from kassa.services.api import endpoints
from kassa.services.api.keys import create_key
from kassa.services.checkout import checkout as checkout_service
from kassa.services.links.links import set_active
from tests.factories import make_merchant
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import field_value, make_link
from tests.support.payments import actor_for


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per second", "KASSA_API_LIVE_RATE_LIMIT": "1000 per second"}


@pytest.fixture
def owner(app):
    return make_merchant(company="Bikes")


@pytest.fixture
def link(owner):
    return make_link(owner, name="Bike service")


class Api:
    def __init__(self, client, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def call(self, operation: str, method: str, path: str, headers: dict | None = None, **kwargs):
        response = self.client.open(f"/api{path}", method=method, headers={**self.headers, **(headers or {})},
                                    **kwargs)
        errors = endpoints.response_errors(operation, response.status_code, response.json)
        assert errors == [], (path, response.status_code, errors)
        return response

    def create(self, **data):
        return self.call("create_checkout_session", "POST", "/v1/checkout/sessions", data=data)


def api_for(client, user, mode: str = "test", scopes: dict | None = None) -> Api:
    return Api(client, create_key(actor_for(user), f"Shop {mode}", mode, scopes)[1])


@pytest.fixture
def api(client, owner):
    return api_for(client, owner)


def sessions_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(CheckoutSession))


def page_path(session: dict) -> str:
    return urlsplit(session["url"]).path


def test_i2_a_session_for_a_link_opens_its_checkout_with_the_email_filled(app, api, link):
    created = api.create(payment_link=f"plink_{link.id}", customer_email="Ann.Buyer@Example.com")
    assert created.status_code == 200, created.json
    body = created.json
    assert body["object"] == "checkout.session" and body["id"].startswith("cs_")
    assert (body["status"], body["payment_status"], body["payment_link"]) == ("open", "unpaid", f"plink_{link.id}")
    assert body["customer_email"] == "ann.buyer@example.com"  # H3: one canonical form
    assert (body["amount_total"], body["currency"], body["livemode"], body["mode"]) == (2500, "usd", False, "payment")
    assert now().timestamp() + 23 * 3600 < body["expires_at"] <= now().timestamp() + 24 * 3600 + 5
    page = api.client.get(page_path(body))
    assert page.status_code == 200 and "Concert ticket" in page.get_data(as_text=True)
    assert field_value(page, "email") == "ann.buyer@example.com"
    row = db.session.get(CheckoutSession, int(body["id"][3:]))
    assert (row.link_id, row.mode, row.api_key_id is not None) == (link.id, "test", True)
    again = api.call("checkout_session", "GET", f"/v1/checkout/sessions/{body['id']}")
    assert again.json == body


def test_i2_the_cached_checkout_page_never_shows_one_buyers_email_to_another(app, api, link):
    """Q12: the untouched page is served from a copy rendered once per key; a session's email is part of what
    the page shows, so it must never come from (or go into) a copy another session is served: an API session's
    page is rendered for it alone, on Flask's path and on the first visit's."""
    with app.test_request_context():
        pages = checkout_bp.page_cache()
        assert pages.enabled()
        pages.clear()
    first = api.create(payment_link=f"plink_{link.id}", customer_email="zebulon@example.org").json
    second = api.create(payment_link=f"plink_{link.id}", customer_email="yolanda@example.net").json
    buyers = {name: app.test_client() for name in ("first", "second", "visitor")}
    visit = start_checkout(buyers["visitor"], link.slug)  # an ordinary visit to the link, no email known
    for _round in range(2):  # the first round builds the copies, the second is served from them
        one = buyers["first"].get(page_path(first))
        two = buyers["second"].get(page_path(second))
        plain = buyers["visitor"].get(visit)
        assert field_value(one, "email") == "zebulon@example.org"
        assert field_value(two, "email") == "yolanda@example.net"
        assert field_value(plain, "email") == ""
        assert "yolanda" not in one.get_data(as_text=True) and "zebulon" not in two.get_data(as_text=True)
        assert not {"zebulon", "yolanda"} & set(plain.get_data(as_text=True).replace("@", " ").split())
    with app.test_request_context():
        # the link's plain page is the one copy: an API session's page is rendered for it and never stored
        assert len(checkout_bp.page_cache()) == 1
    with app.app_context():  # the decision, read once per page view: the copy is not for this session
        assert not checkout_service.page_state(page_path(first).rsplit("/", 1)[-1]).shows_form
        assert checkout_service.page_state(visit.rsplit("/", 1)[-1]).shows_form
    # A buyer's first visit (no cookie), which the first-visit path answers from a copy when it may (Q12): still
    # each session's own email.
    for session, email in ((second, "yolanda@example.net"), (first, "zebulon@example.org")):
        fresh = app.test_client().get(page_path(session))
        assert fresh.status_code == 200 and field_value(fresh, "email") == email


def test_i2_paying_the_session_completes_it_and_goes_to_the_success_url(app, api, link):
    body = api.create(payment_link=f"plink_{link.id}", customer_email="ann@example.com",
                      success_url="https://bikes.example/thanks?session={CHECKOUT_SESSION_ID}").json
    assert body["success_url"] == f"https://bikes.example/thanks?session={body['id']}"
    buyer = app.test_client()
    paid = buyer.post(page_path(body), data=buyer_form(email="ann@example.com"))
    assert paid.status_code == 303 and paid.headers["Location"] == body["success_url"]
    done = api.call("checkout_session", "GET", f"/v1/checkout/sessions/{body['id']}").json
    assert (done["status"], done["payment_status"], done["url"]) == ("complete", "paid", None)
    assert done["payment_intent"].startswith("pi_") and done["amount_total"] == 2500
    intent = api.call("payment_intent", "GET", f"/v1/payment_intents/{done['payment_intent']}").json
    assert intent["receipt_email"] == "ann@example.com" and intent["status"] == "succeeded"
    refused = api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{body['id']}/expire")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "checkout_session_not_open"


def test_i2_expire_closes_an_open_session_and_the_buyer_can_no_longer_pay(app, api, link):
    body = api.create(payment_link=f"plink_{link.id}").json
    assert body["customer_email"] is None and body["success_url"] is None
    expired = api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{body['id']}/expire")
    assert expired.status_code == 200 and (expired.json["status"], expired.json["url"]) == ("expired", None)
    buyer = app.test_client()
    assert buyer.get(page_path(body)).status_code == 410  # the expired page, with a way to start again
    buyer.post(page_path(body), data=buyer_form())
    assert api.call("checkout_session", "GET", f"/v1/checkout/sessions/{body['id']}").json["status"] == "expired"
    assert db.session.get(CheckoutSession, int(body["id"][3:])).payment_id is None
    again = api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{body['id']}/expire")
    assert again.status_code == 400 and again.json["error"]["param"] == "id"


def test_i2_a_payment_begun_after_the_session_expired_is_refused_under_its_lock(app, api, link):
    """The race expire/pay: the buyer's page read the session open, the shop expired it before the payment
    took the session's lock: nothing is charged. A session a payment already holds can't be expired."""
    body = api.create(payment_link=f"plink_{link.id}").json
    token = page_path(body).rsplit("/", 1)[-1]
    real_is_expired = checkout_service.is_expired
    calls = []

    def expire_between(checkout):  # the page's check passes; the shop's expire lands right after it
        calls.append(checkout.id)
        if len(calls) == 1:
            assert api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{body['id']}/expire") \
                .status_code == 200
            return False
        return real_is_expired(checkout)

    from kassa.errors import Gone

    checkout_service.is_expired = expire_between
    try:
        with app.test_request_context(), pytest.raises(Gone):
            checkout_service.pay(token, buyer_form(), ip="203.0.113.9", user_agent="t")
    finally:
        checkout_service.is_expired = real_is_expired
    db.session.rollback()
    row = db.session.get(CheckoutSession, int(body["id"][3:]))
    assert row.status == "expired" and row.payment_id is None and calls


def test_i2_list_is_a_cursor_envelope_of_the_keys_account_and_mode_only(app, client, api, owner, link):
    other_link = make_link(owner, name="Other")
    ids = [api.create(payment_link=f"plink_{link.id}").json["id"] for _ in range(3)]
    ids.append(api.create(payment_link=f"plink_{other_link.id}").json["id"])
    visit = start_checkout(app.test_client(), link.slug)  # a buyer's own visit is a session of the link too
    live = api_for(client, owner, "live")
    live.create(payment_link=f"plink_{link.id}")
    theirs = make_merchant(company="Theirs")
    their_api = api_for(client, theirs)
    their_id = their_api.create(payment_link=f"plink_{make_link(theirs).id}").json["id"]

    page = api.call("checkout_sessions", "GET", "/v1/checkout/sessions?limit=2").json
    assert page["object"] == "list" and page["url"] == "/v1/checkout/sessions" and page["has_more"] is True
    everything = api.call("checkout_sessions", "GET", "/v1/checkout/sessions?limit=100").json["data"]
    assert len(everything) == 5 and their_id not in {s["id"] for s in everything}
    assert all(s["livemode"] is False for s in everything)
    following = api.call("checkout_sessions", "GET",
                         f"/v1/checkout/sessions?limit=2&starting_after={page['data'][-1]['id']}").json
    assert [s["id"] for s in page["data"] + following["data"]] == [s["id"] for s in everything[:4]]
    of_link = api.call("checkout_sessions", "GET", f"/v1/checkout/sessions?payment_link=plink_{other_link.id}").json
    assert [s["id"] for s in of_link["data"]] == [ids[3]]
    api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{ids[0]}/expire")
    expired = api.call("checkout_sessions", "GET", "/v1/checkout/sessions?status=expired").json["data"]
    assert [s["id"] for s in expired] == [ids[0]]
    assert len(api.call("checkout_sessions", "GET", "/v1/checkout/sessions?status=open").json["data"]) == 4
    assert visit  # listed among the open ones above
    for bad in (their_id, ids[0].replace("cs_", "cs_9999"), "cs_x", "pi_1"):
        missing = api.call("checkout_session", "GET", f"/v1/checkout/sessions/{bad}")
        assert missing.status_code == 404 and missing.json["error"]["code"] == "resource_missing"
    assert live.call("checkout_session", "GET", f"/v1/checkout/sessions/{ids[1]}").status_code == 404
    assert live.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{ids[1]}/expire").status_code == 404
    assert api.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{their_id}/expire").status_code == 404
    theirs_link = db.session.scalar(select(PaymentLink).where(PaymentLink.account_id == theirs.account_id))
    assert api.call("checkout_sessions", "GET",
                    f"/v1/checkout/sessions?payment_link=plink_{theirs_link.id}").status_code == 404


def test_i2_a_live_key_opens_a_live_session_a_test_key_a_test_one(app, client, owner, link):
    live = api_for(client, owner, "live").create(payment_link=f"plink_{link.id}").json
    assert live["livemode"] is True
    assert db.session.get(CheckoutSession, int(live["id"][3:])).mode == "live"


@pytest.mark.parametrize(("data", "param"), [
    ({}, "payment_link"),
    ({"customer_email": "not an email"}, "customer_email"),
    ({"success_url": "javascript:alert(1)"}, "success_url"),
    ({"success_url": "https://shop.example/a b"}, "success_url"),
    ({"expires_at": "12"}, "expires_at"),
    ({"expires_at": "soon"}, "expires_at"),
    ({"unknown": "1"}, "unknown"),
    ({"metadata[" + "k" * 41 + "]": "v"}, "metadata[" + "k" * 41 + "]"),
    ({"metadata[order]": "v" * 501}, "metadata[order]"),
    ({f"metadata[k{i}]": "v" for i in range(51)}, "metadata"),
])
def test_i2_bad_input_is_a_400_naming_the_parameter_and_creates_nothing(api, link, data, param):
    payload = {"payment_link": f"plink_{link.id}", **data} if data else data
    before = sessions_count()
    response = api.create(**payload)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param
    assert sessions_count() == before


def test_i2_another_accounts_or_a_closed_link_makes_no_session(api, owner, link):
    theirs = make_link(make_merchant(company="Theirs"))
    before = sessions_count()
    for text in (f"plink_{theirs.id}", "plink_999999", "pi_1"):
        response = api.create(payment_link=text)
        assert response.status_code == 404 and response.json["error"]["param"] == "payment_link"
    set_active(actor_for(owner), link.id, False)
    closed = api.create(payment_link=f"plink_{link.id}")
    assert closed.status_code == 400 and closed.json["error"]["param"] == "payment_link"
    assert sessions_count() == before


def test_i2_expires_at_within_30_minutes_to_24_hours(api, link):
    soon = int((now() + timedelta(hours=1)).timestamp())
    body = api.create(payment_link=f"plink_{link.id}", expires_at=str(soon)).json
    assert body["expires_at"] == soon
    for bad in (now() + timedelta(minutes=10), now() + timedelta(hours=25)):
        response = api.create(payment_link=f"plink_{link.id}", expires_at=str(int(bad.timestamp())))
        assert response.status_code == 400 and response.json["error"]["param"] == "expires_at"


def test_i2_a_restricted_key_needs_the_checkout_sessions_scope(client, owner, link):
    none = api_for(client, owner, scopes={"payment_links": "write"})
    assert none.create(payment_link=f"plink_{link.id}").status_code == 403
    assert none.call("checkout_sessions", "GET", "/v1/checkout/sessions").status_code == 403
    reader = api_for(client, owner, scopes={"checkout_sessions": "read"})
    assert reader.call("checkout_sessions", "GET", "/v1/checkout/sessions").status_code == 200
    assert reader.create(payment_link=f"plink_{link.id}").status_code == 403
    writer = api_for(client, owner, scopes={"checkout_sessions": "write"})
    made = writer.create(payment_link=f"plink_{link.id}").json["id"]
    assert writer.call("expire_checkout_session", "POST", f"/v1/checkout/sessions/{made}/expire").status_code == 200


def test_i4_the_same_idempotency_key_makes_one_session(api, link):
    headers = {"Idempotency-Key": "order-1042"}
    before = sessions_count()
    first = api.call("create_checkout_session", "POST", "/v1/checkout/sessions", headers=headers,
                     data={"payment_link": f"plink_{link.id}", "customer_email": "ann@example.com"})
    replay = api.call("create_checkout_session", "POST", "/v1/checkout/sessions", headers=headers,
                      data={"payment_link": f"plink_{link.id}", "customer_email": "ann@example.com"})
    assert first.json == replay.json and replay.headers["Idempotent-Replayed"] == "true"
    other = api.call("create_checkout_session", "POST", "/v1/checkout/sessions", headers=headers,
                     data={"payment_link": f"plink_{link.id}", "customer_email": "bob@example.com"})
    assert other.status_code == 400
    assert sessions_count() == before + 1


def test_i3_metadata_on_sessions_and_payment_links_as_stripes(api, link):
    body = api.create(payment_link=f"plink_{link.id}", **{"metadata[order_id]": "1042", "metadata[shop]": "web"}).json
    assert body["metadata"] == {"order_id": "1042", "shop": "web"}
    path = f"/v1/payment_links/plink_{link.id}"
    assert api.call("payment_link", "GET", path).json["metadata"] == {}
    updated = api.call("update_payment_link", "POST", path, data={"metadata[erp]": "A-7", "metadata[team]": "x"})
    assert updated.json["metadata"] == {"erp": "A-7", "team": "x"}
    merged = api.call("update_payment_link", "POST", path, data={"metadata[team]": "", "metadata[tag]": "y"})
    assert merged.json["metadata"] == {"erp": "A-7", "tag": "y"}  # an empty value removes its key
    version = db.session.get(PaymentLink, link.id).version
    too_many = {f"metadata[k{i}]": "v" for i in range(49)}
    refused = api.call("update_payment_link", "POST", path, data={**too_many, "active": "false"})
    assert refused.status_code == 400 and refused.json["error"]["param"] == "metadata"
    db.session.rollback()
    row = db.session.get(PaymentLink, link.id)
    assert row.metadata_json == {"erp": "A-7", "tag": "y"} and row.is_active and row.version == version
    created = api.call("create_payment_link", "POST", "/v1/payment_links", data={
        "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "900",
        "line_items[0][price_data][product_data][name]": "Tube", "metadata[sku]": "T-1"})
    assert created.status_code == 200 and created.json["metadata"] == {"sku": "T-1"}
