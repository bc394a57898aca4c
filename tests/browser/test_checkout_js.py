"""checkout.js (C3, C6, C7) in Chromium on a static copy of the checkout form, under a strict CSP.

The page is served by a tiny http.server on 127.0.0.1 (no app, no database): `/` is the fixture,
`/static/` is `site/static/`, and a POST to `/pay` answers 204 so the page stays put after submitting.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.browser import serving

pytestmark = pytest.mark.browser

STATIC = (Path(__file__).resolve().parents[2] / "site" / "static").resolve()
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "checkout_js.html"
# Stricter than the app's own policy: no inline script or style at all, and no network access for scripts.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
       "form-action 'self'; base-uri 'none'")
# Runs before the page's own scripts (injected by Playwright, so the page's CSP does not apply to it).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


# `/?after_decline` renders the page as the server would after a refused POST: a focused summary, an
# error on the card number (with its aria wiring) and the buyer's address line 2 kept.
AFTER_DECLINE = [
    ('data-title="There is a problem" hidden></div>',
     'data-title="There is a problem" data-focus><h2>There is a problem</h2>'
     '<ul><li><a href="#f-card_number">Your card was declined.</a></li></ul></div>'),
    ('<div class="field" data-field="card_number">', '<div class="field field--error" data-field="card_number">'),
    ('autocomplete="cc-number" maxlength="19"',
     'autocomplete="cc-number" maxlength="19" value="4000000000000002" aria-invalid="true" '
     'aria-describedby="f-card_number-error"'),
    ('id="f-card_number-error" hidden></p>', 'id="f-card_number-error">Your card was declined.</p>'),
    ('<div class="field js-hide" data-field="billing_line2">', '<div class="field" data-field="billing_line2">'),
    ('autocomplete="billing address-line2">', 'autocomplete="billing address-line2" value="Apartment 4">'),
]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == "/":
            html = FIXTURE.read_text(encoding="utf-8")
            if url.query == "after_decline":
                for old, new in AFTER_DECLINE:
                    assert old in html, old
                    html = html.replace(old, new)
            self._send(200, "text/html; charset=utf-8", html.encode())
            return
        if path.startswith("/static/"):
            file = (STATIC / path.removeprefix("/static/")).resolve()
            if file.is_file() and file.is_relative_to(STATIC):
                self._send(200, mimetypes.guess_type(file.name)[0] or "application/octet-stream", file.read_bytes())
                return
        self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.posts.append(parse_qs(body, keep_blank_values=True))
        self._send(204, None, b"")

    def _send(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # keep the test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    posts: list[dict[str, list[str]]]


@pytest.fixture(scope="module")
def fixture_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.posts = []
    with serving(server):
        yield server


@pytest.fixture
def checkout(fixture_server, phone_page):
    """The fixture checkout on a phone; fails the test if any script error or CSP violation happened."""
    fixture_server.posts.clear()
    page = phone_page
    page.base_url = f"http://127.0.0.1:{fixture_server.server_port}"
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(page.base_url + "/")
    page.wait_for_function("() => document.readyState === 'complete'")
    yield page
    assert page.js_errors == []
    if not page.is_closed() and page.url.startswith(page.base_url):
        assert page.evaluate("window.__cspViolations") == []


def error(page, name: str):
    return page.locator(f"#f-{name}-error")


def caret(locator) -> list[int]:
    return locator.evaluate("el => [el.selectionStart, el.selectionEnd]")


def assert_error(page, name: str, message: str) -> None:
    field = page.locator(f"#f-{name}")
    assert error(page, name).is_visible()
    assert error(page, name).text_content() == message
    assert field.get_attribute("aria-invalid") == "true"
    assert f"f-{name}-error" in (field.get_attribute("aria-describedby") or "").split()
    assert "field--error" in page.locator(f'[data-field="{name}"]').get_attribute("class")


def assert_no_error(page, name: str) -> None:
    field = page.locator(f"#f-{name}")
    assert error(page, name).is_hidden()
    assert field.get_attribute("aria-invalid") is None
    assert f"f-{name}-error" not in (field.get_attribute("aria-describedby") or "").split()
    assert "field--error" not in page.locator(f'[data-field="{name}"]').get_attribute("class")


def future_expiry() -> str:
    return f"12{(date.today().year + 3) % 100:02d}"


def fill_valid_card_checkout(page) -> None:
    page.locator("#f-email").fill("buyer@example.com")
    page.locator("#f-first_name").fill("Bea")
    page.locator("#f-last_name").fill("Buyer")
    page.locator("#f-card_number").fill("4242424242424242")
    page.locator("#f-card_expiry").fill(future_expiry())
    page.locator("#f-card_cvc").fill("123")
    page.locator("#f-card_name").fill("Bea Buyer")
    page.locator("#f-billing_line1").fill("1 Main Street")
    page.locator("#f-billing_city").fill("Springfield")
    page.locator("#f-billing_postal_code").fill("12345")


def test_c6_card_number_spaced_by_brand_with_brand_name(checkout):
    page = checkout
    number, brand = page.locator("#f-card_number"), page.locator("[data-card-brand]")
    cases = [
        ("4242424242424242", "4242 4242 4242 4242", "Visa"),
        ("378282246310005", "3782 822463 10005", "American Express"),
        ("36227206271667", "3622 720627 1667", "Diners Club"),
        ("3056930009020004", "3056 9300 0902 0004", "Diners Club"),
        ("5555555555554444", "5555 5555 5555 4444", "Mastercard"),
        ("2223003122003222", "2223 0031 2200 3222", "Mastercard"),
        ("6011111111111117", "6011 1111 1111 1117", "Discover"),
        ("3566002020360505", "3566 0020 2036 0505", "JCB"),
        ("6200000000000005", "6200 0000 0000 0005", "UnionPay"),
        ("6200000000000000003", "6200 0000 0000 0000 003", "UnionPay"),
    ]
    for typed, expected, name in cases:
        number.fill("")
        number.press_sequentially(typed)
        assert number.input_value() == expected, typed
        assert brand.text_content() == name
    # Digits beyond the brand's longest number are dropped.
    number.fill("")
    number.press_sequentially("42424242424242429")
    assert number.input_value() == "4242 4242 4242 4242"
    number.fill("")
    number.press_sequentially("3782822463100059")
    assert number.input_value() == "3782 822463 10005"
    number.fill("")
    assert brand.text_content() == ""


def test_c6_caret_stays_where_the_buyer_edits(checkout):
    page = checkout
    number = page.locator("#f-card_number")
    number.press_sequentially("42424242")
    assert number.input_value() == "4242 4242"
    number.evaluate("el => el.setSelectionRange(2, 2)")
    page.keyboard.type("1")
    assert (number.input_value(), caret(number)) == ("4214 2424 2", [3, 3])
    page.keyboard.type("9")
    assert (number.input_value(), caret(number)) == ("4219 4242 42", [4, 4])
    page.keyboard.type("8")  # the digit lands after the space, and so does the caret
    assert (number.input_value(), caret(number)) == ("4219 8424 242", [6, 6])
    # Backspace just after a space deletes the digit before it rather than doing nothing.
    number.evaluate("el => el.setSelectionRange(5, 5)")
    page.keyboard.press("Backspace")
    assert (number.input_value(), caret(number)) == ("4218 4242 42", [3, 3])
    # Delete just before a space deletes the digit after it.
    number.evaluate("el => el.setSelectionRange(4, 4)")
    page.keyboard.press("Delete")
    assert (number.input_value(), caret(number)) == ("4218 2424 2", [4, 4])


def test_c6_pasted_numbers_are_respaced(checkout):
    page = checkout
    number = page.locator("#f-card_number")
    number.focus()
    page.keyboard.insert_text("4242 4242 4242 4242")
    assert number.input_value() == "4242 4242 4242 4242"
    number.fill("")
    page.keyboard.insert_text("3782-822463-10005")
    assert number.input_value() == "3782 822463 10005"
    assert caret(number) == [17, 17]
    number.fill("")
    # Longer than the template's maxlength once spaced: the script lifts maxlength and caps by brand instead.
    page.keyboard.insert_text("6200000000000000003")
    assert number.input_value() == "6200 0000 0000 0000 003"


def test_c6_expiry_auto_format_and_paste(checkout):
    page = checkout
    expiry = page.locator("#f-card_expiry")
    expiry.press_sequentially("2")
    assert expiry.input_value() == "02 / "
    page.keyboard.press("Backspace")  # removing the separator takes it away instead of re-adding it
    assert expiry.input_value() == "02"
    expiry.fill("")
    expiry.press_sequentially("1")
    assert expiry.input_value() == "1"
    expiry.press_sequentially("2")
    assert expiry.input_value() == "12 / "
    expiry.press_sequentially("29")
    assert expiry.input_value() == "12 / 29"
    expiry.fill("")
    expiry.press_sequentially("13")
    assert expiry.input_value() == "01 / 3"
    expiry.fill("")
    expiry.press_sequentially("1/")
    assert expiry.input_value() == "01 / "
    for pasted in ("12/29", "1229", "12 / 2029", "12/2029"):
        expiry.fill("")
        page.keyboard.insert_text(pasted)
        assert expiry.input_value() == "12 / 29", pasted
    expiry.fill("")
    expiry.press_sequentially("122031")  # a four-digit year typed in full
    assert expiry.input_value() == "12 / 31"


def test_c6_expiry_in_the_past_shows_after_blur(checkout):
    page = checkout
    expiry = page.locator("#f-card_expiry")
    expiry.press_sequentially("0120")
    assert expiry.input_value() == "01 / 20"
    assert_no_error(page, "card_expiry")  # not while typing
    expiry.blur()
    assert_error(page, "card_expiry", "Your card's expiry date is in the past.")
    expiry.fill("")
    expiry.press_sequentially(future_expiry()[:3])
    assert_error(page, "card_expiry", "Your card's expiry date is incomplete.")
    expiry.press_sequentially(future_expiry()[3:])
    assert_no_error(page, "card_expiry")  # fixed: gone at once, before leaving the field


def test_c6_cvc_length_follows_the_brand(checkout):
    page = checkout
    number, cvc = page.locator("#f-card_number"), page.locator("#f-card_cvc")
    number.press_sequentially("378282246310005")
    assert cvc.get_attribute("maxlength") == "4"
    cvc.press_sequentially("12345")
    assert cvc.input_value() == "1234"
    cvc.fill("123")
    cvc.blur()
    assert_error(page, "card_cvc", "Your card's security code is incomplete.")
    cvc.fill("1234")
    assert_no_error(page, "card_cvc")
    number.fill("4242424242424242")  # a shorter code now: the fourth digit goes
    assert cvc.get_attribute("maxlength") == "3"
    assert cvc.input_value() == "123"


def test_c6_luhn_error_after_blur_and_gone_once_corrected(checkout):
    page = checkout
    number = page.locator("#f-card_number")
    number.press_sequentially("4242424242424241")
    assert_no_error(page, "card_number")
    number.blur()
    assert_error(page, "card_number", "Your card number is invalid.")
    number.focus()
    page.keyboard.press("Backspace")
    assert_error(page, "card_number", "Your card number is incomplete.")
    page.keyboard.type("2")
    assert_no_error(page, "card_number")
    # Once fixed, the field waits for the next blur again.
    page.keyboard.press("Backspace")
    assert_no_error(page, "card_number")
    number.blur()
    assert_error(page, "card_number", "Your card number is incomplete.")


def test_c6_no_error_for_a_field_only_passed_through(checkout):
    page = checkout
    email = page.locator("#f-email")
    email.focus()
    email.blur()
    assert_no_error(page, "email")
    email.press_sequentially("bea")
    assert_no_error(page, "email")
    email.blur()
    assert_error(page, "email", "Enter an email address like name@example.com.")
    assert email.get_attribute("aria-describedby") == "f-email-hint f-email-error"  # the hint stays described
    email.press_sequentially("@example.com")
    assert_no_error(page, "email")
    assert email.get_attribute("aria-describedby") == "f-email-hint"


def test_c6_submit_with_errors_focuses_a_summary_of_links(checkout, fixture_server):
    page = checkout
    # Messages come from the page (here a Dutch one), never from the script.
    page.locator("#checkout-form").evaluate("f => f.setAttribute('data-msg-required', 'Dit veld is verplicht.')")
    page.locator("#f-card_number").fill("4242")
    page.locator("#pay-button").click()
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert summary.get_by_role("heading", level=2).text_content() == "There is a problem"
    links = summary.get_by_role("link")
    assert [a.get_attribute("href") for a in links.all()] == [
        "#f-email", "#f-first_name", "#f-last_name", "#f-card_number", "#f-card_expiry", "#f-card_cvc",
        "#f-card_name", "#f-billing_line1", "#f-billing_city", "#f-billing_postal_code",
    ]
    # B8: each line names its field (the label's own words, an address part with its address).
    assert links.first.text_content() == "Email: Dit veld is verplicht."
    assert links.nth(3).text_content() == "Card number: Your card number is incomplete."
    assert links.nth(7).text_content().startswith("Billing address · ")
    texts = [a.text_content() for a in links.all()]
    assert len(set(texts)) == len(texts)  # never the same line twice
    assert_error(page, "email", "Dit veld is verplicht.")
    assert page.locator("#pay-button").is_enabled()
    links.nth(3).click()
    assert page.evaluate("document.activeElement.id") == "f-card_number"
    assert fixture_server.posts == []
    # Typing into a field that has an error clears it live.
    page.locator("#f-first_name").fill("Bea")
    assert_no_error(page, "first_name")


def test_c3_method_switch_shows_and_sends_only_the_chosen_method(checkout, fixture_server):
    page = checkout
    card, ach = page.locator('[data-method-section="card"]'), page.locator('[data-method-section="ach"]')
    assert card.is_visible() and ach.is_hidden()
    assert page.locator("#f-routing_number").is_disabled()
    assert page.locator("#f-card_number").is_enabled()
    page.get_by_label("Bank account").check()
    assert card.is_hidden() and ach.is_visible()
    assert page.locator("#f-card_number").is_disabled() and page.locator("#f-card_cvc").is_disabled()
    assert page.locator("#f-routing_number").is_enabled() and page.locator("#f-ach_mandate").is_enabled()
    # The billing address lives in the card section, so "ship to my billing address" no longer applies.
    assert page.locator("#f-billing_line1").is_disabled() and page.locator("#f-shipping_same").is_disabled()
    assert page.locator("[data-shipping-fields]").is_visible() and page.locator("#f-shipping_line1").is_enabled()

    page.locator("#pay-button").click()
    hrefs = [a.get_attribute("href") for a in page.locator("#error-summary a").all()]
    assert "#f-card_number" not in hrefs and "#f-billing_line1" not in hrefs
    assert {"#f-routing_number", "#f-account_number", "#f-account_holder_name", "#f-ach_mandate"} <= set(hrefs)
    assert_error(page, "ach_mandate", "Accept the debit authorization to continue.")
    assert page.locator("#f-ach_mandate").get_attribute("aria-describedby") == "mandate-text f-ach_mandate-error"
    routing = page.locator("#f-routing_number")
    routing.fill("110000001")
    assert_error(page, "routing_number", "Enter a valid 9-digit routing number.")
    routing.fill("110 000 000")
    assert routing.input_value() == "110000000"
    assert_no_error(page, "routing_number")
    page.locator("#f-account_number").fill("123")
    assert_error(page, "account_number", "Enter an account number of 4 to 17 digits.")
    page.locator("#f-account_number").fill("000123456789")
    assert_no_error(page, "account_number")
    page.locator("#f-ach_mandate").check()
    assert_no_error(page, "ach_mandate")
    assert page.locator("#f-ach_mandate").get_attribute("aria-describedby") == "mandate-text"

    for name, value in (("email", "buyer@example.com"), ("first_name", "Bea"), ("last_name", "Buyer"),
                        ("account_holder_name", "Bea Buyer"), ("shipping_name", "Bea Buyer"),
                        ("shipping_line1", "1 Main Street"), ("shipping_city", "Springfield"),
                        ("shipping_postal_code", "12345")):
        page.locator(f"#f-{name}").fill(value)
    with page.expect_response("**/pay"):
        page.locator("#pay-button").click()
    (posted,) = fixture_server.posts
    assert posted["method"] == ["ach"] and posted["routing_number"] == ["110000000"]
    assert "card_number" not in posted and "card_cvc" not in posted and "billing_line1" not in posted
    assert "shipping_same" not in posted and posted["shipping_line1"] == ["1 Main Street"]

    # And back: the card section returns with its inputs enabled.
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    page.get_by_label("Card", exact=True).check()
    assert card.is_visible() and ach.is_hidden() and page.locator("#f-card_number").is_enabled()
    assert page.locator("[data-shipping-fields]").is_hidden() and page.locator("#f-shipping_line1").is_disabled()


def test_c5_server_error_stays_until_the_buyer_changes_the_field(checkout):
    page = checkout
    page.goto(page.base_url + "/?after_decline")
    page.wait_for_function("() => document.activeElement.id === 'error-summary'")  # focused on arrival
    summary_link = page.locator("#error-summary").get_by_role("link", name="Your card was declined.")
    number = page.locator("#f-card_number")
    assert number.input_value() == "4000 0000 0000 0002"  # the script spaces a value the server kept
    assert page.locator("[data-card-brand]").text_content() == "Visa"
    assert_error(page, "card_number", "Your card was declined.")
    number.focus()
    number.blur()
    assert_error(page, "card_number", "Your card was declined.")  # untouched: the server's word stands
    summary_link.click()
    assert page.evaluate("document.activeElement.id") == "f-card_number"
    number.fill("4242424242424242")
    assert_no_error(page, "card_number")
    # A line 2 the buyer already gave stays in view; no reveal button for it.
    assert page.locator('[data-field="billing_line2"]').is_visible()
    assert page.locator('[data-reveal="billing_line2"]').is_hidden()


def test_c2_address_line_2_is_revealed_on_demand(checkout):
    page = checkout
    field, button = page.locator('[data-field="billing_line2"]'), page.locator('[data-reveal="billing_line2"]')
    assert field.is_hidden() and button.is_visible()
    button.click()
    assert field.is_visible() and button.is_hidden()
    assert page.evaluate("document.activeElement.id") == "f-billing_line2"


def test_c2_shipping_same_as_billing_toggles_the_shipping_fields(checkout, fixture_server):
    page = checkout
    fields, same = page.locator("[data-shipping-fields]"), page.locator("#f-shipping_same")
    assert same.is_checked() and fields.is_hidden()
    assert page.locator("#f-shipping_line1").is_disabled()
    same.uncheck()
    assert fields.is_visible() and page.locator("#f-shipping_line1").is_enabled()
    assert page.locator('[data-field="shipping_line2"]').is_hidden()
    page.locator('[data-reveal="shipping_line2"]').click()
    assert page.evaluate("document.activeElement.id") == "f-shipping_line2"
    page.locator("#pay-button").click()
    hrefs = [a.get_attribute("href") for a in page.locator("#error-summary a").all()]
    assert {"#f-shipping_name", "#f-shipping_line1", "#f-shipping_city", "#f-shipping_postal_code"} <= set(hrefs)
    assert "#f-shipping_line2" not in hrefs
    same.check()
    assert fields.is_hidden() and page.locator("#f-shipping_line1").is_disabled()

    fill_valid_card_checkout(page)
    with page.expect_response("**/pay"):
        page.locator("#pay-button").click()
    assert not any(key.startswith("shipping_") and key != "shipping_same" for key in fixture_server.posts[0])


def test_c5_valid_submit_posts_once_and_disables_pay(checkout, fixture_server):
    page = checkout
    fill_valid_card_checkout(page)
    pay = page.locator("#pay-button")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url) if request.method == "POST" else None)
    # Record whether each submit got through or was refused by the script (a listener on the document runs
    # after the form's own), so the test knows rather than waits to see whether a second POST leaves.
    page.evaluate("window.__submits = []; document.addEventListener('submit', "
                  "(e) => window.__submits.push(e.defaultPrevented))")
    with page.expect_response("**/pay"):
        pay.dblclick()
    page.wait_for_function("() => document.getElementById('pay-button').disabled")
    assert pay.text_content() == "Processing…"
    page.locator("#checkout-form").evaluate("f => f.requestSubmit()")  # a late third attempt
    submits = page.evaluate("window.__submits")
    assert submits[0] is False and len(submits) >= 2 and all(submits[1:]), submits  # only the first went
    assert requests == [f"{page.base_url}/pay"]
    (posted,) = fixture_server.posts
    assert posted["card_number"] == ["4242 4242 4242 4242"]
    assert posted["method"] == ["card"]
    assert "routing_number" not in posted
    assert page.locator("#error-summary").is_hidden()

    # Back/forward cache restore: the button works again, with its original content.
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    assert pay.is_enabled()
    assert pay.inner_html() == 'Pay <span class="pay-amount">$10.00</span>'


def test_c7_language_select_submits_on_change(checkout):
    page = checkout
    page.get_by_label("Language").select_option("nl")
    page.wait_for_url("**/?lang=nl")

