"""The job ledger: every Celery task runs through a `jobs` row.

The row records queued/running/retrying/failed/done, attempts, the next run
and the last error; a `dedupe_key` that is already done is never run again.
Transient errors (anything with a truthy `transient` attribute, and database
lock contention: deadlocks, lock wait timeouts) are retried with exponential
backoff and jitter until `max_attempts`.

A running job beats (`heartbeat_at`, the database's clock: a jump of a worker's
or the beat's clock changes nothing) from a timer thread and on every progress
report.  `reap_stale_jobs` (beat) puts a job whose worker fell silent for
JOBS_HEARTBEAT_TIMEOUT back in the queue; the task resumes from its own cursor.
Each claim of a row gets a new `run_id`, and every write of a run is conditional
on it, so of two workers resuming the same job exactly one wins.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import uuid
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from .audit import error_text
from .logging import job_id_var
from .models import Job, JobLost

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600


class TransientJobError(Exception):
    """Raise from a task to have the ledger retry it later."""

    transient = True


# Lock contention is worth another try, not a failed job: InnoDB picks a deadlock victim
# (1213) or gives up waiting (1205) when two jobs write the same rows at once (the inbox
# and sent walks of one backfill upserting the same people); SQLite says "locked".
_DB_CONTENTION_CODES = {1205, 1213}


def is_transient(exc: BaseException) -> bool:
    if getattr(exc, "transient", False):
        return True
    if isinstance(exc, OperationalError) and exc.args:
        return exc.args[0] in _DB_CONTENTION_CODES or "database is locked" in str(exc.args[0])
    return False


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with "equal jitter"; a server's Retry-After wins if longer."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    return max(delay, float(retry_after or 0))


def _max_attempts_for(name: str) -> int:
    task = current_app.tasks.get(name)
    return getattr(task, "ledger_max_attempts", 10)


def _send(job: Job, countdown: float | None = None) -> None:
    payload = job.payload_json
    current_app.send_task(
        job.job_type, args=payload.get("args", []), kwargs={**payload.get("kwargs", {}), "job_id": job.pk},
        countdown=countdown,
    )


def heartbeat_timeout() -> timedelta:
    return timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT)


def _silent(timeout: timedelta) -> Q:
    """Rows with no sign of life (heartbeat, else last update) for `timeout`, by the database's clock."""
    cutoff = Now() - timeout
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)


def enqueue(name: str, *args, dedupe_key: str | None = None, queue: str | None = None,
            countdown: float | None = None, **kwargs) -> Job:
    """Record a job and send it to Celery once the current transaction commits."""
    payload = {"args": list(args), "kwargs": kwargs}
    with transaction.atomic():
        if dedupe_key:
            job = Job.objects.select_for_update().filter(dedupe_key=dedupe_key).first()
            if job is not None:
                if job.status != Job.Status.FAILED:
                    return job  # done: skip; queued/running/retrying: already on its way
                job.status, job.attempts, job.payload_json = Job.Status.QUEUED, 0, payload
                job.last_error = job.finished_at = job.next_run_at = None
                job.save()
                transaction.on_commit(functools.partial(_send, job, countdown))
                return job
        try:
            with transaction.atomic():
                job = Job.objects.create(
                    queue_name=queue or name.split(".", 1)[0],
                    job_type=name,
                    payload_json=payload,
                    max_attempts=_max_attempts_for(name),
                    dedupe_key=dedupe_key,
                    next_run_at=timezone.now() + timedelta(seconds=countdown) if countdown else None,
                )
        except IntegrityError:
            # Lost a race with an identical enqueue: theirs stands.
            return Job.objects.get(dedupe_key=dedupe_key)
        transaction.on_commit(functools.partial(_send, job, countdown))
    return job


def _claim(job_id: int | None, name: str, queue: str, args, kwargs, max_attempts: int) -> Job | None:
    now = timezone.now()
    run_id = uuid.uuid4().hex
    with transaction.atomic():
        if job_id is None:  # called directly (tests, management commands)
            job = Job.objects.create(
                queue_name=queue, job_type=name, payload_json={"args": list(args), "kwargs": kwargs},
                max_attempts=max_attempts, status=Job.Status.RUNNING, attempts=1, started_at=now,
                run_id=run_id, heartbeat_at=Now(),
            )
            return job
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            log.warning("job %s (%s) no longer exists: this delivery is dropped", job_id, name)
            return None
        if job.status in (Job.Status.DONE, Job.Status.FAILED):
            log.info("job %s (%s) is already %s: this delivery is dropped", job_id, name, job.status)
            return None
        if job.status == Job.Status.RUNNING:
            # A redelivery (acks_late, a broker's visibility timeout, a resend):
            # the run that holds the row wins while it still beats.
            if Job.objects.filter(_silent(heartbeat_timeout()), pk=job.pk).exists():
                job.resumed_count += 1
                job.last_error = "worker lost, resumed"
                log.warning("job %s (%s): its worker fell silent, this worker resumes it", job.pk, name)
            else:
                log.info("job %s (%s) is running on a live worker: this delivery is dropped", job.pk, name)
                return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or now
        job.next_run_at = None
        job.run_id = run_id
        job.heartbeat_at = Now()
        job.save(update_fields=["status", "attempts", "started_at", "next_run_at", "run_id", "heartbeat_at",
                                "resumed_count", "last_error", "updated_at"])
        return job


