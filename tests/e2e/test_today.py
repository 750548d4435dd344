"""A day in the life, part A: Today lists a new reply and a scored lead; snooze one conversation; read/unread by keyboard."""

from __future__ import annotations

import re

import pytest

from .flows import ARCHIVE_TIMEOUT, archive, connect_identity
from .harness import check_page, expect, focused_outline

pytestmark = pytest.mark.e2e


def _reload_until(page, locator, text: str, timeout_ms: int = ARCHIVE_TIMEOUT):
    """Reload a page that does not poll until `locator` contains `text` (a background job's result)."""
    for _ in range(timeout_ms // 500):
        if locator.count() and text in locator.first.inner_text():
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator.first).to_contain_text(text)


def test_today_lists_replies_and_a_scored_lead_then_snooze_and_read_unread_by_keyboard(page, stack,
                                                                                      allow_console_error):
    provider, llm = stack.provider, stack.llm
    provider.add_thread("mia_peaks", "lou_guide", ["Hi! Is the Saturday hike still on?"], subject="Saturday hike")
    provider.add_thread("ben_falls", "lou_guide", ["Could you send me the route?"], subject="Route")
    provider.add_post("dolomites", "nora_trek", title="Looking for a guide for the Alta Via 1",
                      selftext="Two of us, late June, moderate pace.")
    identity_id = connect_identity(page, provider, "lou_guide", "Guide persona")
    archive(page, identity_id)

    # A watch finds the post and scores it in the background, without a click on Score.
    llm.reply_json({"score": 91, "reasons": ["Wants a guide for exactly this route", "Dates are set"]})
    page.goto("/leads/watches/")
    form = page.locator("section", has=page.get_by_role("heading", name="New watch"))
    form.get_by_label("Location").fill("dolomites")
    expect(form.get_by_label("Score new leads automatically")).to_be_checked()  # on by default
    form.get_by_role("button", name="Add watch").click()
    page.locator("tr", has_text="dolomites").get_by_role("button", name="Run now").click()

    # Today: both replies waiting (oldest first), the lead with its score and top reason.
    page.goto("/")
    leads = page.locator("#new-leads")
    _reload_until(page, leads, "91")
    expect(leads).to_contain_text("Looking for a guide for the Alta Via 1")
    expect(leads).to_contain_text("Wants a guide for exactly this route")
    replies = page.locator("#replies")
    expect(replies.get_by_role("link", name="mia_peaks")).to_be_visible()
    expect(replies.get_by_role("link", name="ben_falls")).to_be_visible()
    names = replies.locator("li > a").all_inner_texts()
    assert names == ["mia_peaks", "ben_falls"], names  # oldest first
    expect(page.get_by_role("navigation", name="Main").locator(".nav-count")).to_have_text("2")
    check_page(page, "today")

    # The inbox by keyboard: j to the first row, u marks it read, u again unread.
    page.goto("/inbox/")
    row = page.locator("tbody tr", has_text="ben_falls")  # the newest activity is first
    expect(row.locator(".badge-unread")).to_be_visible()
    page.keyboard.press("j")
    focus = focused_outline(page)
    assert focus["tag"] == "tr" and "ben_falls" in focus["text"], focus
    page.keyboard.press("u")
    expect(page.get_by_role("status")).to_contain_text("Marked read")
    expect(row.locator(".badge-unread")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Main").locator(".nav-count")).to_have_text("1")
    page.keyboard.press("j")
    page.keyboard.press("u")
    expect(page.get_by_role("status")).to_contain_text("Marked unread")
    expect(row.locator(".badge-unread")).to_be_visible()
    check_page(page, "inbox")

    # Snooze mia's conversation from its page, until they reply: it leaves the inbox and Today.
    page.locator("tbody tr", has_text="mia_peaks").get_by_role("link", name="mia_peaks").click()
    expect(page).to_have_url(re.compile(r"/inbox/c/\d+/$"))
    state = page.locator("#conversation-state")
    state.get_by_role("button", name="Until they reply").click()
    expect(page.get_by_role("status")).to_contain_text("Snoozed until they reply")
    expect(page.locator("tbody tr", has_text="mia_peaks")).to_have_count(0)
    page.get_by_label("State").select_option(label="Snoozed")
    expect(page.locator("tbody tr", has_text="mia_peaks")).to_contain_text("snoozed until they reply")
    page.goto("/")
    expect(page.locator("#replies").get_by_role("link", name="mia_peaks")).to_have_count(0)
    expect(page.locator("#replies").get_by_role("link", name="ben_falls")).to_be_visible()

    # A bad snooze date is refused with the reason (a 400 page), nothing changes.
    allow_console_error(r"status of 400 \(Bad Request\) .*/inbox/c/\d+/snooze")
    page.locator("#replies").get_by_role("link", name="ben_falls").click()
    state = page.locator("#conversation-state")
    state.get_by_label("Until").fill("2020-01-01T10:00")
    state.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Choose a time in the future")
    expect(state).to_contain_text("Snooze")  # still not snoozed: the choices are still offered
    expect(state.get_by_role("button", name="Until they reply")).to_be_visible()
