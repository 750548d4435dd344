"""Leads: browse locations, watches, post and profile fetches, triage.

Every page from the provider is written in one transaction (posts, their
authors, watch hits), so a failure mid-way leaves whole pages or nothing.
Remote deletion only ever sets status columns; stored text is never blanked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

import search
from identities.models import Identity
from identities.services import capabilities_for, is_do_not_contact, session_for
from inbox import accounts
from inbox.models import ExternalAccount
from rediska import audit
from rediska.fields import Visibility
from rediska.jobs import enqueue
from rediska.models import Job
from rediska.providers import get_provider
from rediska.providers.base import ProviderSession, RemotePost, RemoteProfileItem
from rediska.providers.errors import ForbiddenError, NotFoundError, ProviderError

from . import media
from .models import AccountProfile, LeadPost, ProfileItem, Watch, WatchHit

Status = LeadPost.Status
PAGE_SIZE = 100
# Location names are used in provider URLs: keep them to plain name characters
# ("+" joins several locations where the provider supports it).
LOCATION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(\+[A-Za-z0-9_][A-Za-z0-9_-]{0,63})*$")
MAX_QUERY = 256
MIN_WATCH_INTERVAL = 300
MAX_WATCH_INTERVAL = 7 * 86400
MAX_BROWSE_LIMIT = 10_000

# Status moves of the DDL enum: new -> saved/ignored -> contact_queued -> contacted.
TRANSITIONS: dict[str, set[str]] = {
    Status.NEW: {Status.SAVED, Status.IGNORED},
    Status.SAVED: {Status.IGNORED, Status.CONTACT_QUEUED},
    Status.IGNORED: {Status.SAVED},
    Status.CONTACT_QUEUED: {Status.SAVED, Status.CONTACTED},
    Status.CONTACTED: set(),
}


class LeadsError(Exception):
    """A refusal or failure with plain words for the page or the job."""

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


class InvalidStatusMove(LeadsError):
    pass


class WatchRunError(LeadsError):
    """A watch run failed; recorded on the watch, the job fails with the reason."""


def _max_failures() -> int:
    return int(getattr(settings, "WATCH_MAX_FAILURES", 3))


# --------------------------------------------------------------------------- input
def clean_location(value: str) -> str:
    location = (value or "").strip()
    if not LOCATION_RE.fullmatch(location):
        raise LeadsError(
            "A location is a name of letters, digits, _ and - (up to 64 characters), "
            "or several joined with +."
        )
    return location


def clean_query(value: str | None) -> str:
    query = " ".join((value or "").split())
    if len(query) > MAX_QUERY:
        raise LeadsError(f"The search words are too long (at most {MAX_QUERY} characters).")
    return query


def browsing_identity(provider_id: str | None = None, identity_id: int | None = None, *,
                      capability: str = "browse") -> Identity:
    """The identity whose session reads public data: the given one, else the provider's default,
    else the next one whose connection can do it (`browse` or `read_profiles`)."""
    identities = Identity.objects.select_related("provider").prefetch_related("credentials").filter(is_active=True)
    if identity_id is not None:
        identity = identities.filter(pk=identity_id).first()
        if identity is None:
            raise LeadsError("That identity does not exist or is deactivated.")
        capabilities = capabilities_for(identity)
        if not getattr(capabilities, capability):
            raise LeadsError(f"{identity.display_name} cannot do this: {capabilities.why_not(capability)}")
        return identity
    if provider_id:
        identities = identities.filter(provider_id=provider_id)
    candidates = list(identities.order_by("-is_default", "id"))
    if not candidates:
        raise LeadsError("Connect an active identity first: browsing runs through one of your identities.")
    able = next((i for i in candidates if getattr(capabilities_for(i), capability)), None)
    if able is None:
        raise LeadsError(f"No identity can do this yet: {capabilities_for(candidates[0]).why_not(capability)}")
    return able


# --------------------------------------------------------------------------- posts
@dataclass
class PageResult:
    created: int = 0
    updated: int = 0
    new_hits: int = 0
    lead_ids: list[int] = field(default_factory=list)


@dataclass
class BrowseResult:
    pages: int = 0
    seen: int = 0
    created: int = 0
    updated: int = 0
    new_hits: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"pages": self.pages, "seen": self.seen, "created": self.created, "updated": self.updated,
                "new_for_watch": self.new_hits, "skipped": self.skipped[:50]}


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if isinstance(value, str) else value


def _web_url(value: str | None) -> str | None:
    """The address if it is an absolute http(s) one: provider links end up in href attributes."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:512] if value.lower().startswith(("https://", "http://")) else None


