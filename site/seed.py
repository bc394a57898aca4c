"""Demo data for `make run`: a merchant you can log in as, with products and links to click through."""

from __future__ import annotations

from sqlalchemy import select

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Product, User
from kassa.services import products
from kassa.services.link_drafts import ItemDraft, LinkDraft
from kassa.services.links import create_link
from kassa.services.users import sign_up

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
    return True


def _seed_account_details(account_id: int) -> None:
    from kassa.database import write_transaction
    from kassa.models import Account

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
    from kassa.money import Money

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
