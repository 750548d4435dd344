"""Recorded Reddit JSON maps onto the provider interface types."""

import copy
import json
from datetime import UTC, datetime

from rediska.providers.reddit import mappers
from tests.fakes.reddit_server import FIXTURES_DIR

BASE = "https://www.example.test"


def recorded(name: str, index: int):
    cassette = json.loads((FIXTURES_DIR / name).read_text().replace("<USERNAME>", "me"))
    return json.loads(cassette["interactions"][index]["response"]["body"]["string"])


def test_message_threads_are_flattened_with_their_root_as_conversation():
    listing = recorded("TestInbox.test_messages.json", 1)
    page = mappers.message_page(listing)
    roots = listing["data"]["children"]
    replies = sum(len(c["data"]["replies"]["data"]["children"]) for c in roots if c["data"]["replies"])
    assert len(page.messages) == len(roots) + replies
    assert page.after == "t4_21qtjn8" and page.skipped == []
    thread = next(c["data"] for c in roots if c["data"]["id"] == "22ydk2c")
    mapped = [m for m in page.messages if m.conversation_external_id == "22ydk2c"]
    assert [m.external_id for m in mapped] == ["22ydk2c", "22ydkji", "22ydkme"]
    assert mapped[0].parent_external_id is None and mapped[1].parent_external_id == "22ydk2c"
    assert (mapped[1].author, mapped[1].recipient) == ("me", "UnExplanationBot")
    assert mapped[0].subject == thread["subject"]
    assert mapped[0].sent_at == datetime(2023, 12, 23, 19, 17, 55, tzinfo=UTC)
    assert mapped[0].body == thread["body"] and mapped[0].visibility == "visible"


def test_community_notices_have_no_author_and_are_system_messages():
    page = mappers.message_page(recorded("TestInbox.test_messages.json", 1))
    notice = next(m for m in page.messages if m.external_id == "22xe9tv")
    assert notice.author is None and notice.is_system
    admin = next(m for m in page.messages if m.external_id == "2izsnl2")
    assert admin.author == "reddit" and admin.is_system
    person = next(m for m in page.messages if m.external_id == "2r17c8r")
    assert person.author == "Lil_SpazTest" and not person.is_system


def test_deleted_authors_and_bodies_become_none_with_a_visibility():
    listing = recorded("TestInbox.test_sent.json", 1)
    deleted = copy.deepcopy(listing)
    first, second = deleted["data"]["children"][0]["data"], deleted["data"]["children"][1]["data"]
    first.update(author="[deleted]", body="[deleted]")
    second.update(body="[removed]")
    page = mappers.message_page(deleted)
    assert (page.messages[0].author, page.messages[0].body, page.messages[0].visibility) == (
        None, None, "deleted_by_author")
    assert (page.messages[1].body, page.messages[1].visibility) == (None, "removed")
    assert page.messages[1].author == "me"


def test_malformed_items_are_skipped_with_a_reason_not_the_whole_page():
    listing = recorded("TestInbox.test_sent.json", 1)
    broken = copy.deepcopy(listing)
    children = broken["data"]["children"]
    del children[0]["data"]["created_utc"]
    children[1] = {"kind": "t1", "data": {"id": "abc", "was_comment": True}}
    children[2] = "not even a thing"
    page = mappers.message_page(broken)
    assert len(page.messages) == len(children) - 3
    assert [s.external_id for s in page.skipped] == [children[0]["data"]["id"], None]
    assert all(s.reason for s in page.skipped)
    assert page.other_items == 1  # the comment reply is counted, not an error


def test_comment_replies_and_mentions_of_the_inbox_listing_are_counted_not_stored():
    listing = recorded("TestInbox.test_sent.json", 1)
    mixed = copy.deepcopy(listing)
    mixed["data"]["children"] += [
        {"kind": "t1", "data": {"id": "c1", "was_comment": True, "body": "replied to your comment"}},
        {"kind": "t1", "data": {"id": "c2", "was_comment": True, "body": "u/me mentioned"}},
    ]
    page = mappers.message_page(mixed)
    assert page.other_items == 2 and not page.skipped
    assert len(page.messages) == len(listing["data"]["children"])


