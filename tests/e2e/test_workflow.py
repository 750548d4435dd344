"""A day's workflow: answer with a saved reply, note and label the person, filter by label, export CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest

from .flows import archive, connect_identity
from .harness import check_page, expect

pytestmark = pytest.mark.e2e


def read_csv(download) -> list[dict]:
    text = open(download.path(), encoding="utf-8-sig").read()
    return list(csv.DictReader(io.StringIO(text)))


def test_answering_with_a_saved_reply_noting_labelling_filtering_and_exporting(page, stack, allow_console_error):
    allow_console_error(r"status of 400 .*/inbox/replies/")  # the refused placeholder, on purpose
    provider = stack.provider
    provider.add_thread("lee_peak", "morgan_hills", ["Hello! Saw your post about the Cairngorms trip."],
                        subject="Cairngorms")
    provider.add_thread("quiet_ann", "morgan_hills", ["Thanks, not this time."], subject="Maybe later")
    identity_id = connect_identity(page, provider, "morgan_hills", "Hills persona")
    archive(page, identity_id)

    # A saved reply with a placeholder; an unknown placeholder is refused with a clear reason.
    page.goto("/inbox/replies/")
    page.get_by_label("Title").fill("Warm hello")
    page.get_by_label("Text").fill("Hi {nmae}, lovely to hear from you!")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown placeholder {nmae}")
    page.get_by_label("Text").fill("Hi {name}, lovely to hear from you!")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved reply “Warm hello” added.")
    check_page(page)

    # Answer lee_peak with it: Insert fills in the name, Send sends exactly that.
    page.goto("/inbox/")
    page.locator("tbody tr", has_text="lee_peak").get_by_role("link", name="lee_peak").click()
    expect(page).to_have_url(re.compile(r"/inbox/c/\d+/$"))
    conversation_url = page.url
    expect(page.locator("[data-pacing]")).to_contain_text("A reply is not a first message")
    page.get_by_label("Saved reply").select_option(label="Warm hello")
    page.get_by_role("button", name="Insert").click()
    box = page.get_by_label("Reply to lee_peak")
    expect(box).to_have_value("Hi lee_peak, lovely to hear from you!")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Sent.")
    assert [(m["dest"], m["body"]) for m in provider.sent] == [("lee_peak", "Hi lee_peak, lovely to hear from you!")]
    check_page(page)

    # On the person page: a private note and a label (shown escaped).
    page.get_by_role("link", name="Profile and posts").click()
    panel = page.locator("#person-workflow")
    panel.get_by_label("Add a note").fill("Met at the Aviemore meetup; <prefers> early starts.")
    panel.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_contain_text("Note on lee_peak saved")
    note = "Met at the Aviemore meetup; <prefers> early starts."
    expect(page.locator("#person-workflow .note")).to_contain_text(note)
    page.locator("#person-workflow").get_by_label("Label this person").fill("hot lead")
    page.locator("#person-workflow").get_by_role("button", name="Add label").click()
    expect(page.locator("#person-workflow .badge-label")).to_have_text("hot lead")
    check_page(page)

    # The note also shows on the conversation page.
    page.goto(conversation_url)
    expect(page.locator("#person-workflow .note")).to_contain_text("Aviemore meetup")

    # Filter the inbox by the label: only lee_peak's conversation.
    page.goto("/inbox/")
    with page.expect_response(lambda r: "label=" in r.url):
        page.get_by_label("Label", exact=True).select_option(label="hot lead")
    expect(page.locator("tbody tr", has_text="lee_peak")).to_be_visible()
    expect(page.locator("tbody tr", has_text="quiet_ann")).to_have_count(0)

    # Export what the filter shows, and the people with that label (notes included).
    with page.expect_download() as conversations:
        page.get_by_role("link", name="Export these conversations (CSV)").click()
    rows = read_csv(conversations.value)
    assert [(r["with"], r["identity"], r["subject"]) for r in rows] == [("lee_peak", "morgan_hills", "Cairngorms")]

    page.goto("/leads/people/")
    page.get_by_label("Label", exact=True).select_option(label="hot lead")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("lee_peak")
    check_page(page)
    with page.expect_download() as people:
        page.get_by_role("link", name="Export these people (CSV)").click()
    rows = read_csv(people.value)
    assert [(r["username"], r["labels"]) for r in rows] == [("lee_peak", "hot lead")]
    assert rows[0]["notes"] == "Met at the Aviemore meetup; <prefers> early starts."
