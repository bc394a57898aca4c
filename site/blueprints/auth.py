"""Sign up, log in, log out, forgotten passwords and invitations."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from werkzeug.exceptions import TooManyRequests
from wtforms import StringField, ValidationError
from wtforms.validators import EqualTo

from kassa.errors import KassaError, ValidationFailed
from kassa.extensions import limiter
from kassa.forms import Form
from kassa.i18n import LANGUAGES, current_language
from kassa.money import is_known_currency
from kassa.netutil import client_ip
from kassa.services.accounts import users
from kassa.services.accounts.accounts import country_choices, timezone_choices
from kassa.services.accounts.emails import email_key

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths: an open redirect after login would help phishing."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target.rstrip("?") or default


class LoginForm(Form):
    # No validators: any email and password are tried, and a mismatch is the one answer (H12).
    email = StringField(default="")
    password = StringField(default="")
    next = StringField(default="")  # where to go after signing in, when the form carries it


def _login_email() -> str:
    """The address being tried: the rate limits and the throttled page read it before (or without) the view."""
    return LoginForm().email.data


def _login_email_ip_key() -> str:
    return f"login:{email_key(_login_email())}:{client_ip()}"


def _login_account_key() -> str:
    # H3: keyed by the canonical address, so `c@ｃ.example` counts against `c@c.example`.
    return f"login-account:{email_key(_login_email())}"


def _failed_login(response) -> bool:
    return response.status_code == 401


def device_cookie_name() -> str:
    return "__Host-kassa_device" if current_app.config.get("KASSA_HTTPS") else "kassa_device"


def _device() -> str | None:
    """H12: this browser's device nonce when it has logged in as the address being tried before."""
    if "login_device" not in g:
        g.login_device = users.trusted_device(request.cookies.get(device_cookie_name()), _login_email())
    return g.login_device


def _trusted_device() -> bool:
    return _device() is not None


def _login_device_key() -> str:
    return f"login-device:{_device()}"


def remember_device(response, user):
    """H12 (OWASP device cookies): after a successful login, this browser is known for this address; strangers'
    failed attempts then can't lock it out."""
    response.set_cookie(
        device_cookie_name(), users.device_cookie_value(user),
        max_age=int(users.DEVICE_COOKIE_LIFETIME.total_seconds()), path="/", httponly=True, samesite="Lax",
        secure=bool(current_app.config.get("KASSA_HTTPS")),
    )
    return response


@bp.errorhandler(TooManyRequests)
def _throttled(exc):
    message = _("Too many failed attempts. Wait 15 minutes, or reset your password.")
    return render_template("auth/login.html", email=_login_email(), error=message), 429


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["KASSA_LOGIN_LIMIT"], key_func=_login_email_ip_key,
               methods=["POST"], deduct_when=_failed_login, exempt_when=_trusted_device)
@limiter.limit(lambda: current_app.config["KASSA_LOGIN_ACCOUNT_LIMIT"], key_func=_login_account_key,
               methods=["POST"], deduct_when=_failed_login, exempt_when=_trusted_device)
# A known browser's own failures are limited on their own (H12).
@limiter.limit(lambda: current_app.config["KASSA_LOGIN_DEVICE_LIMIT"], key_func=_login_device_key,
               methods=["POST"], deduct_when=_failed_login, exempt_when=lambda: not _trusted_device())
def login():
    next_url = safe_next(request.args.get("next") or LoginForm().next.data, url_for("dashboard.home"))
    if current_user.is_authenticated:
        return redirect(next_url)
    if request.method == "GET":
        return render_template("auth/login.html", email="", next=next_url)
    form = LoginForm()
    email = form.email.data
    user = users.authenticate(email, form.password.data)
    if user is None:
        return render_template(
            "auth/login.html", email=email, next=next_url,
            error=_("That email and password don't match. Check them, or reset your password."),
        ), 401
    user = users.record_login(user, client_ip())
    session.clear()  # a fresh session at login: nothing from before the login carries over
    login_user(user)
    return remember_device(redirect(next_url, code=303), user)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        users.log_out_everywhere(current_user._get_current_object())
    logout_user()
    session.clear()
    flash(_("You're logged out."), "success")
    return redirect(url_for("auth.login"), code=303)


def _strip(text: str) -> str:
    return text.strip()


