"""Search: a synced message is found by a word in it, and by meaning (the fake model's embeddings)."""

from __future__ import annotations

import re

import pytest

from .flows import ARCHIVE_TIMEOUT, archive, connect_identity
from .harness import check_page, expect

pytestmark = pytest.mark.e2e

BREAKDOWN = "My car broke down near the pass, could you pick me up tomorrow?"


def search(page, words: str):
    box = page.get_by_label("Search", exact=True)
    box.fill(words)
    box.press("Enter")  # the keyboard way; results replace in place
    expect(page).to_have_url(re.compile(r"[?&]q=" + r"(\+|%20)".join(map(re.escape, words.split()))))


def test_search_finds_a_message_by_a_word_and_by_meaning(page, stack):
    provider = stack.provider
    provider.add_thread("mechanic_max", "erin_roads", [BREAKDOWN, "Sure, where exactly are you?"],
                        subject="Stuck")
    provider.add_thread("baker_bea", "erin_roads", ["The sourdough class moved to Thursday evening."],
                        subject="Bread")
    identity_id = connect_identity(page, provider, "erin_roads", "Roads persona")
    archive(page, identity_id)

    page.goto("/search/")
    messages = page.locator("#search-results section", has=page.get_by_role("heading", name=re.compile("Messages")))
    # Indexing (words and embeddings) runs in the worker after the sync: wait for the newest message.
    deadline_steps = ARCHIVE_TIMEOUT // 500
    for _ in range(deadline_steps):
        search(page, "broke")
        if messages.get_by_text("broke", exact=False).count():
            break
        page.wait_for_timeout(500)
    hit = messages.locator("li", has_text="pick me up")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("broke")  # the word is highlighted
    expect(messages.locator("li").first).to_contain_text("pick me up")
    check_page(page, "search")

    # By meaning: no word of the query is in the message ("vehicle" ~ "car" for the fake model).
    for _ in range(deadline_steps):
        search(page, "vehicle trouble")
        if messages.locator("li", has_text="pick me up").count():
            break
        page.wait_for_timeout(500)
    hit = messages.locator("li", has_text="pick me up")
    expect(hit).to_have_count(1)
    expect(hit.locator(".badge", has_text="meaning")).to_be_visible()
    expect(messages.locator("li").first).to_contain_text("pick me up")  # the nearest comes first

    # The result leads into the conversation, at the message.
    hit.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/inbox/c/\d+/"))
    expect(page.locator("li.message .body", has_text=BREAKDOWN)).to_be_visible()
