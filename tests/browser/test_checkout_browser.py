"""The buyer's checkout on a phone (390×844) in Chromium: pay, decline, bank debit, languages, axe (C1–C7).

These tests pass with or without site/static/js/checkout.js: the page is a plain form that JavaScript
only improves, so the steps below only use what a buyer sees (labels, buttons, headings).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from kassa.clock import now
from tests.support.app import run_outbox
from tests.support.browser import PHONE, assert_accessible, new_context, screenshot, signed_test_url
from tests.support.checkout_flow import make_shop, pdf_attachment, pdf_text, subject_of

pytestmark = pytest.mark.browser

MERCHANT = "Bakkerij De Gouden Korst"
BUYER = "phone.buyer@example.com"


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def slug(live_server) -> str:
    from kassa.extensions import db

    with live_server.app.app_context():
        _owner, link = make_shop(MERCHANT, allow_ach=True)
        slug = link.slug
        db.session.remove()
    return slug


@pytest.fixture(params=["with-script", "script-blocked"])
def phone(request, phone_page):
    """The phone page, with checkout.js loaded or its request refused: the checkout must work both ways."""
    if request.param == "script-blocked":
        phone_page.route("**/checkout*.js*", lambda route: route.abort())
    phone_page.with_script = request.param == "with-script"  # type: ignore[attr-defined]
    return phone_page


def _shot(page, name: str) -> None:
    if page.with_script:
        screenshot(page, name)


def _open(page, base: str, slug: str) -> None:
    page.goto(signed_test_url(base, slug))
    page.get_by_role("button", name=re.compile(r"^Pay ")).wait_for()


def _fill_card(page, number: str, email: str = BUYER) -> None:
    page.get_by_label(re.compile(r"^Email")).fill(email)
    page.get_by_label(re.compile(r"^Card number")).fill(number)
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label("Name on card").fill("Pim Koper")
    page.get_by_label(re.compile(r"^Address")).fill("Damrak 1")
    page.get_by_label("Postal code").fill("10001")
    page.get_by_label("City").fill("New York")


def _pay(page) -> None:
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def _confirmation_heading(page, text: str = "Thank you! Your payment was received.") -> None:
    page.get_by_role("heading", name=text).wait_for()


def test_c4_pay_with_4242_on_a_phone_shows_confirmation_and_emails_a_pdf_receipt(live_server, phone, slug,
                                                                                 mailbox):
    page = phone
    _open(page, live_server.url, slug)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_text("Test mode", exact=True).is_visible()
    assert_accessible(page, "checkout card form")
    _shot(page, "checkout-phone")

    _fill_card(page, "4242 4242 4242 4242")
    _pay(page)

    _confirmation_heading(page)
    main = page.locator("main").inner_text()
    assert f"You paid $25.00 to {MERCHANT}." in main
    assert "Visa •••• 4242" in main
    assert page.get_by_role("link", name="Download receipt").is_visible()
    assert_accessible(page, "confirmation")
    _shot(page, "checkout-confirmation-phone")

    with live_server.app.app_context():
        run_outbox()
    [receipt] = mailbox.to(BUYER)
    assert subject_of(receipt).startswith(f"Your receipt from {MERCHANT}")
    text = pdf_text(pdf_attachment(receipt))
    assert "$25.00" in text and MERCHANT in text and "TEST" in text
    assert page.js_errors == []


def test_c5_declined_card_shows_its_message_and_keeps_the_email_then_a_retry_pays(live_server, phone, slug):
    page = phone
    _open(page, live_server.url, slug)
    _fill_card(page, "4000 0000 0000 0002")
    _pay(page)

    error = page.locator("#f-card_number-error")
    error.wait_for()
    assert error.inner_text() == "Your card was declined."
    assert page.get_by_label(re.compile(r"^Email")).input_value() == BUYER
    assert page.get_by_label("Name on card").input_value() == "Pim Koper"
    assert page.get_by_label(re.compile(r"CVC")).input_value() == ""
    assert_accessible(page, "error state")
    _shot(page, "checkout-error-phone")

    page.get_by_label(re.compile(r"^Card number")).fill("4242424242424242")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    _pay(page)
    _confirmation_heading(page)
    assert page.js_errors == []


def test_t4_bank_debit_succeeds_after_the_clock_advances(live_server, phone, slug, mailbox):
    from kassa.services.platform.ticks import run_tick

    page = phone
    _open(page, live_server.url, slug)
    # Without the script both methods' fields show; with it, only the chosen method's.
    assert page.get_by_label("Account holder name").is_visible() is not page.with_script
    page.get_by_label("Bank account", exact=True).check()
    page.get_by_label(re.compile(r"^Email")).fill(BUYER)
    page.get_by_label("Account holder name").fill("Pim Koper")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill("000123456789")
    assert page.get_by_text("By accepting, you authorize Bakkerij De Gouden Korst to debit $25.00").is_visible()
    page.get_by_label("I accept this debit authorization").check()
    assert_accessible(page, "ACH form")
    _shot(page, "checkout-ach-phone")
    _pay(page)

    _confirmation_heading(page, "Thank you! Your bank payment is processing.")
    assert "•••• 6789" in page.locator("main").inner_text()
    assert_accessible(page, "ACH processing confirmation")

    # Ten calendar days on: past 4 business days whatever the weekday and holidays.
    with time_machine.travel(now() + timedelta(days=10)):
        with live_server.app.app_context():
            assert run_tick().failed == {}
            run_outbox()
        page.reload()
        # H8: ten days on, the paying browser's hour is long over: the outcome shows, the buyer's details don't.
        _confirmation_heading(page, "This payment is complete")
        assert BUYER not in page.content()
    subjects = [subject_of(m) for m in mailbox.to(BUYER)]
    assert subjects[0] == f"Your bank payment to {MERCHANT} is processing"
    assert subjects[1].startswith(f"Your receipt from {MERCHANT}")
    assert page.js_errors == []


def test_c7_checkout_in_dutch_from_the_browser_and_switched_to_french(live_server, browser, slug):
    context = new_context(browser, viewport=PHONE, locale="nl-NL")
    try:
        page = context.new_page()
        _open_localized(page, live_server.url, slug, "Betaal ")
        assert page.locator("html").get_attribute("lang") == "nl"
        assert page.get_by_label(re.compile(r"^Kaartnummer")).is_visible()
        assert page.get_by_label("Naam op de kaart").is_visible()
        assert page.get_by_text("Testmodus", exact=True).is_visible()
        assert_accessible(page, "checkout in Dutch")
        screenshot(page, "checkout-nl-phone")
    finally:
        context.close()


def test_c7_language_switch_works_without_javascript(live_server, browser, slug):
    """With JavaScript off the language menu has its own button; the choice sticks for the whole checkout."""
    context = new_context(browser, viewport=PHONE, locale="nl-NL", java_script_enabled=False)
    try:
        page = context.new_page()
        _open_localized(page, live_server.url, slug, "Betaal ")
        page.get_by_label("Taal").select_option("fr")
        page.get_by_role("button", name="Wijzigen").click()
        page.get_by_role("button", name=re.compile(r"^Payer ")).wait_for()
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.get_by_label(re.compile(r"^Numéro de carte")).is_visible()
        # (axe needs JavaScript: the French page is checked in the next test.)

        # A declined card in French, then paying, without any script.
        _fill_card_fr(page, "4000000000000002")
        page.get_by_role("button", name=re.compile(r"^Payer ")).click()
        page.locator("#f-card_number-error").wait_for()
        assert page.locator("#f-card_number-error").inner_text() == "Votre carte a été refusée."
        assert page.locator("html").get_attribute("lang") == "fr"
    finally:
        context.close()


def test_c7_language_menu_switches_with_javascript_too(live_server, new_page, slug):
    page = new_page(PHONE, locale="fr-FR")
    _open_localized(page, live_server.url, slug, "Payer ")
    page.get_by_label("Langue").select_option("nl")
    # The script submits the menu on change: wait for the page it asks for (reading the old page's lang while
    # the new one loads would race the navigation).
    page.wait_for_url(re.compile(r"lang=nl"))
    page.get_by_role("button", name=re.compile(r"^Betaal ")).wait_for()
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.get_by_label(re.compile(r"^Kaartnummer")).is_visible()
    # Back to French from the menu: the whole page, the error state included, passes axe.
    page.get_by_label("Taal").select_option("fr")
    page.wait_for_url(re.compile(r"lang=fr"))
    page.get_by_role("button", name=re.compile(r"^Payer ")).wait_for()
    assert_accessible(page, "checkout in French")
    screenshot(page, "checkout-fr-phone")
    assert page.js_errors == []


def _open_localized(page, base: str, slug: str, pay_prefix: str) -> None:
    page.goto(signed_test_url(base, slug))
    page.get_by_role("button", name=re.compile(rf"^{pay_prefix}")).wait_for()


def _fill_card_fr(page, number: str) -> None:
    page.get_by_label(re.compile(r"^Adresse e-mail")).fill(BUYER)
    page.get_by_label(re.compile(r"^Numéro de carte")).fill(number)
    page.get_by_label(re.compile(r"^Expiration")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label("Nom sur la carte").fill("Pim Koper")
    page.get_by_label(re.compile(r"^Adresse(?! e-mail)")).fill("Damrak 1")
    page.get_by_label("Code postal").fill("10001")
    page.get_by_label("Ville").fill("New York")


# -- phone layout and the language menu in every language (issue 5 polish) -------------------------

PAY_PREFIX = {"en-US": "Pay ", "nl-NL": "Betaal ", "fr-FR": "Payer "}


def _box(locator) -> dict:
    box = locator.bounding_box()
    assert box is not None
    return box


def _assert_side_by_side(page, left: str, right: str) -> None:
    a, b = _box(page.locator(left)), _box(page.locator(right))
    assert abs(a["y"] - b["y"]) < 1 and abs(a["height"] - b["height"]) < 1, (left, a, right, b)


@pytest.mark.parametrize("locale", ["nl-NL", "fr-FR"])
def test_c6_expiry_and_cvc_boxes_line_up_when_a_label_wraps(live_server, new_page, slug, locale):
    """"Vervaldatum (MM/JJ)" takes two lines on a phone; the CVC box beside it must not sit higher."""
    page = new_page(PHONE, locale=locale)
    _open_localized(page, live_server.url, slug, PAY_PREFIX[locale])
    label = _box(page.locator('label[for="f-card_expiry"]'))
    assert label["height"] > 30  # the label does wrap here, or this test would prove nothing

    _assert_side_by_side(page, "#f-card_expiry", "#f-card_cvc")
    _assert_side_by_side(page, "#f-billing_postal_code", "#f-billing_city")
    # An error under one box only (shown when the buyer leaves it) keeps them in line.
    page.locator("#f-card_expiry").fill("01 / 20")
    page.locator("#f-card_cvc").focus()
    page.locator("#f-card_expiry-error").wait_for()
    _assert_side_by_side(page, "#f-card_expiry", "#f-card_cvc")
    assert page.locator("#f-card_expiry").get_attribute("placeholder") == (
        "MM / JJ" if locale == "nl-NL" else "MM / AA")
    screenshot(page, f"checkout-expiry-row-{locale[:2]}-phone")
    assert page.js_errors == []


def _menu_widths(page) -> tuple[float, float]:
    """The language menu's width on the page, and the width it needs to show its longest name in full."""
    return tuple(page.locator("#lang").evaluate("""(menu) => {
      const copy = menu.cloneNode(true);
      copy.removeAttribute("id");
      copy.style.cssText = "position:absolute;visibility:hidden;width:auto;min-width:0;max-width:none";
      menu.parentNode.appendChild(copy);
      const needed = copy.getBoundingClientRect().width;
      copy.remove();
      return [menu.getBoundingClientRect().width, needed];
    }"""))


