"""Archive an identity's private messages: page through its folders, group the
messages into conversations, store each page in bulk, keep a resumable cursor.

Conversation = thread (the provider's `conversation_external_id`, the id of
the thread's first message).  Direction is `out` when the identity wrote the
message, `system` for notices the provider flags as such (admin or community
mail), `in` otherwise.  Every conversation needs a counterpart account, so two
reserved usernames stand in when the provider names nobody:
`[system]` for notices with no sender and `[deleted]` for a person whose
account is gone.  Nothing here ever deletes or blanks a stored message: a
remote deletion only sets `remote_visibility`/`remote_deleted_at`, a deleted
account only its `remote_status`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.constants import OnConflict
from django.utils import timezone

import search
from identities.models import Identity
from rediska import audit
from rediska.providers.base import ListingStatus, ProviderSession, RemoteMessage, Skipped
from rediska.providers.errors import AuthError, ListingUnavailableError, ProviderError

from ..accounts import apply_message_history, mark_remote_status, upsert_accounts
from ..models import Conversation, ExternalAccount, ListingState, Message, SendAttempt, SyncCursor
from .notifications import tell_new_replies

log = logging.getLogger(__name__)

PAGE_SIZE = 100
LEASE = timedelta(minutes=10)
MAX_ID = 128
MAX_SUBJECT = 300
MAX_BODY_BYTES = 16 * 1024 * 1024 - 1  # MEDIUMTEXT
DELETED_ACCOUNT = "[deleted]"
SYSTEM_ACCOUNT = "[system]"
PLACEHOLDERS = (DELETED_ACCOUNT, SYSTEM_ACCOUNT)
# A conversation opened by a send whose thread id the provider did not tell yet.
PENDING_PREFIX = "pending:"
STATUS_CHECKS_PER_SYNC = 10
STATUS_MAX_AGE = timedelta(days=1)

Direction = Message.Direction
GONE = {"deleted_by_author", "removed"}


@dataclass
class PageResult:
    stored: int = 0
    new_ids: list[int] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class WalkResult:
    folder: str
    pages: int = 0
    messages: int = 0
    new: int = 0
    changed: int = 0
    skipped: int = 0
    # Items of the listing that are not private messages (comment replies, mentions): counted only.
    other_items: int = 0
    complete: bool = False
    busy: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# --- one page --------------------------------------------------------------------


def _clean_text(text: str | None) -> str | None:
    """Text as received; lone surrogates (invalid UTF-8 upstream) become U+FFFD."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _problem(m: RemoteMessage) -> str | None:
    if not isinstance(m.external_id, str) or not m.external_id or len(m.external_id) > MAX_ID:
        return "no usable message id"
    if not isinstance(m.conversation_external_id, str) or not m.conversation_external_id \
            or len(m.conversation_external_id) > MAX_ID:
        return "no usable conversation id"
    if not isinstance(m.sent_at, datetime) or timezone.is_naive(m.sent_at):
        return "no timezone-aware time"
    for name in (m.author, m.recipient):
        if name is not None and (not isinstance(name, str) or len(name) > MAX_ID):
            return "an unusable username"
    if m.body is not None and not isinstance(m.body, str):
        return "a body that is not text"
    return None


def _cleaned(messages: Iterable[RemoteMessage]) -> tuple[list[RemoteMessage], list[Skipped]]:
    kept: dict[str, RemoteMessage] = {}
    skipped = []
    for m in messages:
        problem = _problem(m)
        body = None if problem else _clean_text(m.body)
        if not problem and body is not None and len(body.encode("utf-8")) > MAX_BODY_BYTES:
            problem = "a body larger than 16 MB"
        if problem:
            skipped.append(Skipped(getattr(m, "external_id", None), problem))
            continue
        if m.external_id not in kept:
            subject = _clean_text(m.subject)
            kept[m.external_id] = m if body is m.body and subject is m.subject else replace(m, body=body,
                                                                                          subject=subject)
    return list(kept.values()), skipped


