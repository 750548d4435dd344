"""Dependency checks for /healthz: database, broker, search."""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import connection

from .logging import redact


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        import redis

        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        return "ok"
    if scheme == "filesystem" or url == "filesystem://":
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        if not os.access(folder, os.W_OK):
            raise OSError(f"broker folder not writable: {folder}")
        return "ok"
    if scheme == "memory":
        return "ok"
    raise ValueError(f"unsupported broker scheme {scheme!r}")


def check_search() -> str:
    if settings.ELASTIC_URL:
        response = httpx.get(settings.ELASTIC_URL.rstrip("/") + "/_cluster/health", timeout=3)
        response.raise_for_status()
        status = response.json().get("status")
        if status == "red":
            raise RuntimeError("cluster status red")
        return "ok"
    folder = settings.SEARCH_INDEX_PATH.parent
    if not os.access(folder, os.W_OK):
        raise OSError(f"search index folder not writable: {folder}")
    return "ok"


CHECKS = {"db": check_database, "broker": check_broker, "search": check_search}


def run_checks() -> dict[str, dict]:
    """Each dependency's status and how long asking it took; details never carry credentials."""
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            results[name] = {"status": check()}
        except Exception as exc:  # a health check reports, never raises
            # /healthz is public: a URL in the error must not show its password.
            results[name] = {"status": "error", "detail": redact(f"{type(exc).__name__}: {exc}")[:300]}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return results
