"""Users: sign-up, login, logout, password reset, invitations and roles (A1, A2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import func, select

from kassa import passwords
from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.i18n import LANGUAGES, current_language
from kassa.models import Account, Invitation, Permission, Role, SignupRequest, User
from kassa.services.accounts.accounts import locale_errors
from kassa.services.accounts.emails import email_key, normalize_email
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import REDACTED_TOKEN, LinkNoLongerValid, queue_email
from kassa.urls import absolute_url

RESET_MAX_AGE = 3600
INVITATION_LIFETIME = timedelta(days=7)
SIGNUP_LIFETIME = timedelta(days=1)
DEVICE_COOKIE_LIFETIME = timedelta(days=365)


# -- validation helpers ---------------------------------------------------------------------------


def check_password_rules(password: str, email: str, *, field: str = "password") -> None:
    if len(password) < passwords.MIN_LENGTH:
        raise ValidationFailed(
            _("Use at least %(n)d characters.", n=passwords.MIN_LENGTH), field=field
        )
    if len(password) > passwords.MAX_LENGTH:
        raise ValidationFailed(_("Use at most %(n)d characters.", n=passwords.MAX_LENGTH), field=field)
    if password.strip().lower() == email.lower():
        raise ValidationFailed(_("Your password can't be your email address."), field=field)


def _email_taken(email: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


# -- sign-up and login ------------------------------------------------------------------------------


def _check_sign_up(email: str, company_name: str, password: str, *, country: str, currency: str, timezone: str,
                   language: str) -> tuple[str, str]:
    """The canonical email and company name, or ValidationFailed at a field (never about whether the address
    already has a login: that is only said by email, H12). Country, currency, zone and language must come from
    the real lists (H1)."""
    email = normalize_email(email)
    company_name = (company_name or "").strip()
    if not company_name:
        raise ValidationFailed(_("Enter your company name."), field="company_name")
    if len(company_name) > 200:
        raise ValidationFailed(_("Use at most 200 characters."), field="company_name")
    check_password_rules(password, email)

    problems = locale_errors(country=country, currency=currency, timezone=timezone, language=language)
    if problems:
        raise ValidationFailed(_("Check the highlighted fields."), errors=problems)
    return email, company_name


def _create_account(session, *, company_name: str, name: str, email: str, password_hash: str, country: str,
                    currency: str, timezone: str, language: str, ip: str | None) -> User:
    account = Account(
        name=company_name,
        country=country,
        default_currency=currency,
        timezone=timezone,
        language=language,
        support_email=email,
    )
    session.add(account)
    session.flush()
    user = User(
        account_id=account.id,
        email=email,
        name=(name or "").strip()[:200],
        password_hash=password_hash,
        role=Role.SUPER_ADMIN.value,
        language=language,
    )
    session.add(user)
    session.flush()
    record_audit(Actor(user, account.id, ip), "account.created", object_type="account", object_id=account.id)
    return user


def sign_up(
    *,
    company_name: str,
    name: str,
    email: str,
    password: str,
    country: str = "US",
    currency: str = "USD",
    timezone: str = "UTC",
    language: str = "en",
    ip: str | None = None,
) -> User:
    """Create a merchant account and its first user, a Super admin, right away (CLI, demo, tests). The web
    form goes through `request_sign_up` and the emailed confirmation link instead (H12)."""
    email, company_name = _check_sign_up(email, company_name, password, country=country, currency=currency,
                                         timezone=timezone, language=language)
    password_hash = passwords.hash_password(password)  # slow on purpose: outside the write lock
    with write_transaction(db.session) as session:
        if _email_taken(email):
            raise ValidationFailed(
                _("An account with this email already exists. Log in instead."), field="email"
            )
        return _create_account(session, company_name=company_name, name=name, email=email,
                               password_hash=password_hash, country=country, currency=currency,
                               timezone=timezone, language=language, ip=ip)


def request_sign_up(
    *,
    company_name: str,
    name: str,
    email: str,
    password: str,
    country: str,
    currency: str,
    timezone: str,
    language: str,
) -> str:
    """H12: the sign-up form's answer never says whether the address has a login. Either way one email goes
    to the address: a link to finish creating the account, or "you already have an account" with links to
    log in and reset the password. Returns the canonical address."""
    email, company_name = _check_sign_up(email, company_name, password, country=country, currency=currency,
                                         timezone=timezone, language=language)
    password_hash = passwords.hash_password(password)  # both ways, so both take as long
    with write_transaction(db.session) as session:
        existing = session.scalar(select(User).where(User.email == email))
        if existing is not None:
            queue_email(kind="signup_existing", to=[email], template="email/signup_existing.html",
                        language=existing.language or language,
                        context={"login_url": absolute_url("auth.login"),
                                 "reset_url": absolute_url("auth.forgot_password")},
                        account_id=None)
            return email
        pending = SignupRequest(email=email, company_name=company_name, name=(name or "").strip()[:200],
                                password_hash=password_hash, country=country, currency=currency,
                                timezone=(timezone or "UTC")[:64], language=language,
                                expires_at=now() + SIGNUP_LIFETIME)
        session.add(pending)
        session.flush()
        queue_email(kind="signup_confirm", to=[email], template="email/signup_confirm.html", language=language,
                    context={"company_name": company_name,
                             "confirm_url": absolute_url("auth.confirm_signup", token=REDACTED_TOKEN)},
                    account_id=None, related=("signup_request", pending.id))
        return email


def _signup_token(pending: SignupRequest) -> str:
    # Derived, not stored (H10): the password hash's random salt makes it unique to this request.
    message = f"kassa.signup:{pending.id}:{pending.email}:{pending.password_hash}".encode()
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).hexdigest()
    return f"{pending.id}.{digest}"


def signup_link(email) -> dict[str, str]:
    pending = db.session.get(SignupRequest, email.related_id) if email.related_type == "signup_request" else None
    if pending is None or pending.used_at is not None or pending.expires_at < now():
        raise LinkNoLongerValid("The sign-up was completed or has expired; the email was not sent.")
    return {absolute_url("auth.confirm_signup", token=REDACTED_TOKEN):
            absolute_url("auth.confirm_signup", token=_signup_token(pending))}


def signup_request_for_token(token: str) -> SignupRequest:
    """The sign-up an emailed confirmation link belongs to; ValidationFailed when it is not (any more) valid."""
    pending_id, _sep, _digest = (token or "").partition(".")
    pending = db.session.get(SignupRequest, int(pending_id)) if pending_id.isascii() and pending_id.isdigit() \
        and len(pending_id) < 12 else None
    if pending is None or not hmac.compare_digest(_signup_token(pending), token):
        raise ValidationFailed(_("This link is not valid. Sign up again to get a new one."))
    if pending.used_at is not None:
        raise ValidationFailed(_("This account has already been created. Log in instead."))
    if pending.expires_at < now():
        raise ValidationFailed(_("This link has expired. Sign up again to get a new one."))
    return pending


def complete_sign_up(token: str, ip: str | None) -> User:
    """The confirmation link was followed and confirmed: create the account (once)."""
    with write_transaction(db.session) as session:
        pending = signup_request_for_token(token)
        if _email_taken(pending.email):
            raise ValidationFailed(_("An account with this email already exists. Log in instead."))
        pending.used_at = now()
        return _create_account(session, company_name=pending.company_name, name=pending.name, email=pending.email,
                               password_hash=pending.password_hash, country=pending.country,
                               currency=pending.currency, timezone=pending.timezone, language=pending.language,
                               ip=ip)


# -- device cookies (H12, OWASP "device cookies") -----------------------------------------------------------


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="kassa.device")


def _email_tag(email: str) -> str:
    return hashlib.sha256(f"device:{email}".encode()).hexdigest()[:32]


def device_cookie_value(user: User) -> str:
    """A signed cookie saying "this browser has logged in as this address"; its nonce names the device."""
    return _device_serializer().dumps({"e": _email_tag(user.email), "n": secrets.token_hex(12)})


def trusted_device(cookie: str | None, email: str) -> str | None:
    """The device nonce when `cookie` is a valid device cookie for `email`, else None."""
    if not cookie:
        return None
    try:
        data = _device_serializer().loads(cookie)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("e") != _email_tag(email_key(email)):
        return None
    nonce = data.get("n")
    return nonce if isinstance(nonce, str) else None


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None (same timing either way)."""
    try:
        email = normalize_email(email)
    except ValidationFailed:
        passwords.dummy_verify(password or "")
        return None
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active_user:
        passwords.dummy_verify(password or "")
        return None
    if not passwords.verify_password(user.password_hash, password or ""):
        return None
    return user


