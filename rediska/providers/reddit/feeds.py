"""Reading Reddit through its Atom feeds with the user's personal feed token (no API app needed).

Every user has a feed token on reddit.com/prefs/feeds; `?feed=<token>&user=<name>`
makes a feed request that user's own (a normal allowance instead of the hard
anonymous limit) and unlocks the private inbox feeds.  The token is a secret:
it goes only into request parameters, never into a message, log line or repr.

Feeds are XML from outside: `defusedxml` parses each answer first and refuses
DTDs and entity declarations (entity-expansion bombs), then `feedparser` reads
the entries.  Entry HTML becomes plain text; only absolute http(s) links
survive.  One bad entry is `Skipped` with a reason, never the whole feed.

Pacing: one budget per feed user (`PROVIDER_REDDIT_FEED_QPM`), shared by every
process through `rediska.ratelimit`, separate from the OAuth app's; 429 and
Retry-After block that user's bucket.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree
import feedparser
import requests

from rediska.ratelimit import RateLimiter

from ..base import (
    ListingStatus,
    MessageFolder,
    MessagePage,
    PostPage,
    PostSort,
    ProfileItemKind,
    ProfileItemPage,
    ProviderSession,
    RemoteAccount,
    RemoteMessage,
    RemotePost,
    RemoteProfileItem,
    SentMessage,
    Skipped,
)
from ..errors import (
    AuthError,
    ForbiddenError,
    InvalidRequestError,
    ListingUnavailableError,
    NotFoundError,
    RateLimitedError,
    TransientError,
)
from .config import Config
from .names import SORTS, USERNAME, community
from .names import username as check_username

TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
FULLNAME = re.compile(r"^t([1-6])_([a-z0-9]{1,13})$")
ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
MAX_ENTRY_CHARS = 1024 * 1024  # an entry's HTML beyond this is skipped, the rest of the feed kept
PREFS_PAGE = "reddit.com/prefs/feeds"
# Received messages: the inbox feed, else the unread feed (name, path, label).
MESSAGE_FEEDS = (("inbox-feed", "message/inbox/.rss", "Inbox feed (/message/inbox/.rss)"),
                 ("unread-feed", "message/unread/.rss", "Unread feed (/message/unread/.rss)"))
NO_SENT_FEED = ("Reddit has no feed of sent messages: what you send on Reddit's page is kept when you mark it "
                "“I sent it”, and your data export brings the rest.")


class FeedUnreadable(TransientError):
    """The answer was not a feed Rediska can read (HTML, empty, malformed, or a refused XML construct)."""


# --------------------------------------------------------------------------- the token
def parse_reference(text: str, username: str | None, *, feed_hosts: tuple[str, ...]) -> tuple[str, str]:
    """(username, token) from a pasted feed URL, or from a bare token and a username.

    Messages never repeat the token (it is a secret, and a wrong paste may be one).
    """
    text, name = (text or "").strip(), (username or "").strip().removeprefix("/").removeprefix("u/")
    if not text:
        raise InvalidRequestError(f"Paste one of the private feed links from {PREFS_PAGE}, or the feed value.")
    if "/" in text or "?" in text or "=" in text:
        parts = urlsplit(text if "://" in text else "https://" + text)
        host = (parts.hostname or "").lower()
        known = any(host == h or host.endswith("." + h) for h in feed_hosts)
        if parts.scheme not in ("http", "https") or not known:
            raise InvalidRequestError(f"That is not a Reddit feed link: copy one of the private feed links on "
                                      f"{PREFS_PAGE} (they contain feed= and user=).")
        query = parse_qs(parts.query)
        token = (query.get("feed") or [""])[-1].strip()
        linked = (query.get("user") or [""])[-1].strip()
        if not token or not linked:
            raise InvalidRequestError(f"That link has no feed token: use a private feed link from {PREFS_PAGE} "
                                      "(it ends with ?feed=…&user=…).")
        if name and linked.lower() != name.lower():
            raise InvalidRequestError(f"That feed link belongs to u/{linked}, not u/{name}.")
        name = linked
    else:
        token = text
    if not TOKEN.match(token):
        raise InvalidRequestError(f"That is not a feed token: it is the long value after “feed=” in a private "
                                  f"feed link on {PREFS_PAGE}.")
    if not USERNAME.match(name):
        raise InvalidRequestError("Give the Reddit username the token belongs to (the value after “user=”).")
    return name, token


# --------------------------------------------------------------------------- HTML to text
class _Text(HTMLParser):
    """Plain text of feed HTML: block elements become line breaks, absolute http(s) links are kept in brackets.

    Reddit wraps the user's own text in `<div class="md">`; the trailer around
    it ("submitted by … [link] [comments]") is dropped when that div is present.
    """

    BLOCKS = {"p", "div", "li", "blockquote", "pre", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.all: list[str] = []
        self.md: list[str] = []
        self.md_depth = 0  # > 0 while inside the user's text
        self.seen_md = False
        self.links: list[tuple[str | None, int]] = []

    def _out(self, text: str) -> None:
        (self.md if self.md_depth else self.all).append(text)
        if self.md_depth:
            self.all.append(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            if self.md_depth:
                self.md_depth += 1
            elif "md" in (attrs.get("class") or "").split():
                self.md_depth, self.seen_md = 1, True
        if tag == "br":
            self._out("\n")
        elif tag in self.BLOCKS:
            self._out("\n\n")
        if tag == "a":
            href = (attrs.get("href") or "").strip()
            absolute = urlsplit(href).scheme in ("http", "https") and bool(urlsplit(href).hostname)
            self.links.append((href if absolute else None, len(self.md if self.md_depth else self.all)))

    def handle_endtag(self, tag):
        if tag == "a" and self.links:
            href, start = self.links.pop()
            target = self.md if self.md_depth else self.all
            label = "".join(target[start:]).strip()
            if href and href != label:
                self._out(f" ({href})" if label else href)
        if tag in self.BLOCKS:
            self._out("\n\n")
        if tag == "div" and self.md_depth:
            self.md_depth -= 1

    def handle_data(self, data):
        self._out(data)

    def text(self) -> str:
        raw = "".join(self.md if self.seen_md else self.all).replace("\xa0", " ")
        lines = [re.sub(r"[ \t]+", " ", line).strip() for line in raw.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str | None) -> str | None:
    if not html:
        return None
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text() or None


# --------------------------------------------------------------------------- parsing
@dataclass
class Entry:
    kind: str | None  # "t1" comment, "t3" post, "t4" message; None when the id is unusable
    id: str | None
    raw_id: str | None
    title: str | None
    author: str | None
    category: str | None
    link: str | None
    html: str | None
    when: datetime | None


def _when(parsed) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _author(entry) -> str | None:
    detail = entry.get("author_detail") or {}
    name = (detail.get("name") or entry.get("author") or "").strip()
    name = name.removeprefix("/").removeprefix("u/")
    return name if USERNAME.match(name) else None


def _content(entry) -> str | None:
    for item in entry.get("content") or ():
        if item.get("value"):
            return item["value"]
    return entry.get("summary") or None


def parse_feed(body: bytes, subject: str) -> tuple[list[Entry], list[Skipped]]:
    """The entries of one Atom answer; raises FeedUnreadable when the answer is not a readable feed."""
    head = body.lstrip()[:200].lower()
    if not head:
        raise FeedUnreadable(f"Reddit answered {subject} with an empty page instead of a feed.")
    if head.startswith((b"<!doctype html", b"<html")) or (b"<html" in head and b"<feed" not in head):
        raise FeedUnreadable(f"Reddit answered {subject} with a web page instead of a feed (signed out or blocked?).")
    try:
        root = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise FeedUnreadable(f"Reddit's answer for {subject} declares XML entities or a DTD; Rediska does not "
                             "expand them, so nothing of it was read.") from None
    except (ParseError, ValueError):
        raise FeedUnreadable(f"Reddit's answer for {subject} is not well-formed XML; nothing of it was read.") from None
    if root.tag != ATOM_FEED:
        raise FeedUnreadable(f"Reddit's answer for {subject} is XML but not an Atom feed.")
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    entries, skipped = [], []
    for item in parsed.entries:
        raw_id = (item.get("id") or "").strip() or None
        match = FULLNAME.match(raw_id or "")
        html = _content(item)
        if match is None:
            skipped.append(Skipped(raw_id[:64] if raw_id else None, "an entry without a usable id"))
            continue
        if html and len(html) > MAX_ENTRY_CHARS:
            skipped.append(Skipped(match.group(2), f"an entry larger than {MAX_ENTRY_CHARS // 1024} KB"))
            continue
        tags = item.get("tags") or ()
        entries.append(Entry(
            kind=f"t{match.group(1)}", id=match.group(2), raw_id=raw_id, title=(item.get("title") or None),
            author=_author(item), category=(tags[0].get("term") if tags else None) or None,
            link=item.get("link") or None, html=html,
            when=_when(item.get("published_parsed")) or _when(item.get("updated_parsed")),
        ))
    return entries, skipped


def _web_link(link: str | None) -> str | None:
    if not link:
        return None
    parts = urlsplit(link)
    return link if parts.scheme in ("http", "https") and parts.hostname else None


def _thread_of(entry: Entry) -> str:
    """A message's thread: its link names the thread's first message (`/message/messages/<id>`)."""
    match = re.search(r"/message/messages/([a-z0-9]{1,13})", entry.link or "")
    return match.group(1) if match else entry.id


def message_from(entry: Entry, me: str) -> RemoteMessage:
    return RemoteMessage(external_id=entry.id, conversation_external_id=_thread_of(entry), author=entry.author,
                         recipient=me, sent_at=entry.when, body=html_to_text(entry.html) or "",
                         subject=entry.title)


def post_from(entry: Entry, location: str | None = None) -> RemotePost:
    return RemotePost(external_id=entry.id, location=entry.category or location or "", url=_web_link(entry.link) or "",
                      author=entry.author, title=entry.title, body=html_to_text(entry.html), created_at=entry.when)


def profile_item_from(entry: Entry) -> RemoteProfileItem:
    kind = "post" if entry.kind == "t3" else "comment"
    return RemoteProfileItem(external_id=entry.id, item_type=kind, created_at=entry.when,
                             text=html_to_text(entry.html), location=entry.category, url=_web_link(entry.link),
                             title=entry.title)


# --------------------------------------------------------------------------- HTTP
def limiter_for(config: Config, username: str, token: str) -> RateLimiter:
    # Reddit counts feed requests per feed user: every process reading as this user shares one budget
    # (keyed by a digest of the token too: a changed token starts with a fresh allowance).
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return RateLimiter(f"reddit-feed:{username.lower()}:{digest}", qpm=config.feed_qpm, concurrency=2,
                       lease_seconds=config.timeout + 30)


def _seconds(value) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class FeedClient:
    def __init__(self, config: Config, username: str, token: str):
        self.config = config
        self.username = username
        self._token = token
        self._http = requests.Session()
        self._http.headers["User-Agent"] = config.user_agent
        self.limiter = limiter_for(config, username, token)

    def __repr__(self) -> str:  # the token never reaches a log or traceback
        return f"<FeedClient u/{self.username}>"

    def get(self, path: str, subject: str, *, private: bool = False, **params) -> bytes:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        query.update(feed=self._token, user=self.username)
        url = f"{self.config.feed_url}/{path}?{urlencode(query)}"
        with self.limiter.slot():
            try:
                response = self._http.get(url, timeout=self.config.timeout, stream=True, allow_redirects=False)
                status = response.status_code
                body = self._read(response, subject) if status == 200 else b""
            except requests.Timeout:
                self.limiter.observe(None, {})
                raise TransientError(f"Reddit did not answer {subject} in time; try again shortly.") from None
            except requests.RequestException:
                self.limiter.observe(None, {})
                raise TransientError("Reddit could not be reached; try again shortly.") from None
        self.limiter.observe(status, response.headers)
        self._raise_for(status, response.headers, subject, private)
        return body

    def _read(self, response, subject: str) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.config.feed_max_bytes:
                response.close()
                raise FeedUnreadable(f"Reddit's answer for {subject} is larger than "
                                     f"{self.config.feed_max_bytes // (1024 * 1024)} MB; it was not read.")
            chunks.append(chunk)
        return b"".join(chunks)

    def _raise_for(self, status: int, headers, subject: str, private: bool) -> None:
        if status == 200:
            return
        if status == 429:
            raise RateLimitedError("Reddit's feed limit for this user is reached; retrying shortly.",
                                   retry_after=_seconds(headers.get("retry-after")))
        if status == 401 or (status == 403 and private):
            raise AuthError(f"Reddit refused the feed token of u/{self.username} (changed or revoked): copy the new "
                            f"private feed link from {PREFS_PAGE} and replace the token.", status=status)
        if status == 403:
            raise ForbiddenError(f"{subject} is private or not accessible to this identity.", status=403)
        if status == 404:
            raise NotFoundError(f"{subject} was not found on Reddit.", status=404)
        if status in (301, 302, 303, 307, 308):
            if "/login" in (headers.get("location") or ""):
                raise ListingUnavailableError(f"Reddit no longer serves {subject} to this feed token (it "
                                              "redirects to the login page).", status=status)
            raise NotFoundError(f"{subject} does not exist on Reddit.", status=status)
        if status >= 500:
            raise TransientError(f"Reddit had a server error ({status}); try again shortly.", status=status)
        raise InvalidRequestError(f"Reddit refused the feed request ({status}).", status=status)


# --------------------------------------------------------------------------- the session
def _limit(limit: int) -> int:
    return max(1, min(100, int(limit)))


def _after(entries: list[Entry], skipped: list[Skipped], limit: int) -> str | None:
    """The next page's cursor: the last readable entry, when the page was full."""
    return entries[-1].raw_id if entries and len(entries) + len(skipped) >= limit else None


