"""Agent panels (embedded by the leads and inbox pages), drafts and recorded calls.

A panel URL answers its fragment `_<name>_panel.html` to HTMX and a full page
otherwise, so every `hx-get` also works as a plain link.  Refusals (no model
configured, do-not-contact, bad form) answer a 4xx page with the reason; to HTMX
they answer the fragment with the reason shown, since HTMX does not swap 4xx.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from identities.services import capabilities_for, is_do_not_contact
from inbox.models import Conversation, ExternalAccount
from inbox.services import pacing
from inbox.services.sending import MAX_BODY
from leads.models import LeadPost
from rediska.models import Job

from . import services
from .forms import CallFilterForm, DiscardForm, DraftForm, IntroDraftForm
from .models import Draft, LLMCall, ProfileSnapshot
from .services import AgentError


def _panel(request, name: str, context: dict, status: int = 200):
    if request.htmx:
        return render(request, f"agents/_{name}_panel.html", context)
    return render(request, f"agents/{name}_panel.html", context, status=status)


def _after_post(request, name: str, context: dict, url_name: str, pk: int, note: str):
    if request.htmx:
        return render(request, f"agents/_{name}_panel.html", context)
    messages.success(request, note)
    return redirect(url_name, pk)


# --- account panel -------------------------------------------------------------


def _account_context(account: ExternalAccount, error: str | None = None) -> dict:
    return {
        "account": account,
        "snapshot": services.latest_snapshot(account),
        "job": services.latest_job("summary", account.pk),
        "error": error,
    }


@require_GET
def account_panel(request, account_id: int):
    account = get_object_or_404(ExternalAccount, pk=account_id)
    return _panel(request, "account", _account_context(account))


@require_POST
def analyse_profile(request, account_id: int):
    account = get_object_or_404(ExternalAccount, pk=account_id)
    try:
        services.request_profile_summary(account)
    except AgentError as exc:
        return _panel(request, "account", _account_context(account, exc.user_message), status=409)
    return _after_post(
        request, "account", _account_context(account), "agents:account_panel", account.pk,
        "Profile analysis queued.",
    )


# --- lead panel -------------------------------------------------------------------


def _lead_context(lead: LeadPost, *, error: str | None = None, form: IntroDraftForm | None = None) -> dict:
    author = lead.author_account
    return {
        "lead": lead,
        "reasons": (lead.score_reasons_json or {}).get("reasons") or [],
        "score_call_id": (lead.score_reasons_json or {}).get("call_id"),
        "score_job": services.latest_job("score", lead.pk),
        "intro_job": services.latest_job("intro", lead.pk),
        "drafts": list(
            Draft.objects.filter(lead_post=lead, status=Draft.Status.DRAFT).select_related("identity")[:3]
        ),
        "dnc": bool(author and is_do_not_contact(author.provider_id, author.external_username)),
        "form": form or IntroDraftForm(provider_id=lead.provider_id, auto_id=f"id_lead{lead.pk}_%s"),
        "error": error,
    }


def _get_lead(lead_post_id: int) -> LeadPost:
    return get_object_or_404(LeadPost.objects.select_related("author_account"), pk=lead_post_id)


@require_GET
def lead_panel(request, lead_post_id: int):
    lead = _get_lead(lead_post_id)
    return _panel(request, "lead", _lead_context(lead))


@require_POST
def score_lead(request, lead_post_id: int):
    lead = _get_lead(lead_post_id)
    try:
        services.request_lead_score(lead)
    except AgentError as exc:
        return _panel(request, "lead", _lead_context(lead, error=exc.user_message), status=409)
    return _after_post(request, "lead", _lead_context(lead), "agents:lead_panel", lead.pk, "Scoring queued.")


@require_POST
def draft_intro(request, lead_post_id: int):
    lead = _get_lead(lead_post_id)
    form = IntroDraftForm(request.POST, provider_id=lead.provider_id, auto_id=f"id_lead{lead.pk}_%s")
    if not form.is_valid():
        return _panel(request, "lead", _lead_context(lead, form=form), status=400)
    try:
        services.request_intro_draft(lead, form.cleaned_data["identity"])
    except AgentError as exc:
        return _panel(request, "lead", _lead_context(lead, error=exc.user_message, form=form), status=409)
    return _after_post(
        request, "lead", _lead_context(lead, form=form), "agents:lead_panel", lead.pk, "Intro draft queued."
    )


# --- conversation panel ---------------------------------------------------------------


def _conversation_context(conversation: Conversation, *, error: str | None = None, fill: Draft | None = None):
    return {
        "conversation": conversation,
        "job": services.latest_job("reply", conversation.pk),
        "draft": Draft.objects.filter(conversation=conversation, kind=Draft.Kind.REPLY, status=Draft.Status.DRAFT)
        .order_by("-id")
        .first(),
        "fill": fill,
        "reply_max_length": MAX_BODY,
        "error": error,
    }


def _get_conversation(conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("identity", "counterpart_account"), pk=conversation_id
    )


@require_GET
def conversation_panel(request, conversation_id: int):
    """`?fill=<draft id>` also returns the draft as the inbox's reply box (out of band);
    the panel asks for that itself on the poll that sees its job finish."""
    conversation = _get_conversation(conversation_id)
    fill = None
    fill_id = request.GET.get("fill", "")
    if fill_id.isdecimal():  # not isdigit(): int() refuses "²"
        fill = Draft.objects.filter(
            pk=int(fill_id), conversation=conversation, status=Draft.Status.DRAFT
        ).first()
    elif request.GET.get("after", "").isdecimal():
        # Polling: once the job we are waiting for is done, fill the reply box with its draft.
        job = Job.objects.filter(pk=int(request.GET["after"])).first()
        if job and job.status == Job.Status.DONE:
            draft_id = (job.result_json or {}).get("draft_id")
            fill = Draft.objects.filter(pk=draft_id, conversation=conversation, status=Draft.Status.DRAFT).first()
    return _panel(request, "conversation", _conversation_context(conversation, fill=fill))


@require_POST
def suggest_reply(request, conversation_id: int):
    conversation = _get_conversation(conversation_id)
    try:
        services.request_reply_draft(conversation)
    except AgentError as exc:
        return _panel(request, "conversation", _conversation_context(conversation, error=exc.user_message), 409)
    return _after_post(
        request, "conversation", _conversation_context(conversation), "agents:conversation_panel",
        conversation.pk, "Reply suggestion queued.",
    )


# --- drafts --------------------------------------------------------------------------------


def _get_draft(pk: int) -> Draft:
    return get_object_or_404(
        Draft.objects.select_related("identity__provider", "account", "lead_post", "conversation", "llm_call")
        .prefetch_related("identity__credentials"), pk=pk
    )


def _send_pacing(draft: Draft) -> dict:
    """What the identity may still send (first-message cap, provider cooldown), shown by the Send button."""
    first = draft.conversation_id is None and pacing.is_first_message(draft.identity, draft.account.external_username)
    return {"pacing": pacing.pacing_for(draft.identity), "first_message": first}


def _draft_page(request, draft, *, form=None, discard_form=None, error=None, status=200, site_send=None):
    by_site = not capabilities_for(draft.identity).send
    return render(
        request, "agents/draft_detail.html",
        {
            "draft": draft,
            "form": form or DraftForm(initial={"subject": draft.subject, "body": draft.body_text}),
            "discard_form": discard_form or DiscardForm(),
            "dnc": is_do_not_contact(draft.account.provider_id, draft.account.external_username),
            "error": error,
            "by_site": by_site,
            "send_reason": capabilities_for(draft.identity).why_not("send") if by_site else "",
            "provider_name": draft.identity.provider.display_name,
            "site_send": site_send,
            **_send_pacing(draft),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def draft_detail(request, pk: int):
    """Edit the draft; "Send" is the user's explicit click, the only way a draft leaves."""
    draft = _get_draft(pk)
    if request.method == "GET":
        return _draft_page(request, draft)
    form = DraftForm(request.POST, first_message=draft.conversation_id is None)
    if not form.is_valid():
        return _draft_page(request, draft, form=form, status=400)
    action, body, subject = (form.cleaned_data[k] for k in ("action", "body", "subject"))
    try:
        if action == "open_on_site":
            site_send = services.open_draft_on_site(draft, body=body, subject=subject)
            return _draft_page(request, draft, form=form, site_send=site_send)
        if action == "sent_by_hand":
            services.record_draft_sent_by_hand(draft, body=body, subject=subject)
            messages.success(request, f"Recorded as sent by hand to {draft.account.external_username}.")
        elif action == "send":
            services.send_draft(draft, body=body, subject=subject)
            messages.success(request, f"Sent to {draft.account.external_username}.")
        else:
            services.update_draft(draft, body=body, subject=subject)
            messages.success(request, "Draft saved.")
    except Exception as exc:  # send errors (provider, DNC, identity) carry plain words
        message = getattr(exc, "user_message", None)
        if message is None:
            raise
        return _draft_page(request, draft, form=form, error=message, status=409)
    return redirect("agents:draft_detail", draft.pk)


