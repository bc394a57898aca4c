"""P8 (issue 17): the revenue dashboard in Chromium at 1440×900 and 390×844 — the figures, the server-drawn SVG
charts (no chart library in the browser) each with its table, and axe with no violation."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, log_in_page, screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SHOTS = Path(__file__).resolve().parents[2] / "shots"


@pytest.fixture
def shop(live_server):
    """A merchant with sixty days of payments, a dispute, subscribers and visits to two links."""
    from kassa.clock import now
    from kassa.extensions import db
    from tests.factories import make_merchant
    from tests.support.checkout import start_checkout, submit_checkout
    from tests.support.checkout_flow import item, make_link
    from tests.support.payments import bulk_payments

    app = live_server.app
    with app.app_context():
        owner = make_merchant(company="Harbour Books", email="owner@harbour.example", password=PASSWORD)
        bulk_payments(owner.account_id, [
            {"created_at": now() - timedelta(days=day, hours=3), "amount_minor": 1_500 + (day * 731) % 4_000,
             "net_settlement_minor": 1_400 + (day * 731) % 4_000, "fee_settlement_minor": 100,
             "refund_reserved_minor": 500 if day % 9 == 0 else 0, "refunded_minor": 500 if day % 9 == 0 else 0}
            for day in range(1, 60) for _ in range(1 + day % 3)])
        books = make_link(owner, name="Book club", items=[item("Book club", "12.00", frequency="monthly",
                                                                term_type="auto_renew")])
        reading = make_link(owner, name="Reading night", items=[item("Ticket", "8.00")])
        client = app.test_client()

        def pay(slug: str, card: str = "4242424242424242") -> int:
            path = start_checkout(client, slug)
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
            return submit_checkout(client, path, card_number=card, csrf_token=token.group(1)).status_code

        assert [pay(books.slug), pay(books.slug), pay(reading.slug)] == [303, 303, 303]
        assert pay(reading.slug, "4000000000000002") == 422  # declined: tried to pay, not paid
        start_checkout(client, reading.slug)  # a visit only
        db.session.remove()
    return owner


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_p8_dashboard_figures_svg_charts_and_tables_pass_axe(live_server, desktop_page, phone_page, shop, size):
    page = desktop_page if size == "desktop" else phone_page
    base = live_server.url
    log_in_page(page, base, "owner@harbour.example", PASSWORD)
    page.goto(f"{base}/reports/?days=30")
    expect(page.locator("#p8-stats")).to_be_visible()
    expect(page.get_by_text("Net volume")).to_be_visible()
    # Both charts are SVG drawn by the server, each named by its caption.
    volume = page.get_by_role("img", name="Gross volume per day")
    expect(volume).to_be_visible()
    expect(volume.locator("rect")).to_have_count(30)
    expect(volume.locator("polyline.chart__before")).to_have_count(1)  # the period before, for comparison
    funnel = page.get_by_role("img", name="Per payment link")
    expect(funnel.locator("rect")).to_have_count(6)  # two links, three bars each
    table = page.locator("#p8-conversion")
    expect(table.get_by_role("row", name="Reading night")).to_contain_text("3")  # visits
    expect(table.get_by_role("row", name="Book club")).to_contain_text("100%")
    assert page.evaluate("typeof Chart === 'undefined' && !document.querySelector('canvas')")
    page.get_by_text("Show as a table").click()
    expect(page.get_by_role("table", name="Gross volume per day")).to_be_visible()
    # Nothing wider than the screen: the page doesn't scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page, f"revenue dashboard ({size})")
    assert not page.js_errors, page.js_errors
    path = screenshot(page, f"p8-dashboard-{size}")
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
