"""The search facade: the only entry point other apps use.

    search.index_later("message", *message_ids)

Kinds: `message`, `lead_post`, `profile_item`, `profile_snapshot`, plus
`conversation` and `account`, which re-index every item that depends on them
(call these after hiding a conversation or an account, or after an account's
remote status changes).  The job is sent after the current transaction commits.
"""

from __future__ import annotations

BATCH = 500
KINDS = ("message", "lead_post", "profile_item", "profile_snapshot", "conversation", "account")


def index_later(kind: str, *pks: int) -> None:
    """(Re)index these rows after the current transaction commits, in batches."""
    if kind not in KINDS:
        raise ValueError(f"unknown search document kind: {kind!r}")
    from rediska.jobs import enqueue

    ids = sorted({int(pk) for pk in pks})
    for start in range(0, len(ids), BATCH):
        enqueue("index.upsert_content", kind, ids[start : start + BATCH], queue="index")
