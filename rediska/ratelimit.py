"""Provider rate limiting, shared by every process that talks to one provider app.

A limiter is keyed by a *bucket*: a provider passes e.g. its OAuth client id,
so every identity of one app draws on one budget (the provider counts
requests per client id, not per user).

- **Budget**: a token bucket (GCRA) refilled at `qpm / 60` per second that
  holds at most `max(1, burst_factor * qpm / 60)` requests: burst factor 1
  allows one second's worth back to back, then paces evenly; the average over
  any longer window stays at `qpm`.  `qpm = 0` turns the budget off.
- **Concurrency**: at most `concurrency` requests in flight per bucket (leases
  expire, so a killed worker never holds a slot for good).
- **Feedback**: `observe(status, headers)` after every response.  A 429 blocks
  the bucket for its `Retry-After` (or `X-Ratelimit-Reset`); 5xx and network
  failures block it for an exponential backoff that resets on success;
  `X-Ratelimit-Remaining` at 0 blocks until `X-Ratelimit-Reset`, and a nearly
  spent window spreads the remaining requests over the time left.
- **Never sleeps long**: a request that would wait more than `max_wait`
  raises `RateLimitedError(retry_after=...)` instead, so a worker is freed and
  the job ledger retries later.

State lives in Redis when `settings.REDIS_URL` is set (Lua scripts, atomic,
Redis's clock).  Otherwise it lives in small JSON files under
`DATA_DIR/ratelimit/`, read-modify-written under an exclusive `flock`: without
Redis every process runs on one host (the filesystem broker needs that too),
and Django's file cache offers no atomic increment across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from django.conf import settings

from .providers.errors import RateLimitedError, TransientError

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
LOW_REMAINING_SHARE = 0.1  # below 10 % of the window left, spread what remains
POLL_SECONDS = 0.02


class RateLimiter:
    def __init__(
        self,
        bucket: str,
        *,
        qpm: int | None = None,
        concurrency: int | None = None,
        burst_factor: float | None = None,
        max_wait: float = 20.0,
        lease_seconds: float = 120.0,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
    ):
        self.bucket = bucket
        self.qpm = settings.PROVIDER_RATE_QPM_DEFAULT if qpm is None else qpm
        self.concurrency = settings.PROVIDER_RATE_CONCURRENCY_DEFAULT if concurrency is None else concurrency
        self.burst_factor = settings.PROVIDER_RATE_BURST_FACTOR if burst_factor is None else burst_factor
        self.max_wait = max_wait
        self.lease_seconds = lease_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._store = _RedisStore(settings.REDIS_URL) if settings.REDIS_URL else _FileStore(settings.DATA_DIR)

    @property
    def _interval(self) -> float:
        return 60.0 / self.qpm if self.qpm > 0 else 0.0

    @property
    def _tolerance(self) -> float:
        capacity = max(1.0, self.burst_factor * self.qpm / 60.0)
        return self._interval * (capacity - 1)

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Wait for the budget and a free slot, then hold the slot while the request runs.

        Yields the seconds spent waiting (0 when the request could go at once).
        """
        started = time.monotonic()
        token = uuid.uuid4().hex if self.concurrency > 0 else None
        ok, wait, taken = self._store.reserve(self.bucket, self._interval, self._tolerance, self.max_wait,
                                              token, self.concurrency, self.lease_seconds)
        if not ok:
            raise RateLimitedError(
                f"The provider's rate limit is reached; retrying in about {wait:.0f} s.", retry_after=wait
            )
        if wait > 0:
            time.sleep(wait)
        if token and not taken:
            deadline = time.monotonic() + self.max_wait
            while not self._store.take_slot(self.bucket, token, self.concurrency, self.lease_seconds):
                if time.monotonic() >= deadline:
                    raise RateLimitedError(
                        "Too many requests to the provider are in flight; try again shortly.",
                        retry_after=self.max_wait,
                    )
                time.sleep(POLL_SECONDS)
        try:
            yield (time.monotonic() - started) if wait > 0 or (token and not taken) else 0.0
        finally:
            if token:
                self._store.give_slot(self.bucket, token)

    def observe(self, status: int | None, headers: Mapping[str, str]) -> None:
        """Learn from a response (`status` None: the request failed without one)."""
        headers = {k.lower(): v for k, v in headers.items()}
        remaining = _number(headers.get("x-ratelimit-remaining"))
        used = _number(headers.get("x-ratelimit-used"))
        reset = _number(headers.get("x-ratelimit-reset"))
        failed = status is None or status >= 500
        block = 0.0
        if status == 429:
            block = _number(headers.get("retry-after")) or reset or self.backoff_base
        elif remaining is not None and reset is not None:
            if remaining <= 0:
                block = reset
            elif used is not None and remaining < max(1.0, LOW_REMAINING_SHARE * (remaining + used)):
                block = reset / remaining
        self._store.update(
            self.bucket, succeeded=not failed and status != 429, failed=failed, block=block,
            base=self.backoff_base, cap=self.backoff_cap,
        )

    def blocked_for(self) -> float:
        """Seconds until the bucket accepts requests again (0 when open)."""
        return self._store.blocked_for(self.bucket)


