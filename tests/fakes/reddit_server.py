"""A fake Reddit (real HTTP on 127.0.0.1) for tests; PRAW talks to it over the wire.

The `fake_reddit` fixture starts one server per test session, resets it before
every test and points the app at it (settings `PROVIDER_REDDIT_OAUTH_URL`,
`_BASE_URL`, `_CLIENT_ID` (unique per test, so rate-limit state never leaks
between tests), `_CLIENT_SECRET`, `_REDIRECT_URI`, `_MEDIA_HOSTS`,
`_USER_AGENT`, `_TIMEOUT`).  One server plays both hosts: the "www" endpoints
(`/api/v1/authorize`, `/api/v1/access_token`) and the "oauth" API.  Answers
have exactly the JSON shapes of the recorded responses in
`tests/fixtures/reddit/` (Listing / t1 / t2 / t3 / t4 things, `replies`
embedded in message threads, `first_message_name`, `parent_id`, `after`,
`[deleted]` authors, `X-Ratelimit-*` headers).

Control API (all methods are thread-safe; names are case-insensitive like Reddit's)::

    fake.url, fake.client_id, fake.client_secret, fake.redirect_uri

    # people and tokens
    fake.add_user("alice", status="active"|"suspended"|"deleted", accepts_messages=True,
                  link_karma=1, comment_karma=2, bio="...", created=<epoch>)
    fake.set_user_status("alice", "suspended")
    token = fake.issue_refresh_token("alice")          # as if alice had consented
    fake.revoke_refresh_token(token)                   # refresh -> 400 invalid_grant
    fake.expire_access_tokens()                        # next API call -> 401, PRAW refreshes
    fake.login("alice")                                # who grants consent at /api/v1/authorize
    fake.deny_consent()                                # next authorize answers error=access_denied

    # private messages (ids are base36, fullnames "t4_<id>")
    name = fake.add_message("bob", "alice", "hi there", subject="hello")
    fake.add_message("alice", "bob", "hello bob", reply_to=name)    # same thread
    root = fake.add_thread("bob", "alice", ["hi", "hey", "how are you"])  # alternating authors
    fake.bulk_threads("alice", threads=10_000, per_thread=5)        # 50k messages, cheap
    fake.load_fixture("TestInbox.test_messages.json", username="alice")  # recorded state
    fake.delete_message(name, how="gone"|"deleted"|"removed")      # remote deletion
    fake.message(name) -> dict                                      # the stored t4 data
    fake.messages_between("alice", "bob") -> list[dict]
    fake.sent -> list[dict]                    # messages created via /api/compose or /api/comment

    # posts, comments, communities (subreddits are created on first use)
    post_id = fake.add_post("hiking", "carol", title="Looking for a buddy", selftext="...",
                            score=5, created=<epoch>, image_url=None)
    comment_id = fake.add_comment("carol", "hiking", "nice trail", post_id=post_id)
    fake.remove_post(post_id, by="moderator"|"author");  fake.delete_comment(comment_id)
    fake.ban_subreddit("hiking");  fake.private_subreddit("hiking")

    # media
    url = fake.add_image("/img/a.png", b"...", "image/png")   # served without auth

    fake.add_inbox_reply("alice", "carol", "nice comment")      # a t1 in /message/inbox and /unread
    fake.retire_listing("messages")            # /message/messages answers 302 -> /login/ (Reddit since 2025)

    # failures
    fake.inject(r"^/message/", status=429|401|403|404|500, headers={...}, body=None, count=1)
    fake.slow(r"^/api/v1/me", seconds=2.0, count=None)
    fake.rate_limit(limit=1000, window=600)   # X-Ratelimit-* budget per client id; 429 beyond
    fake.doing_that_too_much(minutes=9)        # next compose/reply answers RATELIMIT (HTTP 200, as Reddit)

    fake.requests -> list[FakeRequest]   # every request: method, path, query, form, headers, username

Listings page like Reddit's: `limit` (default 25, max 100), `after`/`before`
fullnames, `after` of the last item when more remain.  `/message/messages` is
threaded (roots with `replies`, ordered by latest activity), `/message/sent`
and `/message/inbox` are flat, newest first.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from .http import LocalHTTPServer, QuietHandler

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "reddit"
DEFAULT_SCOPES = ("identity", "privatemessages", "read", "history")
# What each API path needs (checked against the access token's scopes).
_SCOPE_RULES = [
    (re.compile(r"^/api/v1/me$"), "identity"),
    (re.compile(r"^/message/|^/api/compose$|^/api/comment$"), "privatemessages"),
    (re.compile(r"^/user/[^/]+/(submitted|comments|overview)$"), "history"),
]
_ID_START = int("30000000", 36)  # above every id in the recorded fixtures
# Account settings /api/v1/me carries besides the public profile (values as recorded).
_ME_SETTINGS = {
    "can_create_subreddit": True, "can_edit_name": False, "force_password_reset": False, "gold_expiration": None,
    "has_android_subscription": False, "has_external_account": False, "has_gold_subscription": False,
    "has_ios_subscription": False, "has_paypal_subscription": False, "has_stripe_subscription": False,
    "has_subscribed_to_premium": False, "has_visited_new_profile": False, "in_chat": True,
    "in_redesign_beta": False, "is_sponsor": False, "new_modmail_exists": True, "pref_autoplay": True,
    "pref_clickgadget": 0, "pref_geopopular": "", "pref_no_profanity": True, "pref_show_presence": False,
    "pref_show_trending": False, "pref_show_twitter": False, "pref_top_karma_subreddits": False,
    "pref_video_autoplay": True, "seen_give_award_tooltip": False, "seen_layout_switch": False,
    "seen_premium_adblock_modal": False, "seen_redesign_modal": True, "seen_subreddit_chat_ftux": False,
}


def _b36(number: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rem = divmod(number, 36)
        out = chars[rem] + out
    return out or "0"


def _md_html(text: str) -> str:
    return f'<!-- SC_OFF --><div class="md"><p>{html.escape(text)}</p>\n</div><!-- SC_ON -->'


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50] or "post"


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict
    form: dict
    headers: dict
    username: str | None
    client_id: str | None
    at: float
    status: int | None = None  # filled in once answered


@dataclass(slots=True)
class _User:
    name: str
    id: str
    status: str = "active"
    accepts_messages: bool = True
    created: float = 1_500_000_000.0
    link_karma: int = 1
    comment_karma: int = 0
    bio: str = ""
    icon_img: str = ""


@dataclass(slots=True)
class _Msg:
    id: str
    author: str | None
    dest: str
    subject: str
    body: str
    created: float
    root: str  # id of the thread's first message (itself for a root)
    parent: str | None
    distinguished: str | None = None
    subreddit: str | None = None
    author_fullname: str | None = None
    state: str = "visible"  # visible | gone | deleted | removed
    new: bool = True
    raw: dict | None = None  # the recorded data, served verbatim when loaded from a fixture


@dataclass(slots=True)
class _Post:
    id: str
    subreddit: str
    author: str | None
    title: str
    selftext: str
    created: float
    score: int = 1
    num_comments: int = 0
    url: str | None = None
    image_url: str | None = None
    state: str = "visible"  # visible | removed | deleted
    raw: dict | None = None


@dataclass(slots=True)
class _Comment:
    id: str
    author: str | None
    subreddit: str
    body: str
    created: float
    post_id: str | None
    parent: str | None  # fullname
    score: int = 1
    state: str = "visible"
    raw: dict | None = None


@dataclass
class _Sub:
    name: str
    id: str
    status: str = "public"  # public | private | banned
    posts: list = field(default_factory=list)  # post ids


@dataclass
class _Rule:
    pattern: re.Pattern
    status: int | None = None
    headers: dict | None = None
    body: object = None
    count: int | None = 1
    seconds: float = 0.0


class FakeReddit(LocalHTTPServer):
    def __init__(self):
        self._lock = threading.RLock()
        self._release = threading.Event()
        self.redirect_uri = "http://testserver/identities/connect/callback"
        self.reset()
        super().__init__(_handler_for(self))

    # ------------------------------------------------------------------ lifecycle
    def reset(self):
        with self._lock:
            self._release.set()  # let any slow handler of the previous test finish now
            self._release = threading.Event()
            self.client_id = f"fakeclient-{uuid.uuid4().hex[:12]}"
            self.client_secret = secrets.token_urlsafe(18)
            self.requests: list[FakeRequest] = []
            self.sent: list[dict] = []
            self.access_token_ttl = 3600
            self._ids = itertools.count(_ID_START)
            self._clock = time.time() - 30 * 86400
            self._users: dict[str, _User] = {}
            self._refresh: dict[str, dict] = {}
            self._access: dict[str, dict] = {}
            self._codes: dict[str, dict] = {}
            self._consent_user: str | None = None
            self._deny_next = False
            self._msgs: dict[str, _Msg] = {}
            self._threads: dict[str, list[str]] = {}  # root id -> message ids, oldest first
            self._user_threads: dict[str, set[str]] = {}
            # Listing order per (user, folder), rebuilt after any change to messages.
            self._order: dict[tuple[str, str], tuple[list[str], dict[str, int]]] = {}
            self._posts: dict[str, _Post] = {}
            self._comments: dict[str, _Comment] = {}
            self._subs: dict[str, _Sub] = {}
            self._images: dict[str, tuple[bytes, str]] = {}
            self._inbox_replies: dict[str, dict[str, dict]] = {}  # user -> t1 id -> data (comment replies/mentions)
            self._rules: list[_Rule] = []
            self._slow: list[_Rule] = []
            self._limit = (100_000, 600)
            self._windows: dict[str, list] = {}

    def close(self):
        self._release.set()
        super().close()

    # ------------------------------------------------------------------ helpers
    def _new_id(self) -> str:
        return _b36(next(self._ids))

    def _tick(self) -> float:
        self._clock += 1
        return self._clock

    @staticmethod
    def _bare(name: str) -> str:
        return name.split("_", 1)[1] if re.match(r"^t\d_", name) else name

    def _user(self, name: str | None) -> _User | None:
        return self._users.get(name.lower()) if name else None

    def _ensure_user(self, name: str) -> _User:
        user = self._user(name)
        if user is None:
            user = self.add_user(name)
        return user

    # ------------------------------------------------------------------ users & tokens
    def add_user(self, name: str, *, status: str = "active", accepts_messages: bool = True,
                 link_karma: int = 1, comment_karma: int = 0, bio: str = "", created: float | None = None,
                 icon_img: str = "") -> _User:
        assert status in ("active", "suspended", "deleted"), status
        with self._lock:
            user = _User(name=name, id=self._new_id(), status=status, accepts_messages=accepts_messages,
                         created=created or 1_500_000_000.0, link_karma=link_karma,
                         comment_karma=comment_karma, bio=bio, icon_img=icon_img)
            self._users[name.lower()] = user
            return user

    def set_user_status(self, name: str, status: str):
        assert status in ("active", "suspended", "deleted"), status
        with self._lock:
            self._ensure_user(name).status = status

    def issue_refresh_token(self, username: str, scopes=DEFAULT_SCOPES) -> str:
        with self._lock:
            self._ensure_user(username)
            token = f"{_b36(secrets.randbits(40))}-{secrets.token_urlsafe(20)}"
            self._refresh[token] = {"username": username, "scopes": tuple(scopes), "revoked": False,
                                    "client_id": self.client_id}
            return token

    def revoke_refresh_token(self, token: str):
        with self._lock:
            self._refresh[token]["revoked"] = True
            for access in self._access.values():
                if access["refresh"] == token:
                    access["expires"] = 0

    def revoke_user_tokens(self, username: str):
        with self._lock:
            for token, info in self._refresh.items():
                if info["username"].lower() == username.lower():
                    self.revoke_refresh_token(token)

    def expire_access_tokens(self):
        with self._lock:
            for access in self._access.values():
                access["expires"] = 0

    def login(self, username: str):
        with self._lock:
            self._ensure_user(username)
            self._consent_user = username

    def deny_consent(self):
        with self._lock:
            self._deny_next = True

    # ------------------------------------------------------------------ messages
    def _store_msg(self, msg: _Msg):
        self._msgs[msg.id] = msg
        self._threads.setdefault(msg.root, []).append(msg.id)
        for who in (msg.author, msg.dest):
            if who:
                self._user_threads.setdefault(who.lower(), set()).add(msg.root)
        self._order.clear()

    def add_message(self, author: str | None, dest: str, body: str, subject: str = "hello", *,
                    created: float | None = None, reply_to: str | None = None,
                    distinguished: str | None = None, subreddit: str | None = None, new: bool = True) -> str:
        """Store one message (a reply when `reply_to` names a message); returns its fullname."""
        with self._lock:
            if author:
                self._ensure_user(author)
            if not dest.startswith("#"):
                self._ensure_user(dest)
            parent = root = None
            if reply_to:
                parent_msg = self._msgs[self._bare(reply_to)]
                parent, root = parent_msg.id, parent_msg.root
                subject = self._msgs[root].subject
                subject = subject if subject.startswith("re: ") else f"re: {subject}"
            msg_id = self._new_id()
            author_user = self._user(author)
            msg = _Msg(id=msg_id, author=author, dest=dest, subject=subject, body=body,
                       created=float(created if created is not None else self._tick()),
                       root=root or msg_id, parent=parent, distinguished=distinguished, subreddit=subreddit,
                       author_fullname=f"t2_{author_user.id}" if author_user else None, new=new)
            self._store_msg(msg)
            return f"t4_{msg_id}"

    def add_thread(self, first_author: str, other: str, bodies, *, subject: str = "hello",
                   start: float | None = None, step: float = 60.0) -> str:
        """A thread of alternating messages (first_author, other, first_author...); returns the root fullname."""
        bodies = [f"message {i + 1}" for i in range(bodies)] if isinstance(bodies, int) else list(bodies)
        with self._lock:
            start = start if start is not None else self._tick()
            root = prev = None
            people = (first_author, other)
            for i, body in enumerate(bodies):
                prev = self.add_message(people[i % 2], people[(i + 1) % 2], body, subject, created=start + i * step,
                                        reply_to=prev)
                root = root or prev
            self._clock = max(self._clock, start + len(bodies) * step)
            return root

    def bulk_threads(self, username: str, *, threads: int, per_thread: int = 5, counterparts: int = 100,
                     start: float | None = None, step: float = 30.0) -> int:
        """Many synthetic threads between `username` and `counterparts` people, cheaply; returns the message count."""
        with self._lock:
            me = self._ensure_user(username)
            people = [self._ensure_user(f"{username}_peer{i}") for i in range(counterparts)]
            start = start if start is not None else time.time() - threads * per_thread * step - 3600
            t = start
            for n in range(threads):
                peer = people[n % counterparts]
                pair = (peer, me) if n % 2 == 0 else (me, peer)
                subject = f"thread {n} with {peer.name}"
                root = None
                for i in range(per_thread):
                    author, dest = pair[i % 2], pair[(i + 1) % 2]
                    msg_id = _b36(next(self._ids))
                    msg = _Msg(id=msg_id, author=author.name, dest=dest.name,
                               subject=subject if i == 0 else f"re: {subject}",
                               body=f"message {i + 1} of thread {n}: hello {dest.name}, from {author.name}",
                               created=t, root=root or msg_id, parent=prev if root else None,
                               author_fullname=f"t2_{author.id}", new=False)
                    self._msgs[msg_id] = msg
                    self._threads.setdefault(msg.root, []).append(msg_id)
                    root, prev = root or msg_id, msg_id
                    t += step
                self._user_threads.setdefault(me.name.lower(), set()).add(root)
                self._user_threads.setdefault(peer.name.lower(), set()).add(root)
            self._order.clear()
            self._clock = max(self._clock, t)
            return threads * per_thread

    def delete_message(self, name: str, *, how: str = "gone"):
        """Remote deletion: `gone` (no longer listed), `deleted` (author+body [deleted]), `removed` (body [removed])."""
        assert how in ("gone", "deleted", "removed"), how
        with self._lock:
            self._msgs[self._bare(name)].state = how
            self._order.clear()

    def message(self, name: str) -> dict:
        with self._lock:
            return self._msg_json(self._msgs[self._bare(name)], with_replies=False)["data"]

    def messages_between(self, a: str, b: str) -> list[dict]:
        pair = {a.lower(), b.lower()}
        with self._lock:
            found = [m for m in self._msgs.values()
                     if m.author and {m.author.lower(), m.dest.lower()} == pair and m.state != "gone"]
            return [self._msg_json(m, with_replies=False)["data"] for m in sorted(found, key=lambda m: m.created)]

    def add_inbox_reply(self, username: str, author: str, body: str, *, mention: bool = False,
                        created: float | None = None) -> str:
        """A comment reply (or a username mention) in `username`'s /message/inbox (a t1, was_comment); its fullname."""
        with self._lock:
            self._ensure_user(author)
            item_id = self._new_id()
            when = float(created if created is not None else self._tick())
            self._inbox_replies.setdefault(username.lower(), {})[item_id] = {
                "id": item_id, "name": f"t1_{item_id}", "author": author, "dest": username, "body": body,
                "body_html": _md_html(body), "was_comment": True, "new": True, "created": when, "created_utc": when,
                "subject": "username mention" if mention else "comment reply",
                "type": "username_mention" if mention else "comment_reply", "subreddit": "hiking",
                "context": f"/r/hiking/comments/abc/post/{item_id}/?context=3", "parent_id": "t3_abc",
                "first_message_name": None, "replies": "", "distinguished": None}
            self._order.clear()
            return f"t1_{item_id}"

    def retire_listing(self, folder: str = "messages", *, location: str = "https://www.reddit.com/login/"):
        """From now on `/message/<folder>` answers 302 to the login page (as Reddit does since mid-2025)."""
        self.inject(rf"^/message/{folder}$", status=302, headers={"Location": location}, body="", count=None)

    # ------------------------------------------------------------------ posts & comments
    def _ensure_sub(self, name: str) -> _Sub:
        sub = self._subs.get(name.lower())
        if sub is None:
            sub = self._subs[name.lower()] = _Sub(name=name, id=self._new_id())
        return sub

    def add_subreddit(self, name: str, *, status: str = "public") -> None:
        with self._lock:
            self._ensure_sub(name).status = status

    def ban_subreddit(self, name: str):
        self.add_subreddit(name, status="banned")

    def private_subreddit(self, name: str):
        self.add_subreddit(name, status="private")

    def add_post(self, subreddit: str, author: str | None, *, title: str = "A post", selftext: str = "",
                 score: int = 1, num_comments: int = 0, created: float | None = None, url: str | None = None,
                 image_url: str | None = None) -> str:
        """Store a post (t3); returns its id (not the fullname)."""
        with self._lock:
            if author:
                self._ensure_user(author)
            sub = self._ensure_sub(subreddit)
            post = _Post(id=self._new_id(), subreddit=sub.name, author=author, title=title, selftext=selftext,
                         created=float(created if created is not None else self._tick()), score=score,
                         num_comments=num_comments, url=url, image_url=image_url)
            self._posts[post.id] = post
            sub.posts.append(post.id)
            return post.id

    def remove_post(self, post_id: str, *, by: str = "moderator"):
        assert by in ("moderator", "author"), by
        with self._lock:
            self._posts[self._bare(post_id)].state = "removed" if by == "moderator" else "deleted"

    def add_comment(self, author: str | None, subreddit: str, body: str, *, post_id: str | None = None,
                    parent: str | None = None, created: float | None = None, score: int = 1) -> str:
        """Store a comment (t1) on `post_id` (a new post is made when omitted); returns its id."""
        with self._lock:
            if author:
                self._ensure_user(author)
            if post_id is None:
                post_id = self.add_post(subreddit, None, title=f"Discussion in {subreddit}")
            post_id = self._bare(post_id)
            comment = _Comment(id=self._new_id(), author=author, subreddit=self._ensure_sub(subreddit).name,
                               body=body, created=float(created if created is not None else self._tick()),
                               post_id=post_id, parent=parent or f"t3_{post_id}", score=score)
            self._comments[comment.id] = comment
            if post_id in self._posts:
                self._posts[post_id].num_comments += 1
            return comment.id

    def delete_comment(self, comment_id: str, *, how: str = "deleted"):
        assert how in ("deleted", "removed"), how
        with self._lock:
            self._comments[self._bare(comment_id)].state = how

    # ------------------------------------------------------------------ media & failures
    def add_image(self, url_path: str, data: bytes, content_type: str = "image/png") -> str:
        with self._lock:
            self._images[url_path] = (data, content_type)
            return self.url + url_path

    def inject(self, path_regex: str, *, status: int, headers: dict | None = None, body=None,
               count: int | None = 1):
        """The next `count` requests whose path matches get `status` (None count: forever)."""
        with self._lock:
            self._rules.append(_Rule(re.compile(path_regex), status=status, headers=headers, body=body, count=count))

    def doing_that_too_much(self, minutes: int = 9, *, message: str | None = None, count: int | None = 1):
        """Sends answer Reddit's per-account RATELIMIT error (in the JSON body of a 200, as recorded)."""
        text = message or f"you are doing that too much. try again in {minutes} minutes."
        self.inject(r"^/api/(compose|comment)$", status=200, count=count,
                    body={"json": {"errors": [["RATELIMIT", text, "ratelimit"]]}})

    def slow(self, path_regex: str, seconds: float, *, count: int | None = None):
        with self._lock:
            self._slow.append(_Rule(re.compile(path_regex), seconds=seconds, count=count))

    def rate_limit(self, limit: int = 1000, window: int = 600):
        with self._lock:
            self._limit = (limit, window)
            self._windows.clear()

    # ------------------------------------------------------------------ fixtures
    def load_fixture(self, name: str, *, username: str = "me") -> dict:
        """Load the recorded listings of a cassette as state; `<USERNAME>` becomes `username`."""
        text = (FIXTURES_DIR / name).read_text()
        cassette = json.loads(text.replace("<USERNAME>", username))
        counts = {"messages": 0, "posts": 0, "comments": 0, "users": 0}
        with self._lock:
            self._ensure_user(username)
            for interaction in cassette["interactions"]:
                body = (interaction["response"].get("body") or {}).get("string") or ""
                try:
                    payload = json.loads(body)
                except ValueError:
                    continue
                path = urlsplit(interaction["request"]["uri"]).path.rstrip("/")
                if path == "/api/v1/me" and isinstance(payload, dict):
                    self._ensure_user(payload["name"])
                    counts["users"] += 1
                elif isinstance(payload, dict) and payload.get("kind") == "t2":
                    data = payload["data"]
                    if not self._user(data["name"]):
                        self.add_user(data["name"], created=data.get("created_utc"),
                                      link_karma=data.get("link_karma", 0), comment_karma=data.get("comment_karma", 0))
                        counts["users"] += 1
                elif isinstance(payload, dict) and payload.get("kind") == "Listing":
                    for child in payload["data"]["children"]:
                        kind = child.get("kind")
                        if kind == "t4":
                            counts["messages"] += self._load_t4(child["data"])
                        elif kind == "t3":
                            counts["posts"] += self._load_t3(child["data"])
                        elif kind == "t1":
                            counts["comments"] += self._load_t1(child["data"])
            self._order.clear()
        return counts

    def _load_t4(self, data: dict) -> int:
        loaded = 0
        replies = data.get("replies") or {}
        for item in [data] + [c["data"] for c in (replies.get("data") or {}).get("children", [])]:
            if item["id"] in self._msgs:
                continue
            root = self._bare(item["first_message_name"]) if item.get("first_message_name") else item["id"]
            raw = dict(item, replies="")
            msg = _Msg(id=item["id"], author=item.get("author"), dest=item.get("dest") or "",
                       subject=item.get("subject") or "", body=item.get("body") or "",
                       created=float(item.get("created_utc") or 0), root=root,
                       parent=self._bare(item["parent_id"]) if item.get("parent_id") else None,
                       distinguished=item.get("distinguished"), subreddit=item.get("subreddit"),
                       author_fullname=item.get("author_fullname"), new=bool(item.get("new")), raw=raw)
            if msg.author and msg.author != "[deleted]":
                self._ensure_user(msg.author)
            self._store_msg(msg)
            loaded += 1
        return loaded

    def _load_t3(self, data: dict) -> int:
        if data["id"] in self._posts:
            return 0
        sub = self._ensure_sub(data["subreddit"])
        author = data.get("author")
        if author and author != "[deleted]":
            self._ensure_user(author)
        post = _Post(id=data["id"], subreddit=sub.name, author=author if author != "[deleted]" else None,
                     title=data.get("title") or "", selftext=data.get("selftext") or "",
                     created=float(data.get("created_utc") or 0), score=data.get("score") or 0,
                     num_comments=data.get("num_comments") or 0, url=data.get("url"), raw=dict(data))
        self._posts[post.id] = post
        sub.posts.append(post.id)
        return 1

    def _load_t1(self, data: dict) -> int:
        if data["id"] in self._comments:
            return 0
        author = data.get("author")
        if author and author != "[deleted]":
            self._ensure_user(author)
        comment = _Comment(id=data["id"], author=author if author != "[deleted]" else None,
                           subreddit=self._ensure_sub(data["subreddit"]).name, body=data.get("body") or "",
                           created=float(data.get("created_utc") or 0),
                           post_id=self._bare(data["link_id"]) if data.get("link_id") else None,
                           parent=data.get("parent_id"), score=data.get("score") or 0, raw=dict(data))
        self._comments[comment.id] = comment
        return 1

    # ------------------------------------------------------------------ JSON shapes
    def _display_author(self, name: str | None) -> str | None:
        user = self._user(name)
        if user is not None and user.status == "deleted":
            return "[deleted]"
        return name

    def _msg_json(self, msg: _Msg, *, with_replies: bool) -> dict:
        author = self._display_author(msg.author)
        if msg.state == "deleted":
            author = "[deleted]"
        body = {"deleted": "[deleted]", "removed": "[removed]"}.get(msg.state, msg.body)
        is_reply = msg.root != msg.id
        if msg.raw is not None:
            data = dict(msg.raw)
        else:
            data = {
                "first_message": None, "first_message_name": None, "subreddit": msg.subreddit, "likes": None,
                "replies": "", "author_fullname": msg.author_fullname, "id": msg.id, "subject": msg.subject,
                "associated_awarding_id": None, "score": 0, "author": author, "num_comments": None,
                "parent_id": None, "subreddit_name_prefixed": f"r/{msg.subreddit}" if msg.subreddit else None,
                "new": msg.new, "type": "unknown", "body": body, "dest": msg.dest, "was_comment": False,
                "body_html": _md_html(body), "name": f"t4_{msg.id}", "created": msg.created,
                "created_utc": msg.created, "context": "", "distinguished": msg.distinguished,
            }
            if is_reply:
                data["first_message"] = int(msg.root, 36)
                data["first_message_name"] = f"t4_{msg.root}"
                data["parent_id"] = f"t4_{msg.parent}"
        if author == "[deleted]" or msg.state != "visible":
            data.update(author=author, body=body, body_html=_md_html(body))
            if author == "[deleted]":
                data["author_fullname"] = None
        data["replies"] = ""
        if with_replies:
            rest = [self._msgs[i] for i in self._threads.get(msg.id, [])[1:]]
            rest = [m for m in rest if m.state != "gone"]
            if rest:
                data["replies"] = self._listing([self._msg_json(m, with_replies=False) for m in rest], None)
        return {"kind": "t4", "data": data}

    def _post_json(self, post: _Post) -> dict:
        sub = self._subs[post.subreddit.lower()]
        author = self._display_author(post.author) or "[deleted]"
        selftext = post.selftext
        removed_by = None
        if post.state == "removed":
            selftext, removed_by = "[removed]", "moderator"
        elif post.state == "deleted":
            selftext, removed_by, author = "[deleted]", "deleted", "[deleted]"
        permalink = f"/r/{post.subreddit}/comments/{post.id}/{_slug(post.title)}/"
        if post.raw is not None:
            data = dict(post.raw)
        else:
            author_user = self._user(post.author)
            is_self = post.url is None and post.image_url is None
            url = post.image_url or post.url or f"https://www.reddit.com{permalink}"
            data = {
                "domain": f"self.{post.subreddit}" if is_self else urlsplit(url).hostname, "banned_by": None,
                "media_embed": {}, "subreddit": post.subreddit, "selftext_html": None, "selftext": "",
                "likes": None, "suggested_sort": None, "user_reports": [], "secure_media": None,
                "link_flair_text": None, "id": post.id, "from_kind": None, "gilded": 0, "archived": False,
                "clicked": False, "report_reasons": None, "author": author, "media": None, "score": post.score,
                "approved_by": None, "over_18": False, "hidden": False, "num_comments": post.num_comments,
                "thumbnail": "self" if is_self else (post.image_url or "default"), "subreddit_id": f"t5_{sub.id}",
                "hide_score": False, "edited": False, "link_flair_css_class": None, "author_flair_css_class": None,
                "downs": 0, "secure_media_embed": {}, "saved": False, "removal_reason": None, "stickied": False,
                "from": None, "is_self": is_self, "from_id": None, "permalink": permalink, "locked": False,
                "name": f"t3_{post.id}", "created": post.created, "url": url, "author_flair_text": None,
                "quarantine": False, "title": post.title, "created_utc": post.created, "distinguished": None,
                "mod_reports": [], "visited": False, "num_reports": None, "ups": post.score,
                # Present on today's posts (not in the 2016 recordings).
                "author_fullname": f"t2_{author_user.id}" if author_user and author != "[deleted]" else None,
                "subreddit_name_prefixed": f"r/{post.subreddit}", "removed_by_category": None,
                "upvote_ratio": 1.0,
            }
            if post.image_url:
                data["post_hint"] = "image"
                data["preview"] = {"images": [{"source": {"url": post.image_url, "width": 640, "height": 480},
                                               "resolutions": [], "variants": {}, "id": post.id}],
                                   "enabled": True}
        data.update(author=author, selftext=selftext, score=post.score, num_comments=post.num_comments,
                    removed_by_category=removed_by)
        data["selftext_html"] = _md_html(selftext) if selftext else None
        if author == "[deleted]":
            data["author_fullname"] = None
        return {"kind": "t3", "data": data}

    def _comment_json(self, comment: _Comment) -> dict:
        author = self._display_author(comment.author) or "[deleted]"
        body = comment.body
        if comment.state == "deleted":
            author, body = "[deleted]", "[deleted]"
        elif comment.state == "removed":
            body = "[removed]"
        post = self._posts.get(comment.post_id or "")
        if comment.raw is not None:
            data = dict(comment.raw)
        else:
            title = post.title if post else "A post"
            link_permalink = f"https://www.reddit.com/r/{comment.subreddit}/comments/{comment.post_id}/{_slug(title)}/"
            sub = self._subs[comment.subreddit.lower()]
            data = {
                "subreddit_id": f"t5_{sub.id}", "approved_at_utc": None, "edited": False, "banned_by": None,
                "removal_reason": None, "link_id": f"t3_{comment.post_id}",
                "link_author": (self._display_author(post.author) if post else None) or "[deleted]",
                "likes": None, "replies": "", "user_reports": [], "saved": False, "id": comment.id,
                "banned_at_utc": None, "gilded": 0, "archived": False, "report_reasons": None, "author": author,
                "num_comments": post.num_comments if post else 0, "can_mod_post": False,
                "parent_id": comment.parent, "score": comment.score, "approved_by": None, "over_18": False,
                "controversiality": 0, "body": body, "link_title": title, "downs": 0,
                "author_flair_css_class": None, "collapsed": False, "collapsed_reason": None,
                "body_html": _md_html(body), "quarantine": False, "can_gild": True, "subreddit": comment.subreddit,
                "name": f"t1_{comment.id}", "score_hidden": False, "num_reports": None,
                "link_permalink": link_permalink, "stickied": False, "created": comment.created,
                "author_flair_text": None, "link_url": (post.url or link_permalink) if post else link_permalink,
                "created_utc": comment.created, "subreddit_name_prefixed": f"r/{comment.subreddit}",
                "distinguished": None, "mod_reports": [], "subreddit_type": sub.status if sub.status != "banned"
                else "public", "ups": comment.score,
                # Present on today's comments (not in the 2017 recording).
                "permalink": f"/r/{comment.subreddit}/comments/{comment.post_id}/{_slug(title)}/{comment.id}/",
                "author_fullname": None,
            }
            author_user = self._user(comment.author)
            if author_user and author != "[deleted]":
                data["author_fullname"] = f"t2_{author_user.id}"
        data.update(author=author, body=body, body_html=_md_html(body))
        return {"kind": "t1", "data": data}

    def _about_json(self, user: _User) -> dict:
        if user.status == "suspended":
            return {"kind": "t2", "data": {"name": user.name, "is_suspended": True, "awardee_karma": 0,
                                           "awarder_karma": 0, "is_blocked": False, "total_karma": 0}}
        return {"kind": "t2", "data": {
            "is_employee": False, "is_friend": False, "subreddit": {
                "default_set": True, "user_is_contributor": False, "banner_img": "", "restrict_posting": True,
                "user_is_banned": False, "free_form_reports": True, "community_icon": None, "show_media": True,
                "icon_color": "", "user_is_muted": None, "display_name": f"u_{user.name}", "header_img": None,
                "title": user.name, "over_18": False, "icon_size": [256, 256], "primary_color": "",
                "icon_img": user.icon_img, "description": "", "submit_link_label": "", "header_size": None,
                "restrict_commenting": False, "subscribers": 0, "submit_text_label": "", "is_default_icon": True,
                "link_flair_position": "", "display_name_prefixed": f"u/{user.name}", "key_color": "",
                "name": f"t5_{user.id}", "is_default_banner": True, "url": f"/user/{user.name}/",
                "quarantine": False, "banner_size": None, "user_is_moderator": False, "accept_followers": True,
                "public_description": user.bio, "link_flair_enabled": False, "disable_contributor_requests": False,
                "subreddit_type": "user", "user_is_subscriber": False,
            },
            "snoovatar_size": None, "awardee_karma": 0, "id": user.id, "verified": True, "is_gold": False,
            "is_mod": False, "awarder_karma": 0, "has_verified_email": True, "icon_img": user.icon_img,
            "hide_from_robots": False, "link_karma": user.link_karma, "is_blocked": False,
            "total_karma": user.link_karma + user.comment_karma, "pref_show_snoovatar": False, "name": user.name,
            "created": user.created, "created_utc": user.created, "snoovatar_img": "",
            "comment_karma": user.comment_karma, "accept_followers": True, "has_subscribed": True,
        }}

    def _me_json(self, user: _User) -> dict:
        about = self._about_json(user)["data"]
        about.pop("is_blocked", None), about.pop("is_friend", None)  # only about answers have them
        return dict(about, **_ME_SETTINGS, is_suspended=user.status == "suspended", suspension_expiration_utc=None,
                    oauth_client_id=self.client_id, has_mail=False, inbox_count=0, over_18=True,
                    pref_nightmode=False, has_mod_mail=False, features={}, password_set=True, in_beta=False,
                    gold_creddits=0, coins=0, num_friends=0, linked_identities=[])

    @staticmethod
    def _listing(children: list[dict], after: str | None, before: str | None = None) -> dict:
        return {"kind": "Listing", "data": {"after": after, "dist": len(children) or None, "modhash": None,
                                            "geo_filter": "", "children": children, "before": before}}

    @staticmethod
    def _page(names: list[str], query: dict, index: dict[str, int] | None = None) -> tuple[list[str], str | None]:
        """One page of `names` (fullnames, in listing order) per Reddit's `limit`/`after`/`before`."""
        try:
            limit = max(1, min(100, int(query.get("limit") or 25)))
        except ValueError:
            limit = 25
        index = index if index is not None else {n: i for i, n in enumerate(names)}
        start, end = 0, None
        if query.get("after"):
            pos = index.get(query["after"])
            if pos is None:
                return [], None
            start = pos + 1
        elif query.get("before"):
            pos = index.get(query["before"])
            if pos is None:
                return [], None
            start, end = max(0, pos - limit), pos
        chunk = names[start:end if end is not None else start + limit]
        more = (end if end is not None else start + limit) < len(names)
        return chunk, (chunk[-1] if chunk and more else None)

    # ------------------------------------------------------------------ listings
    def _threads_for(self, username: str) -> tuple[list[str], dict[str, int]]:
        key = username.lower()
        cached = self._order.get((key, "messages"))
        if cached is None:
            roots = []
            for root in self._user_threads.get(key, ()):
                ids = [i for i in self._threads[root] if self._msgs[i].state != "gone"]
                if ids and self._msgs[root].state != "gone":
                    roots.append((max(self._msgs[i].created for i in ids), root))
            roots.sort(reverse=True)
            names = [f"t4_{root}" for _, root in roots]
            cached = self._order[(key, "messages")] = (names, {n: i for i, n in enumerate(names)})
        return cached

    def _message_listing(self, folder: str, username: str, query: dict) -> dict:
        if folder == "messages":
            names, index = self._threads_for(username)
            chunk, after = self._page(names, query, index)
            return self._listing([self._msg_json(self._msgs[n[3:]], with_replies=True) for n in chunk], after)
        me = username.lower()
        cached = self._order.get((me, folder))
        if cached is None:
            if folder == "sent":
                found = [m for m in self._msgs.values() if (m.author or "").lower() == me and m.state != "gone"]
            else:  # inbox, unread
                found = [m for m in self._msgs.values() if m.dest.lower() == me and m.state != "gone"]
                if folder == "unread":
                    found = [m for m in found if m.new]
            keyed = [((m.created, int(m.id, 36)), f"t4_{m.id}") for m in found]
            if folder != "sent":  # comment replies and mentions are in the received listings too
                keyed += [((r["created"], int(r["id"], 36)), r["name"]) for r in self._inbox_replies.get(me, {}).values()]
            keyed.sort(reverse=True)
            names = [name for _, name in keyed]
            cached = self._order[(me, folder)] = (names, {n: i for i, n in enumerate(names)})
        chunk, after = self._page(cached[0], query, cached[1])
        replies = self._inbox_replies.get(me, {})
        return self._listing([{"kind": "t1", "data": dict(replies[n[3:]])} if n.startswith("t1_")
                              else self._msg_json(self._msgs[n[3:]], with_replies=False) for n in chunk], after)

    def _post_listing(self, posts: list[_Post], sort: str, query: dict) -> dict:
        if sort in ("hot", "top", "relevance"):
            posts.sort(key=lambda p: (p.score, p.created), reverse=True)
        else:
            posts.sort(key=lambda p: (p.created, int(p.id, 36)), reverse=True)
        chunk, after = self._page([f"t3_{p.id}" for p in posts], query)
        return self._listing([self._post_json(self._posts[n[3:]]) for n in chunk], after)

    # ------------------------------------------------------------------ HTTP
    def _log(self, handler, path: str, query: dict, form: dict, username, client_id):
        handler.logged = FakeRequest(method=handler.command, path=path, query=query, form=form,
                                     headers={k.lower(): v for k, v in handler.headers.items()},
                                     username=username, client_id=client_id, at=time.time())
        self.requests.append(handler.logged)

    def _match(self, rules: list[_Rule], path: str) -> _Rule | None:
        for rule in rules:
            if rule.pattern.search(path) and (rule.count is None or rule.count > 0):
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None

    def _ratelimit_headers(self, client_id: str | None, *, count: bool = True) -> tuple[dict, bool]:
        limit, window = self._limit
        now = time.time()
        state = self._windows.setdefault(client_id or "-", [now, 0])
        if now - state[0] >= window:
            state[0], state[1] = now, 0
        if count:
            state[1] += 1
        used = state[1]
        reset = max(1, math.ceil(window - (now - state[0])))
        headers = {"x-ratelimit-remaining": f"{max(limit - used, 0):.1f}", "x-ratelimit-used": str(used),
                   "x-ratelimit-reset": str(reset)}
        return headers, used > limit

    def handle(self, handler) -> tuple[int, dict, bytes]:
        """Answer one request: (status, headers, body)."""
        handler.logged = None
        answer = self._handle(handler)
        if handler.logged is not None:
            handler.logged.status = answer[0]
        return answer

    def _handle(self, handler) -> tuple[int, dict, bytes]:
        parts = urlsplit(handler.path)
        path = re.sub(r"\.json$", "", parts.path.rstrip("/")) or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        form = {}
        if raw_body and "json" not in (handler.headers.get("Content-Type") or ""):
            form = {k: v[-1] for k, v in parse_qs(raw_body.decode("utf-8", "replace"), keep_blank_values=True).items()}

        with self._lock:
            username, client_id, scopes = self._bearer(handler)
            if client_id is None and path == "/api/v1/access_token":
                client_id = self._basic_client(handler)
            self._log(handler, path, query, form, username, client_id)
            slow = self._match(self._slow, path)
            rule = self._match(self._rules, path)
            release = self._release
        if slow:
            release.wait(slow.seconds)
        with self._lock:
            if rule:
                return self._injected(rule, client_id)
            if handler.command == "GET" and path in self._images:
                data, content_type = self._images[path]
                return 200, {"Content-Type": content_type}, data
            if path == "/api/v1/authorize":
                return self._authorize(query)
            if path == "/api/v1/access_token":
                return self._access_token(handler, form)
            if username is None:
                return self._json(401, {"message": "Unauthorized", "error": 401},
                                  {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
            for pattern, needed in _SCOPE_RULES:
                if pattern.search(path) and needed not in scopes and "*" not in scopes:
                    return self._json(403, {"message": "Forbidden", "error": 403},
                                      {"www-authenticate": 'Bearer realm="reddit", error="insufficient_scope"'})
            rl_headers, exceeded = self._ratelimit_headers(client_id)
            if exceeded:
                return self._json(429, {"message": "Too Many Requests", "error": 429}, rl_headers)
            status, headers, body = self._api(handler.command, path, query, form, username)
            headers.update(rl_headers)
            return status, headers, body

    def _injected(self, rule: _Rule, client_id) -> tuple[int, dict, bytes]:
        status = rule.status
        headers = {}
        default = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
                   500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        if status == 401:
            headers["www-authenticate"] = 'Bearer realm="reddit", error="invalid_token"'
        if status == 429:
            rl, _ = self._ratelimit_headers(client_id, count=False)
            headers.update(rl, **{"x-ratelimit-remaining": "0.0"})
        headers.update({k.lower(): str(v) for k, v in (rule.headers or {}).items()})
        body = rule.body if rule.body is not None else {"message": default.get(status, "Error"), "error": status}
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
            return status, {"Content-Type": "text/html; charset=UTF-8", **headers}, data
        return self._json(status, body, headers)

    @staticmethod
    def _json(status: int, payload, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return status, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}, \
            json.dumps(payload).encode()

    def _bearer(self, handler):
        auth = handler.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            return None, None, ()
        info = self._access.get(auth.split(None, 1)[1].strip())
        if info is None or info["expires"] < time.time():
            return None, info and info["client_id"], ()
        user = self._user(info["username"])
        if user is None or user.status == "deleted":
            return None, info["client_id"], ()
        return info["username"], info["client_id"], info["scopes"]

    def _basic_client(self, handler) -> str | None:
        auth = handler.headers.get("Authorization") or ""
        if not auth.lower().startswith("basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(auth.split(None, 1)[1]).decode().partition(":")
        except ValueError:
            return None
        return client_id if (client_id, secret) == (self.client_id, self.client_secret) else None

    def _authorize(self, query: dict):
        if query.get("client_id") != self.client_id:
            return 400, {"Content-Type": "text/html"}, b"<h1>bad request (reddit.com)</h1><p>invalid client id</p>"
        if query.get("redirect_uri") != self.redirect_uri:
            return 400, {"Content-Type": "text/html"}, b"<h1>bad request (reddit.com)</h1><p>invalid redirect_uri</p>"
        if query.get("response_type") != "code" or query.get("duration") not in ("permanent", "temporary"):
            return 400, {"Content-Type": "text/html"}, b"<h1>bad request (reddit.com)</h1><p>invalid request</p>"
        state = query.get("state", "")
        if self._deny_next or self._consent_user is None:
            self._deny_next = False
            target = f"{self.redirect_uri}?{urlencode({'state': state, 'error': 'access_denied'})}"
            return 302, {"Location": target}, b""
        code = secrets.token_urlsafe(20)
        self._codes[code] = {"username": self._consent_user, "scopes": tuple((query.get("scope") or "").split()),
                             "redirect_uri": query["redirect_uri"], "duration": query["duration"],
                             "expires": time.time() + 600}
        return 302, {"Location": f"{self.redirect_uri}?{urlencode({'state': state, 'code': code})}"}, b""

    def _access_token(self, handler, form: dict):
        if handler.command != "POST":
            return self._json(405, {"message": "Method Not Allowed", "error": 405})
        if self._basic_client(handler) is None:
            return self._json(401, {"message": "Unauthorized", "error": 401})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            info = self._codes.pop(form.get("code", ""), None)
            if info is None or info["expires"] < time.time() or info["redirect_uri"] != form.get("redirect_uri"):
                return self._json(200, {"error": "invalid_grant"})
            refresh = None
            if info["duration"] == "permanent":
                refresh = self.issue_refresh_token(info["username"], info["scopes"])
            return self._json(200, self._token_payload(info["username"], info["scopes"], refresh))
        if grant == "refresh_token":
            info = self._refresh.get(form.get("refresh_token", ""))
            user = self._user(info["username"]) if info else None
            if (info is None or info["revoked"] or info["client_id"] != self.client_id
                    or user is None or user.status == "deleted"):
                return self._json(400, {"error": "invalid_grant"})
            return self._json(200, self._token_payload(info["username"], info["scopes"], form["refresh_token"]))
        return self._json(400, {"error": "unsupported_grant_type"})

    def _token_payload(self, username: str, scopes, refresh: str | None) -> dict:
        access = secrets.token_urlsafe(24)
        self._access[access] = {"username": username, "scopes": tuple(scopes), "refresh": refresh,
                                "client_id": self.client_id, "expires": time.time() + self.access_token_ttl}
        payload = {"access_token": access, "token_type": "bearer", "expires_in": self.access_token_ttl,
                   "scope": " ".join(scopes)}
        if refresh:
            payload["refresh_token"] = refresh
        return payload

    # ------------------------------------------------------------------ API routes
    def _api(self, method: str, path: str, query: dict, form: dict, username: str):
        not_found = (404, {"message": "Not Found", "error": 404})
        if method == "GET" and path == "/api/v1/me":
            return self._json(200, self._me_json(self._user(username)))
        m = re.fullmatch(r"/message/(inbox|messages|sent|unread)", path)
        if method == "GET" and m:
            return self._json(200, self._message_listing(m.group(1), username, query))
        if method == "POST" and path == "/api/compose":
            return self._json(200, self._compose(username, form))
        if method == "POST" and path == "/api/comment":
            return self._json(200, self._reply(username, form))
        m = re.fullmatch(r"(?:/r/([^/]+))?/(new|hot|top|rising|search)", path)
        if method == "GET" and m:
            return self._community_listing(m.group(1), m.group(2), query)
        m = re.fullmatch(r"/r/([^/]+)/about", path)
        if method == "GET" and m:
            sub = self._subs.get(m.group(1).lower())
            if sub is None:
                return self._json(*not_found)
            if sub.status == "banned":
                return self._json(404, {"reason": "banned", "message": "Not Found", "error": 404})
            if sub.status == "private":
                return self._json(403, {"reason": "private", "message": "Forbidden", "error": 403})
            return self._json(200, {"kind": "t5", "data": {
                "display_name": sub.name, "name": f"t5_{sub.id}", "id": sub.id, "title": sub.name,
                "display_name_prefixed": f"r/{sub.name}", "subreddit_type": "public", "over18": False,
                "public_description": "", "subscribers": 1, "url": f"/r/{sub.name}/",
                "created_utc": 1_400_000_000.0}})
        m = re.fullmatch(r"/user/([^/]+)/(about|submitted|comments|overview)", path)
        if method == "GET" and m:
            return self._user_route(m.group(1), m.group(2), query)
        m = re.fullmatch(r"(?:/r/[^/]+)?/comments/([a-z0-9]+)(?:/[^/]*)?", path)
        if method == "GET" and m:
            post = self._posts.get(m.group(1))
            if post is None:
                return self._json(*not_found)
            sub = self._subs[post.subreddit.lower()]
            if sub.status == "private":
                return self._json(403, {"reason": "private", "message": "Forbidden", "error": 403})
            if sub.status == "banned":
                return self._json(404, {"reason": "banned", "message": "Not Found", "error": 404})
            return self._json(200, [self._listing([self._post_json(post)], None),
                                    self._listing(self._comment_tree(post.id, f"t3_{post.id}"), None)])
        if method == "GET" and path == "/api/info":
            things = []
            for name in filter(None, (query.get("id") or "").split(",")):
                kind, _, bare = name.partition("_")
                if kind == "t3" and bare in self._posts:
                    things.append(self._post_json(self._posts[bare]))
                elif kind == "t1" and bare in self._comments:
                    things.append(self._comment_json(self._comments[bare]))
                elif kind == "t4" and bare in self._msgs and self._msgs[bare].state != "gone":
                    things.append(self._msg_json(self._msgs[bare], with_replies=False))
            return self._json(200, self._listing(things, None))
        return self._json(*not_found)

    def _comment_tree(self, post_id: str, parent: str) -> list[dict]:
        out = []
        children = sorted((c for c in self._comments.values() if c.post_id == post_id and c.parent == parent),
                          key=lambda c: c.created)
        for comment in children:
            item = self._comment_json(comment)
            replies = self._comment_tree(post_id, f"t1_{comment.id}")
            item["data"]["replies"] = self._listing(replies, None) if replies else ""
            out.append(item)
        return out

    def _community_listing(self, name: str | None, sort: str, query: dict):
        if name is None or name.lower() in ("all", "popular"):
            posts = [p for p in self._posts.values() if self._subs[p.subreddit.lower()].status == "public"]
        else:
            posts = []
            for part in name.split("+"):
                sub = self._subs.get(part.lower())
                if sub is None:
                    return 302, {"Location": f"/subreddits/search.json?q={quote(part)}"}, b""
                if sub.status == "banned":
                    return self._json(404, {"reason": "banned", "message": "Not Found", "error": 404})
                if sub.status == "private":
                    return self._json(403, {"reason": "private", "message": "Forbidden", "error": 403})
                posts.extend(self._posts[i] for i in sub.posts)
        if sort == "search":
            terms = (query.get("q") or "").lower().split()
            posts = [p for p in posts if all(t in f"{p.title} {p.selftext}".lower() for t in terms)]
            sort = query.get("sort") or "relevance"
        return self._json(200, self._post_listing(posts, sort, query))

    def _user_route(self, name: str, what: str, query: dict):
        user = self._user(name)
        if user is None or user.status == "deleted":
            return self._json(404, {"message": "Not Found", "error": 404})
        if what == "about":
            return self._json(200, self._about_json(user))
        if user.status == "suspended":
            return self._json(403, {"message": "Forbidden", "error": 403})
        key = name.lower()
        things: list[tuple[float, str, str]] = []
        if what in ("submitted", "overview"):
            things += [(p.created, "t3", p.id) for p in self._posts.values()
                       if (p.author or "").lower() == key and p.state != "deleted"]
        if what in ("comments", "overview"):
            things += [(c.created, "t1", c.id) for c in self._comments.values()
                       if (c.author or "").lower() == key and c.state != "deleted"]
        things.sort(reverse=True)
        chunk, after = self._page([f"{k}_{i}" for _, k, i in things], query)
        items = [self._post_json(self._posts[n[3:]]) if n.startswith("t3_") else self._comment_json(self._comments[n[3:]])
                 for n in chunk]
        return self._json(200, self._listing(items, after))

    def _compose(self, username: str, form: dict) -> dict:
        to, subject, text = (form.get("to") or "").strip(), (form.get("subject") or ""), form.get("text") or ""
        errors = []
        recipient = self._user(to.removeprefix("/u/").removeprefix("u/")) if to else None
        if not to or recipient is None or recipient.status == "deleted":
            errors.append(["USER_DOESNT_EXIST", "that user doesn't exist", "to"])
        elif not recipient.accepts_messages:
            errors.append(["NOT_WHITELISTED_BY_USER_MESSAGE", "You can't send a message to that user.", "to"])
        if not subject.strip():
            errors.append(["NO_SUBJECT", "please enter a subject", "subject"])
        elif len(subject) > 100:
            errors.append(["TOO_LONG", "this is too long (max: 100)", "subject"])
        if not text.strip():
            errors.append(["NO_TEXT", "we need something here", "text"])
        elif len(text) > 10000:
            errors.append(["TOO_LONG", "this is too long (max: 10000)", "text"])
        if errors:
            return {"json": {"errors": errors}}
        name = self.add_message(username, recipient.name, text, subject, created=max(self._tick(), time.time()),
                                new=False)
        self.sent.append(self.message(name))
        return {"json": {"errors": []}}

    def _reply(self, username: str, form: dict) -> dict:
        thing, text = form.get("thing_id") or "", form.get("text") or ""
        if not thing.startswith("t4_"):
            return {"json": {"errors": [["INVALID_THING_ID", "the fake answers only message replies", "parent"]]}}
        parent = self._msgs.get(thing[3:])
        if parent is None or parent.state == "gone":
            return {"json": {"errors": [["NO_THING_ID", "that message doesn't exist", "parent"]]}}
        if not text.strip():
            return {"json": {"errors": [["NO_TEXT", "we need something here", "text"]]}}
        if len(text) > 10000:
            return {"json": {"errors": [["TOO_LONG", "this is too long (max: 10000)", "text"]]}}
        other = parent.dest if (parent.author or "").lower() == username.lower() else parent.author
        recipient = self._user(other)
        if recipient is None or recipient.status == "deleted":
            return {"json": {"errors": [["USER_DOESNT_EXIST", "that user doesn't exist", "to"]]}}
        if not recipient.accepts_messages:
            return {"json": {"errors": [["NOT_WHITELISTED_BY_USER_MESSAGE",
                                         "You can't send a message to that user.", "to"]]}}
        name = self.add_message(username, recipient.name, text, created=max(self._tick(), time.time()),
                                reply_to=thing, new=False)
        self.sent.append(self.message(name))
        return {"json": {"errors": [], "data": {"things": [self._msg_json(self._msgs[name[3:]], with_replies=False)]}}}


def _handler_for(fake: FakeReddit):
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a 50k-message backfill is hundreds of pages

        def _answer(self):
            try:
                status, headers, body = fake.handle(self)
            except Exception as exc:  # a bug in the fake must show up as a 500, not a hung client
                status, headers, body = 500, {"Content-Type": "text/plain"}, f"fake error: {exc!r}".encode()
            self.reply(status, headers, body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    return Handler


@pytest.fixture(scope="session")
def _fake_reddit_server():
    fake = FakeReddit()
    yield fake
    fake.close()


@pytest.fixture
def fake_reddit(_fake_reddit_server, settings):
    fake = _fake_reddit_server
    fake.reset()
    settings.PROVIDER_REDDIT_OAUTH_URL = fake.url
    settings.PROVIDER_REDDIT_BASE_URL = fake.url
    settings.PROVIDER_REDDIT_CLIENT_ID = fake.client_id
    settings.PROVIDER_REDDIT_CLIENT_SECRET = fake.client_secret
    settings.PROVIDER_REDDIT_REDIRECT_URI = fake.redirect_uri
    settings.PROVIDER_REDDIT_MEDIA_HOSTS = f"{fake.host},i.redd.it"
    settings.PROVIDER_REDDIT_USER_AGENT = "rediska-tests/0.1"
    settings.PROVIDER_REDDIT_TIMEOUT = "3"
    yield fake
    fake.reset()
