"""W1/W7 in Chromium at 1440×900: a merchant builds "welcome email for payments through link X" in the
workflow editor (a field error first), turns it on after the confirmation, a buyer pays through the link, and
after the tick the workflow's history says "Email sent" and the Email log holds the welcome email. axe on
each page; screenshots of the editor and the history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support.app import run_outbox
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    bookshop_link,
    log_in_page,
    new_context,
    pay_in_browser,
    screenshot,
)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/workflows")


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_w1_build_a_welcome_email_workflow_and_see_it_sent_after_a_test_payment(live_server, browser):
    email = "owner@books.example"
    slug = bookshop_link(live_server, "Corner Books", email, PASSWORD)
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
        expect(page.get_by_text("No workflows yet")).to_be_visible()
        assert_accessible(page, "workflows, empty")
        page.get_by_role("link", name="Create workflow").first.click()
        page.get_by_label("Name").fill("Welcome buyers")
        page.get_by_label("Payment link").select_option(index=1)
        page.get_by_label("Subject").fill("Welcome, {first_name}!")
        page.get_by_label("Message").fill("Thank you for {amount}. Enjoy {link_name}! {nickname}")
        page.get_by_role("button", name="Save workflow").click()
        expect(page.locator("#f-body-error")).to_contain_text("{nickname}")
        assert_accessible(page, "workflow editor with an error")
        page.get_by_label("Message").fill("Thank you for {amount}. Enjoy {link_name}!")
        _keep(screenshot(page, "w1-workflow-editor-desktop"))
        page.get_by_role("button", name="Save workflow").click()
        expect(page.get_by_role("heading", name="Welcome buyers")).to_be_visible()
        page.get_by_role("link", name="Turn on").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Turn on").click()
        expect(page.get_by_text("Workflow Welcome buyers is on.")).to_be_visible()

        buyer = context.new_page()
        pay_in_browser(buyer, live_server.url, slug, "reader@example.com", names=("Ann", "Reader"))
        with live_server.app.app_context():
            from kassa.extensions import db
            from kassa.services.platform.ticks import run_tick

            run_outbox()
            run_tick()
            run_outbox()
            db.session.remove()
        page.reload()
        expect(page.get_by_text("Email sent")).to_be_visible()
        expect(page.get_by_text("Payment link is Reading club")).to_be_visible()
        assert page.evaluate("document.querySelector('#mainnav').getBoundingClientRect().height") < 60  # one row
        expect(page.get_by_role("link", name="reader@example.com")).to_be_visible()
        assert_accessible(page, "workflow history")
        _keep(screenshot(page, "w7-workflow-history-desktop"))
        page.goto(f"{live_server.url}/settings/emails")
        expect(page.get_by_text("Welcome, Ann!")).to_be_visible()
    finally:
        context.close()
