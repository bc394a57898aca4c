"""Payments once they exist: recording a charge (payment_records), refunds, receipts and invoices, mandates,
associations to CRM records, the payments index with its filters, saved views and advanced-filter panel,
one payment's details page and the revenue dashboard."""
