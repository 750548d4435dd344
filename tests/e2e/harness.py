"""The e2e harness: the real app in subprocesses, fakes in this process, checks every page shares.

`App` serves Rediska the way a user runs it (`scripts/run.sh`: gunicorn + a Celery
worker with embedded beat, filesystem broker, SQLite under a fresh DATA_DIR) and
points it at a fake provider and a fake model server started here.  The helpers
below are the checks every flow applies to the pages it visits: no console
errors, every control named, focus visible, no horizontal overflow at 1280 and
800 px, a screenshot for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

try:  # the e2e extra; `make test` never imports a browser driver (e2e items are skipped there)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - only without the e2e extra
    PlaywrightError = Exception
    expect = sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs (no sandbox in containers, no GPU, no phoning home).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e correct horse battery"
WIDE, NARROW = 1280, 800
# E2E_MYSQL_URL=mysql://user:pass@host:3306/prefix runs every installation on MariaDB instead of
# SQLite, each in its own database `<prefix>_e2e_<random>` (copied from a migrated template, dropped after).
E2E_MYSQL_URL = os.environ.get("E2E_MYSQL_URL", "")
VIEWPORT = {"width": WIDE, "height": 800}
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """One Rediska installation: a DATA_DIR, a port, and the processes of `scripts/run.sh`."""

    def __init__(self, data_dir: Path, *, provider_url: str, llm_url: str, llm_model: str, embeddings_dims: int,
                 client_id: str, client_secret: str, media_host: str, database: str | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = f"{self.url}/identities/connect/callback"
        self.log_path = data_dir / "app.log"
        self.process: subprocess.Popen | None = None
        self.database = database  # a MariaDB database of its own (E2E_MYSQL_URL), else SQLite in DATA_DIR
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(data_dir)),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "rediska.settings",
            "REDISKA_IGNORE_DOTENV": "1",
            "DATA_DIR": str(data_dir),
            "PY": sys.executable,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_WORKERS": "2",
            "WORKER_CONCURRENCY": "2",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
            # Beat stays on, as for a user, but its periodic work must not race the flows.
            "SYNC_INTERVAL_SECONDS": "3600",
            "WATCH_TICK_SECONDS": "3600",
            "PROVIDER_RATE_QPM_DEFAULT": "0",
            "PROVIDER_REDDIT_OAUTH_URL": provider_url,
            "PROVIDER_REDDIT_BASE_URL": provider_url,
            "PROVIDER_REDDIT_CLIENT_ID": client_id,
            "PROVIDER_REDDIT_CLIENT_SECRET": client_secret,
            "PROVIDER_REDDIT_REDIRECT_URI": self.redirect_uri,
            "PROVIDER_REDDIT_MEDIA_HOSTS": media_host,
            "PROVIDER_REDDIT_USER_AGENT": "rediska-e2e/0.1",
            "PROVIDER_REDDIT_TIMEOUT": "10",
            "INFERENCE_URL": llm_url,
            "INFERENCE_MODEL": llm_model,
            "EMBEDDINGS_URL": llm_url,
            "EMBEDDINGS_MODEL": "fake-embed",
            "EMBEDDINGS_DIMS": str(embeddings_dims),
            "LLM_TIMEOUT_SECONDS": "10",
            # Today (issue 15): a watch's background scores start at once, not after the usual delay.
            "AUTO_SCORE_DELAY_SECONDS": "0",
        }
        if database:
            self.env["MYSQL_URL"] = _mysql_url(database)

    # -- lifecycle --
    @staticmethod
    def prepare_template(data_dir: Path) -> str | None:
        """Migrate a fresh DATA_DIR (and template database) and create the admin: copied for every app, once.

        Returns the template database's name when the apps run on MariaDB."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "REDISKA_IGNORE_DOTENV": "1",
               "DJANGO_SETTINGS_MODULE": "rediska.settings", "DATA_DIR": str(data_dir), "LOG_FORMAT": "text",
               "REDISKA_ADMIN_PASSWORD": ADMIN_PASSWORD}
        database = None
        if E2E_MYSQL_URL:
            database = _create_database()
            env["MYSQL_URL"] = _mysql_url(database)
        for args in (["migrate", "--noinput"], ["createadmin", "--username", ADMIN_USERNAME]):
            done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return database

    @classmethod
    def from_template(cls, template: Path, data_dir: Path, *, template_database: str | None = None,
                      **kwargs) -> "App":
        shutil.copytree(template, data_dir)
        database = None
        if template_database:
            database = _create_database()
            dump = subprocess.run(["mysqldump", *_mysql_args(), "--single-transaction", template_database],
                                  capture_output=True, check=True, timeout=120)
            subprocess.run(["mysql", *_mysql_args(), database], input=dump.stdout, capture_output=True, check=True,
                           timeout=120)
        return cls(data_dir, database=database, **kwargs)

    def start(self) -> "App":
        self._log = open(self.log_path, "ab")
        # Own process group: stopping it stops gunicorn, the worker and beat, nothing else.
        self.process = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/login/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the app did not answer within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        if self.process:
            # run.sh may exit before the worker ends its warm shutdown (which can linger): nothing of a
            # throwaway installation outlives its tests, and a short grace keeps the run fast.
            deadline = time.monotonic() + 3
            while self._group_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._group_alive():
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def drop_database(self) -> None:
        if self.database:
            drop_database(self.database)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    # -- evidence --
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def server_errors(self) -> list[str]:
        """Access-log lines answered 5xx, and tracebacks the app logged."""
        text = self.log_text()
        bad = [line for line in text.splitlines() if re.search(r'" 5\d\d ', line)]
        if "Traceback (most recent call last)" in text:
            bad.append("a traceback is in the app log")
        return bad

    def manage(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run a management command against this installation (as an operator would)."""
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=120)


def _mysql_args() -> list[str]:
    url = urlsplit(E2E_MYSQL_URL)
    args = ["--protocol=tcp", f"-h{url.hostname or '127.0.0.1'}", f"-P{url.port or 3306}",
            f"-u{unquote(url.username or 'root')}"]
    return args + ([f"-p{unquote(url.password)}"] if url.password else [])


def _mysql_url(database: str) -> str:
    return urlsplit(E2E_MYSQL_URL)._replace(path=f"/{database}").geturl()


def _create_database() -> str:
    prefix = urlsplit(E2E_MYSQL_URL).path.strip("/") or "rediska"
    name = f"{prefix}_e2e_{uuid.uuid4().hex[:8]}"
    subprocess.run(["mysql", *_mysql_args(), "-e",
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"],
                   capture_output=True, check=True, timeout=60)
    return name


def drop_database(name: str) -> None:
    subprocess.run(["mysql", *_mysql_args(), "-e", f"DROP DATABASE IF EXISTS `{name}`"], capture_output=True,
                   timeout=60)


class BrowserProblems:
    """Console errors and uncaught page errors of one page; a flow fails on any of them."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))

    def _console(self, message):
        if message.type == "error":
            self.items.append(f"console error: {message.text} ({message.location.get('url', '')})")


# --------------------------------------------------------------------------- page checks
_UNNAMED_CONTROLS_JS = """
() => {
  const named = el => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).some(id => (document.getElementById(id)?.textContent || '').trim())) return true;
    if (el.labels && Array.from(el.labels).some(l => l.textContent.trim())) return true;
    if ((el.getAttribute('title') || '').trim()) return true;
    if (el.tagName === 'BUTTON' || el.tagName === 'A') return !!(el.textContent.trim() || el.querySelector('img[alt]:not([alt=""])'));
    if (el.tagName === 'INPUT' && ['submit', 'button', 'reset'].includes(el.type)) return !!el.value.trim();
    return false;
  };
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const what = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? `[name=${el.name}]` : '')
                     + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]'))
    .filter(el => visible(el) && !named(el)).map(what);
}
"""


def unnamed_controls(page) -> list[str]:
    """Form controls, buttons and links without an accessible name (label, aria-*, text)."""
    return page.evaluate(_UNNAMED_CONTROLS_JS)


def horizontal_overflow(page, width: int) -> int:
    """How many pixels the page is wider than a `width`-px window (0 = no sideways scrolling)."""
    page.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
    page.wait_for_timeout(50)  # let layout settle after the resize
    over = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    return max(0, over)


def overflowing_elements(page) -> list[str]:
    """What sticks out past the right edge (to name the culprit in a failure)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 8).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : ''))""")