def _json_result(result):
    if result is None or isinstance(result, (dict, list, str, int, float, bool)):
        return result
    return str(result)


def ledger_task(name: str, *, queue: str | None = None, max_attempts: int = 10, **celery_options):
    """Declare a Celery task (spec §7 name) whose runs are recorded in `jobs`.

    The wrapped function receives the `Job` first, then the task's arguments.
    """
    queue_name = queue or name.split(".", 1)[0]

    def decorator(fn):
        @shared_task(name=name, bind=True, acks_late=True, **celery_options)
        @functools.wraps(fn)
        def task(self, *args, job_id: int | None = None, **kwargs):
            job = _claim(job_id, name, queue_name, args, kwargs, max_attempts)
            if job is None:
                return None
            token = job_id_var.set(str(job.pk))
            beat = Heartbeat(job)
            beat.start()
            try:
                result = fn(job, *args, **kwargs)
            except JobLost:
                log.warning("job %s (%s) was deleted or resumed by another worker: this run stopped", job.pk, name)
                return None
            except Exception as exc:
                _record_failure(self, job, exc)
                raise
            finally:
                beat.stop()
                job_id_var.reset(token)
            # Only the run that owns the row may finish it.
            if not Job.objects.filter(pk=job.pk, run_id=job.run_id).update(
                status=Job.Status.DONE, result_json=_json_result(result), last_error=None,
                finished_at=timezone.now(), updated_at=timezone.now(), heartbeat_at=None, run_id=None,
            ):
                log.warning("job %s (%s) finished, but it was deleted or resumed by another worker meanwhile: "
                            "its result is not recorded", job.pk, name)
            return result

        task.ledger_max_attempts = max_attempts
        return task

    return decorator


def _record_failure(task, job: Job, exc: BaseException) -> None:
    mine = Job.objects.filter(pk=job.pk, run_id=job.run_id)
    current = mine.values("attempts", "max_attempts").first()
    if current is None:
        log.warning("job %s (%s) raised %s, but it was deleted or resumed by another worker: not recorded",
                    job.pk, job.job_type, error_text(exc))
        return
    job.attempts, job.max_attempts = current["attempts"], current["max_attempts"]
    now = timezone.now()
    if is_transient(exc) and job.attempts < job.max_attempts:
        delay = backoff_seconds(job.attempts, getattr(exc, "retry_after", None))
        mine.update(
            status=Job.Status.RETRYING, last_error=error_text(exc),
            next_run_at=now + timedelta(seconds=delay), updated_at=now, heartbeat_at=None, run_id=None,
        )
        log.warning("job %s (%s) will retry in %.0fs: %s", job.pk, job.job_type, delay, error_text(exc))
        job.refresh_from_db()
        # Scheduled after commit so the retry sees this row as RETRYING.
        transaction.on_commit(functools.partial(_send, job, delay))
        return
    mine.update(
        status=Job.Status.FAILED, last_error=error_text(exc), finished_at=now, next_run_at=None, updated_at=now,
        heartbeat_at=None, run_id=None,
    )
    log.error("job %s (%s) failed: %s", job.pk, job.job_type, error_text(exc))