def record_login(user: User, ip: str | None) -> User:
    """Stamp the login; upgrade the stored hash if the parameters have been raised since."""
    with write_transaction(db.session):
        user = db.session.get(User, user.id)
        user.last_login_at = now()
        record_audit(Actor(user, user.account_id, ip), "user.logged_in", object_type="user", object_id=user.id)
    return user


def log_out_everywhere(user: User) -> None:
    """Invalidate every session of this user: the session epoch in their cookies no longer matches."""
    with write_transaction(db.session):
        fresh = db.session.get(User, user.id)
        fresh.session_epoch += 1


# -- password reset -------------------------------------------------------------------------------


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="kassa.password-reset")


def _hash_fingerprint(user: User) -> str:
    # Ties the token to the current password: once the password changes, the same link stops working.
    return hashlib.sha256(f"{user.password_hash}:{user.session_epoch}".encode()).hexdigest()[:20]


def make_reset_token(user: User) -> str:
    return _reset_serializer().dumps({"uid": user.id, "fp": _hash_fingerprint(user)})


def user_for_reset_token(token: str) -> User:
    """The user a reset link belongs to. Expired (1 h), used or tampered links raise ValidationFailed."""
    try:
        data = _reset_serializer().loads(token, max_age=RESET_MAX_AGE)
    except SignatureExpired:
        raise ValidationFailed(_("This reset link has expired. Ask for a new one.")) from None
    except BadSignature:
        raise ValidationFailed(_("This reset link is not valid. Ask for a new one.")) from None
    user = db.session.get(User, data.get("uid"))
    if user is None or not user.is_active_user or data.get("fp") != _hash_fingerprint(user):
        raise ValidationFailed(_("This reset link has already been used. Ask for a new one."))
    return user


