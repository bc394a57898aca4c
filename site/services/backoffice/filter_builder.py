"""The advanced-filter panel's form (P3): groups of conditions edited with buttons, like the link editor."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from kassa.forms import parse_int
from kassa.services.backoffice.payment_filters import (
    NO_VALUE_OPS,
    OPERATORS,
    PROPERTIES,
    Condition,
    Filter,
    FilterError,
    parse_condition,
)

Row = dict[str, Any]


def property_choices() -> list[dict[str, Any]]:
    """Every filterable property with its kind, operators and (for lists) options, for the form."""
    return [
        {"key": p.key, "label": str(p.label), "kind": p.kind,
         "ops": [(op, str(label)) for op, label in OPERATORS[p.kind].items()],
         "options": [(v, str(label)) for v, label in p.options()] if p.options else []}
        for p in PROPERTIES.values()
    ]


def _blank(prop: str = "status") -> Row:
    kind = PROPERTIES[prop].kind
    return {"prop": prop, "op": next(iter(OPERATORS[kind])), "v1": "", "v2": "", "vals": []}


def rows_from_filter(groups: Filter, empty_ok: bool = False) -> list[list[Row]]:
    """`empty_ok`: no groups stay no groups (a workflow's criteria: every payment), else one blank row."""
    rows = []
    for group in groups:
        rows.append([{"prop": c.prop, "op": c.op, "v1": c.values[0] if c.values else "",
                      "v2": c.values[1] if len(c.values) > 1 else "", "vals": list(c.values)} for c in group])
    return rows or ([] if empty_ok else [[_blank()]])


def rows_from_form(groups: list[list[Row]], empty_ok: bool = False) -> list[list[Row]]:
    """The panel's groups of rows as its form read them (blueprints/payments.FilterPanelForm), an unknown
    property made a blank row and an operator its property lacks the property's first one."""
    for group in groups:
        for row in group:
            if row["prop"] not in PROPERTIES:
                row.update(_blank())
            elif row["op"] not in OPERATORS[PROPERTIES[row["prop"]].kind]:
                row["op"] = next(iter(OPERATORS[PROPERTIES[row["prop"]].kind]))
    return groups or ([] if empty_ok else [[_blank()]])


def _condition(row: Row) -> Condition:
    prop = PROPERTIES[row["prop"]]
    if row["op"] in NO_VALUE_OPS:
        values: list[str] = []
    elif prop.kind == "enum":
        values = row["vals"]
    elif prop.kind == "bool":
        values = [row["v1"] or "yes"]
    elif row["op"] == "between" or prop.kind == "field":  # Q8: a custom field's label and text
        values = [row["v1"], row["v2"]]
    else:
        values = [row["v1"]]
    return parse_condition([row["prop"], row["op"], values])


def apply_action(groups: list[list[Row]], action: str,
                 empty_ok: bool = False) -> tuple[list[list[Row]], dict[str, str], Filter]:
    """Carry out a button of the panel; on "apply", also parse everything (errors keyed c-g-i). `empty_ok`: the
    last condition can be removed and no conditions at all is a valid answer (W5: a workflow's criteria)."""
    if action == "add_group":
        groups = [*groups, [_blank()]]
    elif action.startswith("add_condition:"):
        g = _number(action)
        if 0 <= g < len(groups) and len(groups[g]) < 20:
            groups[g] = [*groups[g], _blank()]
    elif action.startswith("remove:"):
        g, _sep, i = action.partition(":")[2].partition("-")
        g, i = parse_int(g, minimum=0, maximum=len(groups) - 1), parse_int(i, minimum=0)
        if g is not None and i is not None and i < len(groups[g]):
            del groups[g][i]
        groups = [group for group in groups if group] or ([] if empty_ok else [[_blank()]])
    elif action == "clear":
        return ([] if empty_ok else [[_blank()]]), {}, ()
    errors: dict[str, str] = {}
    parsed: list[tuple[Condition, ...]] = []
    if action == "apply":
        for g, group in enumerate(groups):
            conditions = []
            for i, row in enumerate(group):
                try:
                    conditions.append(_condition(row))
                except FilterError as exc:
                    errors[f"c-{g}-{i}"] = exc.message
            if conditions:
                parsed.append(tuple(conditions))
        if not errors and not parsed and not empty_ok:
            errors["c-0-0"] = _("Add at least one condition, or close the panel.")
    return groups, errors, tuple(parsed)


def _number(action: str) -> int:
    text = action.partition(":")[2]
    number = parse_int(text, minimum=0)
    return -1 if number is None else number