def _apply_visibility(row, visibility: str, now: datetime) -> bool:
    """Set remote visibility; the first time it turns deleted/removed is kept."""
    changed = row.remote_visibility != visibility
    row.remote_visibility = visibility
    if visibility in (Visibility.DELETED_BY_AUTHOR, Visibility.REMOVED):
        if row.remote_deleted_at is None:
            row.remote_deleted_at, changed = now, True
    elif row.remote_deleted_at is not None and visibility == Visibility.VISIBLE:
        row.remote_deleted_at, changed = None, True
    return changed


def _post_fields(lead: LeadPost, post: RemotePost, author: ExternalAccount | None, now: datetime) -> bool:
    """Copy the remote post onto the row; True when anything changed."""
    before = (lead.title, lead.body_text, lead.post_url, lead.post_created_at, lead.source_location,
              lead.author_account_id)
    if post.visibility == Visibility.VISIBLE or lead.pk is None:
        # Gone text comes back empty: never let it blank what we stored.
        lead.title = _clip(post.title, 512) if post.title is not None else lead.title
        lead.body_text = post.body if post.body is not None or lead.pk is None else lead.body_text
    lead.post_url = _web_url(post.url) or lead.post_url or ""
    lead.post_created_at = post.created_at or lead.post_created_at
    lead.source_location = _clip(post.location, 128) or lead.source_location
    if author is not None:
        lead.author_account = author
    changed = before != (lead.title, lead.body_text, lead.post_url, lead.post_created_at, lead.source_location,
                         lead.author_account_id)
    return _apply_visibility(lead, post.visibility, now) or changed


def upsert_authors(provider_id: str, names: Iterable[str | None]) -> dict[str, ExternalAccount]:
    """Accounts for these usernames, created when unknown; keyed by lower-cased name."""
    wanted = {name for name in names if name}
    if not wanted:
        return {}
    # No status news: a listed post says nothing about suspension (the profile fetch does).
    found = accounts.upsert_accounts(provider_id, {name: None for name in wanted})
    return {name.lower(): account for name, account in found.items()}


def store_posts(provider_id: str, posts: list[RemotePost], *, watch: Watch | None = None,
                now: datetime | None = None) -> PageResult:
    """Upsert one page of posts (and their authors, and the watch's hits) in one transaction."""
    now = now or timezone.now()
    result = PageResult()
    by_id: dict[str, RemotePost] = {}
    for post in posts:
        if post.external_id and len(post.external_id) <= 128:
            by_id[post.external_id] = post  # a post listed twice on one page counts once
    if not by_id:
        return result
    with transaction.atomic():
        authors = upsert_authors(provider_id, (p.author for p in by_id.values()))
        existing = {lead.external_post_id: lead for lead in
                    LeadPost.objects.filter(provider_id=provider_id, external_post_id__in=list(by_id))}
        fresh, changed = [], []
        for external_id, post in by_id.items():
            author = authors.get(post.author.lower()) if post.author else None
            lead = existing.get(external_id)
            if lead is None:
                lead = LeadPost(provider_id=provider_id, external_post_id=external_id, status=Status.NEW,
                                remote_visibility=Visibility.VISIBLE, created_at=now)
                _post_fields(lead, post, author, now)
                fresh.append(lead)
            elif _post_fields(lead, post, author, now):
                lead.updated_at = now
                changed.append(lead)
        # ignore_conflicts: a concurrent browse of the same location may have inserted some.
        LeadPost.objects.bulk_create(fresh, ignore_conflicts=True)
        if changed:
            LeadPost.objects.bulk_update(changed, [
                "title", "body_text", "post_url", "post_created_at", "source_location", "author_account",
                "remote_visibility", "remote_deleted_at", "updated_at",
            ])
        ids = dict(LeadPost.objects.filter(provider_id=provider_id, external_post_id__in=list(by_id))
                   .values_list("external_post_id", "id"))
        result.created, result.updated = len(fresh), len(changed)
        result.lead_ids = list(ids.values())
        if watch is not None:
            known = set(WatchHit.objects.filter(watch=watch, lead_post_id__in=result.lead_ids)
                        .values_list("lead_post_id", flat=True))
            hits = [WatchHit(watch=watch, lead_post_id=pk, first_seen_at=now)
                    for pk in result.lead_ids if pk not in known]
            WatchHit.objects.bulk_create(hits, ignore_conflicts=True)
            result.new_hits = len(hits)
            if hits and watch.auto_score:
                queue_auto_scores([hit.lead_post_id for hit in hits])
        touched = [ids[lead.external_post_id] for lead in fresh + changed if lead.external_post_id in ids]
        if touched:
            search.index_later("lead_post", *touched)
    return result


