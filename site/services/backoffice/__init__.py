"""What the merchant reads and sorts in the back office: the payments index with its filters and keyset
pagination (payment_index, payment_filters), the advanced-filter panel (filter_builder), saved views,
one payment's details page (payment_details), its associations to CRM records, and the revenue dashboard.
Reads payments; nothing in payments reads it back (the payments package is what moves money)."""
