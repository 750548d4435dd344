"""Agents: profile summaries, lead scores and drafts from the local model.

The model's output is data: it is stored and shown (escaped), never acted on.
Nothing here sends a message; `send_draft` is called only from the user's click
and goes through `inbox.services.send_manual` like any other send.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone

import search
from identities.models import Identity
from identities.services import DoNotContactError, check_can_contact
from inbox.models import AccountNote, Conversation, ExternalAccount, Message
from leads.models import LeadPost, ProfileItem
from rediska import audit, notify
from rediska.jobs import enqueue
from rediska.llm import LLMCallRecord, LLMError, inference_client, inference_configured
from rediska.logging import job_id_var
from rediska.models import Job

from . import prompts, schemas
from .models import Draft, LLMCall, ProfileSnapshot

NOT_CONFIGURED = "No language model is configured: set INFERENCE_URL to use the agents."
# Room kept free in the prompt budget for what estimate_tokens cannot foresee
# (chat template tokens, the JSON schema llama.cpp turns into a grammar).
PROMPT_MARGIN_TOKENS = 200


class AgentError(Exception):
    """A reason not to (or failure to) run an agent, in plain words."""

    transient = False

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


class DraftRefused(AgentError):
    pass


# --- recording ----------------------------------------------------------------


def record_llm_call(record: LLMCallRecord) -> int:
    """The `rediska.llm` call listener (installed in AgentsConfig.ready)."""
    job_id = record.job_id
    if job_id is None and job_id_var.get().isdigit():  # set by the ledger around every task
        job_id = int(job_id_var.get())
    call = LLMCall.objects.create(
        job_id=job_id if job_id and Job.objects.filter(pk=job_id).exists() else None,
        operation=record.operation[:64],
        endpoint=record.endpoint,
        model=record.model[:128],
        prompt_version=record.prompt_version[:64],
        attempt=record.attempt,
        request_json=record.request,
        response_text=record.response_text,
        status=record.status,
        error_detail=record.error or None,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        latency_ms=record.latency_ms,
    )
    return call.pk


def _model_info(result, **extra) -> dict:
    return {
        "model": result.model,
        "prompt_version": result.prompt_version,
        "call_ids": result.call_ids,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "latency_ms": result.latency_ms,
        "attempts": result.attempts,
        "params": result.params,
        **extra,
    }


def _budget() -> int:
    return int(settings.LLM_CONTEXT_TOKENS)


def _too_small() -> AgentError:
    return AgentError(
        f"The prompt budget LLM_CONTEXT_TOKENS ({_budget()}) is too small for this input: "
        "raise it (2000 or more) to match the model's context."
    )


def _fit(text: str, budget: int) -> str:
    """The text, cut to the budget if needed; refuses when not even a part fits."""
    kept = prompts.within_budget([text], budget)
    if not kept.texts:
        raise _too_small()
    return kept.texts[0]


def _fit_optional(text: str | None, budget: int) -> str | None:
    kept = prompts.within_budget([text], budget) if text else None
    return kept.texts[0] if kept and kept.texts else None


def _chat(messages, *, schema, operation, prompt_version, job_id, max_tokens=1024):
    if not inference_configured():
        raise AgentError(NOT_CONFIGURED)
    return inference_client().chat_json(
        messages, schema=schema, operation=operation, prompt_version=prompt_version,
        job_id=job_id, max_tokens=max_tokens,
    )


def _audit_failure(action: str, exc: Exception, *, entity, provider_id=None, identity_id=None) -> None:
    audit.record(
        action, actor="agent", result="error", entity=entity, provider_id=provider_id,
        identity_id=identity_id, error=exc,
        response={"call_ids": getattr(exc, "call_ids", [])},
    )


# --- profile summary ------------------------------------------------------------


def latest_snapshot(account: ExternalAccount) -> ProfileSnapshot | None:
    return ProfileSnapshot.objects.filter(account=account).order_by("-fetched_at", "-id").first()


def _item_text(item: ProfileItem) -> str:
    when = item.item_created_at.strftime("%Y-%m-%d") if item.item_created_at else "undated"
    return f"[{item.get_item_type_display()}, {when}]\n{item.text_content.strip()}"


def _pages(queryset, size: int = 100):
    """Rows a page at a time, not `.iterator()`: MySQL drivers load a whole result set
    at once, and the prompt budget is usually full within the first page."""
    start = 0
    while True:
        page = list(queryset[start : start + size])
        yield from page
        if len(page) < size:
            return
        start += size


def _iter_item_texts(account: ExternalAccount):
    items = (
        ProfileItem.objects.filter(account=account, deleted_at__isnull=True, text_content__isnull=False)
        .exclude(text_content="")
        .order_by(F("item_created_at").desc(nulls_last=True), "-id")
        .only("item_type", "item_created_at", "text_content")
    )
    for item in _pages(items):
        if item.text_content.strip():
            yield _item_text(item)


def summarize_profile(account: ExternalAccount, *, job_id: int | None = None) -> ProfileSnapshot:
    """Summarise the account's newest profile items that fit the prompt budget into a
    new snapshot; the snapshot and the account state are written together or not at all."""
    seen_up_to = ProfileItem.objects.filter(account=account).aggregate(m=Max("id"))["m"] or 0
    total = (
        ProfileItem.objects.filter(account=account, deleted_at__isnull=True, text_content__isnull=False)
        .exclude(text_content="")
        .count()
    )
    budget = _budget() - prompts.fixed_cost(
        prompts.profile_summary_messages(account.external_username, [], total_items=total)
    ) - PROMPT_MARGIN_TOKENS
    kept = prompts.within_budget(_iter_item_texts(account), budget, total=total) if total else None
    # Blank items (only whitespace) are counted by SQL but skipped here: still an empty profile.
    if kept is None or not (kept.texts or kept.overflowed):
        error = AgentError(
            f"{account.external_username} has no public posts or comments stored yet: fetch the profile first."
        )
        _audit_failure("agent.profile_summary", error, entity=account, provider_id=account.provider_id)
        raise error
    messages = prompts.profile_summary_messages(account.external_username, kept.texts, total_items=total)
    try:
        if not kept.texts:
            raise _too_small()
        result = _chat(
            messages, schema=schemas.PROFILE_SUMMARY, operation="profile_summary",
            prompt_version=prompts.PROFILE_SUMMARY_VERSION, job_id=job_id, max_tokens=1500,
        )
    except (LLMError, AgentError) as exc:
        _audit_failure("agent.profile_summary", exc, entity=account, provider_id=account.provider_id)
        raise
    now = timezone.now()
    with transaction.atomic():
        snapshot = ProfileSnapshot.objects.create(
            account=account,
            fetched_at=now,
            summary_text=result.data["summary"],
            signals_json=result.data["signals"],
            risk_flags_json=result.data["risk_flags"],
            model_info_json=_model_info(
                result, job_id=job_id, items_used=kept.used, items_total=total,
                truncated=kept.truncated, budget_tokens=_budget(),
            ),
        )
        locked = ExternalAccount.objects.select_for_update().get(pk=account.pk)
        # Items that arrived while the model was reading leave the account stale.
        newer = ProfileItem.objects.filter(account=account, id__gt=seen_up_to).exists()
        locked.analysis_state = (
            ExternalAccount.AnalysisState.NEEDS_REFRESH if newer else ExternalAccount.AnalysisState.ANALYZED
        )
        locked.first_analyzed_at = locked.first_analyzed_at or now
        locked.save(update_fields=["analysis_state", "first_analyzed_at", "updated_at"])
        audit.record(
            "agent.profile_summary", actor="agent", entity=snapshot, provider_id=account.provider_id,
            response={"account_id": account.pk, "call_ids": result.call_ids, "items_used": kept.used},
        )
        search.index_later("profile_snapshot", snapshot.pk)
    account.analysis_state, account.first_analyzed_at = locked.analysis_state, locked.first_analyzed_at
    return snapshot


def snapshot_text(snapshot: ProfileSnapshot | None) -> str | None:
    if snapshot is None:
        return None
    signals = snapshot.signals_json or {}
    lines = [snapshot.summary_text or ""]
    for key in ("interests", "needs", "location_hints", "languages"):
        if signals.get(key):
            lines.append(f"{key.replace('_', ' ')}: {', '.join(map(str, signals[key]))}")
    if signals.get("activity_pattern"):
        lines.append(f"activity: {signals['activity_pattern']}")
    for flag in snapshot.risk_flags_json or []:
        lines.append(f"caution: {flag.get('flag')} ({flag.get('evidence')})")
    return "\n".join(lines)


# --- lead scoring ------------------------------------------------------------------


def _post_text(lead: LeadPost) -> str:
    return f"Posted in: {lead.source_location}\nTitle: {lead.title or ''}\n\n{lead.body_text or ''}".strip()


def score_lead(lead: LeadPost, *, job_id: int | None = None) -> LeadPost:
    if not (lead.title or "").strip() and not (lead.body_text or "").strip():
        error = AgentError("This post has no title or text to score.")
        _audit_failure("agent.lead_scoring", error, entity=lead, provider_id=lead.provider_id)
        raise error
    snapshot = latest_snapshot(lead.author_account) if lead.author_account_id else None
    budget = _budget() - prompts.fixed_cost(prompts.lead_score_messages("", None)) - PROMPT_MARGIN_TOKENS
    try:
        # The post matters most: it gets two thirds of the budget, the profile the rest.
        post = _fit(_post_text(lead), budget * 2 // 3)
        profile = _fit_optional(snapshot_text(snapshot), budget // 3)
        result = _chat(
            prompts.lead_score_messages(post, profile), schema=schemas.LEAD_SCORE, operation="lead_scoring",
            prompt_version=prompts.LEAD_SCORE_VERSION, job_id=job_id, max_tokens=600,
        )
    except (LLMError, AgentError) as exc:
        _audit_failure("agent.lead_scoring", exc, entity=lead, provider_id=lead.provider_id)
        raise
    now = timezone.now()
    reasons = {
        "reasons": result.data["reasons"],
        "call_id": result.call_ids[-1] if result.call_ids else None,
        "snapshot_id": snapshot.pk if snapshot else None,
        "model": result.model,
        "prompt_version": result.prompt_version,
    }
    with transaction.atomic():
        LeadPost.objects.filter(pk=lead.pk).update(
            score=result.data["score"], score_reasons_json=reasons, scored_at=now, updated_at=now
        )
        audit.record(
            "agent.lead_scoring", actor="agent", entity=lead, provider_id=lead.provider_id,
            response={"score": result.data["score"], "call_ids": result.call_ids},
        )
        _tell_good_lead(lead, result.data["score"], result.data["reasons"])
    lead.score, lead.score_reasons_json, lead.scored_at = result.data["score"], reasons, now
    return lead


def _tell_good_lead(lead: LeadPost, score: int, reasons: list[str]) -> None:
    """A lead at or above NOTIFY_LEAD_MIN_SCORE is told once (a rescore does not repeat it)."""
    if score < settings.NOTIFY_LEAD_MIN_SCORE:
        return
    notify.record(notify.Event(
        kind=notify.Kind.LEAD, title=f"Lead scored {score}: {notify.excerpt(lead.title or lead.source_location, 80)}",
        body=notify.excerpt(reasons[0] if reasons else ""), key=f"lead:{lead.pk}",
        url=reverse("leads:lead_detail", args=[lead.pk]),
    ))


# --- drafts ----------------------------------------------------------------------


def check_draftable(identity: Identity, account: ExternalAccount) -> None:
    try:
        check_can_contact(account.provider_id, account.external_username)
    except DoNotContactError as exc:
        raise DraftRefused(exc.user_message) from exc
    if account.unreachable_reason:
        raise DraftRefused(f"{account.external_username}'s account is {account.remote_status}: no one can write to it.")
    if not identity.is_active:
        raise DraftRefused(f"The identity {identity.display_name} is deactivated.")
    if identity.provider_id != account.provider_id:
        raise DraftRefused("That identity belongs to another network than this person.")


def _visible_messages(conversation: Conversation):
    return (
        Message.objects.filter(conversation=conversation, deleted_at__isnull=True)
        .exclude(body_text__isnull=True)
        .exclude(body_text="")
    )


def _has_text(conversation: Conversation) -> bool:
    return _visible_messages(conversation).exists()


def _conversation_texts(conversation: Conversation | None, budget: int) -> list[str]:
    if conversation is None:
        return []
    # Newest first so the budget keeps the latest exchange, then back to reading order.
    rows = _visible_messages(conversation).order_by("-sent_at", "-id").only("direction", "sent_at", "body_text")
    texts = (
        f"[{'you' if m.direction == Message.Direction.OUT else 'them'}, {m.sent_at:%Y-%m-%d %H:%M}]\n{m.body_text}"
        for m in _pages(rows)
    )
    return list(reversed(prompts.within_budget(texts, budget).texts))


def _notes_text(account: ExternalAccount) -> str | None:
    """The user's private notes on the person, newest first (they are the user's words, not provider data)."""
    notes = AccountNote.objects.filter(account=account).order_by("-created_at", "-id").values_list("body", flat=True)
    return "\n---\n".join(notes[:20]) or None


def _write_draft(
    *, kind, identity, account, lead=None, conversation=None, job_id=None, action
) -> Draft:
    try:
        check_draftable(identity, account)
    except DraftRefused as exc:
        _audit_failure(action, exc, entity=account, provider_id=account.provider_id, identity_id=identity.pk)
        raise
    snapshot = latest_snapshot(account)
    budget = _budget() - PROMPT_MARGIN_TOKENS - prompts.fixed_cost(
        prompts.draft_messages(kind=kind, voice=identity.voice_config_json, post_text=None,
                               profile_text=None, conversation_texts=[])
    )
    version = prompts.DRAFT_INTRO_VERSION if kind == Draft.Kind.INTRO else prompts.DRAFT_REPLY_VERSION
    try:
        post = _fit(_post_text(lead), budget // 3) if lead else None
        profile = _fit_optional(snapshot_text(snapshot), budget // 6)
        notes = _fit_optional(_notes_text(account), budget // 8)
        used = prompts.fixed_cost([{"content": post or ""}, {"content": profile or ""}, {"content": notes or ""}])
        history = _conversation_texts(conversation, budget - used)
        if kind == Draft.Kind.REPLY and not history:
            raise _too_small() if _has_text(conversation) else AgentError(
                "There is nothing to reply to in this conversation yet."
            )
        messages = prompts.draft_messages(
            kind=kind, voice=identity.voice_config_json, post_text=post, profile_text=profile,
            conversation_texts=history, notes_text=notes,
        )
        result = _chat(
            messages, schema=schemas.DRAFT, operation=f"draft_{kind}", prompt_version=version,
            job_id=job_id, max_tokens=1200,
        )
    except (LLMError, AgentError) as exc:
        _audit_failure(action, exc, entity=account, provider_id=account.provider_id, identity_id=identity.pk)
        raise
    with transaction.atomic():
        draft = Draft.objects.create(
            kind=kind,
            identity=identity,
            account=account,
            lead_post=lead,
            conversation=conversation,
            subject=result.data["subject"].strip() or None,
            body_text=result.data["body"],
            llm_call_id=result.call_ids[-1] if result.call_ids else None,
            model_info_json=_model_info(
                result, job_id=job_id, snapshot_id=snapshot.pk if snapshot else None,
                history_messages=len(history),
            ),
        )
        audit.record(
            action, actor="agent", entity=draft, provider_id=account.provider_id, identity_id=identity.pk,
            response={"call_ids": result.call_ids},
        )
    return draft


def draft_intro(lead: LeadPost, identity: Identity, *, job_id: int | None = None) -> Draft:
    if lead.author_account_id is None:
        raise AgentError("This post has no known author to write to.")
    account = lead.author_account
    conversation = (
        Conversation.objects.filter(identity=identity, counterpart_account=account, deleted_at__isnull=True)
        .order_by("-last_activity_at", "-id")
        .first()
    )
    return _write_draft(
        kind=Draft.Kind.INTRO, identity=identity, account=account, lead=lead, conversation=conversation,
        job_id=job_id, action="agent.draft_intro",
    )


def draft_reply(conversation: Conversation, *, job_id: int | None = None) -> Draft:
    return _write_draft(
        kind=Draft.Kind.REPLY, identity=conversation.identity, account=conversation.counterpart_account,
        conversation=conversation, job_id=job_id, action="agent.draft_intro",
    )


def update_draft(draft: Draft, *, body: str, subject: str | None) -> Draft:
    if draft.status != Draft.Status.DRAFT:
        raise AgentError(f"This draft was already {draft.status}.")
    with transaction.atomic():
        Draft.objects.filter(pk=draft.pk).update(body_text=body, subject=subject or None, updated_at=timezone.now())
        draft.body_text, draft.subject = body, subject or None
        audit.record("draft.edit", entity=draft, identity_id=draft.identity_id)
    return draft


def discard_draft(draft: Draft, *, reason: str) -> Draft:
    with transaction.atomic():
        updated = Draft.objects.filter(pk=draft.pk, status=Draft.Status.DRAFT).update(
            status=Draft.Status.DISCARDED, discard_reason=reason[:255], updated_at=timezone.now()
        )
        if not updated:
            raise AgentError("Only an unsent draft can be discarded.")
        draft.status, draft.discard_reason = Draft.Status.DISCARDED, reason[:255]
        audit.record("draft.discard", entity=draft, identity_id=draft.identity_id, request={"reason": reason})
    return draft


def send_draft(draft: Draft, *, body: str, subject: str | None) -> Message:
    """Send the user's (possibly edited) draft: called only from the user's Send click."""
    from inbox.services import send_manual

    if draft.status != Draft.Status.DRAFT:
        raise AgentError(f"This draft was already {draft.status}.")
    if draft.conversation is None and not subject:
        raise AgentError("A first message needs a subject.")
    check_draftable(draft.identity, draft.account)
    message = send_manual(
        identity=draft.identity,
        body=body,
        idempotency_key=f"draft-{draft.pk}",
        conversation=draft.conversation,
        to_username=None if draft.conversation else draft.account.external_username,
        subject=None if draft.conversation else subject,
    )
    with transaction.atomic():
        Draft.objects.filter(pk=draft.pk).update(
            status=Draft.Status.SENT, body_text=body, subject=subject or None, sent_message=message,
            updated_at=timezone.now(),
        )
        draft.status, draft.body_text, draft.sent_message = Draft.Status.SENT, body, message
        audit.record("draft.send", entity=draft, identity_id=draft.identity_id,
                     response={"message_id": message.pk})
    return message


def _draft_target(draft: Draft, subject: str | None) -> dict:
    return {"conversation": draft.conversation,
            "to_username": None if draft.conversation else draft.account.external_username,
            "subject": None if draft.conversation else subject}


def open_draft_on_site(draft: Draft, *, body: str, subject: str | None) -> dict:
    """Every send rule, then the provider's prefilled compose page for this draft (the edits are kept)."""
    from inbox.services.sending import prepare_site_send

    if draft.status != Draft.Status.DRAFT:
        raise AgentError(f"This draft was already {draft.status}.")
    if draft.conversation is None and not subject:
        raise AgentError("A first message needs a subject.")
    check_draftable(draft.identity, draft.account)
    site_send = prepare_site_send(identity=draft.identity, body=body, **_draft_target(draft, subject))
    update_draft(draft, body=body, subject=subject)
    return site_send


