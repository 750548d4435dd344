"""Maintenance tasks (spec §7): the same code as manage.py backup / restore_test."""

from __future__ import annotations

from celery import shared_task

from rediska import jobs
from rediska.backups import services
from rediska.backups.errors import RestoreTestFailed
from rediska.jobs import ledger_task


@ledger_task(services.BACKUP_TASK, max_attempts=1)
def mysql_dump_local(job) -> dict:
    """The nightly backup: database dump + attachments snapshot + manifest, then pruning."""
    return services.create_backup(job=job)


@ledger_task(services.SNAPSHOT_TASK, max_attempts=1)
def attachments_snapshot_local(job) -> dict:
    """An attachments-only backup (cheap: unchanged files are hard-linked)."""
    return services.create_backup(database=False, job=job)


@ledger_task(services.RESTORE_TEST_TASK, max_attempts=1)
def restore_test_local(job, backup: str | None = None) -> dict:
    report = services.run_restore_test(backup, job=job)
    if not report.ok:
        raise RestoreTestFailed(report)  # fails the job: shown on every page until acknowledged
    return report.as_dict()


# Not a ledger task: it keeps the ledger itself.  Recorded, it would add a row every
# half minute, and a lost run needs no resume (the next tick does the same work).
@shared_task(name="maintenance.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict:
    """Resume the jobs of lost workers (rediska.jobs.reap_stale_jobs)."""
    return jobs.reap_stale_jobs()
