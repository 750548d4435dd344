"""Benchmark the inbox backfill against the fake provider server, rate limits off.

    .venv/bin/python benchmarks/ingest.py [--threads 5000] [--per-thread 10]

Backfills one identity holding `--threads` conversations of `--per-thread`
messages (50,000 messages by default) through the same code as the Celery
task and `manage.py backfill`: both folders walked to their end (the threaded
folder holds every message, the sent folder half of them again, which are
deduplicated), pages stored in bulk, cursor, account history, search queueing.
Prints messages/s (distinct messages archived per second of wall time), the
same per second of this process's CPU time (what a dedicated core would do;
wall time on a shared machine mostly measures waiting for a CPU) and the peak
memory.  The fake server runs in this process, so its JSON work is part
of the figures (a floor, not a ceiling).  Target: >= 2,000 messages/s.

Runs on a fresh SQLite file by default; with MYSQL_URL set it creates (and then
drops) a scratch `test_<name>` database on that server.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

# First: it sets the environment up and calls django.setup().
from _django import fake_provider, scratch_database
from django.db import connection


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=5_000)
    parser.add_argument("--per-thread", type=int, default=10)
    args = parser.parse_args()
    total = args.threads * args.per_thread

    with scratch_database(), fake_provider() as fake:
        from identities.models import Provider
        from identities.services import connect_identity, session_for
        from inbox.models import Conversation, Message
        from inbox.services.ingest import walk_folder
        from inbox.services.syncing import FOLDERS
        from rediska.providers.base import RemoteAccount

        Provider.objects.get_or_create(provider_id="reddit", defaults={"display_name": "Reddit"})
        identity = connect_identity(provider_id="reddit", refresh_token=fake.issue_refresh_token("bench"),
                                    account=RemoteAccount(username="bench"))
        fake.bulk_threads("bench", threads=args.threads, per_thread=args.per_thread)
        session = session_for(identity)
        before = peak_rss_mb()

        load = os.getloadavg()[0]
        started, started_cpu = time.perf_counter(), time.process_time()
        results, times = [], []
        for folder in FOLDERS:
            results.append(walk_folder(identity, session, folder, full=True, owner="bench"))
            times.append(time.perf_counter() - (started + sum(times)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu

        stored, conversations = Message.objects.count(), Conversation.objects.count()
        assert stored == total and conversations == args.threads, (stored, conversations)
        assert Message.objects.values("external_message_id").distinct().count() == total
        read = sum(r.messages for r in results)
        print(f"database: {connection.vendor}")
        for r, seconds in zip(results, times):
            print(f"  {r.folder:<6} {r.pages:>4} pages, {r.messages:>6} messages read, {r.new:>6} new, {seconds:.2f} s")
        print(f"ingest:   {total} messages in {conversations} conversations, {read} read, {elapsed:.2f} s "
              f"-> {total / elapsed:,.0f} messages/s ({read / elapsed:,.0f} reads/s)")
        print(f"cpu:      {cpu:.2f} s in this process -> {total / cpu:,.0f} messages per CPU-second "
              f"(load average {load:.1f} on {os.cpu_count()} CPUs when it started: on a busy machine wall "
              f"time mostly measures waiting for a CPU{'' if connection.vendor == 'sqlite' else '; excludes the database server'})")
        print(f"memory:   peak RSS {peak_rss_mb():.0f} MB (+{peak_rss_mb() - before:.0f} MB during the backfill; "
              f"the fake server's {total} messages live in the same process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