def _direction(m: RemoteMessage, me: str) -> str:
    if m.author and m.author.lower() == me:
        return Direction.OUT
    return Direction.SYSTEM if m.is_system else Direction.IN


def _other_party(m: RemoteMessage, direction: str) -> str | None:
    return m.recipient if direction == Direction.OUT else m.author


def _counterparts(messages: list[RemoteMessage], directions: dict[str, str]) -> dict[str, str]:
    """Conversation id -> counterpart username: a named party if any message names one."""
    names: dict[str, str] = {}
    for m in messages:
        direction = directions[m.external_id]
        name = _other_party(m, direction)
        current = names.get(m.conversation_external_id)
        if name and (current is None or current in PLACEHOLDERS):
            names[m.conversation_external_id] = name
        elif current is None:
            names[m.conversation_external_id] = SYSTEM_ACCOUNT if direction == Direction.SYSTEM else DELETED_ACCOUNT
    return names


def store_messages(identity: Identity, messages: Iterable[RemoteMessage], *, now: datetime | None = None) -> PageResult:
    """Store one page in bulk: accounts, conversations, new messages, remote changes.

    Idempotent: a message already stored (same provider and remote id) is never
    inserted again; only its remote visibility can change.  A fixed number of
    queries whatever the size of the page.
    """
    now = now or timezone.now()
    provider_id = identity.provider_id
    me = identity.external_username.lower()
    page, skipped = _cleaned(messages)
    for item in skipped:
        log.warning("message %s skipped: %s", item.external_id or "?", item.reason)
    result = PageResult(stored=len(page), skipped=skipped)
    if not page:
        return result
    directions = {m.external_id: _direction(m, me) for m in page}
    with transaction.atomic():
        existing = {
            ext: (pk, visibility)
            for ext, pk, visibility in Message.objects.filter(
                provider_id=provider_id, external_message_id__in=list(directions)
            ).order_by().values_list("external_message_id", "id", "remote_visibility")
        }
        fresh = [m for m in page if m.external_id not in existing]
        adopted = _adopt_pending_sends(identity, [m for m in fresh if directions[m.external_id] == Direction.OUT])
        fresh = [m for m in fresh if m.external_id not in adopted]
        # A person turned "[deleted]": their conversation's counterpart account is gone.
        orphaned = [m for m in page if directions[m.external_id] == Direction.IN and m.author is None
                    and m.visibility == "visible"]
        needed = {m.conversation_external_id for m in fresh} | {m.conversation_external_id for m in orphaned}
        conversations = _conversations(
            identity, [m for m in page if m.conversation_external_id in needed], directions, now
        ) if needed else {}
        if fresh:
            _insert_messages(identity, fresh, directions, conversations, now)
            ids = dict(
                Message.objects.filter(provider_id=provider_id, external_message_id__in=[m.external_id for m in fresh])
                .order_by().values_list("external_message_id", "id")
            )
            result.new_ids += ids.values()
            # Messages stored before already moved their conversation's newest message.
            _advance_last_messages(fresh, ids, directions, conversations, now)
            tell_new_replies(identity, fresh, ids, directions, conversations, now)
        result.changed_ids += list(adopted.values())
        result.changed_ids += _mark_remote_deletions(page, existing, now)
        _mark_deleted_counterparts(orphaned, conversations, now)
        if result.new_ids or result.changed_ids:
            search.index_later("message", *result.new_ids, *result.changed_ids)
    return result


MESSAGE_COLUMNS = ("provider_id", "external_message_id", "conversation_id", "identity_id", "direction", "sent_at",
                   "body_text", "remote_visibility", "remote_deleted_at", "created_at")


