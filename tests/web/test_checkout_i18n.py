"""The buyer's language on the checkout, its messages, emails and receipt (C7, E2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import CheckoutSession, Contact
from tests.support.app import page_text, run_outbox
from tests.support.checkout import buyer_form, signed_test_path, start_checkout, submit_checkout
from tests.support.checkout_flow import (
    T3_CARDS,
    alert,
    checkout_for,
    field_error,
    make_shop,
    only_payment,
    pdf_attachment,
    pdf_text,
    plain,
    soup_of,
    subject_of,
)
from tests.support.mailserver import Mailbox

SITE = Path(__file__).resolve().parents[2] / "site"

# The seed's Dutch messages for the T3 cards (the Dutch seed's table), and their French counterparts.
DECLINES = {
    "nl": {
        "4000000000000036": "Postcodevalidatie mislukt en de betaling is geweigerd.",
        "4000000000000002": "Kaart is geweigerd.",
        "4000000000009995": "De betaling is geweigerd wegens onvoldoende saldo.",
        "4000000000000069": "De betaling is geweigerd omdat de kaart verlopen is",
        "4000000000000127": "De betaling is geweigerd vanwege een onjuiste CVC.",
    },
    "fr": {
        "4000000000000036": "La vérification du code postal a échoué et le paiement a été refusé.",
        "4000000000000002": "Votre carte a été refusée.",
        "4000000000009995": "Le paiement a été refusé pour solde insuffisant.",
        "4000000000000069": "Le paiement a été refusé car la carte a expiré.",
        "4000000000000127": "Le paiement a été refusé car le code CVC est incorrect.",
    },
}
LABELS = {
    "nl": {"card_number": "Kaartnummer", "card_name": "Naam op de kaart", "billing_city": "Plaats",
           "pay": "Betaal US$ 25,00", "banner": "Testmodus", "summary": "Besteloverzicht"},
    "fr": {"card_number": "Numéro de carte", "card_name": "Nom sur la carte", "billing_city": "Ville",
           "pay": "Payer 25,00 $US", "banner": "Mode test", "summary": "Récapitulatif de la commande"},
}


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def shop(app):
    return make_shop("Fietsenwinkel De Ketting", allow_ach=True)


def _label(page, field: str) -> str:
    node = page.find("label", attrs={"for": f"f-{field}"})
    return plain(node.get_text(" ")) if node else ""


def _assert_in_language(response, lang: str) -> None:
    page = soup_of(response)
    assert page.html["lang"] == lang
    labels = LABELS[lang]
    assert _label(page, "card_number").startswith(labels["card_number"])
    assert _label(page, "card_name").startswith(labels["card_name"])
    assert _label(page, "billing_city").startswith(labels["billing_city"])
    assert plain(page.find("button", id="pay-button").get_text()) == labels["pay"]
    assert labels["banner"] in page.select_one(".testmode").get_text()
    assert labels["summary"] in plain(page.get_text(" "))


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_c7_checkout_follows_the_browsers_preferred_language(client, shop, lang):
    _owner, link = shop
    start = client.get(signed_test_path(link.slug), headers={"Accept-Language": f"{lang}-BE,{lang};q=0.9,en;q=0.5"})
    path = start.headers["Location"]

    _assert_in_language(client.get(path), lang)
    assert checkout_for(path).language == lang


def test_c7_english_when_the_browser_asks_for_a_language_we_do_not_have(client, shop):
    _owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": "de-DE,de;q=0.9"}).headers["Location"]

    page = soup_of(client.get(path))
    assert page.html["lang"] == "en"
    assert _label(page, "card_number").startswith("Card number")


def test_c7_switching_language_on_the_page_is_remembered(client, shop):
    _owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": "nl"}).headers["Location"]
    page = soup_of(client.get(path))
    switch = page.find("select", attrs={"name": "lang"})
    assert {o["value"] for o in switch.find_all("option")} == {"en", "nl", "fr"}

    _assert_in_language(client.get(f"{path}?lang=fr"), "fr")

    # H14: the GET itself writes nothing; the browser remembers the choice (saved on the session at payment).
    _assert_in_language(client.get(path, headers={"Accept-Language": "nl"}), "fr")  # the checkout keeps it
    # A new checkout in the same browser starts in the chosen language too.
    again = client.get(signed_test_path(link.slug), headers={"Accept-Language": "nl"}).headers["Location"]
    _assert_in_language(client.get(again), "fr")


@pytest.mark.parametrize(("lang", "placeholder", "change"), [("en", "MM / YY", "Change"), ("nl", "MM / JJ", "Wijzigen"),
                                                          ("fr", "MM / AA", "Modifier")])
def test_c7_expiry_placeholder_and_language_button_in_the_buyers_language(client, shop, lang, placeholder, change):
    _owner, link = shop
    path = start_checkout(client, link.slug)
    page = soup_of(client.get(f"{path}?lang={lang}"))

    assert page.find("input", id="f-card_expiry")["placeholder"] == placeholder
    # The language menu's own button is in the page, not only in <noscript>: it must work when JavaScript is
    # on but checkout.js never loaded.
    button = page.find("form", class_="lang").find("button", type="submit")
    assert button is not None and plain(button.get_text()) == change
    assert button.find_parent("noscript") is None


@pytest.mark.parametrize("lang", ["nl", "fr"])
@pytest.mark.parametrize(("number", "field", "_english"), T3_CARDS, ids=[c[0] for c in T3_CARDS])
def test_c7_decline_messages_in_the_buyers_language(client, shop, lang, number, field, _english):
    _owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": lang}).headers["Location"]

    response = client.post(path, data=buyer_form(card_number=number, lang=lang))

    assert response.status_code == 422
    assert field_error(response, field).startswith(DECLINES[lang][number])
    assert soup_of(response).html["lang"] == lang


@pytest.mark.parametrize(("lang", "field", "overrides", "message"), [
    ("nl", "card_number", {"card_number": "4242424242424241"}, "Je kaartnummer is ongeldig."),
    ("nl", "card_expiry", {"card_expiry": "01 / 20"}, "De vervaldatum van je kaart ligt in het verleden."),
    ("nl", "billing_city", {"billing_city": ""}, "Vul de plaats in."),
    ("fr", "card_number", {"card_number": "4242424242424241"}, "Votre numéro de carte n'est pas valide."),
    ("fr", "billing_city", {"billing_city": ""}, "Indiquez la ville."),
])
def test_c7_form_errors_in_the_buyers_language(client, shop, lang, field, overrides, message):
    _owner, link = shop
    path = start_checkout(client, link.slug)

    response = submit_checkout(client, path, lang=lang, **overrides)

    assert field_error(response, field) == message


def test_c7_card_testing_refusal_in_the_buyers_language(client, shop):
    """The guard's block in Dutch; in test mode the blocked test card shows it (H4: the decline cards no longer
    lock anyone out)."""
    _owner, link = shop

    blocked = client.post(start_checkout(client, link.slug), data=buyer_form(card_number="4100000000000019",
                                                                           lang="nl"))

    assert blocked.status_code == 429
    assert alert(blocked) == "Te veel geweigerde betalingen vanaf je verbinding. Probeer het over 1 uur opnieuw."


@pytest.mark.parametrize(("lang", "subject", "words", "amount"), [
    ("nl", "Je betaalbewijs van Fietsenwinkel De Ketting (R-000001)", ["Betaald bedrag", "Betaalbewijs"], "US$ 25,00"),
    ("fr", "Votre reçu de Fietsenwinkel De Ketting (R-000001)", ["Montant payé", "Reçu"], "25,00 $US"),
])
def test_c7_e2_receipt_email_and_pdf_in_the_buyers_language(client, shop, mailbox, lang, subject, words, amount):
    owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": lang}).headers["Location"]
    assert client.post(path, data=buyer_form(lang=lang, email="taal@buyer.example")).status_code == 303
    run_outbox()

    payment = only_payment()
    assert payment.language == lang
    assert db.session.scalar(select(Contact.language).where(Contact.email == "taal@buyer.example")) == lang
    [receipt] = mailbox.to("taal@buyer.example")
    assert subject_of(receipt) == subject
    assert amount in plain(Mailbox.text_of(receipt))
    text = pdf_text(pdf_attachment(receipt))
    for word in words:
        assert word in text
    assert amount in text and "TEST" in text
    # The merchant's notification stays in the merchant's language.
    [note] = mailbox.to(owner.email)
    assert subject_of(note) == "[Test] You received $25.00"
    # The confirmation page is in the buyer's language too.
    confirmation = client.get(path)
    assert soup_of(confirmation).html["lang"] == lang


def test_c7_bank_debit_emails_in_the_buyers_language(client, shop, mailbox):
    _owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": "nl"}).headers["Location"]
    form = buyer_form("ach", lang="nl", email="bank@buyer.example")
    assert client.post(path, data=form).status_code == 303
    run_outbox()

    [processing] = mailbox.to("bank@buyer.example")
    assert subject_of(processing) == "Je bankbetaling aan Fietsenwinkel De Ketting wordt verwerkt"
    assert "Bedankt! Je bankbetaling wordt verwerkt." in page_text(client.get(path))


def test_c7_ach_mandate_is_shown_and_stored_in_the_buyers_language(client, shop):
    _owner, link = shop
    path = client.get(signed_test_path(link.slug), headers={"Accept-Language": "fr"}).headers["Location"]
    shown = soup_of(client.get(path)).find(id="mandate-text").get_text()
    assert shown.startswith("En acceptant, vous autorisez Fietsenwinkel De Ketting")

    assert client.post(path, data=buyer_form("ach", lang="fr")).status_code == 303

    from kassa.models import Mandate

    mandate = db.session.scalar(select(Mandate))
    assert mandate.language == "fr"
    assert mandate.text.startswith("En acceptant, vous autorisez Fietsenwinkel De Ketting")


def test_c7_language_choice_is_kept_on_the_checkout_session(client, shop):
    _owner, link = shop
    path = start_checkout(client, link.slug)
    client.get(f"{path}?lang=nl")

    response = submit_checkout(client, path, card_number="4000000000000002")
    assert field_error(response, "card_number") == "Kaart is geweigerd."
    # H14: saved by the submit (a POST), not by the GET that switched the page.
    assert db.session.scalar(select(CheckoutSession.language)) == "nl"


# -- every buyer-facing text is translated ----------------------------------------------------------

BUYER_FILES = [
    *sorted((SITE / "templates" / "checkout").glob("*.html")),
    *(SITE / "templates" / "email" / f"{name}.html" for name in ("_layout", "receipt", "ach_processing", "ach_failed")),
    SITE / "templates" / "pdf" / "receipt.html",
    SITE / "templates" / "components" / "order_summary.html",
    *(SITE / "services" / f"{name}.py" for name in ("checkout/checkout", "checkout/checkout_form", "payments/risk")),
    SITE / "blueprints" / "checkout.py",
    SITE / "order_summary.py",
    SITE / "processors" / "testcards.py",
    SITE / "processors" / "stripe.py",  # K6: its refusals and next-action messages reach the buyer
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "_l": None, "lazy_gettext": None}


def _buyer_msgids() -> set[str | tuple[str, str]]:
    ids = set()
    for path in BUYER_FILES:
        method = "python" if path.suffix == ".py" else "jinja2"
        for _lineno, message, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS):
            ids.add(message if isinstance(message, str) else tuple(message))
    return ids


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_c7_every_buyer_facing_text_has_a_translation(lang):
    with open(SITE / "translations" / lang / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        catalog = read_mo(fh)
    missing = []
    for msgid in sorted(_buyer_msgids(), key=str):
        message = catalog.get(msgid)
        strings = message.string if message else None
        if not strings or (isinstance(strings, tuple) and not all(strings)):
            missing.append(msgid)
    assert missing == [], f"{len(missing)} buyer-facing texts have no {lang} translation: {missing}"
