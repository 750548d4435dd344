"""The job ledger: every Celery task runs through a `jobs` row.

The row records queued/running/retrying/failed/done, attempts, the next run
and the last error; a `dedupe_key` that is already done is never run again.
Transient errors (anything with a truthy `transient` attribute) are retried
with exponential backoff and jitter until `max_attempts`.
"""

from __future__ import annotations

import functools
import logging
import random
from datetime import timedelta

from celery import current_app, shared_task
from django.db import IntegrityError, transaction
from django.utils import timezone

from .audit import error_text
from .logging import job_id_var
from .models import Job

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600


class TransientJobError(Exception):
    """Raise from a task to have the ledger retry it later."""

    transient = True


def is_transient(exc: BaseException) -> bool:
    return bool(getattr(exc, "transient", False))


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
    with transaction.atomic():
        if job_id is None:  # called directly (tests, management commands)
            return Job.objects.create(
                queue_name=queue, job_type=name, payload_json={"args": list(args), "kwargs": kwargs},
                max_attempts=max_attempts, status=Job.Status.RUNNING, attempts=1, started_at=now,
            )
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status == Job.Status.DONE:
            return None  # deleted, or a redelivery of finished work
        # A RUNNING job here means its worker died mid-way (acks_late redelivery):
        # run it again; the services are idempotent.
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or now
        job.next_run_at = None
        job.save(update_fields=["status", "attempts", "started_at", "next_run_at", "updated_at"])
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
            try:
                result = fn(job, *args, **kwargs)
            except Exception as exc:
                _record_failure(self, job, exc)
                raise
            finally:
                job_id_var.reset(token)
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.DONE, result_json=_json_result(result), last_error=None,
                finished_at=timezone.now(), updated_at=timezone.now(),
            )
            return result

        task.ledger_max_attempts = max_attempts
        return task

    return decorator


def _record_failure(task, job: Job, exc: BaseException) -> None:
    job.refresh_from_db(fields=["attempts", "max_attempts"])
    now = timezone.now()
    if is_transient(exc) and job.attempts < job.max_attempts:
        delay = backoff_seconds(job.attempts, getattr(exc, "retry_after", None))
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RETRYING, last_error=error_text(exc),
            next_run_at=now + timedelta(seconds=delay), updated_at=now,
        )
        log.warning("job %s (%s) will retry in %.0fs: %s", job.pk, job.job_type, delay, error_text(exc))
        job.refresh_from_db()
        # Scheduled after commit so the retry sees this row as RETRYING.
        transaction.on_commit(functools.partial(_send, job, delay))
        return
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED, last_error=error_text(exc), finished_at=now, next_run_at=None, updated_at=now,
    )
    log.error("job %s (%s) failed: %s", job.pk, job.job_type, error_text(exc))
