"""The Reddit provider against the fake server, over real HTTP through PRAW."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from rediska.providers import get_provider
from rediska.providers.errors import (
    AuthError,
    ForbiddenError,
    InvalidRequestError,
    NotConfiguredError,
    NotFoundError,
    RateLimitedError,
    RecipientRefusedError,
    TransientError,
)


@pytest.fixture
def provider(fake_reddit):
    return get_provider("reddit")


@pytest.fixture
def me(fake_reddit, provider):
    """A session for the identity `me`."""
    return provider.session(fake_reddit.issue_refresh_token("me"))


def consent(fake_reddit, provider, username="alice", state="state-1") -> dict:
    """Follow the authorize URL like a browser would; returns the callback's query."""
    fake_reddit.login(username)
    answer = requests.get(provider.authorize_url(state), allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(fake_reddit.redirect_uri)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


# --- OAuth -------------------------------------------------------------------
def test_the_authorize_url_asks_for_permanent_access_with_our_scopes(fake_reddit, provider):
    url = urlsplit(provider.authorize_url("abc"))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake_reddit.url}/api/v1/authorize"
    assert query["duration"] == ["permanent"] and query["response_type"] == ["code"]
    assert query["scope"] == ["identity privatemessages read history"]
    assert query["state"] == ["abc"] and query["client_id"] == [fake_reddit.client_id]
    assert query["redirect_uri"] == [fake_reddit.redirect_uri]


def test_the_code_exchange_returns_a_refresh_token_that_works(fake_reddit, provider):
    callback = consent(fake_reddit, provider)
    tokens = provider.exchange_code(callback["code"])
    assert tokens.refresh_token and tokens.scopes == ("history", "identity", "privatemessages", "read")
    assert provider.session(tokens.refresh_token).whoami().username == "alice"
    assert "refresh" not in repr(tokens) and tokens.refresh_token not in repr(tokens)


def test_a_used_code_is_refused(fake_reddit, provider):
    code = consent(fake_reddit, provider)["code"]
    provider.exchange_code(code)
    with pytest.raises(AuthError, match="reconnect"):
        provider.exchange_code(code)


def test_too_few_scopes_are_refused(fake_reddit, provider):
    fake_reddit.login("alice")
    url = provider.authorize_url("s").replace("scope=identity+privatemessages+read+history", "scope=identity")
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    with pytest.raises(AuthError, match="privatemessages"):
        provider.exchange_code(code)


def test_refresh_gives_a_new_access_token(fake_reddit, provider):
    token = fake_reddit.issue_refresh_token("alice")
    tokens = provider.refresh(token)
    assert tokens.access_token and tokens.refresh_token == token


def test_a_revoked_refresh_token_is_an_auth_error(fake_reddit, provider):
    token = fake_reddit.issue_refresh_token("alice")
    fake_reddit.revoke_refresh_token(token)
    with pytest.raises(AuthError, match="reconnect"):
        provider.refresh(token)
    with pytest.raises(AuthError):
        provider.session(token).whoami()


def test_a_wrong_client_secret_is_named_as_such(fake_reddit, provider, settings):
    settings.PROVIDER_REDDIT_CLIENT_SECRET = "not-the-secret"
    with pytest.raises(AuthError, match="client id or secret"):
        provider.refresh(fake_reddit.issue_refresh_token("alice"))


def test_an_expired_access_token_is_refreshed_transparently(fake_reddit, me):
    assert me.whoami().username == "me"
    fake_reddit.expire_access_tokens()
    assert me.whoami().username == "me"


def test_missing_app_credentials_mean_not_configured(fake_reddit, provider, settings):
    settings.PROVIDER_REDDIT_CLIENT_ID = ""
    assert provider.is_configured() is False
    with pytest.raises(NotConfiguredError, match="PROVIDER_REDDIT_CLIENT_ID"):
        provider.authorize_url("s")


def test_a_bad_url_setting_is_named(fake_reddit, provider, settings):
    settings.PROVIDER_REDDIT_OAUTH_URL = "ftp://nowhere"
    with pytest.raises(NotConfiguredError, match="PROVIDER_REDDIT_OAUTH_URL"):
        provider.session("token")


def test_requests_carry_the_configured_user_agent(fake_reddit, me):
    me.whoami()
    assert fake_reddit.requests[-1].headers["user-agent"].startswith("rediska-tests/0.1")


