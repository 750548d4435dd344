"""Reading a provider's data export safely: a ZIP (or its unpacked folder) of CSV tables.

Nothing here trusts the archive: the member count and the uncompressed size
are capped before anything is read (ZIP bombs), member names are only ever
matched, never used as paths (nothing is extracted), each CSV is streamed
row by row from the archive, and a file whose quoting breaks is reported
whole, with its line.  Which file is which table, and what a row means, is
the provider's `ExportFormat`.

`scan()` is the first of an import's two passes: it reads every table once,
checks its columns and quoting, and learns whose export it is and who is in
each chat, so the second pass (the app's) stores only files known to be
readable, and a refused import writes nothing.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings

from .providers.base import ExportFormat, ExportRowError, ExportTable

TOKEN_CHARS = frozenset("0123456789abcdef")
# Above this size a member must compress like text does, not like a bomb.
RATIO_FLOOR_BYTES = 1024 * 1024
OWNER_SHARE = 0.9
STALE_UPLOAD_SECONDS = 7 * 24 * 3600
CHAT_OWNER_SHARE = 0.5


class ExportError(Exception):
    """The archive as a whole cannot be imported; `user_message` says why, in plain words."""

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


class ExportFileError(Exception):
    """One file of the archive cannot be read (broken quoting, a missing column...)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --- uploads kept under DATA_DIR until their import finishes ----------------------------


def uploads_dir() -> Path:
    path = Path(settings.EXPORT_UPLOADS_PATH)
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_path(token: str) -> Path:
    if not token or len(token) != 32 or not set(token) <= TOKEN_CHARS:
        raise ExportError("This upload is not known here.")
    return uploads_dir() / f"{token}.zip"


def save_upload(uploaded) -> str:
    """Copy an uploaded file (Django's, streamed to disk) under DATA_DIR; returns its token."""
    if uploaded.size is not None and uploaded.size > settings.EXPORT_MAX_UPLOAD_BYTES:
        raise ExportError(too_large_message(uploaded.size))
    _prune_stale_uploads()
    token = uuid.uuid4().hex
    path = upload_path(token)
    temporary = getattr(uploaded, "temporary_file_path", None)
    try:
        if not temporary:
            raise OSError("in memory")
        # A large upload Django streamed to a temporary file: moved, not copied, when on the same disk.
        os.replace(temporary(), path)
    except OSError:
        with open(path, "wb") as out:
            if temporary:
                with open(temporary(), "rb") as source:
                    shutil.copyfileobj(source, out, 1024 * 1024)
            else:
                for chunk in uploaded.chunks():
                    out.write(chunk)
    try:
        open_archive(path).close()  # not a ZIP, a bomb, unsafe names: refused before any job starts
    except ExportError:
        discard_upload(token)
        raise
    return token


def _prune_stale_uploads() -> None:
    """Uploads never confirmed (a new-identity page left half way) go after a week; imports take minutes."""
    cutoff = time.time() - STALE_UPLOAD_SECONDS
    for entry in os.scandir(uploads_dir()):
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass  # another process pruned it first


def discard_upload(token: str) -> None:
    try:
        upload_path(token).unlink(missing_ok=True)
    except ExportError:
        pass


