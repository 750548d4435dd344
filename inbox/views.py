"""Inbox pages: conversation list, conversation view with the reply box, sync panel."""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from identities.models import Identity
from identities.onboarding import identity_required
from identities.services import is_do_not_contact

from . import tasks, workflow_views
from .errors import InboxError, SendError
from .forms import ConversationFilterForm, HiddenForm, MessageHiddenForm, ReplyForm
from .models import Conversation, Message
from .services import conversations as conversation_services
from .services import syncing
from .services.ingest import PLACEHOLDERS

PAGE_SIZE = 50
# What a refused or failed send answers: our own rules are a conflict, the provider's trouble a bad gateway.
SEND_STATUS = {"dnc": 409, "stale": 409, "in_progress": 409, "already_sent": 409, "invalid": 400,
               "rate_limited": 429, "cooldown": 429, "cap": 429,
               "unreachable": 502, "auth": 502, "recipient_refused": 502,
               "not_found": 502, "refused": 502}


@identity_required
@require_GET
def conversation_list(request):
    form = ConversationFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        status = 200
        page = conversation_services.conversation_page(filters, request.GET.get("page"), PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "placeholders": PLACEHOLDERS}
    template = "inbox/_conversation_table.html" if request.htmx and not request.htmx.boosted else "inbox/list.html"
    return render(request, template, context, status=status)


def _conversation(pk: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("identity", "counterpart_account", "last_message"), pk=pk
    )


def _conversation_page(request, conversation: Conversation, form: ReplyForm, *, error: str | None = None,
                       status: int = 200):
    counterpart = conversation.counterpart_account
    all_messages = list(conversation_services.conversation_page_messages(conversation))
    show_hidden = request.GET.get("hidden") == "1"
    hidden_count = sum(1 for m in all_messages if m.deleted_at)
    if conversation.identity.needs_reconnect or not conversation.identity.is_active:
        blocked = f"{conversation.identity.display_name} must be reconnected before it can send."
    elif counterpart.external_username in PLACEHOLDERS:
        blocked = "Nobody can receive a reply here: the account is gone or this is an automated notice."
    elif is_do_not_contact(conversation.provider_id, counterpart.external_username):
        blocked = f"{counterpart.external_username} is on the do-not-contact list: nothing is sent to them."
    elif not any(m.external_message_id for m in all_messages):
        blocked = "There is nothing to reply to yet in this conversation: sync the identity, then reply."
    else:
        blocked = None
    context = {
        "conversation": conversation,
        "counterpart": counterpart,
        "messages_shown": [m for m in all_messages if show_hidden or not m.deleted_at],
        "hidden_count": hidden_count,
        "show_hidden": show_hidden,
        "form": form,
        "send_error": error,
        "reply_blocked": blocked,
        **workflow_views.conversation_context(conversation, request.path),
    }
    return render(request, "inbox/conversation.html", context, status=status)


@identity_required
@require_GET
def conversation_detail(request, pk: int):
    return _conversation_page(request, _conversation(pk), ReplyForm())


@identity_required
@require_POST
def reply(request, pk: int):
    """Send the typed reply: only ever from this explicit click."""
    conversation = _conversation(pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _conversation_page(request, conversation, form, status=400)
    try:
        # Through the ledger (a job row per attempt); never retried on its own.
        result = tasks.send_manual(conversation.identity_id, form.cleaned_data["body"],
                                   form.cleaned_data["idempotency_key"], conversation_id=conversation.pk)
    except SendError as exc:
        # The typed text and the same key stay in the box: a resubmission is the same click.
        return _conversation_page(request, conversation, form, error=exc.user_message,
                                  status=SEND_STATUS.get(exc.code, 400))
    flash.success(request, "Sent.")
    return redirect(reverse("inbox:conversation", args=[conversation.pk]) + f"#m{result['message_id']}")


@identity_required
@require_POST
def conversation_hidden(request, pk: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    form = HiddenForm(request.POST)
    if not form.is_valid():
        flash.error(request, "Choose Hide or Unhide.")
        return redirect("inbox:conversation", pk=pk)
    if form.cleaned_data["hidden"]:
        conversation_services.hide_conversation(conversation)
        flash.success(request, "Conversation hidden here (nothing was deleted on the provider).")
        return redirect("inbox:list")
    conversation_services.unhide_conversation(conversation)
    flash.success(request, "Conversation shown again.")
    return redirect("inbox:conversation", pk=pk)


@identity_required
@require_POST
def messages_hidden(request, pk: int):
    """Hide or unhide one message of the conversation (the page has one form per action, not per message)."""
    form = MessageHiddenForm(request.POST)
    if not form.is_valid():
        flash.error(request, "Choose a message to hide or unhide.")
        return redirect("inbox:conversation", pk=pk)
    message = get_object_or_404(Message.objects.select_related("conversation"), pk=form.cleaned_data["message"],
                                conversation_id=pk)
    if form.cleaned_data["hidden"]:
        conversation_services.hide_message(message)
    else:
        conversation_services.unhide_message(message)
    target = reverse("inbox:conversation", args=[pk])
    return redirect(target + ("" if form.cleaned_data["hidden"] else "?hidden=1") + f"#m{message.pk}")


# --- the identity page's sync panel -----------------------------------------------------


def _sync_panel(request, identity: Identity, *, error: str | None = None, status: int = 200):
    jobs = syncing.active_jobs(identity)
    cursors = syncing.cursors(identity)
    context = {
        "identity": identity,
        "jobs": jobs,
        "cursors": cursors,
        "live": bool(jobs) or any(c.walking for c in cursors),
        "error": error,
    }
    template = "inbox/_identity_sync_panel.html" if request.htmx else "inbox/identity_sync.html"
    return render(request, template, context, status=status)


@require_GET
def identity_sync_panel(request, identity_id: int):
    return _sync_panel(request, get_object_or_404(Identity, pk=identity_id))


def _start(request, identity_id: int, start, done: str):
    identity = get_object_or_404(Identity, pk=identity_id)
    try:
        start(identity)
    except InboxError as exc:
        return _sync_panel(request, identity, error=exc.user_message, status=409)
    if request.htmx:
        return _sync_panel(request, identity)
    flash.success(request, done)
    return redirect("inbox:identity_sync_panel", identity_id=identity.pk)


@require_POST
def identity_sync(request, identity_id: int):
    return _start(request, identity_id, syncing.request_sync, "Sync started.")


@require_POST
def identity_backfill(request, identity_id: int):
    return _start(request, identity_id, syncing.request_backfill, "Backfill started: every message is fetched again.")
