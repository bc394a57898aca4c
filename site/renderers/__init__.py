"""Pure renderers: documents (receipts, invoices, exports) returned as (filename, content type, bytes)."""
