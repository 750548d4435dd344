"""What needs the user today, gathered from every app in a fixed number of queries.

Each section is a count plus its first rows (`Section`), so the page costs the
same whether there are ten conversations or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from agents.models import Draft
from identities.models import Identity
from inbox.models import Conversation
from inbox.services import state
from leads.models import LeadPost, WatchHit
from rediska.backups.services import MAINTENANCE_TASKS, unacknowledged_failures
from rediska.models import Job

SHOWN = 10
FAILED_JOBS_SINCE = timedelta(days=7)
SNIPPET = 120


@dataclass
class Section:
    rows: list = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return max(0, self.total - len(self.rows))


def _section(queryset: QuerySet, shown=None, limit: int = SHOWN) -> Section:
    """The first rows and the total, each decided on the bare filter.

    With `shown` (what the page displays: joins, a snippet), the first ids are
    cut on the filtered table alone and only those rows are then loaded with
    their details, as the inbox list does: MySQL otherwise plans the joins
    first.  The total is counted only when the first rows do not tell it.
    """
    if shown is None:
        rows = list(queryset[:limit])
    else:
        ids = list(queryset.values_list("pk", flat=True)[:limit])
        found = {row.pk: row for row in shown(queryset.model.objects.filter(pk__in=ids).order_by())} if ids else {}
        rows = [found[pk] for pk in ids if pk in found]
    total = len(rows) if len(rows) < limit else queryset.order_by().count()
    return Section(rows, total)


def _conversation_details(conversations: QuerySet) -> QuerySet:
    return (conversations.select_related("identity", "counterpart_account")
            .only("id", "subject", "last_activity_at", "follow_up_at", "identity__display_name",
                  "counterpart_account__external_username", "last_message_id")
            .annotate(snippet=Substr("last_message__body_text", 1, SNIPPET)))


def waiting_replies(now: datetime) -> Section:
    """Their message is the newest and nobody answered: oldest first (they have waited longest)."""
    return _section(Conversation.objects.filter(state.needs_reply_q(), deleted_at__isnull=True)
                    .exclude(state.snoozed_q(now)).order_by("last_activity_at", "id"), _conversation_details)


def follow_ups_due(now: datetime) -> Section:
    return _section(Conversation.objects.filter(state.follow_up_due_q(now), deleted_at__isnull=True)
                    .order_by("follow_up_at", "id"), _conversation_details)


def _lead_details(leads: QuerySet) -> QuerySet:
    return leads.select_related("author_account").only(
        "id", "title", "external_post_id", "source_location", "score", "score_reasons_json", "post_created_at",
        "author_account__external_username")


def new_leads() -> Section:
    """Leads the watches found since the user last opened the leads list: best scores first."""
    # The leads list's "new" rule, as a semi-join from the hits (MySQL runs it from the hits' index).
    new_hits = WatchHit.objects.filter(Q(watch__last_visited_at__isnull=True)
                                       | Q(first_seen_at__gt=F("watch__last_visited_at"))).values("lead_post_id")
    leads = (LeadPost.objects.filter(pk__in=new_hits, status=LeadPost.Status.NEW, deleted_at__isnull=True)
             .order_by(F("score").desc(nulls_last=True), "-post_created_at", "-id"))
    return _section(leads, _lead_details)


def unsent_drafts() -> Section:
    drafts = (Draft.objects.filter(status=Draft.Status.DRAFT).select_related("account", "identity", "lead_post")
              .only("id", "kind", "created_at", "subject", "account__external_username", "identity__display_name",
                    "lead_post__title").order_by("-created_at", "-id"))
    return _section(drafts)


def identities_to_reconnect() -> Section:
    return _section(Identity.objects.filter(is_active=True, needs_reconnect_at__isnull=False)
                    .order_by("needs_reconnect_at", "id"))


def failed_jobs(now: datetime) -> Section:
    """Failures of the last week, backups apart (they have their own section and alert)."""
    jobs = (Job.objects.filter(status=Job.Status.FAILED, updated_at__gte=now - FAILED_JOBS_SINCE)
            .exclude(job_type__in=MAINTENANCE_TASKS).only("id", "job_type", "last_error", "finished_at")
            .order_by("-updated_at", "-id"))
    return _section(jobs)


def failed_backups() -> Section:
    failures = unacknowledged_failures(limit=SHOWN + 1)
    return Section(failures[:SHOWN], len(failures))


def today(now: datetime | None = None) -> dict[str, Section]:
    now = now or timezone.now()
    return {
        "replies": waiting_replies(now),
        "follow_ups": follow_ups_due(now),
        "leads": new_leads(),
        "drafts": unsent_drafts(),
        "reconnect": identities_to_reconnect(),
        "jobs": failed_jobs(now),
        "backups": failed_backups(),
    }
