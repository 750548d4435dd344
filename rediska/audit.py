"""The audit service: one function every action calls.

Rows are append-only (see `AuditLog`).  Anything that looks like a secret is
redacted before it is stored, whatever the caller passed.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import models

from .models import AuditLog

REDACTED = "[redacted]"
MAX_TEXT = 10_000
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|api[_-]?key|credential|private|^code$|^state$|^key$",
    re.IGNORECASE,
)


def scrub(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of `value` with secret-looking keys redacted."""
    if _depth > 8:
        return "[…]"
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if _SECRET_KEY.search(str(k)) else scrub(v, _depth + 1)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set)):
        return [scrub(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)[:MAX_TEXT]


def error_text(error: BaseException | str | None) -> str | None:
    """Plain words for an error: a provider/LLM `user_message` when there is one."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        message = getattr(error, "user_message", None) or str(error) or type(error).__name__
        text = f"{type(error).__name__}: {message}"
    else:
        text = str(error)
    return text[:MAX_TEXT]


def record(
    action_type: str,
    *,
    actor: str = AuditLog.Actor.USER,
    result: str = AuditLog.Result.OK,
    provider_id: str | None = None,
    identity_id: int | None = None,
    entity: models.Model | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
    request: dict | None = None,
    response: dict | None = None,
    error: BaseException | str | None = None,
) -> AuditLog:
    if entity is not None:
        entity_type = entity._meta.db_table
        entity_id = entity.pk
    return AuditLog.objects.create(
        actor=actor,
        action_type=action_type,
        provider_id=provider_id,
        identity_id=identity_id,
        entity_type=entity_type,
        entity_id=entity_id,
        request_json=scrub(request) if request is not None else None,
        response_json=scrub(response) if response is not None else None,
        result=AuditLog.Result.ERROR if error is not None and result == AuditLog.Result.OK else result,
        error_detail=error_text(error),
    )
