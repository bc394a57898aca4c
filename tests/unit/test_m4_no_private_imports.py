"""M4: a module's private names (a leading underscore) stay in that module. Reaching into another module's
`_helper` hid the dependency that made the service circle (evidence.py imported disputes._answerable); what
another module needs is public, with a name that says what it promises."""

from __future__ import annotations

import ast
from pathlib import Path

SITE = Path(__file__).resolve().parents[2] / "site"


def _private_imports(path: Path, root: Path = SITE) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kassa"):
            for alias in node.names:
                # `x as _x` renames a public name locally; only importing someone else's private name counts
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_m4_no_module_imports_another_modules_private_names():
    offenders = [hit for path in sorted(SITE.rglob("*.py")) for hit in _private_imports(path)]
    assert offenders == []


def test_m4_the_check_sees_a_private_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from kassa.services.disputes.disputes import _hidden, owned\nfrom kassa.models import User as _U\n")
    assert _private_imports(sample, tmp_path) == ["sample.py:1 kassa.services.disputes.disputes._hidden"]
