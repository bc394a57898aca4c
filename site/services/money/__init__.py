"""The money core below every domain: the ledger (what each movement books, incl. the rows a succeeded payment
books, shared by the single and the batch paths), what every state machine shares (machines: a transition as
data, M1) and the status shown for a payment (display_status). It imports only crm (the timeline) and platform."""
