"""The inbox: read a conversation and reply by clicking Send; a remote deletion shows after a sync."""

from __future__ import annotations

import re

import pytest

from .flows import archive, connect_identity
from .harness import check_page, expect, focused_outline

pytestmark = pytest.mark.e2e


def test_reading_a_conversation_and_replying_sends_once_even_on_a_double_click(page, stack):
    provider = stack.provider
    provider.add_thread("sam_ridge", "casey_trail", [
        "Hi! Are you still up for the ridge walk on Saturday?",
        "Yes! Start at 8 from the north car park?",
        "Perfect. Should I bring the map?",
    ], subject="Saturday ridge walk")
    identity_id = connect_identity(page, provider, "casey_trail", "Ridge persona")
    archive(page, identity_id)

    # The inbox, by keyboard: j focuses the first conversation, Enter opens it.
    page.goto("/inbox/")
    row = page.locator("tbody tr", has_text="sam_ridge")
    expect(row.get_by_text("needs reply")).to_be_visible()
    page.keyboard.press("j")
    focus = focused_outline(page)
    assert focus["tag"] == "tr" and "sam_ridge" in focus["text"], focus
    assert focus["outlineStyle"] != "none" and focus["outlineWidth"] >= 2, f"focus is not visible: {focus}"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/inbox/c/\d+/$"))
    expect(page.get_by_role("heading", name=re.compile("Saturday ridge walk"))).to_be_visible()
    bodies = page.locator("li.message .body")
    expect(bodies).to_have_count(3)
    expect(bodies.last).to_have_text("Perfect. Should I bring the map?")
    check_page(page, "conversation")

    # A double click on Send sends one message, not two.
    page.get_by_label("Reply to sam_ridge").fill("Yes please, and I will bring the thermos.")
    page.get_by_role("button", name="Send").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Sent.")
    expect(bodies).to_have_count(4)
    expect(bodies.last).to_have_text("Yes please, and I will bring the thermos.")
    page.reload()  # anything still in flight has landed by now
    expect(bodies).to_have_count(4)
    assert [(m["dest"], m["body"]) for m in provider.sent] == [
        ("sam_ridge", "Yes please, and I will bring the thermos.")]
    compose = [r for r in provider.requests if r.path in ("/api/comment", "/api/compose")]
    assert len(compose) == 1, f"the provider was asked to send {len(compose)} times"

    # The same by keyboard alone: type in the box, Tab to Send, Enter.
    page.get_by_label("Reply to sam_ridge").focus()
    page.keyboard.type("See you at 8.")
    page.keyboard.press("Tab")
    assert focused_outline(page)["text"] == "Send"
    page.keyboard.press("Enter")
    expect(bodies).to_have_count(5)
    expect(bodies.last).to_have_text("See you at 8.")
    assert [m["body"] for m in provider.sent] == ["Yes please, and I will bring the thermos.", "See you at 8."]

    # The next sync brings the sent replies back from the provider: they stay single.
    conversation_url = page.url
    archive(page, identity_id)
    page.goto(conversation_url)
    expect(bodies).to_have_count(5)

    # Answered: the inbox no longer asks for a reply.
    page.goto("/inbox/")
    expect(row.get_by_text("needs reply")).to_have_count(0)
    expect(row).to_contain_text("See you at 8.")


def test_a_message_deleted_remotely_shows_its_badge_after_a_sync(page, stack):
    provider = stack.provider
    provider.add_thread("river_jo", "dana_kayak", ["Is the river trip still on?", "It is, see you at the bridge."],
                        subject="River trip")
    regret = provider.add_message("river_jo", "dana_kayak", "Actually, ignore what I said about the money.",
                                  reply_to=provider.add_message("dana_kayak", "river_jo", "Great, how much is it?",
                                                                reply_to=None, subject="Costs"))
    identity_id = connect_identity(page, provider, "dana_kayak", "Kayak persona")
    archive(page, identity_id)

    page.goto("/inbox/")
    page.locator("tbody tr", has_text="Costs").get_by_role("link", name="river_jo").click()
    message = page.locator("li.message", has_text="ignore what I said")
    expect(message).to_be_visible()
    expect(message.locator(".badge")).to_have_count(0)
    conversation_url = page.url

    # The author deletes it on the provider; the next sync marks it, and the text stays readable here.
    provider.delete_message(regret, how="deleted")
    archive(page, identity_id)
    page.goto(conversation_url)
    message = page.locator("li.message", has_text="ignore what I said")
    expect(message.locator(".badge-deleted_by_author")).to_have_text(re.compile(r"deleted by author"))
    page.goto("/inbox/")
    expect(page.locator("tbody tr", has_text="Costs").locator(".badge-deleted_by_author")).to_be_visible()
