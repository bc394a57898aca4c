"""The payment link editor: one page whose buttons post the whole form back (plain POST or htmx).

The draft lives in the form, not the database: "Add line item", "Remove", "Move up" and the product
library re-render the editor from what was submitted, and only "Save" writes (through the service).
"""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_
from wtforms import Form as RowForm
from wtforms import FormField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.forms import FlagField, Form, MultiValueField, NumberedRows, parse_id, parse_int
from kassa.i18n import current_language
from kassa.models import (
    CONTACT_FIELDS,
    BillingFrequency,
    Confirmation,
    FieldMode,
    PaymentLink,
    Permission,
    Product,
    TermType,
)
from kassa.order_summary import frequency_label
from kassa.rendering import htmx_redirect, render_page
from kassa.services.crm.crm import pipelines_for
from kassa.services.links import link_drafts, links
from kassa.services.links.custom_fields import MAX_FIELDS, FieldDraft
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from kassa.services.links.snapshots import account_tax_context

bp = Blueprint("link_editor", __name__, url_prefix="/links")

LIBRARY_PAGE = 50


def _upper(text: str) -> str:
    return text.strip().upper()


class ItemRowForm(RowForm):
    """One line item, posted as `items-<n>-<field>`; the price, quantity and term stay text as typed, so that
    a bad value is shown back exactly (link_drafts.validate_draft reads them)."""

    name = StringField(default="", filters=[str.strip])
    description = StringField(default="", filters=[str.strip])
    unit_price = StringField(default="", filters=[str.strip])
    quantity = StringField(default="1", filters=[str.strip])
    frequency = StringField(default=BillingFrequency.ONE_TIME.value)
    term_type = StringField(default=TermType.AUTO_RENEW.value)
    term_count = StringField(default="", filters=[str.strip])
    product_id = StringField(default="", filters=[parse_id])
    currency = StringField(default="", filters=[_upper])  # a library product's; custom items use the link's
    # Q1, Q3, Q4: discount, adjustable quantity, pay what you want (checkboxes post "1" when ticked)
    discount_type = StringField(default="", filters=[str.strip])
    discount_value = StringField(default="", filters=[str.strip])
    quantity_adjustable = StringField(default="")
    quantity_min = StringField(default="1", filters=[str.strip])
    quantity_max = StringField(default="10", filters=[str.strip])
    custom_amount = StringField(default="")
    amount_min = StringField(default="", filters=[str.strip])
    amount_max = StringField(default="", filters=[str.strip])


class CustomFieldRowForm(RowForm):
    """Q8: one custom field, posted as `custom-<n>-<part>`, kept as typed (custom_fields.validate_fields)."""

    label = StringField(default="", filters=[str.strip])
    type = StringField(default="text", filters=[str.strip])
    options = StringField(default="")
    required = StringField(default="")
    receipt = StringField(default="")


# The checkout fields' settings, posted as `field_<name>`: off, optional or required.
ContactFieldModes = type("ContactFieldModes", (RowForm,),
                         {name: StringField(default=FieldMode.OFF.value) for name in CONTACT_FIELDS})


class LinkEditorForm(Form):
    """The whole editor as posted by every button (plain POST or htmx) and by the live preview: the link
    (L1–L14) with its line items, the button pressed (`action`) and the product library's search and picks."""

    name = StringField(default="", filters=[str.strip])
    currency = StringField(default="USD", filters=[_upper])
    # A hostile form can't make us build thousands of rows: the first MAX_ITEMS + 10 by number.
    items = NumberedRows(FormField(ItemRowForm), digits=4, part="[a-z_]+", max_entries=link_drafts.MAX_ITEMS + 10)
    pipeline_id = StringField(default="", filters=[parse_id])
    stage_id = StringField(default="", filters=[parse_id])
    contact_fields = FormField(ContactFieldModes, name="field", separator="_")
    # Q8: a few more rows than allowed are read, so a sixth is refused with a message rather than dropped.
    custom = NumberedRows(FormField(CustomFieldRowForm), digits=2, part="[a-z]+", max_entries=MAX_FIELDS + 5)
    allow_card = FlagField()
    allow_ach = FlagField()
    collect_billing_address = FlagField()
    collect_shipping_address = FlagField()
    collect_tax = FlagField()
    confirmation = StringField(default=Confirmation.DEFAULT.value)
    redirect_url = StringField(default="", filters=[str.strip])
    # Q5 usage limit and end date, Q7 terms consent, Q11 buyers may cancel from their portal
    usage_limit = StringField(default="", filters=[str.strip])
    ends_at = StringField(default="", filters=[str.strip])
    require_terms = FlagField()
    terms_url = StringField(default="", filters=[str.strip])
    buyer_can_cancel = FlagField()
    trial_days = StringField(default="", filters=[str.strip])  # Q9
    action = StringField(default="save")
    library_search = StringField(default="", filters=[str.strip])
    library_product = MultiValueField()

    def draft(self) -> LinkDraft:
        """The working copy as submitted; nothing in it is checked yet (link_drafts.validate_draft does that)."""
        return LinkDraft(
            name=self.name.data, currency=self.currency.data, items=[ItemDraft(**row) for row in self.items.data],
            pipeline_id=self.pipeline_id.data, stage_id=self.stage_id.data, fields=dict(self.contact_fields.data),
            allow_card=self.allow_card.data, allow_ach=self.allow_ach.data,
            collect_billing_address=self.collect_billing_address.data,
            collect_shipping_address=self.collect_shipping_address.data, collect_tax=self.collect_tax.data,
            confirmation=self.confirmation.data,
            redirect_url=self.redirect_url.data, custom_fields=[FieldDraft(**row) for row in self.custom.data],
            usage_limit=self.usage_limit.data, ends_at=self.ends_at.data,
            require_terms=self.require_terms.data, terms_url=self.terms_url.data,
            buyer_can_cancel=self.buyer_can_cancel.data, trial_days=self.trial_days.data,
        )


