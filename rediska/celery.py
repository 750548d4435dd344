"""The Celery app.  Tasks live in each app's tasks.py under the spec §7 names."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rediska.settings")

app = Celery("rediska")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender, **kwargs):
    from django.conf import settings

    reap_every = max(1.0, settings.JOBS_HEARTBEAT_TIMEOUT / 4)
    # Called without ids, these tasks fan out over every active identity /
    # every due watch; the ledger dedupes overlapping runs.
    sender.conf.beat_schedule = {
        "sync-all-identities": {"task": "ingest.sync_delta", "schedule": float(settings.SYNC_INTERVAL_SECONDS)},
        "run-due-watches": {"task": "ingest.browse_location", "schedule": float(settings.WATCH_TICK_SECONDS)},
        # Picks up documents whose vectors are still missing (e.g. the embeddings
        # server was down longer than a job's retries).
        "embed-pending": {"task": "embed.generate", "schedule": 600.0},
        # Jobs whose worker is gone go back in the queue (rediska.jobs.reap_stale_jobs).
        # A tick still queued when the next is due (the pool was busy) is dropped: expires.
        "reap-stale-jobs": {"task": "maintenance.reap_stale_jobs", "schedule": reap_every,
                            "options": {"expires": reap_every}},
        "nightly-backup": {
            "task": "maintenance.mysql_dump_local",
            "schedule": crontab(hour=settings.BACKUP_HOUR_UTC, minute=0),
        },
        "weekly-restore-test": {
            "task": "maintenance.restore_test_local",
            "schedule": crontab(hour=(settings.BACKUP_HOUR_UTC + 1) % 24, minute=0, day_of_week="sun"),
        },
    }
    if settings.NOTIFY_URLS:
        # Notifications left pending (a digest window, a send that failed): sent when due.
        sender.conf.beat_schedule["notify-pending"] = {"task": "notify.send", "schedule": 300.0}
