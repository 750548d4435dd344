"""Benchmark the data export import: a ZIP of 100,000 messages and 50,000 chat lines, on SQLite.

    .venv/bin/python benchmarks/import_export.py [--messages 100000] [--chats 50000]

Builds an export in Reddit's documented format (multi-line quoted bodies,
` UTC` dates, a BOM) and imports it into a fresh identity through the same
service as the `ingest.import_export` task and `manage.py import_export`:
both passes (the check of every file, then the batched store through the
inbox store, cursor and summary per batch, search queueing).  Prints rows/s
of wall and CPU time (target: >= 5,000 messages/s), then the peak Python
memory (tracemalloc) of imports of one size and of three times that size,
with the same number of threads and chats: flat memory means the two peaks
are about equal, whatever the file size.  A second import of the same file
must find 0 new.

Runs on a fresh SQLite file by default; with MYSQL_URL set it creates (and then
drops) a scratch `test_<name>` database on that server.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

# First: it sets the environment up and calls django.setup().
from _django import DATA_DIR, scratch_database
from django.db import connection

THREADS = 2_000
CHANNELS = 1_000
BODY = "Hello there,\nthanks for the message about the trip.\n\nSee you, and take care"


def build(path, messages: int, chats: int, prefix: str = ""):
    from tests.fakes.reddit_export import chat, message, write_export

    def message_rows():
        for i in range(messages):
            thread = i % THREADS
            mine = i % 2 == 0
            other = f"person{thread % 500}"
            yield message(f"{prefix}m{i:x}", "bench" if mine else other, other if mine else "bench", f"{BODY} {i}",
                          thread="" if i < THREADS else f"{prefix}m{thread:x}", minutes=i)

    def chat_rows():
        for i in range(chats):
            channel = i % CHANNELS
            sender = "bench" if i % 3 == 0 else f"friend{channel}"
            yield chat(f"{prefix}ev{i}", sender, f"{BODY} chat {i}", channel=f"{prefix}room{channel}", minutes=i)

    return write_export(path, messages=message_rows(), chats=chat_rows(), bom=True)


def run(identity, path):
    from inbox.services.export_import import local_import, run_import

    return run_import(local_import(identity, path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=50_000)
    args = parser.parse_args()
    rows = args.messages + args.chats

    with scratch_database():
        from identities.models import Identity, Provider

        provider, _ = Provider.objects.get_or_create(provider_id="reddit", defaults={"display_name": "Reddit"})
        from inbox.models import Message

        started = time.perf_counter()
        path = build(DATA_DIR / "export.zip", args.messages, args.chats)
        print(f"built {path.name}: {path.stat().st_size / 2**20:.1f} MB for {args.messages:,} messages and "
              f"{args.chats:,} chat lines in {time.perf_counter() - started:.1f} s")

        identity = Identity.objects.create(provider=provider, external_username="bench", display_name="Bench")
        load = os.getloadavg()[0]
        started, started_cpu = time.perf_counter(), time.process_time()
        summary = run(identity, path)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        stored = Message.objects.count()
        print(f"import on {connection.vendor}: {summary['new']:,} new of {rows:,} rows ({stored:,} messages stored) "
              f"in {wall:.1f} s = {stored / wall:,.0f} messages/s wall, {stored / cpu:,.0f} messages/s CPU "
              f"(load average {load:.1f} on {os.cpu_count()} cores; target >= 5,000/s)")
        if summary["new"] != rows or stored != rows:
            print("FAILED: not every row was stored", file=sys.stderr)
            return 1

        started = time.perf_counter()
        again = run(identity, path)
        print(f"second import of the same file: {again['new']} new, {again['known']:,} already known "
              f"in {time.perf_counter() - started:.1f} s")
        if again["new"]:
            print("FAILED: the second import stored something", file=sys.stderr)
            return 1

        peaks = []
        for size in (1, 3):
            small = build(DATA_DIR / f"export-{size}.zip", 10_000 * size, 5_000 * size, prefix=f"x{size}")
            tracemalloc.start()
            run(identity, small)
            peaks.append((small.stat().st_size, tracemalloc.get_traced_memory()[1]))
            tracemalloc.stop()
        for size, peak in peaks:
            print(f"peak Python memory importing a {size / 2**20:.1f} MB export: {peak / 2**20:.1f} MB")
        growth = peaks[1][1] / max(peaks[0][1], 1)
        print(f"memory x{growth:.2f} for a file x{peaks[1][0] / peaks[0][0]:.1f} the size "
              f"({'flat' if growth < 1.5 else 'NOT flat'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
