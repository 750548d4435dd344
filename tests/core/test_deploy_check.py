"""`manage.py check --deploy` with the environment docker-compose.yml gives the app: no warnings at all."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match[1]] = match[2]
    return values


def compose_app_environment(data_dir: Path) -> dict[str, str]:
    """The app containers' environment as compose resolves it from a .env copied from .env.example."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dotenv = _env_example()

    def resolve(value) -> str:
        return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: dotenv.get(m[1]) or m[2] or "", str(value))

    env = {key: resolve(value) for key, value in compose["x-app-environment"].items()}
    # The host folders mounted into the containers; the data volume.
    env.update(DATA_DIR=str(data_dir), ATTACHMENTS_PATH=str(data_dir / "attachments"),
               BACKUPS_PATH=str(data_dir / "backups"))
    if importlib.util.find_spec("MySQLdb") is None:
        env.pop("MYSQL_URL")  # the SQLite run has no MySQL driver; the deploy checks never touch the database
    return env


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "REDISKA_IGNORE_DOTENV": "1",
            "DJANGO_SETTINGS_MODULE": "rediska.settings"}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", *args], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_the_compose_settings_pass_the_deploy_check_without_a_single_warning(tmp_path):
    env = compose_app_environment(tmp_path)
    assert env["SECURE_COOKIES"] == "true" and env.get("DEBUG", "false") != "true"
    done = _check(env, "--fail-level", "WARNING")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (3 silenced)." in done.stdout + done.stderr


def test_only_checks_nginx_owns_are_silenced_each_with_its_reason():
    assert set(settings.SILENCED_SYSTEM_CHECKS) == {"security.W005", "security.W008", "security.W021"}
    source = (ROOT / "rediska" / "settings.py").read_text()
    block = source[source.index("SILENCED_SYSTEM_CHECKS"):]
    lines = [line.strip() for line in block[:block.index("]")].splitlines()]
    for check in settings.SILENCED_SYSTEM_CHECKS:
        # The comment just above the entry (or above the group of entries it belongs to).
        above = lines[:lines.index(f'"{check}",')]
        while above and above[-1].startswith('"'):
            above.pop()
        reason = []
        while above and above[-1].startswith("#"):
            reason.insert(0, above.pop())
        assert "nginx" in " ".join(reason), check  # each silence says why nginx owns it
    nginx = (ROOT / "nginx" / "rediska.conf").read_text()
    assert "return 301 https://$host$request_uri;" in nginx  # what W008 leaves to nginx
    assert 'Strict-Transport-Security "max-age=31536000" always' in nginx  # what W005/W021 leave to nginx


@pytest.mark.parametrize("unset", ["SECURE_COOKIES", "DJANGO_SECRET_KEY"])
def test_the_deploy_check_still_warns_about_what_the_app_owns(tmp_path, unset):
    env = compose_app_environment(tmp_path)
    if unset == "SECURE_COOKIES":
        env["SECURE_COOKIES"] = "false"
        expected = ["security.W012", "security.W016", "security.W004"]
    else:
        env["DJANGO_SECRET_KEY"] = "short"
        expected = ["security.W009"]
    done = _check(env, "--fail-level", "WARNING")
    assert done.returncode != 0
    for code in expected:
        assert code in done.stderr, code
