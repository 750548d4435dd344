"""Crash recovery with the real Celery worker: SIGKILL it halfway, start another, and nothing is lost or doubled.

Run on SQLite with the filesystem broker (the embedded default) and, in the
MariaDB run, with Redis as the broker.  The heartbeat timeout is 15 s here (2 min
by default) so the runs stay short; the figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import time

import pytest

from .appstack import AppStack, new_data_dir, wait_for

pytestmark = pytest.mark.chaos

THREADS, PER_THREAD = 4000, 5
TOTAL = THREADS * PER_THREAD  # 20,000 messages
RECOVERY = 180  # seconds from the new worker's start to "everything done"


@pytest.fixture(scope="module")
def chaos(_fake_reddit_server):
    fake = _fake_reddit_server
    fake.reset()
    stack = AppStack(new_data_dir("chaos"), fake, redis_db=int(os.environ.get("CHAOS_REDIS_DB", "2")))
    try:
        stack.migrate()
        identity_id = stack.connect_identity("chaos")
        fake.bulk_threads("chaos", threads=THREADS, per_thread=PER_THREAD, counterparts=200)
        yield stack, identity_id
    finally:
        stack.close()
        fake.reset()


def _messages(stack) -> int:
    return stack.scalar("SELECT COUNT(*) FROM messages")


def _failures(stack) -> str:
    """The failed jobs and why, for a timed-out wait's message."""
    failed = stack.query("SELECT id, job_type, last_error FROM jobs WHERE status = 'failed'")
    return f"; failed jobs: {failed}" if failed else ""


def _all_done(stack) -> bool:
    statuses = stack.job_statuses()
    return bool(statuses) and set(statuses) == {"done"}


def test_a_backfill_killed_halfway_ends_with_every_message_stored_once(chaos):
    stack, identity_id = chaos
    worker = stack.start_worker("backfill-worker-1.log")
    started = time.monotonic()
    stack.shell("from identities.models import Identity\n"
                "from inbox.services.syncing import request_backfill\n"
                f"print(request_backfill(Identity.objects.get(pk={identity_id})).pk)")
    at_kill = wait_for(lambda: (n := _messages(stack)) >= TOTAL // 2 and n, timeout=600, interval=0.1,
                       what="half the messages")
    stack.sigkill(worker)
    killed = time.monotonic()
    assert at_kill < TOTAL, "the backfill ended before the kill: nothing was tested"
    assert "running" in stack.job_statuses()  # the kill left jobs behind "running"

    second = stack.start_worker("backfill-worker-2.log")
    wait_for(lambda: _messages(stack) == TOTAL and _all_done(stack) or second.poll() is not None,
             timeout=RECOVERY, interval=0.5, evidence=lambda: stack.log_tail("backfill-worker-2.log"),
             what=lambda: f"{TOTAL} messages and every job done (now {_messages(stack)}, {stack.job_statuses()})"
                          f"{_failures(stack)}")
    assert second.poll() is None, stack.log_tail("backfill-worker-2.log")
    recovered = time.monotonic() - killed
    print(f"\nbackfill: {at_kill} messages at the SIGKILL after {killed - started:.1f}s; "
          f"{TOTAL} and every job done {recovered:.1f}s after the new worker started")
    assert stack.scalar("SELECT COUNT(DISTINCT external_message_id) FROM messages") == TOTAL
    resumed = stack.query("SELECT job_type, resumed_count FROM jobs WHERE resumed_count > 0")
    assert any(job_type == "ingest.backfill_messages" for job_type, _ in resumed), resumed
    assert stack.scalar("SELECT COUNT(*) FROM jobs WHERE resumed_count > 1") == 0  # each resumed once
    assert "worker lost: resumed" in stack.log("backfill-worker-2.log")