@pytest.mark.parametrize("locale", ["nl-NL", "fr-FR"])
def test_c7_language_menu_shows_its_names_in_full_on_a_phone(live_server, new_page, slug, locale):
    page = new_page(PHONE, locale=locale)
    _open_localized(page, live_server.url, slug, PAY_PREFIX[locale])
    width, needed = _menu_widths(page)
    assert width >= needed - 0.5, f"the menu is {width}px wide but needs {needed}px"
    # The merchant's long name wraps instead, and nothing sticks out of the phone's width.
    assert _box(page.locator(".lang"))["x"] + _box(page.locator(".lang"))["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_c7_language_menu_works_with_and_without_checkout_js(live_server, phone, slug):
    """With checkout.js, picking a language switches at once; when JavaScript is on but the script failed to
    load, the menu's own button (not a <noscript> one) does it. The button stays either way: hiding it once the
    script runs would reflow the header after the first paint (a layout shift)."""
    page = phone
    _open(page, live_server.url, slug)
    button = page.get_by_role("button", name="Change", exact=True)
    assert button.is_visible()
    width, needed = _menu_widths(page)
    assert width >= needed - 0.5
    page.get_by_label("Language").select_option("nl")
    if page.with_script:
        page.wait_for_url(re.compile(r"lang=nl"))
    else:
        button.click()
    page.get_by_role("button", name=re.compile(r"^Betaal ")).wait_for()
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.get_by_role("button", name="Wijzigen", exact=True).is_visible()
    _shot(page, "checkout-lang-menu-nl-phone")
    assert page.js_errors == []


def test_c5_failed_bank_debit_offers_to_start_again_and_pay_another_way(live_server, phone, slug):
    from kassa.services.platform.ticks import run_tick

    page = phone
    _open(page, live_server.url, slug)
    page.get_by_label("Bank account", exact=True).check()
    page.get_by_label(re.compile(r"^Email")).fill(BUYER)
    page.get_by_label("Account holder name").fill("Pim Koper")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill("000222222227")  # T4: fails for insufficient funds
    page.get_by_label("I accept this debit authorization").check()
    _pay(page)
    _confirmation_heading(page, "Thank you! Your bank payment is processing.")
    assert page.get_by_role("link", name="Start again").count() == 0
    failed_url = page.url

    with time_machine.travel(now() + timedelta(days=10)):
        with live_server.app.app_context():
            assert run_tick().failed == {}
        page.reload()
        _confirmation_heading(page, "The payment didn't go through")
        assert "You can start again and pay another way." in page.locator("main").inner_text()
        assert_accessible(page, "failed bank debit")
        _shot(page, "checkout-ach-failed-phone")
        page.get_by_role("link", name="Start again").click()
        page.get_by_role("button", name=re.compile(r"^Pay ")).wait_for()
        assert page.url != failed_url and "/checkout/" in page.url
    assert page.js_errors == []
