"""Payments once they exist, and everything that moves their money: recording a charge (payment_records),
the payment, refund and checkout-attempt state machines (payment_states, refund_states, attempt_states),
refunds, receipts and invoices, bank-debit mandates and the card-testing guard every charge passes (risk).
What the back office reads about payments lives in services/backoffice."""
