import http.server
import threading

import pytest

from rediska.health import run_checks

pytestmark = pytest.mark.django_db


@pytest.fixture
def broken_search_server():
    """A local server answering every request with 500, like a sick Elasticsearch."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_healthz_is_200_with_each_check_and_its_timing(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    for name in ("db", "broker", "search"):
        assert data["checks"][name]["status"] == "ok"
        assert data["checks"][name]["ms"] >= 0


def test_a_failing_dependency_gives_503_without_its_password(client, settings, broken_search_server):
    settings.ELASTIC_URL = f"http://elastic:hunter2secret@{broken_search_server}"
    response = client.get("/healthz")
    assert response.status_code == 503
    check = response.json()["checks"]["search"]
    assert check["status"] == "error" and "500" in check["detail"]
    assert "elastic:[redacted]@" in check["detail"]
    assert "hunter2secret" not in response.content.decode()


def test_an_unreachable_broker_is_reported_without_credentials(settings):
    settings.CELERY_BROKER_URL = "redis://:brokerpass99@127.0.0.1:1/0"
    check = run_checks()["broker"]
    assert check["status"] == "error" and "brokerpass99" not in check["detail"]


def test_healthz_needs_no_login_and_is_never_cached(client):
    response = client.get("/healthz")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
