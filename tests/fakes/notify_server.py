"""A fake notification service (real HTTP on 127.0.0.1) that Apprise reaches through `json://`.

The `fake_notify` fixture starts it (once per session), resets it per test and points
NOTIFY_URLS at it.  `fake_notify.received` holds every notification as Apprise's JSON
payload (`title`, `message`, `type`, …); `fake_notify.fail_next(n)` answers the next n
requests with a 500 (Apprise then reports the notification as not delivered).
"""

from __future__ import annotations

import json
import threading

import pytest

from .http import LocalHTTPServer, QuietHandler


class FakeNotify:
    def __init__(self):
        self._lock = threading.Lock()
        self.received: list[dict] = []
        self.paths: list[str] = []
        self._failures = 0
        self.http = LocalHTTPServer(_handler(self))
        self.url = self.http.url
        # Apprise's JSON webhook: json://host:port/path posts {"title", "message", "type", ...}.
        self.apprise_url = f"json://{self.http.host}:{self.http.port}/hook"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.paths.clear()
            self._failures = 0

    def fail_next(self, count: int = 1) -> None:
        with self._lock:
            self._failures = count

    def _take_failure(self) -> bool:
        with self._lock:
            if self._failures:
                self._failures -= 1
                return True
            return False

    @property
    def titles(self) -> list[str]:
        return [r.get("title", "") for r in self.received]

    def close(self) -> None:
        self.http.close()


def _handler(fake: FakeNotify):
    class Handler(QuietHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if fake._take_failure():
                self.reply(500, {"Content-Type": "application/json"}, b'{"error": "down"}')
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"raw": raw.decode("utf-8", "replace")}
            with fake._lock:
                fake.received.append(body)
                fake.paths.append(self.path)
            self.reply(200, {"Content-Type": "application/json"}, b"{}")

    return Handler


@pytest.fixture(scope="session")
def _fake_notify_server():
    fake = FakeNotify()
    yield fake
    fake.close()


@pytest.fixture
def fake_notify(_fake_notify_server, settings):
    fake = _fake_notify_server
    fake.reset()
    settings.NOTIFY_URLS = [fake.apprise_url]
    settings.NOTIFY_EVENTS = frozenset({"reply", "lead", "backup"})
    settings.NOTIFY_DIGEST_MINUTES = 0
    settings.NOTIFY_LEAD_MIN_SCORE = 80
    settings.NOTIFY_TIMEOUT_SECONDS = 2.0
    yield fake
    fake.reset()
