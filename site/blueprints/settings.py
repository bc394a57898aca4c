"""Settings: profile, account, branding, notifications, users and the email log."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf.file import FileField
from wtforms import SelectMultipleField, StringField
from wtforms.validators import AnyOf

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.errors import KassaError, ValidationFailed
from kassa.extensions import db
from kassa.forms import FlagField, Form, MultiValueField, arg_id
from kassa.i18n import LANGUAGES, current_language
from kassa.models import (
    DEFAULT_NOTIFICATIONS,
    ApiKey,
    EmailMessage,
    Invitation,
    Permission,
    Role,
    StripeConnection,
    TaxRate,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from kassa.pagination import keyset_page
from kassa.rendering import htmx_redirect, render_page
from kassa.security import allow_framing
from kassa.services.accounts import accounts, portal_tokens, stripe_connect, tax_rates, users
from kassa.services.api import keys as api_keys
from kassa.services.platform import mail
from kassa.services.webhooks import outgoing as webhooks

bp = Blueprint("settings", __name__, url_prefix="/settings")



def _common(**context):
    context.setdefault("active_nav", "settings")
    return context


@bp.get("/")
@login_required
def index():
    if current_user.can(Permission.MANAGE_SETTINGS):
        return redirect(url_for("settings.account"))
    return redirect(url_for("settings.profile"))


# -- profile ----------------------------------------------------------------------------------------


class ProfileForm(Form):
    language = StringField(validators=[AnyOf(LANGUAGES, message=_l("Choose a language."))])


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = ProfileForm()
        if not form.validate():
            errors = form.error_dict()
        else:
            users.set_language(current_user._get_current_object(), form.language.data)
            flash(_("Your preferences are saved."), "success")
            return redirect(url_for("settings.profile"), code=303)
    return render_page("settings/profile.html", **_common(errors=errors, section="profile"))


# -- account ----------------------------------------------------------------------------------------


def _account_form_values() -> dict[str, str]:
    account = current_user.account
    return {
        "name": account.name, "country": account.country, "default_currency": account.default_currency,
        "timezone": account.timezone, "language": account.language, "address": account.address,
        "support_email": account.support_email, "refund_policy": account.refund_policy,
        "terms_url": account.terms_url,
    }


class AccountForm(Form):
    """Settings → Account; the accounts service checks every value (countries, currencies, time zones)."""

    name = StringField(default="")
    country = StringField(default="")
    default_currency = StringField(default="")
    timezone = StringField(default="")
    language = StringField(default="")
    address = StringField(default="")
    support_email = StringField(default="")
    refund_policy = StringField(default="")
    terms_url = StringField(default="")  # Q7


class EmptyForm(Form):
    """A button that posts only its CSRF token."""


@bp.post("/account/portal-links")
@permission_required(Permission.MANAGE_SETTINGS)
def revoke_portal_links():
    """Q11: a new portal key: every buyer-portal link sent so far stops working."""
    EmptyForm()
    portal_tokens.rotate_portal_key(current_actor())
    flash(_("All buyer portal links sent so far no longer work. New receipts carry new links."), "success")
    return redirect(url_for("settings.account"), code=303)


@bp.route("/account", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def account():
    values, errors = _account_form_values(), {}
    if request.method == "POST":
        values = AccountForm().value_dict()
        try:
            accounts.update_account(current_actor(), **values)
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Account settings saved."), "success")
            return redirect(url_for("settings.account"), code=303)
    return render_page(
        "settings/account.html",
        status=422 if errors else 200,
        **_common(
            values=values, errors=errors, section="account",
            countries=accounts.country_choices(current_language()),
            timezones=accounts.timezone_choices(),
        ),
    )


# -- branding ---------------------------------------------------------------------------------------


class BrandingForm(Form):
    """The colour and logo of checkout pages and receipts; the accounts service checks both (H2: the logo's
    size and pixels)."""

    brand_color = StringField(default="")
    logo = FileField()  # an upload without a file name is no upload
    remove_logo = FlagField()


@bp.route("/branding", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def branding():
    errors: dict[str, str] = {}
    brand_color = current_user.account.brand_color
    if request.method == "POST":
        form = BrandingForm()
        brand_color = form.brand_color.data
        data = form.logo.data.read() if form.logo.data else None
        try:
            accounts.update_branding(current_actor(), brand_color=brand_color, logo=data,
                                     remove_logo=form.remove_logo.data)
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Branding saved. It applies to every payment link and receipt."), "success")
            return redirect(url_for("settings.branding"), code=303)
    return render_page(
        "settings/branding.html", status=422 if errors else 200,
        **_common(errors=errors, brand_color=brand_color, section="branding"),
    )


# -- payments ----------------------------------------------------------------------------------------


class PaymentSettingsForm(Form):
    """Invoices on or off (R5), the retry days of failed renewals and what test mode uses (K12: "sandbox" or
    "stripe"), checked by the accounts service."""

    create_invoices = FlagField()
    retry_days = StringField(default="")
    test_processor = StringField()  # None when not posted: the setting is kept
    invoice_reminder_days_before = StringField()  # V2, as test_processor: None keeps it
    invoice_reminder_days_after = StringField()


@bp.route("/payments", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def payments():
    values = _payment_values()
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = PaymentSettingsForm().value_dict()
        chosen, values["test_processor"] = values["test_processor"] or None, \
            values["test_processor"] or current_user.account.test_processor
        try:
            accounts.update_payment_settings(current_actor(), create_invoices=values["create_invoices"],
                                             retry_days_text=values["retry_days"], test_processor=chosen,
                                             reminder_days_before=values["invoice_reminder_days_before"],
                                             reminder_days_after=values["invoice_reminder_days_after"])
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Payment settings saved."), "success")
            return redirect(url_for("settings.payments"), code=303)
    return _payments_page(values=values, errors=errors)


def _payments_page(*, values: dict, errors: dict[str, str], stripe_errors: dict[str, str] | None = None,
                   stripe_values: dict | None = None, webhook_errors: dict[str, str] | None = None,
                   webhook_connection_id: int | None = None):
    failed = bool(errors or stripe_errors or webhook_errors)
    connections = stripe_connect.active_connections(current_user.account_id)
    return render_page("settings/payments.html", status=422 if failed else 200,
                       **_common(values=values, errors=errors, section="payments",
                                 stripe_connections=connections,
                                 test_processor_choices=_test_processor_choices(connections),
                                 stripe_errors=stripe_errors or {}, stripe_values=stripe_values or {},
                                 webhook_url=stripe_connect.webhook_url(current_user.account_id),
                                 webhook_events=stripe_connect.webhook_events(),
                                 webhook_errors=webhook_errors or {}, webhook_connection_id=webhook_connection_id))


def _test_processor_choices(connections) -> list[tuple[str, str]]:
    """K12: the sandbox always; Stripe test mode only while test keys are connected."""
    choices = [("sandbox", _("Kassa's built-in sandbox"))]
    if any(connection.mode == "test" for connection in connections):
        choices.append(("stripe", _("Stripe test mode")))
    return choices


def _payment_values() -> dict:
    account = current_user.account
    return {"create_invoices": account.create_invoices, "retry_days": ", ".join(map(str, account.retry_days)),
            "test_processor": account.test_processor,
            "invoice_reminder_days_before": str(account.invoice_reminder_days_before),
            "invoice_reminder_days_after": str(account.invoice_reminder_days_after)}


class StripeConnectForm(Form):
    """K5: the two keys copied from the Stripe Dashboard; the stripe_connect service checks both."""

    secret_key = StringField(default="")
    publishable_key = StringField(default="")


@bp.post("/payments/stripe")
@permission_required(Permission.MANAGE_SETTINGS)
def connect_stripe():
    form = StripeConnectForm()
    try:
        connection = stripe_connect.connect(current_actor(), form.secret_key.data, form.publishable_key.data)
    except ValidationFailed as exc:
        # The secret key is never echoed back into the page; the publishable key is not secret.
        return _payments_page(values=_payment_values(), errors={}, stripe_errors=exc.errors,
                              stripe_values={"publishable_key": form.publishable_key.data})
    flash(_("Stripe account “%(name)s” is connected.", name=connection.stripe_account_name), "success")
    return redirect(url_for("settings.payments"), code=303)


class WebhookSecretForm(Form):
    """K7 fallback: the signing secret of a webhook endpoint the merchant added in the Stripe Dashboard."""

    signing_secret = StringField(default="")


@bp.post("/payments/stripe/<int:connection_id>/webhook")
@permission_required(Permission.MANAGE_SETTINGS)
def stripe_webhook_secret(connection_id: int):
    connection = get_owned_or_404(StripeConnection, connection_id)
    if connection.disconnected_at is not None:
        abort(404)
    form = WebhookSecretForm()
    try:
        stripe_connect.save_webhook_secret(current_actor(), connection.id, form.signing_secret.data)
    except ValidationFailed as exc:
        return _payments_page(values=_payment_values(), errors={}, webhook_errors=exc.errors,
                              webhook_connection_id=connection.id)
    flash(_("The webhook signing secret is saved: Stripe's events now reach Kassa as they happen."), "success")
    return redirect(url_for("settings.payments"), code=303)


@bp.route("/payments/stripe/<int:connection_id>/disconnect", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def disconnect_stripe(connection_id: int):
    """GET asks for confirmation (a dialog, or a page without JavaScript); POST disconnects."""
    connection = get_owned_or_404(StripeConnection, connection_id)
    if connection.disconnected_at is not None:
        abort(404)
    if request.method == "GET":
        return render_page("settings/stripe_disconnect.html", "dialog",
                           **_common(connection=connection, section="payments"))
    stripe_connect.disconnect(current_actor(), connection.id)
    flash(_("Stripe is disconnected. Past payments keep their history."), "success")
    return htmx_redirect(url_for("settings.payments"))


# -- tax rates (Q6) ---------------------------------------------------------------------------------


class TaxRateForm(Form):
    """A tax rate as typed; the tax_rates service checks every value (percentage, ISO country codes)."""

    name = StringField(default="")
    percentage = StringField(default="")
    inclusive = FlagField()
    countries = StringField(default="")


class VatNumberForm(Form):
    vat_number = StringField(default="")


def _tax_rates_page(*, vat_value: str | None = None, vat_errors: dict | None = None):
    account = current_user.account
    return render_page(
        "settings/tax_rates.html", status=422 if vat_errors else 200,
        **_common(section="tax_rates", rates=tax_rates.account_rates(account.id, include_archived=True),
                  percent_input=tax_rates.percent_input, vat_errors=vat_errors or {},
                  vat_value=account.vat_number if vat_value is None else vat_value))


@bp.get("/tax-rates")
@permission_required(Permission.MANAGE_SETTINGS)
def tax_rates_index():
    return _tax_rates_page()


@bp.post("/tax-rates/vat-number")
@permission_required(Permission.MANAGE_SETTINGS)
def vat_number():
    typed = VatNumberForm().vat_number.data or ""
    try:
        tax_rates.set_vat_number(current_actor(), typed)
    except ValidationFailed as exc:
        return _tax_rates_page(vat_value=typed, vat_errors=exc.errors)
    flash(_("Your VAT number is saved. Receipts show it."), "success")
    return redirect(url_for("settings.tax_rates_index"), code=303)


def _rate_form_page(rate: TaxRate | None, values: dict, errors: dict[str, str]):
    return render_page("settings/tax_rate_form.html", status=422 if errors else 200,
                       **_common(section="tax_rates", rate=rate, values=values, errors=errors))


@bp.route("/tax-rates/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def new_tax_rate():
    values = {"name": "", "percentage": "", "inclusive": False, "countries": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = TaxRateForm().value_dict()
        try:
            tax_rates.create_rate(current_actor(), **values, locale=current_language())
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Tax rate created. Links that collect tax use it for new checkouts."), "success")
            return redirect(url_for("settings.tax_rates_index"), code=303)
    return _rate_form_page(None, values, errors)


@bp.route("/tax-rates/<int:rate_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def edit_tax_rate(rate_id: int):
    rate = get_owned_or_404(TaxRate, rate_id)
    values = {"name": rate.name, "percentage": tax_rates.percent_input(rate), "inclusive": rate.inclusive,
              "countries": ", ".join(rate.countries or ())}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = TaxRateForm().value_dict()
        try:
            tax_rates.update_rate(current_actor(), rate.id, **values, locale=current_language())
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Tax rate saved. Checkouts already open keep the rate they started with."), "success")
            return redirect(url_for("settings.tax_rates_index"), code=303)
    return _rate_form_page(rate, values, errors)


@bp.route("/tax-rates/<int:rate_id>/archive", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def archive_tax_rate(rate_id: int):
    """GET asks for confirmation (a dialog, or a page without JavaScript); POST archives."""
    rate = get_owned_or_404(TaxRate, rate_id)
    if not rate.active:
        abort(404)
    if request.method == "GET":
        return render_page("settings/tax_rate_archive.html", "dialog", **_common(rate=rate, section="tax_rates"))
    tax_rates.archive_rate(current_actor(), rate.id)
    flash(_("Tax rate archived. Payments keep the tax they were charged."), "success")
    return htmx_redirect(url_for("settings.tax_rates_index"))


# -- API keys (I1) ----------------------------------------------------------------------------------


class ApiKeyForm(Form):
    name = StringField(default="")
    mode = StringField(default="test")
    access = StringField(default="full")  # full | restricted (scopes per resource, as Stripe's restricted keys)
    scope_payment_links = StringField(default="none")
    scope_payments = StringField(default="none")
    scope_refunds = StringField(default="none")
    scope_disputes = StringField(default="none")
    scope_subscriptions = StringField(default="none")
    scope_payouts = StringField(default="none")
    scope_products = StringField(default="none")
    scope_checkout_sessions = StringField(default="none")
    scope_exports = StringField(default="none")


_NEW_KEY_VALUES = {"name": "", "mode": "test", "access": "full", "scope_payment_links": "none",
                   "scope_payments": "none", "scope_refunds": "none", "scope_disputes": "none",
                   "scope_subscriptions": "none", "scope_payouts": "none", "scope_products": "none",
                   "scope_checkout_sessions": "none", "scope_exports": "none"}


def _api_keys_page(*, values: dict | None = None, errors: dict | None = None, new_key=None, secret: str | None = None):
    response = render_page(
        "settings/api_keys.html", status=422 if errors else 200,
        **_common(section="api_keys", keys=api_keys.list_keys(current_user.account_id),
                  values=values or _NEW_KEY_VALUES, errors=errors or {}, new_key=new_key,
                  secret=secret, scope_labels=api_keys.scope_labels()))
    if secret:
        response.headers["Cache-Control"] = "no-store"  # the only page that ever shows the secret: never kept
    return response


@bp.get("/api-keys")
@permission_required(Permission.MANAGE_SETTINGS)
def api_keys_index():
    return _api_keys_page()


@bp.post("/api-keys")
@permission_required(Permission.MANAGE_SETTINGS)
def create_api_key():
    """I1: the secret is in this response only (not flashed: the session cookie would carry it)."""
    values = ApiKeyForm().value_dict()
    scopes = ({resource: values[f"scope_{resource}"] for resource in api_keys.SCOPE_RESOURCES}
              if values["access"] == "restricted" else None)
    try:
        key, secret = api_keys.create_key(current_actor(), values["name"], values["mode"], scopes)
    except ValidationFailed as exc:
        return _api_keys_page(values=values, errors=exc.errors)
    return _api_keys_page(new_key=key, secret=secret)


@bp.route("/api-keys/<int:key_id>/revoke", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def revoke_api_key(key_id: int):
    """GET asks for confirmation (a dialog, or a page without JavaScript); POST revokes."""
    key = get_owned_or_404(ApiKey, key_id)
    if not key.is_active:
        abort(404)
    if request.method == "GET":
        return render_page("settings/api_key_revoke.html", "dialog", **_common(key=key, section="api_keys"))
    api_keys.revoke_key(current_actor(), key.id)
    flash(_("API key revoked. Calls made with it are refused from now on."), "success")
    return htmx_redirect(url_for("settings.api_keys_index"))


# -- webhooks (I6) -----------------------------------------------------------------------------------


class WebhookEndpointForm(Form):
    url = StringField(default="")
    description = StringField(default="")
    mode = StringField(default="test")
    event_types = MultiValueField(limit=50)


_NEW_ENDPOINT_VALUES = {"url": "", "description": "", "mode": "test", "event_types": []}


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # a page showing a signing secret is never kept
    return response


def _webhooks_page(*, values: dict | None = None, errors: dict | None = None, new_endpoint=None,
                   secret: str | None = None):
    response = render_page(
        "settings/webhooks.html", status=422 if errors else 200,
        **_common(section="webhooks", endpoints=webhooks.list_endpoints(current_user.account_id),
                  values=values or _NEW_ENDPOINT_VALUES, errors=errors or {}, new_endpoint=new_endpoint,
                  secret=secret, event_labels=webhooks.event_type_labels()))
    return _no_store(response) if secret else response


@bp.get("/webhooks")
@permission_required(Permission.MANAGE_SETTINGS)
def webhooks_index():
    return _webhooks_page()


@bp.post("/webhooks")
@permission_required(Permission.MANAGE_SETTINGS)
def create_webhook_endpoint():
    """I6: the signing secret is in this response (and on Reveal), never flashed."""
    values = WebhookEndpointForm().value_dict()
    try:
        endpoint, secret = webhooks.create_endpoint(current_actor(), values["url"], values["event_types"] or [],
                                                    values["mode"], values["description"])
    except ValidationFailed as exc:
        return _webhooks_page(values=values, errors=exc.errors)
    return _webhooks_page(new_endpoint=endpoint, secret=secret)


def _endpoint_page(endpoint: WebhookEndpoint, *, values: dict | None = None, errors: dict | None = None,
                   secret: str | None = None, rolled: bool = False):
    response = render_page(
        "settings/webhook_endpoint.html", status=422 if errors else 200,
        **_common(section="webhooks", endpoint=endpoint, deliveries=webhooks.deliveries_of(endpoint.id),
                  values=values or {"url": endpoint.url, "description": endpoint.description,
                                    "event_types": list(endpoint.event_types)},
                  errors=errors or {}, secret=secret, rolled=rolled, event_labels=webhooks.event_type_labels(),
                  previous_secret_valid=webhooks.previous_secret_valid_until(endpoint)))
    return _no_store(response) if secret else response


@bp.route("/webhooks/<int:endpoint_id>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def webhook_endpoint(endpoint_id: int):
    """The endpoint, its settings (POST saves them) and its delivery log."""
    endpoint = get_owned_or_404(WebhookEndpoint, endpoint_id)
    if request.method == "POST":
        values = WebhookEndpointForm().value_dict()
        try:
            webhooks.update_endpoint(current_actor(), endpoint.id, values["url"], values["event_types"] or [],
                                     values["description"])
        except ValidationFailed as exc:
            db.session.rollback()
            return _endpoint_page(get_owned_or_404(WebhookEndpoint, endpoint_id), values=values, errors=exc.errors)
        flash(_("Endpoint saved. Events from now on are sent as it says."), "success")
        return redirect(url_for("settings.webhook_endpoint", endpoint_id=endpoint.id), code=303)
    return _endpoint_page(endpoint)


class WebhookToggleForm(Form):
    enabled = FlagField()


@bp.post("/webhooks/<int:endpoint_id>/enabled")
@permission_required(Permission.MANAGE_SETTINGS)
def toggle_webhook_endpoint(endpoint_id: int):
    endpoint = get_owned_or_404(WebhookEndpoint, endpoint_id)
    enabled = WebhookToggleForm().enabled.data
    webhooks.set_enabled(current_actor(), endpoint.id, enabled)
    flash(_("Endpoint turned on: events from now on are sent to it.") if enabled
          else _("Endpoint turned off: no events are sent to it."), "success")
    return redirect(url_for("settings.webhook_endpoint", endpoint_id=endpoint.id), code=303)


@bp.post("/webhooks/<int:endpoint_id>/secret")
@permission_required(Permission.MANAGE_SETTINGS)
def reveal_webhook_secret(endpoint_id: int):
    endpoint = get_owned_or_404(WebhookEndpoint, endpoint_id)
    secret = webhooks.reveal_secret(current_actor(), endpoint.id)
    return _endpoint_page(get_owned_or_404(WebhookEndpoint, endpoint_id), secret=secret)


class WebhookRollForm(Form):
    overlap = StringField(default="24h")


@bp.route("/webhooks/<int:endpoint_id>/roll", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def roll_webhook_secret(endpoint_id: int):
    """I6: GET asks (a dialog: when should the old secret stop working?); POST rolls and shows the new secret
    once, on the endpoint's page."""
    endpoint = get_owned_or_404(WebhookEndpoint, endpoint_id)
    if request.method == "GET":
        return render_page("settings/webhook_roll.html", "dialog",
                           **_common(section="webhooks", endpoint=endpoint, errors={}, overlap="24h",
                                     overlaps=webhooks.roll_overlap_labels()))
    overlap = WebhookRollForm().overlap.data or ""
    try:
        secret = webhooks.roll_secret(current_actor(), endpoint.id, overlap)
    except ValidationFailed as exc:
        return render_page("settings/webhook_roll.html", status=422,
                           **_common(section="webhooks", endpoint=endpoint, errors=exc.errors, overlap="24h",
                                     overlaps=webhooks.roll_overlap_labels()))
    return _endpoint_page(get_owned_or_404(WebhookEndpoint, endpoint_id), secret=secret, rolled=True)


