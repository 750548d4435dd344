"""The deployment files, checked by parsing them (no Docker engine runs here)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection

from tests.backups.conftest import mysql_only

ROOT = Path(settings.BASE_DIR)
SPEC_APP_ENV = {
    "MYSQL_URL", "REDIS_URL", "ELASTIC_URL", "ATTACHMENTS_PATH", "BACKUPS_PATH",
    "INFERENCE_URL", "INFERENCE_MODEL", "INFERENCE_API_KEY", "EMBEDDINGS_URL", "EMBEDDINGS_MODEL",
    "EMBEDDINGS_API_KEY", "PROVIDER_REDDIT_ENABLED", "PROVIDER_REDDIT_CLIENT_ID", "PROVIDER_REDDIT_CLIENT_SECRET",
    "PROVIDER_REDDIT_REDIRECT_URI", "PROVIDER_REDDIT_USER_AGENT", "PROVIDER_RATE_QPM_DEFAULT",
    "PROVIDER_RATE_CONCURRENCY_DEFAULT", "PROVIDER_RATE_BURST_FACTOR", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
}


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_spec_services_with_rediska_container_names():
    services = compose()["services"]
    assert {"rediska-nginx", "rediska-web", "rediska-worker", "rediska-beat", "rediska-mysql", "rediska-redis",
            "rediska-elasticsearch"} <= set(services)
    for name, service in services.items():
        assert service["container_name"] == name


def test_compose_images_match_the_spec_versions():
    services = compose()["services"]
    assert services["rediska-mysql"]["image"] == "mysql:8.4"
    assert services["rediska-redis"]["image"].startswith("redis:7")
    assert services["rediska-elasticsearch"]["image"].endswith("elasticsearch:8.14.3")
    assert services["rediska-nginx"]["image"].startswith("nginx:")


def test_every_long_running_service_but_beat_has_a_healthcheck():
    for name, service in compose()["services"].items():
        if name not in ("rediska-beat", "rediska-migrate"):
            assert service["healthcheck"]["test"], name
    web = compose()["services"]["rediska-web"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_app_services_get_the_spec_environment_and_share_one_image():
    services = compose()["services"]
    for name in ("rediska-web", "rediska-worker", "rediska-beat", "rediska-migrate"):
        service = services[name]
        assert SPEC_APP_ENV <= set(service["environment"]), name
        assert service["image"] == "rediska-app" and service["build"] == "."
        mounts = " ".join(service["volumes"])
        assert "${ATTACHMENTS_PATH}:${ATTACHMENTS_PATH}" in mounts and "${BACKUPS_PATH}:${BACKUPS_PATH}" in mounts


def test_web_runs_gunicorn_worker_and_beat_run_celery_after_migrations():
    services = compose()["services"]
    assert services["rediska-web"]["command"][0] == "gunicorn"
    assert services["rediska-worker"]["command"][:4] == ["celery", "-A", "rediska", "worker"]
    assert services["rediska-beat"]["command"][:4] == ["celery", "-A", "rediska", "beat"]
    for name in ("rediska-web", "rediska-worker", "rediska-beat"):
        depends = services[name]["depends_on"]
        assert depends["rediska-migrate"]["condition"] == "service_completed_successfully"
        assert depends["rediska-mysql"]["condition"] == "service_healthy"
    assert "migrate --noinput" in " ".join(services["rediska-migrate"]["command"])


def test_only_nginx_publishes_ports():
    for name, service in compose()["services"].items():
        assert ("ports" in service) == (name == "rediska-nginx"), name


def test_every_variable_compose_reads_is_in_env_example():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used <= documented, used - documented


def test_nginx_has_the_spec_headers_and_passes_the_request_id():
    conf = (ROOT / "nginx" / "rediska.conf").read_text()
    for line in ("return 301 https://$host$request_uri;", "ssl_protocols TLSv1.2 TLSv1.3;",
                 'add_header Strict-Transport-Security "max-age=31536000" always;',
                 "add_header X-Content-Type-Options nosniff always;", "add_header X-Frame-Options DENY always;",
                 "add_header Referrer-Policy same-origin always;", "client_max_body_size 12m;",
                 "proxy_pass http://rediska-web:8000;", "proxy_set_header X-Forwarded-Proto https;",
                 "proxy_set_header X-Request-ID $request_id;"):
        assert line in conf, line


def test_the_image_installs_the_mysql_extra_and_the_client_tools():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert '".[mysql]"' in dockerfile and "default-mysql-client" in dockerfile
    assert "USER rediska" in dockerfile


def test_mysql_lets_the_app_user_create_the_scratch_databases():
    volumes = compose()["services"]["rediska-mysql"]["volumes"]
    assert "./mysql-init:/docker-entrypoint-initdb.d:ro" in volumes
    assert os.access(ROOT / "mysql-init" / "grant-scratch-databases.sh", os.X_OK)


@mysql_only
def test_the_grant_script_allows_exactly_the_scratch_databases():
    db = connection.settings_dict
    env = {**os.environ, "MYSQL_HOST": db["HOST"] or "127.0.0.1", "MYSQL_TCP_PORT": str(db["PORT"] or 3306),
           "MYSQL_DATABASE": "rediska_f_grant", "MYSQL_USER": "rediska_f_grant", "MYSQL_ROOT_PASSWORD": ""}

    def as_root(sql):
        return subprocess.run(["mysql", "--protocol=tcp", "-uroot", "-e", sql], env=env, capture_output=True, text=True)

    if as_root("SELECT 1").returncode != 0:
        pytest.skip("needs the MySQL root user without a password (as in CI)")
    assert as_root("DROP USER IF EXISTS 'rediska_f_grant'@'%'; "
                   "CREATE USER 'rediska_f_grant'@'%' IDENTIFIED BY 'pw-f'").returncode == 0
    try:
        script = subprocess.run([str(ROOT / "mysql-init" / "grant-scratch-databases.sh")], env=env,
                                capture_output=True, text=True)
        assert script.returncode == 0, script.stderr

        def as_app(sql):
            return subprocess.run(["mysql", "--protocol=tcp", "-urediska_f_grant", "-ppw-f", "-e", sql],
                                  env=env, capture_output=True, text=True)

        scratch = "rediska_f_grant_restoretest_0a1b2c3d"
        assert as_app(f"CREATE DATABASE {scratch}; DROP DATABASE {scratch}").returncode == 0
        assert "Access denied" in as_app("CREATE DATABASE rediskaXf_grant_x").stderr
    finally:
        as_root("DROP USER IF EXISTS 'rediska_f_grant'@'%'")


def test_secrets_on_the_host_stay_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "nginx/certs", "var", ".git"} <= ignored
