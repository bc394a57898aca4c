"""The product library: list with search, create, edit, archive, delete (issue 4)."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_
from wtforms import StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.errors import Conflict, ValidationFailed
from kassa.forms import MAX_PAGE, Form, arg_int
from kassa.i18n import current_language
from kassa.models import BillingFrequency, Permission, Product, TermType
from kassa.money import Money
from kassa.order_summary import frequency_label
from kassa.pagination import numbered_page
from kassa.rendering import htmx_redirect, render_page
from kassa.services.links import products

bp = Blueprint("products", __name__, url_prefix="/products")



@bp.get("/")
@permission_required(Permission.MANAGE_LINKS)
def index():
    search = request.args.get("q", "").strip()[:200]
    show_archived = request.args.get("archived") == "1"
    page = arg_int("page", 1, minimum=1, maximum=MAX_PAGE)
    query = scoped(Product).where(Product.archived_at.is_not(None) if show_archived else Product.archived_at.is_(None))
    if search:
        # autoescape: a typed "%" or "_" is searched for, not a wildcard that matches everything.
        needle = search.lower()
        query = query.where(or_(func.lower(Product.name).contains(needle, autoescape=True),
                                func.lower(Product.sku).contains(needle, autoescape=True)))
    paged = numbered_page(query, (Product.name, Product.id), page)
    rows, page, pages, total = paged.rows, paged.page, paged.pages, paged.total
    args = {"q": search or None, "archived": "1" if show_archived else None}
    return render_page(
        "products/index.html", "product_table",
        products=rows, search=search, show_archived=show_archived, total=total, page=page, pages=pages,
        frequency_label=frequency_label, active_nav="links",
        prev_href=url_for("products.index", page=page - 1, **args) if page > 1 else None,
        next_href=url_for("products.index", page=page + 1, **args) if page < pages else None,
    )


def _form_values(product: Product | None) -> dict[str, str]:
    if product is None:
        return {"name": "", "description": "", "unit_price": "", "currency": current_user.account.default_currency,
                "frequency": BillingFrequency.ONE_TIME.value, "term_type": TermType.AUTO_RENEW.value,
                "term_count": "", "sku": ""}
    return {
        "name": product.name, "description": product.description,
        "unit_price": Money(product.unit_amount_minor, product.currency).to_input(current_language()),
        "currency": product.currency, "frequency": product.frequency,
        "term_type": product.term_type or TermType.AUTO_RENEW.value, "term_count": str(product.term_count or ""),
        "sku": product.sku or "",
    }


class ProductForm(Form):
    """A product of the library; the products service checks the values (price in the account's language,
    frequency and term)."""

    name = StringField(default="")
    description = StringField(default="")
    unit_price = StringField(default="")
    currency = StringField(default="")
    frequency = StringField(default="")
    term_type = StringField(default="")
    term_count = StringField(default="")
    sku = StringField(default="")


class ArchiveForm(Form):
    # The list's Archive and Restore buttons post "1" or "0"; a post without the field archives.
    archived = StringField(default="1")


def _editor(product: Product | None):
    values, errors = _form_values(product), {}
    if request.method == "POST":
        values = ProductForm().value_dict()
        try:
            if product is None:
                saved = products.create_product(current_actor(), values, current_language())
            else:
                saved = products.update_product(current_actor(), product.id, values, current_language())
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(_("Product “%(name)s” saved.", name=saved.name), "success")
            return htmx_redirect(url_for("products.index"))
    return render_page(
        "products/form.html", status=422 if errors else 200, product=product, values=values, errors=errors,
        frequencies=[(f.value, frequency_label(f)) for f in BillingFrequency], active_nav="links",
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def new():
    return _editor(None)


@bp.route("/<int:product_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def edit(product_id: int):
    return _editor(get_owned_or_404(Product, product_id))


@bp.post("/<int:product_id>/archive")
@permission_required(Permission.MANAGE_LINKS)
def archive(product_id: int):
    get_owned_or_404(Product, product_id)
    archived = ArchiveForm().archived.data == "1"
    product = products.set_archived(current_actor(), product_id, archived)
    flash(_("“%(name)s” archived. Links that use it keep working.", name=product.name) if archived
          else _("“%(name)s” is back in the library.", name=product.name), "success")
    return htmx_redirect(url_for("products.index", archived="1" if not archived else None))


@bp.route("/<int:product_id>/delete", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def delete(product_id: int):
    product = get_owned_or_404(Product, product_id)
    in_use = products.product_in_use(product.id)
    if request.method == "GET":
        return render_page("products/delete.html", "dialog", product=product, in_use=in_use, active_nav="links")
    try:
        products.delete_product(current_actor(), product_id)
    except Conflict as exc:
        flash(exc.message, "error")
        return htmx_redirect(url_for("products.index"))
    flash(_("Product “%(name)s” deleted.", name=product.name), "success")
    return htmx_redirect(url_for("products.index"))
