"""What a successful charge creates (R1–R6): the payment record with its frozen line items, the contact,
company and deal, subscriptions for recurring items, the ACH mandate, timeline entries and the emails."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select

from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import (
    Account,
    AttemptStatus,
    CheckoutSession,
    CheckoutStatus,
    Company,
    Contact,
    Invoice,
    Mandate,
    Payment,
    PaymentAttempt,
    PaymentFieldValue,
    PaymentItem,
    PaymentStatus,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from kassa.money import Money
from kassa.order_summary import BuyerChoices, OrderSummary, RecurringGroup
from kassa.periods import charge_date
from kassa.processors.base import ChargeResult, SavedCard, is_bank_debit
from kassa.services.crm import crm
from kassa.services.crm.crm import payment_subjects
from kassa.services.links import usage
from kassa.services.links.snapshots import snapshot_items, snapshot_summary
from kassa.services.money.display_status import refresh_display_status
from kassa.services.payments import risk
from kassa.services.payments.attempt_states import move_attempt
from kassa.services.payments.mandates import (
    MANDATE_TEXT_VERSIONS,
    mandate_reference,
    mandate_text,
    pre_notification,
)
from kassa.services.payments.payment_states import move_payment
from kassa.services.platform.account_events import record
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import notify_ach_processing
from kassa.timeline_kinds import TimelineKind


def record_successful_charge(attempt_id: int, result: ChargeResult, *, processor: str,
                             mandate_context: dict[str, Any]) -> Payment:
    """Record the processor's "yes" for an attempt (`processor`: its name). Idempotent: a second call returns
    the same payment."""
    with write_transaction(db.session) as session:
        attempt = lock_one(session, PaymentAttempt, attempt_id)
        # B2: an attempt that waited for the buyer is already listed (incomplete): that row becomes the payment,
        # so the list shows one payment, not an incomplete one beside it.
        waiting = session.get(Payment, attempt.payment_id) if attempt.payment_id is not None else None
        if waiting is not None and waiting.status != PaymentStatus.INCOMPLETE.value:
            return waiting
        checkout = lock_one(session, CheckoutSession, attempt.checkout_session_id)
        if checkout.invoice_id is not None:
            # V2: the invoice this pays is counted below (payment_states): locked before the account, in the order
            # the attempt took it (checkout._begin_attempt), so the two never wait for each other in a circle.
            lock_one(session, Invoice, checkout.invoice_id)
        # H4: a payment that went through never counts against anyone. Given back before the account lock
        # below: the guard takes its counters before the account too (inserting an attempt), so the two
        # never wait for each other in a circle.
        risk.release(attempt.risk_hold)
        attempt.risk_hold = None
        if attempt.holds_seat:
            # Q5: the seat's payment completed: counted, and the last seat deactivates the link. Before the
            # account lock too: a buyer taking a seat (checkout._begin_attempt) holds the link's row, then
            # inserts an attempt under the account.
            usage.count_completed(session, attempt.link_id, now())
            attempt.holds_seat = False
        # One buyer paying in two tabs at once: the account lock makes the contact, company and default
        # pipeline below found-or-created once (PostgreSQL would otherwise insert both and fail one).
        account = lock_one(session, Account, attempt.account_id)
        snapshot = checkout.snapshot
        buyer = attempt.buyer
        # Q1/Q3/Q4: the same pricing as the charge: the frozen link and the buyer's choices kept on the attempt.
        summary = snapshot_summary(snapshot, BuyerChoices.from_stored(buyer.get("choices")))
        contact_fields = buyer.get("contact", {})
        language = checkout.language or account.language
        mode = checkout.mode
        succeeded = result.status == "succeeded"
        at = now()

        invoice = session.get(Invoice, checkout.invoice_id) if checkout.invoice_id is not None else None
        if invoice is not None and invoice.contact_id is not None:
            # V2: an invoice's payment belongs to the invoice's customer and company, whoever typed the email.
            contact = session.get(Contact, invoice.contact_id)
            company = session.get(Company, invoice.company_id) if invoice.company_id else None
        else:
            contact = crm.find_or_create_contact(
                account.id, mode, buyer["email"], first_name=contact_fields.get("first_name", ""),
                last_name=contact_fields.get("last_name", ""), phone=contact_fields.get("phone", ""),
                language=language,
            )
            company = crm.find_or_create_company(account.id, mode, contact_fields.get("company", ""))
        if company is not None and contact.company_id is None:
            contact.company_id = company.id
        fields = dict(
            account_id=account.id, mode=mode,
            amount_minor=attempt.amount_minor, currency=attempt.currency,
            # As the processor reports it: a live checkout's Payment Element may have paid by SEPA or ACH (Q10).
            method=result.method or attempt.method,
            gross_minor=summary.gross_today.amount_minor, discount_minor=summary.discount_today.amount_minor,
            # Q2/Q6: net = gross − discount − promo = the amount charged before exclusive tax
            net_minor=summary.net_today.amount_minor,
            promo_code=summary.promo_code or None, promo_discount_minor=summary.promo_today.amount_minor,
            **tax_fields(summary),
            card_brand=result.brand, card_last4=result.last4, card_exp_month=result.exp_month,
            card_exp_year=result.exp_year, card_funding=result.funding, bank_last4=result.bank_last4,
            processor=processor, processor_ref=result.processor_ref,
            payment_method_token=result.payment_method_token, fee_minor=result.fee_minor,
            settlement_currency=result.settlement_currency or account.default_currency,
            exchange_rate=str(result.exchange_rate or Decimal(1)),
            fee_settlement_minor=result.fee_settlement_minor, net_settlement_minor=result.net_settlement_minor,
            **checkout_source(checkout), checkout_session_id=checkout.id,
            contact_id=contact.id, company_id=company.id if company else None,
            buyer_email=buyer["email"], buyer_name=contact.display_name if contact.display_name != contact.email else "",
            buyer_phone=contact_fields.get("phone", ""), buyer_company=contact_fields.get("company", ""),
            billing_address=buyer.get("billing"), shipping_address=buyer.get("shipping"), language=language,
            ip=attempt.ip, created_at=at,
            # Q7: the buyer ticked the terms box when they confirmed (the attempt's time), with this address shown
            terms_url=buyer.get("terms_url"), terms_accepted_at=attempt.created_at if buyer.get("terms_url") else None,
        )
        if waiting is None:
            # a charge that went through moves on below (M1)
            payment = Payment(status=PaymentStatus.PROCESSING.value, **fields)
        else:
            payment = waiting  # B2: it keeps its id and the time the buyer started; the answers are written anew
            for name, value in fields.items():
                if name != "created_at":
                    setattr(payment, name, value)
            session.execute(delete(PaymentFieldValue).where(PaymentFieldValue.payment_id == payment.id))
        items = snapshot["items"]
        # Q9: only the lines charged today; recurring lines on a free trial are the subscription's, paid later.
        payment.items = [
            PaymentItem(position=i, product_id=items[line.index].get("product_id"), name=line.name,
                        description=line.description, unit_amount_minor=line.unit_amount.amount_minor,
                        currency=line.unit_amount.currency, quantity=line.quantity, frequency=line.frequency.value,
                        term_type=items[line.index].get("term_type"), term_count=items[line.index].get("term_count"),
                        discount_type=line.discount_type, discount_value=line.discount_value,
                        discount_minor=line.discount.amount_minor if line.discount else 0,
                        promo_minor=line.promo.amount_minor if line.promo else 0)
            for i, line in enumerate(summary.lines_today)
        ]
        refresh_display_status(payment)
        session.add(payment)
        session.flush()
        _keep_answers(payment, buyer)
        deal = crm.create_deal(
            account.id, mode, name=f"{contact.display_name} – {', '.join(line.name for line in summary.lines)}",
            amount_minor=payment.amount_minor, currency=payment.currency, pipeline_id=snapshot.get("pipeline_id"),
            stage_id=snapshot.get("stage_id"), contact=contact, company=company,
        )
        payment.deal_id = deal.id
        subscriptions = [
            _create_subscription(account, group, contact.id, deal.id, language, summary, mode=mode,
                                 link_id=payment.link_id, first_payment_id=payment.id, card=_card_of(payment),
                                 started_at=payment.created_at)
            for group in summary.groups
        ]
        if subscriptions:
            payment.subscription_id = subscriptions[0].id
        mandate = None
        if is_bank_debit(payment.method) and buyer.get("bank_last4"):  # the buyer accepted Kassa's mandate
            mandate = _mandate(payment, buyer, language, attempt, mandate_context)
            session.add(mandate)

        crm.add_timeline(account.id, TimelineKind.PAYMENT_SUBMITTED, subjects=payment_subjects(payment), payment_id=payment.id,
                         data={"amount_minor": payment.amount_minor, "currency": payment.currency,
                               "method": payment.method})
        if succeeded:
            # M1: the one definition of a success — receipt number, ledger, timeline, receipt and E1 email.
            move_payment(payment, PaymentStatus.SUCCEEDED, at=at,
                         data={"amount_minor": payment.amount_minor, "currency": payment.currency})
        else:
            if waiting is not None:  # B2: a bank debit submitted from the bank's page
                move_payment(payment, PaymentStatus.PROCESSING, at=at)
            notify_ach_processing(payment, pre_notification=pre_notification(payment, mandate, payment.language))
        for subscription in subscriptions:
            crm.add_timeline(account.id, TimelineKind.SUBSCRIPTION_CREATED, subjects=[("subscription", subscription.id),
                             ("contact", contact.id), ("deal", deal.id)], payment_id=payment.id)
            _notify_trial_started(subscription, account, contact.email)

        checkout.status = CheckoutStatus.COMPLETED.value
        checkout.payment_id = payment.id
        checkout.completed_at = now()
        move_attempt(attempt, AttemptStatus.SUCCEEDED, at=now())
        attempt.payment_id = payment.id
        attempt.processor_ref = result.processor_ref
        return payment


def checkout_source(checkout: CheckoutSession) -> dict[str, Any]:
    """What a checkout's payment was for: its link, or (V2) the merchant's invoice it pays."""
    if checkout.invoice_id is not None:
        return {"source": "invoice", "link_id": None, "invoice_id": checkout.invoice_id}
    return {"source": "payment_link", "link_id": checkout.link_id}


def tax_fields(summary: OrderSummary) -> dict[str, Any]:
    """Q6: what a payment keeps of the tax it was charged (all defaults when its link collects no tax)."""
    if not summary.collects_tax:
        return {}
    return {
        "tax_minor": summary.tax_today.amount_minor, "buyer_country": summary.country[:2],
        "buyer_vat_id": summary.vat_id, "reverse_charge": summary.reverse_charge,
        "tax_details": {"breakdown": [row.stored() for row in summary.tax_breakdown],
                        "exclusive_minor": summary.exclusive_tax_today.amount_minor},
    }


def _subscription_tax(group: RecurringGroup, summary: OrderSummary) -> dict[str, Any]:
    """Q6: the tax every renewal of this group charges, as at checkout: copied onto each renewal's payment."""
    if not summary.collects_tax:
        return {}
    rate = summary.tax_breakdown[0] if summary.tax_breakdown else None
    tax = group.tax.amount_minor if group.tax is not None else 0
    # a period's lines are charged their full net (Q2: a promo is for the first payment only), taxed at the rate
    exclusive = tax if rate is not None and not rate.inclusive else 0
    details = {"breakdown": [{**rate.stored(), "tax_minor": tax,
                              "taxable_minor": sum(line.period_amount.amount_minor for line in group.lines)
                              - (tax if rate.inclusive else 0)}] if rate else [],
               "exclusive_minor": exclusive}
    return {"tax_minor": tax, "tax_details": {
        "buyer_country": summary.country[:2], "buyer_vat_id": summary.vat_id,
        "reverse_charge": summary.reverse_charge, "exclusive_minor": exclusive, "details": details}}


