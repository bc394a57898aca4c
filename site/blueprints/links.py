"""Payment links list and its actions: test, copy, share (QR), embed, deactivate, delete (L14–L19)."""

from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, abort, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import case, func, or_, select
from wtforms import StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped, visible_modes
from kassa.clock import now
from kassa.errors import Conflict
from kassa.extensions import db
from kassa.forms import MAX_PAGE, Form, arg_id, arg_int
from kassa.i18n import current_language
from kassa.models import UNPAID_STATUSES, LinkStatus, Payment, PaymentLink, PaymentStatus, Permission
from kassa.order_summary import build_order_summary
from kassa.pagination import numbered_page
from kassa.rendering import htmx_redirect, render_page
from kassa.security import allow_framing
from kassa.services.accounts import stripe_connect
from kassa.services.links import links
from kassa.timefmt import format_when
from kassa.urls import absolute_url

bp = Blueprint("links", __name__, url_prefix="/links")



def public_url(link: PaymentLink) -> str:
    return absolute_url("checkout.start", slug=link.slug)


def signed_test_url(link: PaymentLink) -> str:
    """H7: the link's signed test URL; the only way into a test checkout."""
    return url_for("checkout.start_test", slug=link.slug, signature=links.sign_test_link(link))


def _stats(link_ids: list[int]) -> dict[int, tuple[int, dict[str, int]]]:
    """Payments count and succeeded revenue per link (per currency), in one query."""
    if not link_ids:
        return {}
    rows = db.session.execute(
        select(
            Payment.link_id,
            Payment.currency,
            # B2: a declined or incomplete checkout attempt (nothing collected) is not one of the link's payments.
            func.count(case((Payment.status.not_in(UNPAID_STATUSES), 1))),
            func.coalesce(func.sum(case((Payment.status == PaymentStatus.SUCCEEDED.value, Payment.amount_minor),
                                        else_=0)), 0),
        )
        .where(Payment.account_id == current_user.account_id, Payment.link_id.in_(link_ids))
        .where(Payment.mode.in_(visible_modes()))
        .group_by(Payment.link_id, Payment.currency)
    )
    stats: dict[int, tuple[int, dict[str, int]]] = {}
    for link_id, currency, count, revenue in rows:
        total, by_currency = stats.get(link_id, (0, {}))
        by_currency[currency] = int(revenue)
        stats[link_id] = (total + count, by_currency)
    return stats


@bp.get("/")
@permission_required(Permission.MANAGE_LINKS)
def index():
    search = request.args.get("q", "").strip()[:200]
    page = arg_int("page", 1, minimum=1, maximum=MAX_PAGE)
    query = scoped(PaymentLink).where(PaymentLink.deleted_at.is_(None))
    if search:
        # autoescape: "%" and "_" typed in the search box are literal, not wildcards.
        query = query.where(or_(func.lower(PaymentLink.name).contains(search.lower(), autoescape=True),
                                PaymentLink.slug == links.normalize_slug(search)))
    paged = numbered_page(query, (PaymentLink.created_at.desc(), PaymentLink.id.desc()), page)
    rows, page, pages, total = paged.rows, paged.page, paged.pages, paged.total
    any_links = bool(total) or bool(search) or db.session.scalar(
        select(func.count()).select_from(scoped(PaymentLink).where(PaymentLink.deleted_at.is_(None)).subquery())
    ) > 0
    summaries = {link.id: build_order_summary(link.items, link.currency, trial_days=link.trial_days or 0) for link in rows}
    return render_page(
        "links/index.html", "link_table",
        links=rows, summaries=summaries, stats=_stats([link.id for link in rows]), search=search, page=page,
        pages=pages, total=total, any_links=any_links, highlight=arg_id("highlight"),
        public_url=public_url, signed_test_url=signed_test_url, active_nav="links",
        prev_href=url_for("links.index", q=search or None, page=page - 1) if page > 1 else None,
        next_href=url_for("links.index", q=search or None, page=page + 1) if page < pages else None,
    )


def _owned_live_link(link_id: int) -> PaymentLink:
    link = get_owned_or_404(PaymentLink, link_id)
    if link.deleted_at is not None:
        abort(404)
    return link


def _processor_warning(link: PaymentLink) -> dict:
    """K5: what the Share and Embed dialogs need to warn that the link can't take payments yet."""
    return {"live_processor": stripe_connect.has_live_connection(link.account_id),
            "test_url": signed_test_url(link), "can_connect": current_user.can(Permission.MANAGE_SETTINGS)}


def _qr_svg(link: PaymentLink) -> str:
    qr = segno.make(public_url(link), error="m")
    # omitsize: a viewBox instead of a fixed width and height, so the stylesheet can size the code.
    return qr.svg_inline(scale=5, dark="#1b1f24", light="#ffffff", omitsize=True,
                         title=_("QR code for %(name)s", name=link.name))


@bp.get("/<int:link_id>/share")
@permission_required(Permission.MANAGE_LINKS)
def share(link_id: int):
    link = _owned_live_link(link_id)
    return render_page("links/share.html", "dialog", link=link, url=public_url(link), qr_svg=_qr_svg(link),
                       active_nav="links", **_processor_warning(link))


