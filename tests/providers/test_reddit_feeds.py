"""Reading Reddit through Atom feeds with the personal feed token, against the fake feed server (real HTTP)."""

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from rediska.providers import get_provider
from rediska.providers.errors import (
    AuthError,
    InvalidRequestError,
    ListingUnavailableError,
    RateLimitedError,
    TransientError,
)
from rediska.providers.reddit import feeds
from tests.fakes.feed_server import atom


@pytest.fixture
def provider(fake_feeds):
    return get_provider("reddit")


@pytest.fixture
def token(fake_feeds):
    return fake_feeds.issue_token("alice")


@pytest.fixture
def alice(provider, token):
    return provider.feed_session("alice", token)


def entry(id="t3_abc", *, title="A title", author="/u/bob", html="&lt;p&gt;hi&lt;/p&gt;", when="2026-06-01T10:00:00+00:00",
          category="hiking", link="https://www.reddit.com/r/hiking/comments/abc/a_title/"):
    parts = ["<entry>"]
    if id is not None:
        parts.append(f"<id>{id}</id>")
    parts.append(f"<title>{title}</title>")
    if author:
        parts.append(f"<author><name>{author}</name></author>")
    if category:
        parts.append(f'<category term="{category}" label="r/{category}"/>')
    parts.append(f'<content type="html">{html}</content><link href="{link}"/>')
    if when:
        parts.append(f"<published>{when}</published><updated>{when}</updated>")
    return "".join(parts) + "</entry>"


# --- the token ---------------------------------------------------------------------------
def test_a_pasted_private_feed_link_gives_username_and_token(provider, fake_feeds, token):
    assert provider.parse_feed_token(f"https://www.reddit.com/message/inbox/.rss?feed={token}&user=alice") \
        == ("alice", token)
    assert provider.parse_feed_token(fake_feeds.feed_url("alice", token)) == ("alice", token)
    assert provider.parse_feed_token(f"  {token} ", "u/alice") == ("alice", token)


@pytest.mark.parametrize("text, user, says", [
    ("https://example.com/message/inbox/.rss?feed=abcdefgh12345&user=alice", "", "not a Reddit feed link"),
    ("javascript:alert(1)//reddit.com", "", "not a Reddit feed link"),
    ("https://www.reddit.com/prefs/feeds/", "", "no feed token"),
    ("https://www.reddit.com/r/hiking/.rss?feed=abcdefgh12345&user=bob", "alice", "belongs to u/bob"),
    ("short", "alice", "not a feed token"),
    ("abcdefgh12345", "", "username"),
    ("", "alice", "Paste"),
])
def test_what_is_not_a_feed_token_is_refused_in_plain_words(provider, fake_feeds, text, user, says):
    with pytest.raises(InvalidRequestError, match=says) as caught:
        provider.parse_feed_token(text, user)
    assert "abcdefgh12345" not in caught.value.user_message  # never repeats a secret


def test_checking_reads_the_private_inbox_feed_once(alice, fake_feeds, token):
    assert alice.whoami().username == "alice"
    [request] = fake_feeds.requests
    assert request.path == "/message/inbox/.rss" and request.query["feed"] == token and request.query["user"] == "alice"


def test_a_token_for_another_username_is_refused(provider, fake_feeds, token):
    fake_feeds.issue_token("bob")
    with pytest.raises(AuthError, match="u/bob"):
        provider.feed_session("bob", token).whoami()


def test_a_changed_token_is_an_auth_error_everywhere(alice, fake_feeds):
    fake_feeds.reddit.add_post("hiking", "carol", title="Buddy wanted")
    fake_feeds.change_token("alice")
    with pytest.raises(AuthError, match="changed or revoked"):
        alice.whoami()
    with pytest.raises(AuthError):
        alice.list_posts("hiking")


def test_the_token_is_never_in_an_error_a_repr_or_a_log(alice, fake_feeds, token, caplog):
    caplog.set_level(logging.DEBUG)
    fake_feeds.change_token("alice")
    with pytest.raises(AuthError) as caught:
        alice.whoami()
    fake_feeds.inject(r"^/r/", status=500, count=None)
    with pytest.raises(TransientError) as server:
        alice.list_posts("hiking")
    texts = [str(caught.value), repr(caught.value), str(server.value), repr(alice), repr(alice._client), caplog.text]
    assert not [t for t in texts if token in t]