def test_media_hosts_come_from_settings(fake_reddit, provider, settings):
    assert provider.is_media_host(fake_reddit.host) and provider.is_media_host("x.i.redd.it")
    assert not provider.is_media_host("evil.example")
    del settings.PROVIDER_REDDIT_MEDIA_HOSTS
    assert provider.media_hosts == ("i.redd.it", "preview.redd.it", "i.imgur.com")


# --- identity and messages -----------------------------------------------------
def test_whoami_maps_the_account(fake_reddit, me):
    account = me.whoami()
    assert account.username == "me" and account.status == "active" and account.user_id


def test_the_inbox_folder_lists_recorded_threads_flattened(fake_reddit, me):
    fake_reddit.load_fixture("TestInbox.test_messages.json", username="me")
    page = me.list_messages("inbox")
    assert page.after and len(page.messages) > 100
    assert {m.conversation_external_id for m in page.messages if m.external_id == "22ydkme"} == {"22ydk2c"}
    second = me.list_messages("inbox", after=page.after)
    assert not {m.external_id for m in second.messages} & {m.external_id for m in page.messages}


def test_every_message_is_reached_by_paging(fake_reddit, me):
    fake_reddit.bulk_threads("me", threads=120, per_thread=3)
    seen = [m.external_id for page in me.iter_message_pages("inbox") for m in page.messages]
    assert len(seen) == len(set(seen)) == 360


def test_the_sent_folder_lists_our_messages(fake_reddit, me):
    fake_reddit.add_thread("me", "bob", ["hello bob", "hi", "how are you"])
    page = me.list_messages("sent")
    assert [m.body for m in page.messages] == ["how are you", "hello bob"]
    assert all(m.author == "me" and m.recipient == "bob" for m in page.messages)


def test_an_unknown_folder_is_refused(me):
    with pytest.raises(InvalidRequestError):
        me.list_messages("spam")


def test_a_new_message_is_sent_and_identified(fake_reddit, me):
    fake_reddit.add_user("bob")
    sent = me.send_message(to="bob", subject="Hi", body="Hello Bob")
    stored = fake_reddit.sent[-1]
    assert (stored["dest"], stored["subject"], stored["body"]) == ("bob", "Hi", "Hello Bob")
    assert sent.external_id == stored["id"] and sent.conversation_external_id == stored["id"]
    assert sent.sent_at.tzinfo is not None


def test_a_reply_goes_into_the_thread(fake_reddit, me):
    root = fake_reddit.add_thread("bob", "me", ["hi there"])
    sent = me.send_message(to="bob", subject="", body="hello back", reply_to_external_id=root[3:])
    stored = fake_reddit.sent[-1]
    assert stored["parent_id"] == root and stored["dest"] == "bob"
    assert (sent.external_id, sent.conversation_external_id) == (stored["id"], root[3:])


def test_a_recipient_who_refuses_messages_is_named(fake_reddit, me):
    fake_reddit.add_user("closed", accepts_messages=False)
    with pytest.raises(RecipientRefusedError, match="u/closed"):
        me.send_message(to="closed", subject="Hi", body="Hello")
    assert fake_reddit.sent == []


def test_an_unknown_recipient_is_not_found(fake_reddit, me):
    with pytest.raises(NotFoundError, match="u/nobody_here"):
        me.send_message(to="nobody_here", subject="Hi", body="Hello")


@pytest.mark.parametrize("to,subject,body", [("bob", "Hi", "   "), ("bob", "", "x"), ("b o b", "Hi", "x"),
                                             ("bob", "x" * 101, "x"), ("bob", "Hi", "x" * 10_001)])
def test_bad_messages_are_refused_before_sending(fake_reddit, me, to, subject, body):
    with pytest.raises(InvalidRequestError):
        me.send_message(to=to, subject=subject, body=body)
    assert not [r for r in fake_reddit.requests if r.path == "/api/compose"]


def test_a_failed_send_is_not_retried(fake_reddit, me):
    fake_reddit.add_user("bob")
    fake_reddit.inject(r"^/api/compose$", status=500)
    with pytest.raises(TransientError):
        me.send_message(to="bob", subject="Hi", body="Hello")
    assert len([r for r in fake_reddit.requests if r.path == "/api/compose"]) == 1


# --- posts and profiles ---------------------------------------------------------
def test_posts_of_a_location_are_listed_newest_first(fake_reddit, me):
    first = fake_reddit.add_post("hiking", "carol", title="Older", created=1_700_000_000)
    second = fake_reddit.add_post("hiking", "dave", title="Newer", created=1_700_000_100)
    page = me.list_posts("r/hiking")
    assert [p.external_id for p in page.posts] == [second, first]
    assert page.posts[0].url == f"{fake_reddit.url}/r/hiking/comments/{second}/newer/"


