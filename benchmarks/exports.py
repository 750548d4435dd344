"""Benchmark the CSV exports at 100,000 rows: time, peak Python memory, SQL queries.

    .venv/bin/python benchmarks/exports.py [--rows 100000]

Builds `--rows` people (a tenth of them labelled, with a note), `--rows`
conversations and `--rows` leads in bulk, then downloads each export through
Django's test client (the streamed response is consumed chunk by chunk, as a
browser would) and prints rows, seconds, the peak of Python's allocations
(tracemalloc, in a second pass: it slows the code it watches) and the number of
SQL queries.  Target: the peak stays under 20 MB whatever the row count (rows
are streamed in keyset pages, never built in memory).  Exits 1 when missed.
With MYSQL_URL set it runs on a scratch database on that server.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from datetime import UTC, datetime

from _django import scratch_database
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

PEAK_TARGET_MB = 20.0
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def build(rows: int) -> dict:
    from django.contrib.auth import get_user_model

    from identities.models import Identity, Provider
    from inbox.models import AccountLabel, AccountNote, Conversation, ExternalAccount, Label
    from leads.models import LeadPost

    provider, _ = Provider.objects.get_or_create(provider_id="reddit", defaults={"display_name": "Reddit"})
    identity = Identity.objects.create(provider=provider, external_username="persona", display_name="Persona",
                                       is_active=True, is_default=True)
    ExternalAccount.objects.bulk_create([ExternalAccount(provider=provider, external_username=f"=user{i:06d}")
                                         for i in range(rows)], batch_size=5000)
    accounts = list(ExternalAccount.objects.values_list("pk", flat=True))
    label = Label.objects.create(name="warm", key="warm")
    AccountLabel.objects.bulk_create([AccountLabel(account_id=a, label=label) for a in accounts[::10]], batch_size=5000)
    AccountNote.objects.bulk_create([AccountNote(account_id=a, body="met at the meetup") for a in accounts[::10]],
                                    batch_size=5000)
    Conversation.objects.bulk_create([
        Conversation(provider=provider, external_conversation_id=f"c{i}", counterpart_account_id=a,
                     identity=identity, subject="+1 hello", last_activity_at=NOW, last_direction="in")
        for i, a in enumerate(accounts)], batch_size=5000)
    LeadPost.objects.bulk_create([
        LeadPost(provider=provider, source_location="hiking", external_post_id=f"p{i}",
                 post_url=f"https://example.invalid/p{i}", author_account_id=a, title="@ looking for a buddy",
                 post_created_at=NOW, score=50, score_reasons_json=["-nearby"])
        for i, a in enumerate(accounts)], batch_size=5000)
    user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    return {"user": user}


def consume(client, url: str) -> tuple[int, int]:
    response = client.get(url)
    assert response.status_code == 200 and response.streaming, (url, response.status_code)
    lines = size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\r\n")
        size += len(chunk)
    return lines - 1, size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    ok = True
    with scratch_database():
        started = time.perf_counter()
        with transaction.atomic():
            ids = build(args.rows)
        print(f"database: {connection.vendor}; {args.rows:,} people, conversations and leads built in "
              f"{time.perf_counter() - started:.1f} s")
        client = Client()
        client.force_login(ids["user"])
        for name, url in (("conversations", "/inbox/export.csv"), ("people", "/leads/people/export.csv"),
                          ("leads", "/leads/export.csv?status=any")):
            queries = []

            def count(execute, sql, params, many, context):
                queries.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                started = time.perf_counter()
                rows, size = consume(client, url)
                seconds = time.perf_counter() - started
            tracemalloc.start()
            consume(client, url)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            verdict = "ok" if peak < PEAK_TARGET_MB and rows == args.rows else "MISSED"
            ok = ok and verdict == "ok"
            print(f"{name:14} {rows:>8,} rows  {size / 1e6:6.1f} MB  {seconds:6.1f} s  "
                  f"peak {peak:5.1f} MB  {len(queries):>4} queries  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
