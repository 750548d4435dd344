"""The search facade: the only entry point other apps use."""

from __future__ import annotations

BATCH = 500
KINDS = ("message", "lead_post", "profile_item", "profile_snapshot")


def index_later(kind: str, *pks: int) -> None:
    """(Re)index these rows after the current transaction commits, in batches."""
    if kind not in KINDS:
        raise ValueError(f"unknown search document kind: {kind!r}")
    from rediska.jobs import enqueue

    ids = sorted({int(pk) for pk in pks})
    for start in range(0, len(ids), BATCH):
        enqueue("index.upsert_content", kind, ids[start : start + BATCH], queue="index")
