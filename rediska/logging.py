"""Structured logs: one JSON object a line, carrying the request id and job id.

The request id of the web request that enqueued a task travels with the Celery
message, so the worker's lines for that task carry it too.  Secrets are masked in
every line (message and traceback) whatever the caller logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

from celery import signals

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "job_id"}
REQUEST_ID_HEADER = "rediska_request_id"
MASK = "[redacted]"

_PATTERNS = [
    # user:password@ in URLs (MYSQL_URL, REDIS_URL, ELASTIC_URL...)
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)", re.IGNORECASE), r"\g<keep>" + MASK),
    # Authorization: Bearer/Basic credentials
    (re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\g<keep>" + MASK),
    # a personal feed token in a feed URL's query (?feed=...&user=...)
    (re.compile(r"(?P<keep>[?&]feed=)[^\s&\"'#]+", re.IGNORECASE), r"\g<keep>" + MASK),
    # password=..., "refresh_token": "...", api_key: ..., client_secret=...
    (re.compile(r"(?P<keep>\b[\w-]*(?:password|passwd|secret|token|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)"
                r"[^\s\"',&;}]+", re.IGNORECASE), r"\g<keep>" + MASK),
]
_SECRET_SETTINGS = ("SECRET_KEY", "INFERENCE_API_KEY", "EMBEDDINGS_API_KEY")


def _configured_secrets() -> list[str]:
    """Secret values from settings, so they are masked even when logged bare."""
    try:
        from django.conf import settings

        values = [getattr(settings, name, "") for name in _SECRET_SETTINGS]
        values += [str(v) for k, v in vars(settings._wrapped).items()
                   if k.startswith("PROVIDER_") and k.endswith(("_SECRET", "_KEY", "_TOKEN"))]
        values += [db.get("PASSWORD", "") for db in settings.DATABASES.values()]
    except Exception:  # settings not configured yet (early start-up): patterns still apply
        return []
    return [v for v in values if isinstance(v, str) and len(v) >= 6]


def redact(text: str) -> str:
    """`text` with credentials masked: known secret values, URL passwords, key=value secrets."""
    for value in _configured_secrets():
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Adds request_id/job_id and masks secrets before any formatter sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs 4xx/5xx after the middleware has returned: take the id from the request.
        record.request_id = getattr(getattr(record, "request", None), "request_id", None) or request_id_var.get()
        record.job_id = job_id_var.get()
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "job_id": getattr(record, "job_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info or record.exc_text:
            data["exc"] = record.exc_text or redact(self.formatException(record.exc_info))
        return redact(json.dumps(data, default=str, ensure_ascii=False))


# --- Celery ------------------------------------------------------------------
@signals.setup_logging.connect
def _keep_django_logging(**kwargs):
    """A receiver here stops Celery from replacing our handlers: the worker logs JSON too."""


@signals.before_task_publish.connect
def _send_request_id(headers=None, **kwargs):
    request_id = request_id_var.get()
    if headers is not None and request_id != "-":
        headers.setdefault(REQUEST_ID_HEADER, request_id)


_task_tokens: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect
def _receive_request_id(task_id=None, task=None, **kwargs):
    request = task.request
    # A worker puts message headers on the request; an eager apply() keeps them in .headers.
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (request.headers or {}).get(REQUEST_ID_HEADER)
    if request_id and task_id:
        _task_tokens[task_id] = request_id_var.set(str(request_id)[:64])


@signals.task_postrun.connect
def _forget_request_id(task_id=None, **kwargs):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