class Heartbeat(threading.Thread):
    """Marks a running job alive every quarter of JOBS_HEARTBEAT_TIMEOUT, whatever the task is doing.

    One cheap conditional UPDATE per beat, on the thread's own connection.  A row
    that is gone or owned by another run stops the beat (the task itself stops at
    its next progress report); a database hiccup is logged and the next beat tries again.
    """

    def __init__(self, job: Job):
        super().__init__(name=f"heartbeat-{job.pk}", daemon=True)
        self.job = job
        self.interval = settings.JOBS_HEARTBEAT_TIMEOUT / 4
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=5)

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                close_old_connections()  # this thread's connection, after a database restart
                if not self.beat():
                    return
        finally:
            connection.close()  # this thread's own connection

    def beat(self) -> bool:
        """Record one heartbeat; False when this run no longer owns the row."""
        job = self.job
        try:
            if Job.objects.filter(pk=job.pk, run_id=job.run_id).update(heartbeat_at=Now(),
                                                                      updated_at=timezone.now()):
                return True
            if self._stopped.is_set():
                return False  # the run ended while this beat waited for the database
            gone = not Job.objects.filter(pk=job.pk).exists()
        except DatabaseError as exc:
            log.warning("job %s (%s): heartbeat not recorded, next try in %.0fs: %s", job.pk, job.job_type,
                        self.interval, exc)
            return True
        if gone:
            log.warning("job %s (%s) no longer exists: heartbeat stopped", job.pk, job.job_type)
        else:
            log.warning("job %s (%s) was resumed by another worker: heartbeat stopped, this run stops at its "
                        "next progress report", job.pk, job.job_type)
        return False


def reap_stale_jobs() -> dict:
    """Put back in the queue every job whose worker is gone; resend lost waiting jobs.

    - RUNNING with no heartbeat for JOBS_HEARTBEAT_TIMEOUT: QUEUED again, the
      retry counted ("worker lost, resumed"), or FAILED when it has used its
      attempts (a send or a backup runs at most once).
    - QUEUED/RETRYING overdue by five timeouts (its message was lost with a
      worker, e.g. on the filesystem broker, or the broker was down when it was
      sent): sent again.  A duplicate message is harmless: the claim drops it.

    Each rule is one UPDATE whose WHERE is the staleness itself, tagging the rows
    it changed with this pass's token: of two reapers at once, each row goes to one.
    """
    timeout = heartbeat_timeout()
    token = f"reaper-{uuid.uuid4().hex[:24]}"
    now = timezone.now()
    stale = Job.objects.filter(_silent(timeout), status=Job.Status.RUNNING)
    stale.filter(attempts__gte=F("max_attempts")).update(
        status=Job.Status.FAILED, finished_at=now, updated_at=now, heartbeat_at=None, run_id=f"{token}f",
        last_error="The worker running this job was lost; it is not run again (no attempts left).")
    stale.filter(attempts__lt=F("max_attempts")).update(
        status=Job.Status.QUEUED, resumed_count=F("resumed_count") + 1, last_error="worker lost, resumed",
        heartbeat_at=None, run_id=token, next_run_at=None, updated_at=now)
    overdue = Now() - timeout * 5
    # Bumping updated_at claims the resend and puts the next one five timeouts away.
    Job.objects.filter(Q(next_run_at__lt=overdue) | Q(next_run_at__isnull=True, updated_at__lt=overdue),
                       status__in=(Job.Status.QUEUED, Job.Status.RETRYING)).update(
        updated_at=now, next_run_at=None, run_id=f"{token}w")
    tags = (token, f"{token}f", f"{token}w")
    tagged = list(Job.objects.filter(run_id__in=tags).only("pk", "job_type", "payload_json", "run_id"))
    if not tagged:
        return {"requeued": [], "failed": [], "resent": [], "send_errors": []}
    Job.objects.filter(run_id__in=tags).update(run_id=None)
    failed = [job.pk for job in tagged if job.run_id == f"{token}f"]
    for job in tagged:
        if job.run_id == f"{token}f":
            log.warning("job %s (%s): worker lost and no attempts left: failed, not run again", job.pk, job.job_type)
    to_send = [job for job in tagged if job.run_id != f"{token}f"]
    requeued = [job.pk for job in to_send if job.run_id == token]
    resent = [job.pk for job in to_send if job.run_id != token]
    for job in to_send:
        if job.run_id == token:
            log.warning("job %s (%s): no heartbeat for %.0fs, worker lost: resumed", job.pk, job.job_type,
                        timeout.total_seconds())
    if resent:
        log.warning("jobs %s waited too long for a worker (lost messages?): sent again", resent)
    send_errors = []
    for job in to_send:
        if send_errors:  # the broker is down: the rest waits for the next pass too
            send_errors.append(job.pk)
            continue
        try:
            _send(job)
        except Exception as exc:  # noqa: BLE001 - any broker failure: the next pass resends it
            send_errors.append(job.pk)
            log.error("job %s (%s) could not be sent (broker down?); the reaper sends it again in %.0fs: %s",
                      job.pk, job.job_type, timeout.total_seconds() * 5, error_text(exc))
    return {"requeued": requeued, "failed": failed, "resent": resent, "send_errors": send_errors}
