from datetime import timedelta

import pytest
from django.utils import timezone

from rediska.jobs import TransientJobError, backoff_seconds, enqueue, ledger_task
from rediska.models import Job

CALLS: list = []


@ledger_task("test.echo", queue="test")
def echo(job, value):
    CALLS.append(value)
    job.set_progress(done=1, total=1)
    return {"value": value}


@ledger_task("test.flaky", queue="test", max_attempts=3)
def flaky(job, failures_before_success):
    if job.attempts <= failures_before_success:
        raise TransientJobError("upstream hiccup")
    return "ok"


@ledger_task("test.broken", queue="test")
def broken(job):
    raise ValueError("bad data in row 7")


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


pytestmark = pytest.mark.django_db


def test_a_direct_call_runs_through_a_ledger_row():
    assert echo(5) == {"value": 5}
    job = Job.objects.get(job_type="test.echo")
    assert job.status == Job.Status.DONE
    assert job.attempts == 1
    assert job.result_json == {"value": 5}
    assert job.progress_json == {"done": 1, "total": 1}
    assert job.percent == 100
    assert job.finished_at is not None


def test_enqueue_sends_the_task_only_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("rediska.jobs.current_app.send_task", lambda name, **kw: sent.append((name, kw)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = enqueue("test.echo", 7)
        assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [("test.echo", {"args": [7], "kwargs": {"job_id": job.pk}, "countdown": None})]
    assert job.status == Job.Status.QUEUED
    assert job.queue_name == "test"


def test_enqueue_with_a_done_dedupe_key_skips_the_work(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = enqueue("test.echo", 1, dedupe_key="echo:1")
        echo.apply(args=[1], kwargs={"job_id": first.pk})
        second = enqueue("test.echo", 1, dedupe_key="echo:1")
    assert second.pk == first.pk
    assert len(callbacks) == 1  # the second enqueue sent nothing
    assert Job.objects.filter(dedupe_key="echo:1").count() == 1
    # A redelivered message for finished work does nothing either.
    assert echo.apply(args=[1], kwargs={"job_id": first.pk}).get() is None
    assert CALLS == [1]


def test_enqueue_with_a_pending_dedupe_key_returns_the_pending_job():
    first = enqueue("test.echo", 1, dedupe_key="echo:pending")
    assert enqueue("test.echo", 1, dedupe_key="echo:pending").pk == first.pk
    assert Job.objects.count() == 1


def test_a_failed_job_is_requeued_by_the_same_dedupe_key():
    job = enqueue("test.broken", dedupe_key="broken:1")
    with pytest.raises(ValueError):
        broken.apply(kwargs={"job_id": job.pk}, throw=True)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    again = enqueue("test.broken", dedupe_key="broken:1")
    assert again.pk == job.pk and again.status == Job.Status.QUEUED and again.attempts == 0


def test_transient_errors_retry_with_backoff_then_succeed(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("rediska.jobs.current_app.send_task", lambda name, **kw: sent.append(kw))
    job = enqueue("test.flaky", 2)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(TransientJobError):
            flaky.apply(args=[2], kwargs={"job_id": job.pk}, throw=True)
    job.refresh_from_db()
    assert job.status == Job.Status.RETRYING
    assert job.attempts == 1
    assert "upstream hiccup" in job.last_error
    assert before + timedelta(seconds=4) <= job.next_run_at <= before + timedelta(seconds=11)
    assert sent[-1]["kwargs"] == {"job_id": job.pk} and 5 <= sent[-1]["countdown"] <= 10

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(TransientJobError):
            flaky.apply(args=[2], kwargs={"job_id": job.pk}, throw=True)
    assert flaky.apply(args=[2], kwargs={"job_id": job.pk}, throw=True).get() == "ok"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == (Job.Status.DONE, 3, None)


def test_transient_errors_fail_the_job_after_max_attempts():
    job = enqueue("test.flaky", 99)
    for _ in range(3):
        with pytest.raises(TransientJobError):
            flaky.apply(args=[99], kwargs={"job_id": job.pk}, throw=True)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.attempts == job.max_attempts == 3
    assert job.next_run_at is None


def test_other_errors_fail_at_once_with_the_reason():
    with pytest.raises(ValueError):
        broken()
    job = Job.objects.get(job_type="test.broken")
    assert job.status == Job.Status.FAILED
    assert job.attempts == 1
    assert job.last_error == "ValueError: bad data in row 7"


def test_a_redelivered_running_job_runs_again():
    # A worker killed mid-task leaves the row RUNNING; acks_late redelivers it.
    job = enqueue("test.echo", 3)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=1)
    assert echo.apply(args=[3], kwargs={"job_id": job.pk}).get() == {"value": 3}
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.DONE, 2)


@pytest.mark.parametrize("attempt,low,high", [(1, 5, 10), (2, 10, 20), (5, 80, 160), (30, 1800, 3600)])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt, low, high):
    delays = {backoff_seconds(attempt) for _ in range(50)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 1


def test_backoff_honours_a_longer_retry_after():
    assert backoff_seconds(1, retry_after=120) == 120