# --- what a feed answers ------------------------------------------------------------------
@pytest.mark.parametrize("body, says", [
    (b"<!DOCTYPE html><html><body>Log in</body></html>", "web page"),
    (b"", "empty page"),
    (b"   \n", "empty page"),
    (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry><id>t3_a</id>', "not well-formed"),
    (b'<?xml version="1.0"?><rss><channel></channel></rss>', "not an Atom feed"),
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
     b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol2;</title></feed>', "entities"),
    (b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&x;</title></feed>', "entities"),
])
def test_an_answer_that_is_not_a_readable_feed_is_refused_clearly(alice, fake_feeds, body, says):
    fake_feeds.inject(r"^/message/inbox", status=200, body=body)
    with pytest.raises(feeds.FeedUnreadable, match=says) as caught:
        alice.list_messages("inbox")
    assert caught.value.transient


def test_bad_entries_are_skipped_with_reasons_and_the_rest_kept(alice, fake_feeds):
    big = "x" * (5 * 1024 * 1024)
    body = atom([
        entry("t3_good1"),
        entry(None),                               # no id
        entry("https://www.reddit.com/r/x/"),      # an id that is no fullname
        entry("t3_nodate", when=None),             # a post without a date is kept, undated
        entry("t3_noauthor", author=None),         # a post by nobody named is kept
        entry("t3_huge", html=big),                # a 5 MB entry
        entry("t3_good2"),
    ])
    fake_feeds.inject(r"^/r/hiking/new", status=200, body=body)
    page = alice.list_posts("hiking")
    assert [p.external_id for p in page.posts] == ["good1", "nodate", "noauthor", "good2"]
    assert {s.reason for s in page.skipped} == {"an entry without a usable id", "an entry larger than 1024 KB"}
    undated = page.posts[1]
    assert undated.created_at is None and page.posts[2].author is None


def test_messages_without_a_date_are_skipped_not_stored_undated(alice, fake_feeds):
    body = atom([entry("t4_m1", category=None, link="https://www.reddit.com/message/messages/m0"),
                 entry("t4_m2", when=None, category=None)])
    fake_feeds.inject(r"^/message/inbox", status=200, body=body)
    page = alice.list_messages("inbox")
    assert [(m.external_id, m.conversation_external_id, m.author, m.recipient) for m in page.messages] == \
        [("m1", "m0", "bob", "alice")]
    assert [s.reason for s in page.skipped] == ["a message without a date"]


def test_feed_html_becomes_plain_text_keeping_only_absolute_web_links():
    html = ('<!-- SC_OFF --><div class="md"><p>Hi <b>there</b> &amp; welcome</p><p>See '
            '<a href="https://example.com/x">this</a>, <a href="/r/local">that</a> and '
            '<a href="javascript:alert(1)">click</a><br/>bye</p></div><!-- SC_ON --> submitted by '
            '<a href="https://www.reddit.com/user/bob">/u/bob</a> <a href="https://x.y/">[link]</a>')
    assert feeds.html_to_text(html) == "Hi there & welcome\n\nSee this (https://example.com/x), that and click\nbye"
    assert feeds.html_to_text('<p>plain <a href="https://a.b/c">https://a.b/c</a></p>') == "plain https://a.b/c"
    assert feeds.html_to_text("<script>x</script>") == "x"
    assert feeds.html_to_text("") is None


# --- reading --------------------------------------------------------------------------------
def test_the_inbox_feed_lists_received_messages_threaded_and_counts_comment_replies(alice, fake_feeds):
    reddit = fake_feeds.reddit
    root = reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?"], subject="hello")
    reddit.add_inbox_reply("alice", "carol", "nice comment")
    page = alice.list_messages("inbox")
    assert [m.body for m in page.messages] == ["how are you?", "hi alice"]
    assert {m.conversation_external_id for m in page.messages} == {root[3:]}
    assert page.other_items == 1 and page.listings[0].listing == "inbox-feed" and page.listings[0].works
    # The same ids as the API serves: the inbox store merges them.
    assert {m.external_id for m in page.messages} <= {m["id"] for m in reddit.messages_between("alice", "bob")}


def test_the_inbox_feed_pages_with_every_message_once(alice, fake_feeds):
    fake_feeds.reddit.bulk_threads("alice", threads=50, per_thread=2, counterparts=5)
    pages = list(alice.iter_message_pages("inbox", limit=20))
    seen = [m.external_id for p in pages for m in p.messages]
    assert len(seen) == len(set(seen)) == 50 and len(pages) == 3


def test_there_is_no_sent_feed(alice):
    with pytest.raises(ListingUnavailableError, match="no feed of sent messages") as caught:
        alice.list_messages("sent")
    assert caught.value.listings[0].folder == "sent"


def test_a_feed_token_never_sends(alice):
    with pytest.raises(InvalidRequestError, match="compose page"):
        alice.send_message(to="bob", subject="hi", body="hello")


@pytest.mark.parametrize("sort", ["new", "hot", "top"])
def test_subreddit_feeds_list_posts_by_sort(alice, fake_feeds, sort):
    reddit = fake_feeds.reddit
    low = reddit.add_post("hiking", "carol", title="Older but popular", selftext="come along", score=50)
    high = reddit.add_post("hiking", "dave", title="Newest", selftext="anyone?", score=1)
    page = alice.list_posts("hiking", sort=sort)
    assert [p.external_id for p in page.posts] == ([high, low] if sort == "new" else [low, high])
    post = next(p for p in page.posts if p.external_id == low)
    assert (post.location, post.author, post.title, post.body) == ("hiking", "carol", "Older but popular", "come along")
    assert post.url.startswith("https://www.reddit.com/r/hiking/comments/") and post.created_at
    request = fake_feeds.requests[-1]
    assert request.path == f"/r/hiking/{sort}/.rss" and request.query["user"] == "alice"


def test_subreddit_search_feeds_find_posts_by_keyword(alice, fake_feeds):
    reddit = fake_feeds.reddit
    wanted = reddit.add_post("hiking", "carol", title="Looking for a hiking buddy")
    reddit.add_post("hiking", "dave", title="Trail report")
    page = alice.list_posts("hiking", query="buddy")
    assert [p.external_id for p in page.posts] == [wanted]
    assert fake_feeds.requests[-1].path == "/r/hiking/search.rss"
    assert fake_feeds.requests[-1].query["restrict_sr"] == "on"


def test_user_feeds_give_a_persons_posts_and_comments(alice, fake_feeds):
    reddit = fake_feeds.reddit
    post = reddit.add_post("hiking", "carol", title="My trip", selftext="It was great")
    comment = reddit.add_comment("carol", "hiking", "I agree, see https://example.com", post_id=post)
    posts = alice.fetch_profile_items("carol", "post")
    comments = alice.fetch_profile_items("carol", "comment")
    assert [(i.external_id, i.item_type, i.text) for i in posts.items] == [(post, "post", "It was great")]
    assert [(i.external_id, i.item_type, i.location) for i in comments.items] == [(comment, "comment", "hiking")]
    assert comments.items[0].text == "I agree, see https://example.com"
    assert alice.fetch_profile("carol").status == "active"
    reddit.set_user_status("carol", "deleted")
    assert alice.fetch_profile("carol").status == "deleted"


def test_a_post_is_fetched_from_its_comments_feed(alice, fake_feeds):
    post = fake_feeds.reddit.add_post("hiking", "carol", title="My trip", selftext="It was great")
    assert alice.fetch_post(post).title == "My trip"


# --- pacing -----------------------------------------------------------------------------------
def test_a_429_is_obeyed_for_its_retry_after_by_every_session_of_that_user(provider, alice, fake_feeds, token):
    fake_feeds.inject(r"^/r/hiking/", status=429, headers={"Retry-After": "120"})
    fake_feeds.reddit.add_post("hiking", "carol")
    with pytest.raises(RateLimitedError) as caught:
        alice.list_posts("hiking")
    assert caught.value.retry_after == 120
    asked = len(fake_feeds.requests)
    with pytest.raises(RateLimitedError):  # another session (process) of alice waits too, without asking
        provider.feed_session("alice", token).list_posts("hiking")
    assert len(fake_feeds.requests) == asked
    bob = provider.feed_session("bob", fake_feeds.issue_token("bob"))
    assert bob.list_posts("hiking").posts  # another feed user has their own budget


def test_the_feed_budget_is_per_feed_user_and_configurable(provider, fake_feeds, settings, token):
    settings.PROVIDER_REDDIT_FEED_QPM = "1"
    fake_feeds.reddit.add_post("hiking", "carol")
    session = provider.feed_session("alice", token)
    session.list_posts("hiking")
    with pytest.raises(RateLimitedError):  # the next slot is a minute away: refused, not slept
        session.list_posts("hiking")
    provider.feed_session("bob", fake_feeds.issue_token("bob")).list_posts("hiking")


def test_the_compose_page_is_prefilled(provider, fake_reddit):
    url = provider.compose_url(to="u/bob", subject="Hi & welcome", body="Line one\nline two")
    parts = urlsplit(url)
    assert parts.path == "/message/compose/"
    assert parse_qs(parts.query) == {"to": ["bob"], "subject": ["Hi & welcome"], "message": ["Line one\nline two"]}