AUTO_SCORE_SPACING_SECONDS = 5


def queue_auto_scores(lead_ids: list[int]) -> int:
    """Score a watch's new leads in the background, behind interactive work.

    Only when a model is configured, once per lead (the dedupe key is the one
    the lead's score panel follows), each a little later than the one before
    so a click on "Score" or "Draft" is never stuck behind a whole batch.
    """
    if not settings.INFERENCE_URL or not lead_ids:
        return 0
    unscored = list(LeadPost.objects.filter(pk__in=lead_ids, score__isnull=True).order_by("pk")
                    .values_list("pk", flat=True))
    for n, pk in enumerate(unscored):
        enqueue("agent.lead_scoring", pk, dedupe_key=f"agents:score:{pk}:auto", queue="agent-background",
                countdown=settings.AUTO_SCORE_DELAY_SECONDS + n * AUTO_SCORE_SPACING_SECONDS)
    return len(unscored)


def browse_location(session: ProviderSession, *, provider_id: str, location: str, sort: str = "new",
                    query: str | None = None, limit: int = PAGE_SIZE, watch: Watch | None = None,
                    progress: Callable[..., None] | None = None) -> BrowseResult:
    """Page through a location (or a keyword search in it) storing up to `limit` posts.

    Provider errors propagate with their `user_message`; pages stored before
    the error stay stored (each is whole).
    """
    location, query = clean_location(location), clean_query(query)
    if sort not in Watch.Sort.values:
        raise LeadsError("Sort by new, hot or top.")
    limit = max(1, min(int(limit), MAX_BROWSE_LIMIT))
    result, after = BrowseResult(), None
    while result.seen < limit:
        page = session.list_posts(location, sort=sort, query=query or None, after=after,
                                  limit=min(PAGE_SIZE, limit - result.seen))
        posts = page.posts[: limit - result.seen]
        stored = store_posts(provider_id, posts, watch=watch)
        result.pages += 1
        result.seen += len(posts)
        result.created += stored.created
        result.updated += stored.updated
        result.new_hits += stored.new_hits
        result.skipped += [f"{s.external_id or '?'}: {s.reason}" for s in page.skipped]
        if progress:
            progress(pages=result.pages, posts=result.seen, created=result.created, done=result.seen, total=limit)
        if not page.after or page.after == after or not page.posts:
            break
        after = page.after
    return result


def fetch_post(session: ProviderSession, lead: LeadPost, *, now: datetime | None = None) -> LeadPost:
    """Refresh one post; a post deleted or removed remotely is marked, never deleted.

    A post the provider no longer knows at all is marked deleted like an author
    deletion (its stored text stays); transient errors propagate for a retry.
    """
    try:
        remote = session.fetch_post(lead.external_post_id)
    except NotFoundError:
        now = now or timezone.now()
        with transaction.atomic():
            current = LeadPost.objects.select_for_update().get(pk=lead.pk)
            if _apply_visibility(current, Visibility.DELETED_BY_AUTHOR, now):
                current.save(update_fields=["remote_visibility", "remote_deleted_at", "updated_at"])
                search.index_later("lead_post", current.pk)
        return current
    store_posts(lead.provider_id, [remote])
    lead.refresh_from_db()
    return lead


