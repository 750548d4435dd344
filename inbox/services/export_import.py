"""Importing a data export into an identity's archive, through the one inbox store.

Legacy private messages and direct chats go through `store_messages`, the
same storing service synced pages use: the same ids (the provider's export
format normalises them to the API's form), the same threading and the same
INSERT IGNORE idempotency, so an export and a sync can arrive in either
order and every message is stored once.  Direct chats become one
conversation per chat with the other participant as counterpart; group and
community chats are counted and listed as not imported yet.  The identity's
own posts and comments go to the apps that keep profile items (registered
with `register_item_store`: leads keeps them as profile items of the
identity's own account).

Two passes over the archive (each streamed, row by row): `rediska.exports.scan`
checks every file and learns who the export belongs to and who is in each
chat, so a refused import writes nothing; then rows are stored in batches,
each batch with the cursor (file, row) and the running summary in one
transaction, so a re-run after a killed worker goes on at the next row.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from identities.models import Identity
from rediska import audit
from rediska.exports import ExportError, ExportFileError, Scan, discard_upload, open_archive, scan, upload_path
from rediska.jobs import TransientJobError, enqueue
from rediska.models import Job
from rediska.providers import get_provider
from rediska.providers.base import ExportFormat, ExportRowError, RemoteMessage, RemoteProfileItem

from ..accounts import apply_message_history
from ..errors import InboxError
from ..models import Conversation, ExportImport
from .ingest import store_messages

log = logging.getLogger(__name__)

BATCH = 10_000
TASK = "ingest.import_export"
GROUP_REASON = "group and community chats are not imported yet"
ItemStore = Callable[[Identity, list[RemoteProfileItem]], int]
_item_stores: list[ItemStore] = []


def register_item_store(store: ItemStore) -> None:
    """Let an app keep the identity's own posts and comments: `store(identity, items) -> new count`."""
    if store not in _item_stores:
        _item_stores.append(store)


def job_key(identity_id: int, token: str) -> str:
    # The inbox jobs prefix: the identity page lists it with the other archive jobs.
    return f"inbox:{identity_id}:import:{token}"


# --- starting -------------------------------------------------------------------------


def _importable(identity: Identity) -> ExportFormat:
    if not identity.is_active:
        raise InboxError(f"{identity.display_name} is deactivated: reconnect it before importing.", code="inactive")
    fmt = get_provider(identity.provider_id).export_format()
    if fmt is None:
        raise InboxError(f"{identity.provider.display_name} has no data export to import.", code="invalid")
    return fmt


def request_import(identity: Identity, token: str, original_name: str, *, actor: str = "user") -> ExportImport:
    """Queue the import of an uploaded export (kept under DATA_DIR until the import finishes)."""
    _importable(identity)
    with transaction.atomic():
        record = _record(identity, token, original_name)
        enqueue(TASK, identity.pk, token, original_name=original_name, dedupe_key=job_key(identity.pk, token))
        audit.record("inbox.import_export.request", actor=actor, provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=record, request={"file": record.original_name})
    return record


def _record(identity: Identity, token: str, original_name: str) -> ExportImport:
    record, _ = ExportImport.objects.get_or_create(
        token=token, defaults={"identity": identity, "source_path": str(upload_path(token)), "owned": True,
                               "original_name": (original_name or "export.zip")[:255]})
    return record


def import_of(identity: Identity, token: str, original_name: str = "") -> ExportImport:
    """The import of this upload (created by its job when the upload page only enqueued it)."""
    return _record(identity, token, original_name)


def local_import(identity: Identity, path: Path) -> ExportImport:
    """An import of a ZIP or folder on this machine (the command): read in place, never deleted."""
    _importable(identity)
    return ExportImport.objects.create(token=uuid.uuid4().hex, identity=identity, source_path=str(path),
                                       original_name=path.name[:255], owned=False)


def imports_of(identity: Identity, limit: int = 5) -> list[ExportImport]:
    """The identity's latest imports, with (unsaved, queued) rows for jobs whose run has not started yet."""
    records = list(ExportImport.objects.filter(identity=identity).order_by("-created_at", "-id")[:limit])
    known = {r.token for r in records}
    waiting = Job.objects.filter(dedupe_key__startswith=job_key(identity.pk, ""), status__in=Job.ACTIVE)
    queued = [ExportImport(identity=identity, token=key.rsplit(":", 1)[1], created_at=created,
                           original_name=(payload.get("kwargs") or {}).get("original_name") or "export.zip")
              for key, created, payload in waiting.values_list("dedupe_key", "created_at", "payload_json")
              if key.rsplit(":", 1)[1] not in known]
    return queued + records


