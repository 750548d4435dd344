from datetime import timedelta

import pytest
from django.utils import timezone

from django.db import OperationalError

from rediska.jobs import TransientJobError, backoff_seconds, enqueue, is_transient, ledger_task
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


@ledger_task("test.contended", queue="test", max_attempts=3)
def contended(job, error):
    raise OperationalError(*error)


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


@pytest.mark.parametrize("error", [
    (1213, "Deadlock found when trying to get lock; try restarting transaction"),  # MySQL/MariaDB
    (1205, "Lock wait timeout exceeded; try restarting transaction"),
    ("database is locked",),  # SQLite
])
def test_lock_contention_in_the_database_is_retried_not_failed(error, monkeypatch):
    # Two jobs writing the same rows at once (the inbox and sent walks of one backfill) can deadlock.
    monkeypatch.setattr("rediska.jobs.current_app.send_task", lambda name, **kw: None)
    job = enqueue("test.contended", list(error))
    with pytest.raises(OperationalError):
        contended.apply(args=[list(error)], kwargs={"job_id": job.pk}, throw=True)
    job.refresh_from_db()
    assert job.status == Job.Status.RETRYING and job.next_run_at is not None


def test_other_database_errors_are_not_transient():
    assert not is_transient(OperationalError(1054, "Unknown column 'x' in 'field list'"))
    assert not is_transient(OperationalError("no such table: messages"))


def test_other_errors_fail_at_once_with_the_reason():
    with pytest.raises(ValueError):
        broken()
    job = Job.objects.get(job_type="test.broken")
    assert job.status == Job.Status.FAILED
    assert job.attempts == 1
    assert job.last_error == "ValueError: bad data in row 7"


@pytest.mark.parametrize("attempt,low,high", [(1, 5, 10), (2, 10, 20), (5, 80, 160), (30, 1800, 3600)])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt, low, high):
    delays = {backoff_seconds(attempt) for _ in range(50)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 1


def test_backoff_honours_a_longer_retry_after():
    assert backoff_seconds(1, retry_after=120) == 120


# --- liveness: heartbeats, lost workers, resumes (issue 16) ----------------------------------
import logging  # noqa: E402
from datetime import datetime  # noqa: E402
from datetime import timezone as dt_timezone  # noqa: E402

from django.db import connection  # noqa: E402
from django.db.models.functions import Now  # noqa: E402

from rediska import jobs as ledger  # noqa: E402
from rediska.models import JobLost  # noqa: E402

NESTED: list = []


@ledger_task("test.resumer", queue="test")
def resumer(job):
    # A second worker gets a delivery of this very job while this run holds it.
    NESTED.append(resumer.apply(kwargs={"job_id": job.pk}).get())
    return "first"


@ledger_task("test.superseded", queue="test")
def superseded(job):
    Job.objects.filter(pk=job.pk).update(run_id="someone-else")  # the reaper and another worker took over
    job.set_progress(pages=1)
    CALLS.append("kept going")  # never reached
    return "stale"


@ledger_task("test.sleeper", queue="test")
def sleeper(job, seconds):
    import time

    first = Job.objects.get(pk=job.pk).heartbeat_at
    time.sleep(seconds)  # silent: no progress reports
    last = Job.objects.get(pk=job.pk).heartbeat_at
    return {"beats_apart": (last - first).total_seconds(), "reaped": ledger.reap_stale_jobs()["requeued"]}


def _running(job_type="test.echo", *, silent_for=None, attempts=1, max_attempts=10, **fields):
    job = Job.objects.create(queue_name="test", job_type=job_type, payload_json={"args": [3], "kwargs": {}},
                             status=Job.Status.RUNNING, attempts=attempts, max_attempts=max_attempts,
                             run_id="deadworker", heartbeat_at=Now(), **fields)
    if silent_for is not None:
        Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - silent_for)
    job.refresh_from_db()
    return job


@pytest.fixture
def sent(monkeypatch):
    messages = []
    monkeypatch.setattr("rediska.jobs.current_app.send_task", lambda name, **kw: messages.append((name, kw)))
    return messages


def test_a_redelivered_job_of_a_lost_worker_resumes_and_counts_the_resume():
    job = _running(silent_for=timedelta(minutes=5))
    assert echo.apply(args=[3], kwargs={"job_id": job.pk}).get() == {"value": 3}
    job.refresh_from_db()
    assert (job.status, job.attempts, job.resumed_count) == (Job.Status.DONE, 2, 1)
    assert job.run_id is None and job.heartbeat_at is None


