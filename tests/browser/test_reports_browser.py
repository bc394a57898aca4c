"""Exports, reports and payouts in Chromium at 1440×900 (X1–X3, O1): filter the payments index, export the
view to XLSX, watch the progress, download the file and compare it with the index; axe on every page."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import openpyxl
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.support.browser import assert_accessible, htmx_swap, log_in_page, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(live_server):
    """A merchant with 12 payments (8 succeeded, 4 failed) and one payout of three of them."""
    from kassa.clock import now
    from kassa.database import write_transaction
    from kassa.extensions import db
    from kassa.models import Account, Payment
    from kassa.services.money import ledger
    from kassa.services.payouts.payouts import create_payout
    from tests.factories import make_merchant, make_payment

    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email="owner@harbour.example", password=PASSWORD)
        for i in range(12):
            make_payment(owner.account_id, amount_minor=1500 + 250 * i, status="failed" if i % 3 == 0 else "succeeded",
                         email=f"reader{i:02d}@example.com", created_at=now() - timedelta(hours=i + 1),
                         net_settlement_minor=1400 + 250 * i, fee_settlement_minor=100)
        with write_transaction(db.session):
            for payment in db.session.scalars(select(Payment).where(Payment.status == "succeeded").limit(3)):
                ledger.book_charge(payment)
        create_payout(db.session.get(Account, owner.account_id), "test", date.today() + timedelta(days=7))
        db.session.remove()
    return owner


def _log_in(page, base: str) -> None:
    log_in_page(page, base, "owner@harbour.example", PASSWORD)


def _run_worker(app) -> None:
    from kassa.extensions import db
    from tests.support.app import run_outbox

    with app.app_context():
        run_outbox()
        db.session.remove()


def test_x2_x3_export_the_filtered_view_to_xlsx_and_compare_with_the_index(live_server, desktop_page, shop):
    page, base = desktop_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/payments/?status=succeeded&sort=amount_desc")
    rows = page.locator("table.table--payments tbody tr")
    expect(rows).to_have_count(8)
    shown = [re.match(r"\$[\d,.]+", text.strip()).group(0) for text in rows.locator("td, th").filter(
        has_text=re.compile(r"^\$")).all_inner_texts()]

    with htmx_swap(page):  # the export dialog comes over htmx
        page.get_by_role("link", name="Export", exact=True).click()
    dialog = page.get_by_role("dialog", name="Export payments")
    expect(dialog).to_be_visible()
    assert_accessible(page, "export dialog")
    screenshot(page, "export-dialog")
    dialog.get_by_label("File format").select_option("xlsx")
    dialog.get_by_label("Name").fill("Succeeded, biggest first")
    dialog.get_by_role("button", name="Export", exact=True).click()

    page.wait_for_url(re.compile(r"/exports/\?started=1"))
    expect(page.locator("progress")).to_have_count(1)  # queued: a progress bar while the worker runs
    assert_accessible(page, "exports page, in progress")
    screenshot(page, "exports-progress")
    _run_worker(live_server.app)
    # The page polls: the row turns Ready with a download button, without a reload.
    download_button = page.get_by_role("link", name=re.compile(r"^Download"))
    expect(download_button).to_be_visible()
    expect(page.locator(".bell__count")).to_contain_text("1")
    assert_accessible(page, "exports page, ready")
    screenshot(page, "exports-ready")

    with page.expect_download() as info:
        download_button.click()
    data = open(info.value.path(), "rb").read()  # noqa: SIM115 - the browser's temporary file
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    assert len(values) - 1 == 8  # exactly the rows of the view, not a page, not everything
    amounts = [row[header.index("Gross amount")] for row in values[1:]]
    assert amounts == sorted(amounts, reverse=True)
    assert [f"${a:,.2f}" for a in amounts] == shown
    assert {row[header.index("Status")] for row in values[1:]} == {"Succeeded"}


def test_o1_x1_reports_payouts_and_notifications_pages_are_accessible(live_server, desktop_page, shop):
    page, base = desktop_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/reports/")
    expect(page.get_by_role("heading", name="Balance")).to_be_visible()
    assert_accessible(page, "reports")
    screenshot(page, "reports")

    page.get_by_label(re.compile("^Balance / payment information")).check()
    page.get_by_label("File format").select_option("csv")
    page.get_by_role("button", name="Build report").click()
    page.wait_for_url(re.compile(r"/exports/"))
    expect(page.locator("tbody tr")).to_have_count(1)

    page.goto(f"{base}/payouts/")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_accessible(page, "payouts")
    screenshot(page, "payouts")
    page.locator("tbody tr a").first.click()
    expect(page.locator("tfoot")).to_contain_text("Total")
    assert_accessible(page, "payout detail")
    screenshot(page, "payout-detail")

    _run_worker(live_server.app)
    page.goto(f"{base}/exports/notifications")
    expect(page.locator(".notifications li")).to_have_count(1)
    assert_accessible(page, "notifications")
    assert page.js_errors == []


def test_p8_choose_a_period_by_its_dates_and_read_the_dashboard(live_server, desktop_page, shop):
    """P8: a period typed as two dates replaces the 7/30/90-day choice, keeps its dates on the page, and a wrong
    one is named at its field; the dashboard's disputes, subscriptions and checkouts per link are there."""
    page, base = desktop_page, live_server.url
    _log_in(page, base)
    page.goto(f"{base}/reports/")
    today = date.today()
    page.locator("#period-start").fill((today - timedelta(days=2)).isoformat())
    page.locator("#period-end").fill((today - timedelta(days=5)).isoformat())
    page.get_by_role("button", name="Show this period").click()
    expect(page.locator("#period-end")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Choose an end date on or after the start date.").first).to_be_visible()
    page.locator("#period-end").fill(today.isoformat())
    page.get_by_role("button", name="Show this period").click()
    page.wait_for_url(re.compile(r"start=.*end="))
    expect(page.locator("#period-start")).to_have_value((today - timedelta(days=2)).isoformat())
    expect(page.locator("#p8-stats")).to_contain_text("Monthly recurring revenue")
    expect(page.locator("#p8-stats")).to_contain_text("Dispute win rate")
    assert_accessible(page, "reports with a chosen period")
    screenshot(page, "reports-p8-period")