# --------------------------------------------------------------------------- triage
def set_lead_status(lead: LeadPost, status: str) -> LeadPost:
    """Move a lead along the triage enum; a move the enum does not allow is refused."""
    if status not in Status.values:
        raise InvalidStatusMove(f"Unknown status {status!r}.")
    with transaction.atomic():
        current = LeadPost.objects.select_for_update().select_related("author_account").get(pk=lead.pk)
        if status == current.status:
            return current
        if status not in TRANSITIONS[current.status]:
            raise InvalidStatusMove(
                f"A lead that is {current.get_status_display().lower()} cannot become "
                f"{Status(status).label.lower()}."
            )
        if status == Status.CONTACT_QUEUED:
            _check_contactable(current)
        before = current.status
        current.status = status
        current.save(update_fields=["status", "updated_at"])
        audit.record("lead.status", entity=current, provider_id=current.provider_id,
                     request={"from": before, "to": status})
    return current


def _check_contactable(lead: LeadPost) -> None:
    author = lead.author_account
    if author is None:
        raise InvalidStatusMove("This post has no known author to contact.")
    if is_do_not_contact(author.provider_id, author.external_username):
        raise InvalidStatusMove(f"{author.external_username} is on the do-not-contact list.")
    if author.unreachable_reason:
        raise InvalidStatusMove(f"{author.external_username} cannot be contacted. {author.unreachable_reason}")


def promote_contacted_leads() -> int:
    """Queued leads whose author we have since written to become `contacted`."""
    contacted = ExternalAccount.objects.filter(
        pk=OuterRef("author_account_id"), contact_state=ExternalAccount.ContactState.CONTACTED
    )
    return LeadPost.objects.filter(Exists(contacted), status=Status.CONTACT_QUEUED).update(
        status=Status.CONTACTED, updated_at=timezone.now()
    )


# --------------------------------------------------------------------------- watches
def _clean_watch(identity: Identity, location: str, query: str, sort: str, interval_seconds: int,
                 limit: int) -> dict:
    if not identity.is_active:
        raise LeadsError("That identity is deactivated.")
    capabilities = capabilities_for(identity)
    if not capabilities.browse:
        raise LeadsError(f"{identity.display_name} cannot watch communities: {capabilities.why_not('browse')}")
    if sort not in Watch.Sort.values:
        raise LeadsError("Sort by new, hot or top.")
    if not MIN_WATCH_INTERVAL <= int(interval_seconds) <= MAX_WATCH_INTERVAL:
        raise LeadsError(f"The interval must be between {MIN_WATCH_INTERVAL // 60} minutes and 7 days.")
    if not 1 <= int(limit) <= 1000:
        raise LeadsError("A watch reads between 1 and 1000 posts per run.")
    return {"identity": identity, "location": clean_location(location), "query": clean_query(query),
            "sort": sort, "interval_seconds": int(interval_seconds), "limit": int(limit)}


def _duplicate(values: dict, exclude_pk: int | None = None) -> bool:
    same = Watch.objects.filter(identity=values["identity"], location__iexact=values["location"],
                                query__iexact=values["query"], sort=values["sort"])
    return same.exclude(pk=exclude_pk).exists()


def create_watch(*, identity: Identity, location: str, query: str = "", sort: str = "new",
                 interval_seconds: int = 3600, limit: int = PAGE_SIZE, auto_score: bool = True) -> Watch:
    values = _clean_watch(identity, location, query, sort, interval_seconds, limit)
    values["auto_score"] = bool(auto_score)
    with transaction.atomic():
        if _duplicate(values):
            raise LeadsError("There is already a watch for this location, query and sort.")
        watch = Watch.objects.create(**values, next_run_at=timezone.now())
        audit.record("watch.create", entity=watch, provider_id=identity.provider_id, identity_id=identity.pk,
                     request={"location": watch.location, "query": watch.query, "sort": watch.sort,
                              "interval_seconds": watch.interval_seconds})
    return watch


def update_watch(watch: Watch, *, identity: Identity, location: str, query: str = "", sort: str = "new",
                 interval_seconds: int = 3600, limit: int = PAGE_SIZE, enabled: bool = True,
                 auto_score: bool = True) -> Watch:
    values = _clean_watch(identity, location, query, sort, interval_seconds, limit)
    values["auto_score"] = bool(auto_score)
    with transaction.atomic():
        if _duplicate(values, exclude_pk=watch.pk):
            raise LeadsError("There is already a watch for this location, query and sort.")
        for name, value in values.items():
            setattr(watch, name, value)
        watch.enabled = enabled
        if enabled and watch.next_run_at is None:
            watch.next_run_at = timezone.now()
        watch.save()
        audit.record("watch.update", entity=watch, provider_id=identity.provider_id, identity_id=identity.pk,
                     request={**{k: v for k, v in values.items() if k != "identity"}, "enabled": enabled})
    return watch


