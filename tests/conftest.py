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


def pytest_collection_finish(session):
    """Everything imported and collected so far lives for the whole run: freeze it out of the collector's
    reach, so each full collection walks only what the tests make (~15% of a web slice's time went to
    collections that walked the ~200k long-lived objects again and again), and collect the young
    generation less often (every test builds an app: thousands of short-lived objects)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)