# --- running --------------------------------------------------------------------------


def run_import(record: ExportImport, *, on_progress: Callable[[dict], None] | None = None) -> dict:
    """Scan (once), then store from the cursor on; returns the summary.  Safe to call again at any time."""
    if record.status in (ExportImport.Status.DONE, ExportImport.Status.REFUSED):
        return record.summary_json or {}
    identity = Identity.objects.select_related("provider").get(pk=record.identity_id)
    try:
        fmt = _importable(identity)
        with open_archive(Path(record.source_path)) as archive:
            if record.plan_json is None:
                _plan(record, identity, archive, fmt, on_progress)
            _store(record, identity, archive, fmt, on_progress)
    except (ExportError, InboxError) as exc:
        return _refuse(record, identity, exc.user_message)
    return _finish(record, identity)


def _plan(record: ExportImport, identity: Identity, archive, fmt: ExportFormat, on_progress) -> None:
    ExportImport.objects.filter(pk=record.pk).update(status=ExportImport.Status.SCANNING, updated_at=timezone.now())
    scanned = [0]

    def counted(rows: int) -> None:
        scanned[0] += rows
        if on_progress:
            on_progress({"stage": "checking files", "rows_checked": scanned[0]})

    result = scan(archive, fmt, on_rows=counted)
    me = identity.external_username
    if not result.owns(me):
        raise ExportError(f"This export belongs to {result.candidates(1)[0]}, not {me}: import it into that "
                          "identity (or create one from it).")
    if not result.readable:
        reasons = "; ".join(f"{f.name}: {f.error}" for f in result.files)
        raise ExportError(f"No file of this export can be read ({reasons}).")
    record.plan_json = _plan_json(result, me)
    record.summary_json = _empty_summary(result, record.plan_json)
    record.status = ExportImport.Status.IMPORTING
    record.cursor_member = record.cursor_row = 0
    record.save(update_fields=["plan_json", "summary_json", "status", "cursor_member", "cursor_row", "updated_at"])


def _plan_json(result: Scan, me: str) -> dict:
    channels = {}
    for channel_id, channel in result.channels.items():
        others = [name for key, name in channel.display.items() if key != me.lower()]
        direct = channel.direct if channel.direct is not None else True
        if len(channel.names | {me.lower()}) > 2:
            direct = False  # three people or more: a group, whatever the type column says
        if not others and channel.channel_name and channel.channel_name.lower() != me.lower() and direct:
            others = [channel.channel_name]  # only the identity wrote: the chat's name is the other person's
        channels[channel_id] = {"direct": direct, "other": others[0] if others else None, "kind": channel.kind,
                                "lines": channel.lines}
    return {"files": [{"name": f.name, "table": f.table, "rows": f.rows, "error": f.error} for f in result.files],
            "others": result.others[:50], "channels": channels, "total": result.rows}


def _empty_summary(result: Scan, plan: dict) -> dict:
    groups = [c for c in plan["channels"].values() if not c["direct"]]
    return {
        "files": [{"name": f.name, "table": f.table, "rows": f.rows, "new": 0, "known": 0, "skipped": {},
                   **({"error": f.error} if f.error else {})} for f in result.files],
        "not_read": result.others[:50],
        "chats_not_imported": {"chats": len(groups), "lines": sum(c["lines"] for c in groups),
                               "kinds": dict(Counter(c["kind"] for c in groups)), "reason": GROUP_REASON}
        if groups else None,
        "done": 0, "total": plan["total"], "new": 0, "known": 0, "skipped": 0,
    }


def _store(record: ExportImport, identity: Identity, archive, fmt: ExportFormat, on_progress) -> None:
    plan, summary = record.plan_json, record.summary_json
    members = {m.basename: m for m in archive.members}
    for index in range(record.cursor_member, len(plan["files"])):
        planned = plan["files"][index]
        if planned["error"]:
            continue
        member = members.get(planned["name"])
        if member is None:
            raise ExportError(f"{planned['name']} is no longer in the export: upload it again.")
        start = record.cursor_row if index == record.cursor_member else 0
        batch: list[tuple[int, dict]] = []
        try:
            for number, row in archive.rows(member):
                if number <= start:
                    continue  # stored by the run that was interrupted
                batch.append((number, row))
                if len(batch) >= BATCH:
                    _flush(record, identity, fmt, index, batch, on_progress)
                    batch = []
        except ExportFileError as exc:
            # Read whole by the first pass: the archive changed under us.  Keep what is stored, say so.
            summary["files"][index]["error"] = exc.reason
        _flush(record, identity, fmt, index, batch, on_progress, end_of_file=True)


