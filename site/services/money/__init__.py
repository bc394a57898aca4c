"""The money core below every domain: the ledger (what each movement books), a payment's state machine
(payment_states) and the status shown for it (display_status). It imports only crm (the timeline) and platform."""
