"""Maintenance tasks (spec §7): the same code as manage.py backup / restore_test."""

from __future__ import annotations

from celery import shared_task
from django.urls import reverse

from rediska import jobs, notify
from rediska.audit import error_text
from rediska.backups import services
from rediska.backups.errors import RestoreTestFailed
from rediska.jobs import ledger_task


def _told_if_failed(job, what: str, run):
    """Run a maintenance step; if it fails, record a "failed backup" notification, then fail the job."""
    try:
        return run()
    except Exception as exc:
        notify.record(notify.Event(kind=notify.Kind.BACKUP, title=f"{what} failed",
                                   body=notify.excerpt(error_text(exc)), key=f"backup:{job.pk}",
                                   url=reverse("backups:list")))
        raise


@ledger_task(services.BACKUP_TASK, max_attempts=1)
def mysql_dump_local(job) -> dict:
    """The nightly backup: database dump + attachments snapshot + manifest, then pruning."""
    return _told_if_failed(job, "The backup", lambda: services.create_backup(job=job))


@ledger_task(services.SNAPSHOT_TASK, max_attempts=1)
def attachments_snapshot_local(job) -> dict:
    """An attachments-only backup (cheap: unchanged files are hard-linked)."""
    return _told_if_failed(job, "The attachments backup", lambda: services.create_backup(database=False, job=job))


@ledger_task(services.RESTORE_TEST_TASK, max_attempts=1)
def restore_test_local(job, backup: str | None = None) -> dict:
    def run():
        report = services.run_restore_test(backup, job=job)
        if not report.ok:
            raise RestoreTestFailed(report)  # fails the job: shown on every page until acknowledged
        return report.as_dict()

    return _told_if_failed(job, "The restore test", run)


# --- notifications (issue 15) ---------------------------------------------------------------
@ledger_task(notify.SEND_TASK, queue="notify", max_attempts=5)
def send_notifications(job) -> dict:
    """Send the pending notifications (one each, or the digest of the window); beat sweeps leftovers."""
    return notify.send_pending()


# Not a ledger task: it keeps the ledger itself.  Recorded, it would add a row every
# half minute, and a lost run needs no resume (the next tick does the same work).
@shared_task(name="maintenance.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict:
    """Resume the jobs of lost workers (rediska.jobs.reap_stale_jobs)."""
    return jobs.reap_stale_jobs()