def test_posts_are_paged_with_the_cursor(fake_reddit, me):
    for i in range(7):
        fake_reddit.add_post("hiking", "carol", title=f"Post {i}")
    first = me.list_posts("hiking", limit=5)
    second = me.list_posts("hiking", limit=5, after=first.after)
    assert len(first.posts) == 5 and len(second.posts) == 2 and second.after is None


def test_search_finds_posts_by_keyword(fake_reddit, me):
    fake_reddit.add_post("hiking", "carol", title="Looking for a hiking buddy")
    fake_reddit.add_post("hiking", "dave", title="Gear review")
    page = me.list_posts("hiking", query="buddy")
    assert [p.title for p in page.posts] == ["Looking for a hiking buddy"]
    assert fake_reddit.requests[-1].query["restrict_sr"] == "on"


def test_image_posts_report_media_on_the_media_hosts(fake_reddit, me, provider):
    url = fake_reddit.add_image("/img/trail.png", b"\x89PNG", "image/png")
    fake_reddit.add_post("hiking", "carol", title="View", image_url=url)
    post = me.list_posts("hiking").posts[0]
    assert post.media_urls == (url,)
    assert provider.is_media_host(urlsplit(url).hostname)


@pytest.mark.parametrize("state,error,message", [("private", ForbiddenError, "private"),
                                                 ("banned", ForbiddenError, "banned")])
def test_closed_locations_are_forbidden(fake_reddit, me, state, error, message):
    fake_reddit.add_subreddit("closed", status=state)
    with pytest.raises(error, match=f"r/closed is {message}"):
        me.list_posts("closed")


def test_an_unknown_location_is_not_found(fake_reddit, me):
    with pytest.raises(NotFoundError, match="r/nosuchplace"):
        me.list_posts("nosuchplace")


def test_a_bad_location_name_is_refused(me):
    with pytest.raises(InvalidRequestError):
        me.list_posts("no spaces allowed")


def test_a_post_is_fetched_by_id(fake_reddit, me):
    post_id = fake_reddit.add_post("hiking", "carol", title="Trail", selftext="Who is in?")
    post = me.fetch_post(post_id)
    assert (post.external_id, post.title, post.body, post.author) == (post_id, "Trail", "Who is in?", "carol")


def test_a_removed_post_keeps_its_id_without_text(fake_reddit, me):
    post_id = fake_reddit.add_post("hiking", "carol", title="Trail", selftext="text")
    fake_reddit.remove_post(post_id)
    post = me.fetch_post(f"t3_{post_id}")
    assert (post.visibility, post.body) == ("removed", None)


def test_an_unknown_post_is_not_found(fake_reddit, me):
    with pytest.raises(NotFoundError):
        me.fetch_post("zzzzzz")


def test_profiles_report_the_account_status(fake_reddit, me):
    fake_reddit.add_user("carol", bio="I hike", link_karma=10, comment_karma=5)
    fake_reddit.add_user("banned", status="suspended")
    fake_reddit.add_user("gone", status="deleted")
    carol = me.fetch_profile("carol")
    assert (carol.status, carol.about["bio"], carol.about["total_karma"]) == ("active", "I hike", 15)
    assert me.fetch_profile("u/banned").status == "suspended"
    assert me.fetch_profile("gone").status == "deleted"


def test_profile_items_are_listed_by_kind(fake_reddit, me):
    post_id = fake_reddit.add_post("hiking", "carol", title="My trail", selftext="pics")
    fake_reddit.add_comment("carol", "hiking", "great view", post_id=post_id)
    posts = me.fetch_profile_items("carol", "post")
    comments = me.fetch_profile_items("carol", "comment")
    assert [(i.item_type, i.title) for i in posts.items] == [("post", "My trail")]
    assert [(i.item_type, i.text, i.location) for i in comments.items] == [("comment", "great view", "hiking")]


def test_profile_items_of_a_suspended_account_are_forbidden(fake_reddit, me):
    fake_reddit.add_user("banned", status="suspended")
    with pytest.raises(ForbiddenError, match="u/banned"):
        me.fetch_profile_items("banned", "comment")


# --- failures -------------------------------------------------------------------
def test_a_403_is_forbidden(fake_reddit, me):
    fake_reddit.inject(r"^/message/messages$", status=403)
    with pytest.raises(ForbiddenError):
        me.list_messages("inbox")


def test_a_429_is_rate_limited_with_retry_after(fake_reddit, me):
    fake_reddit.inject(r"^/api/v1/me$", status=429, headers={"x-ratelimit-reset": "42"})
    with pytest.raises(RateLimitedError) as caught:
        me.whoami()
    assert caught.value.retry_after == 42 and caught.value.transient