def test_a_redelivery_of_a_job_whose_worker_still_beats_is_dropped(caplog):
    job = _running()
    with caplog.at_level(logging.INFO, logger="rediska.jobs"):
        assert echo.apply(args=[3], kwargs={"job_id": job.pk}).get() is None
    assert CALLS == []
    job.refresh_from_db()
    assert (job.status, job.attempts, job.run_id) == (Job.Status.RUNNING, 1, "deadworker")
    assert f"job {job.pk} (test.echo) is running on a live worker: this delivery is dropped" in caplog.text


def test_of_two_workers_resuming_the_same_job_exactly_one_runs_it():
    NESTED.clear()
    job = _running("test.resumer", silent_for=timedelta(minutes=5))
    assert resumer.apply(kwargs={"job_id": job.pk}).get() == "first"
    assert NESTED == [None]  # the second delivery found the job held by a live run
    job.refresh_from_db()
    assert (job.status, job.attempts, job.resumed_count, job.result_json) == (Job.Status.DONE, 2, 1, "first")


def test_a_run_that_lost_its_job_stops_at_its_next_progress_report_and_writes_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="rediska.jobs"):
        assert superseded() is None
    job = Job.objects.get(job_type="test.superseded")
    assert CALLS == []
    assert (job.status, job.run_id, job.progress_json, job.result_json) == (
        Job.Status.RUNNING, "someone-else", None, None)
    assert "was deleted or resumed by another worker: this run stopped" in caplog.text


def test_set_progress_of_a_deleted_job_raises_job_lost():
    job = _running()
    Job.objects.filter(pk=job.pk).delete()
    with pytest.raises(JobLost, match=f"job {job.pk} was deleted"):
        job.set_progress(done=1)


def test_a_heartbeat_for_a_job_that_no_longer_exists_stops_with_a_clear_line(caplog):
    job = _running()
    Job.objects.filter(pk=job.pk).delete()
    with caplog.at_level(logging.WARNING, logger="rediska.jobs"):
        assert ledger.Heartbeat(job).beat() is False
    assert f"job {job.pk} (test.echo) no longer exists: heartbeat stopped" in caplog.text
    assert not Job.objects.exists()  # nothing recreated


def test_a_heartbeat_of_a_superseded_run_does_not_touch_the_new_runs_row(caplog):
    job = _running(silent_for=timedelta(minutes=5))
    Job.objects.filter(pk=job.pk).update(run_id="newrun")
    with caplog.at_level(logging.WARNING, logger="rediska.jobs"):
        assert ledger.Heartbeat(job).beat() is False
    assert Job.objects.get(pk=job.pk).heartbeat_at < timezone.now() - timedelta(minutes=4)
    assert "was resumed by another worker: heartbeat stopped" in caplog.text


def test_a_heartbeat_records_the_databases_time():
    job = _running(silent_for=timedelta(minutes=5))
    assert ledger.Heartbeat(job).beat() is True
    job.refresh_from_db()
    assert abs((job.heartbeat_at - timezone.now()).total_seconds()) < 5


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_keeps_a_long_silent_task_alive(settings):
    settings.JOBS_HEARTBEAT_TIMEOUT = 0.4  # a beat every 0.1 s
    result = sleeper(1.0)
    assert result["beats_apart"] >= 0.6  # the timer thread beat while the task was silent
    assert result["reaped"] == []  # so the reaper, running meanwhile, left it alone
    assert Job.objects.get(job_type="test.sleeper").status == Job.Status.DONE


def test_the_reaper_requeues_a_silent_running_job_once_and_sends_it(sent, caplog):
    job = _running(silent_for=timedelta(minutes=3))
    with caplog.at_level(logging.WARNING, logger="rediska.jobs"):
        first = ledger.reap_stale_jobs()
    second = ledger.reap_stale_jobs()  # a second reaper (or the next tick) finds nothing to do
    assert first["requeued"] == [job.pk] and second["requeued"] == []
    assert sent == [("test.echo", {"args": [3], "kwargs": {"job_id": job.pk}, "countdown": None})]
    job.refresh_from_db()
    assert (job.status, job.resumed_count, job.last_error, job.run_id) == (
        Job.Status.QUEUED, 1, "worker lost, resumed", None)
    assert f"job {job.pk} (test.echo): no heartbeat for 120s, worker lost: resumed" in caplog.text
    # The resent message resumes it; the retry is counted.
    echo.apply(args=[3], kwargs={"job_id": job.pk})
    job.refresh_from_db()
    assert (job.status, job.attempts, job.resumed_count) == (Job.Status.DONE, 2, 1)


def test_the_reaper_leaves_jobs_that_beat_and_jobs_silent_for_less_than_the_timeout(sent):
    _running()
    _running(silent_for=timedelta(seconds=60))
    assert ledger.reap_stale_jobs() == {"requeued": [], "failed": [], "resent": [], "send_errors": []}
    assert sent == []


