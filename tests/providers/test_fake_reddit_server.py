"""The fake server answers like the recorded Reddit API (shapes, paging, errors)."""

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import praw
import pytest
import requests

from tests.fakes.reddit_server import FIXTURES_DIR


def recorded(name: str, index: int) -> dict:
    cassette = json.loads((FIXTURES_DIR / name).read_text())
    return json.loads(cassette["interactions"][index]["response"]["body"]["string"])


def bearer(fake, username: str) -> dict:
    token = fake.issue_refresh_token(username)
    answer = requests.post(f"{fake.url}/api/v1/access_token", auth=(fake.client_id, fake.client_secret),
                           data={"grant_type": "refresh_token", "refresh_token": token}, timeout=5).json()
    return {"Authorization": f"bearer {answer['access_token']}"}


def get(fake, path: str, username: str = "me", **params):
    return requests.get(f"{fake.url}{path}", params=params, headers=bearer(fake, username), timeout=5)


def keys_of(listing: dict, kind: str) -> set:
    """The keys every `kind` thing of the listing has."""
    things = [set(c["data"]) for c in listing["data"]["children"] if c["kind"] == kind]
    return set.intersection(*things)


def test_generated_things_have_the_recorded_shapes(fake_reddit):
    root = fake_reddit.add_thread("bob", "me", ["hi", "hello", "how are you"])
    post_id = fake_reddit.add_post("hiking", "carol", title="Trail buddy?", selftext="Anyone?")
    fake_reddit.add_comment("carol", "hiking", "nice", post_id=post_id)

    messages = get(fake_reddit, "/message/messages/").json()
    assert keys_of(messages, "t4") == keys_of(recorded("TestInbox.test_messages.json", 1), "t4")
    thread = messages["data"]["children"][0]["data"]
    assert thread["name"] == root
    replies = thread["replies"]["data"]["children"]
    assert [r["data"]["body"] for r in replies] == ["hello", "how are you"]
    assert {r["data"]["first_message_name"] for r in replies} == {root}
    assert replies[1]["data"]["parent_id"] == replies[0]["data"]["name"]

    posts = get(fake_reddit, "/r/hiking/new").json()
    assert keys_of(recorded("TestFront.test_new.json", 1), "t3") <= keys_of(posts, "t3")
    comments = get(fake_reddit, "/user/carol/comments").json()
    assert keys_of(recorded("TestRedditor.test_stream__comments.json", 1), "t1") <= keys_of(comments, "t1")
    me = get(fake_reddit, "/api/v1/me").json()
    assert {"name", "id", "created_utc", "link_karma", "comment_karma", "is_suspended"} <= set(me)
    about = get(fake_reddit, "/user/carol/about").json()
    assert set(recorded("TestRedditor.test_message.json", 1)["data"]) <= set(about["data"])


def test_sent_search_me_and_token_answers_have_the_recorded_shapes(fake_reddit):
    fake_reddit.add_thread("me", "bob", ["hello bob"])
    fake_reddit.add_post("hiking", "carol", title="Trail buddy?", selftext="Anyone?")
    sent = get(fake_reddit, "/message/sent").json()
    assert keys_of(sent, "t4") == keys_of(recorded("TestInbox.test_sent.json", 1), "t4")
    found = get(fake_reddit, "/r/hiking/search", q="buddy", restrict_sr="on").json()
    assert keys_of(recorded("TestSubreddit.test_search.json", 1), "t3") <= keys_of(found, "t3")
    assert set(recorded("TestInbox.test_sent.json", 2)) == set(get(fake_reddit, "/api/v1/me").json())
    token = requests.post(f"{fake_reddit.url}/api/v1/access_token", auth=(fake_reddit.client_id, fake_reddit.client_secret),
                          data={"grant_type": "refresh_token", "refresh_token": fake_reddit.issue_refresh_token("me")},
                          timeout=5).json()
    assert set(recorded("TestInbox.test_sent.json", 0)) <= set(token)


