"""Disputes and inquiries: opening and closing from processor events, the counter wizard and its deadlines
(disputes), evidence files (evidence)."""
