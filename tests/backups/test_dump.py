import os
import stat

import pytest
from django.db import connection

from rediska.backups import dump
from rediska.backups.errors import BackupError
from rediska.backups.files import Budget
from tests.backups.conftest import mysql_only


def count(text: bytes) -> dict[str, int]:
    counter = dump.RowCounter()
    for line in text.splitlines(keepends=True):
        counter.feed(line)
    return counter.tables


class TestRowCounter:
    def test_it_counts_single_line_inserts_as_mysql_writes_them(self):
        assert count(b"CREATE TABLE `a` (\n  `id` int\n);\nINSERT INTO `a` VALUES (1,'x'),(2,'y'),(3,NULL);\n") == {"a": 3}

    def test_it_counts_one_row_per_line_inserts_as_mariadb_writes_them(self):
        assert count(b"INSERT INTO `a` VALUES\n(1,'x'),\n(2,'y');\nINSERT INTO `b` VALUES\n(1,0x00FF);\n") == {"a": 2, "b": 1}

    def test_separators_inside_strings_are_not_rows(self):
        text = b"INSERT INTO `m` VALUES (1,'it\\'s a \\'),(\\' trap'),(2,'back\\\\'),(3,'),(');\n"
        assert count(text) == {"m": 3}

    def test_empty_tables_are_counted_as_zero(self):
        assert count(b"CREATE TABLE `empty` (\n  `id` int\n);\n") == {"empty": 0}

    def test_it_remembers_the_last_line_to_spot_a_truncated_dump(self):
        counter = dump.RowCounter()
        counter.feed(b"INSERT INTO `a` VALUES (1);\n")
        counter.feed(b"-- Dump completed on 2026-01-09  3:00:00\n")
        counter.feed(b"\n")
        assert counter.last_line.startswith(dump.DUMP_COMPLETE)


class TestDefaultsFile:
    def test_the_password_goes_to_a_private_file_that_is_removed_afterwards(self, monkeypatch):
        monkeypatch.setitem(connection.settings_dict, "USER", "rediska")
        monkeypatch.setitem(connection.settings_dict, "PASSWORD", 'pa"ss#w\\ord x')
        monkeypatch.setitem(connection.settings_dict, "HOST", "db.example")
        monkeypatch.setitem(connection.settings_dict, "PORT", "3307")
        with dump.defaults_file() as path:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            text = open(path).read()
        assert not os.path.exists(path)
        assert 'password="pa\\"ss#w\\\\ord x"' in text
        assert "host=\"db.example\"" in text and "port=3307" in text and "protocol=TCP" in text

    def test_my_print_defaults_reads_the_password_back_exactly(self, monkeypatch):
        import shutil
        import subprocess

        tool = shutil.which("my_print_defaults")
        if not tool:
            pytest.skip("my_print_defaults is not installed")
        monkeypatch.setitem(connection.settings_dict, "PASSWORD", 'pa"ss#w\\ord x\'y')
        with dump.defaults_file() as path:
            out = subprocess.run([tool, f"--defaults-file={path}", "client"], capture_output=True, text=True).stdout
        assert "--password=pa\"ss#w\\ord x'y" in out.splitlines()


class TestMysqldump:
    def test_the_password_is_never_on_the_command_line_or_in_the_error(self, tmp_path, fake_client_bin, monkeypatch):
        record = tmp_path / "argv.txt"
        script = fake_client_bin / "mysqldump"
        # A stand-in mysqldump: records its arguments and the option file, then fails.
        script.write_text(f"#!/bin/sh\necho \"$@\" > {record}\n"
                          f"cat \"$(echo \"$1\" | sed 's/--defaults-extra-file=//')\" >> {record}\n"
                          "echo 'mysqldump: Got error: 1045: Access denied' >&2\nexit 2\n")
        script.chmod(0o755)
        monkeypatch.setitem(connection.settings_dict, "PASSWORD", "s3cret-value")
        monkeypatch.setitem(connection.settings_dict, "NAME", "rediska")
        with pytest.raises(BackupError) as caught:
            dump.dump_mysql(tmp_path, Budget())
        argv, *option_file = record.read_text().splitlines()
        assert "s3cret-value" not in argv
        assert argv.split()[0].startswith("--defaults-extra-file=")
        assert {"--single-transaction", "--routines", "--triggers", "--hex-blob"} <= set(argv.split())
        assert 'password="s3cret-value"' in option_file
        assert caught.value.user_message == "mysqldump failed: mysqldump: Got error: 1045: Access denied"
        assert "s3cret" not in str(caught.value)

    def test_a_dump_that_stops_early_is_refused(self, tmp_path, fake_client_bin):
        script = fake_client_bin / "mysqldump"
        script.write_text("#!/bin/sh\necho 'CREATE TABLE `a` ('\necho 'INSERT INTO `a` VALUES (1);'\nexit 0\n")
        script.chmod(0o755)
        with pytest.raises(BackupError, match="incomplete"):
            dump.dump_mysql(tmp_path, Budget())

    def test_no_mysqldump_on_path_is_a_clear_refusal(self, tmp_path, no_mysql_clients):
        with pytest.raises(BackupError, match="mysqldump was not found on PATH"):
            dump.dump_mysql(tmp_path, Budget())
        assert list(tmp_path.glob("*.gz")) == []


@mysql_only
@pytest.mark.django_db(transaction=True)
class TestMysqlScratch:
    def test_the_scratch_database_is_dropped_even_when_loading_fails(self, tmp_path):
        import gzip

        bad = tmp_path / "bad.sql.gz"
        bad.write_bytes(gzip.compress(b"CREATE TABLE broken (;\n"))
        with pytest.raises(BackupError, match="Loading the dump failed: ERROR"):
            with dump.mysql_scratch("restoretest") as scratch:
                dump.load_mysql(bad, scratch)
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", [scratch.replace("_", "\\_")])
            assert cursor.fetchall() == ()