def record_draft_sent_by_hand(draft: Draft, *, body: str, subject: str | None) -> Message:
    """The draft page's "I sent it": the draft is sent (by hand), its message stored once."""
    from inbox.services.sending import record_sent_by_hand

    if draft.status == Draft.Status.SENT and draft.sent_message_id:
        return draft.sent_message  # the second click of a double click
    if draft.status != Draft.Status.DRAFT:
        raise AgentError(f"This draft was already {draft.status}.")
    check_draftable(draft.identity, draft.account)
    message = record_sent_by_hand(identity=draft.identity, body=body, idempotency_key=f"draft-{draft.pk}",
                                  **_draft_target(draft, subject))
    with transaction.atomic():
        Draft.objects.filter(pk=draft.pk).update(
            status=Draft.Status.SENT, body_text=body, subject=subject or None, sent_message=message,
            updated_at=timezone.now(),
        )
        draft.status, draft.body_text, draft.sent_message = Draft.Status.SENT, body, message
        audit.record("draft.send", entity=draft, identity_id=draft.identity_id,
                     response={"message_id": message.pk, "by_hand": True})
    return message


# --- requests from the UI (enqueue a job) -------------------------------------------


def _prefix(kind: str, pk: int) -> str:
    return f"agents:{kind}:{pk}:"


