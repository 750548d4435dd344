"""Reading conversations, and hiding them locally (the only local "delete")."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

import search
from rediska import audit

from ..models import AccountLabel, Conversation, ConversationLabel, ExternalAccount, Message
from . import state
from .ingest import PLACEHOLDERS

SNIPPET = 160


def conversation_page(filters: dict, number, per_page: int) -> Page:
    """One page of the conversation list (newest activity first), in four queries whatever its size or depth.

    `filters` are a ConversationFilterForm's cleaned data: identity, direction
    (of the last message), needs_reply, since/until (dates of last activity),
    hidden (include locally hidden conversations), label (the conversation's or its person's).

    Counted and cut on the conversations table alone (joining only what a
    filter needs), then only the page's rows are loaded with their details: a
    deep page or the count never joins every message and account.
    """
    page = Paginator(_filtered(filters).values_list("pk", flat=True), per_page).get_page(number)
    ids = list(page.object_list) if page.paginator.count else []
    rows = {c.pk: c for c in _with_details(Conversation.objects.filter(pk__in=ids).order_by())} if ids else {}
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    return page


def _filtered(filters: dict) -> QuerySet:
    conversations = Conversation.objects.order_by("-last_activity_at", "-id")
    if not filters.get("hidden"):
        conversations = conversations.filter(deleted_at__isnull=True)
    if filters.get("identity"):
        conversations = conversations.filter(identity=filters["identity"])
    if filters.get("direction"):
        conversations = conversations.filter(last_direction=filters["direction"])
    if filters.get("needs_reply"):
        # A subquery, not a join: joining the accounts lets MySQL start from them and sort by hand.
        conversations = conversations.filter(last_direction=Message.Direction.IN).exclude(
            counterpart_account__in=ExternalAccount.objects.filter(external_username__in=PLACEHOLDERS).values("pk")
        )
    conversations = _state_filter(conversations, filters.get("state") or "")
    if filters.get("since"):
        conversations = conversations.filter(last_activity_at__gte=_day_start(filters["since"]))
    if filters.get("until"):
        conversations = conversations.filter(last_activity_at__lt=_day_start(filters["until"], next_day=True))
    if filters.get("label"):
        # The conversation's own label or its person's: subqueries, so no row comes twice.
        label = filters["label"]
        conversations = conversations.filter(
            Q(pk__in=ConversationLabel.objects.filter(label=label).values("conversation"))
            | Q(counterpart_account__in=AccountLabel.objects.filter(label=label).values("account"))
        )
    return conversations


def _state_filter(conversations: QuerySet, wanted: str) -> QuerySet:
    now = timezone.now()
    if wanted == "unread":
        return conversations.filter(state.unread_q())
    if wanted == "snoozed":
        return conversations.filter(state.snoozed_q(now))
    if wanted == "follow_up":
        return conversations.filter(state.follow_up_pending_q())
    return conversations.exclude(state.snoozed_q(now))
def filtered_conversations(filters: dict) -> QuerySet:
    """The conversations a ConversationFilterForm's filters select (the CSV export reads them)."""
    return _filtered(filters)


def _with_details(conversations: QuerySet) -> QuerySet:
    return state.with_state(
        conversations.select_related("identity", "counterpart_account", "last_message")
        .only("id", "subject", "last_activity_at", "deleted_at", "identity__display_name",
              "identity__external_username", "counterpart_account__external_username",
              "counterpart_account__remote_status", "last_message__direction", "last_message__sent_at",
              "last_message__remote_visibility", "last_direction", "last_message_id", "read_message_id",
              "marked_unread", "snoozed_at", "snoozed_until", "follow_up_at")
        .annotate(snippet=Substr("last_message__body_text", 1, SNIPPET))
        .prefetch_related(Prefetch("label_links",
                                   queryset=ConversationLabel.objects.select_related("label").order_by("label__key")))
    )


def _day_start(day, *, next_day: bool = False) -> datetime:
    start = datetime.combine(day + timedelta(days=1) if next_day else day, time.min)
    return timezone.make_aware(start)


def conversation_page_messages(conversation: Conversation) -> QuerySet:
    """Every message of the conversation, oldest first (hidden ones too: the page folds them)."""
    return conversation.messages.only(
        "id", "conversation_id", "external_message_id", "identity_id", "direction", "sent_at", "body_text",
        "remote_visibility", "remote_deleted_at", "deleted_at",
    ).order_by("sent_at", "id")


def _set_hidden(instance, hidden: bool, action: str) -> None:
    with transaction.atomic():
        type(instance).objects.filter(pk=instance.pk).update(deleted_at=timezone.now() if hidden else None)
        instance.refresh_from_db(fields=["deleted_at"])
        is_conversation = isinstance(instance, Conversation)
        conversation = instance if is_conversation else instance.conversation
        audit.record(action, provider_id=instance.provider_id, identity_id=conversation.identity_id, entity=instance)
        # Hidden items stay searchable only when asked for: their documents carry the flag.
        search.index_later("conversation" if is_conversation else "message", instance.pk)


def hide_conversation(conversation: Conversation) -> None:
    _set_hidden(conversation, True, "conversation.hide")


def unhide_conversation(conversation: Conversation) -> None:
    _set_hidden(conversation, False, "conversation.unhide")


def hide_message(message: Message) -> None:
    _set_hidden(message, True, "message.hide")


def unhide_message(message: Message) -> None:
    _set_hidden(message, False, "message.unhide")
