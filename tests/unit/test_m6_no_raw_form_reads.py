"""M6: forms are read through WTForms forms (kassa.forms.Form). No module under site/ reads `request.form` by
hand; the one place that may is site/forms.py (the base form's reading of the post, and the NUL guard's look
at every raw field before any form exists)."""

from __future__ import annotations

import re
from pathlib import Path

SITE = Path(__file__).resolve().parents[2] / "site"
RAW_READ = re.compile(r"\brequest\.form\b")

# Converted by the other M6 helper (branch h-m6a), which still reads by hand on this branch.
# lead: tighten to empty after merging h-m6a.
PENDING = {f"blueprints/{name}.py" for name in
           ("auth", "settings", "dashboard", "exports", "reports", "crm", "products", "disputes", "links")}


def test_m6_no_module_but_forms_reads_request_form():
    sources = {str(path.relative_to(SITE)): path.read_text(encoding="utf-8") for path in sorted(SITE.rglob("*.py"))}
    assert len(sources) > 50 and RAW_READ.search(sources["forms.py"])  # the scan really read the package
    offending = {path for path, text in sources.items() if path != "forms.py" and RAW_READ.search(text)}
    assert offending <= PENDING, sorted(offending - PENDING)
