"""Payouts: grouping settled balance into payouts and reconciling them to the cent (payouts)."""
