"""M4: the architecture is enforced by import-linter contracts (pyproject.toml [tool.importlinter]).

The contracts hold on the tree as it is, and they are not decoration: the same contracts run on a copy of
the package with one upward import added (platform → billing, the kind of import that built the 15-module
circle) report it as broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(config: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    return subprocess.run([str(LINT), str(config), "--no-cache"], cwd=config.parent, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_package(tmp_path: Path) -> Path:
    """site/ as an importable package named kassa, Python files only (grimp reads source, imports nothing)."""
    target = tmp_path / "src" / "kassa"
    shutil.copytree(ROOT / "site", target, ignore=lambda d, names: [
        n for n in names if (not n.endswith(".py") and not (Path(d) / n).is_dir())
        or n in ("templates", "static", "translations", "__pycache__")])
    return target


def test_m4_contracts_hold_on_the_tree():
    done = _lint(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_m4_an_upward_import_breaks_the_layers_and_the_cycle_contract(tmp_path):
    package = _copy_package(tmp_path)
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    assert tomllib.loads(config.read_text())["tool"]["importlinter"]["root_package"] == "kassa"
    clean = _lint(config, tmp_path / "src")
    assert clean.returncode == 0, clean.stdout + clean.stderr   # the copy itself is found and clean

    notifications = package / "services" / "platform" / "notifications.py"
    notifications.write_text(notifications.read_text()
                             + "\nfrom kassa.services.billing.subscriptions import by_update_token  # noqa\n")
    broken = _lint(config, tmp_path / "src")
    assert broken.returncode != 0
    assert "Service packages: each imports only its own package and the ones below it BROKEN" in broken.stdout
    assert "kassa.services.platform.notifications -> kassa.services.billing.subscriptions" in broken.stdout
    # billing already imports platform, so the same line also closes a cycle between the two packages
    assert "No cycles among sibling modules (services, processors) BROKEN" in broken.stdout