@bp.post("/webhooks/deliveries/<int:delivery_id>/resend")
@permission_required(Permission.MANAGE_SETTINGS)
def resend_webhook_delivery(delivery_id: int):
    delivery = get_owned_or_404(WebhookDelivery, delivery_id)
    try:
        webhooks.resend(current_actor(), delivery.id)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("The event is being sent again."), "success")
    return redirect(url_for("settings.webhook_endpoint", endpoint_id=delivery.endpoint_id), code=303)


# -- notifications ----------------------------------------------------------------------------------


class NotificationsForm(Form):
    # The switches that are on; the service keeps the known ones. A post with no field at all (no browser sends
    # one; the H9 fuzz does) leaves the data None, as Flask-WTF reads nothing then: hence `or ()` where it's used.
    enabled = SelectMultipleField(choices=list(DEFAULT_NOTIFICATIONS))


@bp.route("/notifications", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SETTINGS)
def notifications():
    if request.method == "POST":
        accounts.update_notifications(current_actor(), {key: True for key in NotificationsForm().enabled.data or ()})
        flash(_("Notification settings saved."), "success")
        return redirect(url_for("settings.notifications"), code=303)
    return render_page("settings/notifications.html", **_common(section="notifications"))


# -- users ------------------------------------------------------------------------------------------