def test_posts_map_with_their_location_link_and_numbers():
    listing = recorded("TestFront.test_new.json", 1)
    page = mappers.post_page(listing, base_url=BASE)
    assert len(page.posts) == 100 and page.after == "t3_48ezfg"
    post = page.posts[0]
    assert post.external_id == "48f0th" and post.location == "Showerthoughts"
    assert post.url.startswith(BASE + "/r/Showerthoughts/comments/48f0th/")
    assert post.author == "Kevm4str" and post.title.startswith("Pokémon could never exist")
    assert post.body.startswith("Pokémon would be shot") and post.visibility == "visible"
    assert post.created_at == datetime.fromtimestamp(1456814968, UTC)
    assert (post.score, post.num_comments) == (1, 0)


def test_removed_and_deleted_posts_keep_no_text():
    data = recorded("TestFront.test_new.json", 1)["data"]["children"][0]["data"]
    removed = mappers.post(dict(data, selftext="[removed]", removed_by_category="moderator"), base_url=BASE)
    assert (removed.body, removed.visibility, removed.author) == (None, "removed", "Kevm4str")
    deleted = mappers.post(dict(data, selftext="[deleted]", author="[deleted]", removed_by_category="deleted"),
                           base_url=BASE)
    assert (deleted.body, deleted.visibility, deleted.author) == (None, "deleted_by_author", None)


def test_image_posts_list_their_media_urls():
    data = recorded("TestFront.test_new.json", 1)["data"]["children"][0]["data"]
    image = dict(data, post_hint="image", url="https://i.redd.it/abc.jpg", is_self=False,
                 preview={"images": [{"source": {"url": "https://preview.redd.it/abc.jpg?width=640"}}]})
    assert mappers.post(image, base_url=BASE).media_urls == (
        "https://i.redd.it/abc.jpg", "https://preview.redd.it/abc.jpg?width=640")
    gallery = dict(data, is_gallery=True, media_metadata={"x1": {"s": {"u": "https://preview.redd.it/g1.jpg"}}})
    assert mappers.post(gallery, base_url=BASE).media_urls == ("https://preview.redd.it/g1.jpg",)
    assert mappers.post(data, base_url=BASE).media_urls == ()


def test_comments_map_to_profile_items():
    page = mappers.profile_item_page(recorded("TestRedditor.test_stream__comments.json", 1), base_url=BASE)
    assert len(page.items) == 100 and page.after == "t1_dkeqz80"
    item = page.items[0]
    assert (item.external_id, item.item_type, item.location) == ("dker86u", "comment", "oldpeoplefacebook")
    assert item.text.startswith("Sorry to hear lol")
    assert item.title == "My family's group chat is full of stuff like this"
    assert item.url.startswith("https://www.reddit.com/r/oldpeoplefacebook/comments/6o5ce5/")


def test_submissions_map_to_profile_items():
    page = mappers.profile_item_page(recorded("TestSubreddit.test_search.json", 1), base_url=BASE)
    item = page.items[0]
    assert item.item_type == "post" and item.location == "redditdev"
    assert item.title and item.text and item.url.startswith(BASE + "/r/redditdev/comments/")


def test_me_maps_to_an_active_account():
    account = mappers.account_from_me(recorded("TestInbox.test_sent.json", 2))
    assert (account.username, account.user_id, account.status) == ("me", "3ebyblla", "active")
    assert account.created_at == datetime.fromtimestamp(1552433444, UTC)
    assert account.about["link_karma"] == 1 and "oauth_client_id" not in account.about


def test_about_maps_public_profile_and_suspension():
    about = recorded("TestRedditor.test_message.json", 1)
    account = mappers.account_from_about(about)
    assert (account.username, account.status, account.about["comment_karma"]) == ("subreddit_stats", "active", 15)
    suspended = mappers.account_from_about({"kind": "t2", "data": {"name": "x", "is_suspended": True}})
    assert suspended.status == "suspended"
