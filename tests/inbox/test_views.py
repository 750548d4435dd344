"""Inbox pages: list, conversation, reply box, hiding, the identity sync panel."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from identities.services import add_do_not_contact, session_for
from inbox.models import Conversation, Message, SendAttempt
from inbox.services.ingest import walk_folder
from rediska.models import Job
from tests.factories import ConversationFactory, ExternalAccountFactory, IdentityFactory, MessageFactory

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def archive(identity):
    session = session_for(identity)
    for folder in ("inbox", "sent"):
        walk_folder(identity, session, folder, full=True, owner="test")


@pytest.fixture
def client_with_thread(fake_reddit, alice, auth_client):
    fake_reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?"], subject="hello")
    archive(alice)
    return auth_client, Conversation.objects.get()


def key_of(response) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def make_conversations(identity, count, *, per=1):
    for n in range(count):
        conversation = ConversationFactory(identity=identity, provider=identity.provider,
                                           last_activity_at=T0 - timedelta(minutes=n))
        last = None
        for i in range(per):
            last = MessageFactory(conversation=conversation, provider=identity.provider, direction="in",
                                  sent_at=T0 - timedelta(minutes=n, seconds=per - i))
        Conversation.objects.filter(pk=conversation.pk).update(last_message=last, last_direction=last.direction)


# --- list ---------------------------------------------------------------------------------


def test_the_inbox_needs_an_identity_first(auth_client):
    response = auth_client.get(reverse("inbox:list"))
    assert response.status_code == 302 and response["Location"] == reverse("identities:setup")


def test_the_list_shows_conversations_newest_first(auth_client, identity):
    make_conversations(identity, 3)
    response = auth_client.get(reverse("inbox:list"))
    assert response.status_code == 200
    pks = [int(pk) for pk in re.findall(r'href="/inbox/c/(\d+)/"', response.content.decode())]
    assert pks == sorted(pks)  # made newest first
    assert b"needs reply" in response.content


def test_the_list_filters_and_keeps_the_filters_in_page_links(auth_client, identity):
    make_conversations(identity, 60)
    other = IdentityFactory(provider=identity.provider)
    make_conversations(other, 2)
    response = auth_client.get(reverse("inbox:list"), {"identity": identity.pk, "needs_reply": "on"})
    assert response.context["page"].paginator.count == 60
    assert f"identity={identity.pk}&amp;needs_reply=on&amp;page=2" in response.content.decode()


def test_an_htmx_filter_gets_only_the_table(auth_client, identity):
    make_conversations(identity, 2)
    response = auth_client.get(reverse("inbox:list"), {"direction": "in"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"<table" in response.content and b"<html" not in response.content


def test_bad_filters_get_a_clear_message(auth_client, identity):
    response = auth_client.get(reverse("inbox:list"), {"since": "2026-05-02", "until": "2026-05-01"})
    assert response.status_code == 400
    assert "must not be after" in response.content.decode()
    response = auth_client.get(reverse("inbox:list"), {"identity": "not-a-number", "since": "yesterday"})
    assert response.status_code == 400 and b"Enter a valid date" in response.content


def test_the_list_takes_a_constant_number_of_queries(auth_client, identity, django_assert_max_num_queries):
    make_conversations(identity, 3)
    with django_assert_max_num_queries(12) as few:
        assert auth_client.get(reverse("inbox:list")).status_code == 200
    make_conversations(identity, 50)
    with django_assert_max_num_queries(12) as many:
        assert auth_client.get(reverse("inbox:list")).status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


# --- conversation --------------------------------------------------------------------------


def test_a_conversation_shows_its_messages_identity_and_counterpart(client_with_thread, alice):
    client, conversation = client_with_thread
    response = client.get(reverse("inbox:conversation", args=[conversation.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("hi alice") < html.index("hi bob") < html.index("how are you?")
    for message in conversation.messages.all():
        assert f'id="m{message.pk}"' in html
    assert alice.display_name in html and "bob" in html
    assert 'id="reply-body"' in html and 'name="body"' in html and '<label for="reply-body"' in html


def test_provider_text_is_escaped(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    MessageFactory(conversation=conversation, provider=identity.provider, body_text="<script>alert(1)</script>")
    html = auth_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_remote_deletions_and_account_states_show_as_badges(auth_client, identity):
    account = ExternalAccountFactory(remote_status="suspended")
    conversation = ConversationFactory(identity=identity, provider=identity.provider, counterpart_account=account)
    MessageFactory(conversation=conversation, provider=identity.provider, remote_visibility="removed",
                   remote_deleted_at=T0, body_text="kept text")
    html = auth_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "badge-removed" in html and "kept text" in html
    assert "badge-suspended" in html


def test_a_500_message_conversation_takes_a_constant_number_of_queries(auth_client, identity,
                                                                       django_assert_max_num_queries):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)

    def add(start, count):
        Message.objects.bulk_create([
            Message(provider_id=identity.provider_id, conversation=conversation, external_message_id=f"big{i}",
                    direction="in" if i % 2 else "out", sent_at=T0 + timedelta(minutes=i), body_text=f"message {i}")
            for i in range(start, start + count)
        ])

    add(0, 5)
    url = reverse("inbox:conversation", args=[conversation.pk])
    # (6 of them are the labels, notes, saved replies and pacing of the reply box; 1 marks it read;
    # 1 the identity's credentials, for what it can do; 1 the unread count in the navigation)
    with django_assert_max_num_queries(17) as few:
        auth_client.get(url)
    add(5, 495)
    with django_assert_max_num_queries(17) as many:
        response = auth_client.get(url)
    assert len(few.captured_queries) == len(many.captured_queries)
    assert response.content.decode().count('class="message ') == 500


def test_an_unknown_conversation_is_a_404(auth_client, identity):
    assert auth_client.get(reverse("inbox:conversation", args=[999999])).status_code == 404


# --- reply -----------------------------------------------------------------------------------


def test_the_send_button_sends_once_and_goes_to_the_new_message(client_with_thread, fake_reddit):
    client, conversation = client_with_thread
    page = client.get(reverse("inbox:conversation", args=[conversation.pk]))
    data = {"body": "fine, and you?", "idempotency_key": key_of(page)}

    first = client.post(reverse("inbox:reply", args=[conversation.pk]), data)
    second = client.post(reverse("inbox:reply", args=[conversation.pk]), data)  # double click / retried POST

    message = Message.objects.get(body_text="fine, and you?")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("inbox:conversation", args=[conversation.pk]) + f"#m{message.pk}"
    assert len(fake_reddit.sent) == 1
    assert message.external_message_id == fake_reddit.sent[0]["id"]


def test_each_render_of_the_reply_box_has_a_new_key(client_with_thread):
    client, conversation = client_with_thread
    url = reverse("inbox:conversation", args=[conversation.pk])
    assert key_of(client.get(url)) != key_of(client.get(url))


def test_a_refused_send_keeps_the_typed_text_and_says_why(client_with_thread, fake_reddit):
    client, conversation = client_with_thread
    fake_reddit.add_user("bob", accepts_messages=False)
    response = client.post(reverse("inbox:reply", args=[conversation.pk]),
                           {"body": "my carefully typed reply", "idempotency_key": "k-view-1"})
    html = response.content.decode()
    assert response.status_code == 502
    assert "does not accept private messages" in html
    assert "my carefully typed reply</textarea>" in html
    assert 'value="k-view-1"' in html  # resubmitting is the same click
    assert fake_reddit.sent == []


def test_a_rate_limited_send_says_so(client_with_thread, fake_reddit):
    client, conversation = client_with_thread
    fake_reddit.inject(r"^/api/comment", status=429, headers={"Retry-After": "20"})
    response = client.post(reverse("inbox:reply", args=[conversation.pk]),
                           {"body": "later", "idempotency_key": "k-view-2"})
    assert response.status_code == 429 and "rate limit" in response.content.decode()


def test_an_empty_reply_is_a_form_error(client_with_thread, fake_reddit):
    client, conversation = client_with_thread
    response = client.post(reverse("inbox:reply", args=[conversation.pk]), {"body": "   ", "idempotency_key": "k3"})
    assert response.status_code == 400 and "Write a message first." in response.content.decode()
    response = client.post(reverse("inbox:reply", args=[conversation.pk]), {"body": "hi"})
    assert response.status_code == 400
    assert not SendAttempt.objects.exists() and fake_reddit.sent == []


def test_a_do_not_contact_counterpart_has_no_reply_box(client_with_thread):
    client, conversation = client_with_thread
    add_do_not_contact("reddit", "bob")
    html = client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "do-not-contact" in html and 'id="reply-body"' not in html
    response = client.post(reverse("inbox:reply", args=[conversation.pk]), {"body": "hi", "idempotency_key": "k4"})
    assert response.status_code == 409 and "do-not-contact" in response.content.decode()


def test_sending_needs_a_post(client_with_thread):
    client, conversation = client_with_thread
    assert client.get(reverse("inbox:reply", args=[conversation.pk])).status_code == 405


# --- hiding ----------------------------------------------------------------------------------


def test_a_hidden_conversation_leaves_the_list_until_shown(auth_client, identity):
    make_conversations(identity, 1)
    conversation = Conversation.objects.get()
    response = auth_client.post(reverse("inbox:conversation_hidden", args=[conversation.pk]), {"hidden": "1"})
    assert response.status_code == 302
    assert auth_client.get(reverse("inbox:list")).context["page"].paginator.count == 0
    assert auth_client.get(reverse("inbox:list"), {"hidden": "on"}).context["page"].paginator.count == 1
    auth_client.post(reverse("inbox:conversation_hidden", args=[conversation.pk]), {"hidden": "0"})
    assert auth_client.get(reverse("inbox:list")).context["page"].paginator.count == 1


def test_a_hidden_message_is_folded_and_can_be_shown(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    message = MessageFactory(conversation=conversation, provider=identity.provider, body_text="private bit")
    hide_url = reverse("inbox:messages_hidden", args=[conversation.pk])
    url = reverse("inbox:conversation", args=[conversation.pk])
    html = auth_client.get(url).content.decode()
    # One form per action for the whole page; each message's button names it.
    assert f'action="{hide_url}"' in html and f'name="message" value="{message.pk}"' in html
    auth_client.post(hide_url, {"message": message.pk, "hidden": "1"})
    assert "private bit" not in auth_client.get(url).content.decode()
    html = auth_client.get(url, {"hidden": "1"}).content.decode()
    assert "private bit" in html and "hidden here" in html
    response = auth_client.post(hide_url, {"message": message.pk, "hidden": "0"})
    assert response.status_code == 302 and response["Location"].endswith(f"#m{message.pk}")
    message.refresh_from_db()
    assert message.deleted_at is None


def test_a_hide_request_without_a_message_changes_nothing(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    message = MessageFactory(conversation=conversation, provider=identity.provider)
    response = auth_client.post(reverse("inbox:messages_hidden", args=[conversation.pk]), {"hidden": "1"},
                                follow=True)
    assert "Choose a message to hide or unhide." in response.content.decode()
    message.refresh_from_db()
    assert message.deleted_at is None


def test_a_message_is_hidden_only_through_its_own_conversation(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    elsewhere = MessageFactory(provider=identity.provider)
    response = auth_client.post(reverse("inbox:messages_hidden", args=[conversation.pk]),
                                {"message": elsewhere.pk, "hidden": "1"})
    assert response.status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.deleted_at is None


def test_a_bad_hide_request_changes_nothing(auth_client, identity):
    make_conversations(identity, 1)
    conversation = Conversation.objects.get()
    auth_client.post(reverse("inbox:conversation_hidden", args=[conversation.pk]), {"hidden": "maybe"})
    conversation.refresh_from_db()
    assert conversation.deleted_at is None


# --- identity sync panel -----------------------------------------------------------------------


def test_the_sync_panel_shows_folders_and_buttons(auth_client, identity):
    response = auth_client.get(reverse("inbox:identity_sync_panel", args=[identity.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Inbox" in html and "Sent" in html and "Sync now" in html and "Backfill" in html
    assert "every 2s" not in html  # nothing under way, nothing to poll


def test_the_sync_panel_works_without_htmx(auth_client, identity):
    response = auth_client.get(reverse("inbox:identity_sync_panel", args=[identity.pk]))
    assert response.status_code == 200 and b"<html" in response.content


def test_backfill_button_starts_a_job_and_the_panel_polls_its_progress(auth_client, identity):
    response = auth_client.post(reverse("inbox:identity_backfill", args=[identity.pk]), HTTP_HX_REQUEST="true")
    job = Job.objects.get(job_type="ingest.backfill_conversations")
    html = response.content.decode()
    assert f"#{job.pk}" in html and 'hx-trigger="every 2s"' in html

    Job.objects.filter(pk=job.pk).update(status="running", progress_json={"folder": "inbox", "pages": 3,
                                                                          "messages": 300, "new": 12})
    html = auth_client.get(reverse("inbox:identity_sync_panel", args=[identity.pk]),
                           HTTP_HX_REQUEST="true").content.decode()
    assert "3 pages, 300 messages, 12 new" in html
    # The jobs page shows the same figures and keeps polling while the job runs.
    html = auth_client.get(reverse("jobs")).content.decode()
    assert "pages: 3" in html and "messages: 300" in html and 'hx-trigger="every 2s"' in html


def test_the_identity_page_loads_the_sync_panel(auth_client, identity):
    html = auth_client.get(reverse("identities:detail", args=[identity.pk])).content.decode()
    assert f'hx-get="{reverse("inbox:identity_sync_panel", args=[identity.pk])}"' in html


def test_sync_now_without_htmx_redirects_back(auth_client, identity):
    response = auth_client.post(reverse("inbox:identity_sync", args=[identity.pk]))
    assert response.status_code == 302
    assert Job.objects.filter(job_type="ingest.sync_delta").count() == 1


def test_a_deactivated_identity_cannot_start_a_sync(auth_client, identity):
    other = IdentityFactory(provider=identity.provider, is_active=False)
    response = auth_client.post(reverse("inbox:identity_sync", args=[other.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and "deactivated" in response.content.decode()
    assert not Job.objects.exists()