class FeedSession(ProviderSession):
    """The `ProviderSession` of an identity connected by its feed token: reads, never sends."""

    def __init__(self, config: Config, username: str, token: str):
        self._config = config
        self.username = username
        self._client = FeedClient(config, username, token)

    def __repr__(self) -> str:
        return f"<FeedSession u/{self.username}>"

    def _entries(self, path: str, subject: str, *, private: bool = False, **params):
        return parse_feed(self._client.get(path, subject, private=private, **params), subject)

    def whoami(self) -> RemoteAccount:
        """Reads the private inbox feed once: it answers only to the right token for this username."""
        self._entries(MESSAGE_FEEDS[0][1], "your private inbox feed", private=True, limit=1)
        return RemoteAccount(username=self.username, status="active")

    def list_messages(self, folder: MessageFolder, *, after: str | None = None, limit: int = 100) -> MessagePage:
        if folder == "sent":
            raise ListingUnavailableError(NO_SENT_FEED, listings=(
                ListingStatus("sent-feed", "sent", "Sent messages (no feed exists)", works=False, detail=NO_SENT_FEED),))
        if folder != "inbox":
            raise InvalidRequestError(f"Unknown message folder {folder!r}.")
        names = [name for name, _, _ in MESSAGE_FEEDS]
        start, cursor = 0, after or None
        if cursor and ":" in cursor and cursor.split(":", 1)[0] in names:
            name, cursor = cursor.split(":", 1)
            start = names.index(name)
        tried = []
        for name, path, label in MESSAGE_FEEDS[start:]:
            try:
                entries, skipped = self._entries(path, f"the feed /{path}", private=True, limit=_limit(limit),
                                                 after=cursor)
            except ListingUnavailableError as exc:
                tried.append(ListingStatus(name, "inbox", label, works=False, detail=exc.user_message))
                cursor = None
                continue
            tried.append(ListingStatus(name, "inbox", label, works=True))
            next_after = _after(entries, skipped, _limit(limit))
            messages, other = [], 0
            for entry in entries:
                if entry.kind != "t4":
                    other += 1  # comment replies and mentions
                elif entry.when is None:
                    skipped.append(Skipped(entry.id, "a message without a date"))
                else:
                    messages.append(message_from(entry, self.username))
            return MessagePage(messages=messages, after=f"{name}:{next_after}" if next_after else None,
                               skipped=skipped, other_items=other, listings=tuple(tried))
        raise ListingUnavailableError("Reddit no longer serves the private inbox feeds to this feed token.",
                                      listings=tuple(tried))

    def send_message(self, *, to, subject, body, reply_to_external_id=None) -> SentMessage:
        raise InvalidRequestError("A feed token cannot send: open Reddit's compose page instead (“Open on Reddit "
                                  "to send”), then mark the message “I sent it”.")

    def list_posts(self, location: str, *, sort: PostSort = "new", query: str | None = None,
                   after: str | None = None, limit: int = 100) -> PostPage:
        name = community(location)
        if sort not in SORTS:
            raise InvalidRequestError(f"Unknown sort {sort!r} (new, hot or top).")
        if query is not None and query.strip():
            entries, skipped = self._entries(f"r/{name}/search.rss", f"r/{name}", q=query.strip(), restrict_sr="on",
                                             sort=sort, t="all", limit=_limit(limit), after=after)
        else:
            entries, skipped = self._entries(f"r/{name}/{sort}/.rss", f"r/{name}", t="all" if sort == "top" else None,
                                             limit=_limit(limit), after=after)
        next_after = _after(entries, skipped, _limit(limit))
        posts = []
        for entry in entries:
            if entry.kind == "t3":
                posts.append(post_from(entry, name))
            else:
                skipped.append(Skipped(entry.id, f"not a post ({entry.kind})"))
        return PostPage(posts=posts, after=next_after, skipped=skipped)

    def fetch_post(self, external_id: str) -> RemotePost:
        post_id = (external_id or "").strip().removeprefix("t3_")
        if not re.fullmatch(r"[a-z0-9]{1,13}", post_id):
            raise InvalidRequestError(f"{external_id!r} is not a post id.")
        entries, _ = self._entries(f"comments/{post_id}/.rss", "This post", limit=1)
        for entry in entries:
            if entry.kind == "t3" and entry.id == post_id:
                return post_from(entry)
        raise NotFoundError("This post was not found on Reddit.")

    def fetch_profile(self, username: str) -> RemoteAccount:
        """What a user feed tells: the account answers (active), is gone (deleted) or closed (suspended)."""
        name = check_username(username)
        try:
            self._entries(f"user/{quote(name)}/.rss", f"u/{name}", limit=1)
        except NotFoundError:
            return RemoteAccount(username=name, status="deleted")
        except ForbiddenError:
            return RemoteAccount(username=name, status="suspended")
        return RemoteAccount(username=name, status="active")

    def fetch_profile_items(self, username: str, kind: ProfileItemKind, *, after: str | None = None,
                            limit: int = 100) -> ProfileItemPage:
        name = check_username(username)
        if kind not in ("post", "comment"):
            raise InvalidRequestError(f"Unknown profile item kind {kind!r}.")
        path = f"user/{quote(name)}/{'submitted' if kind == 'post' else 'comments'}/.rss"
        entries, skipped = self._entries(path, f"u/{name}", sort="new", limit=_limit(limit), after=after)
        next_after = _after(entries, skipped, _limit(limit))
        wanted = "t3" if kind == "post" else "t1"
        items = [profile_item_from(e) for e in entries if e.kind == wanted]
        skipped += [Skipped(e.id, f"not a {kind} ({e.kind})") for e in entries if e.kind != wanted]
        return ProfileItemPage(items=items, after=next_after, skipped=skipped)