def request_password_reset(email: str, ip: str | None) -> None:
    """Email a reset link if the address belongs to a user; say nothing either way (no account probing).
    H12: either way one email goes to the address, so the answer has the same shape."""
    email = normalize_email(email)
    with write_transaction(db.session):
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None or not user.is_active_user:
            queue_email(kind="password_reset_unknown", to=[email], template="email/password_reset_unknown.html",
                        language=current_language(),
                        context={"email": email, "signup_url": absolute_url("auth.signup")}, account_id=None)
            return
        language = user.language or user.account.language
        queue_email(
            kind="password_reset",
            to=[user.email],
            template="email/password_reset.html",
            language=language,
            # H10: stored with a stand-in; the worker puts a fresh token in the copy it sends.
            context={"user": user, "reset_url": absolute_url("auth.reset_password", token=REDACTED_TOKEN)},
            account_id=user.account_id,
            related=("user", user.id),
        )
        record_audit(Actor(None, user.account_id, ip), "user.password_reset_requested", object_type="user",
                     object_id=user.id)


def reset_link(email) -> dict[str, str]:
    """H10: the reset link is made when the email is sent (and again on a retry): valid one hour from then."""
    user = db.session.get(User, email.related_id) if email.related_type == "user" else None
    if user is None or not user.is_active_user:
        raise LinkNoLongerValid("This login no longer exists; the reset email was not sent.")
    return {absolute_url("auth.reset_password", token=REDACTED_TOKEN):
            absolute_url("auth.reset_password", token=make_reset_token(user))}


