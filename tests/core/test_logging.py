import io
import json
import logging

import pytest
from celery import current_app, shared_task

from rediska.logging import REQUEST_ID_HEADER, ContextFilter, JsonFormatter, job_id_var, redact, request_id_var


@pytest.fixture
def json_lines():
    """Capture log lines exactly as production writes them (our filter + JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("rediska.test"), logging.getLogger("django.request")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_each_line_is_json_with_request_id_and_job_id(json_lines):
    r, j = request_id_var.set("req-1"), job_id_var.set("42")
    try:
        logging.getLogger("rediska.test").warning("synced %s messages", 7, extra={"identity_id": 3})
    finally:
        request_id_var.reset(r)
        job_id_var.reset(j)
    [line] = json_lines()
    assert line["msg"] == "synced 7 messages"
    assert (line["request_id"], line["job_id"], line["identity_id"]) == ("req-1", "42", 3)
    assert line["level"] == "WARNING" and line["logger"] == "rediska.test" and line["ts"].endswith("+00:00")


@pytest.mark.django_db
def test_a_request_tags_its_log_lines_and_echoes_the_id(auth_client, json_lines):
    response = auth_client.get("/no/such/page", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    [line] = [entry for entry in json_lines() if entry["logger"] == "django.request"]
    assert line["request_id"] == "abc-123"
    assert request_id_var.get() == "-"  # nothing leaks into the next request


@pytest.mark.django_db
def test_an_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/login/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline" and len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_request_id_ending_in_a_newline_is_replaced_not_a_500(client):
    response = client.get("/login/", HTTP_X_REQUEST_ID="abc\n")
    assert response.status_code == 200 and len(response["X-Request-ID"]) == 32


class TestSecretsAreMasked:
    def test_passwords_in_urls_tokens_and_key_values(self):
        text = redact("mysql://rediska:hunter22@db:3306/x Authorization: Bearer abcdefghijkl12 "
                      "password=pa55word refresh_token: 'zzz-yyy' client_secret=qqq prompt_tokens: 120")
        for secret in ("hunter22", "abcdefghijkl12", "pa55word", "zzz-yyy", "qqq"):
            assert secret not in text
        assert "mysql://rediska:[redacted]@db:3306/x" in text
        assert "prompt_tokens: 120" in text  # counts are not secrets

    def test_configured_secret_values_are_masked_even_when_logged_bare(self, settings, json_lines):
        settings.INFERENCE_API_KEY = "sk-local-0123456789"
        logging.getLogger("rediska.test").error("server said sk-local-0123456789 is wrong")
        [line] = json_lines()
        assert "sk-local-0123456789" not in json.dumps(line)
        assert "[redacted]" in line["msg"]

    def test_tracebacks_are_masked_too(self, json_lines):
        try:
            raise ValueError("cannot connect to redis://:s3cretpass@cache:6379/0")
        except ValueError:
            logging.getLogger("rediska.test").exception("broker down")
        [line] = json_lines()
        assert "s3cretpass" not in line["exc"] and "ValueError" in line["exc"]

    def test_text_format_lines_are_masked_as_well(self):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.setFormatter(logging.Formatter("%(levelname)s [%(request_id)s %(job_id)s] %(message)s"))
        logger = logging.getLogger("rediska.test.text")
        logger.addHandler(handler)
        try:
            logger.warning("login with password=%s", "letmein99")
        finally:
            logger.removeHandler(handler)
        assert stream.getvalue() == "WARNING [- -] login with password=[redacted]\n"


@shared_task(name="test.request_id_echo")
def request_id_echo():
    return request_id_var.get()


class TestCelery:
    def test_a_task_runs_with_the_request_id_of_the_request_that_sent_it(self):
        assert request_id_echo.apply(headers={REQUEST_ID_HEADER: "req-77"}).get() == "req-77"
        assert request_id_var.get() == "-"
        assert request_id_echo.apply().get() == "-"

    def test_published_messages_carry_the_request_id(self):
        token = request_id_var.set("req-88")
        try:
            with current_app.connection_for_write() as conn:
                queue = conn.SimpleQueue("celery")
                queue.clear()
                current_app.send_task("test.request_id_echo", connection=conn)
                message = queue.get(timeout=2)
                message.ack()
                queue.close()
        finally:
            request_id_var.reset(token)
        assert message.headers[REQUEST_ID_HEADER] == "req-88"

    def test_the_worker_keeps_our_json_logging(self):
        root = logging.getLogger()
        handlers = list(root.handlers)
        current_app.log.already_setup = False
        try:
            current_app.log.setup_logging_subsystem(loglevel="INFO")
        finally:
            current_app.log.already_setup = False
        assert root.handlers == handlers
