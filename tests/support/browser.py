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


# Issue 13 ("Also"): browser tests wait on state, never on timing, and pass on a loaded 2-core machine. A
# deadline only bounds a wait on state, so it can be generous: a slow machine reaches the state later, a broken
# page never does. Every action, wait and `expect` gets 30 s (Playwright's defaults are 30 s and 5 s).
TIMEOUT_MS = 30_000

# htmx marks its work in the DOM: the element that sent a request carries .htmx-request until the response is
# swapped in; the new content carries .htmx-added (and the target .htmx-settling) until htmx settles it, a
# timer later, and only then are the new controls wired up (hx- attributes, autofocus, dialogs opened by
# app.js on htmx:load). A control used before that is dead: a change goes unheard, a click navigates. The page
# is idle when it has loaded (htmx wires the first page up on DOMContentLoaded) and none of these marks is left.
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
HTMX_IDLE = f"document.readyState === 'complete' && !document.querySelector('{HTMX_BUSY}')"
# Every `wait_for_function` predicate is an arrow function, never a bare expression: Playwright evals a bare
# expression again on every poll, from the page, where the app's CSP (no 'unsafe-eval') refuses it, so the wait
# fails with an EvalError exactly when the state is not there at the first look, i.e. on a slow machine. A
# function is evaluated once, when Playwright installs the wait, and then only called.
# Counts the requests htmx sends, so a wait can tell "htmx answered" from "htmx never heard the action".
HTMX_TRACKER = """
window.__kassaHtmxRequests = 0;
document.addEventListener("htmx:beforeRequest", () => { window.__kassaHtmxRequests += 1; });
"""

# What a loaded machine does to the page, on purpose and every time: htmx hears each answer 400 ms after it
# arrived (its XHR load handler runs late), swaps it in 200 ms after that and settles it (wires up the new
# controls) 800 ms later. A step that waits on timing (a response Playwright saw, an element that exists) acts
# in one of these gaps; one that waits on state does not. One test always runs with it, and
# KASSA_TEST_SLOW_HTMX=1 runs every browser test with it, to find steps that still wait on timing.
# Injected by Playwright, so the pages' CSP does not apply to it.
SLOW_HTMX = """
(() => {
  const base = Object.getOwnPropertyDescriptor(XMLHttpRequestEventTarget.prototype, "onload");
  Object.defineProperty(XMLHttpRequest.prototype, "onload", {
    configurable: true,
    get() { return base.get.call(this); },
    set(handler) {
      base.set.call(this, handler && function (...args) { setTimeout(() => handler.apply(this, args), 400); });
    },
  });
  document.addEventListener("htmx:beforeRequest", () => {
    window.htmx.config.defaultSwapDelay = 200;
    window.htmx.config.defaultSettleDelay = 800;
  });
})();
"""


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
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
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


_APPS: dict = {}  # live server URL → its app, to sign test links for it


def signed_test_url(base: str, slug: str) -> str:
    """H7: the absolute signed test URL of a link on the live server at `base` (its Test action's href)."""
    from tests.support.checkout import signed_test_path

    return base + signed_test_path(slug, _APPS[base])


