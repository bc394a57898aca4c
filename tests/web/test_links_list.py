"""The payment links list and its actions (SPEC L14–L19): columns, search, pagination, empty state,
Copy link, Share (QR), Embed (embed.js and its stylesheet), deactivate, delete, checkout sessions, slugs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.colors import contrast_ratio
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    CheckoutSession,
    LinkItem,
    Payment,
    PaymentAttempt,
    PaymentLink,
    Role,
)
from kassa.services.links import links as link_service
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import log_in, page_text
from tests.support.checkout import (
    path_of,
    pay_with_card,
    pay_with_sepa,
    signed_test_path,
    start_checkout,
    submit_checkout,
)
from tests.support.links import create_link, form_values, item_fields, link_form, soup_of

BASE = "http://kassa.test"


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def _rows(response) -> list:
    return soup_of(response).select("#link-table tbody tr")


def _row_for(response, name: str):
    for row in _rows(response):
        if row.th.get_text(strip=True) == name:
            return row
    raise AssertionError(f"no row for {name!r}")


def _cells(row) -> list[str]:
    return [" ".join(cell.get_text(" ").split()) for cell in row.find_all(["th", "td"], recursive=False)]


def _bulk_links(owner, count: int, prefix: str = "Link") -> list[PaymentLink]:
    """Many links through the service (quicker than the editor form, same rules)."""
    actor = Actor(user=owner, account_id=owner.account_id)
    made = []
    for n in range(count):
        draft = LinkDraft(name=f"{prefix} {n:03d}", currency="EUR",
                          items=[ItemDraft(name="Item", unit_price="5.00")])
        made.append(link_service.create_link(actor, draft, "en"))
    return made


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# -- the list -----------------------------------------------------------------------------------------


def test_list_columns(client, owner):
    link = create_link(client, item_fields(0, "Setup", "50.00"),
                       item_fields(1, "Lessons", "20.00", frequency="monthly", term_type="fixed", term_count="7"),
                       name="Lessons link")
    one_time = create_link(client, item_fields(0, "Bell", "4.00"), name="Bell link", allow_ach="1")
    assert pay_with_card(client, link.slug).status_code == 303
    assert pay_with_card(client, link.slug, email="bob@example.com").status_code == 303
    assert pay_with_card(client, link.slug, card_number="4000000000000002").status_code == 422  # declined
    # A EUR link's bank debit is SEPA (Q10); processing: counted, no revenue yet.
    assert pay_with_sepa(client, one_time.slug).status_code == 303

    response = client.get("/links/")
    headers = [th.get_text(" ", strip=True) for th in soup_of(response).select("#link-table thead th")]
    assert headers[:7] == ["Name", "Items", "Due today", "Status", "Payments", "Revenue", "Created"]
    name, items, due, status, payments, revenue, created, _actions = _cells(_row_for(response, "Lessons link"))
    assert (name, items, status, payments) == ("Lessons link", "Setup, Lessons", "Active", "2")
    assert due == "€70.00 + €20.00 every month"
    assert revenue == "€140.00"
    assert re.search(r"\d{4}", created)
    bell = _cells(_row_for(response, "Bell link"))
    assert (bell[2], bell[4], bell[5]) == ("€4.00", "1", "€0.00")
    # Newest first.
    assert [row.th.get_text(strip=True) for row in _rows(response)] == ["Bell link", "Lessons link"]


def test_list_hides_test_payments_when_test_data_is_off(client, owner):
    link = create_link(client, name="Paid link")
    assert pay_with_card(client, link.slug).status_code == 303
    assert _cells(_row_for(client.get("/links/"), "Paid link"))[4] == "1"
    client.post("/preferences/test-data", data={"value": "0", "next": "/links/"})
    assert _cells(_row_for(client.get("/links/"), "Paid link"))[4:6] == ["0", "—"]


def test_list_search_by_name_or_slug(client, owner):
    spring = create_link(client, name="Spring sale")
    create_link(client, name="Summer camp")
    create_link(client, name="Spring cleaning")

    def names(query: str) -> list[str]:
        return sorted(row.th.get_text(strip=True) for row in _rows(client.get("/links/", query_string={"q": query})))

    assert names("spring") == ["Spring cleaning", "Spring sale"]
    assert names("SALE") == ["Spring sale"]
    assert names(spring.slug.upper()) == ["Spring sale"]
    assert names("100%") == []
    response = client.get("/links/?q=winter")
    assert "No payment link matches “winter”" in page_text(response)
    assert soup_of(response).select_one('#link-table a[href="/links/"]')


def test_list_search_htmx_returns_the_table_fragment(client, owner):
    create_link(client, name="Spring sale")
    response = client.get("/links/?q=spring", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="link-table"' in html and "Spring sale" in html


def test_list_pagination_over_30_links(client, owner):
    _bulk_links(owner, 31)
    first = client.get("/links/")
    assert len(_rows(first)) == 25
    assert "31 links" in page_text(first)
    next_href = soup_of(first).select_one('a[rel="next"]')["href"]
    second = client.get(next_href)
    assert len(_rows(second)) == 6
    assert not soup_of(second).select_one('a[rel="next"]')
    shown = {row.th.get_text(strip=True) for row in _rows(first) + _rows(second)}
    assert shown == {f"Link {n:03d}" for n in range(31)}
    # Pages keep the search.
    searched = client.get("/links/?q=link")
    assert "q=link" in soup_of(searched).select_one('a[rel="next"]')["href"]
    # A page past the end shows the last page.
    assert len(_rows(client.get("/links/?page=99"))) == 6


def test_empty_state_offers_create_payment_link(client, owner):
    response = client.get("/links/")
    soup = soup_of(response)
    empty = soup.select_one("section.empty")
    assert empty is not None
    button = empty.select_one('a[href="/links/new"]')
    assert button is not None and button.get_text(strip=True) == "Create payment link"
    assert not soup.select_one("#link-table")


def test_list_shows_only_my_links(client, owner):
    other = make_merchant(company="Other")
    _bulk_links(other, 1, prefix="Their")
    assert _rows(client.get("/links/")) == []
    assert _rows(client.get("/links/?q=their")) == []


# -- L15: delete ----------------------------------------------------------------------------------------


def test_l15_delete_asks_in_a_dialog(client, owner):
    link = create_link(client, name="Old offer")
    response = client.get(f"/links/{link.id}/delete")
    soup = soup_of(response)
    dialog = soup.select_one("dialog")
    assert dialog is not None and "Delete “Old offer”?" in dialog.get_text()
    assert dialog.select_one(f'form[method="post"][action="/links/{link.id}/delete"] button[type="submit"]')
    fragment = client.get(f"/links/{link.id}/delete", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True) and "<dialog" in fragment.get_data(as_text=True)
    assert _count(PaymentLink) == 1  # asking deletes nothing


def test_l15_link_without_payments_is_deleted(client, owner):
    link = create_link(client, name="Old offer")
    link_id, slug = link.id, link.slug
    start_checkout(client, slug)  # an abandoned checkout
    response = client.post(f"/links/{link_id}/delete")
    assert response.status_code == 303
    assert "Payment link “Old offer” deleted." in page_text(client.get(path_of(response.headers["Location"])))
    assert _count(PaymentLink) == 0 and _count(LinkItem) == 0 and _count(CheckoutSession) == 0
    assert client.get(f"/pay/{slug}").status_code == 404


def test_l15_link_with_only_a_declined_attempt_is_deleted(client, owner):
    link = create_link(client, name="Declined once")
    link_id = link.id
    assert pay_with_card(client, link.slug, card_number="4000000000000002").status_code == 422
    # B2: the decline is a failed payment (nothing paid), kept with its link like any payment.
    assert _count(PaymentAttempt) == 1 and _count(Payment, Payment.status == "failed") == _count(Payment) == 1
    response = client.post(f"/links/{link_id}/delete")
    assert response.status_code == 303
    # The attempt is the record of a call to the processor: it keeps its link, which is only hidden.
    link = db.session.get(PaymentLink, link_id)
    assert link.deleted_at is not None and _rows(client.get("/links/")) == []
    assert db.session.scalars(select(PaymentAttempt)).one().link_id == link_id


def test_l15_link_with_payments_is_hidden_and_its_payments_keep_their_source(client, owner):
    link = create_link(client, name="Popular")
    link_id, slug = link.id, link.slug
    assert pay_with_card(client, slug).status_code == 303
    dialog = page_text(client.get(f"/links/{link_id}/delete"))
    assert "Its 1 payment stays in Payments" in dialog
    assert client.post(f"/links/{link_id}/delete").status_code == 303

    link = db.session.get(PaymentLink, link_id)
    assert link is not None and link.deleted_at is not None and link.status == "inactive"
    payment = db.session.scalars(select(Payment)).one()
    assert payment.link_id == link_id
    assert _rows(client.get("/links/")) == []
    assert client.get(f"/pay/{slug}").status_code == 404
    # Nothing more can be done with it.
    for path in (f"/links/{link_id}/share", f"/links/{link_id}/embed", f"/links/{link_id}/delete",
                 f"/links/{link_id}/qr.png"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/links/{link_id}/status", data={"status": "active"}).status_code == 404


def test_l15_htmx_delete_answers_with_hx_redirect(client, owner):
    link = create_link(client)
    response = client.post(f"/links/{link.id}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/links/"


# -- L16: copy link -------------------------------------------------------------------------------------


def test_l16_list_has_a_read_only_field_with_the_public_url(client, owner):
    link = create_link(client, name="Share me")
    row = _row_for(client.get("/links/"), "Share me")
    field = row.select_one(f"#url-{link.id}")
    assert field is not None and field.has_attr("readonly") and field["type"] == "text"
    assert field["value"] == f"{BASE}/pay/{link.slug}"
    assert row.select_one(f'label[for="url-{link.id}"]')
    copy = row.select_one(f'button[data-copy="url-{link.id}"]')
    assert copy is not None and copy.get_text(strip=True) == "Copy link"
    # The copied URL works for a buyer.
    assert client.get(path_of(field["value"])).status_code == 303


def test_l16_test_action_opens_the_checkout_in_test_mode(client, owner):
    link = create_link(client, name="Test me")
    test = _row_for(client.get("/links/"), "Test me").select_one(".menu__panel").find("a", href=True)
    assert test["href"] == signed_test_path(link.slug) and test.get_text(" ", strip=True).startswith("Test")
    checkout_path = path_of(client.get(test["href"]).headers["Location"])
    checkout = db.session.scalars(select(CheckoutSession)).one()
    assert checkout.mode == "test" and checkout_path == f"/checkout/{checkout.token}"


# -- L17: every visit its own checkout session ------------------------------------------------------------


def test_l17_each_visit_starts_its_own_checkout_session(client, owner):
    link = create_link(client)
    paths = {start_checkout(client, link.slug) for _ in range(3)}
    assert len(paths) == 3
    tokens = set(db.session.scalars(select(CheckoutSession.token)))
    assert {f"/checkout/{token}" for token in tokens} == paths
    assert all(len(token) >= 32 for token in tokens)


def test_l17_a_completed_checkout_cannot_be_paid_twice(client, owner):
    link = create_link(client)
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303
    again = submit_checkout(client, response.checkout_path, card_number="5555555555554444")
    assert again.status_code == 303 and path_of(again.headers["Location"]) == response.checkout_path
    assert _count(Payment) == 1 and _count(PaymentAttempt) == 1
    page = client.get(response.checkout_path)
    assert page.status_code == 200
    assert not soup_of(page).select_one("#checkout-form")  # the confirmation, not a form to pay again
    # The next buyer gets a fresh checkout.
    assert pay_with_card(client, link.slug, email="next@example.com").status_code == 303
    assert _count(Payment) == 2


def test_l17_unknown_checkout_token_is_404(client, owner):
    assert client.get("/checkout/not-a-real-token").status_code == 404


# -- L18: embed -----------------------------------------------------------------------------------------------


def test_l18_embed_dialog_shows_the_snippet_and_a_preview(client, owner):
    link = create_link(client, name="Embed me")
    response = client.get(f"/links/{link.id}/embed")
    soup = soup_of(response)
    dialog = soup.select_one("dialog")
    assert dialog is not None
    snippet = dialog.select_one("textarea#embed-snippet")
    assert snippet.has_attr("readonly") and soup.select_one('label[for="embed-snippet"]')
    assert snippet.get_text() == (f'<script src="{BASE}/embed.js" defer></script>\n'
                                  f'<a href="{BASE}/pay/{link.slug}" data-kassa-button>Buy now</a>')
    assert dialog.select_one('button[data-copy="embed-snippet"]')
    frame = dialog.select_one("iframe")
    assert frame["src"] == f"/links/{link.id}/embed-preview" and frame.get("title")
    htmx = client.get(f"/links/{link.id}/embed", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in htmx and "<dialog" in htmx


def test_l18_embed_preview_page_may_be_framed_by_kassa_only(client, owner):
    link = create_link(client)
    response = client.get(f"/links/{link.id}/embed-preview")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    anchor = soup_of(response).select_one("a[data-kassa-button]")
    assert anchor["href"] == f"{BASE}/pay/{link.slug}"
    assert client.get("/links/").headers["X-Frame-Options"] == "DENY"


def test_l18_embed_js_is_small_cacheable_and_csp_safe(client):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    body = response.get_data(as_text=True)
    assert len(response.data) < 3 * 1024
    cache = response.headers["Cache-Control"]
    assert "public" in cache and int(re.search(r"max-age=(\d+)", cache).group(1)) >= 300
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    for forbidden in ("eval(", "new Function", "innerHTML", "style=", ".style.", "setAttribute(\"style\"",
                      "import ", "require("):
        assert forbidden not in body, forbidden
    assert "kassa-button" in body and "data-kassa-button" in body


def test_l18_embed_stylesheet_uses_the_brand_colour_with_readable_text(client, owner):
    link = create_link(client)
    for brand, text in (("#aa3300", "#ffffff"), ("#ffd700", "#1b1f24")):
        assert client.post("/settings/branding", data={"brand_color": brand}).status_code == 303
        response = client.get(f"/embed/{link.slug}.css")
        assert response.status_code == 200 and response.mimetype == "text/css"
        assert "public" in response.headers["Cache-Control"]
        css = response.get_data(as_text=True)
        rule = re.search(r'a\.kassa-button\[data-kassa-slug="' + link.slug + r'"\]\{([^}]*)\}', css)
        assert rule, css
        assert f"background:{brand}" in rule.group(1) and f"color:{text}" in rule.group(1)
        assert contrast_ratio(brand, text) >= 4.5
    # Case-insensitive slug; unknown slug 404.
    assert client.get(f"/embed/{link.slug.upper()}.css").status_code == 200
    assert client.get("/embed/nosuchslug99.css").status_code == 404


def test_l18_embed_stylesheet_is_public(client, owner):
    link = create_link(client)
    client.post("/logout")
    response = client.get(f"/embed/{link.slug}.css")
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"


# -- L19: share (QR), deactivate, edit without breaking the URL, slugs --------------------------------------


def test_l19_share_dialog_has_url_qr_and_mailto(client, owner):
    link = create_link(client, name="Share me")
    soup = soup_of(client.get(f"/links/{link.id}/share"))
    dialog = soup.select_one("dialog")
    url = f"{BASE}/pay/{link.slug}"
    assert dialog.select_one("#share-url")["value"] == url and dialog.select_one("#share-url").has_attr("readonly")
    svg = dialog.select_one(".qr svg")
    assert svg is not None and svg.select_one("title")
    downloads = {a["href"] for a in dialog.select("a[download]")}
    assert downloads == {f"/links/{link.id}/qr.png", f"/links/{link.id}/qr.svg"}
    mailto = dialog.select_one('a[href^="mailto:"]')["href"]
    assert mailto.startswith("mailto:?subject=") and mailto.endswith(f"/pay/{link.slug}")


def test_l19_qr_code_downloads(client, owner):
    link = create_link(client)
    svg = client.get(f"/links/{link.id}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "attachment" in svg.headers["Content-Disposition"] and f"{link.slug}.svg" in svg.headers["Content-Disposition"]
    root = ET.fromstring(svg.data)
    assert root.tag.endswith("svg") and root.find(".//{http://www.w3.org/2000/svg}path") is not None
    png = client.get(f"/links/{link.id}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png.data))
    assert image.width == image.height >= 200
    assert client.get(f"/links/{link.id}/qr.gif").status_code == 404


def test_l19_deactivate_and_reactivate(client, owner):
    link = create_link(client, name="Seasonal")
    response = client.post(f"/links/{link.id}/status", data={"status": "inactive"})
    assert response.status_code == 303
    listing = client.get(path_of(response.headers["Location"]))
    assert "“Seasonal” is deactivated" in page_text(listing)
    row = _row_for(listing, "Seasonal")
    assert _cells(row)[3] == "Inactive"
    assert row.select_one('input[name="status"][value="active"]')

    gone = client.get(f"/pay/{link.slug}")
    assert gone.status_code == 410
    assert "no longer accepting payments" in page_text(gone)
    assert client.get(signed_test_path(link.slug)).status_code == 410
    assert _count(CheckoutSession) == 0
    assert client.get(f"/embed/{link.slug}.css").status_code == 200  # buttons keep their look

    assert client.post(f"/links/{link.id}/status", data={"status": "active"}).status_code == 303
    assert _cells(_row_for(client.get("/links/"), "Seasonal"))[3] == "Active"
    assert pay_with_card(client, link.slug).status_code == 303


def test_l19_editing_keeps_the_slug_and_only_new_sessions_see_the_change(client, owner):
    link = create_link(client, item_fields(0, "Old item", "20.00"))
    link_id, slug = link.id, link.slug
    before = start_checkout(client, slug)

    values = form_values(client.get(f"/links/{link_id}/edit"))
    values.update({"items-0-name": "New item", "items-0-unit_price": "35.00", "action": "save"})
    assert client.post(f"/links/{link_id}/edit", data=values).status_code == 303
    link = db.session.get(PaymentLink, link_id)
    assert link.slug == slug and link.version == 2

    old_page = page_text(client.get(before))
    assert "Old item" in old_page and "€20.00" in old_page and "New item" not in old_page
    after = start_checkout(client, slug)
    new_page = page_text(client.get(after))
    assert "New item" in new_page and "€35.00" in new_page and "Old item" not in new_page

    # The buyer on the old page pays what they were shown.
    assert submit_checkout(client, before).status_code == 303
    payment = db.session.scalars(select(Payment)).one()
    assert payment.amount_minor == 2000 and payment.items[0].name == "Old item"
    assert db.session.get(CheckoutSession, payment.checkout_session_id).link_version == 1


def test_l19_slugs_are_long_lower_case_and_unique(client, owner):
    made = _bulk_links(owner, 200)
    slugs = [link.slug for link in made]
    assert len(set(slugs)) == 200
    for slug in slugs:
        assert len(slug) >= 10 and re.fullmatch(r"[a-z0-9]+", slug), slug
    # A slug typed in capitals still reaches its link.
    assert client.get(f"/pay/{slugs[0].upper()}").status_code == 303


def test_l19_unknown_slug_is_404(client):
    response = client.get("/pay/doesnotexist1")
    assert response.status_code == 404 and "Payment link not found" in page_text(response)


# -- access ------------------------------------------------------------------------------------------------------


def test_member_gets_403_on_every_list_route(client):
    owner = make_merchant(currency="EUR")
    [link] = _bulk_links(owner, 1)
    member = make_user(owner.account_id, Role.MEMBER)
    log_in(client, member.email, PASSWORD)
    for method, path in [
        ("GET", "/links/"), ("GET", f"/links/{link.id}/share"), ("GET", f"/links/{link.id}/qr.svg"),
        ("GET", f"/links/{link.id}/qr.png"), ("GET", f"/links/{link.id}/embed"),
        ("GET", f"/links/{link.id}/embed-preview"), ("POST", f"/links/{link.id}/status"),
        ("GET", f"/links/{link.id}/delete"), ("POST", f"/links/{link.id}/delete"),
    ]:
        response = client.open(path, method=method, data={"status": "inactive"} if method == "POST" else None)
        assert response.status_code == 403, f"{method} {path}"
    link = db.session.get(PaymentLink, link.id)
    assert link.status == "active" and link.deleted_at is None


def test_payments_manager_can_deactivate_and_delete(client):
    owner = make_merchant(currency="EUR")
    [link] = _bulk_links(owner, 1)
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    log_in(client, manager.email, PASSWORD)
    assert client.post(f"/links/{link.id}/status", data={"status": "inactive"}).status_code == 303
    assert client.post(f"/links/{link.id}/delete").status_code == 303
    assert _count(PaymentLink) == 0


def test_link_rows_written_directly_render(client, owner):
    """A link with an item in another currency (an old row) still renders in the list."""
    with write_transaction(db.session) as session:
        session.add(PaymentLink(account_id=owner.account_id, slug="directrow001", name="Direct", currency="EUR",
                                items=[LinkItem(name="X", unit_amount_minor=100, currency="EUR")]))
    assert _cells(_row_for(client.get("/links/"), "Direct"))[2] == "€1.00"


def test_link_form_helper_round_trip(client, owner):
    """The editor renders exactly what the helper submits (guards the other tests' assumptions)."""
    values = form_values(client.post("/links/new", data=link_form(action="refresh")))
    for key, value in link_form(action="refresh").items():
        if key in ("action", "redirect_url", "pipeline_id", "stage_id"):
            continue
        assert values.get(key, "") == value, key


def test_hostile_page_numbers_are_harmless(client, owner):
    create_link(client, name="Only link")
    for page in ("99999999999999999999999", "-5", "0", "abc"):
        for path in ("/links/", "/products/"):
            response = client.get(path, query_string={"page": page})
            assert response.status_code == 200, (path, page)
    assert [row.th.get_text(strip=True) for row in _rows(client.get("/links/?page=-5"))] == ["Only link"]
