"""Backfill: the whole archive of an identity comes in, with live progress, and its jobs end at 100 %."""

from __future__ import annotations

import re

import pytest

from .flows import ARCHIVE_TIMEOUT, connect_identity
from .harness import check_page, expect

pytestmark = pytest.mark.e2e

THREADS, PER_THREAD = 120, 4  # 480 messages: several pages per folder


def test_a_backfill_shows_live_progress_and_reaches_100_percent(page, stack):
    provider = stack.provider
    provider.bulk_threads("pat_archive", threads=THREADS, per_thread=PER_THREAD, counterparts=40)
    identity_id = connect_identity(page, provider, "pat_archive", "Archive persona")
    provider.slow(r"^/message/", seconds=1.0)  # slow pages, so the progress can be watched

    panel = page.locator(f"#identity-sync-{identity_id}")
    panel.get_by_role("button", name="Backfill").click()
    # Live: the panel polls and shows pages and messages growing while the jobs run.
    expect(panel.get_by_text("backfilling").first).to_be_visible(timeout=ARCHIVE_TIMEOUT)
    expect(panel.get_by_text(re.compile(r"[1-9]\d* pages?, [1-9]\d* messages?")).first).to_be_visible()
    expect(panel.locator("ul.plain")).to_have_count(0, timeout=ARCHIVE_TIMEOUT)
    rows = panel.locator("tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():  # both folders walked to the end
        expect(row.locator("td").nth(2)).not_to_have_text("never")

    page.goto("/jobs/")
    backfills = page.locator("tr", has=page.get_by_role("cell", name="ingest.backfill_messages", exact=True))
    expect(backfills).to_have_count(2)
    for row in backfills.all():
        expect(row.locator(".badge")).to_have_text("Done")
        expect(row.get_by_role("progressbar")).to_have_attribute("value", "100")
        expect(row).to_contain_text("100%")
    folders = {re.search(r"folder: (\w+)", text).group(1) for text in backfills.all_inner_texts()}
    assert folders == {"inbox", "sent"}
    check_page(page, "jobs")

    # Every conversation is in the inbox, newest activity first.
    page.goto("/inbox/")
    newest_peer = f"pat_archive_peer{(THREADS - 1) % 40}"
    expect(page.locator("tbody tr").first).to_contain_text(newest_peer)
    check_page(page, "inbox")
    per_page = page.locator("tbody tr").count()
    pages = int(re.search(r"Page 1 of (\d+)", page.locator(".pager").inner_text()).group(1))
    page.goto(f"/inbox/?page={pages}")
    assert (pages - 1) * per_page + page.locator("tbody tr").count() == THREADS

    # A conversation holds its whole thread, in order.
    page.locator("tbody tr").last.locator("a[data-key=Enter]").click()  # the row's own link (it also has Reply)
    bodies = page.locator("li.message .body")
    expect(bodies).to_have_count(PER_THREAD)
    expect(bodies.first).to_contain_text("message 1 of thread")
    expect(bodies.last).to_contain_text(f"message {PER_THREAD} of thread")