def latest_job(kind: str, pk: int) -> Job | None:
    return Job.objects.filter(dedupe_key__startswith=_prefix(kind, pk)).order_by("-id").first()


def _request(task: str, kind: str, pk: int, *args, **kwargs) -> Job:
    if not inference_configured():
        raise AgentError(NOT_CONFIGURED)
    current = latest_job(kind, pk)
    if current is not None and current.is_active:
        return current  # a second click while the first is under way
    return enqueue(task, *args, dedupe_key=_prefix(kind, pk) + uuid.uuid4().hex[:12], queue="agent", **kwargs)


def request_profile_summary(account: ExternalAccount) -> Job:
    return _request("agent.profile_summary", "summary", account.pk, account.pk)


def request_lead_score(lead: LeadPost) -> Job:
    return _request("agent.lead_scoring", "score", lead.pk, lead.pk)


def request_intro_draft(lead: LeadPost, identity: Identity) -> Job:
    if lead.author_account_id is None:
        raise AgentError("This post has no known author to write to.")
    check_draftable(identity, lead.author_account)
    return _request("agent.draft_intro", "intro", lead.pk, lead_post_id=lead.pk, identity_id=identity.pk)


def request_reply_draft(conversation: Conversation) -> Job:
    check_draftable(conversation.identity, conversation.counterpart_account)
    return _request("agent.draft_intro", "reply", conversation.pk, conversation_id=conversation.pk)


def regenerate_draft(draft: Draft) -> Job:
    """Discard this draft ("regenerated") and ask for a fresh one from the same inputs."""
    if draft.kind == Draft.Kind.INTRO:
        job = request_intro_draft(draft.lead_post, draft.identity)
    else:
        job = request_reply_draft(draft.conversation)
    discard_draft(draft, reason="Regenerated")
    return job
