"""A new reply is told through the notifications (recorded by the store, sent by the task), never in a sync."""

from datetime import datetime, timedelta

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from identities.services import session_for
from inbox.models import Conversation, SyncCursor
from inbox.services.ingest import store_messages, walk_folder
from rediska.models import Notification
from rediska.providers.base import RemoteMessage
from rediska.tasks import send_notifications

pytestmark = pytest.mark.django_db


def incoming(identity, n: int, at: datetime, body: str = "Are you free on Saturday?") -> RemoteMessage:
    return RemoteMessage(external_id=f"n{n}", conversation_external_id="thread1", author="bob",
                         recipient=identity.external_username, sent_at=at, body=body, subject="plans")


def archived_until(identity, at: datetime) -> None:
    SyncCursor.objects.update_or_create(identity=identity, folder="inbox", defaults={"synced_until": at})


def test_a_reply_newer_than_the_archive_is_told_with_a_short_excerpt_and_a_link(alice, fake_notify):
    now = timezone.now()
    archived_until(alice, now - timedelta(hours=1))
    store_messages(alice, [incoming(alice, 1, now - timedelta(minutes=5), body="Sure! " + "long text " * 50)])
    send_notifications()
    [message] = fake_notify.received
    conversation = Conversation.objects.get()
    assert message["title"] == f"Rediska: New reply from bob to {alice.display_name}"
    assert message["message"].startswith("Sure! long text") and len(message["message"]) <= 140
    assert Notification.objects.get().url == reverse("inbox:conversation", args=[conversation.pk])


def test_history_is_not_news_the_first_archive_and_old_messages_tell_nothing(alice, fake_notify):
    now = timezone.now()
    store_messages(alice, [incoming(alice, 1, now - timedelta(minutes=5))])  # no archive yet: the first walk
    archived_until(alice, now - timedelta(minutes=1))
    store_messages(alice, [incoming(alice, 2, now - timedelta(minutes=3))])  # older than the archive's mark
    archived_until(alice, now - timedelta(days=10))
    store_messages(alice, [incoming(alice, 3, now - timedelta(days=5))])  # late history
    assert not Notification.objects.exists()


def test_a_message_stored_twice_is_told_once(alice, fake_notify):
    now = timezone.now()
    archived_until(alice, now - timedelta(hours=1))
    store_messages(alice, [incoming(alice, 1, now)])
    store_messages(alice, [incoming(alice, 1, now)])
    assert Notification.objects.count() == 1


def test_a_broken_notification_url_never_fails_a_sync(fake_reddit, alice, settings, fake_notify):
    settings.NOTIFY_URLS = ["nosuchservice://whatever"]
    fake_reddit.add_thread("bob", "alice", ["hi alice"], subject="hello", start=time.time() - 3600)
    session = session_for(alice)
    assert walk_folder(alice, session, "inbox", full=True, owner="t").complete
    fake_reddit.add_thread("carol", "alice", ["news"], subject="new", start=time.time() - 60)
    result = walk_folder(alice, session, "inbox", full=False, owner="t")
    assert result.new == 1
    # Only the news (not the first archive) is recorded; its send fails on its own, in its job.
    assert list(Notification.objects.values_list("title", flat=True)) == [
        f"New reply from carol to {alice.display_name}"]
    with pytest.raises(Exception, match="No usable notification URL"):
        send_notifications()
