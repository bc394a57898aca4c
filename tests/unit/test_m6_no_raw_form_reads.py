"""M6: forms are read through WTForms forms (kassa.forms.Form). No module under site/ reads `request.form`,
`request.values` or `request.files` by hand. Only site/forms.py reads the post (the base form, and the NUL
guard's look at every raw field before any form exists), and input_guard.py the uploads' names."""

from __future__ import annotations

import re
from pathlib import Path

SITE = Path(__file__).resolve().parents[2] / "site"
# request.values and request.files read the post too (values = query string + form).
RAW_READ = re.compile(r"\brequest\.(?:form|values|files)\b")
# The NUL guard looks at every upload's name before any form exists (input_guard.py, H9).
ALLOWED = {"forms.py", "input_guard.py"}


def test_m6_no_module_but_forms_reads_request_form():
    sources = {str(path.relative_to(SITE)): path.read_text(encoding="utf-8") for path in sorted(SITE.rglob("*.py"))}
    assert len(sources) > 50 and RAW_READ.search(sources["forms.py"])  # the scan really read the package
    offending = {path for path, text in sources.items() if path not in ALLOWED and RAW_READ.search(text)}
    assert offending == set(), sorted(offending)
