"""V1 in Chromium at 1440×900: a merchant writes an invoice in the editor (a second line added with htmx, the
page around it kept), saves the draft, finalizes it (it gets INV-000001) and voids it with a reason in the
confirmation dialog. axe on the list, the editor and the invoice's page; screenshots of the editor."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    log_in_page,
    new_context,
    screenshot,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/invoices")


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_v1_merchant_writes_finalizes_and_voids_an_invoice(live_server, browser):
    with live_server.app.app_context():
        owner = make_merchant(company="Fietsenmaker", currency="EUR", country="NL")
        email = owner.email
        db.session.remove()
    base = live_server.url
    with new_context(browser, viewport=DESKTOP) as context:
        page = context.new_page()
        log_in_page(page, base, email, PASSWORD)
        page.goto(f"{base}/invoices/")
        expect(page.get_by_role("heading", name="No invoices yet")).to_be_visible()
        assert_accessible(page, "invoice list (empty)")
        page.get_by_role("link", name="Create invoice").first.click()
        page.get_by_label("Email").fill("anna@example.com")
        page.get_by_label(re.compile(r"^Name")).fill("Anna de Vries")
        page.get_by_label(re.compile(r"^Company")).fill("Fietsen BV")
        page.locator("#f-lines-0-description").fill("Bicycle repair")
        page.locator("#f-lines-0-quantity").fill("2")
        page.locator("#f-lines-0-unit_price").fill("45.00")
        page.locator("#f-lines-0-discount_type").select_option("percent")
        page.locator("#f-lines-0-discount_value").fill("10")
        page.get_by_role("button", name="Add line").click()
        wait_for_htmx_idle(page)
        expect(page.locator("#f-lines-1-description")).to_be_visible()
        expect(page.locator("#f-lines-0-description")).to_have_value("Bicycle repair")  # kept
        page.locator("#f-lines-1-description").fill("Parts")
        page.locator("#f-lines-1-unit_price").fill("12.50")
        page.locator("#f-notes").fill("Thanks for your business.")
        assert_accessible(page, "invoice editor")
        _keep(screenshot(page, "v1-invoice-editor-1440"))
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("heading", name=re.compile(r"Invoice Draft"))).to_be_visible()
        page.get_by_role("button", name="Finalize").click()
        expect(page.get_by_role("heading", name=re.compile(r"Invoice INV-000001"))).to_be_visible()
        expect(page.get_by_text("€93.50").first).to_be_visible()
        assert_accessible(page, "invoice page")
        page.get_by_role("link", name="Void invoice").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label(re.compile(r"^Reason")).fill("Sent to the wrong customer")
        dialog.get_by_role("button", name="Void invoice").click()
        expect(page.get_by_text("Sent to the wrong customer")).to_be_visible()
        page.goto(f"{base}/invoices/")
        expect(page.get_by_role("link", name="INV-000001")).to_be_visible()
        assert_accessible(page, "invoice list")
        _keep(screenshot(page, "v1-invoice-list-1440"))