def reset_password(token: str, new_password: str, ip: str | None) -> User:
    user = user_for_reset_token(token)
    check_password_rules(new_password, user.email)
    new_hash = passwords.hash_password(new_password)
    with write_transaction(db.session):
        user = user_for_reset_token(token)  # again under the write lock: a link works exactly once
        user.password_hash = new_hash
        user.session_epoch += 1
        record_audit(Actor(user, user.account_id, ip), "user.password_reset", object_type="user", object_id=user.id)
        return user


# -- invitations and roles --------------------------------------------------------------------------


def _require(actor: Actor, permission: Permission) -> User:
    if actor.user is None or not actor.user.can(permission):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=permission.label))
    return actor.user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_token(invitation: Invitation) -> str:
    """H10: derived from the invitation and the secret key, so the worker can put it in the email it sends
    while neither the database nor the Email log ever holds it (only its hash is stored)."""
    message = f"kassa.invitation:{invitation.id}:{invitation.account_id}:{invitation.email}".encode()
    return hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed(_("Choose a role."), field="role") from None


def invite_user(actor: Actor, email: str, role: str) -> Invitation:
    """Email an invitation link (valid 7 days) to join the actor's account with a role."""
    _require(actor, Permission.MANAGE_USERS)
    email = normalize_email(email)
    role_enum = parse_role(role)
    with write_transaction(db.session) as session:
        existing = session.scalar(select(User).where(User.email == email))
        if existing is not None and (existing.account_id != actor.account_id or existing.is_active_user):
            raise ValidationFailed(_("This person already has a Kassa login."), field="email")
        account = session.get(Account, actor.account_id)
        invitation = Invitation(
            account_id=account.id,
            email=email,
            role=role_enum.value,
            token_hash=secrets.token_hex(32),  # replaced below, once the id the token is derived from exists
            invited_by_id=actor.user_id,
            expires_at=now() + INVITATION_LIFETIME,
        )
        session.add(invitation)
        session.flush()
        invitation.token_hash = _token_hash(_invitation_token(invitation))
        queue_email(
            kind="invitation",
            to=[email],
            template="email/invitation.html",
            language=account.language,
            context={
                "account": account,
                "inviter": actor.user,
                "role_label": role_enum.label,
                "brand_color": account.brand_color,
                "accept_url": absolute_url("auth.accept_invitation", token=REDACTED_TOKEN),  # H10
            },
            account_id=account.id,
            related=("invitation", invitation.id),
        )
        record_audit(actor, "user.invited", object_type="invitation", object_id=invitation.id,
                     data={"email": email, "role": role_enum.value})
        return invitation


def invitation_link(email) -> dict[str, str]:
    invitation = db.session.get(Invitation, email.related_id) if email.related_type == "invitation" else None
    if invitation is None or invitation.revoked_at is not None or invitation.accepted_at is not None:
        raise LinkNoLongerValid("The invitation was withdrawn or accepted; the email was not sent.")
    if invitation.expires_at < now():
        raise LinkNoLongerValid("The invitation has expired; the email was not sent.")
    token = _invitation_token(invitation)
    if invitation.token_hash != _token_hash(token):
        # An invitation made before H10 had a random token, only in its (now redacted) stored email:
        # a re-send moves it to the derived one.
        invitation_id = invitation.id
        with write_transaction(db.session) as session:
            session.get(Invitation, invitation_id).token_hash = _token_hash(token)
    return {absolute_url("auth.accept_invitation", token=REDACTED_TOKEN):
            absolute_url("auth.accept_invitation", token=token)}


