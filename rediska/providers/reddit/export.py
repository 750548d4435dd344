"""Reddit's data export (reddit.com/settings/data-request): a flat ZIP of CSV files.

Columns as reported by several independent parsers, read by header name:
`messages.csv` (also `messages_archive.csv`, split `messages_N.csv`): id,
permalink, thread_id, date, ip, from, to, subject, body; `chat_history.csv`:
message_id, created_at, updated_at, username, message,
thread_parent_message_id, channel_url, subreddit, channel_name,
conversation_type; `posts.csv` and `comments.csv`.  Ids come without the
`t4_`/`t1_` prefix (normalised here either way, to the form the API mapping
stores), dates as `YYYY-MM-DD HH:MM:SS UTC`.  `ip` is never read.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..base import ChatLine, ExportFormat, ExportRowError, ExportTable, RemoteMessage, RemoteProfileItem
from .mappers import DELETED, bare_id

WEB = "https://www.reddit.com"
FILES = re.compile(r"^(?P<table>messages|messages_archive|chat_history|posts|comments)(?:_\d+)?\.csv$", re.I)
TABLES: dict[str, ExportTable] = {"messages": "messages", "messages_archive": "messages", "chat_history": "chats",
                                  "posts": "posts", "comments": "comments"}
REQUIRED: dict[str, frozenset[str]] = {
    "messages": frozenset({"id", "date", "from", "to", "body"}),
    "chats": frozenset({"message_id", "created_at", "username", "message", "channel_url"}),
    "posts": frozenset({"id", "date"}),
    "comments": frozenset({"id", "date", "body"}),
}
# The values of `conversation_type` are not documented: words that mean a one-to-one chat, and others.
DIRECT_WORDS = ("direct", "dm", "one_to_one", "one-to-one", "1:1", "private")
GROUP_WORDS = ("group", "community", "subreddit", "channel", "public")
MAX_ID = 120


def _when(value: str | None) -> datetime:
    text = (value or "").strip()
    if not text:
        raise ExportRowError("no date")
    if text.endswith(" UTC"):
        text = text[:-4]
    elif text.endswith("Z"):
        text = text[:-1]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ExportRowError("a date that cannot be read") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _person(value: str | None) -> str | None:
    name = (value or "").strip()
    if name.startswith("/u/"):
        name = name[3:]
    elif name.startswith("u/"):
        name = name[2:]
    return name if name and name != DELETED else None


def _text(value: str | None) -> str | None:
    # CSV keeps the line breaks inside a quoted body; the API serves them as LF.
    return value.replace("\r\n", "\n") if value else value


def _short(prefix: str, value: str) -> str:
    """A stored id of at most MAX_ID characters (long ids become a digest)."""
    key = f"{prefix}{value}"
    return key if len(key) <= MAX_ID else f"{prefix}{hashlib.sha1(value.encode()).hexdigest()}"


def _channel(url: str) -> str:
    """`https://chat.reddit.com/room/!abc:reddit.com` -> `chat:!abc:reddit.com` (any other value kept whole)."""
    url = url.strip()
    parts = urlsplit(url)
    key = parts.path.rstrip("/").rsplit("/", 1)[-1] if parts.scheme and parts.path.strip("/") else url
    return _short("chat:", key)


def _direct(kind: str, subreddit: str) -> bool | None:
    word = kind.strip().lower()
    if any(w in word for w in GROUP_WORDS):
        return False
    if any(w in word for w in DIRECT_WORDS):
        return True
    return False if subreddit.strip() else None


class RedditExport(ExportFormat):
    def table_of(self, member_name: str) -> ExportTable | None:
        match = FILES.match(member_name)
        return TABLES[match["table"].lower()] if match else None

    def required_columns(self, table: ExportTable) -> frozenset[str]:
        return REQUIRED[table]

    def names_in(self, table: ExportTable, row: dict) -> tuple[str, ...]:
        if table == "messages":
            return tuple(n for n in (_person(row.get("from")), _person(row.get("to"))) if n)
        if table == "chats":
            name = _person(row.get("username"))
            return (name,) if name else ()
        return ()

    def message(self, row: dict) -> RemoteMessage:
        ext = bare_id((row.get("id") or "").strip())
        if not ext:
            raise ExportRowError("no message id")
        if len(ext) > MAX_ID:
            raise ExportRowError("a message id that is too long")
        thread = bare_id((row.get("thread_id") or "").strip()) or ext
        author = _person(row.get("from"))
        return RemoteMessage(
            external_id=ext, conversation_external_id=thread[:MAX_ID], author=author,
            recipient=_person(row.get("to")), sent_at=_when(row.get("date")), body=_text(row.get("body")),
            subject=(row.get("subject") or "").strip() or None,
        )

    def chat_line(self, row: dict) -> ChatLine:
        ext = (row.get("message_id") or "").strip()
        channel = (row.get("channel_url") or "").strip()
        if not ext:
            raise ExportRowError("no chat message id")
        if not channel:
            raise ExportRowError("no chat (channel_url is empty)")
        kind = (row.get("conversation_type") or "").strip()
        return ChatLine(
            external_id=_short("chat:", ext), channel_id=_channel(channel), author=_person(row.get("username")),
            sent_at=_when(row.get("created_at")), body=_text(row.get("message")),
            direct=_direct(kind, row.get("subreddit") or ""), kind=kind or "unknown",
            channel_name=(row.get("channel_name") or "").strip() or None,
        )

    def profile_item(self, table: ExportTable, row: dict) -> RemoteProfileItem:
        ext = bare_id((row.get("id") or "").strip())
        if not ext or len(ext) > MAX_ID:
            raise ExportRowError("no usable id")
        permalink = (row.get("permalink") or "").strip()
        url = permalink if permalink.startswith("http") else (f"{WEB}{permalink}" if permalink.startswith("/")
                                                              else None)
        return RemoteProfileItem(
            external_id=ext, item_type="post" if table == "posts" else "comment", created_at=_when(row.get("date")),
            text=_text(row.get("body")) or None, location=(row.get("subreddit") or "").strip() or None,
            url=url, title=(row.get("title") or "").strip() or None if table == "posts" else None,
        )
