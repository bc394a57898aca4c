"""Payment links in Chromium (issue 4): build a link from the library and a custom recurring item, share it,
embed it, deactivate it; and the embed button on another site under a strict CSP (L1–L19)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, htmx_swap, screenshot, serving, sign_up, signed_test_url

pytestmark = pytest.mark.browser

BRAND = "#aa3300"
BRAND_RGB = "rgb(170, 51, 0)"
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


def _create_product(page, base: str, name: str, price: str) -> None:
    page.goto(f"{base}/products/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Unit price").fill(price)
    page.get_by_role("button", name="Save product").click()
    page.wait_for_url(f"{base}/products/")
    page.get_by_role("cell", name=name).wait_for()


def _open_actions(page, link_name: str):
    row = page.locator("#link-table tbody tr", has=page.get_by_role("rowheader", name=link_name))
    menu = row.locator("details.menu")
    if menu.get_attribute("open") is None:
        row.locator("summary").click()
    return row


def test_create_share_embed_deactivate_a_link(live_server, desktop_page):
    page = desktop_page
    base = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    sign_up(page, live_server)
    _create_product(page, base, "Helmet", "59.90")
    _create_product(page, base, "Bike lock", "24.50")

    # L1: from the (empty) list to the editor.
    page.goto(f"{base}/links/")
    assert_accessible(page, "links list, empty")
    page.get_by_role("link", name="Create payment link").first.click()
    page.wait_for_url(f"{base}/links/new")
    assert_accessible(page, "editor, new")

    # L2: tick both library products and add them. Each editor button redraws the editor (htmx): wait until
    # the new one has settled (its buttons wired up, autofocus applied) before the next step uses it.
    with htmx_swap(page):
        page.get_by_role("button", name="Add from product library").click()
    library = page.get_by_role("region", name="Product library")
    expect(library).to_be_visible()
    assert_accessible(page, "editor with the product library open")
    library.get_by_label(re.compile("^Helmet")).check()
    library.get_by_label(re.compile("^Bike lock")).check()
    with htmx_swap(page):
        library.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#f-items-0-name")).to_have_value("Bike lock")
    expect(page.locator("#f-items-1-name")).to_have_value("Helmet")
    expect(page.locator("#f-items-1-unit_price")).to_have_value("59.90")

    # L5–L7: one custom monthly item with 7 payments.
    with htmx_swap(page):
        page.get_by_role("button", name="Add line item").click()
    name = page.locator("#f-items-2-name")
    expect(name).to_be_focused()
    name.fill("Maintenance plan")
    page.locator("#f-items-2-unit_price").fill("20.00")
    with htmx_swap(page):  # a recurring item gets its billing terms
        page.locator("#f-items-2-frequency").select_option("monthly")
    expect(page.locator("#f-items-2-name")).to_have_value("Maintenance plan")
    page.get_by_role("group", name="Billing terms").get_by_label("Fixed number of payments").check()
    page.locator("#f-items-2-term_count").fill("7")

    # The live preview says what the buyer will pay.
    preview = page.locator("#link-preview")
    expect(preview.get_by_text("Then €20.00 every month, 7 payments in total")).to_be_visible()
    expect(preview).to_contain_text(re.compile(r"Total due today\s+€104\.40"), use_inner_text=True)
    # The bank debit (SEPA for this EUR link, Q10) is switched off, with the reason, now that an item recurs (L11).
    expect(page.get_by_label("Bank debit (SEPA Direct Debit)")).to_be_disabled()

    # Saving without a link name: the error is at the field, and the page stays accessible.
    with htmx_swap(page):
        page.get_by_role("button", name="Create").click()
    expect(page.locator("#f-name-error")).to_contain_text("Only you see it")
    expect(page.locator("#f-items-2-term_count")).to_have_value("7")
    assert_accessible(page, "editor with an error")
    screenshot(page, "link-editor-error-desktop")
    page.get_by_label("Link name").fill("Spring bundle")
    screenshot(page, "link-editor-desktop")

    # L14, B11: save → the share step with a message, then Done → the list.
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/links/\d+/created$"))
    page.get_by_text("Payment link “Spring bundle” created").wait_for()
    page.get_by_role("link", name="Done").click()
    page.wait_for_url(re.compile(r"/links/\?highlight=\d+$"))
    row = page.locator("#link-table tbody tr", has=page.get_by_role("rowheader", name="Spring bundle"))
    assert "€104.40" in row.inner_text() and "Active" in row.inner_text()
    assert_accessible(page, "links list")
    screenshot(page, "links-list-desktop")

    # L16: the link from the Copy link field, and the copy button puts it on the clipboard.
    row = _open_actions(page, "Spring bundle")
    url = row.get_by_label("Link", exact=True).input_value()
    assert re.fullmatch(re.escape(base) + r"/pay/[a-z0-9]{10,}", url), url
    row.get_by_role("button", name="Copy link").click()
    page.locator("#toasts").get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert_accessible(page, "links list with the actions menu open")
    screenshot(page, "links-list-actions-desktop")

    # L19: Share — URL, QR code, downloads.
    with htmx_swap(page):
        row.get_by_role("link", name="Share").click()
    share = page.get_by_role("dialog", name="Share “Spring bundle”")
    expect(share).to_be_visible()
    assert share.get_by_label("Link to share").input_value() == url
    assert share.locator(".qr svg").is_visible()
    assert_accessible(page, "share dialog")
    screenshot(page, "link-share-dialog-desktop")
    share.get_by_role("link", name="Close").click()
    share.wait_for(state="detached")

    # L18: Embed — snippet and a live preview of the button.
    row = _open_actions(page, "Spring bundle")
    with htmx_swap(page):
        row.get_by_role("link", name="Embed").click()
    embed = page.get_by_role("dialog", name="Embed “Spring bundle” on your website")
    expect(embed).to_be_visible()
    snippet = embed.get_by_label("Embed code").input_value()
    assert f'<a href="{url}" data-kassa-button>Buy now</a>' in snippet and f'{base}/embed.js' in snippet
    button = page.frame_locator("iframe.embed-preview").locator("a.kassa-button")
    button.wait_for()
    assert button.inner_text() == "Buy now"
    assert_accessible(page, "embed dialog")
    screenshot(page, "link-embed-dialog-desktop")
    page.keyboard.press("Escape")
    embed.wait_for(state="detached")

    # L19: deactivate → the URL answers 410 with a friendly page; reactivate → it works again.
    row = _open_actions(page, "Spring bundle")
    row.get_by_role("button", name="Deactivate").click()
    page.get_by_text("“Spring bundle” is deactivated").wait_for()
    row = page.locator("#link-table tbody tr", has=page.get_by_role("rowheader", name="Spring bundle"))
    assert "Inactive" in row.inner_text()
    buyer = page.context.new_page()
    response = buyer.goto(url)
    assert response.status == 410
    assert "no longer accepting payments" in buyer.locator("main").inner_text()
    row = _open_actions(page, "Spring bundle")
    row.get_by_role("button", name="Reactivate").click()
    page.get_by_text("“Spring bundle” is active again").wait_for()
    buyer.goto(signed_test_url(base, url.rsplit("/", 1)[1]))  # live mode has no processor here; test shows the order
    buyer.wait_for_url(re.compile(re.escape(base) + r"/checkout/[\w-]+$"))
    summary = " ".join(buyer.locator(".summary").inner_text().split())
    assert "Then €20.00 every month, 7 payments in total" in summary
    assert "Spring bundle" not in buyer.content()  # L8
    buyer.close()

    # Edit keeps the URL (L19).
    page.get_by_role("rowheader", name="Spring bundle").get_by_role("link").click()
    page.get_by_text(url.removeprefix(base)).wait_for()
    assert page.locator("#f-items-2-term_count").input_value() == "7"
    assert page.js_errors == []


# -- a merchant's own site on another origin, with a strict CSP ---------------------------------------


class _ShopHandler(BaseHTTPRequestHandler):
    server: _Shop

    def do_GET(self) -> None:
        if self.path.startswith("/thanks"):
            self._send(b"<!doctype html><html lang='en'><title>Thanks</title><main><h1>Thank you!</h1></main>",
                       csp="default-src 'self'")
            return
        kassa, slug = self.server.kassa, self.server.slug
        if self.path not in ("/", "/plain") or not kassa:
            # Only the two shop pages exist; a browser's own extra requests (a favicon, or a page left open by
            # an earlier test reaching a reused port before this shop is set up) get a plain 404.
            self.send_error(404)
            return
        script = f'<script src="{kassa}/embed.js" defer></script>' if self.path != "/plain" else ""
        html = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Fast Bikes shop</title>"
                f"{script}</head><body><main><h1>Spring bundle</h1>"
                f'<a href="{signed_test_url(kassa, slug)}" data-kassa-button>Buy now</a></main></body></html>')
        # No 'unsafe-inline' anywhere: only Kassa's origin may provide scripts and styles.
        csp = f"script-src {kassa}; style-src {kassa}; default-src 'self'"
        if self.path == "/plain":
            csp = "script-src 'none'; style-src 'none'; default-src 'self'"
        self._send(html.encode(), csp=csp)

    def _send(self, body: bytes, *, csp: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", csp)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


class _Shop(ThreadingHTTPServer):
    kassa = ""
    slug = ""


@pytest.fixture
def shop() -> Iterator[_Shop]:
    server = _Shop(("127.0.0.1", 0), _ShopHandler)
    with serving(server):
        yield server


def _merchant_with_link(live_server, **link_settings) -> str:
    """A merchant with brand colour BRAND and one link; returns the link's slug."""
    with live_server.app.app_context():
        from kassa.actor import Actor
        from kassa.database import write_transaction
        from kassa.extensions import db
        from kassa.models import Account
        from kassa.services.links.link_drafts import ItemDraft, LinkDraft
        from kassa.services.links.links import create_link
        from tests.factories import make_merchant

        owner = make_merchant(company="Fast Bikes", currency="EUR")
        with write_transaction(db.session) as session:
            session.get(Account, owner.account_id).brand_color = BRAND
        draft = LinkDraft(name="Internal name", currency="EUR", items=[ItemDraft(name="Helmet", unit_price="59.90")],
                          **link_settings)
        slug = create_link(Actor(user=owner, account_id=owner.account_id), draft, "en").slug
        db.session.remove()
        return slug


