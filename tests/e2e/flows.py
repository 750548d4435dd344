"""Steps several flows share, done the way a user does them in the browser."""

from __future__ import annotations

import re

from .harness import expect

ARCHIVE_TIMEOUT = 60_000  # ms: a backfill of a few hundred messages through the real worker


def connect_identity(page, provider, username: str, display_name: str = "") -> int:
    """Connect `username` through the provider's consent page; returns the new identity's id."""
    provider.login(username)  # who is signed in on the provider's site and grants consent
    page.goto("/identities/new")
    page.get_by_label("Provider").select_option(label="Reddit")
    if display_name:
        page.get_by_label("Display name").fill(display_name)
    page.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+$"))
    expect(page.get_by_role("status")).to_contain_text(f"Connected {username}")
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
