"""Foundation in a real browser: sign-up, invitations, and axe on every page at both viewports."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE, assert_accessible, emailed_link, screenshot, sign_up

pytestmark = pytest.mark.browser


def test_sign_up_lands_on_the_dashboard(live_server, desktop_page):
    page = desktop_page
    sign_up(page, live_server)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Welcome, Fiona Owner")
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Payments").is_visible()
    # The test-data switch is a real switch and remembers its state per user.
    switch = page.get_by_role("switch", name="View test data")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    # The switch posts a plain form; the page that comes back shows it off. (Waiting for a load state here
    # could return at once, for the page that was already loaded.)
    expect(page.get_by_role("switch", name="View test data")).to_have_attribute("aria-checked", "false")
    page.reload()
    assert page.get_by_role("switch", name="View test data").get_attribute("aria-checked") == "false"
    screenshot(page, "dashboard-desktop")
    assert page.js_errors == []


def test_invite_flow_end_to_end(live_server, desktop_page, new_page):
    page = desktop_page
    base = live_server.url
    sign_up(page, live_server)
    page.goto(f"{base}/settings/users")
    page.get_by_label("Email").fill("colleague@bikes.example")
    page.get_by_label("Role", exact=True).select_option("payments_manager")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to colleague@bikes.example").wait_for()
    assert page.get_by_role("cell", name="colleague@bikes.example", exact=True).is_visible()
    screenshot(page, "settings-users-desktop")

    # No SMTP in this run: the email is kept in the email log, with its link hidden there (H10); the
    # invitee's copy has it.
    link = emailed_link(live_server, "invitation", "/invitations/")
    page.goto(f"{base}/settings/emails")
    assert page.get_by_text("Stored").first.is_visible()

    colleague = new_page(DESKTOP)
    colleague.goto(base + link)
    colleague.get_by_label("Your name").fill("Cole League")
    colleague.get_by_label("Password").fill("another good password")
    colleague.get_by_role("button", name="Join").click()
    colleague.wait_for_url(f"{base}/")
    assert "Payments manager" in colleague.locator("main").inner_text()
    # A Payments manager cannot open the Users page: the 403 page names the permission.
    colleague.goto(f"{base}/settings/users")
    assert "Manage users" in colleague.locator("main").inner_text()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_axe_reports_no_violations_on_foundation_pages(live_server, new_page, viewport):
    page = new_page(viewport)
    base = live_server.url
    for path in ["/login", "/signup", "/forgot-password"]:
        page.goto(base + path)
        assert_accessible(page, path)
    # The error state of a form is checked too.
    page.goto(base + "/signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".error-summary")).to_be_visible()  # only the page that comes back has it …
    page.wait_for_load_state()  # … and axe checks it once it has loaded
    assert_accessible(page, "/signup with errors")

    sign_up(page, live_server)
    for path in ["/", "/settings/profile", "/settings/account", "/settings/branding", "/settings/notifications",
                 "/settings/payments", "/settings/users", "/settings/emails", "/section/payments"]:
        page.goto(base + path)
        assert_accessible(page, path)
    page.goto(base + "/settings/users")
    name = "phone" if viewport == PHONE else "desktop"
    screenshot(page, f"settings-users-{name}")
    page.goto(base + "/settings/branding")
    screenshot(page, f"settings-branding-{name}")
    assert page.js_errors == []


def test_remove_user_dialog_is_accessible_and_confirms(live_server, desktop_page):
    page = desktop_page
    base = live_server.url
    sign_up(page, live_server)
    page.goto(f"{base}/settings/users")
    page.get_by_label("Email").fill("temp@bikes.example")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent").wait_for()
    # Create a second member directly so there is someone to remove.
    with live_server.app.app_context():
        from kassa.models import Role, User
        from tests.factories import make_user

        owner = User.query.filter_by(email="owner@bikes.example").one()
        make_user(owner.account_id, Role.MEMBER, email="member@bikes.example")
    page.reload()
    page.get_by_role("link", name="Remove member@bikes.example").click()
    dialog = page.get_by_role("dialog", name="Remove member@bikes.example?")
    dialog.wait_for()
    assert_accessible(page, "remove user dialog")
    screenshot(page, "remove-user-dialog")
    dialog.get_by_role("button", name="Remove user").click()
    page.get_by_text("member@bikes.example can no longer log in").wait_for()
    assert page.get_by_role("cell", name="member@bikes.example", exact=True).count() == 0
