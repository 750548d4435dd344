"""Conversation state: read/unread, snooze, follow-up reminders.

Every mark remembers the conversation's newest message when it was set
(`read_message`, `snooze_message`, `follow_up_message`).  Message ids only grow,
so "they wrote since" is `last_direction = in AND last_message_id > mark`: a
new incoming message makes the conversation unread, wakes a snooze and settles
a follow-up the moment ingest stores it, without ingest knowing about them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from rediska import audit

from ..errors import InboxError
from ..models import Conversation, ExternalAccount, Message
from .ingest import PLACEHOLDERS

MAX_SNOOZE = timedelta(days=366)
MIN_SNOOZE = timedelta(minutes=1)
MAX_FOLLOW_UP_DAYS = 90


def they_wrote_since(mark: str) -> Q:
    """True when the newest message is incoming and newer than the message remembered in `mark`."""
    return Q(last_direction=Message.Direction.IN) & (
        Q(**{f"{mark}__isnull": True}) | Q(last_message_id__gt=F(f"{mark}_id"))
    )


def unread_q() -> Q:
    return Q(marked_unread=True) | they_wrote_since("read_message")


def snoozed_q(now: datetime | None = None) -> Q:
    """Snoozed now: the snooze is set, its date (if any) still ahead, and they have not written since."""
    now = now or timezone.now()
    return (Q(snoozed_at__isnull=False) & (Q(snoozed_until__isnull=True) | Q(snoozed_until__gt=now))
            & ~they_wrote_since("snooze_message"))


def follow_up_due_q(now: datetime | None = None) -> Q:
    """A reminder whose time has come and that nobody answered (a reply settles it)."""
    now = now or timezone.now()
    return Q(follow_up_at__isnull=False, follow_up_at__lte=now) & ~they_wrote_since("follow_up_message")


def follow_up_pending_q() -> Q:
    return Q(follow_up_at__isnull=False) & ~they_wrote_since("follow_up_message")


def needs_reply_q() -> Q:
    """Their message is the newest and there is a person to answer (not a notice or a gone account)."""
    return Q(last_direction=Message.Direction.IN) & ~Q(
        counterpart_account__in=ExternalAccount.objects.filter(external_username__in=PLACEHOLDERS).values("pk")
    )


def with_state(conversations: QuerySet, now: datetime | None = None) -> QuerySet:
    """Annotate `is_unread`, `is_snoozed` and `follow_up_due` (computed by the database, no extra query)."""
    now = now or timezone.now()
    return conversations.annotate(
        is_unread=ExpressionWrapper(unread_q(), output_field=BooleanField()),
        is_snoozed=ExpressionWrapper(snoozed_q(now), output_field=BooleanField()),
        follow_up_due=ExpressionWrapper(follow_up_due_q(now), output_field=BooleanField()),
        follow_up_pending=ExpressionWrapper(follow_up_pending_q(), output_field=BooleanField()),
    )


def unread_count() -> int:
    """Unread conversations the list shows (hidden ones do not count)."""
    return Conversation.objects.filter(unread_q(), deleted_at__isnull=True).count()


def _update(conversation: Conversation, action: str, fields: dict, *, record: dict | None = None) -> None:
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(**fields, updated_at=timezone.now())
        conversation.refresh_from_db(fields=list(fields))
        audit.record(action, provider_id=conversation.provider_id, identity_id=conversation.identity_id,
                     entity=conversation, request=record)


def mark_read(conversation: Conversation) -> bool:
    """Opening a conversation reads it: remember its newest message.  True if it was unread."""
    changed = Conversation.objects.filter(unread_q(), pk=conversation.pk).update(
        read_message_id=F("last_message_id"), marked_unread=False)
    if changed:
        conversation.refresh_from_db(fields=["read_message", "marked_unread"])
    return bool(changed)


def mark_unread(conversation: Conversation) -> None:
    _update(conversation, "conversation.mark_unread", {"marked_unread": True})


def snooze_conversation(conversation: Conversation, until: datetime | None, *,
                        now: datetime | None = None) -> None:
    """Snooze until `until`, or (None) until they reply.  A reply wakes it either way."""
    now = now or timezone.now()
    if until is not None:
        if timezone.is_naive(until):
            raise InboxError("Give the snooze time with its time zone.")
        if until < now + MIN_SNOOZE:
            raise InboxError("Choose a time in the future to snooze until.")
        if until > now + MAX_SNOOZE:
            raise InboxError("Snooze for at most a year: choose an earlier date.")
    _update(conversation, "conversation.snooze",
            {"snoozed_at": now, "snoozed_until": until, "snooze_message_id": conversation.last_message_id},
            record={"until": until.isoformat() if until else "reply"})


def unsnooze_conversation(conversation: Conversation) -> None:
    _update(conversation, "conversation.unsnooze", {"snoozed_at": None, "snoozed_until": None,
                                                    "snooze_message_id": None})


def set_follow_up(conversation: Conversation, days: int, *, now: datetime | None = None) -> None:
    """Remind in `days` days unless they reply before."""
    if not 1 <= days <= MAX_FOLLOW_UP_DAYS:
        raise InboxError(f"Choose between 1 and {MAX_FOLLOW_UP_DAYS} days.")
    now = now or timezone.now()
    _update(conversation, "conversation.follow_up",
            {"follow_up_at": now + timedelta(days=days), "follow_up_message_id": conversation.last_message_id},
            record={"days": days})


def clear_follow_up(conversation: Conversation) -> None:
    _update(conversation, "conversation.follow_up_clear", {"follow_up_at": None, "follow_up_message_id": None})
