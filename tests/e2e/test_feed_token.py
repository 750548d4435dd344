"""Rediska without an API key: connect with the personal feed token, find a lead with a watch, draft an intro,
open Reddit's compose page (checked, not followed) and mark it sent, once even on a double click."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.feed_server import FakeFeeds
from tests.fakes.reddit_server import FakeReddit

from .conftest import Stack
from .flows import ARCHIVE_TIMEOUT, connect_feed_token
from .harness import App, check_page, expect

pytestmark = pytest.mark.e2e

AGENT_TIMEOUT = 30_000


@pytest.fixture(scope="module")
def stack(_template, tmp_path_factory, e2e_llm):
    """This module's app has no API app configured (the usual case today) and reads feeds from a fake."""
    provider = FakeReddit()
    feeds = FakeFeeds(provider)
    template_dir, template_database = _template
    app = App.from_template(template_dir, tmp_path_factory.mktemp("e2e-app") / "data",
                            template_database=template_database,
                            provider_url=provider.url, llm_url=e2e_llm.url, llm_model=e2e_llm.model,
                            embeddings_dims=e2e_llm.dims, client_id="", client_secret="",
                            media_host=provider.host)
    app.env["PROVIDER_REDDIT_FEED_URL"] = feeds.url
    try:
        app.start()
        stack = Stack(app=app, provider=provider, llm=e2e_llm)
        stack.feeds = feeds
        yield stack
    finally:
        app.stop()
        app.drop_database()
        feeds.close()
        provider.close()


def test_connect_with_a_feed_token_watch_draft_and_send_on_reddits_page(page, stack):
    provider, feeds, llm = stack.provider, stack.feeds, stack.llm
    provider.add_post("alpinehiking", "trail_bob", title="Looking for a hiking partner around Chamonix",
                      selftext="Planning day hikes in July, moderate pace.")
    provider.add_post("alpinehiking", "gear_greta", title="Which boots for scree?", selftext="Mine are worn out.")
    provider.add_message("trail_bob", "scout_sam", "Saw your comment, are you local?", subject="Chamonix")
    token = feeds.issue_token("scout_sam")

    # Connect: the API way is closed here, the feed token way checks the token and shows it masked.
    page.goto("/identities/new")
    expect(page.locator("#way-oauth")).to_contain_text("No API app is configured")
    expect(page.locator("#way-feed")).to_contain_text("reddit.com/prefs/feeds")
    check_page(page, "connect")
    identity_id = connect_feed_token(page, feeds.feed_url("scout_sam", token), "scout_sam", "Scout")
    access = page.locator("#identity-access")
    expect(access).to_contain_text("••••••••" + token[-4:])
    expect(access).to_contain_text("Open on Reddit to send")
    assert token not in page.content()
    check_page(page, "identity_feed")

    # The inbox feed syncs: the received message is archived.
    panel = page.locator(f"#identity-sync-{identity_id}")
    expect(panel).to_contain_text("no feed of sent messages")
    panel.get_by_role("button", name="Sync now").click()
    expect(panel.locator("ul.plain")).to_have_count(0, timeout=ARCHIVE_TIMEOUT)
    expect(panel).to_contain_text("Inbox feed")
    page.goto("/inbox/")
    expect(page.locator("main")).to_contain_text("trail_bob")

    # A watch over the subreddit feed finds the lead.
    page.goto("/leads/watches/")
    form = page.locator("section", has=page.get_by_role("heading", name="New watch"))
    form.get_by_label("Location").fill("alpinehiking")
    form.get_by_label("Search words (optional)").fill("partner")
    form.get_by_role("button", name="Add watch").click()
    page.goto("/leads/watches/")
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#job-detail .badge").first).to_have_text("Done", timeout=ARCHIVE_TIMEOUT)
    page.goto("/leads/")
    row = page.locator("tr[data-row]", has_text="Looking for a hiking partner around Chamonix")
    expect(row).to_contain_text("trail_bob")
    expect(page.locator("tr[data-row]", has_text="Which boots for scree?")).to_have_count(0)
    assert any(r.path == "/r/alpinehiking/search.rss" for r in feeds.requests)

    # Draft an intro as the identity.
    row.get_by_role("link", name="Looking for a hiking partner around Chamonix").click()
    lead_panel = page.locator(".agent-panel", has=page.get_by_role("heading", name="Lead score"))
    lead_panel.get_by_label("Write as").select_option(value=str(identity_id))
    llm.reply_json({"subject": "Chamonix hikes", "body": "Hi trail_bob! I hike around Chamonix too.\n\nJuly?"})
    lead_panel.get_by_role("button", name="Draft intro").click()
    draft = lead_panel.locator("article.draft")
    expect(draft).to_contain_text("Chamonix hikes", timeout=AGENT_TIMEOUT)
    draft.get_by_role("link", name="Edit, send, regenerate or discard").click()
    expect(page.get_by_role("heading", name="Intro to trail_bob")).to_be_visible()
    expect(page.get_by_role("button", name="Send to trail_bob")).to_have_count(0)

    # Open on Reddit to send: the rules run, then the prefilled compose URL (checked, not followed).
    page.get_by_label("Message").fill("Hi trail_bob! I hike around Chamonix too.\n\nLac Blanc in July?")
    page.get_by_role("button", name="Check and open on Reddit").click()
    link = page.get_by_role("link", name="Open on Reddit to send")
    expect(link).to_have_attribute("target", "_blank")
    parts = urlsplit(link.get_attribute("href"))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{provider.url}/message/compose/"
    query = parse_qs(parts.query)
    # trail_bob wrote first, so the intro is a reply in that conversation.
    assert query["to"] == ["trail_bob"] and query["subject"] == ["re: Chamonix"]
    assert query["message"][0].replace("\r\n", "\n") == \
        "Hi trail_bob! I hike around Chamonix too.\n\nLac Blanc in July?"
    assert provider.sent == []  # Rediska never submits Reddit's form
    check_page(page, "draft_open_on_site")

    # "I sent it", double-clicked: recorded once.
    page.get_by_role("button", name="I sent it").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Recorded as sent by hand to trail_bob")
    expect(page.locator(".badge").first).to_have_text("Sent")
    page.goto("/inbox/")
    page.get_by_role("link", name="trail_bob").first.click()
    expect(page.locator("ol.messages > li")).to_have_count(2)  # trail_bob's, and ours once
    expect(page.locator("ol.messages")).to_contain_text("Lac Blanc in July?")
    check_page(page)