def record_declined_attempt(attempt: PaymentAttempt, checkout: CheckoutSession, *, code: str | None,
                            message: str | None, processor: str | None,
                            card: tuple[str | None, str | None] = (None, None)) -> Payment:
    """B2: a checkout attempt the bank declined becomes a failed payment, in the caller's transaction (the one
    that closes the attempt, so each decline makes exactly one). It shows in the payments list, its filters,
    search and exports, with the decline reason, the card-testing guard's risk signal (read from the slots the
    attempt still holds: call before they are settled) and the card's brand and last 4 — nothing more of the
    card. It moves through the payment machine (processing → failed), so it never books the ledger, never
    gets a receipt number and can't be refunded; it creates no contact, company, deal or subscription, and
    the buyer gets no email (they saw the decline on the page). ``card`` is (brand, last 4) as the processor
    reported them (Stripe: the card the Payment Element gave); the sandbox's come from the typed number.

    An attempt already listed as incomplete (it waited for 3-D Secure) is that same row, moved to failed."""
    level, scope = risk.signal(attempt.risk_hold)
    payment = db.session.get(Payment, attempt.payment_id) if attempt.payment_id else None
    if payment is None:
        payment = _attempt_payment(attempt, checkout, processor=processor, card=card)
    elif payment.status != PaymentStatus.INCOMPLETE.value:
        return payment
    else:
        payment.card_brand = card[0] or payment.card_brand
        payment.card_last4 = card[1] or payment.card_last4
    payment.risk_level, payment.risk_scope = level.value, scope
    move_payment(payment, PaymentStatus.FAILED, at=now(), data={"code": code, "message": message})
    attempt.payment_id = payment.id
    return payment