def test_the_reaper_judges_by_the_databases_clock_so_a_clock_jump_reaps_nothing(sent, monkeypatch):
    job = _running()
    for jump in (timedelta(hours=3), -timedelta(hours=3)):
        monkeypatch.setattr("django.utils.timezone.now", lambda jump=jump: datetime.now(dt_timezone.utc) + jump)
        assert abs(timezone.now() - Job.objects.get(pk=job.pk).heartbeat_at - jump) < timedelta(minutes=1)
        assert ledger.reap_stale_jobs()["requeued"] == []
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and sent == []


def test_the_reaper_fails_a_lost_job_that_may_run_only_once(sent):
    job = _running("test.broken", silent_for=timedelta(minutes=3), attempts=1, max_attempts=1)
    assert ledger.reap_stale_jobs()["failed"] == [job.pk]
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.last_error == "The worker running this job was lost; it is not run again (no attempts left)."
    assert job.run_id is None
    assert sent == []


def test_a_broker_down_during_reaping_keeps_the_job_queued_and_resends_it_later(monkeypatch, caplog):
    from kombu.exceptions import OperationalError

    def down(name, **kw):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("rediska.jobs.current_app.send_task", down)
    job = _running(silent_for=timedelta(minutes=3))
    with caplog.at_level(logging.ERROR, logger="rediska.jobs"):
        result = ledger.reap_stale_jobs()
    assert result["requeued"] == [job.pk] and result["send_errors"] == [job.pk]
    assert f"job {job.pk} (test.echo) could not be sent (broker down?)" in caplog.text
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.resumed_count == 1
    # Broker back, five timeouts later: sent again, once.
    messages = []
    monkeypatch.setattr("rediska.jobs.current_app.send_task", lambda name, **kw: messages.append(kw))
    assert ledger.reap_stale_jobs()["resent"] == []
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    assert ledger.reap_stale_jobs()["resent"] == [job.pk]
    assert ledger.reap_stale_jobs()["resent"] == []
    assert messages == [{"args": [3], "kwargs": {"job_id": job.pk}, "countdown": None}]


def test_a_waiting_retry_is_not_resent_before_it_is_due(sent):
    job = enqueue("test.echo", 1, countdown=3600)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    assert ledger.reap_stale_jobs()["resent"] == []


def test_the_jobs_page_says_a_job_was_resumed_after_its_worker_was_lost(client, admin_user):
    job = _running(silent_for=timedelta(minutes=3))
    Job.objects.filter(pk=job.pk).update(resumed_count=2)
    client.force_login(admin_user)
    assert "worker lost, resumed (2 times)" in client.get("/jobs/").content.decode()
    assert "worker lost, resumed (2 times)" in client.get(f"/jobs/{job.pk}/").content.decode()


def test_beat_runs_the_reaper_every_quarter_of_the_heartbeat_timeout(settings):
    from rediska.celery import app

    app.finalize()
    app.loader.import_default_modules()
    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == "maintenance.reap_stale_jobs")
    assert entry["schedule"] == settings.JOBS_HEARTBEAT_TIMEOUT / 4 == 30
    assert entry["options"]["expires"] == 30  # ticks queued behind long jobs do not pile up
    assert "maintenance.reap_stale_jobs" in app.tasks


def test_the_reaper_task_reports_what_it_did(sent):
    from rediska.tasks import reap_stale_jobs

    job = _running(silent_for=timedelta(minutes=3))
    assert reap_stale_jobs() == {"requeued": [job.pk], "failed": [], "resent": [], "send_errors": []}


RUNS: list = []


@ledger_task("test.counted", queue="test")
def counted(job):
    import time

    RUNS.append(job.run_id)
    time.sleep(0.5)  # still running when the other delivery is claimed
    return "ran"


@pytest.mark.skipif(connection.vendor != "mysql", reason="the tests' in-memory SQLite fails a second writer at once "
                    "instead of waiting like the real database file (the sequential test above covers SQLite)")
@pytest.mark.django_db(transaction=True)
def test_two_workers_resuming_the_same_lost_job_at_the_same_moment_run_it_once():
    import threading

    RUNS.clear()
    job = _running("test.counted", silent_for=timedelta(minutes=5))
    barrier, results = threading.Barrier(2), []

    def worker():
        barrier.wait()
        try:
            results.append(counted.apply(kwargs={"job_id": job.pk}).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=str) == [None, "ran"]
    assert len(RUNS) == 1
    job.refresh_from_db()
    assert (job.status, job.attempts, job.resumed_count) == (Job.Status.DONE, 2, 1)