_FOCUS_STATE_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none';
  const path = [];
  for (let node = el; node && node !== document.body; node = node.parentElement) {
    const place = node.id ? '#' + node.id : ':' + Array.from(node.parentElement.children).indexOf(node);
    path.unshift(node.tagName.toLowerCase() + place);
  }
  const label = (el.textContent || el.value || el.name || '').trim().slice(0, 30);
  return {path: path.join('>'), ring, what: el.tagName.toLowerCase() + ' "' + label + '"'};
}
"""


def tab_stops_without_focus_ring(page, limit: int = 40) -> list[str]:
    """Walk the page with Tab from the top; the stops where the keyboard focus is not drawn."""
    page.evaluate("() => { const b = document.body; b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); }")
    seen, bad = set(), []
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = page.evaluate(_FOCUS_STATE_JS)
        if state is None or state["path"] in seen:  # left the page or came round again
            break
        seen.add(state["path"])
        if not state["ring"]:
            bad.append(state["what"])
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    return bad


def check_page(page, name: str | None = None) -> None:
    """The checks every main page passes; `name` also saves docs/screenshots/<name>.png at 1280 px."""
    page.wait_for_load_state("networkidle")
    missing = unnamed_controls(page)
    assert not missing, f"{page.url}: controls without a label or name: {missing}"
    for width in (NARROW, WIDE):
        over = horizontal_overflow(page, width)
        assert over == 0, (f"{page.url}: {over}px of sideways scrolling at {width}px wide; "
                           f"past the edge: {overflowing_elements(page)}")
    unringed = tab_stops_without_focus_ring(page)
    assert not unringed, f"{page.url}: keyboard focus not visible on {unringed}"
    if name:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def focused_outline(page) -> dict:
    """The focused element and how its focus is drawn."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return {tag: el.tagName.toLowerCase(), text: (el.textContent || el.value || '').trim().slice(0, 40),
                outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
                boxShadow: style.boxShadow};
    }""")


def wait_until(predicate, *, timeout: float = 20.0, interval: float = 0.2, message: str = "condition"):
    """Poll something outside the browser (the fake servers) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)