# B2: why an incomplete attempt is listed (its failure_code; words in template_helpers.decline_reasons).
WAITING_FOR_BUYER = "requires_action"
ABANDONED = "abandoned"


def record_incomplete_attempt(attempt_id: int, *, processor: str | None) -> Payment | None:
    """B2: a checkout attempt that waits for the buyer (3-D Secure, a bank's page) is listed as an incomplete
    payment right away, as Stripe lists a PaymentIntent in ``requires_action``: the merchant sees who is stuck
    at their bank, with the card's brand and last 4 only. The same row becomes succeeded (record_successful_charge)
    or failed (record_declined_attempt) when the buyer finishes; nothing about it is money until then. Idempotent;
    None when the attempt is already settled (the buyer finished first) or charges nothing today (a trial)."""
    with write_transaction(db.session) as session:
        attempt = lock_one(session, PaymentAttempt, attempt_id)
        if attempt.payment_id is not None or attempt.status != AttemptStatus.PENDING.value \
                or attempt.amount_minor <= 0:
            return session.get(Payment, attempt.payment_id) if attempt.payment_id else None
        checkout = session.get(CheckoutSession, attempt.checkout_session_id)
        payment = _attempt_payment(attempt, checkout, processor=processor, card=(None, None))
        payment.status = PaymentStatus.INCOMPLETE.value
        payment.failure_code = WAITING_FOR_BUYER
        refresh_display_status(payment)
        attempt.payment_id = payment.id
        return payment