def resume_watch(watch: Watch) -> Watch:
    """Clear a pause (and its failure count) and run the watch at the next tick."""
    with transaction.atomic():
        Watch.objects.filter(pk=watch.pk).update(
            paused_reason=None, consecutive_failures=0, enabled=True, next_run_at=timezone.now(),
            updated_at=timezone.now(),
        )
        audit.record("watch.resume", entity=watch)
    watch.refresh_from_db()
    return watch


def delete_watch(watch: Watch) -> None:
    """Remove the watch and its hit list; the posts it found stay."""
    with transaction.atomic():
        audit.record("watch.delete", entity=watch, request={"location": watch.location, "query": watch.query})
        watch.delete()


def due_watches(now: datetime | None = None):
    now = now or timezone.now()
    return Watch.objects.filter(enabled=True, paused_reason__isnull=True, next_run_at__lte=now).order_by(
        "next_run_at", "id"
    )


def enqueue_due_watches(now: datetime | None = None) -> dict:
    """The beat tick: queue each due watch once per scheduled slot."""
    promoted = promote_contacted_leads()
    queued = 0
    for watch in due_watches(now):
        slot = int(watch.next_run_at.timestamp())
        enqueue("ingest.browse_location", watch.pk, dedupe_key=f"watch:{watch.pk}:{slot}")
        queued += 1
    return {"watches_queued": queued, "leads_marked_contacted": promoted}


def run_watch(watch: Watch, *, progress: Callable[..., None] | None = None,
              now: datetime | None = None) -> BrowseResult | None:
    """Run one watch now.  Failures are counted on the watch; the N-th in a row pauses it,
    and a location the provider calls gone (banned, private, unknown) pauses it at once."""
    now = now or timezone.now()
    watch = Watch.objects.select_related("identity").get(pk=watch.pk)
    if not watch.enabled or watch.is_paused:
        return None
    try:
        if not watch.identity.is_active:
            raise LeadsError(f"The identity {watch.identity.display_name} is deactivated.")
        session = session_for(watch.identity)
        result = browse_location(session, provider_id=watch.identity.provider_id, location=watch.location,
                                 sort=watch.sort, query=watch.query or None, limit=watch.limit, watch=watch,
                                 progress=progress)
    except (ProviderError, LeadsError) as exc:
        # Banned, private or unknown will not heal by retrying: pause at once, keep the allowance for blips.
        _record_watch_failure(watch, exc.user_message, now, gone=isinstance(exc, (ForbiddenError, NotFoundError)))
        raise WatchRunError(f"Watch “{watch}” failed: {exc.user_message}") from None
    Watch.objects.filter(pk=watch.pk).update(
        last_run_at=now, next_run_at=now + timedelta(seconds=watch.interval_seconds), consecutive_failures=0,
        last_error=None, updated_at=now,
    )
    return result


def _record_watch_failure(watch: Watch, reason: str, now: datetime, *, gone: bool = False) -> None:
    with transaction.atomic():
        current = Watch.objects.select_for_update().get(pk=watch.pk)
        current.consecutive_failures += 1
        current.last_error = reason[:500]
        current.last_run_at = now
        current.next_run_at = now + timedelta(seconds=current.interval_seconds)
        if gone:
            current.paused_reason = f"Paused: the location cannot be read. {reason}"[:500]
        elif current.consecutive_failures >= _max_failures():
            current.paused_reason = (
                f"Paused after {current.consecutive_failures} failed runs in a row: {reason}"
            )[:500]
        current.save()
        audit.record("watch.run", actor="system", result="error", entity=current, error=reason,
                     response={"consecutive_failures": current.consecutive_failures,
                               "paused": current.is_paused})


def visit_watches(watches, now: datetime | None = None) -> None:
    """Remember that the user has now seen these watches' posts."""
    Watch.objects.filter(pk__in=[w.pk for w in watches]).update(last_visited_at=now or timezone.now())


def new_since_visit_q(watch: Watch | None = None) -> Exists:
    """True for a lead first seen by a watch after the user last opened the list for that watch."""
    hits = WatchHit.objects.filter(lead_post=OuterRef("pk")).filter(
        Q(watch__last_visited_at__isnull=True) | Q(first_seen_at__gt=F("watch__last_visited_at"))
    )
    if watch is not None:
        hits = hits.filter(watch=watch)
    return Exists(hits)