def refused_upload(request) -> str | None:
    """Why a request's body is refused before Django reads it (over the upload cap), or None."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    # The slack is the multipart envelope around the file.
    return too_large_message(length) if length > settings.EXPORT_MAX_UPLOAD_BYTES + 64 * 1024 else None


def too_large_message(size: int) -> str:
    cap = settings.EXPORT_MAX_UPLOAD_BYTES
    return (f"This file is {size / 2**20:,.0f} MB; uploads are limited to {cap / 2**20:,.0f} MB "
            "(EXPORT_MAX_UPLOAD_BYTES). Unpack it on the server and use `manage.py import_export` instead.")


# --- the archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str  # as listed in the archive; never used as a path
    size: int

    @property
    def basename(self) -> str:
        return PurePosixPath(self.name.replace("\\", "/")).name


class _Capped(io.RawIOBase):
    """A member's bytes, stopped past the size the archive declared for it (a lying header is a bomb)."""

    def __init__(self, raw, limit: int):
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        self._left -= len(data)
        if self._left < 0:
            raise ExportError("A file of the archive unpacks to more than its size said: refused as a ZIP bomb.")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class ExportArchive:
    """The members of an export, from a ZIP file or an unpacked folder."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.members = sorted(
                (Member(entry.name, entry.stat().st_size) for entry in os.scandir(path)
                 if entry.is_file(follow_symlinks=False)), key=lambda m: m.name)
        else:
            self.members = self._zip_members(path)

    def _zip_members(self, path: Path) -> list[Member]:
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise ExportError("This is not a ZIP file: upload the .zip the provider's email links to, unchanged.") \
                from None
        if len(infos) > settings.EXPORT_MAX_MEMBERS:
            raise ExportError(f"The ZIP holds {len(infos):,} files, more than an export has "
                              f"(at most {settings.EXPORT_MAX_MEMBERS:,}, EXPORT_MAX_MEMBERS): refused.")
        total = 0
        members = []
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ExportError(f"The ZIP holds a file named {name[:100]!r} that points outside it: refused "
                                  "(a genuine export never does).")
            if info.is_dir():
                continue
            total += info.file_size
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size > settings.EXPORT_MAX_RATIO * max(
                    info.compress_size, 1):
                raise ExportError(f"{name[:100]} unpacks to {info.file_size / max(info.compress_size, 1):,.0f} "
                                  "times its packed size: refused as a ZIP bomb.")
            members.append(Member(name, info.file_size))
        if total > settings.EXPORT_MAX_UNCOMPRESSED_BYTES:
            raise ExportError(f"The ZIP unpacks to {total / 2**30:,.1f} GB, more than the "
                              f"{settings.EXPORT_MAX_UNCOMPRESSED_BYTES / 2**30:,.1f} GB allowed "
                              "(EXPORT_MAX_UNCOMPRESSED_BYTES): refused.")
        return members

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _open(self, member: Member):
        if self._zip is None:
            return open(self.path / member.basename, "rb")  # a folder's own listing, symlinks excluded
        return io.BufferedReader(_Capped(self._zip.open(member.name), member.size), 1024 * 1024)

    def rows(self, member: Member) -> Iterator[tuple[int, dict]]:
        """(row number from 1, {column: value}) for each data row, streamed; column names lower-cased."""
        reader = None
        try:
            with self._open(member) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
                reader = csv.reader(text, strict=True)
                header = [h.strip().lower() for h in next(reader, [])]
                if not any(header):
                    raise ExportFileError("it is empty (no header row)")
                for number, values in enumerate(reader, 1):
                    if values:
                        yield number, dict(zip(header, values))
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise ExportFileError(f"its CSV is broken near line {line:,} ({exc})") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ExportFileError(f"it cannot be unpacked ({exc})") from None

    def header(self, member: Member) -> list[str]:
        with self._open(member) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            try:
                return [h.strip().lower() for h in next(csv.reader(text, strict=True), [])]
            except csv.Error as exc:
                raise ExportFileError(f"its header row is broken ({exc})") from None


def open_archive(path: Path) -> ExportArchive:
    if not path.exists():
        raise ExportError(f"{path} does not exist.")
    try:
        return ExportArchive(path)
    except OSError as exc:
        raise ExportError(f"{path} cannot be read ({exc.strerror or exc}).") from None


# --- the first pass -------------------------------------------------------------------


@dataclass
class FileScan:
    name: str
    table: ExportTable
    rows: int = 0
    error: str | None = None


@dataclass
class ChannelScan:
    names: set[str] = field(default_factory=set)  # lower-cased participants
    display: dict[str, str] = field(default_factory=dict)
    direct: bool | None = None
    kind: str = "unknown"
    lines: int = 0
    channel_name: str | None = None


@dataclass
class Scan:
    files: list[FileScan] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # files of the archive no table is read from
    message_rows: int = 0  # rows of the messages tables naming somebody
    in_messages: Counter = field(default_factory=Counter)  # lower-cased username -> message rows naming it
    in_chats: Counter = field(default_factory=Counter)  # lower-cased username -> chats they wrote in
    display: dict[str, str] = field(default_factory=dict)
    channels: dict[str, ChannelScan] = field(default_factory=dict)

    @property
    def readable(self) -> list[FileScan]:
        return [f for f in self.files if f.error is None]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.readable)

    def _in_every_message(self, key: str) -> bool:
        # The owner sent or received every message (a few odd rows aside).
        return self.in_messages.get(key, 0) >= OWNER_SHARE * self.message_rows

    def candidates(self, limit: int = 5) -> list[str]:
        """Who the export may belong to, the likeliest first."""
        names = set(self.in_messages) | set(self.in_chats)
        ranked = sorted(names, key=lambda k: (self.message_rows > 0 and self._in_every_message(k),
                                              self.in_chats.get(k, 0) + self.in_messages.get(k, 0)), reverse=True)
        return [self.display[k] for k in ranked[:limit]]

    def owns(self, username: str) -> bool:
        """True when the export can be `username`'s (always when it names nobody)."""
        key = username.lower()
        if self.message_rows:
            return self._in_every_message(key)
        if self.in_chats:
            # Chats name only who wrote: the owner wrote in many of them, if not in all.
            return self.in_chats.get(key, 0) >= CHAT_OWNER_SHARE * self.in_chats.most_common(1)[0][1]
        return True