def abandon_incomplete(attempt: PaymentAttempt) -> None:
    """B2: the buyer never finished (the reconciler gave up and the processor cancelled the charge): the row stays
    incomplete, as Stripe keeps an abandoned PaymentIntent listed, now saying so. Not failed: no bank said no, so
    it is no decline to count, filter by reason or alarm the merchant about; nothing was charged either way."""
    payment = db.session.get(Payment, attempt.payment_id) if attempt.payment_id else None
    if payment is not None and payment.status == PaymentStatus.INCOMPLETE.value:
        payment.failure_code = ABANDONED


def _attempt_payment(attempt: PaymentAttempt, checkout: CheckoutSession, *, processor: str | None,
                     card: tuple[str | None, str | None]) -> Payment:
    """B2: the payment row of an attempt that moved no money (declined, or waiting for the buyer), added in the
    caller's transaction as processing: the caller moves it on."""
    account = db.session.get(Account, attempt.account_id)
    buyer = attempt.buyer or {}
    contact = buyer.get("contact") or {}
    at = now()  # B9: checkouts run on real time (only a test subscription has a clock of its own)
    payment = Payment(
        account_id=account.id, mode=checkout.mode, status=PaymentStatus.PROCESSING.value,
        amount_minor=attempt.amount_minor, currency=attempt.currency, method=attempt.method,
        card_brand=card[0] or buyer.get("card_brand"), card_last4=card[1] or buyer.get("card_last4"),
        processor=processor or "sandbox", settlement_currency=account.default_currency,
        **checkout_source(checkout), checkout_session_id=checkout.id,
        buyer_email=buyer.get("email") or "",
        buyer_name=" ".join(part for part in (contact.get("first_name"), contact.get("last_name")) if part),
        buyer_phone=contact.get("phone", ""), buyer_company=contact.get("company", ""),
        billing_address=buyer.get("billing"), shipping_address=buyer.get("shipping"),
        language=checkout.language or account.language, ip=attempt.ip, created_at=at,
        idempotency_key=attempt.idempotency_key,
    )
    payment.items = [
        PaymentItem(position=i, product_id=item.product_id, name=item.name, description=item.description,
                    unit_amount_minor=item.unit_amount_minor, currency=item.currency, quantity=item.quantity,
                    frequency=item.frequency, term_type=item.term_type, term_count=item.term_count)
        for i, item in enumerate(snapshot_items(checkout.snapshot))
    ]
    refresh_display_status(payment)
    db.session.add(payment)
    db.session.flush()
    _keep_answers(payment, buyer)
    return payment


