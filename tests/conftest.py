"""Test configuration. Fixtures live in tests/support/ by area; this file only wires them in."""

pytest_plugins = [
    "tests.support.databases",
    "tests.support.app",
    "tests.support.mailserver",
    "tests.support.browser",
    "tests.support.faults",
]
