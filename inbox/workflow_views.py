"""The user's workflow pages: labels, notes on people, saved replies, pacing, CSV export.

Forms post plainly and go back to `next` (a local address); a refusal answers 400
with the reason.  The person panel is loaded by the person page (leads) with
`hx-get`; the conversation page includes its fragments directly.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from identities.models import Identity
from identities.onboarding import identity_required
from rediska.csvexport import batches, csv_response
from rediska.providers.errors import ProviderError

from .errors import InboxError
from .forms import ConversationFilterForm, FillForm, LabelForm, NoteForm, PacingForm, SavedReplyForm
from .models import AccountNote, Conversation, ExternalAccount, Label, SavedReply
from .services import labels, pacing, replies
from .services.conversations import filtered_conversations


def _next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path on this site only (a bare word would be taken for a view name by redirect()).
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _refused(request, message: str, back: str, status: int = 400):
    return render(request, "inbox/refused.html", {"error": message, "back": back}, status=status)


def _first_error(form) -> str:
    for errors in form.errors.values():
        return errors[0]
    return "This could not be saved."


# --------------------------------------------------------------------------- labels
def _add_label(request, instance, add, back: str):
    form = LabelForm(request.POST)
    if not form.is_valid():
        return _refused(request, _first_error(form), back)
    try:
        label = add(instance, form.cleaned_data["name"])
    except InboxError as exc:
        return _refused(request, exc.user_message, back)
    flash.success(request, f"Labelled “{label.name}”.")
    return redirect(back)


@identity_required
@require_POST
def conversation_label_add(request, pk: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    back = _next(request, reverse("inbox:conversation", args=[pk]))
    return _add_label(request, conversation, labels.add_conversation_label, back)


@identity_required
@require_POST
def conversation_label_remove(request, pk: int, label_id: int):
    conversation = get_object_or_404(Conversation, pk=pk)
    label = get_object_or_404(Label, pk=label_id)
    back = _next(request, reverse("inbox:conversation", args=[pk]))  # the body is read before anything changes
    labels.remove_conversation_label(conversation, label)
    flash.success(request, f"Label “{label.name}” removed.")
    return redirect(back)


@identity_required
@require_POST
def account_label_add(request, account_id: int):
    account = get_object_or_404(ExternalAccount, pk=account_id)
    return _add_label(request, account, labels.add_account_label, _next(request, reverse("inbox:list")))


@identity_required
@require_POST
def account_label_remove(request, account_id: int, label_id: int):
    account = get_object_or_404(ExternalAccount, pk=account_id)
    label = get_object_or_404(Label, pk=label_id)
    back = _next(request, reverse("inbox:list"))
    labels.remove_account_label(account, label)
    flash.success(request, f"Label “{label.name}” removed from {account.external_username}.")
    return redirect(back)


# --------------------------------------------------------------------------- notes
@identity_required
@require_POST
def note_add(request, account_id: int):
    account = get_object_or_404(ExternalAccount, pk=account_id)
    back = _next(request, reverse("inbox:list"))
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, _first_error(form), back)
    try:
        labels.add_note(account, form.cleaned_data["body"])
    except InboxError as exc:
        return _refused(request, exc.user_message, back)
    flash.success(request, f"Note on {account.external_username} saved (private: never sent).")
    return redirect(back)


@identity_required
@require_POST
def note_delete(request, pk: int):
    note = get_object_or_404(AccountNote.objects.select_related("account"), pk=pk)
    back = _next(request, reverse("inbox:list"))
    labels.delete_note(note)
    flash.success(request, "Note deleted.")
    return redirect(back)


def person_context(account: ExternalAccount, back: str) -> dict:
    return {"account": account, "account_labels": labels.account_labels(account),
            "notes": labels.notes_of(account), "label_form": LabelForm(), "note_form": NoteForm(),
            "all_labels": list(labels.all_labels()), "back": back}


@identity_required
@require_GET
def person_panel(request, account_id: int):
    """Labels and notes of a person, for the person page (loaded with hx-get, or opened alone)."""
    account = get_object_or_404(ExternalAccount, pk=account_id)
    context = person_context(account, _next(request, request.get_full_path()))
    template = "inbox/_person_workflow.html" if request.htmx else "inbox/person_workflow.html"
    return render(request, template, context)


def conversation_context(conversation: Conversation, back: str) -> dict:
    """What the conversation page adds: labels, the person's notes, saved replies and the send pacing."""
    identity = conversation.identity
    return {
        **person_context(conversation.counterpart_account, back),
        "conversation_labels": labels.conversation_labels(conversation),
        "saved_replies": list(SavedReply.objects.only("id", "title")),
        "fill_query": f"conversation={conversation.pk}",
        "fill_target": "reply-body",
        "pacing": pacing.pacing_for(identity),
    }


# --------------------------------------------------------------------------- saved replies
def _replies_page(request, form, status=200):
    return render(request, "inbox/saved_replies.html",
                  {"replies_list": SavedReply.objects.all(), "form": form, "placeholders": replies.PLACEHOLDERS},
                  status=status)


@identity_required
@require_http_methods(["GET", "POST"])
def saved_replies(request):
    if request.method == "GET":
        return _replies_page(request, SavedReplyForm())
    form = SavedReplyForm(request.POST)
    if not form.is_valid():
        return _replies_page(request, form, status=400)
    try:
        reply = replies.save_reply(title=form.cleaned_data["title"], body=form.cleaned_data["body"])
    except InboxError as exc:
        form.add_error(None, exc.user_message)
        return _replies_page(request, form, status=400)
    flash.success(request, f"Saved reply “{reply.title}” added.")
    return redirect("inbox:saved_replies")