def _keep_answers(payment: Payment, buyer: dict[str, Any]) -> None:
    """Q8: the buyer's answers to the link's custom fields, kept on the attempt until now: on the payment (its
    panel, receipt and exports read them there) and one row each (the index's "Custom field" filter)."""
    answers = [{"label": a["label"], "value": a["value"], "receipt": bool(a.get("receipt"))}
               for a in buyer.get("custom_fields") or []]
    payment.custom_fields = answers or None
    for position, answer in enumerate(answers):
        db.session.add(PaymentFieldValue(payment_id=payment.id, account_id=payment.account_id, position=position,
                                         label=answer["label"], value=answer["value"]))


def _card_of(payment: Payment) -> dict[str, Any]:
    return {"payment_method_token": payment.payment_method_token, "card_brand": payment.card_brand,
            "card_last4": payment.card_last4, "card_exp_month": payment.card_exp_month,
            "card_exp_year": payment.card_exp_year}


def _create_subscription(account: Account, group: RecurringGroup, contact_id: int, deal_id: int, language: str,
                         summary: OrderSummary, *,
                         mode: str, link_id: int | None, first_payment_id: int | None, card: dict[str, Any],
                         started_at: datetime | None, checkout_id: int | None = None) -> Subscription:
    """R4: one subscription per (frequency, term) group; the first period is paid by this checkout. Q9: a group on
    a free trial starts trialing instead: nothing paid yet, its first period charged (and its schedule anchored)
    at the trial's end."""
    anchor = started_at or now()  # the moment the charge went through (or the card was saved)
    trial_ends_at = anchor + timedelta(days=group.trial_days) if group.on_trial else None
    if trial_ends_at is not None:
        status, made, anchor, next_charge = SubscriptionStatus.TRIALING, 0, trial_ends_at, trial_ends_at
    else:
        fixed_done = group.term_count is not None and group.term_count <= 1
        status, made = SubscriptionStatus.ACTIVE, 1
        next_charge = None if fixed_done else charge_date(anchor, group.frequency, 1, account.timezone)
    subscription = Subscription(
        account_id=account.id, mode=mode, status=status.value, contact_id=contact_id,
        deal_id=deal_id, link_id=link_id, first_payment_id=first_payment_id, frequency=group.frequency.value,
        term_type=group.term_type.value, term_count=group.term_count, amount_minor=group.amount.amount_minor,
        currency=group.amount.currency, payments_made=made, anchor_at=anchor, next_charge_at=next_charge,
        trial_ends_at=trial_ends_at, started_by_checkout_id=checkout_id, language=language, **card,
        **_subscription_tax(group, summary),
    )
    subscription.items = [
        SubscriptionItem(position=i, name=line.name, description=line.description,
                         unit_amount_minor=line.unit_amount.amount_minor, currency=line.unit_amount.currency,
                         quantity=line.quantity, discount_type=line.discount_type, discount_value=line.discount_value,
                         discount_minor=line.discount.amount_minor if line.discount else 0)
        for i, line in enumerate(group.lines)
    ]
    db.session.add(subscription)
    db.session.flush()
    # W6, I6: created once (its checkout completes once), so recorded once.
    record(account.id, Event.SUBSCRIPTION_STARTED, subscription, started_at or now(),
           {"status": subscription.status, "amount_minor": subscription.amount_minor,
            "currency": subscription.currency, "payment_id": first_payment_id})
    return subscription


def _notify_trial_started(sub: Subscription, account: Account, email: str) -> None:
    """Q9: "Your free trial has started": what recurs, and the day of the first charge (the trial's end)."""
    if sub.status != SubscriptionStatus.TRIALING.value:
        return
    queue_email(kind="subscription_trial_started", to=[email], template="email/subscription_trial_started.html",
                language=sub.language, account_id=account.id, related=("subscription", sub.id),
                context={"sub": sub, "account": account, "brand_color": account.brand_color,
                         "amount": Money(sub.amount_minor, sub.currency)})


