"""A failed backup is told through the notifications (and still fails its job)."""

import pytest

from rediska.models import Job, Notification
from rediska.tasks import mysql_dump_local, send_notifications


@pytest.mark.django_db
def test_a_failed_backup_is_told_once_with_its_reason(folders, fake_notify):
    folders.BACKUPS_PATH.rmdir()
    with pytest.raises(Exception, match="does not exist"):
        mysql_dump_local()
    job = Job.objects.get(job_type="maintenance.mysql_dump_local")
    assert job.status == Job.Status.FAILED
    notification = Notification.objects.get()
    assert notification.kind == "backup" and notification.dedupe_key == f"backup:{job.pk}"
    send_notifications()
    [message] = fake_notify.received
    assert message["title"] == "Rediska: The backup failed"
    assert "does not exist" in message["message"]


@pytest.mark.django_db
def test_a_failed_backup_tells_nothing_when_backups_are_not_chosen(folders, fake_notify, settings):
    settings.NOTIFY_EVENTS = frozenset({"reply"})
    folders.BACKUPS_PATH.rmdir()
    with pytest.raises(Exception):
        mysql_dump_local()
    assert not Notification.objects.exists()