def _rows_to_store(identity: Identity, fmt: ExportFormat, table: str, batch, channels: dict, skipped: Counter):
    """The batch mapped onto messages or profile items; unusable rows counted by reason."""
    me = identity.external_username.lower()
    messages: list[RemoteMessage] = []
    items: list[RemoteProfileItem] = []
    for _, row in batch:
        try:
            if table == "messages":
                m = fmt.message(row)
                if me not in ((m.author or "").lower(), (m.recipient or "").lower()):
                    raise ExportRowError(f"not a message of {identity.external_username}")
                messages.append(m)
            elif table == "chats":
                line = fmt.chat_line(row)
                channel = channels.get(line.channel_id) or {"direct": False}
                if not channel["direct"]:
                    raise ExportRowError(GROUP_REASON)
                mine = (line.author or "").lower() == me
                messages.append(RemoteMessage(
                    external_id=line.external_id, conversation_external_id=line.channel_id, author=line.author,
                    recipient=channel["other"] if mine else identity.external_username, sent_at=line.sent_at,
                    body=line.body, subject=f"Chat: {line.channel_name}" if line.channel_name else "Chat"))
            else:
                if not _item_stores:
                    raise ExportRowError("own posts and comments are not kept by this installation")
                items.append(fmt.profile_item(table, row))
        except ExportRowError as exc:
            skipped[str(exc)] += 1
    return messages, items


def _flush(record: ExportImport, identity: Identity, fmt: ExportFormat, index: int, batch, on_progress, *,
           end_of_file: bool = False) -> None:
    summary = record.summary_json
    entry = summary["files"][index]
    skipped: Counter = Counter()
    messages, items = _rows_to_store(identity, fmt, entry["table"], batch, record.plan_json["channels"], skipped)
    with transaction.atomic():
        # Two runs of one import (a re-queued job while the first still runs): the one behind stops.
        stored = ExportImport.objects.select_for_update().values_list("cursor_member", "cursor_row").get(pk=record.pk)
        if stored != (record.cursor_member, record.cursor_row):
            raise TransientJobError("Another run of this import is ahead of this one; this one stops.")
        new = known = 0
        if messages:
            result = store_messages(identity, messages)
            new = len(result.new_ids)
            for item in result.skipped:
                skipped[item.reason] += 1
            known = result.stored - new
        if items:
            fresh = sum(store(identity, items) for store in _item_stores)
            new, known = new + fresh, known + len(items) - fresh
        for reason, count in skipped.items():
            entry["skipped"][reason] = entry["skipped"].get(reason, 0) + count
        entry["new"] += new
        entry["known"] += known
        summary["new"] += new
        summary["known"] += known
        summary["skipped"] += sum(skipped.values())
        summary["done"] += len(batch)
        if batch:
            record.cursor_member, record.cursor_row = index, batch[-1][0]
        if end_of_file:
            record.cursor_member, record.cursor_row = index + 1, 0
        record.save(update_fields=["summary_json", "cursor_member", "cursor_row", "updated_at"])
    if on_progress:
        on_progress({"stage": "importing", "file": entry["name"], "total": summary["total"], "done": summary["done"],
                     "new": summary["new"], "known": summary["known"], "skipped": summary["skipped"]})


def _refuse(record: ExportImport, identity: Identity, reason: str) -> dict:
    now = timezone.now()
    with transaction.atomic():
        ExportImport.objects.filter(pk=record.pk).update(status=ExportImport.Status.REFUSED, error=reason[:500],
                                                         finished_at=now, updated_at=now)
        audit.record("inbox.import_export", actor="system", result="error", provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=record, request={"file": record.original_name}, error=reason)
    record.status, record.error, record.finished_at = ExportImport.Status.REFUSED, reason[:500], now
    _discard(record)
    return {"refused": reason}


def _finish(record: ExportImport, identity: Identity) -> dict:
    now = timezone.now()
    summary = record.summary_json
    with transaction.atomic():
        touched = Conversation.objects.filter(identity=identity, updated_at__gte=record.created_at)
        apply_message_history(touched.values_list("counterpart_account_id", flat=True).distinct())
        ExportImport.objects.filter(pk=record.pk).update(status=ExportImport.Status.DONE, finished_at=now,
                                                         updated_at=now)
        audit.record("inbox.import_export", actor="system", provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=record, request={"file": record.original_name},
                     response={k: summary[k] for k in ("new", "known", "skipped", "total")})
    record.status, record.finished_at = ExportImport.Status.DONE, now
    _discard(record)
    return summary


def _discard(record: ExportImport) -> None:
    if record.owned:
        discard_upload(record.token)