def test_a_post_page_lists_the_post_then_its_comment_tree(fake_reddit):
    post_id = fake_reddit.add_post("hiking", "carol", title="Trail buddy?", selftext="Anyone?")
    top = fake_reddit.add_comment("dave", "hiking", "me!", post_id=post_id)
    fake_reddit.add_comment("carol", "hiking", "great", post_id=post_id, parent=f"t1_{top}")
    post, comments = get(fake_reddit, f"/comments/{post_id}").json()
    assert [c["data"]["id"] for c in post["data"]["children"]] == [post_id]
    assert keys_of(recorded("TestFront.test_new.json", 1), "t3") <= keys_of(post, "t3")
    [thread] = comments["data"]["children"]
    assert (thread["data"]["body"], thread["data"]["parent_id"]) == ("me!", f"t3_{post_id}")
    assert [r["data"]["body"] for r in thread["data"]["replies"]["data"]["children"]] == ["great"]
    assert get(fake_reddit, "/r/hiking/comments/zzzzzz/x").status_code == 404


def test_message_listing_pages_like_reddit(fake_reddit):
    fake_reddit.bulk_threads("me", threads=250, per_thread=2)
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        data = get(fake_reddit, "/message/messages/", **params).json()["data"]
        seen += [c["data"]["name"] for c in data["children"]]
        pages += 1
        after = data["after"]
        if not after:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 250


def test_threads_are_ordered_by_latest_activity(fake_reddit):
    old = fake_reddit.add_thread("bob", "me", ["old thread"], start=1_600_000_000)
    new = fake_reddit.add_thread("carol", "me", ["new thread"], start=1_700_000_000)
    fake_reddit.add_message("bob", "me", "a late reply", reply_to=old, created=1_800_000_000)
    names = [c["data"]["name"] for c in get(fake_reddit, "/message/messages").json()["data"]["children"]]
    assert names == [old, new]


def test_fixture_loads_as_state_and_is_served_verbatim(fake_reddit):
    counts = fake_reddit.load_fixture("TestInbox.test_messages.json", username="me")
    assert counts["messages"] > 150
    served = get(fake_reddit, "/message/messages", limit=100).json()
    original = recorded("TestInbox.test_messages.json", 1)
    first = original["data"]["children"][0]["data"]
    assert served["data"]["children"][0]["data"]["id"] == first["id"]
    assert served["data"]["children"][0]["data"]["body"] == first["body"]


def test_oauth_code_flow_issues_a_refresh_token(fake_reddit):
    fake_reddit.login("alice")
    answer = requests.get(f"{fake_reddit.url}/api/v1/authorize", allow_redirects=False, timeout=5, params={
        "client_id": fake_reddit.client_id, "response_type": "code", "state": "s1", "duration": "permanent",
        "redirect_uri": fake_reddit.redirect_uri, "scope": "identity privatemessages"})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["s1"]
    token = requests.post(f"{fake_reddit.url}/api/v1/access_token", auth=(fake_reddit.client_id, fake_reddit.client_secret),
                          timeout=5, data={"grant_type": "authorization_code", "code": query["code"][0],
                                           "redirect_uri": fake_reddit.redirect_uri}).json()
    assert token["refresh_token"] and token["scope"] == "identity privatemessages"
    again = requests.post(f"{fake_reddit.url}/api/v1/access_token", auth=(fake_reddit.client_id, fake_reddit.client_secret),
                          timeout=5, data={"grant_type": "authorization_code", "code": query["code"][0],
                                           "redirect_uri": fake_reddit.redirect_uri}).json()
    assert again == {"error": "invalid_grant"}


def test_denied_consent_redirects_with_access_denied(fake_reddit):
    fake_reddit.login("alice")
    fake_reddit.deny_consent()
    answer = requests.get(f"{fake_reddit.url}/api/v1/authorize", allow_redirects=False, timeout=5, params={
        "client_id": fake_reddit.client_id, "response_type": "code", "state": "s2", "duration": "permanent",
        "redirect_uri": fake_reddit.redirect_uri, "scope": "identity"})
    assert parse_qs(urlsplit(answer.headers["Location"]).query) == {"state": ["s2"], "error": ["access_denied"]}


