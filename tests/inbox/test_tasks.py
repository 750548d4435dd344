"""The inbox's Celery tasks (spec §7 names) run through the job ledger."""

from datetime import timedelta

import pytest
from django.utils import timezone

from identities.services import session_for
from inbox import tasks
from inbox.errors import SendError
from inbox.models import Conversation, Message, SyncCursor
from inbox.services.ingest import walk_folder
from rediska.jobs import TransientJobError
from rediska.models import Job
from rediska.providers.errors import AuthError, RateLimitedError
from tests.factories import IdentityFactory


class WorkerKilled(BaseException):
    pass


def test_the_beat_tick_enqueues_one_sync_per_active_identity(fake_reddit, alice, connect):
    bob = connect("bob")
    IdentityFactory(provider=alice.provider, is_active=False)
    IdentityFactory(provider=alice.provider, needs_reconnect_at="2026-01-01T00:00:00Z")

    result = tasks.sync_delta()

    jobs = Job.objects.filter(job_type="ingest.sync_delta", status="queued")
    assert sorted(j.payload_json["args"] for j in jobs) == [[alice.pk], [bob.pk]]
    assert sorted(result["enqueued"]) == sorted(j.pk for j in jobs)


def test_beat_runs_the_sync_fan_out_every_two_minutes_by_default():
    from django.conf import settings

    from rediska.celery import app

    app.finalize()
    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == "ingest.sync_delta"]
    assert [e["schedule"] for e in entries] == [float(settings.SYNC_INTERVAL_SECONDS)]
    assert not entries[0].get("args")  # no id: the tick fans out over the active identities
    assert settings.SYNC_INTERVAL_SECONDS == 120  # the tests run with the default


def test_a_second_tick_adds_nothing_while_the_syncs_are_under_way(fake_reddit, alice):
    tasks.sync_delta()
    tasks.sync_delta()
    assert Job.objects.filter(job_type="ingest.sync_delta", status="queued").count() == 1


def test_a_sync_job_archives_the_identity_and_reports_progress(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi", "hello"])
    result = tasks.sync_delta(alice.pk)
    job = Job.objects.get(job_type="ingest.sync_delta")
    assert job.status == "done"
    assert result["new"] == 2 and job.result_json["new"] == 2
    assert job.progress_json["pages"] == 2 and job.progress_json["messages"] >= 2
    assert Message.objects.count() == 2


def test_a_revoked_token_fails_the_sync_in_plain_words(fake_reddit, alice):
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(AuthError):
        tasks.sync_delta(alice.pk)
    job = Job.objects.get(job_type="ingest.sync_delta")
    assert job.status == "failed" and "reconnect" in job.last_error


def test_a_rate_limited_sync_is_retried_later(fake_reddit, alice):
    fake_reddit.inject(r"^/message/", status=429, headers={"Retry-After": "5"})
    with pytest.raises(RateLimitedError):
        tasks.sync_delta(alice.pk)
    job = Job.objects.get(job_type="ingest.sync_delta")
    assert job.status == "retrying" and job.next_run_at is not None


def test_backfill_conversations_starts_one_backfill_per_folder(fake_reddit, alice):
    result = tasks.backfill_conversations(alice.pk)
    jobs = Job.objects.filter(job_type="ingest.backfill_messages").order_by("id")
    assert [j.payload_json["args"] for j in jobs] == [[alice.pk, "inbox"], [alice.pk, "sent"]]
    assert result["jobs"] == [j.pk for j in jobs]
    assert all(j.dedupe_key.startswith(f"inbox:{alice.pk}:backfill-") for j in jobs)


def test_backfill_messages_walks_its_folder_to_the_end(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=120, per_thread=2, counterparts=4)
    result = tasks.backfill_messages(alice.pk, "inbox")
    assert result["complete"] and result["pages"] == 2
    assert Message.objects.count() == 240
    assert SyncCursor.objects.get(identity=alice, folder="inbox").backfilled_at is not None


def test_a_redelivered_backfill_resumes_where_the_dead_worker_stopped(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=50, per_thread=3, counterparts=5)
    # Its worker's last heartbeat was three minutes ago (the timeout is two).
    job = Job.objects.create(queue_name="ingest", job_type="ingest.backfill_messages", status="running", attempts=1,
                             payload_json={"args": [alice.pk, "inbox"], "kwargs": {}}, run_id="dead",
                             heartbeat_at=timezone.now() - timedelta(minutes=3))

    def die(progress):
        if progress.pages == 1:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):  # the worker dies holding the folder's lease
        walk_folder(alice, session_for(alice), "inbox", full=True, owner=f"job:{job.pk}", page_size=20, on_page=die)
    assert Conversation.objects.count() == 20
    fake_reddit.requests.clear()

    tasks.backfill_messages(alice.pk, "inbox", job_id=job.pk)  # as Celery redelivers it: same job

    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 2 and job.resumed_count == 1
    assert Message.objects.count() == 150 == Message.objects.values("external_message_id").distinct().count()
    first = [r for r in fake_reddit.requests if r.path.startswith("/message/")][0]
    assert first.query.get("after")  # it did not start again from the top


def test_a_backfill_waits_while_another_walk_holds_the_folder(fake_reddit, alice):
    from datetime import UTC, datetime, timedelta

    SyncCursor.objects.create(identity=alice, folder="sent", lease_owner="job:999",
                              lease_until=datetime.now(UTC) + timedelta(minutes=5))
    with pytest.raises(TransientJobError):
        tasks.backfill_messages(alice.pk, "sent")
    job = Job.objects.get(job_type="ingest.backfill_messages")
    assert job.status == "retrying" and "under way" in job.last_error


def test_the_send_task_sends_once_through_the_ledger(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    tasks.sync_delta(alice.pk)
    conversation = Conversation.objects.get()
    result = tasks.send_manual(alice.pk, "hello bob", "key-1", conversation_id=conversation.pk)
    again = tasks.send_manual(alice.pk, "hello bob", "key-1", conversation_id=conversation.pk)
    assert result == again and Message.objects.get(pk=result["message_id"]).body_text == "hello bob"
    assert len(fake_reddit.sent) == 1
    assert Job.objects.filter(job_type="message.send_manual", status="done").count() == 2


def test_a_failed_send_is_never_retried_by_the_ledger(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    tasks.sync_delta(alice.pk)
    conversation = Conversation.objects.get()
    fake_reddit.inject(r"^/api/comment", status=500)
    with pytest.raises(SendError):
        tasks.send_manual(alice.pk, "hello bob", "key-2", conversation_id=conversation.pk)
    job = Job.objects.get(job_type="message.send_manual")
    assert job.status == "failed" and job.next_run_at is None
