import gzip
import hashlib
import json
import os
import shutil
import stat
import tempfile
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inbox.models import Attachment, Message
from rediska.backups import services
from rediska.backups.errors import BackupError, BackupSpaceError, RestoreRefused
from rediska.models import AuditLog, Job
from tests.backups.conftest import as_nobody, backup_dirs, files_of, mysql_only, write_attachment
from tests.factories import JobFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor)
        result = {}
        for name in names:
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(name)}")
            result[name] = cursor.fetchone()[0]
    return result


def manifest_of(folders, name):
    return json.loads((folders.BACKUPS_PATH / name / "manifest.json").read_text())


def rewrite_manifest(folders, name, change):
    path = folders.BACKUPS_PATH / name / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def failed_checks(report):
    return {check.name: check.detail for check in report.checks if not check.ok}


class TestBackup:
    def test_backup_then_restore_test_passes(self, archive, folders):
        result = services.create_backup()
        report = services.run_restore_test()
        assert report.ok, failed_checks(report)
        assert report.name == result["backup"]
        assert {check.name for check in report.checks} >= {"manifest", "schema", "checksum", "restore",
                                                           "row counts", "attachments", "attachment rows"}

    def test_it_writes_a_compressed_dump_with_its_sha256_a_snapshot_and_a_manifest(self, archive, folders):
        result = services.create_backup()
        folder = folders.BACKUPS_PATH / result["backup"]
        data = manifest_of(folders, result["backup"])
        dump = folder / data["database"]["file"]
        assert dump.name.endswith(".gz")
        with gzip.open(dump) as fh:
            assert fh.read(16)  # really gzip
        digest = hashlib.sha256(dump.read_bytes()).hexdigest()
        assert (folder / (dump.name + ".sha256")).read_text() == f"{digest}  {dump.name}\n"
        assert data["database"]["sha256"] == digest
        assert data["database"]["vendor"] == connection.vendor
        assert data["database"]["tables"]["messages"] == Message.objects.count() == 4
        assert data["database"]["tables"]["attachments"] == 3
        from django.db.migrations.loader import MigrationLoader

        # The newest migration of the app (whichever it is now).
        assert data["database"]["migrations"]["rediska"] == MigrationLoader(connection).graph.leaf_nodes("rediska")[0][1]
        assert "inbox.0001_initial" in data["database"]["applied"]
        assert data["app_version"] and data["created_at"] and data["finished_at"]
        assert data["attachments"]["count"] == 3
        assert data["attachments"]["bytes"] == 800 + 1600 + 5000
        assert files_of(folder / "attachments") == files_of(folders.ATTACHMENTS_PATH)
        assert result["rows"] == sum(data["database"]["tables"].values())

    def test_row_counts_come_from_the_dump_itself(self, archive, folders):
        result = services.create_backup()
        counts = manifest_of(folders, result["backup"])["database"]["tables"]
        live = table_counts()
        live["audit_log"] -= 1  # the backup's own audit row is written after the dump
        assert counts == live

    def test_unchanged_files_are_hard_linked_from_the_previous_snapshot(self, archive, folders):
        first = services.create_backup()
        (folders.ATTACHMENTS_PATH / "ab" / "two.png").write_bytes(b"changed")
        Attachment.objects.filter(storage_key="ab/two.png").update(sha256=hashlib.sha256(b"changed").hexdigest())
        write_attachment(folders.ATTACHMENTS_PATH, "ef/four.png", b"new file")
        second = services.create_backup()
        assert (second["files_copied"], second["files_linked"]) == (2, 2)
        old, new = (folders.BACKUPS_PATH / name / "attachments" for name in (first["backup"], second["backup"]))
        assert (old / "ab/one.png").stat().st_ino == (new / "ab/one.png").stat().st_ino
        assert (old / "ab/two.png").stat().st_ino != (new / "ab/two.png").stat().st_ino
        assert files_of(new) == files_of(folders.ATTACHMENTS_PATH)
        assert services.run_restore_test().ok

    def test_a_damaged_previous_copy_is_copied_afresh_not_linked(self, archive, folders):
        first = services.create_backup()
        damaged = folders.BACKUPS_PATH / first["backup"] / "attachments" / "ab" / "one.png"
        damaged.write_bytes(b"bit rot" + damaged.read_bytes()[7:])
        second = services.create_backup()
        fresh = folders.BACKUPS_PATH / second["backup"] / "attachments" / "ab" / "one.png"
        assert fresh.read_bytes() == (folders.ATTACHMENTS_PATH / "ab" / "one.png").read_bytes()
        assert services.run_restore_test(second["backup"]).ok

    def test_it_keeps_the_last_n_backups_and_says_what_it_pruned(self, archive, folders):
        names = [services.create_backup(keep=2)["backup"] for _ in range(3)]
        third = services.create_backup(keep=2)
        assert backup_dirs(folders.BACKUPS_PATH) == sorted([names[2], third["backup"]])
        assert third["pruned"] == [names[1]]
        assert len(set(names)) == 3  # same-second backups get distinct names

    def test_it_removes_partial_folders_left_by_a_dead_run_and_says_so(self, archive, folders):
        (folders.BACKUPS_PATH / "20200101T000000Z.partial").mkdir()
        result = services.create_backup()
        assert result["stale_partials_removed"] == ["20200101T000000Z.partial"]
        assert backup_dirs(folders.BACKUPS_PATH) == [result["backup"]]

    def test_an_attachments_only_backup_has_no_dump_and_passes_its_restore_test(self, archive, folders):
        result = services.create_backup(database=False)
        data = manifest_of(folders, result["backup"])
        assert data["kind"] == "attachments" and "database" not in data
        assert services.run_restore_test(result["backup"]).ok

    def test_backups_record_an_audit_row(self, archive, folders):
        result = services.create_backup()
        row = AuditLog.objects.get(action_type="maintenance.backup")
        assert row.result == "ok" and row.response_json["backup"] == result["backup"]