def _name(scan: Scan, name: str) -> str:
    key = name.lower()
    scan.display.setdefault(key, name)
    return key


def scan(archive: ExportArchive, fmt: ExportFormat, *, limit_rows: int | None = None,
         on_rows: Callable[[int], None] | None = None) -> Scan:
    """Read every table of the export once (or its first `limit_rows` rows, to guess the owner)."""
    result = Scan()
    for member in archive.members:
        table = fmt.table_of(member.basename)
        if table is None:
            result.others.append(member.basename)
            continue
        found = FileScan(member.basename, table)
        result.files.append(found)
        try:
            missing = fmt.required_columns(table) - set(archive.header(member))
            if missing:
                raise ExportFileError(f"it misses the column{'s' if len(missing) > 1 else ''} "
                                      f"{', '.join(sorted(missing))}")
            for number, row in archive.rows(member):
                found.rows = number
                if table == "chats":
                    _scan_chat(result, fmt, row)
                elif table == "messages":
                    names = {_name(result, n) for n in fmt.names_in(table, row)}
                    if names:
                        result.message_rows += 1
                        result.in_messages.update(names)
                if on_rows and number % 10_000 == 0:
                    on_rows(10_000)
                if limit_rows and number >= limit_rows:
                    break
        except ExportFileError as exc:
            found.error, found.rows = exc.reason, 0
    if not result.files:
        raise ExportError("This ZIP holds none of the files an export has (messages.csv, chat_history.csv, "
                          "posts.csv, comments.csv): nothing to import.")
    return result


def _scan_chat(result: Scan, fmt: ExportFormat, row: dict) -> None:
    try:
        line = fmt.chat_line(row)
    except ExportRowError:
        return  # the second pass counts it as skipped, with the reason
    channel = result.channels.get(line.channel_id)
    if channel is None:
        channel = result.channels[line.channel_id] = ChannelScan(direct=line.direct, kind=line.kind,
                                                                 channel_name=line.channel_name)
    channel.lines += 1
    if line.author:
        key = line.author.lower()
        if key not in channel.names:
            channel.names.add(key)
            channel.display[key] = line.author
            result.in_chats[_name(result, line.author)] += 1