def _library(search: str) -> list[Product]:
    query = scoped(Product).where(Product.archived_at.is_(None))
    if search:
        needle = search.lower()  # autoescape: "%" and "_" are literal, not wildcards
        query = query.where(or_(db.func.lower(Product.name).contains(needle, autoescape=True),
                                db.func.lower(Product.sku).contains(needle, autoescape=True)))
    return list(db.session.scalars(query.order_by(Product.name).limit(LIBRARY_PAGE)))


# B11: the library's buttons (htmx) swap only the line items: the answer is that panel, with the preview and the
# payment methods out of band, so the page around it (and its scroll position) stays as it was.
ITEMS_PANEL = "items-panel"


def _render(draft, *, link: PaymentLink | None, errors=None, status=200, show_library=False, search="",
            focus=None):
    account = current_user.account
    pipelines = pipelines_for(account.id)
    items_only = request.headers.get("HX-Target") == ITEMS_PANEL and not errors
    return render_page(
        "links/editor.html",
        "items_update" if items_only else "editor_region",
        oob=items_only,
        methods=link_drafts.preview_methods(draft),
        status=status,
        draft=draft,
        link=link,
        errors=errors or {},
        bank_debit=link_drafts.bank_debit_for(draft.currency),  # Q10: "ach", "sepa" or None
        summary=link_drafts.preview_summary(draft, account.default_currency, current_language(),
                                            account_tax_context(account.id)),
        account=account,
        pipelines=pipelines,
        library=_library(search) if show_library else [],
        show_library=show_library,
        search=search,
        focus=focus,
        frequencies=[(f.value, frequency_label(f)) for f in BillingFrequency],
        field_modes=[(FieldMode.OFF.value, _("Off")), (FieldMode.OPTIONAL.value, _("Optional")),
                     (FieldMode.REQUIRED.value, _("Required"))],
        contact_fields=CONTACT_FIELDS,
        field_types=[("text", _("Text")), ("number", _("Number")), ("dropdown", _("Dropdown"))],
        max_fields=MAX_FIELDS,
        action_url=url_for("link_editor.edit", link_id=link.id) if link else url_for("link_editor.new"),
        active_nav="links",
    )


def _handle(link: PaymentLink | None):
    locale = current_language()
    form = LinkEditorForm()
    draft = form.draft()
    action = form.action.data
    focus = None
    if action == "add_item":
        draft = link_drafts.add_custom_item(draft)
        focus = f"f-items-{len(draft.items) - 1}-name"
    elif action.startswith("remove:"):
        draft = link_drafts.remove_item(draft, _index(action))
    elif action == "add_field":  # Q8
        draft, problem = link_drafts.add_field(draft)
        if problem:
            return _render(draft, link=link, errors={"custom": problem}, status=422)
        focus = f"f-custom-{len(draft.custom_fields) - 1}-label"
    elif action.startswith("remove_field:"):
        draft = link_drafts.remove_field(draft, _index(action))
    elif action.startswith(("up:", "down:")):
        draft = link_drafts.move_item(draft, _index(action), -1 if action.startswith("up:") else 1)
    elif action in ("open_library", "search_library"):
        return _render(draft, link=link, show_library=True, search=form.library_search.data, focus="library")
    elif action == "add_products":
        ids = [i for i in map(parse_id, form.library_product.data) if i is not None]
        chosen = list(db.session.scalars(scoped(Product).where(Product.id.in_(ids)).order_by(Product.name))) if ids else []
        draft = link_drafts.add_products(draft, chosen, locale)
        focus = f"item-{len(draft.items) - len(chosen)}" if chosen else None  # the first product that came in
    elif action == "save":
        try:
            saved = (links.update_link(current_actor(), link.id, draft, locale) if link
                     else links.create_link(current_actor(), draft, locale))
        except ValidationFailed as exc:
            return _render(draft, link=link, errors=exc.errors, status=422)
        flash(_("Payment link “%(name)s” saved.", name=saved.name) if link else
              _("Payment link “%(name)s” created. Test it, then share it.", name=saved.name), "success")
        # B11: a new link goes on to its share step (address, QR code, embed); an edited one back to the list.
        return htmx_redirect(url_for("links.index", highlight=saved.id) if link else
                             url_for("links.created", link_id=saved.id))
    # "refresh" and every editing action re-render the editor from the submitted draft.
    return _render(draft, link=link, focus=focus)


def _index(action: str) -> int:
    _name, _sep, number = action.partition(":")
    index = parse_int(number, minimum=0)
    return -1 if index is None else index


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def new():
    if request.method == "POST":
        return _handle(None)
    return _render(link_drafts.new_draft(current_user.account.default_currency), link=None,
                   focus="f-items-0-name")


@bp.route("/<int:link_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_LINKS)
def edit(link_id: int):
    link = get_owned_or_404(PaymentLink, link_id)
    if link.deleted_at is not None:
        from flask import abort

        abort(404)
    if request.method == "POST":
        return _handle(link)
    return _render(link_drafts.draft_from_link(link, current_language()), link=link)


@bp.post("/preview")
@permission_required(Permission.MANAGE_LINKS)
def preview():
    """The live preview beside the editor (htmx, on every change): the whole checkout as a fragment (B11)."""
    draft = LinkEditorForm().draft()
    summary = link_drafts.preview_summary(draft, current_user.account.default_currency, current_language(),
                                          account_tax_context(current_user.account_id))
    return render_page("links/editor.html", "preview", fragment=True, summary=summary, draft=draft,
                       account=current_user.account, methods=link_drafts.preview_methods(draft))
