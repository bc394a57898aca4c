"""Q2 promo codes: the account's list, creating a code, deactivating one (after a confirmation)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal
from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import BooleanField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required
from kassa.clock import now
from kassa.errors import ValidationFailed
from kassa.forms import Form
from kassa.i18n import current_language
from kassa.models import Permission, PromoCode
from kassa.rendering import htmx_redirect, render_page
from kassa.services.links import promo_codes

bp = Blueprint("promo_codes", __name__, url_prefix="/promo-codes")


class PromoCodeForm(Form):
    """A new promo code; the promo codes service checks the values (amounts and percentages in the account's
    language, the expiry in its time zone, the links its own)."""

    code = StringField(default="")
    kind = StringField(default="percent")
    percent = StringField(default="")
    amount = StringField(default="")
    currency = StringField(default="")
    expires_at = StringField(default="")
    max_redemptions = StringField(default="")
    first_time_only = BooleanField(default=False)
    link_ids = StringField(default="")  # one value per ticked link: read from `.raw_data`

    def values(self) -> dict[str, object]:
        values: dict[str, object] = {name: field.data for name, field in self._fields.items() if name != "link_ids"}
        values["link_ids"] = [v for v in (self.link_ids.raw_data or []) if v]
        return values


@bp.get("/")
@permission_required(Permission.MANAGE_LINKS)
def index():
    codes = promo_codes.list_codes(current_user.account_id)
    links = {link.id: link.name for link in promo_codes.account_links(current_user.account_id)}
    return render_page(
        "promo_codes/index.html", codes=codes, now=now(), active_nav="links",
        percents={promo.id: format_decimal(Decimal(promo.value) / 100, locale=current_language())
                  for promo in codes if promo.kind == "percent"},
        scopes={promo.id: ", ".join(links[i] for i in promo.link_ids if i in links) or "—"
                for promo in codes if promo.link_ids is not None},
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def new():
    account = current_user.account
    values = {"kind": "percent", "currency": account.default_currency, "link_ids": []}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = PromoCodeForm().values()
        try:
            promo = promo_codes.create_code(current_actor(), values, current_language())
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Promo code %(code)s created.", code=promo.code), "success")
            return htmx_redirect(url_for("promo_codes.index"))
    return render_page("promo_codes/form.html", status=422 if errors else 200, values=values, errors=errors,
                       links=promo_codes.account_links(account.id), timezone=account.timezone, active_nav="links")


@bp.route("/<int:promo_id>/deactivate", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def deactivate(promo_id: int):
    promo = get_owned_or_404(PromoCode, promo_id)
    if request.method == "GET":
        return render_page("promo_codes/deactivate.html", "dialog", promo=promo, active_nav="links")
    promo_codes.deactivate_code(current_actor(), promo.id)
    flash(_("Promo code %(code)s deactivated. Buyers can no longer use it.", code=promo.code), "success")
    return htmx_redirect(url_for("promo_codes.index"))