class SignupForm(Form):
    """Sign up; the users service checks the company, name, email, password and time zone."""

    company_name = StringField(default="", filters=[_strip])
    name = StringField(default="", filters=[_strip])
    email = StringField(default="", filters=[_strip])
    country = StringField(default="", filters=[_strip])
    currency = StringField(default="", filters=[_strip])
    timezone = StringField(default="", filters=[_strip])
    # A language the page doesn't offer is English, not an error.
    language = StringField(default="", filters=[_strip, lambda language: language if language in LANGUAGES else "en"])
    password = StringField(default="")

    def validate_currency(self, field):
        if not is_known_currency(field.data.upper()):
            raise ValidationError(_l("Choose a currency."))

    def validate_country(self, field):
        if field.data not in dict(country_choices("en")):
            raise ValidationError(_l("Choose a country."))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    values = {
        "company_name": "", "name": "", "email": "", "country": "US", "currency": "USD",
        "timezone": "UTC", "language": current_language(),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = SignupForm()
        values = {key: form[key].data for key in values}
        if not form.validate():
            errors = form.error_dict()
        else:
            try:
                email = users.request_sign_up(
                    company_name=values["company_name"], name=values["name"], email=values["email"],
                    password=form.password.data, country=values["country"], currency=values["currency"].upper(),
                    timezone=values["timezone"] or "UTC", language=values["language"],
                )
            except ValidationFailed as exc:
                errors.update(exc.errors)
            else:
                # H12: the same page whether or not the address has a login; the email says which.
                return render_template("auth/signup_sent.html", email=email)
    return render_template(
        "auth/signup.html", form=values, errors=errors, countries=country_choices(current_language()),
        timezones=timezone_choices() if "timezone" in errors else [],
    ), (422 if errors else 200)


@bp.route("/signup/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def confirm_signup(token: str):
    """H12: the emailed link; a GET only shows the page (mail scanners follow links), the button creates."""
    try:
        pending = users.signup_request_for_token(token)
    except ValidationFailed as exc:
        return render_template("auth/signup_confirm.html", invalid=exc.message), 400
    if request.method == "GET":
        return render_template("auth/signup_confirm.html", pending=pending)
    try:
        user = users.complete_sign_up(token, client_ip())
    except ValidationFailed as exc:
        return render_template("auth/signup_confirm.html", invalid=exc.message), 409
    session.clear()
    login_user(user)
    flash(_("Welcome to Kassa! Your account is ready."), "success")
    return remember_device(redirect(url_for("dashboard.home"), code=303), user)


class ForgotPasswordForm(Form):
    email = StringField(default="")  # checked by the users service


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def forgot_password():
    email, error, sent = "", None, False
    if request.method == "POST":
        email = ForgotPasswordForm().email.data
        try:
            users.request_password_reset(email, client_ip())
            sent = True
        except ValidationFailed as exc:
            error = exc.message
    return render_template("auth/forgot.html", email=email, error=error, sent=sent), (422 if error else 200)


class ResetPasswordForm(Form):
    """A new password, typed twice; the users service checks its strength."""

    password = StringField(default="")
    password_confirm = StringField(
        default="", validators=[EqualTo("password", message=_l("The two passwords are not the same."))])


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        user = users.user_for_reset_token(token)
    except ValidationFailed as exc:
        return render_template("auth/reset.html", invalid=exc.message), 400
    error = None
    if request.method == "POST":
        form = ResetPasswordForm()
        if not form.validate():
            error = form.error_dict()["password_confirm"]
        else:
            try:
                users.reset_password(token, form.password.data, client_ip())
            except ValidationFailed as exc:
                if exc.field is None:
                    return render_template("auth/reset.html", invalid=exc.message), 400
                error = exc.message
            else:
                flash(_("Your password has been changed. Log in with your new password."), "success")
                return redirect(url_for("auth.login"), code=303)
    return render_template("auth/reset.html", user=user, error=error), (422 if error else 200)


class InvitationForm(Form):
    """Accept an invitation: your name and a password, checked by the users service."""

    name = StringField(default="")
    password = StringField(default="")


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    try:
        invitation = users.invitation_for_token(token)
    except KassaError as exc:
        return render_template("auth/invitation.html", invalid=exc.message), exc.status_code
    errors: dict[str, str] = {}
    name = ""
    if request.method == "POST":
        form = InvitationForm()
        name = form.name.data
        try:
            user = users.accept_invitation(token, name=name, password=form.password.data, ip=client_ip())
        except ValidationFailed as exc:
            errors = exc.errors or {"password": exc.message}
        except KassaError as exc:
            return render_template("auth/invitation.html", invalid=exc.message), exc.status_code
        else:
            logout_user()
            session.clear()
            login_user(user)
            flash(_("Welcome to %(account)s on Kassa.", account=user.account.name), "success")
            return remember_device(redirect(url_for("dashboard.home"), code=303), user)
    return render_template("auth/invitation.html", invitation=invitation, name=name, errors=errors), (
        422 if errors else 200
    )


@bp.get("/language")
def language():
    """Language switch for pages without a login; remembered in the session."""
    lang = request.args.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.args.get("next"), url_for("auth.login")))