def test_l18_embed_button_on_another_origin_under_a_strict_csp(live_server, shop, desktop_page):
    page = desktop_page
    shop.kassa, shop.slug = live_server.url, _merchant_with_link(live_server)
    shop_url = f"http://127.0.0.1:{shop.server_port}"
    assert shop_url != live_server.url
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(f"{shop_url}/")

    button = page.locator("a[data-kassa-button]")
    expect(button).to_have_class(re.compile(r"\bkassa-button\b"))  # embed.js has run
    # The stylesheet arrives from Kassa's origin: wait until it applies the brand colour.
    expect(button).to_have_css("background-color", BRAND_RGB)
    style = button.evaluate("el => { const s = getComputedStyle(el); return [s.color, s.display, s.minHeight]; }")
    assert style[0] == "rgb(255, 255, 255)"  # readable on the dark brand colour
    assert style[1] == "inline-flex" and style[2] == "44px"
    assert button.get_attribute("style") is None
    assert page.evaluate("window.__cspViolations") == []
    assert page.js_errors == []
    screenshot(page, "embed-button-on-merchant-site")

    button.click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/checkout/[\w-]+$"))
    assert page.locator(".summary").get_by_text("Helmet").is_visible()


def test_l18_embed_anchor_still_works_as_a_plain_link_without_the_script(live_server, shop, desktop_page):
    page = desktop_page
    shop.kassa, shop.slug = live_server.url, _merchant_with_link(live_server)
    page.goto(f"http://127.0.0.1:{shop.server_port}/plain")
    button = page.get_by_role("link", name="Buy now")
    assert "kassa-button" not in (button.get_attribute("class") or "")
    button.click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/checkout/[\w-]+$"))


def test_l13_buyer_lands_on_the_merchants_thank_you_page(live_server, shop, desktop_page):
    page = desktop_page
    thanks = f"http://127.0.0.1:{shop.server_port}/thanks?order=1"
    slug = _merchant_with_link(live_server, confirmation="redirect", redirect_url=thanks,
                               collect_billing_address=False)
    page.goto(signed_test_url(live_server.url, slug))
    page.get_by_label("Email").fill("ann.buyer@example.com")
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_label(re.compile("^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile("CVC")).fill("123")
    page.get_by_label("Name on card").fill("Ann Buyer")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    page.wait_for_url(thanks)
    assert page.get_by_role("heading", name="Thank you!").is_visible()
