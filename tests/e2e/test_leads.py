"""Leads: from browsing a location to a sent intro, and a person on the do-not-contact list who cannot be messaged."""

from __future__ import annotations

import re

import pytest

from .flows import archive, browse, connect_identity, set_voice, wait_for_job_badge
from .harness import check_page, expect, focused_outline

pytestmark = pytest.mark.e2e

AGENT_TIMEOUT = 30_000  # ms: a queued model job through the real worker


def test_browse_save_a_lead_analyse_its_author_and_send_an_edited_intro_in_the_identity_voice(page, stack):
    provider, llm = stack.provider, stack.llm
    provider.add_user("trail_bob", bio="Weekend hiker based in Chamonix.", link_karma=120, comment_karma=45)
    provider.add_post("alpinehiking", "trail_bob", title="Looking for a hiking partner around Chamonix",
                      selftext="Planning day hikes in July, moderate pace, would love some company.")
    provider.add_post("alpinehiking", "gear_greta", title="Which boots for scree?", selftext="Mine are falling apart.")
    provider.add_comment("trail_bob", "alpinehiking", "The Lac Blanc trail is lovely early in the morning.")
    identity_id = connect_identity(page, provider, "alice_alps", "Alps persona")
    set_voice(page, identity_id, "I am Alice, a Chamonix local who guides friends on quiet trails.",
              tone="friendly", style="two short paragraphs")

    browse(page, "alpinehiking")

    # Triage by keyboard: focus the lead's row, press s to save it.
    page.goto("/leads/")
    row = page.locator("tr[data-row]", has_text="Looking for a hiking partner around Chamonix")
    expect(row).to_contain_text("trail_bob")
    expect(page.locator("tr[data-row]", has_text="Which boots for scree?")).to_be_visible()
    check_page(page, "leads")
    row.focus()
    focus = focused_outline(page)
    assert focus["outlineStyle"] != "none" and focus["outlineWidth"] >= 2, f"focus is not visible: {focus}"
    page.keyboard.press("s")
    expect(row.locator(".badge-saved")).to_have_text("Saved")
    expect(row).to_be_focused()  # the swapped row keeps the keyboard focus

    # The lead, then its author's page.
    row.get_by_role("link", name="Looking for a hiking partner around Chamonix").click()
    expect(page.get_by_role("heading", name="Looking for a hiking partner around Chamonix")).to_be_visible()
    lead_url = page.url
    expect(page.locator(".badge-saved").first).to_have_text("Saved")
    expect(page.get_by_text("Planning day hikes in July")).to_be_visible()
    expect(page.get_by_role("heading", name="Profile analysis")).to_be_visible()  # the agent panels loaded
    expect(page.get_by_role("button", name="Draft intro")).to_be_visible()
    check_page(page, "lead_detail")

    page.get_by_role("heading", name=re.compile("Author")).get_by_role("link", name="trail_bob").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("trail_bob")
    page.get_by_role("button", name="Fetch profile").click()
    wait_for_job_badge(page, page.locator("a[href^='/jobs/'] + .badge"))
    expect(page.get_by_text("Weekend hiker based in Chamonix.")).to_be_visible()
    expect(page.get_by_text("The Lac Blanc trail is lovely early in the morning.")).to_be_visible()

    # Analyse the profile: the panel follows the job until the summary is there.
    llm.reply_json({"summary": "A weekend hiker in Chamonix looking for company on moderate day hikes.",
                    "signals": {"interests": ["hiking", "alpine lakes"], "needs": ["a hiking partner"],
                                "location_hints": ["Chamonix"], "activity_pattern": "posts on weekends",
                                "languages": ["English"]},
                    "risk_flags": []})
    panel = page.locator(".agent-panel", has=page.get_by_role("heading", name="Profile analysis"))
    panel.get_by_role("button", name="Analyse profile").click()
    expect(panel.get_by_text("A weekend hiker in Chamonix looking for company")).to_be_visible(timeout=AGENT_TIMEOUT)
    expect(panel).to_contain_text("a hiking partner")
    expect(panel.locator(".badge").first).to_have_text("Analyzed")
    page.reload()
    expect(page.locator("dl.facts").first).to_contain_text("Analyzed")
    check_page(page, "person")

    # Draft an intro as the identity, in its voice.
    page.goto(lead_url)
    lead_panel = page.locator(".agent-panel", has=page.get_by_role("heading", name="Lead score"))
    lead_panel.get_by_label("Write as").select_option(value=str(identity_id))
    llm.reply_json({"subject": "Chamonix day hikes in July",
                    "body": "Hi trail_bob! I live in Chamonix and walk the quiet trails most weekends.\n\n"
                            "Would you like to join me for Lac Blanc some morning in July?"})
    lead_panel.get_by_role("button", name="Draft intro").click()
    draft = lead_panel.locator("article.draft")
    expect(draft).to_contain_text("Chamonix day hikes in July", timeout=AGENT_TIMEOUT)
    expect(draft).to_contain_text("Draft as Alps persona")
    voice_prompts = [m["content"] for r in llm.chat_requests for m in r["messages"] if m["role"] == "system"
                     and "I am Alice, a Chamonix local who guides friends on quiet trails." in m["content"]]
    assert voice_prompts and "friendly" in voice_prompts[-1] and "two short paragraphs" in voice_prompts[-1]

    # Edit it and send it: only that click sends, with the edited words.
    draft.get_by_role("link", name="Edit, send, regenerate or discard").click()
    expect(page.get_by_role("heading", name="Intro to trail_bob")).to_be_visible()
    body = page.get_by_label("Message")
    expect(body).to_have_value(re.compile(r"^Hi trail_bob! I live in Chamonix"))
    assert provider.sent == []
    check_page(page, "draft")
    body.fill("Hi trail_bob! I live in Chamonix and know the quiet trails.\n\n"
              "Lac Blanc at 7 on a July Saturday? I can bring a spare map.")
    page.get_by_role("button", name="Send to trail_bob").click()
    expect(page.get_by_role("status")).to_contain_text("Sent to trail_bob.")
    expect(page.locator(".badge").first).to_have_text("Sent")
    # Browsers post a textarea's line breaks as CRLF; what counts is the edited words.
    assert [(m["dest"], m["subject"], m["body"].replace("\r\n", "\n")) for m in provider.sent] == [(
        "trail_bob", "Chamonix day hikes in July",
        "Hi trail_bob! I live in Chamonix and know the quiet trails.\n\nLac Blanc at 7 on a July Saturday? "
        "I can bring a spare map.")]

    # Every model call is on record.
    page.get_by_role("link", name="Model calls").click()
    expect(page.get_by_role("heading", name="Recorded model calls")).to_be_visible()
    expect(page.locator("main tbody tr")).not_to_have_count(0)
    check_page(page)


