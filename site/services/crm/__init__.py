"""The CRM (contacts, companies, deals, pipelines) and the timeline every record keeps (crm.add_timeline)."""
