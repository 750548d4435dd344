"""Build Reddit data-export ZIPs in the documented format (REDDIT-2026.md §3), quirks included.

Rows are dicts by column name; `write_export` lays them out as Reddit does:
`YYYY-MM-DD HH:MM:SS UTC` dates, ids without prefix, multi-line quoted
bodies, an optional UTF-8 BOM, tables split into `messages_1.csv`,
`messages_2.csv`... each with its own header, extra columns, any column order.
Rows may also be generated (an iterable), so a benchmark writes a large export
without holding it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

MESSAGE_COLUMNS = ["id", "permalink", "thread_id", "date", "ip", "from", "to", "subject", "body"]
CHAT_COLUMNS = ["message_id", "created_at", "updated_at", "username", "message", "thread_parent_message_id",
                "channel_url", "subreddit", "channel_name", "conversation_type"]
POST_COLUMNS = ["id", "permalink", "date", "ip", "subreddit", "gildings", "title", "url", "body"]
COMMENT_COLUMNS = ["id", "permalink", "date", "ip", "subreddit", "gildings", "link", "parent", "body", "media"]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def when(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S UTC")


def message(ext: str, sender: str, to: str, body: str, *, thread: str = "", minutes: float = 0,
            subject: str = "hello", ip: str = "203.0.113.7") -> dict:
    return {"id": ext, "permalink": f"/message/messages/{ext}", "thread_id": thread, "date": when(minutes),
            "ip": ip, "from": sender, "to": to, "subject": subject, "body": body}


def chat(ext: str, sender: str, body: str, *, channel: str = "room1", minutes: float = 0,
         kind: str = "direct", channel_name: str = "") -> dict:
    return {"message_id": ext, "created_at": when(minutes), "updated_at": "", "username": sender, "message": body,
            "thread_parent_message_id": "", "channel_url": f"https://chat.reddit.com/room/!{channel}:reddit.com",
            "subreddit": "", "channel_name": channel_name, "conversation_type": kind}


def csv_bytes(columns: list[str], rows: Iterable[dict], *, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def _write_table(archive: zipfile.ZipFile, name: str, columns: list[str], rows: Iterable[dict], *, bom: bool,
                 split: int | None) -> None:
    """One table as `name.csv`, or `name_1.csv`, `name_2.csv`... of `split` rows each, streamed in."""
    part, count, handle, writer = 0, 0, None, None

    def start(file_name: str):
        member = archive.open(file_name, "w", force_zip64=True)
        text = io.TextIOWrapper(member, encoding="utf-8-sig" if bom else "utf-8", newline="")
        w = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
        w.writeheader()
        return text, w

    for row in rows:
        if handle is None or (split and count >= split):
            if handle is not None:
                handle.close()
            part += 1
            handle, writer = start(f"{name}_{part}.csv" if split else f"{name}.csv")
            count = 0
        writer.writerow(row)
        count += 1
    if handle is None:
        handle, writer = start(f"{name}.csv")
    handle.close()


def write_export(path: Path, *, messages: Iterable[dict] | None = None, chats: Iterable[dict] | None = None,
                 posts: Iterable[dict] | None = None, comments: Iterable[dict] | None = None,
                 messages_archive: Iterable[dict] | None = None, bom: bool = True, split: int | None = None,
                 message_columns: list[str] | None = None, chat_columns: list[str] | None = None,
                 extra_files: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        if messages is not None:
            _write_table(archive, "messages", message_columns or MESSAGE_COLUMNS, messages, bom=bom, split=split)
        if messages_archive is not None:
            _write_table(archive, "messages_archive", message_columns or MESSAGE_COLUMNS, messages_archive,
                         bom=bom, split=None)
        if chats is not None:
            _write_table(archive, "chat_history", chat_columns or CHAT_COLUMNS, chats, bom=bom, split=None)
        if posts is not None:
            _write_table(archive, "posts", POST_COLUMNS, posts, bom=bom, split=None)
        if comments is not None:
            _write_table(archive, "comments", COMMENT_COLUMNS, comments, bom=bom, split=None)
        for name, data in (extra_files or {}).items():
            archive.writestr(name, data)
    return path