def _insert_messages(identity, fresh, directions, conversations, now) -> None:
    """INSERT ... IGNORE the new messages in one statement batch.

    Raw SQL because this is the hot path of a backfill: building model
    instances and letting the ORM compile a 1,000-row INSERT costs several
    times what the database spends storing it.  Conflicts are ignored: a
    concurrent walk of the other folder may have stored some of them.
    """
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now)
    rows = []
    for m in fresh:
        out = directions[m.external_id] == Direction.OUT
        rows.append((
            identity.provider_id, m.external_id, conversations[m.conversation_external_id].pk,
            identity.pk if out else None, directions[m.external_id], ops.adapt_datetimefield_value(m.sent_at),
            m.body, m.visibility, stamp if m.visibility in GONE else None, stamp,
        ))
    sql = (f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(Message._meta.db_table)} "
           f"({', '.join(ops.quote_name(c) for c in MESSAGE_COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(MESSAGE_COLUMNS))})")
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _conversations(identity, page, directions, now) -> dict[str, Conversation]:
    """The conversations of these messages, created (with their counterpart accounts) when missing."""
    provider_id = identity.provider_id
    names = _counterparts(page, directions)
    stored = Conversation.objects.filter(provider_id=provider_id).select_related("counterpart_account").order_by()
    found = {c.external_conversation_id: c for c in stored.filter(external_conversation_id__in=list(names))}
    missing = [conv_id for conv_id in names if conv_id not in found]
    # A conversation first seen through a notice or a deleted account gets its person once named.
    upgrades = [c for conv_id, c in found.items()
                if c.counterpart_account.external_username in PLACEHOLDERS and names[conv_id] not in PLACEHOLDERS]
    if not missing and not upgrades:
        return found
    wanted = [names[conv_id] for conv_id in missing] + [names[c.external_conversation_id] for c in upgrades]
    accounts = upsert_accounts(provider_id, {name: None for name in wanted})
    placeholder = accounts.get(DELETED_ACCOUNT)
    if placeholder is not None and placeholder.remote_status != ExternalAccount.RemoteStatus.DELETED:
        mark_remote_status(placeholder, ExternalAccount.RemoteStatus.DELETED, now)
    if missing:
        subjects: dict[str, str | None] = {}
        for m in sorted(page, key=lambda m: m.sent_at):
            subjects.setdefault(m.conversation_external_id, (m.subject or "")[:MAX_SUBJECT] or None)
        Conversation.objects.bulk_create(
            [
                Conversation(
                    provider_id=provider_id, external_conversation_id=conv_id, identity=identity,
                    counterpart_account=accounts[names[conv_id]], subject=subjects.get(conv_id),
                )
                for conv_id in missing
            ],
            ignore_conflicts=True,  # a concurrent walk may have created some: theirs stand
        )
        found.update((c.external_conversation_id, c) for c in stored.filter(external_conversation_id__in=missing))
    if upgrades:
        for conversation in upgrades:
            conversation.counterpart_account = accounts[names[conversation.external_conversation_id]]
            conversation.updated_at = now
        Conversation.objects.bulk_update(upgrades, ["counterpart_account", "updated_at"])
        # Their messages' search documents name the person now.
        search.index_later("conversation", *(c.pk for c in upgrades))
    return found


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def _same_send(attempt: SendAttempt, m: RemoteMessage) -> bool:
    """The stored send and the provider's message are one: same text (whitespace aside), same recipient.

    Whitespace is ignored because a message sent by hand on the provider's page
    comes back re-wrapped (feeds and exports reflow it)."""
    if m.recipient and attempt.to_username.lower() != m.recipient.lower():
        return False
    return attempt.message.body_text == m.body or _words(attempt.message.body_text) == _words(m.body)


