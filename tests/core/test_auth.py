import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import URLPattern, URLResolver, get_resolver

from rediska.models import AuditLog

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "healthz"}


def _all_urls(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # the admin has its own login; covered below
            yield from _all_urls(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            # Fill converters with plausible values.
            route = re.sub(r"<int:\w+>", "1", route)
            route = re.sub(r"<(?:str|slug):\w+>", "x", route)
            route = re.sub(r"<uuid:\w+>", "00000000-0000-0000-0000-000000000000", route)
            route = re.sub(r"<path:\w+>", "x/y", route)
            route = route.lstrip("^").rstrip("$")
            yield entry.name, "/" + route


def test_every_url_except_login_and_healthz_requires_login(client):
    checked = 0
    for name, url in _all_urls():
        if name in PUBLIC or "(?P" in url:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (302, 401, 403, 405), f"{method.upper()} {url} is open ({response.status_code})"
            if response.status_code == 302:
                assert response["Location"].startswith("/login/"), f"{url} redirects elsewhere"
        checked += 1
    assert checked >= 4


def test_the_admin_requires_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_login_page_and_healthz_are_public(client):
    assert client.get("/login/").status_code == 200
    assert client.get("/healthz").status_code in (200, 503)


def test_the_admin_can_log_in_and_out(client, admin_user):
    response = client.post("/login/", {"username": "admin", "password": "correct horse battery"})
    assert response.status_code == 302
    assert client.get("/jobs/").status_code == 200
    assert AuditLog.objects.filter(action_type="auth.login", result="ok").count() == 1
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/jobs/").status_code == 302


def test_a_wrong_password_gets_a_clear_message_and_400(client, admin_user):
    response = client.post("/login/", {"username": "admin", "password": "nope"})
    assert response.status_code == 400
    assert b"Please enter a correct username and password" in response.content
    row = AuditLog.objects.get(action_type="auth.login")
    assert row.result == "error" and "nope" not in str(row.request_json)


def test_login_redirects_only_to_local_next(client, admin_user):
    response = client.post("/login/?next=https://evil.example/", {"username": "admin", "password": "correct horse battery"})
    assert response["Location"] == "/"


def test_failed_logins_are_throttled_per_username(client, admin_user):
    for _ in range(5):
        assert client.post("/login/", {"username": "admin", "password": "wrong"}).status_code == 400
    response = client.post("/login/", {"username": "admin", "password": "correct horse battery"})
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts. Try again in 15 minutes." in response.content
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_throttled_per_ip_across_usernames(client, admin_user):
    for i in range(5):
        client.post("/login/", {"username": f"guess{i}", "password": "wrong"})
    assert client.post("/login/", {"username": "admin", "password": "correct horse battery"}).status_code == 429


def test_malformed_login_posts_are_400_not_500(client):
    assert client.post("/login/", {"username": "x" * 10_000}).status_code == 400
    assert client.post("/login/", data=b"\xff\xfe garbage", content_type="application/octet-stream").status_code == 400


def test_oversized_bodies_are_refused_with_400(client):
    response = client.post("/login/", data={"username": "admin", "x": "a" * (13 * 1024 * 1024)})
    assert response.status_code == 400


def test_unknown_urls_are_404_pages(auth_client):
    response = auth_client.get("/no/such/page")
    assert response.status_code == 404
    assert b"There is nothing at this address." in response.content


def test_security_headers_and_cookie_flags(client, admin_user, settings):
    response = client.get("/login/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    response = client.post("/login/", {"username": "admin", "password": "correct horse battery"})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_sessions_over_https_get_secure_cookies_and_hsts(client, admin_user, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = client.post("/login/", {"username": "admin", "password": "correct horse battery"},
                           HTTP_X_FORWARDED_PROTO="https", secure=True)
    assert response.cookies["sessionid"]["secure"]
    assert response["Strict-Transport-Security"] == "max-age=31536000"


def test_passwords_are_hashed_with_argon2(admin_user):
    assert admin_user.password.startswith("argon2$")


def test_healthz_reports_each_dependency(client):
    data = client.get("/healthz").json()
    assert set(data["checks"]) == {"db", "broker", "search"}
    assert data["checks"]["db"]["status"] == "ok"


def test_healthz_is_503_when_a_dependency_fails(client, settings):
    settings.ELASTIC_URL = "http://127.0.0.1:9"  # nothing listens there
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["search"]["status"] == "error"


class TestCreateAdmin:
    def test_it_creates_the_admin_from_stdin(self, django_user_model, monkeypatch):
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
        out = io.StringIO()
        call_command("createadmin", "--username", "boss", stdout=out)
        user = django_user_model.objects.get(username="boss")
        assert user.is_superuser and user.check_password("a long enough password")
        assert "a long enough password" not in out.getvalue()

    def test_it_reads_the_environment(self, django_user_model, monkeypatch):
        monkeypatch.setenv("REDISKA_ADMIN_PASSWORD", "from the environment")
        call_command("createadmin", "--username", "boss", stdout=io.StringIO())
        assert django_user_model.objects.get(username="boss").check_password("from the environment")

    def test_it_refuses_a_second_admin(self, admin_user, monkeypatch):
        monkeypatch.setenv("REDISKA_ADMIN_PASSWORD", "another long password")
        with pytest.raises(CommandError, match="An admin already exists"):
            call_command("createadmin", "--username", "other", stdout=io.StringIO())

    def test_if_missing_is_quiet_when_an_admin_exists(self, admin_user):
        out = io.StringIO()
        call_command("createadmin", "--if-missing", "--generate", stdout=out)
        assert out.getvalue() == ""

    def test_generate_prints_the_password_once(self, django_user_model):
        out = io.StringIO()
        call_command("createadmin", "--if-missing", "--generate", stdout=out)
        password = re.search(r"password: (\S+)", out.getvalue())[1]
        assert django_user_model.objects.get(username="admin").check_password(password)

    def test_it_rejects_a_weak_password(self, monkeypatch, django_user_model):
        monkeypatch.setenv("REDISKA_ADMIN_PASSWORD", "short")
        with pytest.raises(CommandError, match="Password rejected"):
            call_command("createadmin", stdout=io.StringIO())
        assert not django_user_model.objects.exists()


class TestOnboardingGate:
    def test_setup_status_reports_incomplete_without_identities(self, auth_client):
        data = auth_client.get("/setup/status").json()
        assert data["complete"] is False and data["active_identities"] == 0

    def test_setup_status_is_complete_with_an_active_identity(self, auth_client, identity):
        data = auth_client.get("/setup/status").json()
        assert data["complete"] is True and data["active_identities"] == 1

    def test_home_sends_a_new_user_to_identity_setup(self, auth_client):
        response = auth_client.get("/")
        assert response.status_code == 302 and response["Location"] == "/setup/"

    def test_home_renders_once_an_identity_exists(self, auth_client, identity):
        assert auth_client.get("/").status_code == 200
