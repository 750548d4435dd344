import shutil

import pytest
from django.urls import reverse

from rediska.backups import services
from rediska.backups.errors import RestoreTestFailed
from rediska.models import AuditLog, Job
from rediska.tasks import mysql_dump_local, restore_test_local
from tests.backups.conftest import backup_dirs
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def failed_backup(error="BackupError: BACKUPS_PATH /mnt/usb does not exist") -> Job:
    return JobFactory(job_type="maintenance.mysql_dump_local", queue_name="maintenance", status="failed",
                      last_error=error)


class TestBackupPage:
    @pytest.mark.django_db(transaction=True)
    def test_it_lists_backups_with_size_and_verified_state(self, auth_client, archive, folders):
        mysql_dump_local()
        restore_test_local()
        name = backup_dirs(folders.BACKUPS_PATH)[0]
        response = auth_client.get(reverse("backups:list"))
        page = response.content.decode()
        assert response.status_code == 200
        assert name in page and "3 files" in page and "verified" in page
        assert "all checks passed" in page

    @pytest.mark.django_db(transaction=True)
    def test_recent_runs_say_what_a_backup_pruned(self, auth_client, archive, folders):
        folders.BACKUP_KEEP = 1
        first = mysql_dump_local()["backup"]
        mysql_dump_local()
        page = auth_client.get(reverse("backups:list")).content.decode()
        assert f"pruned {first}" in page

    @pytest.mark.django_db(transaction=True)
    def test_a_failed_restore_test_marks_the_backup(self, auth_client, archive, folders):
        mysql_dump_local()
        name = backup_dirs(folders.BACKUPS_PATH)[0]
        (folders.BACKUPS_PATH / name / "attachments" / "ab" / "one.png").unlink()
        with pytest.raises(RestoreTestFailed):
            restore_test_local()
        page = auth_client.get(reverse("backups:list")).content.decode()
        assert "test failed" in page and "ab/one.png is missing" in page

    def test_a_missing_backups_path_is_explained_not_a_500(self, auth_client, folders):
        shutil.rmtree(folders.BACKUPS_PATH)
        response = auth_client.get(reverse("backups:list"))
        assert response.status_code == 200
        assert "does not exist: create it" in response.content.decode()

    def test_back_up_now_enqueues_the_task_once(self, auth_client, folders):
        response = auth_client.post(reverse("backups:backup_now"), {"kind": "full"})
        assert response.status_code == 302
        auth_client.post(reverse("backups:backup_now"), {"kind": "full"})
        job = Job.objects.get()
        assert job.job_type == "maintenance.mysql_dump_local" and job.status == "queued"

    def test_attachments_only_enqueues_the_snapshot_task(self, auth_client, folders):
        auth_client.post(reverse("backups:backup_now"), {"kind": "attachments"})
        assert Job.objects.get().job_type == "maintenance.attachments_snapshot_local"

    def test_run_restore_test_enqueues_it_for_the_named_backup(self, auth_client, folders):
        auth_client.post(reverse("backups:restore_test_now"), {"backup": "20260109T030000Z"})
        job = Job.objects.get()
        assert job.job_type == "maintenance.restore_test_local"
        assert job.payload_json == {"args": [], "kwargs": {"backup": "20260109T030000Z"}}

    def test_bad_input_gets_a_400_with_a_reason(self, auth_client, folders):
        response = auth_client.post(reverse("backups:restore_test_now"), {"backup": "../../etc"})
        assert response.status_code == 400 and b"not a backup name" in response.content
        response = auth_client.post(reverse("backups:backup_now"), {"kind": "everything"})
        assert response.status_code == 400
        assert not Job.objects.exists()

    @pytest.mark.django_db(transaction=True)
    def test_backup_and_restore_test_results_show_on_the_jobs_page(self, auth_client, archive, folders):
        mysql_dump_local()
        restore_test_local()
        name = backup_dirs(folders.BACKUPS_PATH)[0]
        page = auth_client.get(reverse("jobs"), {"job_type": "maintenance."}).content.decode()
        assert "maintenance.mysql_dump_local" in page and "maintenance.restore_test_local" in page
        for job in Job.objects.all():
            detail = auth_client.get(reverse("job_detail", args=[job.pk])).content.decode()
            assert name in detail and "Done" in detail

    def test_the_jobs_page_links_to_backups(self, auth_client):
        assert reverse("backups:list").encode() in auth_client.get(reverse("jobs")).content

    def test_the_page_needs_login(self, client):
        response = client.get(reverse("backups:list"))
        assert response.status_code == 302 and response["Location"].startswith("/login/")


class TestFailureAlert:
    def test_a_failed_backup_is_shown_on_every_page_until_acknowledged(self, auth_client):
        job = failed_backup()
        for url in (reverse("jobs"), reverse("backups:list"), reverse("identities:list")):
            page = auth_client.get(url).content.decode()
            assert 'class="alert alert-error" role="alert"' in page, url
            assert "Backup failed" in page and "/mnt/usb does not exist" in page
        response = auth_client.post(reverse("backups:acknowledge"), {"job": job.pk, "next": reverse("jobs")})
        assert response.status_code == 302 and response["Location"] == reverse("jobs")
        assert "alert-error" not in auth_client.get(reverse("jobs")).content.decode()
        assert AuditLog.objects.get(action_type="maintenance.acknowledge").entity_id == job.pk

    def test_a_failed_restore_test_is_named_as_such(self, auth_client):
        JobFactory(job_type="maintenance.restore_test_local", status="failed", last_error="RestoreTestFailed: x")
        assert "Restore test failed" in auth_client.get(reverse("jobs")).content.decode()

    def test_a_new_failure_after_acknowledging_shows_again(self, auth_client):
        services.acknowledge_failures(failed_backup())
        failed_backup("BackupError: the disk is full")
        assert "the disk is full" in auth_client.get(reverse("jobs")).content.decode()

    def test_other_failed_jobs_do_not_raise_the_backup_alert(self, auth_client):
        JobFactory(status="failed", last_error="boom")
        assert "alert-error" not in auth_client.get(reverse("jobs")).content.decode()

    def test_acknowledge_only_redirects_to_local_pages(self, auth_client):
        job = failed_backup()
        response = auth_client.post(reverse("backups:acknowledge"), {"job": job.pk, "next": "https://evil.example/"})
        assert response["Location"] == reverse("backups:list")

    def test_acknowledging_something_that_is_not_a_failed_backup_is_a_400(self, auth_client):
        other = JobFactory(status="failed")
        response = auth_client.post(reverse("backups:acknowledge"), {"job": other.pk})
        assert response.status_code == 400
        assert auth_client.get(reverse("backups:acknowledge")).status_code == 405

    def test_the_alert_is_escaped(self, auth_client):
        failed_backup("BackupError: <script>alert(1)</script>")
        page = auth_client.get(reverse("jobs")).content.decode()
        assert "<script>alert(1)" not in page and "&lt;script&gt;" in page

    def test_the_alert_costs_two_queries(self, auth_client, django_assert_max_num_queries):
        failed_backup()
        failed_backup()
        from rediska.backups.services import unacknowledged_failures

        with django_assert_max_num_queries(2):
            assert len(unacknowledged_failures()) == 2
