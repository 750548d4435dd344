"""Leads tasks (spec §7 names): ids in, re-fetch, call a service."""

from __future__ import annotations

from identities.services import session_for
from inbox.models import ExternalAccount
from rediska.jobs import ledger_task

from . import services
from .models import LeadPost, Watch


@ledger_task("ingest.browse_location", queue="ingest", max_attempts=5)
def browse_location(job, watch_id: int | None = None, *, identity_id: int | None = None,
                    location: str | None = None, sort: str = "new", query: str | None = None,
                    limit: int = services.PAGE_SIZE) -> dict | None:
    """Without arguments (beat): queue the due watches.  With a watch id: run it.
    With a location: one browse through the given (or default) identity."""
    if watch_id is None and location is None:
        return services.enqueue_due_watches()
    if watch_id is not None:
        watch = Watch.objects.filter(pk=watch_id).first()
        if watch is None:
            return {"skipped": "the watch was deleted"}
        result = services.run_watch(watch, progress=job.set_progress)
        return result.as_dict() if result else {"skipped": "the watch is paused or disabled"}
    identity = services.browsing_identity(identity_id=identity_id)
    result = services.browse_location(
        session_for(identity), provider_id=identity.provider_id, location=location, sort=sort,
        query=query, limit=limit, progress=job.set_progress,
    )
    return result.as_dict()


@ledger_task("ingest.fetch_post", queue="ingest", max_attempts=5)
def fetch_post(job, lead_post_id: int) -> dict:
    lead = LeadPost.objects.get(pk=lead_post_id)
    identity = services.browsing_identity(lead.provider_id)
    lead = services.fetch_post(session_for(identity), lead)
    return {"lead_post_id": lead.pk, "remote_visibility": lead.remote_visibility}


@ledger_task("ingest.fetch_profile", queue="ingest", max_attempts=5)
def fetch_profile(job, account_id: int, identity_id: int | None = None) -> dict:
    account = ExternalAccount.objects.get(pk=account_id)
    identity = services.browsing_identity(account.provider_id, identity_id, capability="read_profiles")
    return services.fetch_profile(session_for(identity), account).as_dict()


@ledger_task("ingest.fetch_profile_items", queue="ingest", max_attempts=5)
def fetch_profile_items(job, account_id: int, identity_id: int | None = None,
                        limit: int = services.PAGE_SIZE) -> dict:
    account = ExternalAccount.objects.get(pk=account_id)
    identity = services.browsing_identity(account.provider_id, identity_id, capability="read_profiles")
    result = services.fetch_profile_items(session_for(identity), account, limit=limit,
                                          progress=job.set_progress)
    return result.as_dict()
