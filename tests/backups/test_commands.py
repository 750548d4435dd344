import hashlib
import io
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inbox.models import Message
from rediska.models import Job
from tests.backups.conftest import backup_dirs
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backup_prints_what_it_wrote_and_pruned_and_records_a_job(archive, folders):
    folders.BACKUP_KEEP = 1
    first = run("backup")
    second = run("backup")
    names = backup_dirs(folders.BACKUPS_PATH)
    assert f"Backup {names[0]} written:" in second and "3 files" in second
    assert "Pruned: nothing." in first
    assert "Pruned: " in second and "Pruned: nothing." not in second
    jobs = Job.objects.filter(job_type="maintenance.mysql_dump_local")
    assert [job.status for job in jobs] == ["done", "done"]
    assert jobs[0].result_json["backup"] == names[0]


def test_backup_attachments_only(archive, folders):
    assert "0 tables, 0 rows" in run("backup", "--attachments-only")
    assert Job.objects.get().job_type == "maintenance.attachments_snapshot_local"


def test_backup_with_a_missing_backups_path_fails_with_one_line_and_a_failed_job(archive, folders):
    shutil.rmtree(folders.BACKUPS_PATH)
    with pytest.raises(CommandError) as caught:
        run("backup")
    assert str(caught.value).startswith("BACKUPS_PATH ") and "\n" not in str(caught.value)
    job = Job.objects.get()
    assert job.status == "failed" and "does not exist" in job.last_error


def test_restore_test_passes_and_prints_a_short_report(archive, folders):
    run("backup")
    out = run("restore_test")
    assert "[ok] row counts:" in out and "[ok] attachments: 3 files" in out
    assert out.strip().endswith("passed.")
    assert Job.objects.get(job_type="maintenance.restore_test_local").status == "done"


def test_restore_test_of_a_damaged_backup_exits_non_zero_with_the_reason(archive, folders):
    run("backup")
    name = backup_dirs(folders.BACKUPS_PATH)[0]
    (folders.BACKUPS_PATH / name / "attachments" / "ab" / "one.png").unlink()
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"Restore test of .* failed: attachments: ab/one.png is missing"):
        call_command("restore_test", name, stdout=out)
    assert "[FAIL] attachments: ab/one.png is missing" in out.getvalue()
    job = Job.objects.get(job_type="maintenance.restore_test_local")
    assert job.status == "failed" and "ab/one.png is missing" in job.last_error
    assert job.progress_json["backup"] == name


def test_restore_refuses_without_yes(archive, folders):
    run("backup")
    with pytest.raises(CommandError, match="without --yes"):
        run("restore", backup_dirs(folders.BACKUPS_PATH)[0])


def test_restore_with_yes_restores_and_says_what_it_did(archive, folders):
    run("backup")
    name = backup_dirs(folders.BACKUPS_PATH)[0]
    MessageFactory()
    out = run("restore", name, "--yes")
    assert f"Restored {name}:" in out and "Safety backup of the previous data: " in out
    assert Message.objects.count() == 4


def test_restore_of_an_unknown_backup_is_a_clear_error(folders):
    with pytest.raises(CommandError, match="no backup named 20200101T000000Z"):
        run("restore", "20200101T000000Z", "--yes")


def test_the_dump_sidecar_is_sha256sum_compatible(archive, folders):
    import subprocess

    run("backup")
    folder = folders.BACKUPS_PATH / backup_dirs(folders.BACKUPS_PATH)[0]
    sidecar = next(folder.glob("*.sha256"))
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", sidecar.name], cwd=folder, capture_output=True).returncode == 0
    digest = sidecar.read_text().split()[0]
    assert digest == hashlib.sha256((folder / sidecar.name.removesuffix(".sha256")).read_bytes()).hexdigest()


def test_restore_warns_when_the_backup_was_made_with_another_encryption_key(archive, folders):
    run("backup")
    name = backup_dirs(folders.BACKUPS_PATH)[0]
    assert "different ENCRYPTION_KEY" not in run("restore", name, "--yes")
    folders.CREDENTIALS_KEY = b"k" * 32
    assert "Warning: this backup was made with a different ENCRYPTION_KEY" in run("restore", name, "--yes")


def test_restore_says_when_migrations_are_needed_only_for_a_backup_from_an_older_schema(archive, folders):
    import json

    run("backup")
    name = backup_dirs(folders.BACKUPS_PATH)[0]
    assert "manage.py migrate" not in run("restore", name, "--yes")
    manifest = folders.BACKUPS_PATH / name / "manifest.json"
    data = json.loads(manifest.read_text())
    data["database"]["applied"].remove("rediska.0001_initial")
    manifest.write_text(json.dumps(data))
    out = run("restore", name, "--yes")
    assert "This backup is from an older schema (1 migration not applied): run `manage.py migrate` now." in out


def test_restore_goes_ahead_but_warns_when_a_file_was_already_missing_at_backup_time(archive, folders):
    from inbox.models import Attachment

    Attachment.objects.create(storage_key="zz/gone.png", sha256="0" * 64, mime_type="image/png", size_bytes=1)
    run("backup")
    name = backup_dirs(folders.BACKUPS_PATH)[0]
    MessageFactory()
    out = run("restore", name, "--yes")
    assert f"Restored {name}:" in out and Message.objects.count() == 4
    assert "Warning: 1 of 4 attachment rows have no file in the backup (zz/gone.png)" in out