class TestBackupRefusals:
    def test_a_missing_backups_path_is_refused_clearly(self, archive, folders):
        shutil.rmtree(folders.BACKUPS_PATH)
        with pytest.raises(BackupError, match=r"BACKUPS_PATH .* does not exist"):
            services.create_backup()
        assert not folders.BACKUPS_PATH.exists()  # not silently created on the wrong disk
        assert AuditLog.objects.get(action_type="maintenance.backup").result == "error"

    def test_a_backups_path_inside_the_attachments_path_is_refused(self, archive, folders):
        # Each snapshot would otherwise hold every earlier backup, growing without end.
        folders.BACKUPS_PATH = inside = folders.ATTACHMENTS_PATH / "backups"
        inside.mkdir()
        with pytest.raises(BackupError, match=r"BACKUPS_PATH .* is inside ATTACHMENTS_PATH"):
            services.create_backup()
        assert list(inside.iterdir()) == []

    def test_a_restore_refuses_too_rather_than_delete_the_backups_as_extra_files(self, archive, folders):
        name = services.create_backup()["backup"]
        shutil.move(folders.BACKUPS_PATH, folders.ATTACHMENTS_PATH / "backups")
        folders.BACKUPS_PATH = folders.ATTACHMENTS_PATH / "backups"
        with pytest.raises(BackupError, match=r"BACKUPS_PATH .* is inside ATTACHMENTS_PATH"):
            services.restore_backup(name, yes=True)
        assert backup_dirs(folders.BACKUPS_PATH) == [name]

    def test_a_read_only_backups_path_is_refused_and_left_alone(self, archive, folders):
        folders.BACKUPS_PATH = readonly = tempfile.mkdtemp(prefix="rediska-ro-")
        try:
            os.chmod(readonly, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
            with as_nobody(), pytest.raises(BackupError, match=r"BACKUPS_PATH .* is not writable"):
                services.create_backup()
            assert os.listdir(readonly) == []
        finally:
            os.chmod(readonly, 0o700)
            shutil.rmtree(readonly)

    def test_a_full_disk_fails_cleanly_and_keeps_earlier_backups(self, archive, folders):
        earlier = services.create_backup()["backup"]
        before = files_of(folders.BACKUPS_PATH)
        folders.BACKUP_MAX_BYTES = 2000
        with pytest.raises(BackupSpaceError, match="BACKUP_MAX_BYTES"):
            services.create_backup()
        assert backup_dirs(folders.BACKUPS_PATH) == [earlier]  # no partial left, nothing pruned
        assert files_of(folders.BACKUPS_PATH) == before
        assert services.run_restore_test().ok

    def test_an_empty_attachments_folder_while_the_database_lists_attachments_is_refused(self, archive, folders):
        # An unmounted attachments disk: without this refusal, N such nights would prune every good backup.
        earlier = services.create_backup(keep=1)["backup"]
        shutil.rmtree(folders.ATTACHMENTS_PATH)
        folders.ATTACHMENTS_PATH.mkdir()
        with pytest.raises(BackupError, match=r"ATTACHMENTS_PATH .* is empty but the database lists 3 attachments"):
            services.create_backup(keep=1)
        with pytest.raises(BackupError, match=r"ATTACHMENTS_PATH .* is empty but the previous backup had 3 files"):
            services.create_backup(database=False, keep=1)
        assert backup_dirs(folders.BACKUPS_PATH) == [earlier]

    def test_an_empty_archive_backs_up_fine(self, folders):
        assert services.create_backup()["files"] == 0

    def test_a_failure_while_copying_files_leaves_no_half_backup(self, archive, folders):
        folders.BACKUP_MAX_BYTES = 3000  # the dump fits, the attachments do not
        with pytest.raises(BackupSpaceError):
            services.create_backup()
        assert backup_dirs(folders.BACKUPS_PATH) == []


    def test_a_really_full_disk_fails_cleanly(self, archive, folders, tiny_disk):
        (folders.ATTACHMENTS_PATH / "big.bin").write_bytes(os.urandom(100_000))
        folders.BACKUPS_PATH = tiny_disk
        with pytest.raises(BackupSpaceError, match=f"The disk holding {tiny_disk}/.* is full; nothing was replaced"):
            services.create_backup()
        assert backup_dirs(tiny_disk) == []


class TestRestoreTest:
    def test_a_corrupted_dump_fails_with_the_reason(self, archive, folders):
        name = services.create_backup()["backup"]
        dump = folders.BACKUPS_PATH / name / manifest_of(folders, name)["database"]["file"]
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        report = services.run_restore_test()
        assert not report.ok
        assert "does not match its sha256" in failed_checks(report)["checksum"]

    def test_a_dump_that_matches_its_checksum_but_does_not_restore_fails(self, archive, folders):
        name = services.create_backup()["backup"]
        file = manifest_of(folders, name)["database"]["file"]
        dump = folders.BACKUPS_PATH / name / file
        dump.write_bytes(gzip.compress(b"this is not a database\n" * 100))
        digest = hashlib.sha256(dump.read_bytes()).hexdigest()
        (dump.parent / (file + ".sha256")).write_text(f"{digest}  {file}\n")
        rewrite_manifest(folders, name, lambda d: d["database"].update(sha256=digest))
        report = services.run_restore_test()
        assert not report.ok and "restore" in failed_checks(report)

    def test_row_counts_that_differ_from_the_manifest_fail(self, archive, folders):
        name = services.create_backup()["backup"]
        rewrite_manifest(folders, name, lambda d: d["database"]["tables"].update(messages=5))
        report = services.run_restore_test()
        assert failed_checks(report)["row counts"] == "messages has 4 rows, expected 5"

    def test_a_truncated_attachment_fails_with_the_reason(self, archive, folders):
        name = services.create_backup()["backup"]
        path = folders.BACKUPS_PATH / name / "attachments" / "cd" / "three.jpg"
        path.write_bytes(path.read_bytes()[:100])
        report = services.run_restore_test()
        assert "cd/three.jpg has 100 bytes, expected 5000 (truncated or changed)" in failed_checks(report)["attachments"]

    def test_a_missing_file_fails_with_the_reason(self, archive, folders):
        name = services.create_backup()["backup"]
        (folders.BACKUPS_PATH / name / "attachments" / "ab" / "one.png").unlink()
        report = services.run_restore_test()
        assert failed_checks(report)["attachments"] == "ab/one.png is missing"

    def test_an_attachment_row_whose_file_is_not_in_the_backup_fails(self, archive, folders):
        from inbox.models import Attachment

        Attachment.objects.create(storage_key="zz/gone.png", sha256="0" * 64, mime_type="image/png", size_bytes=1)
        services.create_backup()
        report = services.run_restore_test()
        assert failed_checks(report)["attachment rows"] == (
            "1 of 4 attachment rows have no file in the backup (zz/gone.png): "
            "missing from ATTACHMENTS_PATH when the backup was taken")

    def test_an_attachment_row_whose_file_has_another_hash_fails(self, archive, folders):
        from inbox.models import Attachment

        Attachment.objects.filter(storage_key="ab/one.png").update(sha256="f" * 64)
        services.create_backup()
        detail = failed_checks(services.run_restore_test())["attachment rows"]
        assert detail == "1 of 3 attachment rows do not match their file's sha256 (ab/one.png)"

    def test_a_missing_manifest_fails(self, archive, folders):
        name = services.create_backup()["backup"]
        (folders.BACKUPS_PATH / name / "manifest.json").unlink()
        report = services.run_restore_test(name)
        assert "has no manifest" in failed_checks(report)["manifest"]

    def test_a_manifest_with_an_escaping_path_is_not_trusted(self, archive, folders):
        name = services.create_backup()["backup"]
        rewrite_manifest(folders, name, lambda d: d["attachments"]["files"].update(
            {"../../etc/passwd": {"sha256": "0" * 64, "size": 1}}))
        report = services.run_restore_test(name)
        assert "unsafe file path" in failed_checks(report)["attachments"]

    def test_partial_folders_are_ignored(self, archive, folders):
        name = services.create_backup()["backup"]
        (folders.BACKUPS_PATH / "29990101T000000Z.partial").mkdir()
        assert services.run_restore_test().name == name

    def test_with_no_backups_it_says_so(self, folders):
        report = services.run_restore_test()
        assert not report.ok
        assert "There are no backups" in failed_checks(report)["backup"]

    def test_an_unknown_backup_name_is_refused(self, archive, folders):
        assert "not a backup name" in failed_checks(services.run_restore_test("../etc"))["backup"]
        assert "no backup named" in failed_checks(services.run_restore_test("20200101T000000Z"))["backup"]

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="MySQL restores into a scratch database, not a file")
    def test_no_room_for_the_scratch_copy_fails_with_the_reason(self, archive, folders, tiny_disk):
        MessageFactory.create_batch(50, body_text="x" * 2000)  # a database bigger than the tiny disk
        services.create_backup()
        folders.DATA_DIR = tiny_disk
        detail = failed_checks(services.run_restore_test())["restore"]
        assert detail.startswith(f"The disk holding {tiny_disk}/") and detail.endswith(" is full; nothing was replaced.")
        assert list(tiny_disk.iterdir()) == []

    def test_a_backup_from_a_newer_schema_fails_the_schema_check(self, archive, folders):
        name = services.create_backup()["backup"]
        rewrite_manifest(folders, name, lambda d: d["database"]["applied"].append("inbox.9999_from_the_future"))
        assert "inbox.9999_from_the_future" in failed_checks(services.run_restore_test())["schema"]


