"""First run: sign in, meet the onboarding gate, connect an identity through the OAuth pages, set its voice."""

from __future__ import annotations

import re

import pytest

from .harness import ADMIN_PASSWORD, ADMIN_USERNAME, check_page, expect, focused_outline

pytestmark = pytest.mark.e2e


def test_a_new_user_signs_in_connects_an_identity_and_sets_its_voice(anonymous_page, stack):
    page = anonymous_page

    # Signed out, every page leads to the sign-in form; done with the keyboard alone.
    page.goto("/leads/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/leads/"))
    expect(page.get_by_role("heading", name="Sign in to Rediska")).to_be_visible()
    check_page(page, "login")
    page.keyboard.press("Tab")
    focus = focused_outline(page)
    assert focus["outlineStyle"] != "none" and focus["outlineWidth"] >= 2, f"focus is not visible: {focus}"
    page.get_by_label("Username").focus()
    page.keyboard.type(ADMIN_USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")

    # The onboarding gate: nothing opens before an identity is connected.
    expect(page).to_have_url(re.compile(r"/setup/"))
    expect(page.get_by_role("heading", name="Connect your first identity")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Connect an identity first")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/"))
    check_page(page, "onboarding")

    # Connect through the provider's consent page (the fake provider signs in as hiker_alice).
    stack.provider.login("hiker_alice")
    way = page.locator("#way-oauth")  # "I have an API app", one of the three ways in
    way.get_by_label("Provider").select_option(label="Reddit")
    way.get_by_label("Display name").fill("Trail persona")
    way.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(re.compile(r"/identities/\d+$"))
    expect(page.get_by_role("status")).to_contain_text("Connected hiker_alice as “Trail persona”, the default identity.")
    authorize = [r for r in stack.provider.requests if r.path == "/api/v1/authorize"]
    assert authorize[-1].query["duration"] == "permanent"
    assert set(authorize[-1].query["scope"].split()) == {"identity", "privatemessages", "read", "history"}
    card = page.locator("#identity-card")
    expect(card.get_by_role("heading", name=re.compile("Trail persona"))).to_be_visible()
    expect(card).to_contain_text("default")

    # The voice drafts will be written in.
    page.get_by_label("Voice: system prompt").fill("I am Alice, a weekend hiker who loves quiet alpine trails.")
    page.get_by_label("Tone").fill("warm")
    page.get_by_label("Style").fill("short sentences, no emoji")
    page.get_by_role("button", name="Save").click()
    page.reload()
    expect(page.get_by_label("Voice: system prompt")).to_have_value(
        "I am Alice, a weekend hiker who loves quiet alpine trails.")
    expect(page.get_by_label("Tone")).to_have_value("warm")
    expect(page.get_by_label("Style")).to_have_value("short sentences, no emoji")
    check_page(page, "identity")

    # The gate is open now.
    page.goto("/leads/")
    expect(page.get_by_role("heading", name="Leads", exact=True)).to_be_visible()
    page.goto("/identities")
    expect(page.get_by_role("cell", name="hiker_alice")).to_be_visible()
    check_page(page, "identities")