@bp.get("/<int:link_id>/created")
@permission_required(Permission.MANAGE_LINKS)
def created(link_id: int):
    """B11: the step after Create: the link's address to copy, its QR code and the embed snippet, the same
    pieces as the Share and Embed dialogs, with the warning while no live processor can take its payments."""
    link = _owned_live_link(link_id)
    return render_page("links/created.html", link=link, url=public_url(link), qr_svg=_qr_svg(link),
                       snippet=embed_snippet(link), active_nav="links", **_processor_warning(link))


@bp.get("/<int:link_id>/qr.<fmt>")
@permission_required(Permission.MANAGE_LINKS)
def qr(link_id: int, fmt: str):
    link = _owned_live_link(link_id)
    if fmt not in ("svg", "png"):
        abort(404)
    out = io.BytesIO()
    qr_code = segno.make(public_url(link), error="m")
    qr_code.save(out, kind=fmt, scale=10 if fmt == "png" else 5, border=4)
    response = Response(out.getvalue(), mimetype="image/svg+xml" if fmt == "svg" else "image/png")
    response.headers["Content-Disposition"] = f'attachment; filename="kassa-link-{link.slug}.{fmt}"'
    return response


def embed_snippet(link: PaymentLink) -> str:
    base = absolute_url("embed.script")
    label = _("Buy now")
    return f'<script src="{base}" defer></script>\n<a href="{public_url(link)}" data-kassa-button>{label}</a>'


@bp.get("/<int:link_id>/embed")
@permission_required(Permission.MANAGE_LINKS)
def embed(link_id: int):
    link = _owned_live_link(link_id)
    return render_page("links/embed.html", "dialog", link=link, snippet=embed_snippet(link), active_nav="links",
                       **_processor_warning(link))


@bp.get("/<int:link_id>/embed-preview")
@permission_required(Permission.MANAGE_LINKS)
def embed_preview(link_id: int):
    """The snippet on a blank page, shown in a frame inside the Embed dialog (the live preview)."""
    link = _owned_live_link(link_id)
    allow_framing("'self'")
    return render_page("links/embed_preview.html", link=link, url=public_url(link))


class LinkStatusForm(Form):
    """Deactivate or reactivate a link: "active" reactivates, anything else deactivates."""

    status = StringField()


@bp.post("/<int:link_id>/status")
@permission_required(Permission.MANAGE_LINKS)
def set_status(link_id: int):
    _owned_live_link(link_id)
    active = LinkStatusForm().status.data == LinkStatus.ACTIVE.value
    try:
        link = links.set_active(current_actor(), link_id, active)
    except Conflict as exc:  # Q5: a link that completed its payments comes back by raising its limit
        flash(exc.message, "error")
        return htmx_redirect(url_for("links.index", highlight=link_id))
    flash(_("“%(name)s” is active again: its URL accepts payments.", name=link.name) if active else
          _("“%(name)s” is deactivated: its URL no longer accepts payments.", name=link.name), "success")
    return htmx_redirect(url_for("links.index", highlight=link.id))


@bp.post("/<int:link_id>/test-link")
@permission_required(Permission.MANAGE_LINKS)
def renew_test_link(link_id: int):
    """H7: revoke the link's test URL (e.g. shared too widely) and make a new one."""
    _owned_live_link(link_id)
    link = links.renew_test_link(current_actor(), link_id)
    flash(_("“%(name)s” has a new test link: the old one no longer opens test checkouts.", name=link.name),
          "success")
    return htmx_redirect(url_for("links.index", highlight=link.id))


@bp.route("/<int:link_id>/delete", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def delete(link_id: int):
    link = _owned_live_link(link_id)
    if request.method == "GET":
        return render_page("links/delete.html", "dialog", link=link, payments=links.link_payment_count(link.id),
                           active_nav="links")
    name = link.name
    links.delete_link(current_actor(), link_id)
    flash(_("Payment link “%(name)s” deleted.", name=name), "success")
    return htmx_redirect(url_for("links.index"))


@bp.app_template_global()
def link_usage(link: PaymentLink) -> dict | None:
    """Q5: how a limited or dated link stands, for its badge in the list and editor: "Completed (5 of 5)",
    "Ended on …", or "3 of 5 payments" while it runs; None for a link with neither."""
    if link.usage_limit is not None and link.usage_count >= link.usage_limit:
        return {"tone": "neutral", "label": _("Completed (%(count)d of %(limit)d)", count=link.usage_count,
                                              limit=link.usage_limit)}
    if link.has_ended(now()):
        return {"tone": "neutral", "label": _("Ended on %(when)s", when=format_when(
            link.ends_at, "datetime_zone", locale=current_language(), timezone=link.account.timezone))}
    if link.usage_limit is not None:
        return {"tone": "info", "label": _("%(count)d of %(limit)d payments", count=link.usage_count,
                                           limit=link.usage_limit)}
    if link.ends_at is not None:
        return {"tone": "info", "label": _("Ends on %(when)s", when=format_when(
            link.ends_at, "datetime_zone", locale=current_language(), timezone=link.account.timezone))}
    return None


@bp.app_template_global()
def link_locale() -> str:
    return current_language()
