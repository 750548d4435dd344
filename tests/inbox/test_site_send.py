"""Sending on the provider's own page: "Open on Reddit to send" after every rule, then "I sent it", once."""

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from identities.services import add_do_not_contact, connect_feed_token, connect_identity
from inbox import tasks
from inbox.errors import SendError
from inbox.models import Conversation, Message, SendAttempt
from inbox.services.ingest import store_messages
from inbox.services.sending import prepare_site_send, record_sent_by_hand
from rediska.models import AuditLog
from rediska.providers.base import RemoteAccount, RemoteMessage
from tests.factories import ProviderFactory


@pytest.fixture
def feed_alice(fake_feeds, db):
    ProviderFactory()
    token = fake_feeds.issue_token("alice")
    return connect_feed_token(provider_id="reddit", text=fake_feeds.feed_url("alice", token))


@pytest.fixture
def thread(fake_feeds, feed_alice):
    fake_feeds.reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "are you coming?"], subject="hike")
    tasks.sync_delta(feed_alice.pk)
    return Conversation.objects.get()


def key_of(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def test_the_reply_box_of_a_feed_identity_offers_the_providers_page(auth_client, thread):
    html = auth_client.get(reverse("inbox:conversation", args=[thread.pk])).content.decode()
    assert "Check and open on Reddit" in html and reverse("inbox:compose_on_site", args=[thread.pk]) in html
    assert ">Send</button>" not in html and "Sending through Rediska needs a Reddit API app" in html


def test_the_compose_link_is_given_only_after_the_rules_and_is_prefilled(auth_client, thread, fake_reddit):
    page = auth_client.get(reverse("inbox:conversation", args=[thread.pk])).content.decode()
    answer = auth_client.post(reverse("inbox:compose_on_site", args=[thread.pk]),
                              {"body": "Yes!\r\nSee you at 9", "idempotency_key": key_of(page)})
    html = answer.content.decode()
    assert answer.status_code == 200
    url = re.search(r'id="open-on-site" href="([^"]+)" target="_blank" rel="noopener noreferrer"', html).group(1)
    parts = urlsplit(url.replace("&amp;", "&"))
    assert f"{parts.scheme}://{parts.netloc}" == fake_reddit.url and parts.path == "/message/compose/"
    assert parse_qs(parts.query) == {"to": ["bob"], "subject": ["re: hike"], "message": ["Yes!\nSee you at 9"]}
    assert "I sent it" in html
    assert not Message.objects.filter(direction="out").exists() and not SendAttempt.objects.exists()
    assert AuditLog.objects.get(action_type="message.open_compose").request_json["to"] == "bob"


def test_no_link_for_someone_on_the_do_not_contact_list(thread, feed_alice):
    add_do_not_contact("reddit", "BOB")
    with pytest.raises(SendError, match="do-not-contact") as caught:
        prepare_site_send(identity=feed_alice, body="hello", conversation=thread)
    assert caught.value.code == "dnc"
    with pytest.raises(SendError, match="do-not-contact"):
        record_sent_by_hand(identity=feed_alice, body="hello", idempotency_key="k-1", conversation=thread)
    assert not Message.objects.filter(direction="out").exists()


def test_i_sent_it_records_the_message_once_even_when_clicked_twice(auth_client, thread):
    form = {"body": "Yes! See you at 9", "idempotency_key": "key-double-1"}
    first = auth_client.post(reverse("inbox:sent_by_hand", args=[thread.pk]), form)
    second = auth_client.post(reverse("inbox:sent_by_hand", args=[thread.pk]), form)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    sent = Message.objects.get(direction="out")
    assert sent.body_text == "Yes! See you at 9" and sent.external_message_id is None
    assert sent.conversation_id == thread.pk
    thread.refresh_from_db()
    assert thread.last_message_id == sent.pk and thread.last_direction == "out"
    assert thread.counterpart_account.first_contacted_at is not None
    assert SendAttempt.objects.get().status == "sent"
    rows = AuditLog.objects.filter(action_type="message.sent_by_hand")
    assert rows.count() == 2 and rows.filter(response_json__replayed=True).count() == 1


def test_a_later_api_sync_links_the_hand_sent_message_to_the_real_one(fake_reddit, thread, feed_alice):
    sent = record_sent_by_hand(identity=feed_alice, body="Yes!\nSee you at 9", idempotency_key="k-2",
                               conversation=thread)
    fake_reddit.add_message("alice", "bob", "Yes!\nSee you at 9", subject="re: hike")  # what Reddit's page sent
    connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("alice"),
                     account=RemoteAccount(username="alice"), identity=feed_alice)
    tasks.backfill_messages(feed_alice.pk, "sent")
    sent.refresh_from_db()
    assert sent.external_message_id
    assert Message.objects.filter(direction="out", body_text__contains="See you").count() == 1
    assert Message.objects.filter(direction="out").count() == 2  # and "hi bob", which only the API serves


def test_an_import_through_the_inbox_store_links_it_too_despite_rewrapped_text(thread, feed_alice):
    sent = record_sent_by_hand(identity=feed_alice, body="Yes!  See you\nat 9", idempotency_key="k-3",
                               conversation=thread)
    store_messages(feed_alice, [RemoteMessage(
        external_id="zz1", conversation_external_id="zz1", author="alice", recipient="bob",
        sent_at=datetime.now(UTC), body="Yes! See you at 9", subject="re: hike")])
    sent.refresh_from_db()
    assert sent.external_message_id == "zz1" and Message.objects.count() == 3
    store_messages(feed_alice, [RemoteMessage(  # the same again: nothing new
        external_id="zz1", conversation_external_id="zz1", author="alice", recipient="bob",
        sent_at=datetime.now(UTC), body="Yes! See you at 9")])
    assert Message.objects.count() == 3


def test_a_send_to_someone_else_with_the_same_words_is_not_linked(thread, feed_alice):
    sent = record_sent_by_hand(identity=feed_alice, body="thanks", idempotency_key="k-4", conversation=thread)
    store_messages(feed_alice, [RemoteMessage(external_id="zz2", conversation_external_id="zz2", author="alice",
                                              recipient="carol", sent_at=datetime.now(UTC), body="thanks")])
    sent.refresh_from_db()
    assert sent.external_message_id is None


def test_an_empty_or_expired_form_records_nothing(auth_client, thread):
    for form in ({"body": "  ", "idempotency_key": "k-5"}, {"body": "hi", "idempotency_key": "bad key!"}):
        assert auth_client.post(reverse("inbox:sent_by_hand", args=[thread.pk]), form).status_code in (400, 409)
    assert not Message.objects.filter(direction="out").exists()


def test_the_daily_cap_of_first_messages_holds_on_the_providers_page_and_hand_sent_ones_count(feed_alice, fake_feeds):
    from inbox.services import pacing

    pacing.set_first_message_cap(feed_alice, 1)
    record_sent_by_hand(identity=feed_alice, body="hello carol", idempotency_key="k-carol", to_username="carol",
                        subject="hi")
    assert pacing.pacing_for(feed_alice).left == 0
    with pytest.raises(SendError, match="first message") as caught:
        prepare_site_send(identity=feed_alice, body="hello dave", to_username="dave", subject="hi")
    assert caught.value.code == "cap"
    assert not AuditLog.objects.filter(action_type="message.open_compose").exists()


def test_a_reply_on_the_providers_page_is_never_capped(thread, feed_alice):
    from inbox.services import pacing

    pacing.set_first_message_cap(feed_alice, 0)
    assert prepare_site_send(identity=feed_alice, body="see you", conversation=thread)["to"] == "bob"