def _team_context(errors=None, invite_values=None):
    members = db.session.scalars(scoped(User).where(User.is_active_user.is_(True)).order_by(User.id)).all()
    invitations = db.session.scalars(
        scoped(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.id.desc())
    ).all()
    return _common(
        members=members, invitations=invitations, roles=[(r.value, r.label) for r in Role],
        errors=errors or {}, invite_values=invite_values or {"email": "", "role": Role.MEMBER.value},
        section="users",
    )


@bp.get("/users")
@permission_required(Permission.MANAGE_USERS)
def team():
    return render_page("settings/users.html", **_team_context())


class InviteForm(Form):
    """Invite a user by email with a role; the users service checks both."""

    email = StringField(default="")
    role = StringField(default="")


class RoleForm(Form):
    role = StringField(default="")


@bp.post("/users/invite")
@permission_required(Permission.MANAGE_USERS)
def invite():
    values = InviteForm().value_dict()
    try:
        invitation = users.invite_user(current_actor(), values["email"], values["role"])
    except ValidationFailed as exc:
        return render_page("settings/users.html", "invite_form", status=422,
                           **_team_context(errors=exc.errors, invite_values=values))
    flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
    return htmx_redirect(url_for("settings.team"))


@bp.post("/users/<int:user_id>/role")
@permission_required(Permission.MANAGE_USERS)
def change_role(user_id: int):
    get_owned_or_404(User, user_id)
    try:
        user = users.change_role(current_actor(), user_id, RoleForm().role.data)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("%(email)s is now %(role)s.", email=user.email, role=user.role_enum.label), "success")
    return htmx_redirect(url_for("settings.team"))


