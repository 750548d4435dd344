"""`make run` (scripts/run.sh) stops web, worker and beat within 10 s, however it is stopped.

Each way is tried with the worker busy in a long provider call (a backfill page
that takes a minute), which is when Celery's warm shutdown used to hang.  Every
start after a stop must come up cleanly: the next case's start is that proof.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest

from .appstack import AppStack, new_data_dir, wait_for

pytestmark = pytest.mark.chaos

STOP_LIMIT = 10.0

WAYS = {
    # The terminal sends Ctrl-C's SIGINT to the foreground process group.
    "ctrl-c": lambda run: os.killpg(run.pid, signal.SIGINT),
    # `kill -- -PGID`, a closed terminal, a service manager.
    "sigterm-to-the-group": lambda run: os.killpg(run.pid, signal.SIGTERM),
    # `kill PID` of run.sh alone: its children must not be left behind.
    "sigterm-to-the-parent-alone": lambda run: os.kill(run.pid, signal.SIGTERM),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def installation(_fake_reddit_server):
    fake = _fake_reddit_server
    fake.reset()
    stack = AppStack(new_data_dir("run-sh"), fake, redis_db=int(os.environ.get("STOP_TEST_REDIS_DB", "1")),
                     heartbeat_timeout=120, WEB_WORKERS="2",
                     WORKER_CONCURRENCY="2")
    try:
        stack.migrate()
        yield stack
    finally:
        stack.close()
        fake.reset()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("way", WAYS)
def test_make_run_stops_web_worker_and_beat_within_10_seconds(installation, way):
    stack = installation
    username = f"stop_{list(WAYS).index(way)}"
    identity_id = stack.connect_identity(username)
    stack.fake.bulk_threads(username, threads=30, per_thread=2, counterparts=3)
    port = _free_port()
    stack.env.update(HOST="127.0.0.1", PORT=str(port))
    log = f"run-{way}.log"
    run = stack.start("bash", "scripts/run.sh", log=log)
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/login/"), timeout=90, what="the web server")
    wait_for(lambda: " ready." in stack.log(log) and "beat: Starting" in stack.log(log), timeout=90,
             what="the worker and beat")
    stack.fake.slow(r"^/message/", 60, count=2)  # both folder walks hang in a provider call
    stack.shell("from identities.models import Identity\nfrom inbox.services.syncing import request_backfill\n"
                f"request_backfill(Identity.objects.get(pk={identity_id}))")
    wait_for(lambda: stack.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'running' "
                                  "AND job_type = 'ingest.backfill_messages'") >= 1,
             timeout=60, what="a backfill running")
    before = stack.pids()
    assert len(before) >= 6, before  # run.sh, gunicorn + 2 workers, celery + 2 pool processes

    started = time.monotonic()
    WAYS[way](run)
    wait_for(lambda: not stack.pids(), timeout=STOP_LIMIT, interval=0.1, what=f"every process gone ({way})")
    stopped = time.monotonic() - started
    print(f"\n{way}: {len(before)} processes gone in {stopped:.1f}s")
    assert run.wait(timeout=1) in (0, 130, 143)
    assert not list(stack.data_dir.glob("*.pid")) and not list(stack.data_dir.glob("*.lock"))
    assert "Traceback" not in stack.log(log)
    assert not _answers(f"http://127.0.0.1:{port}/login/")
