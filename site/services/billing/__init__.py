"""Recurring billing: subscriptions and their lifecycle (subscriptions), the billing run (billing) with its
claims, set-based outcome writes and row helpers (billing_claims, billing_outcomes, billing_rows)."""
