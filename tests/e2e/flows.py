"""Steps several flows share, done the way a user does them in the browser."""

from __future__ import annotations

import re

from .harness import check_page, expect

ARCHIVE_TIMEOUT = 60_000  # ms: a backfill of a few hundred messages through the real worker


def connect_identity(page, provider, username: str, display_name: str = "") -> int:
    """Connect `username` through the provider's consent page; returns the new identity's id."""
    provider.login(username)  # who is signed in on the provider's site and grants consent
    page.goto("/identities/new")
    way = page.locator("#way-oauth")  # the "I have an API app" way in
    way.get_by_label("Provider").select_option(label="Reddit")
    if display_name:
        way.get_by_label("Display name").fill(display_name)
    way.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+$"))
    expect(page.get_by_role("status")).to_contain_text(f"Connected {username}")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def connect_feed_token(page, feed_link: str, username: str, display_name: str = "") -> int:
    """Connect with the personal feed token (the pasted private feed link); returns the identity's id."""
    page.goto("/identities/new")
    way = page.locator("#way-feed")
    way.get_by_label("Private feed link").fill(feed_link)
    if display_name:
        way.get_by_label("Display name").fill(display_name)
    way.get_by_role("button", name="Check and connect").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+$"))
    expect(page.get_by_role("status")).to_contain_text(f"Connected {username} with its feed token")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def archive(page, identity_id: int, button: str = "Sync now"):
    """Press Sync now (or Backfill) on the identity page and wait until its jobs are done; returns the panel."""
    if not page.url.endswith(f"/identities/{identity_id}"):
        page.goto(f"/identities/{identity_id}")
    panel = page.locator(f"#identity-sync-{identity_id}")
    panel.get_by_role("button", name=button).click()
    expect(panel.locator("ul.plain")).to_be_visible()  # the job the click started
    expect(panel.locator("ul.plain")).to_have_count(0, timeout=ARCHIVE_TIMEOUT)  # every job finished
    expect(panel.get_by_role("alert")).to_have_count(0)
    return panel


def browse(page, location: str):
    """Browse a location once from the watches page and wait for its job; the leads list then holds its posts."""
    page.goto("/leads/watches/")
    check_page(page)
    form = page.locator("section", has=page.get_by_role("heading", name="Browse once"))
    form.get_by_label("Location").fill(location)
    form.get_by_role("button", name="Browse now").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#job-detail .badge").first).to_have_text("Done", timeout=ARCHIVE_TIMEOUT)
    check_page(page)


def set_voice(page, identity_id: int, system_prompt: str, tone: str = "", style: str = ""):
    page.goto(f"/identities/{identity_id}")
    page.get_by_label("Voice: system prompt").fill(system_prompt)
    page.get_by_label("Tone").fill(tone)
    page.get_by_label("Style").fill(style)
    with page.expect_response(lambda r: r.url.endswith(f"/identities/{identity_id}") and r.request.method != "GET"):
        page.get_by_role("button", name="Save").click()
    page.reload()
    expect(page.get_by_label("Voice: system prompt")).to_have_value(system_prompt)


def wait_for_job_badge(page, locator, text: str = "Done"):
    """Reload a page that does not poll until `locator` (a job's badge on it) reads `text`."""
    for _ in range(ARCHIVE_TIMEOUT // 500):
        if locator.count() and locator.first.inner_text().strip() == text:
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator.first).to_have_text(text)
