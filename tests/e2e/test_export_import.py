"""No API key: an identity from a data export, its import watched live, an imported chat in the inbox and search."""

from __future__ import annotations

import re

import pytest

from tests.fakes.reddit_export import chat, message, write_export

from .flows import ARCHIVE_TIMEOUT
from .harness import check_page, expect

pytestmark = pytest.mark.e2e

CHAT_LINE = "The kayak rental opens at seven,\nbring the waterproof bag"
FILLER = 30_000  # messages: enough rows that the progress can be watched


def test_an_archive_only_identity_from_an_export_with_its_chat_in_the_inbox_and_search(page, stack, tmp_path):
    rows = (message(f"f{i:x}", "nora_export" if i % 2 else f"pen{i % 50}", f"pen{i % 50}" if i % 2 else "nora_export",
                    f"filler message {i}\nsecond line", thread="" if i < 50 else f"f{i % 50:x}", minutes=i)
            for i in range(FILLER))
    # The chat is the newest conversation: first in the inbox.
    chats = [chat("ev1", "river_rita", CHAT_LINE, channel="kayak", minutes=FILLER + 1),
             chat("ev2", "nora_export", "Perfect, see you there", channel="kayak", minutes=FILLER + 2),
             chat("ev3", "someone", "hi all", channel="club", kind="group", minutes=FILLER + 3)]
    export = write_export(tmp_path / "reddit_export.zip", messages=rows, chats=chats)

    page.goto("/identities/new")
    page.get_by_role("link", name="Start from your data export").click()
    expect(page.get_by_role("heading", name="An identity from your data export")).to_be_visible()
    check_page(page)
    page.get_by_label("Data export (.zip)").set_input_files(str(export))
    page.get_by_role("button", name="Read the export").click()

    # The username read from the export, shown for the user to confirm.
    expect(page.get_by_label("Your username")).to_have_value("nora_export")
    page.get_by_label("Display name").fill("Nora archive")
    page.get_by_role("button", name="Create the identity and import").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+$"))
    identity_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#archive-only")).to_contain_text("cannot sync or send until you connect it")

    # Live progress on the identity page, then the summary per file.
    panel = page.locator(f"#identity-export-{identity_id}")
    expect(panel.locator('[data-status="importing"], [data-status="scanning"], [data-status="queued"]')
           ).to_be_visible()
    expect(panel.locator('[data-status="done"]')).to_be_visible(timeout=ARCHIVE_TIMEOUT * 3)
    expect(panel).to_contain_text(f"{FILLER + 2} new")
    expect(panel).to_contain_text("1 chat (1 line) not imported: group and community chats are not imported yet.")
    page.goto(f"/inbox/identity/{identity_id}/export/")  # the panel on its own page, for the screenshot
    expect(page.locator('[data-status="done"]')).to_contain_text("chat_history.csv")
    check_page(page, "identity_export")

    page.goto("/jobs/?job_type=ingest.import_export")  # the search indexing jobs it queued come after it
    row = page.locator("tr", has=page.get_by_role("cell", name="ingest.import_export", exact=True))
    expect(row.locator(".badge")).to_have_text("Done")
    expect(row.get_by_role("progressbar")).to_have_attribute("value", "100")

    # The chat is a conversation with the other person, line breaks kept.
    page.goto("/inbox/")
    page.get_by_role("link", name=re.compile("river_rita")).first.click()
    expect(page.locator("li.message .body").first).to_contain_text("bring the waterproof bag")
    expect(page.get_by_text("connect it to sync or send")).to_be_visible()

    # And search finds it (indexing runs in the worker after the import).
    page.goto("/search/")
    box = page.get_by_label("Search", exact=True)
    results = page.locator("#search-results")
    for _ in range(ARCHIVE_TIMEOUT // 500):
        box.fill("kayak rental")
        box.press("Enter")
        if results.get_by_text("kayak rental", exact=False).count():
            break
        page.wait_for_timeout(500)
    expect(results.get_by_text("kayak rental", exact=False).first).to_be_visible()