# --------------------------------------------------------------------------- profiles
@dataclass
class ProfileResult:
    status: str
    note: str | None = None

    def as_dict(self) -> dict:
        return {"remote_status": self.status, **({"note": self.note} if self.note else {})}


def _record_fetch_error(account: ExternalAccount, reason: str, now: datetime) -> None:
    AccountProfile.objects.update_or_create(
        account=account, defaults={"fetch_error": reason[:500], "fetch_error_at": now}
    )


def fetch_profile(session: ProviderSession, account: ExternalAccount, *,
                  now: datetime | None = None) -> ProfileResult:
    """Read the counterpart's public about data and remote status.

    A suspended or deleted account is marked (nothing local is removed) and the
    reason kept for the person page; a private/forbidden one raises with it.
    """
    now = now or timezone.now()
    try:
        remote = session.fetch_profile(account.external_username)
        status, about, user_id = remote.status, remote.about, remote.user_id
    except NotFoundError:
        status, about, user_id = ExternalAccount.RemoteStatus.DELETED, None, None
    except ForbiddenError as exc:
        _record_fetch_error(account, exc.user_message, now)
        raise
    note = ExternalAccount.UNREACHABLE.get(status)
    with transaction.atomic():
        account.remote_status = status
        account.remote_status_last_seen_at = now
        account.last_fetched_at = now
        fields = ["remote_status", "remote_status_last_seen_at", "last_fetched_at", "updated_at"]
        if user_id and account.external_user_id != user_id:
            account.external_user_id = _clip(user_id, 128)
            fields.append("external_user_id")
        account.save(update_fields=fields)
        defaults = {"fetched_at": now, "fetch_error": note, "fetch_error_at": now if note else None}
        if about is not None:
            defaults["about_json"] = about
        AccountProfile.objects.update_or_create(account=account, defaults=defaults)
        audit.record("profile.fetch", actor="system", entity=account, provider_id=account.provider_id,
                     response={"remote_status": status})
    return ProfileResult(status=status, note=note)


@dataclass
class ItemsResult:
    pages: int = 0
    seen: int = 0
    created: int = 0
    updated: int = 0
    images: int = 0
    skipped: list[str] = field(default_factory=list)
    note: str | None = None

    def as_dict(self) -> dict:
        out = {"pages": self.pages, "items": self.seen, "created": self.created, "updated": self.updated,
               "images": self.images, "skipped": self.skipped[:50]}
        if self.note:
            out["note"] = self.note
        return out


def _item_text(item: RemoteProfileItem) -> str | None:
    if item.item_type == "post":
        parts = [p for p in (item.title, item.text) if p]
        return "\n\n".join(parts) or None
    return item.text


def _item_fields(row: ProfileItem, item: RemoteProfileItem, now: datetime) -> bool:
    before = (row.text_content, row.item_created_at, row.location, row.title, row.url)
    text = _item_text(item)
    if item.visibility == Visibility.VISIBLE or row.pk is None:
        row.text_content = text if text is not None or row.pk is None else row.text_content
        row.title = _clip(item.title, 512) if item.title is not None else row.title
    row.item_created_at = item.created_at or row.item_created_at
    row.location = _clip(item.location, 128) or row.location
    row.url = _web_url(item.url) or row.url
    changed = before != (row.text_content, row.item_created_at, row.location, row.title, row.url)
    return _apply_visibility(row, item.visibility, now) or changed


def _storable(item: RemoteProfileItem) -> bool:
    # Room left in the 128-character id column for an image's ":imgN" suffix.
    return bool(item.external_id) and len(item.external_id) <= 100 and item.item_type in ("post", "comment")


def _image_key(item: RemoteProfileItem, index: int) -> str:
    return f"{item.external_id}:img{index}"


