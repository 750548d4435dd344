"""The deployment's front, checked on this machine without Docker.

- `nginx -t` against nginx/rediska.conf, with stand-in upstreams and ports;
- Debian's nginx actually serving the app over TLS (a self-signed certificate
  made here with openssl, gunicorn behind it on loopback ports): login works,
  cookies are Secure, the spec §4 headers are there once each, HTTP redirects to HTTPS;
- docker-compose.yml: `docker compose config` where the plugin exists, and a
  structural check of the file either way.

Everything listens on free high ports of 127.0.0.1.  Without nginx these are
skipped, unless REQUIRE_NGINX=1 (what .ci/run sets after installing it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from django.conf import settings

from .appstack import new_data_dir, wait_for

ROOT = Path(settings.BASE_DIR)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
ADMIN_PASSWORD = "nginx correct horse battery"

needs_nginx = pytest.mark.skipif(
    NGINX is None and os.environ.get("REQUIRE_NGINX") != "1",
    reason="nginx is not installed (apt-get install nginx-light; .ci/run does)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nginx_version() -> tuple[int, ...]:
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr
    return tuple(int(n) for n in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out).groups())


def make_certificate(folder: Path) -> tuple[Path, Path]:
    crt, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=rediska.local", "-addext", "subjectAltName=DNS:rediska.local,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True, timeout=60)
    return crt, key


def stand_in_config(folder: Path, *, http_port: int, https_port: int, upstream: str) -> Path:
    """nginx/rediska.conf as shipped, with only its ports, certificate paths and upstream replaced."""
    conf = (ROOT / "nginx" / "rediska.conf").read_text()
    crt, key = make_certificate(folder)
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/nginx/certs/tls.crt": str(crt),
        "/etc/nginx/certs/tls.key": str(key),
        "http://rediska-web:8000": f"http://{upstream}",
    }
    for old, new in replacements.items():
        assert old in conf, f"nginx/rediska.conf no longer has {old!r}: update this test"
        conf = conf.replace(old, new)
    if _nginx_version() < (1, 25, 1):
        # The image runs nginx 1.27 (`http2 on;`); Debian 12's 1.22 spells it on the listen line.
        conf = conf.replace("  http2 on;\n", "").replace(f"{https_port} ssl;", f"{https_port} ssl http2;")
    (folder / "rediska.conf").write_text(conf)
    main = folder / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # the workers read this private temp folder
    main.write_text(
        f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"  access_log {folder}/access.log;\n"
        f"  client_body_temp_path {folder}/body;\n  proxy_temp_path {folder}/proxy;\n"
        f"  fastcgi_temp_path {folder}/fastcgi;\n  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n"
        f"  include {folder}/rediska.conf;\n"
        "}\n")
    return main


@needs_nginx
def test_the_shipped_nginx_config_passes_nginx_t(tmp_path):
    main = stand_in_config(tmp_path, http_port=_free_port(), https_port=_free_port(), upstream="127.0.0.1:9")
    done = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


@pytest.fixture(scope="module")
def tls_stack():
    folder = new_data_dir("nginx")
    data = folder / "data"
    web_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "REDISKA_IGNORE_DOTENV": "1",
        "DJANGO_SETTINGS_MODULE": "rediska.settings", "DATA_DIR": str(data), "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING", "REDISKA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # The compose settings (docker-compose.yml): TLS at nginx, Secure cookies.
        "SECURE_COOKIES": "true", "ALLOWED_HOSTS": "rediska.local",
        # Deployed on 443 the origin is https://rediska.local; here nginx listens on a high port.
        "CSRF_TRUSTED_ORIGINS": f"https://rediska.local:{https_port}",
    }
    processes = []
    try:
        for args in (["migrate", "--noinput"], ["createadmin", "--username", "admin"]):
            subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                           timeout=300)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "rediska.wsgi:application", "--bind", f"127.0.0.1:{web_port}",
             "--workers", "1", "--access-logfile", "-"], cwd=ROOT, env=env, start_new_session=True,
            stdout=open(folder / "gunicorn.log", "ab"), stderr=subprocess.STDOUT))
        main = stand_in_config(folder, http_port=http_port, https_port=https_port, upstream=f"127.0.0.1:{web_port}")
        processes.append(subprocess.Popen([NGINX, "-p", str(folder), "-c", str(main), "-g", "daemon off;"],
                                          start_new_session=True, stdout=open(folder / "nginx.out", "ab"),
                                          stderr=subprocess.STDOUT))
        client = httpx.Client(verify=ssl.create_default_context(cafile=str(folder / "tls.crt")), headers={"Host": "rediska.local"}, timeout=10)

        def up():
            try:
                return client.get(f"https://127.0.0.1:{https_port}/login/").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="nginx and gunicorn")
        yield client, http_port, https_port
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@needs_nginx
def test_plain_http_is_redirected_to_https(tls_stack):
    client, http_port, _ = tls_stack
    answer = client.get(f"http://127.0.0.1:{http_port}/inbox/?page=2")
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://rediska.local/inbox/?page=2"


@needs_nginx
def test_every_https_answer_has_the_spec_headers_once(tls_stack):
    client, _, https_port = tls_stack
    for path in ("/login/", "/static/css/app.css", "/no-such-page/"):
        answer = client.get(f"https://127.0.0.1:{https_port}{path}")
        headers = answer.headers
        assert headers.get_list("strict-transport-security") == ["max-age=31536000"], path
        assert headers.get_list("x-content-type-options") == ["nosniff"], path
        assert headers.get_list("x-frame-options") == ["DENY"], path
        assert headers.get_list("referrer-policy") == ["same-origin"], path
        assert headers["x-request-id"], path  # nginx's $request_id, kept by the app
    assert "script-src 'self'" in client.get(f"https://127.0.0.1:{https_port}/login/").headers[
        "content-security-policy"]


@needs_nginx
def test_login_over_tls_works_and_every_cookie_is_secure(tls_stack):
    client, _, https_port = tls_stack
    base = f"https://127.0.0.1:{https_port}"
    form = client.get(f"{base}/login/")
    csrf_cookie = form.headers["set-cookie"]
    assert "csrftoken=" in csrf_cookie and "; Secure" in csrf_cookie
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    answer = client.post(f"{base}/login/", data={"username": "admin", "password": ADMIN_PASSWORD,
                                                 "csrfmiddlewaretoken": token},
                         headers={"Referer": f"https://rediska.local:{https_port}/login/",
                                  "Origin": f"https://rediska.local:{https_port}"})
    assert answer.status_code == 302, answer.text[:500]
    cookies = answer.headers.get_list("set-cookie")
    session = [c for c in cookies if c.startswith("sessionid=")]
    assert session and "; Secure" in session[0] and "; HttpOnly" in session[0]
    assert all("; Secure" in cookie for cookie in cookies)
    home = client.get(f"{base}{answer.headers['location']}", follow_redirects=True)
    assert home.status_code == 200
    assert 'action="/logout/"' in home.text or "Log out" in home.text


# --- docker-compose.yml -------------------------------------------------------------------------------------------
def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("no `docker compose` plugin on this machine (the structural test below still runs)")
    done = subprocess.run([docker, "compose", "--env-file", ".env.example", "config", "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_compose_file_holds_together():
    compose = _compose()
    services = compose["services"]
    volumes, networks = set(compose["volumes"]), set(compose["networks"])
    dotenv = {m[1] for m in re.finditer(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for network in service.get("networks", []):
            assert network in networks, (name, network)
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith(("/", ".", "$")):
                assert source in volumes, (name, source)
        if name != "rediska-nginx":
            assert "ports" not in service, f"{name} must stay on the internal network"
    # Every ${VAR} without a default is in .env.example, so a copied .env configures all of it.
    text = (ROOT / "docker-compose.yml").read_text()
    for var in set(re.findall(r"\$\{(\w+)\}", text)):
        assert var in dotenv, var
    # Stops: docker sends SIGTERM, then SIGKILL after the grace; a killed job resumes (heartbeat).
    assert "--graceful-timeout" in " ".join(services["rediska-web"]["command"])


def test_nginx_is_installed_where_it_is_required():
    if os.environ.get("REQUIRE_NGINX") == "1":
        assert NGINX, "REQUIRE_NGINX=1 but nginx is not installed (apt-get install nginx-light)"