def test_wrong_client_secret_is_refused(fake_reddit):
    token = fake_reddit.issue_refresh_token("alice")
    answer = requests.post(f"{fake_reddit.url}/api/v1/access_token", auth=(fake_reddit.client_id, "wrong"),
                           data={"grant_type": "refresh_token", "refresh_token": token}, timeout=5)
    assert answer.status_code == 401


def test_praw_reads_and_sends_through_the_fake(fake_reddit):
    fake_reddit.add_user("bob")
    fake_reddit.add_thread("bob", "alice", ["hi alice"])
    reddit = praw.Reddit(client_id=fake_reddit.client_id, client_secret=fake_reddit.client_secret,
                         refresh_token=fake_reddit.issue_refresh_token("alice"), user_agent="fake-test/0.1",
                         oauth_url=fake_reddit.url, reddit_url=fake_reddit.url, check_for_updates=False)
    assert reddit.user.me().name == "alice"
    assert [m.body for m in reddit.inbox.messages(limit=10)] == ["hi alice"]
    reddit.redditor("bob").message(subject="yo", message="hello bob")
    assert fake_reddit.sent[-1]["dest"] == "bob" and fake_reddit.sent[-1]["body"] == "hello bob"


def test_praw_refreshes_after_access_token_expiry(fake_reddit):
    reddit = praw.Reddit(client_id=fake_reddit.client_id, client_secret=fake_reddit.client_secret,
                         refresh_token=fake_reddit.issue_refresh_token("alice"), user_agent="fake-test/0.1",
                         oauth_url=fake_reddit.url, reddit_url=fake_reddit.url, check_for_updates=False)
    assert reddit.user.me().name == "alice"
    fake_reddit.expire_access_tokens()
    assert reddit.user.me(use_cache=False).name == "alice"
    grants = [r.form.get("grant_type") for r in fake_reddit.requests if r.path == "/api/v1/access_token"]
    assert grants == ["refresh_token", "refresh_token"]


def test_revoked_refresh_token_gets_invalid_grant(fake_reddit):
    token = fake_reddit.issue_refresh_token("alice")
    fake_reddit.revoke_refresh_token(token)
    answer = requests.post(f"{fake_reddit.url}/api/v1/access_token", auth=(fake_reddit.client_id, fake_reddit.client_secret),
                           data={"grant_type": "refresh_token", "refresh_token": token}, timeout=5)
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_grant"}


def test_compose_errors_use_reddit_codes(fake_reddit):
    fake_reddit.add_user("closed", accepts_messages=False)
    headers = bearer(fake_reddit, "alice")
    answer = requests.post(f"{fake_reddit.url}/api/compose", headers=headers, timeout=5,
                           data={"to": "nobody_here", "subject": "s", "text": "t", "api_type": "json"}).json()
    assert answer["json"]["errors"][0][0] == "USER_DOESNT_EXIST"
    answer = requests.post(f"{fake_reddit.url}/api/compose", headers=headers, timeout=5,
                           data={"to": "closed", "subject": "s", "text": "t", "api_type": "json"}).json()
    assert answer["json"]["errors"][0][0] == "NOT_WHITELISTED_BY_USER_MESSAGE"


def test_injected_failures_come_back_once_with_headers(fake_reddit):
    fake_reddit.inject(r"^/api/v1/me$", status=429, headers={"x-ratelimit-reset": "7"})
    first = get(fake_reddit, "/api/v1/me")
    assert first.status_code == 429
    assert first.headers["x-ratelimit-reset"] == "7" and first.headers["x-ratelimit-remaining"] == "0.0"
    assert get(fake_reddit, "/api/v1/me").status_code == 200
    fake_reddit.inject(r"^/api/v1/me$", status=401)
    answer = get(fake_reddit, "/api/v1/me")
    assert answer.status_code == 401 and "invalid_token" in answer.headers["www-authenticate"]


