"""Rediska's real processes in subprocesses, for the crash and stop tests.

`AppStack` is one installation: a DATA_DIR, its own database (a SQLite file, or a
fresh MariaDB database when the tests run on MariaDB), the broker the embedded
default or the MariaDB run uses (filesystem, or a Redis database of its own, never
one of the test runs': each stack's workers must see only its own messages), the
fake provider server of this process,
and helpers to run `manage.py`, start and SIGKILL workers and read the tables.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def new_data_dir(name: str) -> Path:
    """A folder of its own (not pytest's tmp_path: other runs on the machine prune those while we run)."""
    return Path(tempfile.mkdtemp(prefix=f"rediska-{name}-"))


class AppStack:
    def __init__(self, data_dir: Path, fake, *, redis_db: int, heartbeat_timeout: float = 15.0, **extra_env: str):
        self.data_dir = data_dir
        self.fake = fake
        self.mysql = connection.vendor == "mysql"
        self.marker = uuid.uuid4().hex  # in every process's environment: finds strays, orphans included
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(data_dir)),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "rediska.settings",
            "REDISKA_IGNORE_DOTENV": "1",
            "REDISKA_STACK_MARKER": self.marker,
            "DATA_DIR": str(data_dir),
            "PY": sys.executable,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            "JOBS_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
            "SYNC_INTERVAL_SECONDS": "3600",
            "WATCH_TICK_SECONDS": "3600",
            "PROVIDER_RATE_QPM_DEFAULT": "0",
            "PROVIDER_REDDIT_OAUTH_URL": fake.url,
            "PROVIDER_REDDIT_BASE_URL": fake.url,
            "PROVIDER_REDDIT_CLIENT_ID": fake.client_id,
            "PROVIDER_REDDIT_CLIENT_SECRET": fake.client_secret,
            "PROVIDER_REDDIT_REDIRECT_URI": fake.redirect_uri,
            "PROVIDER_REDDIT_USER_AGENT": "rediska-chaos/0.1",
            "PROVIDER_REDDIT_TIMEOUT": "30",
            **extra_env,
        }
        self.database = None
        if self.mysql:
            db = settings.DATABASES["default"]
            self.database = f"rediska_chaos_{uuid.uuid4().hex[:8]}"
            self._mysql_root().cursor().execute(
                f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
            self.env["MYSQL_URL"] = f"mysql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{self.database}"
            redis = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
            self.env["REDIS_URL"] = f"redis://{redis.netloc}/{redis_db}"
            self.flush_redis()
        self.processes: list[subprocess.Popen] = []

    # -- set-up --
    def _mysql_root(self, database: str | None = None):
        import MySQLdb

        db = settings.DATABASES["default"]
        kwargs = {"host": db["HOST"] or "127.0.0.1", "port": int(db["PORT"] or 3306), "user": db["USER"],
                  "passwd": db["PASSWORD"] or "", "autocommit": True}
        if database:
            kwargs["db"] = database
        return MySQLdb.connect(**kwargs)

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str, timeout: float = 120) -> str:
        return self.manage("shell", "-c", code, timeout=timeout).strip()

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def connect_identity(self, username: str) -> int:
        token = self.fake.issue_refresh_token(username)
        return int(self.shell(
            "from tests.factories import ProviderFactory\n"
            "from identities.services import connect_identity\n"
            "from rediska.providers.base import RemoteAccount\n"
            "ProviderFactory()\n"
            f"print(connect_identity(provider_id='reddit', refresh_token={token!r}, "
            f"account=RemoteAccount(username={username!r})).pk)"
        ).splitlines()[-1])

    # -- processes --
    def start(self, *argv: str, log: str) -> subprocess.Popen:
        """A process in its own session (so a kill of its group takes its children too)."""
        out = open(self.data_dir / log, "ab")
        process = subprocess.Popen(list(argv), cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        out.close()
        self.processes.append(process)
        return process

    def start_worker(self, log: str = "worker.log") -> subprocess.Popen:
        return self.start(sys.executable, "-m", "celery", "-A", "rediska", "worker", "--beat", "--concurrency", "2",
                          "--loglevel", "INFO", "--schedule", str(self.data_dir / "celerybeat-schedule"), log=log)

    @staticmethod
    def sigkill(process: subprocess.Popen) -> None:
        """What an OOM kill or a power cut does: the worker, its pool and its beat, at once."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def pids(self) -> list[int]:
        """Every live process of this stack (its marker is in their environment)."""
        found = []
        needle = f"REDISKA_STACK_MARKER={self.marker}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
        return found

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.database:
            self._mysql_root().cursor().execute(f"DROP DATABASE IF EXISTS `{self.database}`")
            self.flush_redis()
        if not os.environ.get("KEEP_STACK"):  # KEEP_STACK=1 keeps the logs and database to look at
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- evidence --
    def query(self, sql: str) -> list[tuple]:
        if self.mysql:
            conn = self._mysql_root(self.database)
            try:
                cur = conn.cursor()
                cur.execute(sql)
                return list(cur.fetchall())
            finally:
                conn.close()
        conn = sqlite3.connect(self.data_dir / "rediska.sqlite3", timeout=30, isolation_level=None)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str):
        return self.query(sql)[0][0]

    def job_statuses(self) -> dict[str, int]:
        return dict(self.query("SELECT status, COUNT(*) FROM jobs GROUP BY status"))

    def indexed(self, doc_type: str) -> int:
        """Documents of `doc_type` in the active generation of the embedded search index."""
        conn = sqlite3.connect(self.data_dir / "search-index.sqlite3", timeout=30)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'active'").fetchone()
            if row is None:
                return 0
            return conn.execute(f"SELECT COUNT(*) FROM docs_{int(row[0])} WHERE doc_type = ?", (doc_type,)).fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    def log(self, name: str) -> str:
        path = self.data_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, lines: int = 40) -> str:
        return f"--- last lines of {name}:\n" + "\n".join(self.log(name).splitlines()[-lines:])


def wait_for(predicate, *, timeout: float, interval: float = 0.5, what="condition", evidence=None):
    """Poll `predicate`; on timeout fail with `what` (a string or a callable) and `evidence()` (e.g. a log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {described}"
                                 + (f"\n{evidence()}" if evidence else ""))
        time.sleep(interval)


def tracebacks(text: str) -> list[str]:
    return re.findall(r"Traceback \(most recent call last\):\n(?:.*\n){0,30}?\S.*Error.*", text)
