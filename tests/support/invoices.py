"""V1: what the invoice editor posts, for the invoice tests and the M1 walk."""

from __future__ import annotations


def editor_form(**overrides) -> dict[str, str]:
    form = {
        "customer_email": "Anna@Example.com", "customer_name": "Anna de Vries", "company_name": "Fietsen BV",
        "language": "nl", "currency": "EUR", "issue_date": "2026-12-01", "due_date": "2026-12-31",
        "notes": "Thanks for your business.", "terms": "Pay within 30 days to NL00 BANK 0123 4567 89.",
        "lines-0-description": "Bicycle repair", "lines-0-quantity": "2", "lines-0-unit_price": "45.00",
        "lines-0-discount_type": "percent", "lines-0-discount_value": "10",
        "lines-1-description": "Parts", "lines-1-quantity": "1", "lines-1-unit_price": "12.50",
        "action": "save",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}
