"""A fake of Reddit's Atom feeds (real HTTP on 127.0.0.1), serving the fake Reddit's own world.

The `fake_feeds` fixture starts one server per test session on top of
`fake_reddit` (same users, messages, posts and comments: what the API serves,
the feeds serve too, with the same ids) and points `PROVIDER_REDDIT_FEED_URL`
at it.  Shapes follow `shared/spec/REDDIT-2026.md` §4: `<feed xmlns=Atom>`,
entries with `<id>t3_…</id>`, `<author><name>/u/NAME</name>`, `<category
term=SUB label=r/SUB/>`, `<content type="html">` (escaped HTML), `<link>`,
`<published>`/`<updated>`.  Message entries carry `t4_` ids and link to
`/message/messages/<thread root>`; comment replies in the inbox are `t1_`.

Control API::

    token = fake_feeds.issue_token("alice")        # alice's personal feed token
    fake_feeds.change_token("alice")               # the old one now answers 403 (private) / 401 (public)
    fake_feeds.inject(r"^/r/hiking/", status=429, headers={"Retry-After": "7"}, body=b"", count=1)
    fake_feeds.inject(r"^/message/inbox", status=200, body=b"<html>...")   # any answer, verbatim
    fake_feeds.anonymous_allowance = 1            # feed requests without a token before 429s
    fake_feeds.requests -> list[FeedRequest]       # path, query (the token is in it: tests check logs, not this)

Private feeds (`/message/...`) need `feed` and `user`, and the token must be
that user's; public feeds take them optionally (anonymous ones are 429 after
`anonymous_allowance` requests).
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import parse_qs, urlsplit

import pytest

from .http import LocalHTTPServer, QuietHandler
from .reddit_server import _md_html, _slug

WWW = "https://www.reddit.com"


@dataclass
class FeedRequest:
    path: str
    query: dict
    status: int | None = None


@dataclass
class _Rule:
    pattern: re.Pattern
    status: int
    headers: dict
    body: bytes | None
    count: int | None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _entry(*, id: str, title: str, author: str | None, link: str, html: str, when: float,
           category: str | None = None) -> str:
    parts = [f"<entry>", f"<id>{escape(id)}</id>", f"<title>{escape(title)}</title>"]
    if author:
        parts.append(f"<author><name>/u/{escape(author)}</name><uri>{WWW}/user/{escape(author)}</uri></author>")
    if category:
        parts.append(f'<category term="{escape(category)}" label="r/{escape(category)}"/>')
    parts += [f'<content type="html">{escape(html)}</content>', f'<link href="{escape(link)}"/>',
              f"<updated>{_iso(when)}</updated>", f"<published>{_iso(when)}</published>", "</entry>"]
    return "".join(parts)


def atom(entries: list[str], title: str = "feed") -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:media="http://search.yahoo.com/mrss/">'
            f'<category term="x" label="x"/><updated>{_iso(0)}</updated><id>/{escape(title)}</id>'
            f"<title>{escape(title)}</title>" + "".join(entries) + "</feed>").encode()


class FakeFeeds(LocalHTTPServer):
    def __init__(self, reddit):
        self.reddit = reddit
        self._lock = threading.RLock()
        self.reset()
        super().__init__(_handler_for(self))

    def reset(self):
        with self._lock:
            self._tokens: dict[str, str] = {}  # token -> username
            self._old: set[str] = set()
            self._rules: list[_Rule] = []
            self.requests: list[FeedRequest] = []
            self.anonymous_allowance = 1
            self._anonymous = 0

    # ------------------------------------------------------------------ control
    def issue_token(self, username: str) -> str:
        with self._lock:
            self.reddit._ensure_user(username)
            token = secrets.token_hex(20)
            self._tokens[token] = username
            return token

    def change_token(self, username: str) -> str:
        """Reddit's "change token": the old one stops working everywhere."""
        with self._lock:
            for token, owner in list(self._tokens.items()):
                if owner.lower() == username.lower():
                    del self._tokens[token]
                    self._old.add(token)
            return self.issue_token(username)

    def inject(self, path_regex: str, *, status: int = 200, headers: dict | None = None, body: bytes | None = None,
               count: int | None = 1):
        with self._lock:
            self._rules.append(_Rule(re.compile(path_regex), status, headers or {}, body, count))

    def feed_url(self, username: str, token: str, path: str = "/message/inbox/.rss") -> str:
        return f"{self.url}{path}?feed={token}&user={username}"

    # ------------------------------------------------------------------ entries
    def _message_entry(self, msg) -> str:
        fake = self.reddit
        data = fake._msg_json(msg, with_replies=False)["data"]
        author = data["author"] if data["author"] not in (None, "[deleted]") else None
        return _entry(id=f"t4_{msg.id}", title=data["subject"] or "", author=author,
                      link=f"{WWW}/message/messages/{msg.root}", html=data["body_html"], when=msg.created)

    def _reply_entry(self, data: dict) -> str:
        return _entry(id=data["name"], title=data["subject"], author=data["author"], link=WWW + data["context"],
                      html=data["body_html"], when=data["created"], category=data["subreddit"])

    def _post_entry(self, post) -> str:
        data = self.reddit._post_json(post)["data"]
        author = data["author"] if data["author"] != "[deleted]" else None
        trailer = (f' &#32; submitted by &#32; <a href="{WWW}/user/{author or "[deleted]"}"> /u/{author} </a> <br/>'
                   f' <span><a href="{data["url"]}">[link]</a></span> &#32; '
                   f'<span><a href="{WWW}{data["permalink"]}">[comments]</a></span>')
        body = (data.get("selftext_html") or "") + trailer
        return _entry(id=f"t3_{post.id}", title=post.title, author=author, link=WWW + data["permalink"], html=body,
                      when=post.created, category=post.subreddit)

    def _comment_entry(self, comment) -> str:
        data = self.reddit._comment_json(comment)["data"]
        author = data["author"] if data["author"] != "[deleted]" else None
        return _entry(id=f"t1_{comment.id}", title=f"/u/{author} on {data['link_title']}", author=author,
                      link=WWW + data["permalink"], html=data["body_html"], when=comment.created,
                      category=comment.subreddit)

    @staticmethod
    def _page(items: list[tuple[str, str]], query: dict) -> list[str]:
        """items: (fullname, entry xml) in feed order; Reddit's limit/after."""
        try:
            limit = max(1, min(100, int(query.get("limit") or 25)))
        except ValueError:
            limit = 25
        start = 0
        if query.get("after"):
            names = [name for name, _ in items]
            start = names.index(query["after"]) + 1 if query["after"] in names else len(items)
        return [xml for _, xml in items[start:start + limit]]

    # ------------------------------------------------------------------ routes
    def _private(self, folder: str, username: str, query: dict) -> bytes:
        fake = self.reddit
        me = username.lower()
        msgs = [m for m in fake._msgs.values() if m.dest.lower() == me and m.state != "gone"]
        if folder == "unread":
            msgs = [m for m in msgs if m.new]
        items = [((m.created, int(m.id, 36)), f"t4_{m.id}", self._message_entry(m)) for m in msgs]
        if folder in ("inbox", "unread"):
            items += [((r["created"], int(r["id"], 36)), r["name"], self._reply_entry(r))
                      for r in fake._inbox_replies.get(me, {}).values()]
        items.sort(reverse=True)
        return atom(self._page([(n, x) for _, n, x in items], query), f"inbox of {username}")

    def _community(self, sub: str, sort: str, query: dict):
        fake = self.reddit
        found = fake._subs.get(sub.lower())
        if found is None:
            return 404, b""
        if found.status != "public":
            return 403, b""
        posts = [fake._posts[i] for i in found.posts if fake._posts[i].state != "deleted"]
        if sort == "search":
            terms = (query.get("q") or "").lower().split()
            posts = [p for p in posts if all(t in f"{p.title} {p.selftext}".lower() for t in terms)]
            sort = query.get("sort") or "new"
        if sort in ("hot", "top"):
            posts.sort(key=lambda p: (p.score, p.created), reverse=True)
        else:
            posts.sort(key=lambda p: (p.created, int(p.id, 36)), reverse=True)
        return 200, atom(self._page([(f"t3_{p.id}", self._post_entry(p)) for p in posts], query), f"r/{sub}")

    def _user(self, name: str, what: str, query: dict):
        fake = self.reddit
        user = fake._user(name)
        if user is None or user.status == "deleted":
            return 404, b""
        if user.status == "suspended":
            return 403, b""
        key = name.lower()
        things = []
        if what in ("", "submitted"):
            things += [(p.created, f"t3_{p.id}", self._post_entry(p)) for p in fake._posts.values()
                       if (p.author or "").lower() == key and p.state != "deleted"]
        if what in ("", "comments"):
            things += [(c.created, f"t1_{c.id}", self._comment_entry(c)) for c in fake._comments.values()
                       if (c.author or "").lower() == key and c.state != "deleted"]
        things.sort(reverse=True)
        return 200, atom(self._page([(n, x) for _, n, x in things], query), f"u/{name}")

    def _post(self, post_id: str, query: dict):
        post = self.reddit._posts.get(post_id)
        if post is None:
            return 404, b""
        comments = [c for c in self.reddit._comments.values() if c.post_id == post_id and c.state != "deleted"]
        entries = [self._post_entry(post)] + [self._comment_entry(c) for c in sorted(comments, key=lambda c: c.created)]
        return 200, atom(entries, post.title)

    def handle(self, path: str, query: dict) -> tuple[int, dict, bytes]:
        with self._lock:
            logged = FeedRequest(path=path, query=query)
            self.requests.append(logged)
            status, headers, body = self._handle(path, query)
            logged.status = status
            return status, headers, body

    def _handle(self, path: str, query: dict) -> tuple[int, dict, bytes]:
        xml = {"Content-Type": "application/atom+xml; charset=UTF-8"}
        html = {"Content-Type": "text/html; charset=UTF-8"}
        for rule in self._rules:
            if rule.pattern.search(path) and (rule.count is None or rule.count > 0):
                if rule.count is not None:
                    rule.count -= 1
                return rule.status, {**(xml if rule.status == 200 else html), **rule.headers}, rule.body or b""
        token, user = query.get("feed"), query.get("user")
        owner = self._tokens.get(token or "")
        private = path.startswith("/message/")
        if token is not None or user is not None:
            if owner is None or user is None or owner.lower() != user.lower():
                return (403 if private or token not in self._old else 401), html, b"<html>Forbidden</html>"
        elif private:
            return 403, html, b"<html>Forbidden</html>"
        else:
            self._anonymous += 1
            if self._anonymous > self.anonymous_allowance:
                return 429, {**html, "Retry-After": "60"}, b"<html>Too Many Requests</html>"
        m = re.fullmatch(r"/message/(inbox|unread|messages)/\.rss", path)
        if m:
            return 200, xml, self._private(m.group(1), owner, query)
        m = re.fullmatch(r"/r/([^/]+)/(new|hot|top)/\.rss", path) or re.fullmatch(r"/r/([^/]+)/(search)\.rss", path)
        if m:
            status, body = self._community(m.group(1), m.group(2), query)
            return status, (xml if status == 200 else html), body
        m = re.fullmatch(r"/user/([^/]+)/(?:(submitted|comments)/)?\.rss", path)
        if m:
            status, body = self._user(m.group(1), m.group(2) or "", query)
            return status, (xml if status == 200 else html), body
        m = re.fullmatch(r"/comments/([a-z0-9]+)/\.rss", path)
        if m:
            status, body = self._post(m.group(1), query)
            return status, (xml if status == 200 else html), body
        return 404, html, b"<html>Not Found</html>"


def _handler_for(fake: FakeFeeds):
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            try:
                status, headers, body = fake.handle(parts.path, query)
            except Exception as exc:  # a bug in the fake shows up as a 500, not a hung client
                status, headers, body = 500, {"Content-Type": "text/plain"}, f"fake error: {exc!r}".encode()
            self.reply(status, headers, body)

    return Handler


@pytest.fixture(scope="session")
def _fake_feed_server(_fake_reddit_server):
    fake = FakeFeeds(_fake_reddit_server)
    yield fake
    fake.close()


@pytest.fixture
def fake_feeds(_fake_feed_server, fake_reddit, settings):
    fake = _fake_feed_server
    fake.reset()
    settings.PROVIDER_REDDIT_FEED_URL = fake.url
    settings.PROVIDER_REDDIT_FEED_QPM = "6000"  # pacing has its own tests; the rest should not wait
    yield fake
    fake.reset()


__all__ = ["FakeFeeds", "atom", "_md_html", "_slug"]
