"""Pure renderers: documents (receipts, invoices, exports) returned as (filename, content type, bytes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def render_pdf(html: str, *, base_dir: Path = STATIC_DIR, stylesheets: Sequence[Path] | None = None) -> bytes:
    """The PDF of `html` (renderers/pdf.py does the work). WeasyPrint is imported here, at the first render, on
    purpose: it loads Pango through ctypes (about a second, and it runs gcc to find the libraries), a cost that
    web processes and CLI commands which never render a PDF should not pay when they start; the worker pays it
    once."""
    from kassa.renderers import pdf

    if stylesheets is None:
        return pdf.render_pdf(html, base_dir=base_dir)
    return pdf.render_pdf(html, base_dir=base_dir, stylesheets=stylesheets)