def invitation_for_token(token: str) -> Invitation:
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == _token_hash(token)))
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound(_("This invitation is not valid. Ask for a new one."))
    if invitation.accepted_at is not None:
        raise Conflict(_("This invitation has already been accepted. Log in instead."))
    if invitation.expires_at < now():
        raise ValidationFailed(_("This invitation has expired. Ask for a new one."))
    return invitation


def accept_invitation(token: str, *, name: str, password: str, ip: str | None) -> User:
    invitation = invitation_for_token(token)
    check_password_rules(password, invitation.email)
    password_hash = passwords.hash_password(password)
    with write_transaction(db.session) as session:
        invitation = invitation_for_token(token)
        user = session.scalar(select(User).where(User.email == invitation.email))
        if user is not None and user.account_id != invitation.account_id:
            raise ValidationFailed(_("This person already has a Kassa login."), field="email")
        if user is None:
            user = User(account_id=invitation.account_id, email=invitation.email)
            session.add(user)
        # A removed user who is invited back gets a fresh password and the new role.
        user.name = (name or "").strip()[:200]
        user.password_hash = password_hash
        user.role = invitation.role
        user.is_active_user = True
        user.session_epoch = (user.session_epoch or 0) + 1
        invitation.accepted_at = now()
        session.flush()
        record_audit(Actor(user, user.account_id, ip), "user.joined", object_type="user", object_id=user.id,
                     data={"role": user.role, "invitation_id": invitation.id})
        return user


def revoke_invitation(actor: Actor, invitation_id: int) -> None:
    _require(actor, Permission.MANAGE_USERS)
    with write_transaction(db.session) as session:
        invitation = session.get(Invitation, invitation_id)
        if invitation is None or invitation.account_id != actor.account_id:
            raise NotFound(_("Invitation not found."))
        if invitation.accepted_at is None and invitation.revoked_at is None:
            invitation.revoked_at = now()
            record_audit(actor, "user.invitation_revoked", object_type="invitation", object_id=invitation.id)


def _team_member(session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.account_id != actor.account_id or not user.is_active_user:
        raise NotFound(_("User not found."))
    return user


def _other_super_admins(session, user: User) -> int:
    return session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.account_id == user.account_id,
            User.role == Role.SUPER_ADMIN.value,
            User.is_active_user.is_(True),
            User.id != user.id,
        )
    )


def change_role(actor: Actor, user_id: int, role: str) -> User:
    _require(actor, Permission.MANAGE_USERS)
    role_enum = parse_role(role)
    with write_transaction(db.session) as session:
        user = _team_member(session, actor, user_id)
        before = user.role
        if before == role_enum.value:
            return user
        if before == Role.SUPER_ADMIN.value and _other_super_admins(session, user) == 0:
            raise Conflict(_("The account needs at least one Super admin. Make someone else Super admin first."))
        user.role = role_enum.value
        record_audit(actor, "user.role_changed", object_type="user", object_id=user.id,
                     data={"from": before, "to": role_enum.value})
        return user


def remove_user(actor: Actor, user_id: int) -> None:
    """Deactivate (not delete) so the audit history keeps naming who did what."""
    _require(actor, Permission.MANAGE_USERS)
    with write_transaction(db.session) as session:
        user = _team_member(session, actor, user_id)
        if user.role == Role.SUPER_ADMIN.value and _other_super_admins(session, user) == 0:
            raise Conflict(_("The last Super admin can't be removed."))
        user.is_active_user = False
        user.session_epoch += 1
        record_audit(actor, "user.removed", object_type="user", object_id=user.id, data={"email": user.email})


def set_view_test_data(user: User, value: bool) -> None:
    with write_transaction(db.session):
        fresh = db.session.get(User, user.id)
        fresh.view_test_data = value


def set_language(user: User, language: str) -> None:
    if language not in LANGUAGES:  # H1: only a language the interface has
        raise ValidationFailed(_("Choose a language."), field="language")
    with write_transaction(db.session):
        fresh = db.session.get(User, user.id)
        fresh.language = language