class TestRestore:
    def test_a_real_restore_brings_back_exactly_the_rows_and_files(self, archive, folders):
        rows_before = list(Message.objects.order_by("pk").values())
        attachments_before = list(Attachment.objects.order_by("pk").values())
        files_before = files_of(folders.ATTACHMENTS_PATH)
        name = services.create_backup()["backup"]
        counts_before = table_counts()
        # Afterwards: new rows, changed and deleted rows, new, changed and deleted files.
        MessageFactory.create_batch(3)
        Message.objects.filter(pk=archive[0].pk).update(body_text="edited later")
        Attachment.objects.filter(storage_key="cd/three.jpg").delete()
        (folders.ATTACHMENTS_PATH / "ab" / "one.png").write_bytes(b"overwritten")
        (folders.ATTACHMENTS_PATH / "cd" / "three.jpg").unlink()
        write_attachment(folders.ATTACHMENTS_PATH, "zz/late.png", b"late")

        result = services.restore_backup(name, yes=True)

        assert list(Message.objects.order_by("pk").values()) == rows_before
        assert list(Attachment.objects.order_by("pk").values()) == attachments_before
        assert files_of(folders.ATTACHMENTS_PATH) == files_before
        # The backup's own audit row (written after its dump) is gone; the restore's is new.
        assert table_counts() == counts_before
        assert result["files_removed"] == 1 and result["files_written"] == 2
        assert result["safety_backup"] in backup_dirs(folders.BACKUPS_PATH)
        assert AuditLog.objects.filter(action_type="maintenance.restore", result="ok").count() == 1

    def test_a_lost_attachments_disk_is_restored_in_full(self, archive, folders):
        files = files_of(folders.ATTACHMENTS_PATH)
        name = services.create_backup()["backup"]
        shutil.rmtree(folders.ATTACHMENTS_PATH)
        folders.ATTACHMENTS_PATH.mkdir()
        result = services.restore_backup(name, yes=True)
        assert files_of(folders.ATTACHMENTS_PATH) == files and result["files_written"] == 3

    def test_the_safety_backup_holds_the_data_that_was_replaced(self, archive, folders):
        name = services.create_backup()["backup"]
        late = MessageFactory(body_text="written after the backup")
        result = services.restore_backup(name, yes=True)
        assert not Message.objects.filter(pk=late.pk).exists()
        services.restore_backup(result["safety_backup"], yes=True)
        assert Message.objects.get(pk=late.pk).body_text == "written after the backup"

    def test_it_refuses_without_yes(self, archive, folders):
        name = services.create_backup()["backup"]
        with pytest.raises(RestoreRefused, match="without --yes"):
            services.restore_backup(name, yes=False)

    def test_it_refuses_while_workers_are_busy_unless_forced(self, archive, folders):
        name = services.create_backup()["backup"]
        JobFactory(status=Job.Status.RUNNING, job_type="ingest.sync_delta")
        late = MessageFactory()
        with pytest.raises(RestoreRefused, match=r"1 job\(s\) are running \(ingest.sync_delta\)"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert backup_dirs(folders.BACKUPS_PATH) == [name]  # not even a safety backup
        services.restore_backup(name, yes=True, force=True)
        assert not Message.objects.filter(pk=late.pk).exists()

    def test_a_long_stale_running_job_does_not_block_and_is_marked_interrupted(self, archive, folders):
        stale = JobFactory(status=Job.Status.RUNNING)
        Job.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=2))
        name = services.create_backup()["backup"]
        result = services.restore_backup(name, yes=True)
        stale.refresh_from_db()
        assert stale.status == Job.Status.FAILED and "restored from backup" in stale.last_error
        assert result["jobs_interrupted"] == 1

    def test_a_backup_from_a_newer_schema_is_refused_and_nothing_is_overwritten(self, archive, folders):
        name = services.create_backup()["backup"]
        rewrite_manifest(folders, name, lambda d: d["database"]["applied"].append("rediska.0999_future"))
        late = MessageFactory()
        files = files_of(folders.ATTACHMENTS_PATH)
        with pytest.raises(RestoreRefused, match=r"newer schema .*rediska.0999_future"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert files_of(folders.ATTACHMENTS_PATH) == files

    def test_a_damaged_backup_is_refused_before_anything_is_replaced(self, archive, folders):
        name = services.create_backup()["backup"]
        (folders.BACKUPS_PATH / name / "attachments" / "ab" / "two.png").write_bytes(b"x")
        late = MessageFactory()
        with pytest.raises(RestoreRefused, match=r"failed its checks \(attachments: ab/two.png"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()

    def test_no_room_for_the_safety_backup_refuses_and_nothing_is_overwritten(self, archive, folders):
        name = services.create_backup()["backup"]
        late = MessageFactory()
        files = files_of(folders.ATTACHMENTS_PATH)
        folders.BACKUP_MAX_BYTES = 2000
        with pytest.raises(BackupSpaceError, match="BACKUP_MAX_BYTES"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert files_of(folders.ATTACHMENTS_PATH) == files
        assert backup_dirs(folders.BACKUPS_PATH) == [name]

    def test_no_room_for_the_attachments_refuses_before_the_database_is_replaced(self, archive, folders,
                                                                                  monkeypatch):
        name = services.create_backup()["backup"]
        (folders.ATTACHMENTS_PATH / "cd" / "three.jpg").unlink()
        late = MessageFactory()
        real = shutil.disk_usage

        def nearly_full(path):
            usage = real(path)
            if str(path).startswith(str(folders.ATTACHMENTS_PATH)):
                return usage._replace(free=4999)
            return usage

        monkeypatch.setattr(shutil, "disk_usage", nearly_full)
        with pytest.raises(BackupSpaceError, match=r"needs 5000 bytes .* has 4999 free; nothing was restored"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert not (folders.ATTACHMENTS_PATH / "cd" / "three.jpg").exists()

    def test_attachments_that_do_not_fit_a_real_disk_are_refused_before_the_database_is_replaced(
            self, archive, folders, tiny_disk):
        (folders.ATTACHMENTS_PATH / "big.bin").write_bytes(os.urandom(100_000))
        name = services.create_backup()["backup"]
        folders.ATTACHMENTS_PATH = tiny_disk
        late = MessageFactory()
        with pytest.raises(BackupSpaceError, match=r"needs 107400 bytes but the disk holding .* has \d+ free"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert list(tiny_disk.iterdir()) == []

    def test_an_attachments_only_restore_brings_back_files_and_keeps_newer_ones(self, archive, folders):
        name = services.create_backup(database=False)["backup"]
        (folders.ATTACHMENTS_PATH / "ab" / "one.png").unlink()
        write_attachment(folders.ATTACHMENTS_PATH, "zz/newer.png", b"newer")
        late = MessageFactory()
        result = services.restore_backup(name, yes=True)
        assert (folders.ATTACHMENTS_PATH / "ab" / "one.png").exists()
        assert (folders.ATTACHMENTS_PATH / "zz" / "newer.png").exists()
        assert Message.objects.filter(pk=late.pk).exists()
        assert result["files_written"] == 1 and result["files_removed"] == 0


@mysql_only
class TestMysqlOnly:
    def test_no_mysqldump_on_path_refuses_and_leaves_no_partial_backup(self, archive, folders, no_mysql_clients):
        with pytest.raises(BackupError, match="mysqldump was not found on PATH"):
            services.create_backup()
        assert backup_dirs(folders.BACKUPS_PATH) == []

    def test_no_mysqldump_on_path_refuses_a_restore_before_anything_is_replaced(self, archive, folders,
                                                                                 monkeypatch, tmp_path):
        name = services.create_backup()["backup"]
        late = MessageFactory()
        monkeypatch.setenv("PATH", str(tmp_path))  # no client tools there
        with pytest.raises(BackupError, match="mysqldump was not found on PATH"):
            services.restore_backup(name, yes=True)
        assert Message.objects.filter(pk=late.pk).exists()
        assert backup_dirs(folders.BACKUPS_PATH) == [name]

    def test_no_mysql_client_fails_the_restore_test_with_the_reason(self, archive, folders, monkeypatch, tmp_path):
        services.create_backup()
        monkeypatch.setenv("PATH", str(tmp_path))  # no client tools there
        assert "mysql was not found on PATH" in failed_checks(services.run_restore_test())["restore"]

    def test_the_restore_test_database_is_dropped_afterwards(self, archive, folders):
        services.create_backup()
        report = services.run_restore_test()
        assert report.ok and "_restoretest_" in next(c.detail for c in report.checks if c.name == "restore")
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", [connection.settings_dict["NAME"].replace("_", "\\_") + "\\_%"])
            assert cursor.fetchall() == ()
