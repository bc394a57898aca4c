"""W3/W8 in Chromium at 1440×900: a merchant builds a segment of card payers with the payments list's filter
builder (the property change swaps the builder in place), sees the card payer and not the ACH one, exports
the segment as CSV (the export is ready in the Exports list); then builds a multi-step workflow (notify the
team, wait, email, add to the segment) in the editor (W6). axe 0 on each page; screenshots of the segment page
and the multi-step editor."""

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

SHOTS = Path(__file__).resolve().parents[2] / "shots"


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _ach_payer(live_server, email: str) -> None:
    """A bank-debit payment of another buyer, with its contact (not a card payer)."""
    with live_server.app.app_context():
        from kassa.database import write_transaction
        from kassa.extensions import db
        from kassa.models import Payment, User
        from kassa.services.crm.crm import find_or_create_contact
        from tests.factories import make_payment

        owner = db.session.scalar(db.select(User).where(User.email == email))
        payment = make_payment(owner.account_id, method="ach", email="debit@example.com")
        with write_transaction(db.session) as session:
            contact = find_or_create_contact(owner.account_id, payment.mode, "debit@example.com")
            session.get(Payment, payment.id).contact_id = contact.id
        db.session.remove()


def test_w8_segment_of_card_payers_built_in_the_builder_and_exported(live_server, browser):
    email = "owner@books.example"
    slug = bookshop_link(live_server, "Corner Books", email, PASSWORD)
    _ach_payer(live_server, email)
    context = new_context(browser, viewport=DESKTOP, locale="en-US")
    try:
        buyer = context.new_page()
        pay_in_browser(buyer, live_server.url, slug, "reader@example.com", names=("Ann", "Reader"))
        page = context.new_page()
        log_in_page(page, live_server.url, email, PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
        page.get_by_role("link", name="Segments").click()
        expect(page.get_by_text("No segments yet")).to_be_visible()
        assert_accessible(page, "segments, empty")
        page.get_by_role("link", name="Create segment").first.click()
        page.get_by_label("Name").fill("Card payers")
        page.get_by_label("Property").select_option(label="Payment method")
        card = page.get_by_role("checkbox", name="Card", exact=True)
        expect(card).to_be_visible()  # the builder came back with the method's values
        card.check()
        assert_accessible(page, "segment editor")
        page.get_by_role("button", name="Save segment").click()
        expect(page.get_by_role("heading", name="Card payers")).to_be_visible()
        expect(page.get_by_text("1 contact", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Ann Reader")).to_be_visible()
        expect(page.get_by_text("debit@example.com")).to_have_count(0)
        expect(page.get_by_text("at least one payment", exact=False)).to_be_visible()
        assert_accessible(page, "segment page")
        _keep(screenshot(page, "w8-segment-desktop"))

        page.get_by_label("File format").select_option("csv")
        page.get_by_role("button", name="Export contacts").click()
        expect(page.get_by_role("heading", name="Exports")).to_be_visible()
        with live_server.app.app_context():
            from kassa.extensions import db

            run_outbox()
            db.session.remove()
        page.reload()
        expect(page.get_by_role("link", name="Download Card payers")).to_be_visible()
        with live_server.app.app_context():
            from kassa.extensions import db
            from kassa.models import Export

            export = db.session.scalars(db.select(Export)).one()
            assert (export.kind, export.file_format, export.status, export.rows_total) == ("segment", "csv", "done", 1)
            db.session.remove()

        # W6: a multi-step workflow in the editor.
        page.goto(f"{live_server.url}/workflows/new")
        page.get_by_label("Name").fill("Card payer follow-up")
        page.locator("#f-action-3").check()  # Notify the team
        page.locator("#f-message").fill("{name} paid {amount}")
        page.get_by_role("button", name="+ Add a step").click()
        page.locator("#f-s1_action-4").check()  # Wait
        page.locator("#f-s1_wait_amount").fill("2")
        page.get_by_role("button", name="+ Add a step").click()
        page.locator("#f-s2_action-1").check()  # Email
        page.locator("#f-s2_subject").fill("Thanks, {first_name}")
        page.locator("#f-s2_body").fill("See you soon at {business_name}.")
        page.get_by_role("button", name="+ Add a step").click()
        page.locator("#f-s3_action-5").check()  # Add to a segment
        page.locator("#f-s3_target_segment").select_option(label="Card payers")
        expect(page.get_by_text("Step 4", exact=True)).to_be_visible()
        expect(page.locator("#f-s2_task_title")).to_be_hidden()  # only the chosen action's fields show
        assert_accessible(page, "multi-step workflow editor")
        _keep(screenshot(page, "w6-workflow-editor-steps-desktop"))
        page.get_by_role("button", name="Save workflow").click()
        expect(page.get_by_role("heading", name="Card payer follow-up")).to_be_visible()
        expect(page.get_by_text("Wait 2 days")).to_be_visible()
        expect(page.get_by_text("Add to segment Card payers")).to_be_visible()
        assert_accessible(page, "multi-step workflow page")
    finally:
        context.close()