def test_an_index_rebuild_killed_halfway_ends_with_every_message_indexed(chaos):
    stack, _ = chaos
    for process in stack.processes:
        if process.poll() is None:
            stack.sigkill(process)
    if _messages(stack) != TOTAL:
        pytest.skip("needs the archive of the backfill test")
    for path in stack.data_dir.glob("search-index.sqlite3*"):
        path.unlink()  # start from an empty index
    assert stack.indexed("message") == 0
    stack.query("DELETE FROM jobs")
    worker = stack.start_worker("index-worker-1.log")
    started = time.monotonic()
    batches = int(stack.shell(
        "import search\nfrom inbox.models import Message\nfrom rediska.models import Job\n"
        "search.index_later('message', *Message.objects.values_list('pk', flat=True))\n"
        "print(Job.objects.filter(job_type='index.upsert_content').count())").splitlines()[-1])
    assert batches == TOTAL // 500
    at_kill = wait_for(lambda: (n := stack.indexed("message")) >= TOTAL // 2 and n, timeout=600, interval=0.1,
                       what="half the documents")
    stack.sigkill(worker)
    killed = time.monotonic()
    assert at_kill < TOTAL, "the rebuild ended before the kill: nothing was tested"

    second = stack.start_worker("index-worker-2.log")
    wait_for(lambda: stack.indexed("message") == TOTAL and _all_done(stack) or second.poll() is not None,
             timeout=RECOVERY, interval=0.5, evidence=lambda: stack.log_tail("index-worker-2.log"),
             what=lambda: f"{TOTAL} indexed messages and every job done (now {stack.indexed('message')}, "
                          f"{stack.job_statuses()}){_failures(stack)}")
    assert second.poll() is None, stack.log_tail("index-worker-2.log")
    recovered = time.monotonic() - killed
    print(f"\nindex rebuild: {at_kill} documents at the SIGKILL after {killed - started:.1f}s; "
          f"{TOTAL} and every job done {recovered:.1f}s after the new worker started")


IMPORTED = 60_000  # six batches of the importer


def test_an_import_killed_halfway_ends_with_every_message_stored_once(chaos, tmp_path):
    from tests.fakes.reddit_export import message, write_export

    stack, identity_id = chaos
    for process in stack.processes:
        if process.poll() is None:
            stack.sigkill(process)
    stack.query("DELETE FROM jobs")
    before = _messages(stack)
    # A data export of the identity's own history: ids of their own, so every row is new here.
    export = write_export(tmp_path / "export.zip", messages=(
        message(f"imp{i:x}", "chaos" if i % 2 else f"pen{i % 300}", f"pen{i % 300}" if i % 2 else "chaos",
                f"imported line {i}", thread=f"th{i // 4:x}", minutes=i)
        for i in range(IMPORTED)))
    worker = stack.start_worker("import-worker-1.log")
    started = time.monotonic()
    stack.shell("from identities.models import Identity\nfrom inbox.services import export_import\n"
                "from rediska.jobs import enqueue\nfrom pathlib import Path\n"
                f"identity = Identity.objects.get(pk={identity_id})\n"
                f"record = export_import.local_import(identity, Path({str(export)!r}))\n"
                "enqueue(export_import.TASK, identity.pk, record.token, "
                "dedupe_key=export_import.job_key(identity.pk, record.token))")
    at_kill = wait_for(lambda: (n := _messages(stack) - before) >= IMPORTED // 3 and n, timeout=600, interval=0.1,
                       what="a third of the imported messages")
    stack.sigkill(worker)
    killed = time.monotonic()
    assert at_kill < IMPORTED, "the import ended before the kill: nothing was tested"
    assert "running" in stack.job_statuses()

    second = stack.start_worker("import-worker-2.log")
    wait_for(lambda: _messages(stack) - before == IMPORTED and _all_done(stack) or second.poll() is not None,
             timeout=RECOVERY, interval=0.5, evidence=lambda: stack.log_tail("import-worker-2.log"),
             what=lambda: f"{IMPORTED} imported messages and every job done (now {_messages(stack) - before}, "
                          f"{stack.job_statuses()}){_failures(stack)}")
    assert second.poll() is None, stack.log_tail("import-worker-2.log")
    print(f"\nimport: {at_kill} messages at the SIGKILL after {killed - started:.1f}s; {IMPORTED} and every job "
          f"done {time.monotonic() - killed:.1f}s after the new worker started")
    assert stack.scalar("SELECT COUNT(*) FROM messages WHERE external_message_id LIKE '%imp%'") == IMPORTED
    assert stack.scalar("SELECT resumed_count FROM jobs WHERE job_type = 'ingest.import_export'") == 1
