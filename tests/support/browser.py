"""Browser tests: the app served on 127.0.0.1 in a thread, driven by Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.env import CHROMIUM, IN_CI, browser_tests_enabled

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[1] / ".screenshots"

# Flags for a closed network: without them Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    """KASSA_TEST_BROWSER=0 deselects browser tests for a quick local run; CI always runs them."""
    if browser_tests_enabled():
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("browser") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        where = "CI" if IN_CI else "this machine"
        pytest.fail(
            f"Chromium is required for browser tests but {CHROMIUM} is missing on {where}.\n"
            "Install it with: apt-get install -y chromium   (make test does this when it can)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="session")
def browser_database_url(tmp_path_factory) -> str:
    """Browser tests run on their own SQLite database (the web tests cover both backends)."""
    from tests.support.databases import _migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'kassa.db'}"
    _migrate(url, tmp_path_factory.mktemp("browser-migrate"))
    return url


class LiveServer:
    def __init__(self, app, server, thread) -> None:
        self.app = app
        self.server = server
        self.thread = thread
        self.url = f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def live_server(browser_database_url, tmp_path, monkeypatch, app_config) -> Iterator[LiveServer]:
    from werkzeug.serving import make_server

    from kassa import create_app
    from kassa.extensions import db, limiter
    from tests.support.databases import empty_all_tables

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("KASSA_SMTP_URL", "KASSA_REDIS_URL", "KASSA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = {
        "TESTING": True,
        "KASSA_RAISE_ERRORS": False,
        "SQLALCHEMY_DATABASE_URI": browser_database_url,
        "KASSA_PASSWORD_HASH_PROFILE": "fast",
        "RATELIMIT_STORAGE_URI": "memory://",
        # Many tests move time by days while signed in; the session lifetimes (H14) have their own tests,
        # which set the real limits.
        "KASSA_SESSION_IDLE_HOURS": 24 * 365 * 20,
        "KASSA_SESSION_MAX_DAYS": 365 * 20,
    }
    config.update(app_config)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["KASSA_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        empty_all_tables(db.engine)
        limiter.reset()
    try:
        with serving(server) as thread:
            yield LiveServer(app, server, thread)
    finally:
        with app.app_context():
            db.engine.dispose()


@contextmanager
def serving(server) -> Iterator[threading.Thread]:
    """Run a socketserver-style `server` on a background thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _new_page(browser, viewport, locale="en-US"):
    context = browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # JavaScript errors only: a 4xx page the test asked for on purpose is logged as a failed load.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


@pytest.fixture
def desktop_page(browser):
    context, page = _new_page(browser, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context, page = _new_page(browser, PHONE)
    yield page
    context.close()


@pytest.fixture
def new_page(browser):
    """Factory for extra pages (another language, another viewport)."""
    contexts = []

    def make(viewport=DESKTOP, locale="en-US"):
        context, page = _new_page(browser, viewport, locale)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page, label: str = "") -> None:
    """axe-core on the current page: any violation fails, with a readable list of what and where."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = results.response.get("violations", [])
    if violations:
        lines = []
        for v in violations:
            targets = ", ".join(str(node.get("target")) for node in v.get("nodes", [])[:5])
            lines.append(f"{v['id']} ({v.get('impact')}): {v.get('help')} — {targets}")
        raise AssertionError(f"axe found {len(violations)} violation(s) on {label or page.url}:\n" + "\n".join(lines))


def log_in_page(page, base: str, email: str, password: str) -> None:
    """Log in through the login form, as a merchant would, and wait until the app has let them in."""
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def pay_in_browser(page, base: str, slug: str, email: str, *, card: str = "4242424242424242",
                   names: tuple[str, str] | None = None) -> None:
    """A buyer pays a link in test mode with a test card through the real checkout page."""
    page.goto(f"{base}/pay/{slug}?mode=test")
    page.get_by_label(re.compile(r"^Email")).fill(email)
    if names:
        page.get_by_label(re.compile(r"^First name")).fill(names[0])
        page.get_by_label(re.compile(r"^Last name")).fill(names[1])
    page.get_by_label(re.compile(r"^Card number")).fill(card)
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label(re.compile(r"^Name on card")).fill("Ann Reader")
    page.get_by_label(re.compile(r"^Address")).fill("Quay 1")
    page.get_by_label(re.compile(r"^Postal code")).fill("10001")
    page.get_by_label(re.compile(r"^City")).fill("New York")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()


def emailed_link(server: LiveServer, kind: str, path_fragment: str) -> str:
    """Run the worker and return the link in the latest `kind` email as its recipient gets it (the stored copy
    in the Email log has secret links redacted, H10)."""
    from sqlalchemy import select

    from kassa.extensions import db
    from kassa.models import EmailMessage
    from kassa.services.mail import recipient_copy
    from tests.support.app import extract_link, run_outbox

    with server.app.app_context():
        run_outbox()
        email = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == kind)
                                   .order_by(EmailMessage.id.desc())).first()
        text = recipient_copy(email)[1]
        db.session.remove()
    return extract_link(text, path_fragment)


def sign_up(page, server: LiveServer, email: str = "owner@bikes.example") -> None:
    """Sign up through the form and the emailed confirmation link (H12), landing on the dashboard."""
    base = server.url
    page.goto(f"{base}/signup")
    page.get_by_label("Company name").fill("Fast Bikes")
    page.get_by_label("Your name").fill("Fiona Owner")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("Country").select_option("NL")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    page.goto(base + emailed_link(server, "signup_confirm", "/signup/confirm/"))
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