@pytest.fixture
def live_server(browser_database_url, tmp_path, monkeypatch, app_config) -> Iterator[LiveServer]:
    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("KASSA_SMTP_URL", "KASSA_REDIS_URL", "KASSA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with running_live_server(browser_database_url, app_config) as live:
        yield live


@contextmanager
def running_live_server(database_url: str, app_config: dict) -> Iterator[LiveServer]:
    """The app on `database_url` (its tables emptied first) served on 127.0.0.1 for the block. The caller has
    set the environment (KASSA_INSTANCE_PATH, no SMTP/Redis/database URL)."""
    from werkzeug.serving import make_server

    from kassa import create_app
    from kassa.extensions import db, limiter
    from tests.support.databases import empty_all_tables

    config = {
        "TESTING": True,
        "KASSA_RAISE_ERRORS": False,
        "SQLALCHEMY_DATABASE_URI": database_url,
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
    live = LiveServer(app, server, thread=None)
    _APPS[live.url] = app
    try:
        with serving(server) as thread:
            live.thread = thread
            yield live
    finally:
        _APPS.pop(live.url, None)
        with app.app_context():
            db.engine.dispose()


@contextmanager
def serving(server) -> Iterator[threading.Thread]:
    """Run a socketserver-style `server` on a background thread for the duration of the block."""
    # shutdown() waits for the loop's next poll: 0.5 s by default, paid by every browser test's teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def new_context(browser, **options):
    """A browser context with the generous deadlines and the htmx request counter every page needs."""
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.add_init_script(HTMX_TRACKER)
    if os.environ.get("KASSA_TEST_SLOW_HTMX") == "1":
        context.add_init_script(SLOW_HTMX)
    return context


@contextmanager
def phone_checkout(browser, base: str, slug: str, *, script: bool = True, locale: str = "nl-NL"):
    """A phone-sized (390×844) page on the link's signed test checkout, with checkout.js or with every checkout
    script blocked (the no-JS path), closed afterwards."""
    context = new_context(browser, viewport=PHONE, locale=locale)
    try:
        page = context.new_page()
        if not script:
            page.route("**/checkout*.js*", lambda route: route.abort())
        page.goto(signed_test_url(base, slug))
        yield page
    finally:
        context.close()


def wait_for_htmx_idle(page) -> None:
    """Wait until the page has loaded and htmx has nothing in flight, swapping or settling."""
    page.wait_for_function(f"() => {HTMX_IDLE}")


@contextmanager
def htmx_swap(page) -> Iterator[None]:
    """Around an action that makes htmx ask the server for a fragment (a click, a change): first wait until
    the page is idle, so the action reaches wired-up controls; afterwards wait until htmx has sent a request
    and the page is idle again, i.e. the answer is swapped in and settled and its controls work. Locators
    re-resolve, so the next step acts on the new elements. (An answer that navigates, like HX-Redirect, starts
    a new page: wait for its URL instead.)"""
    wait_for_htmx_idle(page)
    sent = page.evaluate("window.__kassaHtmxRequests")
    yield
    page.wait_for_function(f"sent => window.__kassaHtmxRequests > sent && {HTMX_IDLE}", arg=sent)


def _new_page(browser, viewport, locale="en-US"):
    context = new_context(browser, viewport=viewport, locale=locale)
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

    # The caller has waited for what it checks; axe also needs the page's stylesheets (colour contrast) and
    # scripts (what they reveal or hide) in place, which a slow machine may still be loading.
    page.wait_for_load_state()
    axe = Axe()
    if page.evaluate("() => typeof window.axe === 'object'"):
        axe.axe_script = "undefined"  # already on this page (a second check of the same page): not sent again
    results = axe.run(page)
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
    page.goto(signed_test_url(base, slug))
    fill_card_and_pay(page, email, card=card, names=names)
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()


def fill_card_and_pay(page, email: str, *, card: str = "4242424242424242", names: tuple[str, str] | None = None,
                      card_name: str = "Ann Reader") -> None:
    """Fill the open checkout page's card form (a New York billing address) and press Pay."""
    page.get_by_label(re.compile(r"^Email")).fill(email)
    if names:
        page.get_by_label(re.compile(r"^First name")).fill(names[0])
        page.get_by_label(re.compile(r"^Last name")).fill(names[1])
    page.get_by_label(re.compile(r"^Card number")).fill(card)
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label(re.compile(r"^Name on card")).fill(card_name)
    page.get_by_label(re.compile(r"^Address")).fill("Quay 1")
    page.get_by_label(re.compile(r"^Postal code")).fill("10001")
    page.get_by_label(re.compile(r"^City")).fill("New York")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def bookshop_link(live_server, company: str, email: str, password: str) -> str:
    """A merchant (`company`, signing in as `email`) with a "Reading club" link of 40.00; its slug."""
    from kassa.extensions import db
    from tests.factories import make_merchant
    from tests.support.checkout_flow import item, make_link

    with live_server.app.app_context():
        owner = make_merchant(company=company, email=email, password=password)
        slug = make_link(owner, name="Reading club", items=[item("Reading club", "40.00")]).slug
        db.session.remove()
    return slug


def emailed_link(server: LiveServer, kind: str, path_fragment: str) -> str:
    """Run the worker and return the link in the latest `kind` email as its recipient gets it (the stored copy
    in the Email log has secret links redacted, H10)."""
    from sqlalchemy import select

    from kassa.extensions import db
    from kassa.models import EmailMessage
    from kassa.services.platform.mail import recipient_copy
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
