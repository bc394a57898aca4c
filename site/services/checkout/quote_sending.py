"""V4: an open quote emailed to its customer, in the customer's language, with the quote PDF attached (rendered by
the worker) and the link to its public page (quote_checkout.quote_url)."""

from __future__ import annotations

from flask_babel import gettext as _

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound
from kassa.extensions import db
from kassa.models import Account, Contact, Quote, QuoteStatus
from kassa.money import Money
from kassa.services.checkout.quote_checkout import is_expired, quote_url
from kassa.services.payments.quotes import customer_language, quote_label
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email


def send_quote(actor: Actor, quote_id: int) -> Quote:
    """Email the quote (finalizing a draft first is the caller's: a draft is refused). Conflict for a quote that
    is not open or has expired; another account's quote is NotFound."""
    with write_transaction(db.session) as session:
        quote = lock_one(session, Quote, quote_id)
        if quote is None or quote.account_id != actor.account_id:
            raise NotFound(_("Quote not found."))
        if quote.status == QuoteStatus.DRAFT.value:
            raise Conflict(_("Finalize the quote before sending it."))
        if quote.status != QuoteStatus.OPEN.value or is_expired(quote):
            raise Conflict(_("Only an open quote that hasn't expired can be sent."))
        contact = session.get(Contact, quote.contact_id) if quote.contact_id else None
        if contact is None or not contact.email:
            raise Conflict(_("This quote has no customer email to send it to."))
        account = session.get(Account, quote.account_id)
        number = quote_label(quote)
        queue_email(
            kind="quote", to=[contact.email], template="email/quote.html", language=customer_language(quote, account),
            context={"account": account, "quote": quote, "number": number, "brand_color": account.brand_color,
                     "total": Money(quote.amount_minor, quote.currency), "quote_url": quote_url(quote)},
            account_id=account.id,
            attachments=[{"renderer": "quote", "quote_id": quote.id, "filename": f"quote-{number}.pdf"}],
            related=("quote", quote.id),
        )
        quote.sent_at = now()
        record_audit(actor, "quote.sent", object_type="quote", object_id=quote.id,
                     data={"number": quote.number, "to": contact.email})
        return quote