def test_slow_responses_wait(fake_reddit):
    fake_reddit.slow(r"^/api/v1/me$", 0.3, count=1)
    started = time.monotonic()
    assert get(fake_reddit, "/api/v1/me").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_rate_limit_headers_count_down_and_429_past_the_budget(fake_reddit):
    fake_reddit.rate_limit(limit=2, window=600)
    headers = bearer(fake_reddit, "alice")
    statuses = [requests.get(f"{fake_reddit.url}/api/v1/me", headers=headers, timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[1].headers["x-ratelimit-remaining"] == "0.0"
    assert statuses[1].headers["x-ratelimit-used"] == "2"


@pytest.mark.parametrize("status,reason,code", [("private", "private", 403), ("banned", "banned", 404)])
def test_closed_communities_answer_like_reddit(fake_reddit, status, reason, code):
    fake_reddit.add_subreddit("closedsub", status=status)
    answer = get(fake_reddit, "/r/closedsub/new")
    assert answer.status_code == code and answer.json()["reason"] == reason


def test_unknown_community_redirects_to_search(fake_reddit):
    answer = requests.get(f"{fake_reddit.url}/r/nosuchplace/new", headers=bearer(fake_reddit, "me"),
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/subreddits/search")


def test_removed_and_deleted_posts_keep_their_slot(fake_reddit):
    removed = fake_reddit.add_post("hiking", "carol", title="one", selftext="body one")
    deleted = fake_reddit.add_post("hiking", "dave", title="two", selftext="body two")
    fake_reddit.remove_post(removed, by="moderator")
    fake_reddit.remove_post(deleted, by="author")
    posts = {c["data"]["id"]: c["data"] for c in get(fake_reddit, "/r/hiking/new").json()["data"]["children"]}
    assert posts[removed]["selftext"] == "[removed]" and posts[removed]["author"] == "carol"
    assert posts[deleted]["selftext"] == "[deleted]" and posts[deleted]["author"] == "[deleted]"


def test_user_states(fake_reddit):
    fake_reddit.add_user("gone", status="deleted")
    fake_reddit.add_user("banned", status="suspended")
    assert get(fake_reddit, "/user/gone/about").status_code == 404
    assert get(fake_reddit, "/user/banned/about").json()["data"]["is_suspended"] is True
    assert get(fake_reddit, "/user/nobody_at_all/about").status_code == 404


def test_deleted_account_messages_show_deleted_author(fake_reddit):
    root = fake_reddit.add_thread("bob", "me", ["hi"])
    fake_reddit.set_user_status("bob", "deleted")
    data = get(fake_reddit, "/message/messages").json()["data"]["children"][0]["data"]
    assert data["name"] == root and data["author"] == "[deleted]"


def test_images_are_served_without_auth(fake_reddit):
    url = fake_reddit.add_image("/img/a.png", b"\x89PNG....", "image/png")
    answer = requests.get(url, timeout=5)
    assert answer.content == b"\x89PNG...." and answer.headers["Content-Type"] == "image/png"


def test_requests_are_logged_with_the_user(fake_reddit):
    get(fake_reddit, "/api/v1/me", username="alice")
    last = fake_reddit.requests[-1]
    assert (last.method, last.path, last.username) == ("GET", "/api/v1/me", "alice")
    token_call = fake_reddit.requests[-2]
    assert base64.b64decode(token_call.headers["authorization"].split()[1]).decode().startswith(fake_reddit.client_id)


def test_bulk_listing_of_fifty_thousand_messages_is_fast(fake_reddit):
    # CPU time of this process (the server is a thread of it): other load on the machine does not count.
    started = time.process_time()
    assert fake_reddit.bulk_threads("me", threads=10_000, per_thread=5) == 50_000
    headers = bearer(fake_reddit, "me")
    after, pages = None, 0
    while pages < 20:
        params = {"limit": 100, **({"after": after} if after else {})}
        after = requests.get(f"{fake_reddit.url}/message/messages", params=params, headers=headers,
                             timeout=5).json()["data"]["after"]
        pages += 1
    assert time.process_time() - started < 10


def test_a_request_asking_to_close_gets_connection_close_back(fake_reddit):
    # prawcore's token requests ask to close; a server that closes without saying so
    # makes the client reuse a dying socket for the next request (a send, never retried).
    closing = requests.get(f"{fake_reddit.url}/api/v1/me", headers={"Connection": "close"}, timeout=5)
    assert closing.headers.get("Connection") == "close"
    assert "Connection" not in requests.get(f"{fake_reddit.url}/api/v1/me", timeout=5).headers