def _download_images(items: list[RemoteProfileItem], account: ExternalAccount, is_media_host,
                     skipped: list[str]) -> dict[str, tuple[RemoteProfileItem, media.Downloaded]]:
    """Download the images of these items not stored yet; returns external_item_id -> (item, image file)."""
    wanted = {_image_key(item, i): (item, url) for item in items
              if item.visibility == Visibility.VISIBLE and _storable(item) for i, url in enumerate(item.media_urls)}
    if not wanted:
        return {}
    have = set(ProfileItem.objects.filter(account=account, item_type=ProfileItem.ItemType.IMAGE,
                                          external_item_id__in=list(wanted), attachment__isnull=False)
               .values_list("external_item_id", flat=True))
    stored = {}
    for key, (item, url) in wanted.items():
        if key in have:
            continue
        try:
            stored[key] = (item, media.download_image(url, is_media_host=is_media_host))
        except media.MediaError as exc:
            skipped.append(f"{item.external_id} image: {exc.user_message}")
    return stored


def store_profile_items(account: ExternalAccount, items: list[RemoteProfileItem],
                        images: dict[str, tuple[RemoteProfileItem, media.Downloaded]], *,
                        now: datetime | None = None) -> tuple[int, int]:
    """Upsert one page of items (and their downloaded images) in one transaction; (created, updated).

    The images' `attachments` rows are written in that transaction too: a failed
    save leaves only their content-addressed files, which the next fetch reuses.
    """
    now = now or timezone.now()
    rows: dict[tuple[str, str], RemoteProfileItem | tuple[RemoteProfileItem, media.Downloaded]] = {}
    for item in items:
        if _storable(item):
            rows[(item.item_type, item.external_id)] = item
    images = {key: value for key, value in images.items() if _storable(value[0])}
    for key, value in images.items():
        rows[(ProfileItem.ItemType.IMAGE, key)] = value
    if not rows:
        return 0, 0
    files = [image for _, image in images.values()]
    with media.hash_locks(image.sha256 for image in files), transaction.atomic():
        attachment_ids = media.attachments_for(files)
        existing = {
            (row.item_type, row.external_item_id): row
            for row in ProfileItem.objects.filter(account=account, external_item_id__in=[k[1] for k in rows])
        }
        fresh, changed = [], []
        for (kind, external_id), value in rows.items():
            row = existing.get((kind, external_id))
            if kind == ProfileItem.ItemType.IMAGE:
                item, image = value
                attachment_id = attachment_ids[image.sha256]
                if row is None:
                    fresh.append(ProfileItem(
                        account=account, item_type=kind, external_item_id=external_id,
                        item_created_at=item.created_at, attachment_id=attachment_id,
                        remote_visibility=Visibility.VISIBLE, location=_clip(item.location, 128),
                        title=_clip(item.title, 512), url=_web_url(item.url), created_at=now,
                    ))
                elif row.attachment_id != attachment_id:
                    row.attachment_id = attachment_id
                    changed.append(row)
                continue
            if row is None:
                row = ProfileItem(account=account, item_type=kind, external_item_id=external_id,
                                  remote_visibility=Visibility.VISIBLE, created_at=now)
                _item_fields(row, value, now)
                fresh.append(row)
            elif _item_fields(row, value, now):
                changed.append(row)
        ProfileItem.objects.bulk_create(fresh, ignore_conflicts=True)
        if changed:
            ProfileItem.objects.bulk_update(changed, [
                "text_content", "item_created_at", "location", "title", "url", "attachment",
                "remote_visibility", "remote_deleted_at",
            ])
        keys = [k[1] for k in rows]
        touched = {(r.item_type, r.external_item_id) for r in fresh + changed}
        ids = [pk for kind, ext, pk in ProfileItem.objects.filter(account=account, external_item_id__in=keys)
               .values_list("item_type", "external_item_id", "id") if (kind, ext) in touched]
        if ids:
            search.index_later("profile_item", *ids)
        if fresh:
            # The stored state, not this job's copy: an analysis may have finished meanwhile.
            accounts.mark_items_arrived(ExternalAccount.objects.select_for_update().get(pk=account.pk))
    return len(fresh), len(changed)


