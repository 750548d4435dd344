"""Tell the user about new replies (through `rediska.notify`, sent later by its task)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse

from rediska import notify

from ..models import Message, SyncCursor

# Older than this is history coming in late (a backfill, an import), not news.
NEWS_MAX_AGE = timedelta(days=2)


def tell_new_replies(identity, fresh, ids: dict[str, int], directions: dict[str, str], conversations: dict,
                     now: datetime) -> None:
    """Record a "new reply" for each new incoming message newer than what the archive already had.

    An identity's first archive (no inbox high-water mark yet) brings its
    history, not news: nothing is told then.
    """
    if not notify.enabled(notify.Kind.REPLY):
        return
    incoming = [m for m in fresh if directions[m.external_id] == Message.Direction.IN and m.external_id in ids]
    if not incoming:
        return
    synced_until = (SyncCursor.objects.filter(identity=identity, folder=SyncCursor.Folder.INBOX)
                    .values_list("synced_until", flat=True).first())
    if synced_until is None:
        return
    floor = max(synced_until, now - NEWS_MAX_AGE)
    notify.record(*(
        notify.Event(
            kind=notify.Kind.REPLY, title=f"New reply from {m.author or 'someone'} to {identity.display_name}",
            body=notify.excerpt(m.body), key=f"reply:{ids[m.external_id]}",
            url=reverse("inbox:conversation", args=[conversations[m.conversation_external_id].pk]),
        )
        for m in incoming if m.sent_at > floor
    ))
