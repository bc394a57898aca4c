"""Q8: a link's custom fields — questions the checkout asks besides the contact details — and the rules for
the buyer's answers. The editor reads and checks them here (`FieldDraft`, `validate_fields`); the checkout
reads the answers with `check_answer`, from the frozen snapshot (`snapshot_fields`).

A field is stored on the link (and frozen into each checkout snapshot) as
{"label", "type": text | number | dropdown, "options": [...] (dropdowns), "required", "receipt"}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

MAX_FIELDS = 5
MAX_LABEL = 50
MAX_OPTIONS = 20
MAX_OPTION = 50
MAX_TEXT = 255
TYPES = ("text", "number", "dropdown")
# A number as a buyer types it: digits with an optional decimal point or comma ("12", "-3.5", "2,75").
_NUMBER = re.compile(r"[+-]?[0-9]{1,15}(?:[.,][0-9]{1,10})?")


@dataclass
class FieldDraft:
    """One custom field as the editor's row posts it (`custom-<n>-<part>`), text as typed."""

    label: str = ""
    type: str = "text"
    options: str = ""  # a dropdown's options: one a line, or separated by commas
    required: str = ""  # "1" when ticked
    receipt: str = ""  # "1": show the answer on the receipt
    option_list: list[str] = field(default_factory=list)  # filled in by validation

    @property
    def is_required(self) -> bool:
        return self.required == "1"

    @property
    def on_receipt(self) -> bool:
        return self.receipt == "1"

    def stored(self) -> dict[str, Any]:
        return {"label": self.label, "type": self.type,
                "options": self.option_list if self.type == "dropdown" else [],
                "required": self.is_required, "receipt": self.on_receipt}


def split_options(text: str) -> list[str]:
    """One option a line; a single line may list them separated by commas. Blank entries are dropped."""
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    # Spaces inside an option are collapsed as a browser does with an <option>'s text, which is its value.
    return [" ".join(part.split()) for part in parts if part.strip()]


def draft_fields(stored: list[dict[str, Any]] | None) -> list[FieldDraft]:
    """A saved link's fields as the editor shows them (a dropdown's options one a line)."""
    return [FieldDraft(label=f["label"], type=f["type"], options="\n".join(f.get("options") or []),
                       required="1" if f.get("required") else "", receipt="1" if f.get("receipt") else "",
                       option_list=list(f.get("options") or []))
            for f in stored or []]


def validate_fields(fields: list[FieldDraft]) -> dict[str, str]:
    """Problems keyed by the editor's field names (`custom-<n>-<part>`, or `custom` for the list itself)."""
    errors: dict[str, str] = {}
    if len(fields) > MAX_FIELDS:
        errors["custom"] = _("A link can have at most %(n)d custom fields. Remove one to add another.", n=MAX_FIELDS)
    seen: set[str] = set()
    for i, f in enumerate(fields[:MAX_FIELDS + 10]):
        prefix = f"custom-{i}-"
        if not f.label:
            errors[prefix + "label"] = _("Enter the question the buyer answers, like “Company VAT number”.")
        elif len(f.label) > MAX_LABEL:
            errors[prefix + "label"] = _("Use at most %(n)d characters.", n=MAX_LABEL)
        elif f.label.casefold() in seen:
            errors[prefix + "label"] = _("Another field has this label. Give each field its own.")
        seen.add(f.label.casefold())
        if f.type not in TYPES:
            errors[prefix + "type"] = _("Choose text, number or dropdown.")
            continue
        f.option_list = split_options(f.options) if f.type == "dropdown" else []
        if f.type != "dropdown":
            continue
        if not f.option_list:
            errors[prefix + "options"] = _("Enter the dropdown's options, one a line or separated by commas.")
        elif len(f.option_list) > MAX_OPTIONS:
            errors[prefix + "options"] = _("A dropdown has at most %(n)d options.", n=MAX_OPTIONS)
        elif any(len(option) > MAX_OPTION for option in f.option_list):
            errors[prefix + "options"] = _("Each option can have at most %(n)d characters.", n=MAX_OPTION)
        elif len({option.casefold() for option in f.option_list}) != len(f.option_list):
            errors[prefix + "options"] = _("Each option can be listed once.")
    return errors


def snapshot_fields(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields a checkout asks (snapshots from before Q8 have none)."""
    return snapshot.get("custom_fields") or []


def check_answer(spec: dict[str, Any], text: str) -> tuple[str, str | None]:
    """The buyer's answer to one field, trimmed, and what is wrong with it (None: fine; "" is no answer)."""
    value = (text or "").strip()
    if not value:
        if spec.get("required"):
            return "", _("Choose an option.") if spec["type"] == "dropdown" else _("This field is required.")
        return "", None
    if spec["type"] == "dropdown":
        if value not in (spec.get("options") or []):
            return "", _("Choose one of the options.")
    elif len(value) > MAX_TEXT:
        return value[:MAX_TEXT], _("Use at most %(n)d characters.", n=MAX_TEXT)
    elif spec["type"] == "number" and not _NUMBER.fullmatch(value):
        return value, _("Enter a number, like 12 or 3.5.")
    return value, None


def answer_text(answers: list[dict[str, Any]] | None) -> str:
    """Exports (one column): "Label: value; Label: value"."""
    return "; ".join(f"{a['label']}: {a['value']}" for a in answers or [])
