"""What a merchant sells: payment links and their signed test URLs (links), the multi-step link editor's
draft (link_drafts) and the product library (products)."""