def test_a_person_on_the_do_not_contact_list_cannot_be_messaged(page, stack, allow_console_error):
    provider = stack.provider
    sent_before = len(provider.sent)
    provider.add_post("tentswap", "pushy_pat", title="Selling my old two-person tent", selftext="Barely used.")
    provider.add_thread("pushy_pat", "ben_swap", ["Still want the tent?", "Maybe, what's the price?"],
                        subject="Tent")
    identity_id = connect_identity(page, provider, "ben_swap", "Swap persona")
    archive(page, identity_id)
    browse(page, "tentswap")

    # A draft written before the person asked to be left alone.
    page.goto("/leads/")
    page.get_by_role("link", name="Selling my old two-person tent").click()
    lead_url = page.url
    lead_panel = page.locator(".agent-panel", has=page.get_by_role("heading", name="Lead score"))
    lead_panel.get_by_label("Write as").select_option(value=str(identity_id))
    lead_panel.get_by_role("button", name="Draft intro").click()
    expect(lead_panel.locator("article.draft")).to_be_visible(timeout=AGENT_TIMEOUT)
    lead_panel.get_by_role("link", name="Edit, send, regenerate or discard").click()
    draft_url = page.url

    # Put them on the list from their page.
    page.goto(lead_url)
    page.get_by_role("heading", name=re.compile("Author")).get_by_role("link", name="pushy_pat").click()
    page.get_by_label("Reason (optional)").fill("asked not to be messaged again")
    page.get_by_role("button", name="Never contact pushy_pat").click()
    expect(page.get_by_role("status")).to_contain_text("pushy_pat is on the do-not-contact list.")
    expect(page.get_by_role("heading", name=re.compile("pushy_pat"))).to_contain_text("do not contact")
    expect(page.get_by_text("On the list: asked not to be messaged again.")).to_be_visible()
    page.goto("/do-not-contact")
    expect(page.locator("tbody tr", has_text="pushy_pat")).to_contain_text("asked not to be messaged again")
    check_page(page)

    # The lead: no queueing for contact, no intro.
    page.goto(lead_url)
    expect(page.get_by_text("pushy_pat is on the do-not-contact list.").first).to_be_visible()
    expect(page.get_by_role("button", name="Queue for contact")).to_have_count(0)
    lead_panel = page.locator(".agent-panel", has=page.get_by_role("heading", name="Lead score"))
    expect(lead_panel).to_contain_text("no intro can be drafted")
    expect(page.get_by_role("button", name="Draft intro")).to_have_count(0)

    # The conversation: no reply box.
    page.goto("/inbox/")
    page.get_by_role("link", name="pushy_pat").click()
    expect(page.locator("#reply")).to_contain_text("do-not-contact")
    expect(page.get_by_role("button", name="Send")).to_have_count(0)

    # The old draft: Send is disabled, and forcing the click is refused by the server.
    page.goto(draft_url)
    expect(page.get_by_text("pushy_pat is on the do-not-contact list: this draft cannot be sent.")).to_be_visible()
    send = page.get_by_role("button", name="Send to pushy_pat")
    expect(send).to_be_disabled()
    send.evaluate("b => { b.disabled = false; }")
    allow_console_error(r"status of 409 \(Conflict\) .*/agents/drafts/")  # the refusal is a 409 page
    send.click()
    expect(page.get_by_role("alert")).to_contain_text("do-not-contact")
    expect(page.locator(".badge").first).to_have_text("Draft")
    assert len(provider.sent) == sent_before
    assert not [m for m in provider.sent if m["dest"] == "pushy_pat"]
