"""Every list says what would fill it, and links there, when it is empty."""

import pytest
from django.urls import reverse


@pytest.mark.parametrize(("url_name", "words", "link"), [
    ("inbox:list", "No conversations yet", "identities:list"),
    ("leads:list", "No leads yet", "leads:watches"),
    ("leads:people", "Nobody yet", "leads:watches"),
    ("leads:watches", "No watches yet", "leads:list"),
    ("jobs", "No jobs yet", "leads:watches"),
    ("agents:calls", "No recorded model calls yet", "leads:list"),
    ("inbox:saved_replies", "No saved replies yet", None),
    ("identities:dnc", "Nobody yet", None),
    ("backups:list", "No backups yet", None),
])
def test_an_empty_list_says_what_fills_it(auth_client, identity, url_name, words, link):
    page = auth_client.get(reverse(url_name)).content.decode()
    assert words in page
    if link:
        assert f'href="{reverse(link)}"' in page

