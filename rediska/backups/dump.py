"""Database dumps and loads: mysqldump/mysql for MySQL/MariaDB, the online backup API for SQLite.

Row counts for the manifest are taken from the dump itself (the SQLite copy, or the
INSERT statements mysqldump wrote inside its one transaction), so they describe
exactly what was backed up even while the worker keeps writing.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

from .errors import BackupError, BackupSpaceError
from .files import CHUNK, Budget, HashingWriter, disk_errors

SQLITE_FILE = "db.sqlite3.gz"
MYSQL_FILE = "db.sql.gz"
DUMP_COMPLETE = b"-- Dump completed"


@dataclass
class DumpResult:
    vendor: str
    file: str
    sha256: str
    bytes: int
    tables: dict[str, int] = field(default_factory=dict)


def vendor() -> str:
    return connection.vendor


# --- SQLite ------------------------------------------------------------------
def _sqlite_tables(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}


def _gzip_file(src: Path, dst: Path, budget: Budget) -> HashingWriter:
    writer = HashingWriter(dst, budget)
    try:
        with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as gz, open(src, "rb") as fh:
            while chunk := fh.read(CHUNK):
                gz.write(chunk)
    finally:
        writer.close()
    return writer


def dump_sqlite(folder: Path, budget: Budget) -> DumpResult:
    raw = folder / "db.sqlite3"
    connection.ensure_connection()
    with disk_errors(folder):
        copy = sqlite3.connect(raw)
        try:
            # One step: the copy is a consistent snapshot even with a writer running.
            connection.connection.backup(copy)
            tables = _sqlite_tables(copy)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
                raise BackupSpaceError(f"The disk holding {folder} is full; nothing was replaced.") from None
            raise
        finally:
            copy.close()
        raw_size = raw.stat().st_size
        budget.spend(raw_size)  # the uncompressed copy occupies the disk until gzipped
        writer = _gzip_file(raw, folder / SQLITE_FILE, budget)
        raw.unlink()
        budget.refund(raw_size)
    return DumpResult("sqlite", SQLITE_FILE, writer.sha256, writer.size, tables)


@contextlib.contextmanager
def sqlite_copy(dump: Path, workdir: Path) -> Iterator[Path]:
    """Decompress a SQLite dump into a scratch file; removed afterwards."""
    scratch = workdir / f"restoretest-{secrets.token_hex(4)}.sqlite3"
    try:
        with disk_errors(workdir), gzip.open(dump, "rb") as src, open(scratch, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        yield scratch
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"The database dump cannot be decompressed ({exc}).") from None
    finally:
        scratch.unlink(missing_ok=True)


def sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problem = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if problem != "ok":
            raise BackupError(f"The restored SQLite database is damaged: {problem}")
        return _sqlite_tables(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"The restored SQLite database cannot be read ({exc}).") from None
    finally:
        conn.close()


def sqlite_attachment_rows(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT storage_key, sha256 FROM attachments").fetchall()
    finally:
        conn.close()


def load_sqlite_into_live(path: Path) -> None:
    """Replace the configured SQLite database with `path`, page by page, in one step."""
    connection.ensure_connection()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(connection.connection)
    finally:
        source.close()


# --- MySQL / MariaDB ---------------------------------------------------------
def _option_value(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@contextlib.contextmanager
def defaults_file() -> Iterator[str]:
    """The connection settings in a 0600 option file, so the password is never on a command line."""
    db = connection.settings_dict
    lines = ["[client]"]
    if db.get("USER"):
        lines.append(f"user={_option_value(db['USER'])}")
    if db.get("PASSWORD"):
        lines.append(f"password={_option_value(db['PASSWORD'])}")
    host = db.get("HOST") or ""
    if host.startswith("/"):
        lines.append(f"socket={_option_value(host)}")
    elif host:
        lines.append(f"host={_option_value(host)}")
        # A TCP host: never fall back to a local socket (it may be another server).
        lines.append("protocol=TCP")
    if db.get("PORT"):
        lines.append(f"port={int(db['PORT'])}")
    fd, path = tempfile.mkstemp(prefix="rediska-my-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        yield path
    finally:
        os.unlink(path)


def _client(name: str) -> str:
    configured = getattr(settings, f"{name.upper()}_BIN", name)
    found = shutil.which(configured)
    if not found:
        raise BackupError(
            f"{name} was not found on PATH; install the MySQL/MariaDB client tools (e.g. default-mysql-client)."
        )
    return found


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES\s*")
_CREATE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
# A quoted SQL string as mysqldump writes it (backslash escapes, newlines escaped),
# unrolled for speed.
_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'")


class RowCounter:
    """Counts rows per table in mysqldump output, fed line by line.

    MySQL writes `INSERT INTO `t` VALUES (..),(..);` on one line; MariaDB puts each
    row on its own line after `VALUES`.  Either way a row is a "(" that starts the
    values or follows "),", counted outside quoted strings.
    """

    def __init__(self):
        self.tables: dict[str, int] = {}
        self.last_line = b""
        self._table: str | None = None

    def feed(self, line: bytes) -> None:
        if line.strip():
            self.last_line = line
        if self._table is None:
            if line.startswith(b"INSERT INTO "):
                match = _INSERT.match(line)
                if match:
                    self._table = match[1].replace(b"``", b"`").decode()
                    self.tables.setdefault(self._table, 0)
                    self._rows(line[match.end():])
            elif line.startswith(b"CREATE TABLE "):
                match = _CREATE.match(line)
                if match:
                    self.tables.setdefault(match[1].replace(b"``", b"`").decode(), 0)
        else:
            self._rows(line)

    def _rows(self, text: bytes) -> None:
        values = _STRING.sub(b"''", text).strip()
        if not values:
            return
        self.tables[self._table] += values.count(b"),(") + (1 if values.startswith(b"(") else 0)
        if values.endswith(b";"):
            self._table = None


def _first_line(data: bytes) -> str:
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    # The client's own warning about passwords is noise; the real error follows it.
    lines = [line for line in lines if "Using a password on the command line" not in line]
    return (lines[-1] if lines else "no error output")[:300]


def dump_mysql(folder: Path, budget: Budget) -> DumpResult:
    binary = _client("mysqldump")
    name = connection.settings_dict["NAME"]
    counter = RowCounter()
    with defaults_file() as cnf, tempfile.TemporaryFile() as errors, disk_errors(folder):
        command = [binary, f"--defaults-extra-file={cnf}", "--single-transaction", "--routines", "--triggers",
                   "--hex-blob", "--no-tablespaces", "--default-character-set=utf8mb4", name]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        writer = HashingWriter(folder / MYSQL_FILE, budget)
        try:
            with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as gz:
                for line in process.stdout:
                    counter.feed(line)
                    gz.write(line)
        except BaseException:
            process.kill()
            raise
        finally:
            process.stdout.close()
            returncode = process.wait()
            writer.close()
        if returncode != 0:
            errors.seek(0)
            raise BackupError(f"mysqldump failed: {_first_line(errors.read())}")
    if not counter.last_line.startswith(DUMP_COMPLETE):
        raise BackupError("mysqldump stopped before the end of the dump; the dump is incomplete.")
    return DumpResult("mysql", MYSQL_FILE, writer.sha256, writer.size, counter.tables)


def _execute(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def mysql_tables(database: str) -> list[str]:
    rows = _execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
        "ORDER BY TABLE_NAME", [database])
    return [row[0] for row in rows]


def mysql_counts(database: str) -> dict[str, int]:
    return {table: _execute(f"SELECT COUNT(*) FROM {quote_name(database)}.{quote_name(table)}")[0][0]
            for table in mysql_tables(database)}


def mysql_attachment_rows(database: str) -> list[tuple[str, str]]:
    return list(_execute(f"SELECT storage_key, sha256 FROM {quote_name(database)}.`attachments`"))


@contextlib.contextmanager
def mysql_scratch(suffix: str) -> Iterator[str]:
    """An empty database `<configured name>_<suffix>_<random>`, dropped afterwards even on failure."""
    name = f"{connection.settings_dict['NAME']}_{suffix}_{secrets.token_hex(4)}"[:64]
    _execute(f"CREATE DATABASE {quote_name(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield name
    finally:
        _execute(f"DROP DATABASE IF EXISTS {quote_name(name)}")


def load_mysql(dump: Path, database: str) -> None:
    """Feed a gzipped dump to the mysql client, into `database`."""
    binary = _client("mysql")
    with defaults_file() as cnf, tempfile.TemporaryFile() as errors:
        command = [binary, f"--defaults-extra-file={cnf}", "--default-character-set=utf8mb4", "--batch", database]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            with gzip.open(dump, "rb") as src:
                while chunk := src.read(CHUNK):
                    process.stdin.write(chunk)
        except BrokenPipeError:
            pass  # the client stopped on an SQL error: reported below
        except (OSError, EOFError, zlib.error) as exc:
            process.kill()
            process.wait()
            raise BackupError(f"The database dump cannot be decompressed ({exc}).") from None
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        if process.wait() != 0:
            errors.seek(0)
            raise BackupError(f"Loading the dump failed: {_first_line(errors.read())}")


def swap_mysql_into_live(scratch: str) -> None:
    """Move every table of `scratch` into the configured database in one atomic RENAME.

    The current tables move to a third database first in the same statement, so
    there is no moment with a half-restored schema; that database is dropped after.
    """
    live = connection.settings_dict["NAME"]
    with mysql_scratch("restoreold") as old:
        renames = [f"{quote_name(live)}.{quote_name(t)} TO {quote_name(old)}.{quote_name(t)}"
                   for t in mysql_tables(live)]
        renames += [f"{quote_name(scratch)}.{quote_name(t)} TO {quote_name(live)}.{quote_name(t)}"
                    for t in mysql_tables(scratch)]
        _execute("RENAME TABLE " + ", ".join(renames))