def _number(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- stores
class _FileStore:
    """One JSON file per bucket, changed only under an exclusive flock."""

    def __init__(self, data_dir):
        self.dir = Path(data_dir) / "ratelimit"
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self, bucket: str) -> Iterator[dict]:
        path = self.dir / (hashlib.sha256(bucket.encode()).hexdigest()[:24] + ".json")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 1 << 20)
            try:
                state = json.loads(raw or b"{}")
            except ValueError:  # a torn write after a crash: start over
                state = {}
            before = dict(state)
            yield state
            if state != before:
                data = json.dumps(state).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _take(state, token, limit, lease, now) -> bool:
        slots = {k: v for k, v in state.get("slots", {}).items() if v > now}
        taken = len(slots) < limit
        if taken:
            slots[token] = now + lease
        state["slots"] = slots
        return taken

    def reserve(self, bucket, interval, tolerance, max_wait, token, limit, lease):
        with self._locked(bucket) as state:
            now = time.time()
            start = max(now, state.get("blocked", 0.0))
            tat = start
            if interval > 0:
                tat = max(state.get("tat", 0.0), start)
                start = max(start, tat - tolerance)
            wait = start - now
            if wait > max_wait:
                return False, wait, False
            if interval > 0:
                state["tat"] = tat + interval
            # No wait: take the concurrency slot in the same round trip.
            taken = bool(token) and wait <= 0 and self._take(state, token, limit, lease, now)
            return True, wait, taken

    def take_slot(self, bucket, token, limit, lease):
        with self._locked(bucket) as state:
            return self._take(state, token, limit, lease, time.time())

    def give_slot(self, bucket, token):
        with self._locked(bucket) as state:
            state["slots"] = {k: v for k, v in state.get("slots", {}).items() if k != token}

    def update(self, bucket, *, succeeded, failed, block, base, cap):
        with self._locked(bucket) as state:
            now = time.time()
            if succeeded:
                state["fails"] = 0
            if failed:
                state["fails"] = state.get("fails", 0) + 1
                block = max(block, min(cap, base * 2 ** (state["fails"] - 1)))
            if block > 0:
                state["blocked"] = max(state.get("blocked", 0.0), now + block)

    def blocked_for(self, bucket):
        with self._locked(bucket) as state:
            return max(0.0, state.get("blocked", 0.0) - time.time())


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function take(key, limit, lease, token)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= limit then return 0 end
  redis.call('ZADD', key, now + lease, token)
  redis.call('EXPIRE', key, math.ceil(lease) + 60)
  return 1
end
"""
_RESERVE = _NOW + """
local interval, tolerance, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = math.max(now, tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0'))
local tat = start
if interval > 0 then
  tat = math.max(tonumber(redis.call('HGET', KEYS[1], 'tat') or '0'), start)
  start = math.max(start, tat - tolerance)
end
local wait = start - now
if wait > max_wait then return {0, tostring(wait), 0} end
if interval > 0 then
  redis.call('HSET', KEYS[1], 'tat', tostring(tat + interval))
  redis.call('EXPIRE', KEYS[1], 3600)
end
-- No wait: take the concurrency slot in the same round trip.
local taken = 0
if ARGV[4] ~= '' and wait <= 0 then taken = take(KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[4]) end
return {1, tostring(wait), taken}
"""
_TAKE_SLOT = _NOW + """
return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
"""
_UPDATE = _NOW + """
local succeeded, failed, block = ARGV[1] == '1', ARGV[2] == '1', tonumber(ARGV[3])
local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
if succeeded then redis.call('HSET', KEYS[1], 'fails', 0) end
if failed then
  local n = redis.call('HINCRBY', KEYS[1], 'fails', 1)
  block = math.max(block, math.min(cap, base * 2 ^ (n - 1)))
end
if block > 0 then
  local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0')
  redis.call('HSET', KEYS[1], 'blocked', tostring(math.max(blocked, now + block)))
end
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""
_BLOCKED_FOR = _NOW + """
return tostring(math.max(0, tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0') - now))
"""


@functools.cache
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _redis_errors(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        import redis

        try:
            return method(*args, **kwargs)
        except redis.RedisError:
            # The limiter cannot decide, so the request is not made: retry later.
            raise TransientError("The rate-limit store (Redis) is unavailable; try again shortly.") from None

    return wrapper


class _RedisStore:
    def __init__(self, url: str):
        client = _redis_client(url)
        self._reserve = client.register_script(_RESERVE)
        self._take = client.register_script(_TAKE_SLOT)
        self._give = client.zrem
        self._update = client.register_script(_UPDATE)
        self._blocked = client.register_script(_BLOCKED_FOR)

    @staticmethod
    def _key(bucket: str, part: str) -> str:
        return f"rediska:ratelimit:{bucket}:{part}"

    @_redis_errors
    def reserve(self, bucket, interval, tolerance, max_wait, token, limit, lease):
        ok, wait, taken = self._reserve(keys=[self._key(bucket, "state"), self._key(bucket, "slots")],
                                        args=[interval, tolerance, max_wait, token or "", limit, lease])
        return bool(ok), float(wait), bool(taken)

    @_redis_errors
    def take_slot(self, bucket, token, limit, lease):
        return bool(self._take(keys=[self._key(bucket, "slots")], args=[limit, lease, token]))

    @_redis_errors
    def give_slot(self, bucket, token):
        self._give(self._key(bucket, "slots"), token)

    @_redis_errors
    def update(self, bucket, *, succeeded, failed, block, base, cap):
        self._update(keys=[self._key(bucket, "state")],
                     args=[int(succeeded), int(failed), block, base, cap])

    @_redis_errors
    def blocked_for(self, bucket):
        return float(self._blocked(keys=[self._key(bucket, "state")]))
