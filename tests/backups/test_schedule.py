"""Beat runs the same maintenance tasks as the commands: a nightly backup, a weekly restore test."""

from celery.schedules import crontab
from django.conf import settings

from rediska.celery import app


def schedule_for(task: str):
    app.finalize()
    entries = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == task]
    assert len(entries) == 1, task
    return entries[0]["schedule"]


def test_the_backup_runs_every_night_at_the_configured_hour():
    assert schedule_for("maintenance.mysql_dump_local") == crontab(hour=settings.BACKUP_HOUR_UTC, minute=0)


def test_the_restore_test_runs_weekly_an_hour_after_the_backup():
    expected = crontab(hour=(settings.BACKUP_HOUR_UTC + 1) % 24, minute=0, day_of_week="sun")
    assert schedule_for("maintenance.restore_test_local") == expected


def test_the_scheduled_tasks_are_registered_under_the_spec_names():
    app.loader.import_default_modules()
    for name in ("maintenance.mysql_dump_local", "maintenance.attachments_snapshot_local",
                 "maintenance.restore_test_local"):
        assert name in app.tasks
