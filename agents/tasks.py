"""Agent tasks (spec §7): ids in, re-fetch, one service call."""

from __future__ import annotations

from identities.models import Identity
from inbox.models import Conversation, ExternalAccount
from leads.models import LeadPost
from rediska.jobs import ledger_task

from . import services


@ledger_task("agent.profile_summary", queue="agent", max_attempts=3)
def profile_summary(job, account_id: int) -> dict:
    account = ExternalAccount.objects.get(pk=account_id)
    snapshot = services.summarize_profile(account, job_id=job.pk)
    return {"snapshot_id": snapshot.pk, "analysis_state": account.analysis_state}


@ledger_task("agent.lead_scoring", queue="agent", max_attempts=3)
def lead_scoring(job, lead_post_id: int) -> dict:
    lead = LeadPost.objects.select_related("author_account").get(pk=lead_post_id)
    services.score_lead(lead, job_id=job.pk)
    return {"lead_post_id": lead.pk, "score": lead.score}


@ledger_task("agent.draft_intro", queue="agent", max_attempts=3)
def draft_intro(job, lead_post_id: int | None = None, identity_id: int | None = None,
                conversation_id: int | None = None) -> dict:
    """An intro for a lead's author (lead_post_id + identity_id), or a reply
    suggestion inside a conversation (conversation_id)."""
    if conversation_id is not None:
        conversation = Conversation.objects.select_related("identity", "counterpart_account").get(
            pk=conversation_id
        )
        draft = services.draft_reply(conversation, job_id=job.pk)
    else:
        lead = LeadPost.objects.select_related("author_account").get(pk=lead_post_id)
        draft = services.draft_intro(lead, Identity.objects.get(pk=identity_id), job_id=job.pk)
    return {"draft_id": draft.pk}
