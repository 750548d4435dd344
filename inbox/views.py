"""Inbox pages: conversation list, conversation view with the reply box, sync panel."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from identities.models import Identity
from identities.onboarding import identity_required
from identities.services import archive_only_message, capabilities_for, is_do_not_contact
from rediska.exports import ExportError, discard_upload, refused_upload, save_upload

from . import tasks, workflow_views
from .errors import InboxError, SendError
from .forms import (ConversationFilterForm, ExportUploadForm, FollowUpForm, HiddenForm, MessageHiddenForm,
                    ReadForm, ReplyForm, SnoozeForm)
from .models import Conversation, Message
from .services import conversations as conversation_services
from .services import export_import, sending, syncing
from .services import state as state_services
from .services.ingest import PLACEHOLDERS

PAGE_SIZE = 50
# What a refused or failed send answers: our own rules are a conflict, the provider's trouble a bad gateway.
SEND_STATUS = {"dnc": 409, "stale": 409, "in_progress": 409, "already_sent": 409, "archive_only": 409, "invalid": 400,
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
        state_services.with_state(Conversation.objects.select_related("identity__provider", "counterpart_account",
                                                                      "last_message")
                                  .prefetch_related("identity__credentials")), pk=pk
    )


def _conversation_page(request, conversation: Conversation, form: ReplyForm, *, error: str | None = None,
                       status: int = 200, site_send: dict | None = None, snooze_form: SnoozeForm | None = None,
                       follow_up_form: FollowUpForm | None = None):
    counterpart = conversation.counterpart_account
    all_messages = list(conversation_services.conversation_page_messages(conversation))
    show_hidden = request.GET.get("hidden") == "1"
    hidden_count = sum(1 for m in all_messages if m.deleted_at)
    by_site = not sending.sends_through_provider(conversation.identity)
    if (conversation.identity.needs_reconnect and not by_site) or not conversation.identity.is_active:
        blocked = f"{conversation.identity.display_name} must be reconnected before it can send."
    elif conversation.identity.is_archive_only:
        blocked = archive_only_message(conversation.identity)
    elif counterpart.external_username in PLACEHOLDERS:
        blocked = "Nobody can receive a reply here: the account is gone or this is an automated notice."
    elif is_do_not_contact(conversation.provider_id, counterpart.external_username):
        blocked = f"{counterpart.external_username} is on the do-not-contact list: nothing is sent to them."
    elif not by_site and not any(m.external_message_id for m in all_messages):
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
        "by_site": by_site,
        "send_reason": capabilities_for(conversation.identity).why_not("send") if by_site else "",
        "provider_name": conversation.identity.provider.display_name,
        "site_send": site_send,
        "snooze_form": snooze_form or SnoozeForm(),
        "follow_up_form": follow_up_form or FollowUpForm(initial={"days": 3}),
        **workflow_views.conversation_context(conversation, request.path),
    }
    return render(request, "inbox/conversation.html", context, status=status)


@identity_required
@require_GET
def conversation_detail(request, pk: int):
    conversation = _conversation(pk)
    # Opening reads it (the page shows it as it was: "new" marks stay for this view).
    state_services.mark_read(conversation)
    return _conversation_page(request, conversation, ReplyForm())


def _send_refused(request, conversation: Conversation, form: ReplyForm, exc: SendError):
    # The typed text and the same key stay in the box: a resubmission is the same click.
    return _conversation_page(request, conversation, form, error=exc.user_message,
                              status=SEND_STATUS.get(exc.code, 400))


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
        return _send_refused(request, conversation, form, exc)
    flash.success(request, "Sent.")
    return redirect(reverse("inbox:conversation", args=[conversation.pk]) + f"#m{result['message_id']}")


@identity_required
@require_POST
def compose_on_site(request, pk: int):
    """Every send rule, then the provider's prefilled compose page to send from (nothing is sent here)."""
    conversation = _conversation(pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _conversation_page(request, conversation, form, status=400)
    try:
        site_send = sending.prepare_site_send(identity=conversation.identity, body=form.cleaned_data["body"],
                                              conversation=conversation)
    except SendError as exc:
        return _send_refused(request, conversation, form, exc)
    site_send["key"] = form.cleaned_data["idempotency_key"]
    return _conversation_page(request, conversation, form, site_send=site_send)


@identity_required
@require_POST
def sent_by_hand(request, pk: int):
    """The "I sent it" click after sending on the provider's page: recorded once per form."""
    conversation = _conversation(pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _conversation_page(request, conversation, form, status=400)
    try:
        message = sending.record_sent_by_hand(identity=conversation.identity, body=form.cleaned_data["body"],
                                              idempotency_key=form.cleaned_data["idempotency_key"],
                                              conversation=conversation)
    except SendError as exc:
        return _send_refused(request, conversation, form, exc)
    flash.success(request, "Recorded as sent by hand; it is linked to the real message when a sync or an "
                           "import brings it in.")
    return redirect(reverse("inbox:conversation", args=[conversation.pk]) + f"#m{message.pk}")


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


# --- conversation state: read/unread, snooze, follow-up -------------------------------------


def _next(request) -> str | None:
    """Where a row's action came from (the list with its filters), when it is one of our pages."""
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


def _back(conversation: Conversation, next_url: str | None):
    """Back to the list when the action came from it (a row's shortcut), else to the conversation."""
    return redirect(next_url or reverse("inbox:conversation", args=[conversation.pk]))


@identity_required
@require_POST
def conversation_read(request, pk: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    form, next_url = ReadForm(request.POST), _next(request)
    if not form.is_valid():
        flash.error(request, "Choose Mark read or Mark unread.")
        return _back(conversation, next_url)
    if form.cleaned_data["unread"]:
        state_services.mark_unread(conversation)
        flash.success(request, f"Marked unread: {conversation.counterpart_account.external_username}.")
        # Staying on the conversation would read it again at once.
        return redirect(next_url or reverse("inbox:list"))
    state_services.mark_read(conversation)
    flash.success(request, "Marked read.")
    return _back(conversation, next_url)


@identity_required
@require_POST
def conversation_snooze(request, pk: int):
    conversation = _conversation(pk)
    form, next_url = SnoozeForm(request.POST), _next(request)
    if form.is_valid():
        data = form.cleaned_data
        until = timezone.now() + timedelta(days=data["days"]) if data.get("days") else data.get("until")
        try:
            state_services.snooze_conversation(conversation, until)
        except InboxError as exc:
            error = exc.user_message
        else:
            when = "they reply" if until is None else timezone.localtime(until).strftime("%Y-%m-%d %H:%M")
            flash.success(request, f"Snoozed until {when} (a reply from them wakes it).")
            return redirect(next_url or reverse("inbox:list"))
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if next_url:
        flash.error(request, f"Not snoozed: {error}")
        return redirect(next_url)
    return _state_refused(request, conversation, f"Not snoozed: {error}", snooze_form=form)


def _state_refused(request, conversation: Conversation, error: str, **forms):
    flash.error(request, error)
    return _conversation_page(request, conversation, ReplyForm(), status=400, **forms)


@identity_required
@require_POST
def conversation_unsnooze(request, pk: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    next_url = _next(request)  # the body is read (and a broken one refused) before anything is written
    state_services.unsnooze_conversation(conversation)
    flash.success(request, "Snooze ended.")
    return _back(conversation, next_url)


@identity_required
@require_POST
def conversation_follow_up(request, pk: int):
    conversation = _conversation(pk)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        return _state_refused(request, conversation, " ".join(form.errors.get("days", ["Choose a number of days."])),
                              follow_up_form=form)
    try:
        state_services.set_follow_up(conversation, form.cleaned_data["days"])
    except InboxError as exc:
        return _state_refused(request, conversation, exc.user_message, follow_up_form=form)
    days = form.cleaned_data["days"]
    flash.success(request, f"Reminder set: in {days} day{'s' if days != 1 else ''} if they have not replied.")
    return _back(conversation, _next(request))


@identity_required
@require_POST
def conversation_follow_up_clear(request, pk: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    next_url = _next(request)  # the body is read (and a broken one refused) before anything is written
    state_services.clear_follow_up(conversation)
    flash.success(request, "Reminder cleared.")
    return _back(conversation, next_url)


# --- the identity page's sync panel -----------------------------------------------------


def _sync_panel(request, identity: Identity, *, error: str | None = None, status: int = 200):
    jobs = syncing.active_jobs(identity)
    cursors = syncing.cursors(identity)
    listings = syncing.listing_states(identity)
    capabilities = capabilities_for(identity)
    context = {
        "capabilities": capabilities,
        "cursor_rows": [(c, capabilities.why_not("sync_received" if c.folder == "inbox" else "sync_sent"))
                        for c in cursors],
        "identity": identity,
        "jobs": jobs,
        "cursors": cursors,
        "listings": listings,
        "stopped_listings": [l for l in listings if not l.works],
        "working_listings": [l for l in listings if l.works],
        "live": bool(jobs) or any(c.walking for c in cursors),
        "error": error,
    }
    template = "inbox/_identity_sync_panel.html" if request.htmx else "inbox/identity_sync.html"
    return render(request, template, context, status=status)


@require_GET
def identity_sync_panel(request, identity_id: int):
    return _sync_panel(request, get_object_or_404(Identity.objects.prefetch_related("credentials"), pk=identity_id))


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


# --- the identity page's data export panel ----------------------------------------------


def _export_panel(request, identity: Identity, form: ExportUploadForm | None = None, *, error: str | None = None,
                  status: int = 200):
    imports = export_import.imports_of(identity)
    context = {"identity": identity, "imports": imports, "form": form or ExportUploadForm(), "error": error,
               "live": any(i.is_active for i in imports), "max_upload": settings.EXPORT_MAX_UPLOAD_BYTES}
    template = "inbox/_identity_export_panel.html" if request.htmx else "inbox/identity_export.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
def identity_export(request, identity_id: int):
    """The import panel (GET) and the upload of a data export (POST), which queues its import."""
    identity = get_object_or_404(Identity.objects.select_related("provider"), pk=identity_id)
    if request.method == "GET":
        return _export_panel(request, identity)
    refused = refused_upload(request)
    if refused:
        return _export_panel(request, identity, error=refused, status=413)
    form = ExportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _export_panel(request, identity, form, status=400)
    upload = form.cleaned_data["export"]
    try:
        token = save_upload(upload)
    except ExportError as exc:
        form.add_error("export", exc.user_message)
        return _export_panel(request, identity, form, status=400)
    try:
        export_import.request_import(identity, token, upload.name)
    except InboxError as exc:
        discard_upload(token)
        form.add_error(None, exc.user_message)
        return _export_panel(request, identity, form, status=409)
    flash.success(request, f"{upload.name} is being imported: progress shows below.")
    return redirect("identities:detail", identity.pk)
