"""Steps several flows share, done the way a user does them in the browser."""

from __future__ import annotations

import re

from .harness import expect


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
