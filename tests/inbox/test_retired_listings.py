"""Reddit as of 2025: /message/messages answers 302 to /login/; the archive still gets every message, once."""

import pytest
from django.urls import reverse

from inbox import tasks
from inbox.models import Conversation, ListingState, Message
from rediska.models import Job
from rediska.providers.errors import ListingUnavailableError


@pytest.fixture
def mixed_history(fake_reddit):
    """Threads both ways, a reply from alice inside bob's thread, and comment replies in her inbox."""
    fake_reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?", "fine"], subject="hello")
    fake_reddit.add_thread("alice", "carol", ["hello carol", "hey"], subject="meet up")
    fake_reddit.add_message("dave", "alice", "one-off", subject="question")
    fake_reddit.add_inbox_reply("alice", "erin", "replied to your comment")
    fake_reddit.add_inbox_reply("alice", "erin", "u/alice look", mention=True)
    return 7  # private messages in all


def test_a_backfill_stores_every_message_once_when_the_threads_listing_is_retired(fake_reddit, alice,
                                                                                  mixed_history):
    fake_reddit.retire_listing("messages")
    tasks.backfill_conversations(alice.pk)
    inbox = tasks.backfill_messages(alice.pk, "inbox")
    sent = tasks.backfill_messages(alice.pk, "sent")

    assert Message.objects.count() == mixed_history
    assert Message.objects.values("external_message_id").distinct().count() == mixed_history
    assert inbox["other_items"] == 2 and inbox["new"] == 4 and sent["new"] == 3
    # Threading as before: the received and sent halves of a thread are one conversation.
    bob = Conversation.objects.get(counterpart_account__external_username="bob")
    assert bob.messages.count() == 4 and bob.last_message.body_text == "fine"
    assert Conversation.objects.count() == 3


def test_a_sync_after_an_api_backfill_adds_nothing_twice(fake_reddit, alice, mixed_history):
    tasks.backfill_messages(alice.pk, "inbox")  # /message/messages still answered then
    tasks.backfill_messages(alice.pk, "sent")
    assert Message.objects.count() == mixed_history
    fake_reddit.retire_listing("messages")
    fake_reddit.add_message("bob", "alice", "still there?", reply_to=fake_reddit.messages_between("alice", "bob")[-1]["name"])

    result = tasks.sync_delta(alice.pk)

    assert result["new"] == 1 and Message.objects.count() == mixed_history + 1
    assert Conversation.objects.get(counterpart_account__external_username="bob").messages.count() == 5
    states = {s.listing: s.works for s in ListingState.objects.filter(identity=alice)}
    assert states == {"messages": False, "inbox": True, "sent": True}


def test_a_sync_goes_on_with_the_folders_still_served(fake_reddit, alice, mixed_history):
    for folder in ("messages", "inbox", "unread"):
        fake_reddit.retire_listing(folder)
    result = tasks.sync_delta(alice.pk)
    assert result["new"] == 3 and "inbox" in result["unavailable"]
    assert Job.objects.get(job_type="ingest.sync_delta").status == "done"


def test_when_nothing_is_served_the_job_fails_at_once_in_plain_words(fake_reddit, alice):
    for folder in ("messages", "inbox", "unread", "sent"):
        fake_reddit.retire_listing(folder)
    with pytest.raises(ListingUnavailableError):
        tasks.sync_delta(alice.pk)
    job = Job.objects.get(job_type="ingest.sync_delta")
    assert job.status == "failed" and job.next_run_at is None  # never retried forever
    assert "no longer serves" in job.last_error and "does not exist" not in job.last_error
    asked = [r.path for r in fake_reddit.requests if r.path.startswith("/message/")]
    assert len(asked) == 4  # each listing once


def test_the_identity_page_names_the_listing_that_stopped(fake_reddit, alice, mixed_history, auth_client):
    fake_reddit.retire_listing("messages")
    tasks.sync_delta(alice.pk)
    html = auth_client.get(reverse("inbox:identity_sync_panel", args=[alice.pk]), HTTP_HX_REQUEST="true") \
        .content.decode()
    assert "/message/messages" in html and "stopped" in html and "no longer serves" in html
    assert "/message/inbox" in html and "works" in html
