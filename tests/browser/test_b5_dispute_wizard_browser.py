"""B5 in Chromium at 1440×900: the dispute wizard loses nothing. One test for each loss the requirement names:
typed text survives Upload (and every step autosaves as the merchant types, kept on a reload and when moving
through the steps bar); a file chosen but not uploaded is added on "Save and review", or the step says at the
field why not and keeps the text; submitting confirms what was sent and when the bank's decision is due. The
dispute is opened as a merchant gets it: a buyer pays with 4000 0000 0000 0259 on the checkout page, the tick runs.
axe on every state shown; screenshots of the wizard after each step.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_disputes_browser import (  # noqa: F401  (disputed, evidence_pdf: fixtures)
    OWNER,
    PASSWORD,
    disputed,
    evidence_pdf,
)
from tests.support.browser import assert_accessible, log_in_page, screenshot, wait_for_htmx_idle

pytestmark = pytest.mark.browser

SAVED = re.compile(r"^Draft saved at \d{1,2}:\d{2}\s?[AP]M\.$")


def _dispute_id(live_server) -> int:
    from sqlalchemy import select

    from kassa.extensions import db
    from kassa.models import Dispute

    with live_server.app.app_context():
        dispute_id = db.session.scalar(select(Dispute.id))
        db.session.remove()
    return dispute_id


def _open(page, base: str, dispute_id: int, number: int) -> None:
    page.goto(f"{base}/disputes/{dispute_id}/counter/{number}")
    expect(page.locator("ol.steps-bar li[aria-current=step]")).to_contain_text(f"{number}.")
    wait_for_htmx_idle(page)  # htmx has wired up the autosave


def _type_and_wait_for_autosave(page, label: str, text: str) -> None:
    status = page.locator("#draft-status")
    page.get_by_label(label).fill(text)
    expect(status).to_have_text(SAVED)
    wait_for_htmx_idle(page)


def test_b5_typed_text_survives_upload_reload_and_the_steps_bar(live_server, desktop_page, disputed, evidence_pdf):  # noqa: F811
    page, base = desktop_page, disputed
    dispute_id = _dispute_id(live_server)
    log_in_page(page, base, OWNER, PASSWORD)

    _open(page, base, dispute_id, 1)
    expect(page.locator("#draft-status")).to_have_text("Your answers are saved as you type.")
    _type_and_wait_for_autosave(page, "Why is this payment legitimate?", "Ann has ordered every month since 2024.")
    page.reload()  # nothing was pressed: the autosaved draft comes back
    expect(page.get_by_label("Why is this payment legitimate?")).to_have_value(
        "Ann has ordered every month since 2024.")
    assert_accessible(page, "B5 step 1 autosaved")
    screenshot(page, "b5-wizard-step-1")

    # the steps bar saves the step before it moves: typed, then straight to step 2 without waiting
    page.get_by_label("Your communication with the customer").fill("Emails on 3 May.")
    page.locator("ol.steps-bar").get_by_role("button", name="2. Details").click()
    page.wait_for_url(re.compile(r"/counter/2$"))
    expect(page.get_by_label("Customer name")).to_have_value("Ann Reader")
    wait_for_htmx_idle(page)
    _type_and_wait_for_autosave(page, "Customer name", "Ann B. Reader")
    assert_accessible(page, "B5 step 2")
    screenshot(page, "b5-wizard-step-2")
    page.locator("ol.steps-bar").get_by_role("button", name="1. Questions").click()
    page.wait_for_url(re.compile(r"/counter/1$"))
    expect(page.get_by_label("Your communication with the customer")).to_have_value("Emails on 3 May.")

    # Upload no longer wipes the Additional information
    _open(page, base, dispute_id, 3)
    page.get_by_label("Additional information").fill("Signed delivery note attached.")
    page.get_by_label("Add a file").set_input_files(str(evidence_pdf))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("ul.files")).to_contain_text("delivery-note.pdf")
    expect(page.get_by_label("Additional information")).to_have_value("Signed delivery note attached.")
    expect(page.locator(".budget")).to_have_text("4.5 MB of 4.5 MB left · 49 of 50 pages left")
    wait_for_htmx_idle(page)
    assert_accessible(page, "B5 step 3 after Upload")
    screenshot(page, "b5-wizard-step-3-uploaded")
    page.locator("ol.steps-bar").get_by_role("button", name="2. Details").click()
    page.wait_for_url(re.compile(r"/counter/2$"))
    expect(page.get_by_label("Customer name")).to_have_value("Ann B. Reader")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_b5_a_file_chosen_is_added_on_save_and_review_or_the_field_says_why(
        live_server, desktop_page, disputed, evidence_pdf, tmp_path):  # noqa: F811
    page, base = desktop_page, disputed
    dispute_id = _dispute_id(live_server)
    gif = tmp_path / "parcel.gif"
    gif.write_bytes(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
                    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
    log_in_page(page, base, OWNER, PASSWORD)

    _open(page, base, dispute_id, 3)
    page.get_by_label("Additional information").fill("The parcel photo shows the address.")
    page.get_by_label("Add a file").set_input_files(str(gif))
    page.get_by_role("button", name="Save and review").click()
    # refused: the step says so at the field, and the text is still there
    error = page.locator("#f-file-error")
    expect(error).to_contain_text("Upload a PDF, PNG or JPEG file. “parcel.gif” is none of these")
    expect(page.locator("#wizard [role=alert]")).to_contain_text("Your text is saved, but the file was not added.")
    expect(page.get_by_label("Additional information")).to_have_value("The parcel photo shows the address.")
    expect(page.get_by_label("Add a file")).to_have_attribute("aria-invalid", "true")
    assert re.search(r"/counter/3$", page.url)
    wait_for_htmx_idle(page)
    assert_accessible(page, "B5 step 3 with a refused file")
    screenshot(page, "b5-wizard-step-3-refused-file")

    # a file that fits: chosen, not uploaded, then Save and review adds it
    page.get_by_label("Add a file").set_input_files(str(evidence_pdf))
    page.get_by_role("button", name="Save and review").click()
    page.wait_for_url(re.compile(r"/counter/4$"))
    review = page.locator("#wizard")
    expect(review).to_contain_text("delivery-note.pdf")
    expect(review).to_contain_text("The parcel photo shows the address.")
    assert_accessible(page, "B5 step 4 with the file added at save")
    screenshot(page, "b5-wizard-step-4")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_b5_submit_confirms_what_was_sent_and_when_the_decision_is_due(
        live_server, desktop_page, disputed, evidence_pdf):  # noqa: F811
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from babel.dates import format_date

    from kassa.extensions import db
    from kassa.models import Account, Dispute

    page, base = desktop_page, disputed
    dispute_id = _dispute_id(live_server)
    log_in_page(page, base, OWNER, PASSWORD)
    _open(page, base, dispute_id, 1)
    _type_and_wait_for_autosave(page, "Why is this payment legitimate?", "3-D Secure passed; known customer.")
    _open(page, base, dispute_id, 3)
    page.get_by_label("Additional information").fill("winning_evidence: signed note attached.")
    page.get_by_label("Add a file").set_input_files(str(evidence_pdf))
    page.get_by_role("button", name="Save and review").click()
    page.wait_for_url(re.compile(r"/counter/4$"))
    page.get_by_role("button", name="Submit evidence").click()
    page.wait_for_url(re.compile(r"/payments/\d+$"))

    with live_server.app.app_context():
        dispute = db.session.get(Dispute, dispute_id)
        zone = ZoneInfo(db.session.get(Account, dispute.account_id).timezone)
        due = format_date((dispute.submitted_at + timedelta(days=75)).astimezone(zone), "medium", locale="en")
        db.session.remove()
    expect(page.locator("#toasts .toast--success")).to_have_text(
        f"Evidence submitted. The bank's decision is due by {due}.")
    sent = page.locator("#card-dispute .dispute-sent")
    expect(sent).to_contain_text("Evidence submitted on")
    expect(sent).to_contain_text(f"The bank's decision is due by {due}.")
    expect(sent).to_contain_text("Answers: Why is this payment legitimate?")
    expect(sent).to_contain_text("Details: Customer name, Customer email")
    expect(sent).to_contain_text("Files: delivery-note.pdf")
    expect(page.locator("#payment-panel .pp__amount .badge").first).to_have_text("Disputed (awaiting decision)")
    assert_accessible(page, "B5 payment after submitting evidence")
    sent.evaluate("box => box.scrollIntoView({block: 'center'})")
    screenshot(page, "b5-wizard-submitted")
    assert page.js_errors == [], sorted(set(page.js_errors))
