"""The cron wrappers, run as cron would: a fresh process, its own SQLite data folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SCRIPTS = ROOT / "scripts" / "local_backup"


@pytest.fixture(scope="module")
def cron_env(tmp_path_factory):
    data = tmp_path_factory.mktemp("cron-data")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MYSQL_", "REDIS_", "CELERY_", "DJANGO_SETTINGS"))}
    env.update(DATA_DIR=str(data), BACKUPS_PATH=str(data / "backups"), PY=sys.executable, LOG_LEVEL="ERROR",
               CELERY_BROKER_URL="memory://", CELERY_RESULT_BACKEND="cache+memory://")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    (data / "attachments" / "x").mkdir(parents=True, exist_ok=True)
    (data / "attachments" / "x" / "a.png").write_bytes(b"png bytes")
    return env, data


def run(script: str, env, *args):
    return subprocess.run([str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=120)


def test_backup_sh_refuses_a_missing_backups_path_with_one_line(cron_env):
    env, data = cron_env
    result = run("backup.sh", env)
    assert result.returncode == 1
    # Log lines (the job ledger's) may precede it; the command's own answer is one line.
    assert result.stderr.strip().splitlines()[-1] == (
        f"CommandError: BACKUPS_PATH {data / 'backups'} does not exist: create it (or mount the backup disk there) first."
    )


def test_backup_sh_then_restore_test_sh_pass(cron_env):
    env, data = cron_env
    (data / "backups").mkdir(exist_ok=True)
    backup = run("backup.sh", env)
    assert backup.returncode == 0, backup.stderr
    assert "1 files" in backup.stdout
    test = run("restore_test.sh", env)
    assert test.returncode == 0, test.stderr
    assert "[ok] attachments: 1 files" in test.stdout and "passed." in test.stdout


def test_restore_test_sh_exits_non_zero_when_a_file_is_damaged(cron_env):
    env, data = cron_env
    (data / "backups").mkdir(exist_ok=True)
    assert run("backup.sh", env).returncode == 0
    newest = sorted(p for p in (data / "backups").iterdir() if p.is_dir())[-1]
    (newest / "attachments" / "x" / "a.png").write_bytes(b"png")
    result = run("restore_test.sh", env)
    assert result.returncode == 1
    assert "x/a.png has 3 bytes, expected 9" in result.stderr


def test_backup_sh_honours_a_size_limit_from_the_environment_and_keeps_earlier_backups(cron_env):
    env, data = cron_env
    (data / "backups").mkdir(exist_ok=True)
    assert run("backup.sh", env).returncode == 0
    before = sorted(p.name for p in (data / "backups").iterdir())
    result = run("backup.sh", {**env, "BACKUP_MAX_BYTES": "500"})
    assert result.returncode == 1
    assert "needs more than the 500 bytes allowed (BACKUP_MAX_BYTES)" in result.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in (data / "backups").iterdir()) == before


def test_backup_sh_names_an_unknown_backup_target(cron_env):
    env, data = cron_env
    result = run("backup.sh", {**env, "BACKUP_TARGET": "nas"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "CommandError: BACKUP_TARGET 'nas' is not known (choose from: local)."
