"""Test configuration. Fixtures live in tests/support/ by area; this file only wires them in."""

from tests.support import build_cache

build_cache.install()  # before any app is built: every test's app reuses compiled URL builders and templates

pytest_plugins = [
    "tests.support.databases",
    "tests.support.app",
    "tests.support.mailserver",
    "tests.support.browser",
    "tests.support.faults",
]
