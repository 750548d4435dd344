"""Settings are typed: bad values stop the app with one clear line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "REDIS_"))}
    full.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "rediska.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE']); print(settings.CELERY_BROKER_URL)"],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=60,
    )


def test_defaults_need_no_servers_and_generate_0600_keys(tmp_path):
    result = _load_settings(tmp_path, CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout
    for name in ("secret_key", "credentials.key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "attachments").is_dir()


def test_generated_keys_are_stable_across_starts(tmp_path):
    _load_settings(tmp_path)
    first = (tmp_path / "credentials.key").read_text()
    _load_settings(tmp_path)
    assert (tmp_path / "credentials.key").read_text() == first


@pytest.mark.parametrize(
    "env,message",
    [
        ({"ENCRYPTION_KEY": "too-short"}, "ENCRYPTION_KEY must be 32 bytes"),
        ({"MYSQL_URL": "postgres://x@y/z"}, "MYSQL_URL must look like mysql://"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL must look like redis://"),
        ({"EMBEDDINGS_DIMS": "lots"}, "EMBEDDINGS_DIMS must be an integer"),
        ({"PROVIDER_RATE_BURST_FACTOR": "-1"}, "PROVIDER_RATE_BURST_FACTOR must be > 0"),
        ({"JOBS_HEARTBEAT_TIMEOUT": "0"}, "JOBS_HEARTBEAT_TIMEOUT must be > 0"),
        ({"JOBS_HEARTBEAT_TIMEOUT": "two minutes"}, "JOBS_HEARTBEAT_TIMEOUT must be a number"),
    ],
)
def test_bad_values_raise_improperly_configured(tmp_path, env, message):
    result = _load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def _broker_settings(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "REDIS_", "CELERY_"))}
    full.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "rediska.settings", **env})
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({"
            "'acks_late': s.CELERY_TASK_ACKS_LATE, 'reject': s.CELERY_TASK_REJECT_ON_WORKER_LOST, "
            "'prefetch': s.CELERY_WORKER_PREFETCH_MULTIPLIER, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, "
            "'heartbeat': s.JOBS_HEARTBEAT_TIMEOUT}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("env", [{}, {"REDIS_URL": "redis://127.0.0.1:6379/2"}], ids=["filesystem", "redis"])
def test_both_brokers_run_long_jobs_with_late_acks_and_one_message_at_a_time(tmp_path, env):
    from rediska.jobs import BACKOFF_CAP_SECONDS

    found = _broker_settings(tmp_path, **env)
    assert (found["acks_late"], found["reject"], found["prefetch"], found["heartbeat"]) == (True, True, 1, 120.0)
    if env:
        # Past the longest retry countdown, so a waiting retry is not delivered twice.
        assert found["options"]["visibility_timeout"] > BACKOFF_CAP_SECONDS
    else:
        assert "visibility_timeout" not in found["options"]  # no redelivery there: the reaper resends
