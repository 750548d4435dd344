"""Keeping identities in sync: what the beat, the buttons and the commands start.

Jobs of one identity share the dedupe-key prefix `inbox:<identity id>:`, so
the identity page can show them and a second click joins the running job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from identities.models import Identity
from identities.services import archive_only_message, capabilities_for
from rediska import audit
from rediska.jobs import enqueue
from rediska.models import Job
from rediska.providers.base import ProviderSession
from rediska.providers.errors import ListingUnavailableError

from ..errors import InboxError
from ..models import ListingState, SyncCursor
from .ingest import WalkResult, check_counterparts, walk_folder

FOLDERS = ("inbox", "sent")


def job_prefix(identity_id: int, kind: str = "") -> str:
    return f"inbox:{identity_id}:{kind}"


def active_jobs(identity: Identity, kind: str = "") -> list[Job]:
    return list(
        Job.objects.filter(dedupe_key__startswith=job_prefix(identity.pk, kind), status__in=Job.ACTIVE)
        .defer("payload_json", "result_json", "last_error").order_by("id")
    )


def _syncable(identity: Identity) -> None:
    if not identity.is_active:
        raise InboxError(f"{identity.display_name} is deactivated: reconnect it to sync.", code="inactive")
    if identity.is_archive_only:
        raise InboxError(archive_only_message(identity), code="archive_only")
    if identity.needs_reconnect:
        raise InboxError(f"{identity.display_name} must be reconnected before it can sync.", code="inactive")
    capabilities = capabilities_for(identity)
    if not capabilities.can_sync:
        raise InboxError(capabilities.why_not("sync_received"), code="cannot_sync")


def folders_for(identity: Identity) -> list[str]:
    """The folders this identity's connection can sync (received, sent)."""
    capabilities = capabilities_for(identity)
    return [folder for folder, able in (("inbox", capabilities.sync_received), ("sent", capabilities.sync_sent))
            if able]


def request_sync(identity: Identity) -> Job:
    """The "Sync now" button: a sync job, or the one already under way."""
    _syncable(identity)
    running = active_jobs(identity, "sync:") + active_jobs(identity, "backfill")
    if running:
        return running[0]
    job = enqueue("ingest.sync_delta", identity.pk, dedupe_key=job_prefix(identity.pk, f"sync:{uuid.uuid4().hex}"))
    audit.record("inbox.request_sync", provider_id=identity.provider_id, identity_id=identity.pk, entity=job)
    return job


def request_backfill(identity: Identity) -> Job:
    """The "Backfill" button: walk every folder to its end (one job per folder)."""
    _syncable(identity)
    running = active_jobs(identity, "backfill")
    if running:
        return running[0]
    job = enqueue("ingest.backfill_conversations", identity.pk,
                  dedupe_key=job_prefix(identity.pk, f"backfill:{uuid.uuid4().hex}"))
    audit.record("inbox.request_backfill", provider_id=identity.provider_id, identity_id=identity.pk, entity=job)
    return job


def enqueue_folder_backfills(identity: Identity, parent: Job) -> list[Job]:
    return [
        enqueue("ingest.backfill_messages", identity.pk, folder,
                dedupe_key=job_prefix(identity.pk, f"backfill-{folder}:{parent.pk}"))
        for folder in folders_for(identity)
    ]


def schedule_syncs(now=None) -> list[Job]:
    """The beat's tick: one sync job per active identity, none while one is still under way."""
    now = now or timezone.now()
    slot = int(now.timestamp() // settings.SYNC_INTERVAL_SECONDS)
    busy = {
        int(key.split(":")[1])
        for key in Job.objects.filter(dedupe_key__startswith="inbox:", status__in=Job.ACTIVE)
        .values_list("dedupe_key", flat=True)
    }
    identities = Identity.objects.filter(is_active=True, needs_reconnect_at__isnull=True) \
        .prefetch_related("credentials").order_by("pk")
    return [
        enqueue("ingest.sync_delta", identity.pk, dedupe_key=job_prefix(identity.pk, f"sync:tick-{slot}"))
        for identity in identities
        if identity.pk not in busy and capabilities_for(identity).can_sync
    ]


@dataclass
class SyncSummary:
    folders: list[WalkResult]
    accounts_checked: int
    # Folder -> why the provider no longer serves it to this app.
    unavailable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        summary = {"folders": [f.as_dict() for f in self.folders], "accounts_checked": self.accounts_checked,
                   "new": self.new, "messages": sum(f.messages for f in self.folders)}
        if self.unavailable:
            summary["unavailable"] = self.unavailable
        return summary

    @property
    def new(self) -> int:
        return sum(f.new for f in self.folders)


def sync_identity(identity: Identity, session: ProviderSession, *, owner: str,
                  on_page: Callable[[WalkResult], None] | None = None) -> SyncSummary:
    """Fetch what is new in every folder (everything, the first time), then check a few counterparts.

    A folder the provider no longer serves is noted and the others still sync;
    when none is served the sync fails in plain words (retrying would not help).
    """
    folders, unavailable, first_refusal = [], {}, None
    for folder in folders_for(identity):
        try:
            folders.append(walk_folder(identity, session, folder, full=False, owner=owner, on_page=on_page))
        except ListingUnavailableError as exc:
            unavailable[folder] = exc.user_message
            first_refusal = first_refusal or exc
    if first_refusal is not None and not folders:
        raise first_refusal
    checked = check_counterparts(identity, session) if capabilities_for(identity).read_profiles else 0
    return SyncSummary(folders=folders, accounts_checked=checked, unavailable=unavailable)


def listing_states(identity: Identity) -> list[ListingState]:
    return list(ListingState.objects.filter(identity=identity).order_by("folder", "id"))


def cursors(identity: Identity) -> list[SyncCursor]:
    """One cursor per folder (unsaved ones for folders never walked)."""
    found = {c.folder: c for c in SyncCursor.objects.filter(identity=identity)}
    return [found.get(folder) or SyncCursor(identity=identity, folder=folder) for folder in FOLDERS]