@identity_required
@require_http_methods(["GET", "POST"])
def saved_reply_edit(request, pk: int):
    reply = get_object_or_404(SavedReply, pk=pk)
    if request.method == "GET":
        form = SavedReplyForm(initial={"title": reply.title, "body": reply.body})
        return render(request, "inbox/saved_reply_edit.html", {"reply": reply, "form": form,
                                                               "placeholders": replies.PLACEHOLDERS})
    form = SavedReplyForm(request.POST)
    if form.is_valid():
        try:
            replies.save_reply(title=form.cleaned_data["title"], body=form.cleaned_data["body"], reply=reply)
        except InboxError as exc:
            form.add_error(None, exc.user_message)
        else:
            flash.success(request, "Saved reply updated.")
            return redirect("inbox:saved_replies")
    return render(request, "inbox/saved_reply_edit.html",
                  {"reply": reply, "form": form, "placeholders": replies.PLACEHOLDERS}, status=400)


@identity_required
@require_POST
def saved_reply_delete(request, pk: int):
    reply = get_object_or_404(SavedReply, pk=pk)
    replies.delete_reply(reply)
    flash.success(request, f"Saved reply “{reply.title}” deleted.")
    return redirect("inbox:saved_replies")


def _fill_values(data: dict) -> dict[str, str]:
    if data.get("conversation"):
        conversation = get_object_or_404(Conversation.objects.select_related("identity", "counterpart_account"),
                                         pk=data["conversation"])
        return replies.placeholder_values(account=conversation.counterpart_account, identity=conversation.identity)
    account = get_object_or_404(ExternalAccount, pk=data["account"])
    identity = get_object_or_404(Identity, pk=data["identity"]) if data.get("identity") else None
    return replies.placeholder_values(account=account, identity=identity, post_id=data.get("post"))


@identity_required
@require_GET
def saved_reply_fill(request, pk: int):
    """The reply filled in for one person, as JSON for static/js/replies.js (which inserts it)."""
    reply = get_object_or_404(SavedReply, pk=pk)
    form = FillForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": _first_error(form)}, status=400)
    filled = replies.fill_reply(reply, _fill_values(form.cleaned_data))
    return JsonResponse({"text": filled.text, "missing": filled.missing, "warning": filled.warning})


@identity_required
@require_GET
def saved_reply_picker(request):
    """The "insert a saved reply" control for another app's editor (the draft page loads it with hx-get)."""
    form = FillForm(request.GET)
    if not form.is_valid():
        return render(request, "inbox/refused.html", {"error": _first_error(form), "back": reverse("inbox:list")},
                      status=400)
    query = request.GET.copy()
    query.pop("target", None)
    return render(request, "inbox/_saved_reply_picker.html", {
        "saved_replies": list(SavedReply.objects.only("id", "title")), "fill_query": query.urlencode(),
        "fill_target": form.cleaned_data.get("target") or "draft-body",
    })


# --------------------------------------------------------------------------- pacing on the identity page
def _pacing_page(request, identity: Identity, form=None, *, error: str | None = None, status: int = 200):
    context = {"identity": identity, "pacing": pacing.pacing_for(identity),
               "form": form or PacingForm(initial={"first_messages_per_day": identity.first_messages_per_day}),
               "error": error}
    template = "inbox/_identity_pacing.html" if request.htmx else "inbox/identity_pacing.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
def identity_pacing(request, identity_id: int):
    identity = get_object_or_404(Identity, pk=identity_id)
    if request.method == "GET":
        return _pacing_page(request, identity)
    form = PacingForm(request.POST)
    if not form.is_valid():
        return _pacing_page(request, identity, form, status=400)
    try:
        pacing.set_first_message_cap(identity, form.cleaned_data["first_messages_per_day"])
    except InboxError as exc:
        return _pacing_page(request, identity, form, error=exc.user_message, status=400)
    flash.success(request, "Daily cap saved.")
    return redirect(_next(request, reverse("identities:detail", args=[identity.pk])))


@require_POST
def identity_account_refresh(request, identity_id: int):
    """Read the account's age and karma from the provider (whoami): only on this click."""
    from identities.services import refresh_account_facts

    identity = get_object_or_404(Identity, pk=identity_id)
    try:
        refresh_account_facts(identity)
    except ProviderError as exc:
        return _pacing_page(request, identity, error=exc.user_message, status=502)
    flash.success(request, "Account age and karma read from the provider.")
    return redirect(_next(request, reverse("identities:detail", args=[identity.pk])))


# --------------------------------------------------------------------------- CSV export
@identity_required
@require_GET
def conversations_export(request):
    """The conversations of the list's filters, as a streamed CSV (any number of rows)."""
    form = ConversationFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return _refused(request, "These filters could not be used: " + _first_error(form), reverse("inbox:list"))
    filters = form.cleaned_data if form.is_bound else {}
    conversations = filtered_conversations(filters).values(
        "pk", "counterpart_account__external_username", "identity__external_username", "subject",
        "last_activity_at", "last_direction", "deleted_at")
    header = ["conversation_id", "with", "identity", "subject", "last_activity", "last_direction", "labels",
              "hidden", "url"]
    base = request.build_absolute_uri(reverse("inbox:list"))

    def rows():
        for batch in batches(conversations):
            tags = labels.conversation_label_names([c["pk"] for c in batch])
            for c in batch:
                yield [c["pk"], c["counterpart_account__external_username"], c["identity__external_username"],
                       c["subject"], c["last_activity_at"], c["last_direction"], tags.get(c["pk"], ""),
                       c["deleted_at"] is not None, f"{base}c/{c['pk']}/"]

    return csv_response("conversations", header, rows())