def test_one_server_error_on_a_read_is_retried(fake_reddit, me):
    fake_reddit.inject(r"^/api/v1/me$", status=500)
    assert me.whoami().username == "me"


def test_repeated_server_errors_are_transient(fake_reddit, me):
    fake_reddit.inject(r"^/api/v1/me$", status=503, count=2)
    with pytest.raises(TransientError, match="server error"):
        me.whoami()


def test_a_slow_answer_times_out_as_transient(fake_reddit, me, settings):
    me.whoami()
    settings.PROVIDER_REDDIT_TIMEOUT = "0.3"
    fake_reddit.slow(r"^/api/v1/me$", 30.0)
    with pytest.raises(TransientError, match="in time"):
        get_provider("reddit").session(fake_reddit.issue_refresh_token("me")).whoami()
    # Tried twice (a read), and gave up on both before the server answered either.
    assert [r.status for r in fake_reddit.requests if r.path == "/api/v1/me"] == [200, None, None]


def test_an_unreachable_server_is_transient(fake_reddit, me, settings):
    settings.PROVIDER_REDDIT_OAUTH_URL = "http://127.0.0.1:9"
    settings.PROVIDER_REDDIT_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(TransientError, match="could not be reached"):
        get_provider("reddit").session("token").whoami()


# --- rate limiting ----------------------------------------------------------------
def test_two_identities_of_one_app_share_the_qpm_budget(fake_reddit, provider, settings):
    settings.PROVIDER_RATE_QPM_DEFAULT = 1200  # 20 per second, bursts of 20
    alice = provider.session(fake_reddit.issue_refresh_token("alice"))
    bob = provider.session(fake_reddit.issue_refresh_token("bob"))
    started = time.monotonic()
    for _ in range(15):
        alice.whoami()
        bob.whoami()
    elapsed = time.monotonic() - started
    calls = fake_reddit.requests
    assert len(calls) == 32  # two token refreshes + 30 calls
    assert {c.username for c in calls if c.path == "/api/v1/me"} == {"alice", "bob"}
    assert elapsed >= (32 - 20) / 20 - 0.05  # the 12 beyond the burst were paced at 20/s


def test_a_429_pauses_every_identity_of_the_app(fake_reddit, provider):
    alice = provider.session(fake_reddit.issue_refresh_token("alice"))
    bob = provider.session(fake_reddit.issue_refresh_token("bob"))
    alice.whoami()
    fake_reddit.inject(r"^/api/v1/me$", status=429, headers={"retry-after": "1"})
    with pytest.raises(RateLimitedError):
        alice.whoami()
    refused = fake_reddit.requests[-1]
    assert bob.whoami().username == "bob"
    after = [r for r in fake_reddit.requests if r.at > refused.at]
    assert after and all(r.status == 200 for r in after)
    assert min(r.at for r in after) >= refused.at + 1  # bob's first request waited out alice's Retry-After


def test_a_long_429_refuses_at_once_without_calling_the_server(fake_reddit, provider):
    alice = provider.session(fake_reddit.issue_refresh_token("alice"))
    alice.whoami()
    fake_reddit.inject(r"^/api/v1/me$", status=429, headers={"x-ratelimit-reset": "300"})
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        alice.whoami()
    made = len(fake_reddit.requests)
    with pytest.raises(RateLimitedError) as caught:
        provider.session(fake_reddit.issue_refresh_token("bob")).whoami()
    # The job ledger retries when the block ends.
    assert 300 - (time.monotonic() - started) - 0.05 <= caught.value.retry_after <= 300
    assert len(fake_reddit.requests) == made  # not even bob's token call went out


def test_server_errors_back_off_before_the_retry_and_for_every_identity(fake_reddit, provider):
    alice = provider.session(fake_reddit.issue_refresh_token("alice"))
    bob = provider.session(fake_reddit.issue_refresh_token("bob"))
    alice.whoami()
    fake_reddit.inject(r"^/api/v1/me$", status=503, count=2)
    with pytest.raises(TransientError):
        alice.whoami()
    first, second = [r for r in fake_reddit.requests if r.status == 503]
    assert second.at >= first.at + 0.5  # the retry waited the backoff base
    assert bob.whoami().username == "bob"
    after = [r for r in fake_reddit.requests if r.at > second.at]
    assert min(r.at for r in after) >= second.at + 1.0  # a second failure in a row doubles it


