"""Exports and reports: the rows behind them (export_sources), CSV/XLSX writers (export_writers) and the
export jobs with their progress (exports)."""
