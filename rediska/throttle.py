"""Failed-login throttling: N failures per window, per username and per IP.

Counters live in the shared cache (Redis, or the file cache with no Redis) so
the limit holds across processes.  A fixed window from the first failure.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache


def _keys(username: str, ip: str) -> list[str]:
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:user:{user}", f"login-fail:ip:{ip or '-'}"]


def seconds_blocked(username: str, ip: str) -> int:
    """0 when a login may be tried; otherwise seconds until the window ends."""
    now = time.time()
    waits = []
    for key in _keys(username, ip):
        entry = cache.get(key)
        if entry and entry["count"] >= settings.LOGIN_THROTTLE_ATTEMPTS:
            waits.append(entry["until"] - now)
    return max(0, math.ceil(max(waits))) if waits else 0


def register_failure(username: str, ip: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    now = time.time()
    for key in _keys(username, ip):
        entry = cache.get(key)
        if not entry or entry["until"] <= now:
            entry = {"count": 0, "until": now + window}
        entry["count"] += 1
        cache.set(key, entry, timeout=max(1, math.ceil(entry["until"] - now)))


def reset(username: str) -> None:
    cache.delete(_keys(username, "")[0])
