"""Demo data for `make run`: a merchant you can log in as, with products, links and a month of test payments
to click through."""

from __future__ import annotations

from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import back_dated
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Payment, PaymentLink, Product, User
from kassa.money import Money
from kassa.services.accounts.users import sign_up
from kassa.services.checkout.checkout import pay, start_session
from kassa.services.links import products
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from kassa.services.links.links import create_link, sign_test_link
from kassa.services.payments.refunds import refund_payment

DEMO_COMPANY = "Northwind Coffee Roasters"

DEMO_PRODUCTS = [
    # name, description, price, frequency, term_type, term_count
    ("House blend, 1 kg", "Whole beans, roasted this week.", "24.50", "one_time", None, None),
    ("Single origin sampler", "Three 250 g bags from our current harvest.", "32.00", "one_time", None, None),
    ("Coffee club", "A fresh 500 g bag every month.", "18.00", "monthly", "auto_renew", None),
    ("Barista course", "Six monthly evening lessons at the roastery.", "45.00", "monthly", "fixed", 6),
    ("Espresso machine service", "Yearly descaling and check-up.", "89.00", "yearly", "auto_renew", None),
]


def seed_demo(email: str, password: str) -> bool:
    """Create the demo merchant once; returns False when it already exists."""
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        return False
    user = sign_up(
        company_name=DEMO_COMPANY,
        name="Demo Merchant",
        email=email,
        password=password,
        country="NL",
        currency="EUR",
        timezone="Europe/Amsterdam",
        language="en",
    )
    _seed_account_details(user.account_id)
    actor = Actor(user=db.session.get(User, user.id), account_id=user.account_id)
    catalogue = _seed_products(actor)
    _seed_links(actor, catalogue)
    _seed_payments(actor)
    return True


def _seed_account_details(account_id: int) -> None:
    with write_transaction(db.session) as session:
        account = session.get(Account, account_id)
        account.address = "Prinsengracht 263\n1016 GV Amsterdam\nNetherlands"
        account.support_email = "hello@northwind.example"
        account.brand_color = "#7c3a12"


def _seed_products(actor: Actor) -> dict[str, Product]:
    created = {}
    for name, description, price, frequency, term_type, term_count in DEMO_PRODUCTS:
        product = products.create_product(actor, {
            "name": name, "description": description, "unit_price": price, "currency": "EUR",
            "frequency": frequency, "term_type": term_type or "auto_renew", "term_count": str(term_count or ""),
            "sku": "",
        }, "en")
        created[name] = product
    return created


def _row(product: Product, quantity: int = 1) -> ItemDraft:
    return ItemDraft(name=product.name, description=product.description,
                     unit_price=Money(product.unit_amount_minor, product.currency).to_input("en"),
                     quantity=str(quantity), frequency=product.frequency, term_type=product.term_type or "auto_renew",
                     term_count=str(product.term_count or ""), product_id=product.id, currency=product.currency)


def _seed_links(actor: Actor, catalogue: dict[str, Product]) -> None:
    links = [
        LinkDraft(name="Webshop – house blend", currency="EUR", items=[_row(catalogue["House blend, 1 kg"])],
                  allow_ach=True, collect_shipping_address=True,
                  fields={"company": "off", "first_name": "required", "last_name": "required", "phone": "off"}),
        LinkDraft(name="Coffee club sign-up", currency="EUR", items=[_row(catalogue["Coffee club"])],
                  fields={"company": "off", "first_name": "optional", "last_name": "optional", "phone": "off"}),
        LinkDraft(name="Barista course (6 lessons)", currency="EUR", items=[_row(catalogue["Barista course"])],
                  fields={"company": "off", "first_name": "required", "last_name": "required", "phone": "optional"}),
        LinkDraft(name="Café starter pack", currency="EUR",
                  items=[_row(catalogue["Single origin sampler"], 2), _row(catalogue["Espresso machine service"]),
                         ItemDraft(name="Delivery and installation", description="Within the Randstad.",
                                   unit_price="35.00", quantity="1")],
                  fields={"company": "required", "first_name": "required", "last_name": "required",
                          "phone": "required"},
                  collect_shipping_address=True),
    ]
    for draft in links:
        create_link(actor, draft, "en")


