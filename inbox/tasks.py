"""Celery tasks of the inbox under the spec §7 names: ids in, one service call, a summary out."""

from __future__ import annotations

from identities.models import Identity
from identities.services import session_for
from rediska.jobs import TransientJobError, ledger_task

from .services import export_import, sending
from .services.ingest import WalkResult, walk_folder
from .services.syncing import enqueue_folder_backfills, folders_for, schedule_syncs, sync_identity


def _progress(job):
    """Report each page on the job row (the jobs and identity pages poll it)."""
    totals: dict[str, WalkResult] = {}

    def on_page(result: WalkResult) -> None:
        totals[result.folder] = result
        job.set_progress(folder=result.folder, pages=sum(r.pages for r in totals.values()),
                         messages=sum(r.messages for r in totals.values()), new=sum(r.new for r in totals.values()))

    return on_page


def _identity(identity_id: int) -> Identity | None:
    return Identity.objects.filter(pk=identity_id, is_active=True, credentials__isnull=False).distinct().first()


@ledger_task("ingest.sync_delta", queue="ingest", max_attempts=10)
def sync_delta(job, identity_id: int | None = None) -> dict:
    """With no id (the beat): enqueue a sync of every active identity.  With one: sync it."""
    if identity_id is None:
        return {"enqueued": [j.pk for j in schedule_syncs()]}
    identity = _identity(identity_id)
    if identity is None:
        return {"skipped": "the identity is deactivated, gone or has no access (archive-only)"}
    return sync_identity(identity, session_for(identity), owner=f"job:{job.pk}", on_page=_progress(job)).as_dict()


@ledger_task("ingest.backfill_conversations", queue="ingest", max_attempts=3)
def backfill_conversations(job, identity_id: int) -> dict:
    """Archive every conversation of the identity: one backfill job per folder."""
    identity = _identity(identity_id)
    if identity is None:
        return {"skipped": "the identity is deactivated, gone or has no access (archive-only)"}
    return {"jobs": [j.pk for j in enqueue_folder_backfills(identity, job)]}


@ledger_task("ingest.backfill_messages", queue="ingest", max_attempts=20)
def backfill_messages(job, identity_id: int, folder: str) -> dict:
    """Walk one folder to its end, resuming where an interrupted run stopped."""
    identity = _identity(identity_id)
    if identity is None:
        return {"skipped": "the identity is deactivated, gone or has no access (archive-only)"}
    if folder not in folders_for(identity):
        return {"skipped": f"this identity's connection cannot sync the {folder} folder"}
    result = walk_folder(identity, session_for(identity), folder, full=True, owner=f"job:{job.pk}",
                         on_page=_progress(job))
    if result.busy:
        raise TransientJobError(f"A sync of the {folder} folder is under way; the backfill waits for it.")
    return result.as_dict()


# A send is never retried by the ledger: only the user's next click sends again.
@ledger_task("message.send_manual", queue="message", max_attempts=1)
def send_manual(job, identity_id: int, body: str, idempotency_key: str, conversation_id: int | None = None,
                to_username: str | None = None, subject: str | None = None) -> dict:
    from .models import Conversation

    identity = Identity.objects.get(pk=identity_id)
    conversation = (
        Conversation.objects.select_related("counterpart_account").get(pk=conversation_id) if conversation_id else None
    )
    message = sending.send_manual(identity=identity, body=body, idempotency_key=idempotency_key,
                                  conversation=conversation, to_username=to_username, subject=subject)
    return {"message_id": message.pk}


@ledger_task("ingest.import_export", queue="ingest", max_attempts=5)
def import_export(job, identity_id: int, token: str, original_name: str = "") -> dict:
    """Import an uploaded data export, from where an interrupted run stopped; the summary is the result."""
    identity = Identity.objects.filter(pk=identity_id).first()
    if identity is None:
        return {"skipped": "the identity is gone"}
    record = export_import.import_of(identity, token, original_name)
    return export_import.run_import(record, on_progress=lambda fields: job.set_progress(**fields))