@bp.route("/users/<int:user_id>/remove", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_USERS)
def remove_user(user_id: int):
    member = get_owned_or_404(User, user_id)
    if request.method == "GET":
        return render_page("settings/remove_user.html", "dialog", **_common(member=member))
    try:
        users.remove_user(current_actor(), user_id)
    except KassaError as exc:
        flash(exc.message, "error")
    else:
        flash(_("%(email)s can no longer log in.", email=member.email), "success")
    return htmx_redirect(url_for("settings.team"))


@bp.post("/invitations/<int:invitation_id>/revoke")
@permission_required(Permission.MANAGE_USERS)
def revoke_invitation(invitation_id: int):
    get_owned_or_404(Invitation, invitation_id)
    users.revoke_invitation(current_actor(), invitation_id)
    flash(_("Invitation withdrawn."), "success")
    return htmx_redirect(url_for("settings.team"))


# -- email log --------------------------------------------------------------------------------------


@bp.get("/emails")
@permission_required(Permission.MANAGE_SETTINGS)
def emails():
    query = scoped(EmailMessage).order_by(EmailMessage.id.desc())
    before = arg_id("before")
    if before:
        query = query.where(EmailMessage.id < before)
    rows, has_more = keyset_page(query)
    next_href = url_for("settings.emails", before=rows[-1].id) if has_more else None
    newer_exists = before is not None
    return render_page(
        "settings/emails.html", "email_table",
        **_common(emails=rows, next_href=next_href, first_href=url_for("settings.emails") if newer_exists else None,
                  section="emails"),
    )


@bp.get("/emails/<int:email_id>")
@permission_required(Permission.MANAGE_SETTINGS)
def email_detail(email_id: int):
    email = get_owned_or_404(EmailMessage, email_id)
    return render_page("settings/email_detail.html",
                       **_common(email=email, secret_links=mail.has_secret_links(email), section="emails"))


@bp.get("/emails/<int:email_id>/body")
@permission_required(Permission.MANAGE_SETTINGS)
def email_html(email_id: int):
    """The HTML body on its own, for the sandboxed preview frame."""
    email = get_owned_or_404(EmailMessage, email_id)
    allow_framing("'self'")
    resp = make_response(email.html_body)
    # The body is our own rendering, but it is shown framed and sandboxed all the same: no scripts at all.
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    return resp


@bp.post("/emails/<int:email_id>/retry")
@permission_required(Permission.MANAGE_SETTINGS)
def retry_email(email_id: int):
    get_owned_or_404(EmailMessage, email_id)
    mail.retry_email(current_user.account_id, email_id)
    flash(_("The email is queued again."), "success")
    return htmx_redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                         else url_for("settings.emails"))


def email_recipients_text(email: EmailMessage) -> str:
    return ", ".join(email.to_addrs)

