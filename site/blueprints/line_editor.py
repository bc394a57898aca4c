"""The merchant's line editor, one for invoices (V1) and quotes (V4).

Why one: V4's quote editor was built as a copy of the invoice editor (issue 21), and the copies had started to drift
(a fix made in one was missing in the other). Both editors keep their draft in the form: every button ("Add line",
"Remove", the product library) posts the whole form back (plain POST or htmx) and re-renders it, and only "Save
draft" writes. What differs between them (the draft service, the page's address, the messages, the template) is an
`EditorKind`; the buttons, the library and the "no longer a draft" refusal are written once, here.

The lists of both (customer column, dates) are shared here too, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from flask import flash, url_for
from flask_babel import gettext as _
from sqlalchemy import or_
from wtforms import Form as RowForm
from wtforms import StringField

from kassa.authz import current_actor, scoped
from kassa.errors import Conflict, ValidationFailed
from kassa.extensions import db
from kassa.forms import Form, MultiValueField, parse_id, parse_int
from kassa.i18n import current_language
from kassa.models import Company, Contact, Product
from kassa.rendering import htmx_redirect
from kassa.timefmt import DATE, format_when

LIBRARY_PAGE = 50


class LineRowForm(RowForm):
    """One line, posted as `lines-<n>-<field>`, kept as typed (invoice_drafts.validate reads it)."""

    description = StringField(default="", filters=[str.strip])
    quantity = StringField(default="1", filters=[str.strip])
    unit_price = StringField(default="", filters=[str.strip])
    product_id = StringField(default="", filters=[parse_id])
    discount_type = StringField(default="", filters=[str.strip])
    discount_value = StringField(default="", filters=[str.strip])
    tax_rate_id = StringField(default="", filters=[str.strip])  # V1 (Q6)


class EditorForm(Form):
    """The fields both editors post: the customer, the language and currency, the issue date, notes and terms, and
    the button pressed (`action`) with the product library's search and ticks. Each editor adds its lines (as
    `NumberedRows` of its row form), its second date and its own fields, and `draft()`."""

    customer_email = StringField(default="", filters=[str.strip])
    customer_name = StringField(default="", filters=[str.strip])
    company_name = StringField(default="", filters=[str.strip])
    language = StringField(default="en", filters=[str.strip])
    currency = StringField(default="USD", filters=[lambda v: (v or "").strip().upper()])
    issue_date = StringField(default="", filters=[str.strip])
    notes = StringField(default="")
    terms = StringField(default="")
    action = StringField(default="save")
    library_search = StringField(default="", filters=[str.strip])
    library_product = MultiValueField()


@dataclass(frozen=True)
class EditorKind:
    """What one editor does its own way; everything else is `handle`'s.

    `drafts` is the draft service (invoice_drafts, quote_drafts): add_line, remove_line, add_products, save_draft.
    `render(draft, obj, **options)` renders the editor. The messages are functions, translated when shown."""

    form: type[Form]
    drafts: ModuleType
    render: Callable[..., Any]
    is_draft: Callable[[Any], bool]
    detail_endpoint: str
    index_endpoint: str
    id_arg: str
    not_editable: Callable[[], str]
    saved: Callable[[], str]


def library(search: str, *, by_sku: bool = True) -> list[Product]:
    """The product library's page: the account's products found by name (and by SKU: the invoice editor's, as the
    link editor's; the quote editor's finds by name only), the first LIBRARY_PAGE of them."""
    query = scoped(Product).where(Product.archived_at.is_(None))
    if search:
        needle = search.lower()  # autoescape: "%" and "_" are literal, not wildcards
        name = db.func.lower(Product.name).contains(needle, autoescape=True)
        query = query.where(or_(name, db.func.lower(Product.sku).contains(needle, autoescape=True)) if by_sku
                            else name)
    return list(db.session.scalars(query.order_by(Product.name).limit(LIBRARY_PAGE)))


def action_index(action: str) -> int:
    """The line a "remove:<n>" button names; -1 (no line) for anything else."""
    _name, _sep, number = action.partition(":")
    index = parse_int(number, minimum=0)
    return -1 if index is None else index


def not_a_draft(kind: EditorKind, obj):
    """Finalized in another tab, or a hand-made POST: nothing changes, and the page says why."""
    flash(kind.not_editable(), "error")
    return htmx_redirect(url_for(kind.detail_endpoint, **{kind.id_arg: obj.id}))


def handle(kind: EditorKind, obj):
    """A POST of the editor: one of its buttons, or "Save draft"."""
    locale = current_language()
    form = kind.form()
    draft = form.draft()
    action = form.action.data
    focus = None
    if obj is not None and not kind.is_draft(obj):
        return not_a_draft(kind, obj)
    if action == "add_line":
        draft = kind.drafts.add_line(draft)
        focus = f"f-lines-{len(draft.lines) - 1}-description"
    elif action.startswith("remove:"):
        draft = kind.drafts.remove_line(draft, action_index(action))
    elif action in ("open_library", "search_library"):
        return kind.render(draft, obj, show_library=True, search=form.library_search.data)
    elif action == "add_products":
        ids = [i for i in map(parse_id, form.library_product.data) if i is not None]
        chosen = list(db.session.scalars(scoped(Product).where(Product.id.in_(ids)).order_by(Product.name))) \
            if ids else []
        draft = kind.drafts.add_products(draft, chosen, locale)
    elif action == "save":
        try:
            saved = kind.drafts.save_draft(current_actor(), obj.id if obj else None, draft, locale)
        except ValidationFailed as exc:
            return kind.render(draft, obj, errors=exc.errors, status=422)
        flash(kind.saved(), "success")
        return htmx_redirect(url_for(kind.detail_endpoint, **{kind.id_arg: saved.id}))
    return kind.render(draft, obj, focus=focus)


def delete_draft(kind: EditorKind, obj_id: int):
    """"Delete draft" on the draft's page (a draft has no number yet, so no gap); refused once it is finalized."""
    try:
        kind.drafts.delete_draft(current_actor(), obj_id)
    except Conflict as exc:
        flash(exc.message, "error")
        return htmx_redirect(url_for(kind.detail_endpoint, **{kind.id_arg: obj_id}))
    flash(_("Draft deleted."), "success")
    return htmx_redirect(url_for(kind.index_endpoint))


# -- the lists ---------------------------------------------------------------------------------------


def day(value) -> str:
    """A calendar date (due, issue, expiry) in the merchant's language; "—" when there is none."""
    return format_when(value, DATE, locale=current_language(), timezone=None) if value else "—"


def customers(rows: list) -> dict[int, str]:
    """Each invoice's or quote's customer as the list shows it: the contact's name (or email), and the company."""
    contact_ids = {row.contact_id for row in rows if row.contact_id}
    company_ids = {row.company_id for row in rows if row.company_id}
    contacts = {c.id: c for c in db.session.scalars(scoped(Contact).where(Contact.id.in_(contact_ids)))} \
        if contact_ids else {}
    companies = {c.id: c for c in db.session.scalars(scoped(Company).where(Company.id.in_(company_ids)))} \
        if company_ids else {}
    result = {}
    for row in rows:
        parts = [contacts[row.contact_id].display_name] if row.contact_id in contacts else []
        if row.company_id in companies:
            parts.append(companies[row.company_id].name)
        result[row.id] = " · ".join(parts) or "—"
    return result
