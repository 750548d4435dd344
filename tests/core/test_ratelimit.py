"""The provider rate limiter: a per-bucket budget shared by every caller."""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from rediska.providers.errors import RateLimitedError
from rediska.ratelimit import RateLimiter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "redis"])
def backend(request, settings):
    """Both state stores: a locked file under DATA_DIR, and Redis when REDIS_URL is set."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("REDIS_URL is not set")
    else:
        settings.REDIS_URL = ""
    return request.param


def limiter(**kwargs) -> RateLimiter:
    kwargs.setdefault("bucket", f"test:{uuid.uuid4().hex}")
    kwargs.setdefault("concurrency", 8)
    kwargs.setdefault("burst_factor", 1.0)
    kwargs.setdefault("max_wait", 5.0)
    return RateLimiter(**kwargs)


def run(lim: RateLimiter, n: int) -> float:
    """Wall-clock seconds for n requests (a lower bound on pacing holds however loaded the machine is)."""
    started = time.monotonic()
    for _ in range(n):
        with lim.slot():
            pass
    return time.monotonic() - started


def waited(lim: RateLimiter, n: int) -> float:
    """Seconds the limiter made n requests wait (0 when all could go at once)."""
    total = 0.0
    for _ in range(n):
        with lim.slot() as wait:
            total += wait
    return total


def test_it_lets_a_burst_through_then_paces_to_the_qpm(backend):
    lim = limiter(qpm=1200)  # 20/s, burst of 20
    started = time.monotonic()
    assert waited(lim, 20) == 0
    run(lim, 10)
    assert time.monotonic() - started >= 0.45  # thirty take at least (30 - 20) / 20 s


def test_zero_qpm_means_no_limit(backend):
    assert waited(limiter(qpm=0), 200) == 0


def test_the_budget_is_shared_by_every_limiter_of_one_bucket(backend):
    bucket = f"test:{uuid.uuid4().hex}"
    first, second = limiter(bucket=bucket, qpm=1200), limiter(bucket=bucket, qpm=1200)
    assert run(first, 20) + run(second, 10) >= 0.45


WORKER = """
import sys, time, django
django.setup()
from rediska.ratelimit import RateLimiter
lim = RateLimiter(sys.argv[1], qpm=1200, concurrency=8, burst_factor=1.0, max_wait=30)
print("ready", flush=True)
sys.stdin.readline()
stamps = []
for _ in range(15):
    with lim.slot():
        stamps.append(time.time())
print(" ".join(map(str, stamps)), flush=True)
"""


def test_the_budget_is_shared_across_processes(backend, settings):
    """Worker processes (one per identity's task) draw on one budget, through the store."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rediska.settings", "DATA_DIR": str(settings.DATA_DIR),
           "REDIS_URL": settings.REDIS_URL or ""}
    bucket = f"test:{uuid.uuid4().hex}"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, bucket], cwd=ROOT, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)]
    for worker in workers:  # both set up before either starts: thirty requests at once
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    stamps = [float(t) for worker in workers for t in worker.communicate(timeout=120)[0].split()]
    assert len(stamps) == 30
    assert max(stamps) - min(stamps) >= 0.45  # (30 - 20) / 20 s: one burst of twenty, then paced


def test_buckets_do_not_share_a_budget(backend):
    run(limiter(bucket="test:a-" + uuid.uuid4().hex, qpm=1200), 20)
    assert waited(limiter(qpm=1200), 20) == 0


def test_a_burst_factor_widens_the_burst(backend):
    assert waited(limiter(qpm=600, burst_factor=3.0), 30) == 0  # factor 1 would allow 10 at once


def test_it_refuses_to_wait_longer_than_max_wait(backend):
    lim = limiter(qpm=1, max_wait=0.1)  # one a minute
    started = time.monotonic()
    run(lim, 1)
    with pytest.raises(RateLimitedError) as caught:
        run(lim, 1)
    assert 60 - (time.monotonic() - started) - 0.01 <= caught.value.retry_after <= 60


