"""I1 in Chromium (1440×900): a Super admin creates a live API key in Settings → API keys, sees its secret once,
uses it, and revokes it through the confirmation dialog — after which the key is refused. axe on the page;
screenshots of the secret shown once and of the list."""

from __future__ import annotations

import re
import urllib.request

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import DESKTOP, assert_accessible, log_in_page, new_context, screenshot

pytestmark = pytest.mark.browser


def _api_status(base: str, secret: str) -> int:
    request = urllib.request.Request(f"{base}/api/v1/payment_intents", headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_i1_create_use_and_revoke_an_api_key(live_server, browser):
    with live_server.app.app_context():
        email = make_merchant(company="Fietsenmaker").email
        db.session.remove()
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.goto(f"{live_server.url}/settings/api-keys")
        page.get_by_role("button", name="Create API key").click()
        expect(page.locator("#f-name-error")).to_be_visible()
        page.locator("#f-name").fill("Webshop")
        page.locator("#f-mode").select_option("live")
        page.get_by_role("button", name="Create API key").click()
        secret = page.locator("[data-api-secret]").inner_text()
        assert re.fullmatch(r"sk_live_[A-Za-z0-9]{40}", secret)
        assert_accessible(page, "api key created")
        screenshot(page, "i1-api-key-created-desktop")
        assert _api_status(live_server.url, secret) == 200

        page.goto(f"{live_server.url}/settings/api-keys")  # shown once: the list has its prefix only
        expect(page.locator("[data-api-secret]")).to_have_count(0)
        expect(page.get_by_role("cell", name=f"{secret[:12]}…")).to_be_visible()
        page.get_by_role("link", name=re.compile("Revoke Webshop")).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Revoke Webshop?")
        assert_accessible(page, "revoke dialog")
        dialog.get_by_role("button", name="Revoke API key").click()
        expect(page.locator(".badge", has_text="Revoked")).to_be_visible()
        screenshot(page, "i1-api-keys-revoked-desktop")
        assert _api_status(live_server.url, secret) == 401
    finally:
        context.close()
