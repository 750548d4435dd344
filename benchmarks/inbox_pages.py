"""Benchmark the inbox pages on a large archive: render time and SQL queries.

    .venv/bin/python benchmarks/inbox_pages.py [--conversations 10000] [--messages 200000] [--runs 30]

Builds an archive of `--conversations` conversations holding `--messages`
messages (one of them 500 messages long, the others about 20 each), spread
over three identities and a few thousand counterparts, some of them deleted or
suspended, some messages removed remotely.  The data goes in with bulk
INSERTs, then every page is requested through Django's test client (URL
routing, middleware, session, view, template: what a browser would wait for,
minus the network), `--runs` times after a warm-up.  Prints the median and p95
wall time (and the median CPU time of this process, which on SQLite includes
the database's work and, unlike wall time, hardly moves when other processes
share the machine) and the SQL query count of each page, and the query counts of the
list at three page sizes and of a short vs the 500-message conversation.
Targets: the conversation list and the 500-message conversation under 100 ms
(median), the same number of queries whatever the page size.  Today (the home
page) is measured on the same archive plus what it gathers: follow-ups (some
due), snoozed conversations, thousands of watch leads with scores, unsent
drafts and failed jobs: median under 100 ms, its query count the same after
the archive grows.  Exits 1 when a target is missed.

Runs on a fresh SQLite file by default; with MYSQL_URL set it creates (and then
drops) a scratch `test_<name>` database on that server.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

# First: it sets the environment up and calls django.setup().
from _django import scratch_database
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

TARGET_MS = 100.0
BIG = 500
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WORDS = ("hello there how are you doing today I saw your post about the trail and wondered if you still "
         "want company this weekend we could meet at the north gate around nine bring water 🙂 thanks").split()


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple], batch: int = 5_000) -> None:
    ops = connection.ops
    sql = (f"INSERT INTO {ops.quote_name(table)} ({', '.join(ops.quote_name(c) for c in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            cursor.executemany(sql, rows[start:start + batch])


def build_archive(n_conversations: int, n_messages: int, rng: random.Random) -> dict:
    """The archive, in bulk; returns the ids the pages are measured on."""
    from django.contrib.auth import get_user_model

    from identities.models import Identity, Provider
    from inbox.models import Conversation, ExternalAccount, Message

    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(NOW)
    provider, _ = Provider.objects.get_or_create(provider_id="reddit", defaults={"display_name": "Reddit"})
    identities = [
        Identity.objects.create(provider=provider, external_username=f"persona_{i}", display_name=f"Persona {i}",
                                is_active=True, is_default=i == 0)
        for i in range(3)
    ]
    n_accounts = max(1, n_conversations * 2 // 5)
    statuses = ["active"] * 90 + ["unknown"] * 6 + ["deleted"] * 2 + ["suspended"] * 2
    ExternalAccount.objects.bulk_create(
        [ExternalAccount(provider=provider, external_username=f"someone_{i}", remote_status=rng.choice(statuses))
         for i in range(n_accounts)], batch_size=2_000,
    )
    account_ids = list(ExternalAccount.objects.values_list("pk", flat=True))
    _insert(Conversation._meta.db_table,
            ("provider_id", "external_conversation_id", "counterpart_account_id", "identity_id", "subject",
             "created_at", "updated_at"),
            [(provider.pk, f"c{i}", account_ids[i % len(account_ids)], identities[i % 3].pk, f"subject {i}",
              stamp, stamp) for i in range(n_conversations)])
    conversations = list(Conversation.objects.order_by("pk").values_list("pk", "identity_id"))
    # The first conversation is the long one; the rest share what is left.
    per, extra = divmod(n_messages - BIG, max(1, n_conversations - 1))
    rows, ext = [], 0
    for index, (conv_pk, identity_pk) in enumerate(conversations):
        count = BIG if index == 0 else per + (1 if index <= extra else 0)
        at = NOW - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60)) - timedelta(minutes=3 * count)
        for _ in range(count):
            at += timedelta(minutes=rng.randint(1, 3))
            out = rng.random() < 0.45
            visibility = rng.choices(["visible", "deleted_by_author", "removed"], [98, 1, 1])[0]
            body = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
            ext += 1
            rows.append((provider.pk, f"m{ext}", conv_pk, identity_pk if out else None, "out" if out else "in",
                         ops.adapt_datetimefield_value(at), body, visibility,
                         stamp if visibility != "visible" else None, stamp))
    _insert(Message._meta.db_table,
            ("provider_id", "external_message_id", "conversation_id", "identity_id", "direction", "sent_at",
             "body_text", "remote_visibility", "remote_deleted_at", "created_at"), rows)
    del rows
    conv, msg = ops.quote_name(Conversation._meta.db_table), ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        # What ingest keeps up to date page by page, set here in one statement.
        cursor.execute(
            f"UPDATE {conv} SET last_message_id = (SELECT m.id FROM {msg} m WHERE m.conversation_id = {conv}.id "
            f"ORDER BY m.sent_at DESC, m.id DESC LIMIT 1)")
        for column, source in (("last_activity_at", "sent_at"), ("last_direction", "direction")):
            cursor.execute(f"UPDATE {conv} SET {column} = (SELECT m.{source} FROM {msg} m "
                           f"WHERE m.id = {conv}.last_message_id)")
    user = get_user_model().objects.create_superuser("bench", password=None)
    short = Conversation.objects.exclude(pk=conversations[0][0]).order_by("pk").values_list("pk", flat=True).first()
    return {"user": user, "identity": identities[1], "big": conversations[0][0], "short": short, "per": per}


def add_today_data(ids: dict, rng: random.Random, *, leads: int = 5_000, offset: int = 0) -> None:
    """What Today gathers besides replies: reminders, snoozes, watch leads, drafts, failed jobs."""
    from agents.models import Draft
    from identities.models import Identity
    from inbox.models import Conversation
    from leads.models import LeadPost, Watch, WatchHit
    from rediska.models import Job

    identity = Identity.objects.get(pk=ids["identity"].pk)
    pks = list(Conversation.objects.order_by("pk").values_list("pk", flat=True))
    picked = rng.sample(pks, min(len(pks), 1_000))
    Conversation.objects.filter(pk__in=picked[:500]).update(follow_up_at=NOW - timedelta(days=1))
    Conversation.objects.filter(pk__in=picked[500:700]).update(snoozed_at=NOW, snoozed_until=NOW + timedelta(days=3))
    watch, _ = Watch.objects.get_or_create(identity=identity, location="hiking", defaults={"next_run_at": NOW})
    account_ids = list(Conversation.objects.values_list("counterpart_account_id", flat=True)[:2_000])
    LeadPost.objects.bulk_create([
        LeadPost(provider_id="reddit", source_location="hiking", external_post_id=f"p{offset + i}",
                 post_url=f"https://example.invalid/p{offset + i}", author_account_id=account_ids[i % len(account_ids)],
                 title=" ".join(rng.choices(WORDS, k=8)), body_text=" ".join(rng.choices(WORDS, k=40)),
                 post_created_at=NOW - timedelta(minutes=i), score=rng.choice([None, *range(0, 101)]),
                 score_reasons_json={"reasons": ["Asks for company on the trail"]})
        for i in range(leads)], batch_size=2_000)
    fresh = LeadPost.objects.filter(external_post_id__in=[f"p{offset + i}" for i in range(leads)]).values_list("pk", flat=True)
    WatchHit.objects.bulk_create([WatchHit(watch=watch, lead_post_id=pk, first_seen_at=NOW) for pk in fresh],
                                 batch_size=2_000)
    Draft.objects.bulk_create([Draft(kind="intro", identity=identity, account_id=account_ids[i], body_text="Hi!")
                               for i in range(200)])
    Job.objects.bulk_create([Job(queue_name="ingest", job_type="ingest.sync_delta", payload_json={},
                                 status="failed", last_error="Provider down") for _ in range(300)])


def measure(client: Client, url: str, runs: int) -> tuple[list[float], list[float], int, int]:
    """(wall times in ms, CPU times in ms, queries of one render, response size in bytes)."""
    for _ in range(3):
        client.get(url)
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return times, cpu, len(queries), len(response.content)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    # Not setup_test_environment(): its template instrumentation would be measured too.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    ok = True
    with scratch_database():
        from django.urls import reverse

        from inbox import views
        from inbox.models import Conversation, Message

        started = time.perf_counter()
        with transaction.atomic():
            ids = build_archive(args.conversations, args.messages, random.Random(42))
            add_today_data(ids, random.Random(7))
        built = time.perf_counter() - started
        print(f"database: {connection.vendor}")
        print(f"archive:  {Conversation.objects.count():,} conversations, {Message.objects.count():,} messages "
              f"built in {built:.1f} s")
        client = Client()
        client.force_login(ids["user"])
        listing = reverse("inbox:list")
        since = (NOW - timedelta(days=60)).date().isoformat()
        until = (NOW - timedelta(days=30)).date().isoformat()
        pages = [
            ("list, first page", listing, True),
            ("list, needs reply", f"{listing}?needs_reply=on", True),
            ("list, identity + last out", f"{listing}?identity={ids['identity'].pk}&direction=out", True),
            ("list, one month", f"{listing}?since={since}&until={until}", True),
            ("list, page 100", f"{listing}?page=100", True),
            (f"conversation, {BIG} messages", reverse("inbox:conversation", args=[ids["big"]]), True),
            (f"conversation, ~{ids['per']} messages", reverse("inbox:conversation", args=[ids["short"]]), False),
            ("today (home page)", reverse("home"), True),
        ]
        print(f"pages ({args.runs} runs each, after 3 warm-up requests; target median < {TARGET_MS:.0f} ms):")
        for label, url, targeted in pages:
            times, cpu, queries, size = measure(client, url, args.runs)
            median = statistics.median(times)
            verdict = ""
            if targeted:
                verdict = "ok" if median < TARGET_MS else "MISSED"
                ok &= median < TARGET_MS
            print(f"  {label:<28} median {median:6.1f} ms  p95 {p95(times):6.1f} ms  (CPU median "
                  f"{statistics.median(cpu):5.1f} ms)  {queries:>2} queries  {size / 1024:4.0f} KB  {verdict}")

        counts = {}
        default = views.PAGE_SIZE
        try:
            for size in (10, default, 200):
                views.PAGE_SIZE = size
                counts[size] = measure(client, listing, 1)[2]
        finally:
            views.PAGE_SIZE = default
        conv_counts = {label: measure(client, reverse("inbox:conversation", args=[ids[key]]), 1)[2]
                       for label, key in ((f"~{ids['per']}", "short"), (str(BIG), "big"))}
        today_before = measure(client, reverse("home"), 1)[2]
        with transaction.atomic():
            add_today_data(ids, random.Random(8), leads=2_000, offset=10**6)
        today_after = measure(client, reverse("home"), 1)[2]
        same = (len(set(counts.values())) == 1 and len(set(conv_counts.values())) == 1
                and today_before == today_after)
        ok &= same
        print("queries:  list at page size " + ", ".join(f"{s}: {n}" for s, n in counts.items())
              + "; conversation of " + ", ".join(f"{k} messages: {n}" for k, n in conv_counts.items())
              + f"; today {today_before} then {today_after} after more rows"
              + ("  constant" if same else "  NOT CONSTANT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