def fetch_profile_items(session: ProviderSession, account: ExternalAccount, *, limit: int = PAGE_SIZE,
                        kinds: tuple[str, ...] = ("post", "comment"),
                        progress: Callable[..., None] | None = None) -> ItemsResult:
    """Read up to `limit` public posts and comments each, with the images their posts link."""
    result = ItemsResult()
    if account.unreachable_reason:
        result.note = account.unreachable_reason
        return result
    is_media_host = get_provider(account.provider_id).is_media_host
    limit = max(1, min(int(limit), 1000))
    for kind in kinds:
        after, seen = None, 0
        while seen < limit:
            try:
                page = session.fetch_profile_items(account.external_username, kind, after=after,
                                                   limit=min(PAGE_SIZE, limit - seen))
            except ForbiddenError as exc:
                _record_fetch_error(account, exc.user_message, timezone.now())
                raise
            items = page.items[: limit - seen]
            images = _download_images(items, account, is_media_host, result.skipped)
            created, updated = store_profile_items(account, items, images)
            seen += len(items)
            result.pages += 1
            result.seen += len(items)
            result.created += created
            result.updated += updated
            result.images += len(images)
            result.skipped += [f"{s.external_id or '?'}: {s.reason}" for s in page.skipped]
            if progress:
                progress(pages=result.pages, items=result.seen, images=result.images)
            if not page.after or page.after == after or not page.items:
                break
            after = page.after
    now = timezone.now()
    AccountProfile.objects.update_or_create(account=account, defaults={"items_fetched_at": now})
    ExternalAccount.objects.filter(pk=account.pk).update(last_fetched_at=now, updated_at=now)
    return result


def _stamp() -> str:
    return f"{timezone.now().timestamp():.0f}"


def request_post_refresh(lead: LeadPost) -> Job:
    """Queue `ingest.fetch_post` for this lead (the lead page's button)."""
    return enqueue("ingest.fetch_post", lead.pk, dedupe_key=f"ingest.fetch_post:{lead.pk}:{_stamp()}")


def request_watch_run(watch: Watch) -> Job:
    """Queue a run of the watch now, outside its schedule."""
    if not watch.enabled or watch.is_paused:
        raise LeadsError("Resume or enable the watch first.")
    return enqueue("ingest.browse_location", watch.pk, dedupe_key=f"watch:{watch.pk}:now:{_stamp()}")


def request_browse(*, identity: Identity, location: str, sort: str = "new", query: str | None = None,
                   limit: int = PAGE_SIZE) -> Job:
    """Queue a one-off browse of a location as `identity`."""
    location, query = clean_location(location), clean_query(query)
    job = enqueue("ingest.browse_location", identity_id=identity.pk, location=location, sort=sort,
                  query=query or None, limit=limit)
    audit.record("leads.browse", provider_id=identity.provider_id, identity_id=identity.pk,
                 request={"location": location, "query": query, "sort": sort, "limit": limit},
                 response={"job_id": job.pk})
    return job


def request_profile_fetch(account: ExternalAccount) -> list:
    """Queue a profile and items fetch (the person page's button); at most one of each at a time."""
    jobs = []
    for name in ("ingest.fetch_profile", "ingest.fetch_profile_items"):
        active = Job.objects.filter(job_type=name, status__in=Job.ACTIVE,
                                    dedupe_key__startswith=f"{name}:{account.pk}:").first()
        jobs.append(active or enqueue(name, account.pk, dedupe_key=f"{name}:{account.pk}:{_stamp()}"))
    audit.record("profile.fetch_requested", entity=account, provider_id=account.provider_id)
    return jobs


def profile_jobs(account: ExternalAccount) -> list:
    """The latest profile and items fetch jobs of this account (for the person page)."""
    latest = []
    for name in ("ingest.fetch_profile", "ingest.fetch_profile_items"):
        job = (Job.objects.filter(job_type=name, dedupe_key__startswith=f"{name}:{account.pk}:")
               .order_by("-created_at", "-id").first())
        if job is not None:
            latest.append(job)
    return latest


def watches_with_counts():
    """Every watch with its identity and the number of hits new since the last visit."""
    new_hits = Count("hits", filter=Q(last_visited_at__isnull=True) | Q(hits__first_seen_at__gt=F("last_visited_at")))
    return Watch.objects.select_related("identity").annotate(new_count=new_hits, hit_count=Count("hits"))


def post_title_for(account, post_id: int | None = None) -> str | None:
    """The title a saved reply's {post_title} means: the given post of theirs, else their latest lead post."""
    posts = LeadPost.objects.filter(author_account=account, deleted_at__isnull=True).exclude(title__isnull=True)
    if post_id is not None:
        chosen = posts.filter(pk=post_id).values_list("title", flat=True).first()
        if chosen:
            return chosen
    return posts.order_by(F("post_created_at").desc(nulls_last=True), "-id").values_list("title", flat=True).first()
