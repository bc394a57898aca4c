"""Everything Kassa registers, declared in one place per kind (M7).

Before, outbox handlers, processor-event handlers, attachment renderers and tick tasks registered
themselves by decorator when `create_app` imported their modules for that side effect alone, so the order
of those imports was the order of the tick, and template filters were spread over four modules. Here each
kind is one list or mapping, installed by `wire(app)`; installing replaces, so building the app again
registers nothing twice.
"""

from __future__ import annotations

from flask import Flask

from kassa import colors, display_ids, i18n, template_helpers
from kassa.blueprints import settings as settings_pages
from kassa.blueprints import subscriptions as subscription_pages
from kassa.services import events
from kassa.services.accounts import users
from kassa.services.api import idempotency
from kassa.services.billing import billing, billing_outcomes, subscriptions
from kassa.services.checkout import invoice_sending
from kassa.services.exports import exports
from kassa.services.payments import invoices, mandates, quotes, receipts, risk
from kassa.services.payouts import payouts, stripe_payouts
from kassa.services.platform import mail, maintenance, outbox, ticks
from kassa.services.platform.ticks import TickSpec
from kassa.services.webhooks import outgoing as outgoing_webhooks
from kassa.services.webhooks import stripe_webhooks
from kassa.services.workflows import engine as workflows


def tick_tasks() -> list:
    """The tick's tasks, in the order every tick runs them (this is the order before M7).

    `per_account=True`: the task filters its work with `for_tick_account`, so it also runs on a
    one-account tick (a merchant's test clock, H14)."""
    return [
        TickSpec("risk_counters", risk.prune_counters),
        TickSpec("subscription_billing", billing.bill_due_subscriptions, per_account=True),
        TickSpec("subscription_reminders", subscriptions.send_reminders, per_account=True),
        TickSpec("invoice_reminders", invoice_sending.send_reminders, per_account=True),  # V2
        TickSpec("payouts", payouts.run_payouts, per_account=True),
        TickSpec("stripe_payouts", stripe_payouts.sync_payouts_task, per_account=True),
        TickSpec("sandbox_events", events.process_sandbox_events, per_account=True),
        TickSpec("stripe_events", stripe_webhooks.poll, per_account=True),
        TickSpec("reconcile_attempts", events.reconcile_attempts_task, per_account=True),
        TickSpec("retry_refunds", events.retry_refunds_task, per_account=True),
        TickSpec("reconcile_dispute_answers", events.reconcile_dispute_answers_task),
        TickSpec("dispute_reminders", events.dispute_reminders_task, per_account=True),
        # W6: after the tasks that apply payment events, so a payment paid in this tick enrolls in this tick.
        TickSpec("workflows", workflows.enroll_due, per_account=True),
        # I6: after every task that moves money, so an event recorded in this tick is delivered from this tick.
        TickSpec("webhooks", outgoing_webhooks.make_deliveries, per_account=True),
        TickSpec("api_idempotency", idempotency.prune_expired),  # I4: responses kept 24 hours
        TickSpec("database_statistics", maintenance.refresh_statistics),
    ]


def register_outbox_handlers() -> None:
    """What the worker does with each kind of outbox message, and what it records when one gives up."""
    for kind, handler in (
        ("email", mail.deliver_email),
        (billing_outcomes.RECEIPT_JOB, billing_outcomes.write_renewal_receipt),
        ("export", exports.run_export),
        (stripe_webhooks.JOB, stripe_webhooks.run_job),
        (workflows.STEP_JOB, workflows.run_step),
        (outgoing_webhooks.JOB, outgoing_webhooks.send_delivery),
    ):
        outbox.register_handler(kind)(handler)
    # I6: the worker sends the due webhook deliveries it claimed together (one claim, concurrent POSTs, one record).
    outbox.register_batch_handler(outgoing_webhooks.JOB)(outgoing_webhooks.send_deliveries)
    outbox.on_give_up("email")(mail.mark_email_failed)
    outbox.on_give_up(workflows.STEP_JOB)(workflows.step_gave_up)


def register_event_handlers() -> None:
    """Which function applies each processor event type (`events.apply_event`)."""
    for event_type, handler in (
        ("charge.succeeded", events.charge_succeeded),
        ("charge.failed", events.charge_failed),
        ("refund.succeeded", events.refund_succeeded),
        ("refund.failed", events.refund_failed),
        ("dispute.created", events.dispute_created),
        ("dispute.won", events.dispute_won),
        ("dispute.lost", events.dispute_lost),
    ):
        events.handles(event_type)(handler)


def register_mail_hooks() -> None:
    """PDF attachments the worker renders at send time, and the real links of emails stored redacted (H10)."""
    for name, renderer in (
        ("receipt", receipts.receipt_attachment),
        ("invoice", invoices.invoice_attachment),
        ("quote", quotes.quote_attachment),  # V4
        ("mandate", mandates.mandate_attachment),
    ):
        mail.register_attachment(name)(renderer)
    for kind, links in (
        ("signup_confirm", users.signup_link),
        ("password_reset", users.reset_link),
        ("invitation", users.invitation_link),
    ):
        mail.register_secret_links(kind)(links)


def register_template_filters(app: Flask) -> None:
    """Every Jinja filter Kassa adds."""
    for name, fn in (
        ("money", i18n.money_filter),
        ("when", i18n.when_filter),  # B7: the one date/time formatter; the two below only for old templates
        ("datetime", i18n.datetime_filter),
        ("date", i18n.date_filter),
        ("percent", i18n.percent_filter),
        ("role_label", i18n.role_label),
        ("text_on", colors.text_on),
        ("card_brand_name", template_helpers.card_brand_name),
        ("display_id", display_ids.display_id_filter),
        ("urlencode_multi", template_helpers.urlencode_multi),
        ("subscription_status", subscription_pages.subscription_status),
        ("recipients", settings_pages.email_recipients_text),
    ):
        app.add_template_filter(fn, name)


def wire(app: Flask) -> None:
    register_outbox_handlers()
    register_event_handlers()
    register_mail_hooks()
    ticks.install(tick_tasks())
    register_template_filters(app)