def test_the_servers_ratelimit_headers_are_obeyed(fake_reddit, me):
    fake_reddit.rate_limit(limit=3, window=1)
    started = time.monotonic()
    for _ in range(5):
        me.whoami()
    assert time.monotonic() - started >= 0.5  # waited for the window to reset after three
    assert [r.status for r in fake_reddit.requests if r.path == "/api/v1/me"] == [200] * 5


# --- listings Reddit retired for apps (2025: /message/messages -> 302 /login/) ----------------
def test_a_retired_threads_listing_falls_back_to_the_inbox_listing(fake_reddit, me):
    fake_reddit.retire_listing("messages")
    fake_reddit.add_thread("bob", "me", ["hi", "hello bob", "how are you"])
    fake_reddit.add_inbox_reply("me", "carol", "nice comment")
    page = me.list_messages("inbox")
    assert sorted(m.body for m in page.messages) == ["hi", "how are you"]  # received only; sent is its own folder
    assert page.other_items == 1  # the comment reply is counted, not stored
    assert len({m.conversation_external_id for m in page.messages}) == 1  # threading kept
    assert [(s.listing, s.works) for s in page.listings] == [("messages", False), ("inbox", True)]
    assert "no longer serves" in page.listings[0].detail and "/message/messages" in page.listings[0].detail


def test_the_fallback_listing_pages_to_its_end_with_every_message_once(fake_reddit, me):
    fake_reddit.retire_listing("messages")
    fake_reddit.bulk_threads("me", threads=90, per_thread=3)
    pages = list(me.iter_message_pages("inbox", limit=50))
    seen = [m.external_id for page in pages for m in page.messages]
    assert len(seen) == len(set(seen)) and len(pages) > 2
    assert all(p.after is None or p.after.startswith("inbox:") for p in pages)
    # The retired listing is asked once per walk, not once per page.
    asked = [r.path for r in fake_reddit.requests if r.path.startswith("/message/")]
    assert asked.count("/message/messages") == 1


def test_a_walk_resumed_on_a_fallback_listing_stays_on_it(fake_reddit, me):
    fake_reddit.bulk_threads("me", threads=30, per_thread=1)
    assert me.list_messages("inbox", limit=10).after.startswith("t4_")  # the threads listing: a plain fullname
    fake_reddit.retire_listing("messages")
    first = me.list_messages("inbox", limit=5)
    fake_reddit.requests.clear()
    second = me.list_messages("inbox", after=first.after, limit=5)
    assert [r.path for r in fake_reddit.requests] == ["/message/inbox"]
    assert not {m.external_id for m in second.messages} & {m.external_id for m in first.messages}


def test_every_retired_listing_is_a_distinct_error_not_not_found(fake_reddit, me):
    from rediska.providers.errors import ListingUnavailableError

    for folder in ("messages", "inbox", "unread", "sent"):
        fake_reddit.retire_listing(folder)
    for folder in ("inbox", "sent"):
        with pytest.raises(ListingUnavailableError) as caught:
            me.list_messages(folder)
        assert not isinstance(caught.value, NotFoundError) and not caught.value.transient
        assert "no longer serves" in caught.value.user_message
        assert caught.value.listings and not any(s.works for s in caught.value.listings)
    assert [s.listing for s in caught.value.listings] == ["sent"]


def test_a_redirect_elsewhere_is_still_not_found(fake_reddit, me):
    with pytest.raises(NotFoundError):
        me.list_posts("nosuchcommunity")
# --- "you are doing that too much" ----------------------------------------------
def test_a_ratelimit_answer_to_a_send_is_a_cooldown_for_the_identity_with_its_wait(fake_reddit, me):
    from rediska.providers.errors import SendCooldownError

    fake_reddit.add_user("bob")
    fake_reddit.doing_that_too_much(minutes=9)
    with pytest.raises(SendCooldownError) as caught:
        me.send_message(to="bob", subject="hi", body="hello")
    assert caught.value.retry_after == 9 * 60
    assert "doing that too much" in caught.value.user_message
    assert fake_reddit.sent == []


@pytest.mark.parametrize(("words", "seconds"), [
    ("you are doing that too much. try again in 1 minute.", 60),
    ("Looks like you've been doing that a lot. Take a break for 30 seconds before trying again.", 30),
    ("you are doing that too much. try again in 2 hours.", 7200),
    ("you are doing that too much.", 600),
])
def test_the_cooldown_wait_is_read_from_reddits_words(words, seconds):
    from rediska.providers.reddit.client import api_error

    assert api_error([["RATELIMIT", words, "ratelimit"]]).retry_after == seconds
