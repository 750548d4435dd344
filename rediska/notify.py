"""Notifications through Apprise: a new reply, a lead above the chosen score, a failed backup.

The apps record events here (`record`: one outbox row, cheap, inside their own
transaction); the `notify.send` task sends them through the ledger, never
inside a sync.  With NOTIFY_DIGEST_MINUTES = N, at most one message goes out
per N minutes carrying everything since the last.  Titles and bodies are
written by the callers with short excerpts only; the URLs (which often hold
tokens) are never logged, stored or shown except in Apprise's redacted form.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .jobs import enqueue
from .models import Notification

log = logging.getLogger(__name__)

SEND_TASK = "notify.send"
EXCERPT = 140
DIGEST_MAX_ITEMS = 20
Kind = Notification.Kind


def excerpt(text: str | None, length: int = EXCERPT) -> str:
    """A short one-line excerpt: bodies never carry more of a message than this."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


def enabled(kind: str) -> bool:
    return bool(settings.NOTIFY_URLS) and kind in settings.NOTIFY_EVENTS


@dataclass(frozen=True)
class Event:
    kind: str
    title: str
    body: str
    key: str
    url: str = ""


def record(*events: Event) -> int:
    """Store these events for the next send (a repeated key is told once); returns how many were new."""
    events = tuple(e for e in events if enabled(e.kind))
    if not events:
        return 0
    with transaction.atomic():
        keys = [e.key[:128] for e in events]
        known = set(Notification.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
        fresh = [Notification(kind=e.kind, title=e.title[:200], body=e.body[:500], url=e.url[:300],
                              dedupe_key=e.key[:128]) for e in events if e.key[:128] not in known]
        Notification.objects.bulk_create(fresh, ignore_conflicts=True)
        if fresh:
            schedule_send()
    return len(fresh)


def _last_sent() -> datetime | None:
    return Notification.objects.aggregate(last=Max("sent_at"))["last"]


def next_send_at(now: datetime | None = None) -> datetime:
    """Now, or in digest mode the end of the current window (the last send + N minutes)."""
    now = now or timezone.now()
    minutes = settings.NOTIFY_DIGEST_MINUTES
    last = _last_sent() if minutes else None
    if last is None:
        return now
    return max(now, last + timedelta(minutes=minutes))


def schedule_send(now: datetime | None = None):
    """Queue the send for the window: every event of one window shares one job (its dedupe key)."""
    now = now or timezone.now()
    at = next_send_at(now)
    if settings.NOTIFY_DIGEST_MINUTES:
        key = f"{SEND_TASK}:{int(at.timestamp())}"
    else:
        key = f"{SEND_TASK}:{uuid.uuid4().hex[:16]}"
    return enqueue(SEND_TASK, dedupe_key=key, queue="notify", countdown=max(0.0, (at - now).total_seconds()) or None)


# --- sending ---------------------------------------------------------------------------


class NotifyError(Exception):
    transient = True  # the ledger retries; the rows stay pending


def _targets():
    import apprise

    asset = apprise.AppriseAsset(async_mode=False)
    targets = []
    for index, url in enumerate(settings.NOTIFY_URLS, start=1):
        plugin = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)
        if plugin is None:
            log.warning("notification URL %s is not understood by Apprise (skipped)", index)
            continue
        plugin.socket_connect_timeout = plugin.socket_read_timeout = settings.NOTIFY_TIMEOUT_SECONDS
        targets.append(plugin)
    return targets


def _deliver(title: str, body: str) -> None:
    targets = _targets()
    if not targets:
        raise NotifyError("No usable notification URL: check NOTIFY_URLS (manage.py check names the bad ones).")
    failed = [t.url(privacy=True) for t in targets if not t.notify(body=body, title=title)]
    if len(failed) == len(targets):
        raise NotifyError(f"No notification target accepted the message ({', '.join(failed)}).")
    if failed:
        log.warning("notification not accepted by %s", ", ".join(failed))


def _line(n: Notification) -> str:
    return f"• {n.title}" + (f": {n.body}" if n.body else "")


def _message(rows: list[Notification]) -> tuple[str, str]:
    if len(rows) == 1:
        n = rows[0]
        return f"Rediska: {n.title}", n.body
    lines = [_line(n) for n in rows[:DIGEST_MAX_ITEMS]]
    if len(rows) > DIGEST_MAX_ITEMS:
        lines.append(f"… and {len(rows) - DIGEST_MAX_ITEMS} more (see Today).")
    return f"Rediska: {len(rows)} updates", "\n".join(lines)


def send_pending(now: datetime | None = None) -> dict:
    """Send what is pending: one message each, or one digest when the window allows."""
    now = now or timezone.now()
    if not settings.NOTIFY_URLS:
        return {"sent": 0, "skipped": "no NOTIFY_URLS"}
    at = next_send_at(now)
    if at > now:
        if Notification.objects.filter(sent_at__isnull=True, batch__isnull=True).exists():
            schedule_send(now)
        return {"sent": 0, "waiting_until": at.isoformat()}
    batch = uuid.uuid4().hex
    Notification.objects.filter(sent_at__isnull=True, batch__isnull=True).update(batch=batch)
    rows = list(Notification.objects.filter(batch=batch).order_by("created_at", "id"))
    if not rows:
        return {"sent": 0}
    try:
        if settings.NOTIFY_DIGEST_MINUTES:
            _deliver(*_message(rows))
            messages = 1
        else:
            for n in rows:
                _deliver(*_message([n]))
                Notification.objects.filter(pk=n.pk).update(sent_at=timezone.now())
            messages = len(rows)
    except NotifyError:
        # Unclaim what did not go out: the retry (or the next event) takes it.
        Notification.objects.filter(batch=batch, sent_at__isnull=True).update(batch=None)
        raise
    Notification.objects.filter(batch=batch, sent_at__isnull=True).update(sent_at=now)
    return {"sent": len(rows), "messages": messages}


@dataclass
class TargetResult:
    index: int
    shown: str  # Apprise's redacted form of the URL (no tokens or passwords)
    ok: bool
    error: str = ""


def send_test() -> list[TargetResult]:
    """Send a test message to every URL and say, per URL, what happened (the test button)."""
    import apprise

    asset = apprise.AppriseAsset(async_mode=False)
    results = []
    for index, url in enumerate(settings.NOTIFY_URLS, start=1):
        scheme = url.split("://", 1)[0] if "://" in url else ""
        plugin = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)
        if plugin is None:
            why = (f"“{scheme}://” is not a notification service Apprise knows" if scheme
                   else "it is not a URL (it needs a scheme such as ntfy://, mailto:// or json://)")
            results.append(TargetResult(index, f"{scheme}://…" if scheme else "(not a URL)", False,
                                        f"Not understood: {why}."))
            continue
        plugin.socket_connect_timeout = plugin.socket_read_timeout = settings.NOTIFY_TIMEOUT_SECONDS
        shown = plugin.url(privacy=True)
        ok = plugin.notify(title="Rediska test", body="This is a test notification from Rediska.")
        results.append(TargetResult(index, shown, bool(ok), "" if ok else
                                    "Not delivered: the service could not be reached or refused the message."))
    return results


def recent(limit: int = 20) -> list[Notification]:
    return list(Notification.objects.order_by("-created_at", "-id")[:limit])


def pending_count() -> int:
    return Notification.objects.filter(sent_at__isnull=True).count()