def record_trial_start(attempt_id: int, saved: SavedCard) -> list[Subscription]:
    """Q9: nothing was due today (every recurring item on a free trial): the card was saved, not charged.

    No payment is recorded — nothing was paid, and the payments index, ledger, reports and exports list money
    that moved. The checkout completes with the contact, company and deal, and a subscription in trial per
    recurring group (`started_by_checkout_id` = this checkout, for its confirmation page); the buyer gets the
    "trial started" email. Idempotent: a second call returns the same subscriptions."""
    with write_transaction(db.session) as session:
        attempt = lock_one(session, PaymentAttempt, attempt_id)
        checkout = lock_one(session, CheckoutSession, attempt.checkout_session_id)
        if checkout.status == CheckoutStatus.COMPLETED.value:
            return trial_subscriptions(checkout.id)
        risk.release(attempt.risk_hold)
        attempt.risk_hold = None
        account = lock_one(session, Account, attempt.account_id)
        snapshot, buyer = checkout.snapshot, attempt.buyer
        summary = snapshot_summary(snapshot, BuyerChoices.from_stored(buyer.get("choices")))
        contact_fields = buyer.get("contact", {})
        language = checkout.language or account.language
        at = now()
        contact = crm.find_or_create_contact(
            account.id, checkout.mode, buyer["email"], first_name=contact_fields.get("first_name", ""),
            last_name=contact_fields.get("last_name", ""), phone=contact_fields.get("phone", ""), language=language,
        )
        company = crm.find_or_create_company(account.id, checkout.mode, contact_fields.get("company", ""))
        if company is not None and contact.company_id is None:
            contact.company_id = company.id
        # The deal is worth a period of what was subscribed to (nothing is paid yet).
        worth = sum(group.amount.amount_minor for group in summary.groups)
        deal = crm.create_deal(
            account.id, checkout.mode, name=f"{contact.display_name} – {', '.join(line.name for line in summary.lines)}",
            amount_minor=worth, currency=summary.currency, pipeline_id=snapshot.get("pipeline_id"),
            stage_id=snapshot.get("stage_id"), contact=contact, company=company,
        )
        card = {"payment_method_token": saved.token, "card_brand": saved.brand, "card_last4": saved.last4,
                "card_exp_month": saved.exp_month, "card_exp_year": saved.exp_year}
        subscriptions = [
            _create_subscription(account, group, contact.id, deal.id, language, summary, mode=checkout.mode,
                                 link_id=checkout.link_id, first_payment_id=None, card=card, started_at=at,
                                 checkout_id=checkout.id)
            for group in summary.groups
        ]
        for subscription in subscriptions:
            crm.add_timeline(account.id, TimelineKind.SUBSCRIPTION_CREATED, subjects=[("subscription", subscription.id),
                             ("contact", contact.id), ("deal", deal.id)])
            _notify_trial_started(subscription, account, contact.email)
        checkout.status = CheckoutStatus.COMPLETED.value
        checkout.completed_at = at
        move_attempt(attempt, AttemptStatus.SUCCEEDED, at=at)
        return subscriptions


def trial_subscriptions(checkout_id: int) -> list[Subscription]:
    """Q9: the subscriptions a checkout with nothing due today started (its confirmation page shows them)."""
    return list(db.session.scalars(select(Subscription).where(Subscription.started_by_checkout_id == checkout_id)
                                   .order_by(Subscription.id)))


def _mandate(payment: Payment, buyer: dict[str, Any], language: str, attempt: PaymentAttempt,
             context: dict[str, Any]) -> Mandate:
    sepa = payment.method == "sepa"
    return Mandate(
        account_id=payment.account_id, payment_id=payment.id, language=language,
        text=mandate_text(payment.account_id, payment.amount_minor, payment.currency, language, payment.method),
        scheme=payment.method, text_version=MANDATE_TEXT_VERSIONS[payment.method],
        reference=mandate_reference(payment.id) if sepa else "", iban_country=buyer.get("iban_country") or "",
        accepted_at=attempt.created_at, ip=context.get("ip") or attempt.ip,
        user_agent=(context.get("user_agent") or "")[:300] or None,
        account_holder_name=buyer.get("account_holder_name") or "", bank_last4=buyer.get("bank_last4") or "",
        routing_number=buyer.get("routing_number") or "",
    )
