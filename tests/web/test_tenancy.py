"""A2: one merchant never sees another's data. Every route that takes an id is walked with the other
account's ids and must answer 404.

When a capability adds a route with a new URL argument, add a maker for it to OTHER_ACCOUNT_IDS
below; the walk fails on arguments it does not know, so no route can be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import EmailMessage, Invitation, Role
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import log_in

# Routes whose URL arguments are not an account's record ids: public tokens, file names, page names.
ENDPOINTS_WITHOUT_RECORD_IDS = {
    "static", "auth.reset_password", "auth.accept_invitation", "auth.confirm_signup", "media.logo", "dashboard.section",
    # Public buyer pages, reached by an unguessable token or a link's public slug (tested in their own files).
    "checkout.start", "checkout.start_test", "checkout.page", "checkout.submit", "checkout.receipt", "embed.stylesheet", "assets.bundle",
    "billing_portal.update_card", "billing_portal.finish", "checkout.finish", "checkout.test_authentication",
    # Q11: the buyer portal, by a signed token per account and email (tests/web/test_q11_buyer_portal.py:
    # another buyer's or account's record, or a tampered token, is a 404).
    "billing_portal.portal", "billing_portal.portal_receipt", "billing_portal.portal_card",
    "billing_portal.portal_cancel",
    # V2: an invoice's pay page, by a signed token of the invoice (tests/web/test_v2_invoice_pay.py: a tampered
    # token, a draft's, is a 404; another merchant's invoice 404s on the merchant's pages).
    "invoice_pay.page", "invoice_pay.pay", "invoice_pay.pdf",
    # V4: a quote's public page, by a signed token of the quote (tests/web/test_v4_quotes.py: a tampered token, a
    # draft's, is a 404; another merchant's quote 404s on the merchant's pages).
    "quote_page.page", "quote_page.accept", "quote_page.decline", "quote_page.pay", "quote_page.pdf",
    # Stripe's deliveries: an account's id in the URL, authenticated by its webhook secret's signature (another
    # account's secret → 400, nothing stored: tests/web/test_k7_webhooks.py).
    "webhooks.stripe_webhook",
}
# URL arguments that are not record ids get a fixed value.
FIXED_ARGS = {"fmt": "svg", "kind": "contact", "step": 1}


def _email(account_id: int) -> int:
    with write_transaction(db.session) as session:
        email = EmailMessage(account_id=account_id, kind="test", to_addrs=["x@y.example"], subject="S",
                             text_body="t", html_body="<p>h</p>")
        session.add(email)
        session.flush()
        return email.id


def _invitation(account_id: int) -> int:
    from datetime import timedelta

    from kassa.clock import now

    with write_transaction(db.session) as session:
        invitation = Invitation(account_id=account_id, email="i@y.example", role="member", token_hash="h" * 64,
                                expires_at=now() + timedelta(days=1))
        session.add(invitation)
        session.flush()
        return invitation.id


def _product(account_id: int) -> int:
    from kassa.models import Product

    with write_transaction(db.session) as session:
        product = Product(account_id=account_id, name="Theirs", unit_amount_minor=100, currency="USD")
        session.add(product)
        session.flush()
        return product.id


def _promo(account_id: int) -> int:
    from kassa.models import PromoCode

    with write_transaction(db.session) as session:
        promo = PromoCode(account_id=account_id, code="THEIRS", kind="percent", value=1000)
        session.add(promo)
        session.flush()
        return promo.id


def _link(account_id: int) -> int:
    from kassa.models import LinkItem, PaymentLink

    with write_transaction(db.session) as session:
        link = PaymentLink(account_id=account_id, slug=f"theirs{account_id:06d}", name="Theirs", currency="USD",
                           items=[LinkItem(name="X", unit_amount_minor=100, currency="USD")])
        session.add(link)
        session.flush()
        return link.id


def _contact(account_id: int) -> int:
    from kassa.models import Contact

    with write_transaction(db.session) as session:
        n = db.session.scalar(db.select(db.func.count()).select_from(Contact)) + 1
        contact = Contact(account_id=account_id, email=f"c{account_id}-{n}@theirs.example")
        session.add(contact)
        session.flush()
        return contact.id


def _company(account_id: int) -> int:
    from kassa.models import Company

    with write_transaction(db.session) as session:
        company = Company(account_id=account_id, name="Theirs Inc")
        session.add(company)
        session.flush()
        return company.id


def _deal(account_id: int) -> int:
    from kassa.models import Deal
    from kassa.services.crm.crm import resolve_deal_stage

    with write_transaction(db.session) as session:
        pipeline, stage = resolve_deal_stage(account_id, None, None)
        deal = Deal(account_id=account_id, name="Theirs", amount_minor=100, currency="USD", pipeline_id=pipeline.id,
                    stage_id=stage.id)
        session.add(deal)
        session.flush()
        return deal.id


def _payment(account_id: int) -> int:
    from tests.factories import make_payment

    return make_payment(account_id).id


def _view(account_id: int) -> int:
    from kassa.models import SavedView, User

    owner = db.session.scalar(db.select(User).where(User.account_id == account_id))
    with write_transaction(db.session) as session:
        view = SavedView(account_id=account_id, owner_id=owner.id, name="Theirs", shared=True, state={})
        session.add(view)
        session.flush()
        return view.id


def _dispute(account_id: int) -> int:
    from datetime import timedelta

    from kassa.clock import now
    from kassa.models import Dispute

    payment_id = _payment(account_id)
    with write_transaction(db.session) as session:
        dispute = Dispute(account_id=account_id, payment_id=payment_id, processor_ref=f"dp_theirs_{payment_id}",
                          amount_minor=100, currency="USD", reason="fraudulent",
                          evidence_due_by=now() + timedelta(days=7))
        session.add(dispute)
        session.flush()
        return dispute.id


def _dispute_file(account_id: int) -> int:
    from kassa.models import DisputeFile

    dispute_id = _dispute(account_id)
    with write_transaction(db.session) as session:
        record = DisputeFile(account_id=account_id, dispute_id=dispute_id, filename="x.pdf",
                             content_type="application/pdf", size_bytes=10, stored_name=f"theirs{dispute_id}.bin")
        session.add(record)
        session.flush()
        return record.id


def _subscription(account_id: int) -> int:
    from kassa.clock import now
    from kassa.models import Subscription

    with write_transaction(db.session) as session:
        sub = Subscription(account_id=account_id, contact_id=_contact(account_id), frequency="monthly",
                           term_type="auto_renew", amount_minor=100, currency="USD", anchor_at=now(),
                           mode="test")
        session.add(sub)
        session.flush()
        return sub.id


def _payout(account_id: int) -> int:
    from datetime import date

    from kassa.models import Payout

    with write_transaction(db.session) as session:
        payout = Payout(account_id=account_id, amount_minor=100, currency="USD", payout_date=date(2027, 1, 4),
                        arrival_date=date(2027, 1, 5))
        session.add(payout)
        session.flush()
        return payout.id


def _ledger_entry(account_id: int) -> int:
    from datetime import date

    from kassa.models import LedgerEntry

    with write_transaction(db.session) as session:
        entry = LedgerEntry(account_id=account_id, mode="test", type="adjustment", amount_minor=100, currency="USD",
                            source_key=f"theirs-{account_id}", available_on=date(2027, 1, 5))
        session.add(entry)
        session.flush()
        return entry.id


def _export(account_id: int) -> int:
    from kassa.models import Export

    key_id = _api_key(account_id)  # I2: their key's test export, so the API's routes reach it but for the account
    with write_transaction(db.session) as session:
        export = Export(account_id=account_id, user_id=None, api_key_id=key_id, kind="payments", name="Theirs",
                        file_format="csv", params={"modes": ["test"]}, status="done",
                        stored_name=f"theirs{account_id}.csv", download_token=f"theirs{account_id}")
        session.add(export)
        session.flush()
        return export.id


def _checkout_session(account_id: int) -> int:
    """I2: a test-mode checkout session of their link (the API's `cs_…`)."""
    from datetime import timedelta

    from kassa.clock import now
    from kassa.models import CheckoutSession, PaymentLink

    with write_transaction(db.session) as session:
        link = PaymentLink(account_id=account_id, slug=f"theirscs{account_id:06d}", name="Theirs", currency="USD")
        session.add(link)
        session.flush()
        checkout = CheckoutSession(account_id=account_id, link_id=link.id, token=f"theirs-session-{account_id}",
                                   mode="test", snapshot={}, expires_at=now() + timedelta(hours=1))
        session.add(checkout)
        session.flush()
        return checkout.id


def _invoice(account_id: int) -> int:
    from kassa.models import Invoice

    with write_transaction(db.session) as session:
        invoice = Invoice(account_id=account_id, number=1, payment_id=_payment(account_id), amount_minor=100,
                          currency="USD")
        session.add(invoice)
        session.flush()
        return invoice.id


def _quote(account_id: int) -> int:
    from kassa.models import Quote

    with write_transaction(db.session) as session:
        quote = Quote(account_id=account_id, number=1, status="open", amount_minor=100, currency="USD")
        session.add(quote)
        session.flush()
        return quote.id
def _credit_note(account_id: int) -> int:
    """V1: a credit note of the other account's (refunded) invoice."""
    from kassa.models import CreditNote, Invoice, Refund

    refund_id = _refund(account_id)
    with write_transaction(db.session) as session:
        invoice = Invoice(account_id=account_id, number=None, status="paid", amount_minor=100, currency="USD")
        session.add(invoice)
        session.flush()
        note = CreditNote(account_id=account_id, number=1, invoice_id=invoice.id, refund_id=refund_id,
                          payment_id=session.get(Refund, refund_id).payment_id, amount_minor=100, currency="USD")
        session.add(note)
        session.flush()
        return note.id


def _stripe_connection(account_id: int) -> int:
    from kassa.models import StripeConnection

    with write_transaction(db.session) as session:
        connection = StripeConnection(account_id=account_id, mode="live", secret_key_encrypted="not-a-token",
                                      secret_key_last4="abcd", publishable_key="pk_live_theirs",
                                      stripe_account_id="acct_theirs")
        session.add(connection)
        session.flush()
        return connection.id


def _tax_rate(account_id: int) -> int:
    from kassa.models import TaxRate

    with write_transaction(db.session) as session:
        rate = TaxRate(account_id=account_id, name="Theirs", percentage_bp=2100, inclusive=False, countries=[],
                       active=True)
        session.add(rate)
        session.flush()
        return rate.id


def _refund(account_id: int) -> int:
    from kassa.models import Refund

    payment_id = _payment(account_id)
    with write_transaction(db.session) as session:
        refund = Refund(account_id=account_id, payment_id=payment_id, amount_minor=100, currency="USD",
                        reason="duplicate", idempotency_key=f"theirs-{payment_id}")
        session.add(refund)
        session.flush()
        return refund.id


def _api_key(account_id: int) -> int:
    from kassa.models import User
    from kassa.services.api.keys import create_key
    from tests.support.payments import actor_for

    owner = db.session.scalar(db.select(User).where(User.account_id == account_id))
    return create_key(actor_for(owner), "Theirs", "test")[0].id


def _webhook_endpoint(account_id: int) -> int:
    from kassa import secrets_box
    from kassa.models import WebhookEndpoint

    with write_transaction(db.session) as session:
        endpoint = WebhookEndpoint(account_id=account_id, url="https://theirs.example/hook", mode="test",
                                   event_types=["payment.succeeded"], secret_encrypted=secrets_box.encrypt("whsec_x"))
        session.add(endpoint)
        session.flush()
        return endpoint.id


def _webhook_delivery(account_id: int) -> int:
    from kassa.models import AccountEvent, WebhookDelivery

    endpoint_id = _webhook_endpoint(account_id)
    with write_transaction(db.session) as session:
        event = AccountEvent(account_id=account_id, type="payment.succeeded", object_type="payment", object_id=1,
                             mode="test", data={})
        session.add(event)
        session.flush()
        delivery = WebhookDelivery(account_id=account_id, endpoint_id=endpoint_id, event_id=event.id,
                                   event_type=event.type, body="{}", status="succeeded")
        session.add(delivery)
        session.flush()
        return delivery.id


def _workflow(account_id: int) -> int:
    from kassa.models import Workflow

    with write_transaction(db.session) as session:
        workflow = Workflow(account_id=account_id, name="Theirs", trigger="payment.failed", criteria=[],
                            actions=[{"type": "task", "title": "Theirs"}], enabled=True)
        session.add(workflow)
        session.flush()
        return workflow.id


def _segment(account_id: int) -> int:
    from kassa.models import Segment

    with write_transaction(db.session) as session:
        segment = Segment(account_id=account_id, name="Theirs", criteria=[])
        session.add(segment)
        session.flush()
        return segment.id


def _task(account_id: int) -> int:
    from kassa.models import Task

    with write_transaction(db.session) as session:
        task = Task(account_id=account_id, title="Theirs")
        session.add(task)
        session.flush()
        return task.id


# URL argument → function(other account id) creating a record there and returning its id.
OTHER_ACCOUNT_IDS: dict[str, Callable[[int], int]] = {
    "user_id": lambda account_id: make_user(account_id, Role.MEMBER).id,
    "email_id": _email,
    "invitation_id": _invitation,
    "product_id": _product,
    "promo_id": _promo,  # Q2
    "link_id": _link,
    "contact_id": _contact,
    "company_id": _company,
    "deal_id": _deal,
    "payment_id": _payment,
    "view_id": _view,
    "dispute_id": _dispute,
    "file_id": _dispute_file,
    "subscription_id": _subscription,
    "payout_id": _payout,
    "export_id": _export,
    "invoice_id": _invoice,  # B6
    "note_id": _credit_note,  # V1
    "connection_id": _stripe_connection,
    "rate_id": _tax_rate,  # Q6
    "key_id": _api_key,  # I1
    "intent_id": _payment,  # I3: a payment is the API's PaymentIntent and its charge
    "charge_id": _payment,
    "refund_id": _refund,
    "workflow_id": _workflow,  # W1, W2
    "task_id": _task,  # W2
    "quote_id": _quote,  # V4
    "txn_id": _ledger_entry,  # I2: a balance transaction
    "endpoint_id": _webhook_endpoint,  # I6
    "delivery_id": _webhook_delivery,  # I6: the delivery log's Resend
    "segment_id": _segment,  # W3, W8
    "session_id": _checkout_session,  # I2: the API's checkout sessions
}
# I3: the API's routes take Stripe-shaped ids (`pi_42`), with my own test key instead of my session.
API_ID_PREFIXES = {"link_id": "plink_", "intent_id": "pi_", "charge_id": "ch_", "refund_id": "re_",
                   "dispute_id": "dp_", "subscription_id": "sub_", "payout_id": "po_", "txn_id": "txn_",
                   "product_id": "prod_", "session_id": "cs_", "export_id": "exp_"}


def test_a2_every_route_with_an_id_returns_404_for_another_accounts_record(app, client):
    mine = make_merchant(company="Mine")
    theirs = make_merchant(company="Theirs")
    ids = {arg: maker(theirs.account_id) for arg, maker in OTHER_ACCOUNT_IDS.items()}
    log_in(client, mine.email, PASSWORD)
    from kassa.services.api.keys import create_key
    from tests.support.payments import actor_for

    api_headers = {"Authorization": f"Bearer {create_key(actor_for(mine), 'Mine', 'test')[1]}"}

    walked, unknown = [], []
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint in ENDPOINTS_WITHOUT_RECORD_IDS:
            continue
        missing = rule.arguments - ids.keys() - FIXED_ARGS.keys()
        if missing:
            unknown.append(f"{rule.rule} ({', '.join(sorted(missing))})")
            continue
        values = {arg: ids.get(arg, FIXED_ARGS.get(arg)) for arg in rule.arguments}
        headers = {}
        if rule.rule.startswith("/api/"):
            values = {arg: f"{API_ID_PREFIXES[arg]}{value}" for arg, value in values.items()}
            headers = api_headers
        path = rule.build(values)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 404, f"{method} {path} gave {response.status_code}"
            walked.append(f"{method} {rule.rule}")
    assert not unknown, f"routes with URL arguments the walk cannot fill; add makers for them: {unknown}"
    assert len(walked) >= 20, walked


def test_a2_own_records_are_reachable(client):
    """The control for the walk above: the same routes with my own ids do not 404."""
    mine = make_merchant()
    log_in(client, mine.email, PASSWORD)
    email_id = _email(mine.account_id)
    assert client.get(f"/settings/emails/{email_id}").status_code == 200


def test_a2_lists_show_only_my_accounts_rows(client):
    mine = make_merchant(company="Mine")
    theirs = make_merchant(company="Theirs")
    other_user = make_user(theirs.account_id, email="secret.person@theirs.example")
    _email(theirs.account_id)
    log_in(client, mine.email, PASSWORD)
    assert other_user.email not in client.get("/settings/users").get_data(as_text=True)
    assert "x@y.example" not in client.get("/settings/emails").get_data(as_text=True)
