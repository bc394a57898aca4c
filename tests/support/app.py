"""The app, its test client and helpers to log in, run the worker and read what was emailed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.databases import empty_all_tables


class IsolatedClient(FlaskClient):
    """Each request gets its own app context (fresh `g`, own DB session), as in production.

    The test holds an app context open to use the database; without this, Flask would reuse it for
    every request and `g` (the logged-in user, the CSP nonce, ...) would leak from one request to the next.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        # The test's own session must see what the request committed: end its read snapshot.
        from kassa.extensions import db

        db.session.rollback()
        return response


@pytest.fixture
def app_config() -> dict:
    """Override in a test module (or parametrize) to change settings before the app is built."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path, monkeypatch, app_config) -> Iterator[Flask]:
    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("KASSA_SMTP_URL", "KASSA_REDIS_URL", "KASSA_DATABASE_URL", "KASSA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    from kassa import create_app
    from kassa.extensions import db, limiter

    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "KASSA_PASSWORD_HASH_PROFILE": "fast",
        "WTF_CSRF_ENABLED": False,
        "KASSA_BASE_URL": "http://kassa.test",
        "SERVER_NAME": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        # Many tests move time by days while signed in; the session lifetimes (H14) have their own tests,
        # which set the real limits.
        "KASSA_SESSION_IDLE_HOURS": 24 * 365 * 20,
        "KASSA_SESSION_MAX_DAYS": 365 * 20,
    }
    config.update(app_config)
    app = create_app(config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        empty_all_tables(db.engine)
        limiter.reset()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def log_in(client: FlaskClient, email: str, password: str) -> None:
    """Log in through the real form, as a user would."""
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def run_outbox(limit: int = 100) -> int:
    """Run the worker's delivery loop until nothing due is left; returns messages attempted."""
    from kassa.services.platform.outbox import run_pending

    total = 0
    while True:
        n = run_pending(limit)
        total += n
        if n == 0:
            return total


def extract_link(text: str, path_fragment: str) -> str:
    """The first URL in an email body that contains `path_fragment`, as a path for the test client."""
    for url in re.findall(r"https?://[^\s\"'<>]+", text):
        if path_fragment in url:
            return re.sub(r"^https?://[^/]+", "", url)
    raise AssertionError(f"no link with {path_fragment!r} in:\n{text}")


def page_text(response) -> str:
    """The visible text of an HTML response, whitespace collapsed (entities decoded)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    return " ".join(soup.get_text(" ").split())