def test_a_429_blocks_the_bucket_for_its_retry_after(backend):
    lim = limiter(qpm=0)
    started = time.monotonic()
    lim.observe(429, {"Retry-After": "0.4"})
    run(lim, 1)
    assert time.monotonic() - started >= 0.39
    assert waited(lim, 3) == 0  # open again afterwards


def test_a_blocked_bucket_beyond_max_wait_raises_with_retry_after(backend):
    lim = limiter(qpm=0, max_wait=0.1)
    started = time.monotonic()
    lim.observe(429, {"x-ratelimit-reset": "30", "x-ratelimit-remaining": "0", "x-ratelimit-used": "100"})
    with pytest.raises(RateLimitedError) as caught:
        run(lim, 1)
    assert 30 - (time.monotonic() - started) - 0.01 <= caught.value.retry_after <= 30


def test_an_exhausted_remaining_header_blocks_until_the_reset(backend):
    lim = limiter(qpm=0, max_wait=0.1)
    started = time.monotonic()
    lim.observe(200, {"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "600", "x-ratelimit-reset": "12"})
    with pytest.raises(RateLimitedError) as caught:
        run(lim, 1)
    assert 12 - (time.monotonic() - started) - 0.01 <= caught.value.retry_after <= 12


def test_a_low_remaining_header_spreads_requests_over_the_reset(backend):
    lim = limiter(qpm=0)
    started = time.monotonic()
    lim.observe(200, {"x-ratelimit-remaining": "4.0", "x-ratelimit-used": "596", "x-ratelimit-reset": "1"})
    run(lim, 1)
    assert time.monotonic() - started >= 0.24  # 1 s for 4 requests: the next waits a quarter second


def test_plenty_remaining_does_not_slow_anything(backend):
    lim = limiter(qpm=0)
    lim.observe(200, {"x-ratelimit-remaining": "900.0", "x-ratelimit-used": "100", "x-ratelimit-reset": "300"})
    assert waited(lim, 5) == 0


def test_server_errors_back_off_exponentially(backend):
    lim = limiter(qpm=0, backoff_base=100, backoff_cap=1000)
    lim.observe(500, {})
    assert 0 < lim.blocked_for() <= 100
    lim.observe(502, {})
    assert 100 < lim.blocked_for() <= 200
    lim.observe(None, {})  # a network failure counts too
    assert 200 < lim.blocked_for() <= 400


def test_a_success_resets_the_backoff(backend):
    bucket = f"test:{uuid.uuid4().hex}"
    short = limiter(bucket=bucket, qpm=0, backoff_base=0.05, backoff_cap=1000)
    for status in (500, 502, 503):
        short.observe(status, {})  # three failures: the next would block 8 bases
    short.observe(200, {})
    # The backoff base travels with each call, so a long base shows which step the next failure is at.
    limiter(bucket=bucket, qpm=0, backoff_base=100, backoff_cap=1000).observe(503, {})
    assert 0 < short.blocked_for() <= 100


def test_concurrency_caps_requests_in_flight(backend):
    lim = limiter(qpm=0, concurrency=2, max_wait=60)
    active, peak, done, lock, release = [0], [0], [0], threading.Lock(), threading.Event()

    def work():
        with lim.slot():
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            release.wait(60)
            with lock:
                active[0] -= 1
                done[0] += 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while active[0] < 2 and time.monotonic() < deadline:  # however slowly the threads start
        time.sleep(0.01)
    time.sleep(0.2)  # the three others poll meanwhile and must stay out
    assert active[0] == 2
    release.set()
    for t in threads:
        t.join()
    assert peak[0] == 2 and done[0] == 5  # each freed slot let a waiting request in


def test_settings_give_the_defaults(settings, backend):
    settings.PROVIDER_RATE_QPM_DEFAULT = 1200
    settings.PROVIDER_RATE_CONCURRENCY_DEFAULT = 3
    settings.PROVIDER_RATE_BURST_FACTOR = 2.0
    lim = RateLimiter(f"test:{uuid.uuid4().hex}")
    assert (lim.qpm, lim.concurrency, lim.burst_factor) == (1200, 3, 2.0)
    assert waited(lim, 40) == 0  # with burst factor 1 only 20 would go at once
