"""Keeping the inbox current through the private feeds of an identity connected by its feed token."""

import pytest
from django.urls import reverse

from identities.services import connect_feed_token, session_for
from inbox import tasks
from inbox.models import Conversation, ListingState, Message, SyncCursor
from rediska.models import Job
from rediska.providers.base import RemoteAccount
from inbox.services.ingest import walk_folder
from rediska.providers.errors import AuthError, RateLimitedError, TransientError
from tests.factories import ProviderFactory


@pytest.fixture
def feed_alice(fake_feeds, db):
    ProviderFactory()
    token = fake_feeds.issue_token("alice")
    return connect_feed_token(provider_id="reddit", text=fake_feeds.feed_url("alice", token))


def test_a_feed_sync_archives_received_messages_threaded(fake_feeds, feed_alice):
    reddit = fake_feeds.reddit
    reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?"], subject="hello")
    reddit.add_message("carol", "alice", "question", subject="q")
    reddit.add_inbox_reply("alice", "dave", "nice comment")
    result = tasks.sync_delta(feed_alice.pk)
    assert result["new"] == 3 and [f["folder"] for f in result["folders"]] == ["inbox"]
    assert result["folders"][0]["other_items"] == 1
    bob = Conversation.objects.get(counterpart_account__external_username="bob")
    assert [m.body_text for m in bob.messages.order_by("sent_at")] == ["hi alice", "how are you?"]
    assert bob.identity_id == feed_alice.pk and bob.subject == "hello"
    assert not any(r.path.startswith("/message/sent") for r in fake_feeds.requests)
    assert ListingState.objects.get(identity=feed_alice, listing="inbox-feed").works


def test_the_next_sync_reads_only_what_is_new(fake_feeds, feed_alice):
    reddit = fake_feeds.reddit
    reddit.bulk_threads("alice", threads=120, per_thread=2, counterparts=6)
    tasks.sync_delta(feed_alice.pk)
    assert Message.objects.count() == 120
    fake_feeds.requests.clear()
    reddit.add_message("bob", "alice", "one more")
    result = tasks.sync_delta(feed_alice.pk)
    inbox_reads = [r for r in fake_feeds.requests if r.path.startswith("/message/")]
    assert result["new"] == 1 and len(inbox_reads) == 1  # one page, then it stops


def test_feed_and_api_messages_are_stored_once_in_either_order(fake_feeds, fake_reddit, feed_alice):
    fake_reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?"], subject="hello")
    tasks.sync_delta(feed_alice.pk)  # the feed first
    assert Message.objects.count() == 2
    from identities.services import connect_identity

    connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("alice"),
                     account=RemoteAccount(username="alice"), identity=feed_alice)
    for folder in ("inbox", "sent"):
        tasks.backfill_messages(feed_alice.pk, folder)  # then the API: its sent half too
    assert Message.objects.count() == 3 == Message.objects.values("external_message_id").distinct().count()
    assert Conversation.objects.count() == 1
    fake_reddit.add_message("bob", "alice", "still there?",
                            reply_to=fake_reddit.messages_between("alice", "bob")[-1]["name"])
    from identities.models import REFRESH_TOKEN, ProviderCredential

    ProviderCredential.objects.filter(identity=feed_alice, credential_type=REFRESH_TOKEN).delete()
    tasks.sync_delta(feed_alice.pk)  # and the feed again
    assert Message.objects.count() == 4 == Message.objects.values("external_message_id").distinct().count()
    assert Conversation.objects.get().messages.count() == 4


def test_a_backfill_walks_only_the_folders_a_feed_token_serves(fake_feeds, feed_alice):
    fake_feeds.reddit.add_thread("bob", "alice", ["hi alice"])
    tasks.backfill_conversations(feed_alice.pk)
    assert [j.payload_json["args"] for j in Job.objects.filter(job_type="ingest.backfill_messages")] == \
        [[feed_alice.pk, "inbox"]]
    assert tasks.backfill_messages(feed_alice.pk, "sent") == {
        "skipped": "this identity's connection cannot sync the sent folder"}


def test_a_changed_feed_token_flags_the_identity_for_a_new_one(fake_feeds, feed_alice):
    fake_feeds.change_token("alice")
    with pytest.raises(AuthError):
        tasks.sync_delta(feed_alice.pk)
    feed_alice.refresh_from_db()
    assert feed_alice.needs_reconnect and "replace the token" in feed_alice.last_auth_error
    assert Job.objects.get().status == "failed"


def test_a_rate_limited_feed_is_retried_later(fake_feeds, feed_alice):
    fake_feeds.inject(r"^/message/inbox", status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimitedError):
        tasks.sync_delta(feed_alice.pk)
    assert Job.objects.get().status == "retrying"


def test_a_malformed_feed_keeps_what_is_stored(fake_feeds, feed_alice):
    fake_feeds.reddit.add_message("bob", "alice", "hello")
    tasks.sync_delta(feed_alice.pk)
    fake_feeds.inject(r"^/message/inbox", status=200, body=b"<feed><entry>")
    with pytest.raises(TransientError, match="not well-formed"):
        walk_folder(feed_alice, session_for(feed_alice), "inbox", full=True, owner="test")
    assert Message.objects.count() == 1 and SyncCursor.objects.get(folder="inbox").synced_until


def test_the_sync_panel_says_why_sent_messages_are_not_synced(fake_feeds, feed_alice, auth_client):
    html = auth_client.get(reverse("inbox:identity_sync_panel", args=[feed_alice.pk]),
                           HTTP_HX_REQUEST="true").content.decode()
    assert "no feed of sent messages" in html and "Sync now" in html