def _adopt_pending_sends(identity, outgoing: list[RemoteMessage]) -> dict[str, int]:
    """Give sends stored without a remote id (the provider did not say, or the user sent it by hand on
    the provider's page and marked it "I sent it") their id; returns ext id -> pk.

    Matched by text and recipient with the identity's sends still waiting for an id.  A
    conversation opened by such a send takes the thread's real id, unless
    the thread is already stored.
    """
    if not outgoing:
        return {}
    pending = list(
        SendAttempt.objects.filter(
            identity=identity, status=SendAttempt.Status.SENT, message__external_message_id__isnull=True
        ).select_related("message__conversation")
    )
    adopted: dict[str, int] = {}
    for m in outgoing:
        match = next((a for a in pending if a.message_id not in adopted.values() and _same_send(a, m)), None)
        if match is None:
            continue
        conversation = match.message.conversation
        thread = Conversation.objects.filter(
            provider_id=identity.provider_id, external_conversation_id=m.conversation_external_id
        ).first()
        if thread is None and conversation.external_conversation_id.startswith(PENDING_PREFIX):
            Conversation.objects.filter(pk=conversation.pk).update(external_conversation_id=m.conversation_external_id)
            thread = conversation
        Message.objects.filter(pk=match.message_id).update(
            external_message_id=m.external_id, conversation=thread or conversation
        )
        adopted[m.external_id] = match.message_id
    return adopted


def _mark_remote_deletions(page, existing, now) -> list[int]:
    """Existing messages the provider now shows as deleted or removed: status only, body kept."""
    gone = defaultdict(list)
    for m in page:
        stored = existing.get(m.external_id)
        if stored and m.visibility in GONE and stored[1] != m.visibility:
            gone[m.visibility].append(stored[0])
    changed = []
    for visibility, pks in gone.items():
        Message.objects.filter(pk__in=pks).update(remote_visibility=visibility, remote_deleted_at=now)
        changed += pks
    return changed


def _mark_deleted_counterparts(orphaned, conversations, now) -> None:
    """Visible incoming messages whose author is no longer named: the person's account is gone."""
    account_ids = {
        conversations[m.conversation_external_id].counterpart_account_id
        for m in orphaned
        if conversations[m.conversation_external_id].counterpart_account.external_username not in PLACEHOLDERS
    }
    if not account_ids:
        return
    alive = ExternalAccount.objects.filter(pk__in=account_ids).exclude(
        remote_status=ExternalAccount.RemoteStatus.DELETED)
    gone = list(alive.values_list("pk", flat=True))
    if gone:
        ExternalAccount.objects.filter(pk__in=gone).update(
            remote_status=ExternalAccount.RemoteStatus.DELETED, remote_status_last_seen_at=now, updated_at=now)
        search.index_later("account", *gone)


def _advance_last_messages(page, ids: dict[str, int], directions, conversations, now) -> None:
    """Point each conversation at its newest new message (and its direction); stamp the ones that got messages.

    `updated_at` marks the conversations a walk touched (their accounts'
    contact history is recomputed at the end of the walk).
    """
    newest: dict[str, RemoteMessage] = {}
    for m in page:
        best = newest.get(m.conversation_external_id)
        if best is None or (m.sent_at, m.external_id) > (best.sent_at, best.external_id):
            newest[m.conversation_external_id] = m
    candidates = [
        m for conv_id, m in newest.items()
        if conversations[conv_id].last_message_id is None or conversations[conv_id].last_activity_at is None
        or conversations[conv_id].last_activity_at < m.sent_at
    ]
    moves = [(conversations[m.conversation_external_id].pk, ids[m.external_id], m.sent_at, directions[m.external_id])
             for m in candidates if m.external_id in ids]
    touched = {conversations[m.conversation_external_id].pk for m in page}
    ops = connection.ops
    table = Conversation._meta.db_table
    # Raw SQL: the ORM takes longer to build a CASE over a page of conversations
    # than the database takes to run it.  The guard is re-checked by the
    # database on the row it locks, so two walks storing one thread at once
    # leave the newer message in place.  (The columns the guard reads are
    # assigned last: MySQL evaluates SET clauses left to right.)
    guard = "WHEN id = %s AND (last_activity_at IS NULL OR last_activity_at < %s OR last_message_id IS NULL) THEN %s"
    message_cases = " ".join([guard] * len(moves))
    activity_cases = " ".join(["WHEN id = %s AND (last_activity_at IS NULL OR last_activity_at < %s) THEN %s"]
                              * len(moves))
    params = []
    for pk, _, at, direction in moves:
        params += [pk, ops.adapt_datetimefield_value(at), direction]
    for pk, mid, at, _ in moves:
        params += [pk, ops.adapt_datetimefield_value(at), mid]
    for pk, _, at, _ in moves:
        params += [pk, ops.adapt_datetimefield_value(at), ops.adapt_datetimefield_value(at)]
    pks = sorted(touched | {move[0] for move in moves})
    sets = "updated_at = %s"
    if moves:
        sets = (f"last_direction = CASE {message_cases} ELSE last_direction END, "
                f"last_message_id = CASE {message_cases} ELSE last_message_id END, "
                f"last_activity_at = CASE {activity_cases} ELSE last_activity_at END, " + sets)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ops.quote_name(table)} SET {sets} WHERE id IN ({', '.join(['%s'] * len(pks))})",
            [*params, ops.adapt_datetimefield_value(now), *pks],
        )


