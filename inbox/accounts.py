"""Counterpart accounts: bulk upsert and the state machine of spec §5.

contact:    not_contacted -> contacted            (first_contacted_at)
engagement: not_engaged   -> engaged              (inbound after the first contact;
                                                   first_inbound_after_contact_at)
analysis:   not_analyzed  -> analyzed -> needs_refresh -> analyzed ...
                                                  (first_analyzed_at set once, never moved)

Live events (`mark_*`) set a first-time stamp only when it is empty.  Importing
the archive (`apply_message_history`) may reveal an earlier first contact or
first reply than a live event recorded, so it only ever moves those stamps
earlier, never clears or postpones them.  Nothing here calls a provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

import search

from .models import ExternalAccount, Message

Status = ExternalAccount.RemoteStatus
KNOWN_STATUSES = {Status.ACTIVE, Status.DELETED, Status.SUSPENDED}


def _pairs(usernames_with_status) -> list[tuple[str, str | None]]:
    if isinstance(usernames_with_status, Mapping):
        return list(usernames_with_status.items())
    return [(name, status) for name, status in usernames_with_status]


def upsert_accounts(
    provider_id: str,
    usernames_with_status: Mapping[str, str | None] | Iterable[tuple[str, str | None]],
    *,
    seen_at: datetime | None = None,
) -> dict[str, ExternalAccount]:
    """The account of every username (created when missing), keyed by the names as given.

    Usernames match case-insensitively, as providers treat them.  A status of
    None or "unknown" means "no news" and leaves the stored status alone; a
    known status is stored with `seen_at` (default: now).  A handful of
    queries whatever the number of names.
    """
    pairs = [(name, status) for name, status in _pairs(usernames_with_status) if name]
    if not pairs:
        return {}
    now = seen_at or timezone.now()
    wanted: dict[str, str] = {}  # lowercased -> first spelling given
    for name, _ in pairs:
        wanted.setdefault(name.lower(), name)
    accounts = ExternalAccount.objects.filter(provider_id=provider_id).order_by()
    found = {a.external_username.lower(): a for a in accounts.filter(external_username__in=list(wanted.values()))}
    missing = [key for key in wanted if key not in found]
    if missing:
        # Another spelling of a known name (rare: providers echo the canonical case).
        found.update(
            (a.external_username.lower(), a)
            for a in accounts.annotate(lname=Lower("external_username")).filter(lname__in=missing)
        )
        missing = [key for key in missing if key not in found]
    if missing:
        statuses = {name.lower(): status for name, status in pairs if status in KNOWN_STATUSES}
        ExternalAccount.objects.bulk_create(
            [
                ExternalAccount(
                    provider_id=provider_id,
                    external_username=wanted[key],
                    remote_status=statuses.get(key, Status.UNKNOWN),
                    remote_status_last_seen_at=now if key in statuses else None,
                )
                for key in missing
            ],
            ignore_conflicts=True,  # a concurrent sync may have created some
        )
        found.update(
            (a.external_username.lower(), a)
            for a in accounts.filter(external_username__in=[wanted[key] for key in missing])
        )
    _store_statuses(found, pairs, now)
    return {name: found[name.lower()] for name, _ in pairs if name.lower() in found}


def _store_statuses(found: dict[str, ExternalAccount], pairs, seen_at: datetime) -> None:
    changed, moved = {}, set()
    for name, status in pairs:
        account = found.get(name.lower())
        if account is None or status not in KNOWN_STATUSES:
            continue
        if account.remote_status != status:
            moved.add(account.pk)
        if account.remote_status != status or account.remote_status_last_seen_at != seen_at:
            account.remote_status, account.remote_status_last_seen_at = status, seen_at
            changed[account.pk] = account
    if changed:
        ExternalAccount.objects.bulk_update(
            list(changed.values()), ["remote_status", "remote_status_last_seen_at"]
        )
    if moved:
        # Search documents carry the account's status (and filter on it).
        search.index_later("account", *moved)


def mark_remote_status(account: ExternalAccount, status: str, at: datetime) -> None:
    """What the provider last said about the account (active, deleted, suspended)."""
    moved = account.remote_status != status
    account.remote_status, account.remote_status_last_seen_at = status, at
    account.save(update_fields=["remote_status", "remote_status_last_seen_at", "updated_at"])
    if moved:
        search.index_later("account", account.pk)


# --- transitions (pure: they change the instance and say which fields moved) -----


def _contacted(account: ExternalAccount, at: datetime, *, earlier_only: bool = False) -> set[str]:
    changed = set()
    if account.contact_state != ExternalAccount.ContactState.CONTACTED:
        account.contact_state = ExternalAccount.ContactState.CONTACTED
        changed.add("contact_state")
    if account.first_contacted_at is None or (earlier_only and at < account.first_contacted_at):
        account.first_contacted_at = at
        changed.add("first_contacted_at")
    return changed


def _inbound(account: ExternalAccount, at: datetime, *, earlier_only: bool = False) -> set[str]:
    if account.first_contacted_at is None or at <= account.first_contacted_at:
        return set()  # a message before any contact from us is not engagement
    changed = set()
    if account.engagement_state != ExternalAccount.EngagementState.ENGAGED:
        account.engagement_state = ExternalAccount.EngagementState.ENGAGED
        changed.add("engagement_state")
    first = account.first_inbound_after_contact_at
    if first is None or (earlier_only and at < first):
        account.first_inbound_after_contact_at = at
        changed.add("first_inbound_after_contact_at")
    return changed


def _save(account: ExternalAccount, fields: set[str]) -> None:
    if fields:
        account.save(update_fields=sorted(fields | {"updated_at"}))


def mark_contacted(account: ExternalAccount, at: datetime) -> None:
    """We sent this person a message at `at`."""
    _save(account, _contacted(account, at))


def mark_inbound(account: ExternalAccount, at: datetime) -> None:
    """This person wrote to us at `at`: engagement, when it follows our first contact."""
    _save(account, _inbound(account, at))


def mark_items_arrived(account: ExternalAccount) -> None:
    """New posts/comments were stored for the person: an analysis is now stale."""
    if account.analysis_state == ExternalAccount.AnalysisState.ANALYZED:
        account.analysis_state = ExternalAccount.AnalysisState.NEEDS_REFRESH
        _save(account, {"analysis_state"})


def mark_analyzed(account: ExternalAccount, at: datetime) -> None:
    fields = {"analysis_state"}
    account.analysis_state = ExternalAccount.AnalysisState.ANALYZED
    if account.first_analyzed_at is None:
        account.first_analyzed_at = at
        fields.add("first_analyzed_at")
    _save(account, fields)


def _first(direction: str, **after) -> Subquery:
    return Subquery(
        Message.objects.filter(conversation__counterpart_account_id=OuterRef("pk"), direction=direction, **after)
        .order_by("sent_at")
        .values("sent_at")[:1]
    )


def apply_message_history(account_ids: Iterable[int]) -> int:
    """Bring contact and engagement in line with the archived messages; returns accounts changed.

    Three reads and one bulk write whatever the number of accounts.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return 0
    changed: dict[int, tuple[ExternalAccount, set[str]]] = {}
    with transaction.atomic():
        for account in ExternalAccount.objects.filter(pk__in=ids).annotate(first_out=_first("out")):
            if account.first_out is not None:
                fields = _contacted(account, account.first_out, earlier_only=True)
                if fields:
                    changed[account.pk] = (account, fields)
        if changed:
            _bulk_save(changed)
        contacted = ExternalAccount.objects.filter(pk__in=ids, first_contacted_at__isnull=False)
        inbound = {}
        for account in contacted.annotate(first_in=_first("in", sent_at__gt=OuterRef("first_contacted_at"))):
            if account.first_in is not None:
                fields = _inbound(account, account.first_in, earlier_only=True)
                if fields:
                    inbound[account.pk] = (account, fields)
        if inbound:
            _bulk_save(inbound)
    return len(changed.keys() | inbound.keys())


def _bulk_save(changed: dict[int, tuple[ExternalAccount, set[str]]]) -> None:
    now = timezone.now()
    fields = set()
    for account, moved in changed.values():
        account.updated_at = now
        fields |= moved
    ExternalAccount.objects.bulk_update([a for a, _ in changed.values()], sorted(fields | {"updated_at"}))