# days ago, link, buyer, how they pay (a test card number, or "sepa" for a test IBAN: the links are in EUR, Q10)
DEMO_PAYMENTS = [
    (27, "Webshop – house blend", ("Ann", "de Vries", "ann@example.com"), "4242424242424242"),
    (25, "Coffee club sign-up", ("Bram", "Jansen", "bram@example.com"), "5555555555554444"),
    (22, "Café starter pack", ("Hanna", "Peters", "hanna@example.com"), "2223003122003222"),
    (19, "Webshop – house blend", ("Daan", "Bakker", "daan@example.com"), "sepa"),
    (15, "Barista course (6 lessons)", ("Eva", "Visser", "eva@example.com"), "378282246310005"),
    (9, "Webshop – house blend", ("Finn", "Smit", "finn@example.com"), "5200828282828210"),
    (6, "Coffee club sign-up", ("Gert", "Mulder", "gert@example.com"), "4000056655665556"),
    (3, "Café starter pack", ("Chloé", "Martin", "chloe@example.com"), "4000000000000259"),  # a dispute opens
    (1, "Webshop – house blend", ("Ann", "de Vries", "ann@example.com"), "5105105105105100"),
]


def _seed_payments(actor: Actor) -> None:
    """Test payments through the real checkout, each on its own day: each is paid with the clock back-dated
    to that day (`clock.back_dated`), then time is now again. The worker's next tick then does what those days
    would have done: the bank debit settles, the dispute opens, payouts are made."""
    links = {link.name: (link.slug, sign_test_link(link)) for link in db.session.scalars(
        select(PaymentLink).where(PaymentLink.account_id == actor.account_id))}
    for days_ago, link_name, (first, last, email), paid_with in DEMO_PAYMENTS:
        slug, signature = links[link_name]
        with back_dated(days_ago * 86_400):
            # H7: test checkouts start from the link's signed test URL, as the merchant's Test action does.
            checkout = start_session(slug, language="en", test_signature=signature)
            pay(checkout.token, _buyer_form(first, last, email, paid_with), ip=None, user_agent="kassa seed-demo")
    payment = _latest_payment(actor.account_id, "ann@example.com")
    refund_payment(actor, payment.id, amount_text="10.00", reason="requested_by_customer",
                   note="Half the order arrived late.", locale="en")


def _buyer_form(first: str, last: str, email: str, paid_with: str) -> dict[str, str]:
    form = {"email": email, "first_name": first, "last_name": last, "company": "Café de Hoek", "phone": "+31 20 555 0100",
            "billing_line1": "Prinsengracht 100", "billing_city": "Amsterdam", "billing_postal_code": "1015 EA",
            "billing_country": "NL", "shipping_line1": "Prinsengracht 100", "shipping_city": "Amsterdam",
            "shipping_postal_code": "1015 EA", "shipping_country": "NL"}
    if paid_with == "sepa":
        return {**form, "method": "sepa", "iban": "NL39 RABO 0300 0652 64", "account_holder_name": f"{first} {last}",
                "sepa_mandate": "1"}
    cvc = "1234" if paid_with.startswith(("34", "37")) else "123"
    return {**form, "method": "card", "card_number": paid_with, "card_expiry": "12 / 34", "card_cvc": cvc,
            "card_name": f"{first} {last}"}


def _latest_payment(account_id: int, email: str):
    return db.session.scalars(select(Payment).where(Payment.account_id == account_id, Payment.buyer_email == email,
                                                    Payment.status == "succeeded").order_by(Payment.id.desc())).first()