@require_POST
def draft_discard(request, pk: int):
    draft = _get_draft(pk)
    form = DiscardForm(request.POST)
    if not form.is_valid():
        return _draft_page(request, draft, discard_form=form, status=400)
    try:
        services.discard_draft(draft, reason=form.cleaned_data["reason"])
    except AgentError as exc:
        return _draft_page(request, draft, error=exc.user_message, status=409)
    messages.success(request, "Draft discarded.")
    return redirect("agents:draft_detail", draft.pk)


@require_POST
def draft_regenerate(request, pk: int):
    draft = _get_draft(pk)
    if draft.status != Draft.Status.DRAFT:
        return _draft_page(request, draft, error="Only an unsent draft can be regenerated.", status=409)
    try:
        services.regenerate_draft(draft)
    except AgentError as exc:
        return _draft_page(request, draft, error=exc.user_message, status=409)
    messages.success(request, "A new draft is being written.")
    if draft.kind == Draft.Kind.INTRO:
        return redirect("agents:lead_panel", draft.lead_post_id)
    return redirect("agents:conversation_panel", draft.conversation_id)


# --- snapshots and recorded calls ----------------------------------------------------------


@require_GET
def snapshot_detail(request, pk: int):
    snapshot = get_object_or_404(ProfileSnapshot.objects.select_related("account"), pk=pk)
    call_ids = [i for i in (snapshot.model_info_json or {}).get("call_ids", []) if isinstance(i, int)]
    calls = LLMCall.objects.filter(pk__in=call_ids).defer("request_json", "response_text").order_by("id")
    return render(request, "agents/snapshot_detail.html", {"snapshot": snapshot, "calls": calls})


@require_GET
def call_list(request):
    form = CallFilterForm(request.GET or None)
    calls = LLMCall.objects.select_related("job").defer("request_json", "response_text")
    snapshot = None
    if form.is_valid():
        data = form.cleaned_data
        if data["job"]:
            calls = calls.filter(job_id=data["job"])
        if data["snapshot"]:
            snapshot = ProfileSnapshot.objects.filter(pk=data["snapshot"]).first()
            ids = (snapshot.model_info_json or {}).get("call_ids", []) if snapshot else []
            calls = calls.filter(pk__in=[i for i in ids if isinstance(i, int)])
        if data["operation"]:
            calls = calls.filter(operation=data["operation"])
    page = Paginator(calls, 50).get_page(request.GET.get("page"))
    return render(request, "agents/calls.html", {"form": form, "page": page, "snapshot": snapshot})


@require_GET
def call_detail(request, pk: int):
    call = get_object_or_404(LLMCall.objects.select_related("job"), pk=pk)
    return render(request, "agents/call_detail.html", {"call": call})