# --- walking a folder ---------------------------------------------------------------


def cursor_for(identity: Identity, folder: str) -> SyncCursor:
    cursor, _ = SyncCursor.objects.get_or_create(identity=identity, folder=folder)
    return cursor


def _acquire(cursor: SyncCursor, owner: str) -> bool:
    now = timezone.now()
    free = Q(lease_owner__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return bool(SyncCursor.objects.filter(free, pk=cursor.pk).update(lease_owner=owner, lease_until=now + LEASE))


def _release(cursor: SyncCursor, owner: str) -> None:
    SyncCursor.objects.filter(pk=cursor.pk, lease_owner=owner).update(lease_owner=None, lease_until=None)


def _reached(messages: list[RemoteMessage], stop_at: datetime | None) -> bool:
    """True once a thread on this page is older than the stop mark.

    Listings come newest activity first (flat, or threads by their latest
    message), so when one thread's newest message is older than the mark,
    nothing on a later page can be newer.
    """
    if stop_at is None or not messages:
        return False
    latest: dict[str, datetime] = {}
    for m in messages:
        if isinstance(m.sent_at, datetime):
            latest[m.conversation_external_id] = max(latest.get(m.conversation_external_id, m.sent_at), m.sent_at)
    return bool(latest) and min(latest.values()) < stop_at


def walk_folder(
    identity: Identity,
    session: ProviderSession,
    folder: str,
    *,
    full: bool,
    owner: str,
    on_page: Callable[[WalkResult], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> WalkResult:
    """Page through a folder from the newest message: to the end (`full`) or down to what is archived.

    Resumes an interrupted walk where it stopped.  Returns `busy` without doing
    anything when another walk of this folder holds the lease.
    """
    result = WalkResult(folder=folder)
    cursor = cursor_for(identity, folder)
    if not _acquire(cursor, owner):
        result.busy = True
        return result
    try:
        cursor.refresh_from_db()
        if not cursor.walking:
            cursor.walk_started_at, cursor.walk_after, cursor.walk_top_at = timezone.now(), None, None
            cursor.walk_stop_at = None if full else cursor.synced_until
            cursor.walk_pages = cursor.walk_messages = cursor.walk_new = 0
        elif full:
            cursor.walk_stop_at = None  # a backfill takes over an interrupted sync and goes to the end
        cursor.save()
        after = cursor.walk_after
        seen_listings: set[tuple] = set()
        while True:
            try:
                page = session.list_messages(folder, after=after, limit=page_size)
            except ListingUnavailableError as exc:
                record_listings(identity, exc.listings)
                raise
            if set(page.listings) - seen_listings:
                record_listings(identity, page.listings)
                seen_listings |= set(page.listings)
            for item in page.skipped:
                log.warning("%s page item %s skipped: %s", folder, item.external_id or "?", item.reason)
            with transaction.atomic():
                stored = store_messages(identity, page.messages)
                done = not page.after or page.after == after or _reached(page.messages, cursor.walk_stop_at)
                _advance_cursor(identity, cursor, page, stored, done)
            result.pages += 1
            result.messages += stored.stored
            result.new += len(stored.new_ids)
            result.changed += len(stored.changed_ids)
            result.skipped += len(stored.skipped) + len(page.skipped)
            result.other_items += page.other_items
            if on_page:
                on_page(result)
            if done:
                break
            after = page.after
        result.complete = True
    finally:
        _release(cursor, owner)
    return result


def record_listings(identity: Identity, listings: Iterable[ListingStatus]) -> None:
    """Remember which of the provider's listings answered for this identity (shown on its page)."""
    now = timezone.now()
    for status in listings:
        ListingState.objects.update_or_create(
            identity=identity, listing=status.listing[:32],
            defaults={"folder": status.folder, "label": status.label[:200], "works": status.works,
                      "detail": (status.detail or "")[:255], "checked_at": now})


def _advance_cursor(identity: Identity, cursor: SyncCursor, page, stored: PageResult, done: bool) -> None:
    now = timezone.now()
    times = [m.sent_at for m in page.messages if isinstance(m.sent_at, datetime) and timezone.is_aware(m.sent_at)]
    if times and (cursor.walk_top_at is None or max(times) > cursor.walk_top_at):
        cursor.walk_top_at = max(times)
    cursor.walk_after = page.after
    cursor.walk_pages += 1
    cursor.walk_messages += stored.stored
    cursor.walk_new += len(stored.new_ids)
    cursor.lease_until = now + LEASE
    if not done:
        cursor.save()
        return
    started = cursor.walk_started_at
    touched = Conversation.objects.filter(updated_at__gte=started).values_list("counterpart_account_id", flat=True)
    apply_message_history(touched.distinct())
    if cursor.walk_top_at and (cursor.synced_until is None or cursor.walk_top_at > cursor.synced_until):
        cursor.synced_until = cursor.walk_top_at
    if cursor.walk_stop_at is None:
        cursor.backfilled_at = now
    cursor.last_synced_at = now
    summary = {"folder": cursor.folder, "pages": cursor.walk_pages, "messages": cursor.walk_messages,
               "new": cursor.walk_new, "full": cursor.walk_stop_at is None}
    cursor.walk_started_at = cursor.walk_after = cursor.walk_stop_at = cursor.walk_top_at = None
    cursor.save()
    if summary["new"] or summary["full"]:
        audit.record("inbox.sync_folder", actor="system", provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=cursor, response=summary)


# --- counterpart accounts -------------------------------------------------------------


def check_counterparts(identity: Identity, session: ProviderSession, *, limit: int = STATUS_CHECKS_PER_SYNC) -> int:
    """Ask the provider about the counterparts not checked for the longest time; returns how many were checked.

    A few per sync keep the API budget for messages; over successive syncs
    every counterpart gets looked at.  Deleted accounts stay deleted.
    """
    now = timezone.now()
    due = (
        ExternalAccount.objects.filter(pk__in=Conversation.objects.filter(identity=identity).values("counterpart_account"))
        .exclude(external_username__in=PLACEHOLDERS)
        .exclude(remote_status=ExternalAccount.RemoteStatus.DELETED)
        .filter(Q(remote_status_last_seen_at__isnull=True) | Q(remote_status_last_seen_at__lt=now - STATUS_MAX_AGE))
        .order_by(F("remote_status_last_seen_at").asc(nulls_first=True), "pk")
        .values_list("external_username", flat=True)[:limit]
    )
    seen = {}
    for username in due:
        try:
            seen[username] = session.fetch_profile(username).status
        except AuthError:
            raise
        except ProviderError as exc:
            if exc.transient:
                break  # the provider is struggling: the messages matter more, try next time
            log.info("status of %s not checked: %s", username, exc.user_message)
    if seen:
        with transaction.atomic():
            upsert_accounts(identity.provider_id, seen, seen_at=now)
    return len(seen)
