"""send_manual: the only send path (idempotent, DNC first, stored at once, audited)."""

import pytest

from identities.services import add_do_not_contact, session_for
from inbox.errors import SendError
from inbox.models import Conversation, ExternalAccount, Message, SendAttempt
from inbox.services import send_manual, sending
from inbox.services.ingest import walk_folder
from rediska.models import AuditLog
from tests.factories import ConversationFactory, IdentityFactory, ProviderCredentialFactory


def archive(identity):
    session = session_for(identity)
    for folder in ("inbox", "sent"):
        walk_folder(identity, session, folder, full=True, owner="test")


@pytest.fixture
def conversation(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "how are you?"], subject="hello")
    archive(alice)
    return Conversation.objects.get(counterpart_account__external_username="bob")


def posts(fake):
    return [r for r in fake.requests if r.method == "POST" and r.path in ("/api/comment", "/api/compose")]


def send_audits():
    return AuditLog.objects.filter(action_type="message.send_manual")


def test_a_reply_goes_out_as_the_conversation_identity_and_is_stored_at_once(fake_reddit, alice, conversation):
    last = conversation.messages.order_by("-sent_at").first()

    message = send_manual(identity=alice, body="fine, thanks", idempotency_key="k-1", conversation=conversation)

    remote = fake_reddit.sent[-1]
    assert remote["author"] == "alice" and remote["dest"] == "bob" and remote["body"] == "fine, thanks"
    assert remote["parent_id"] == f"t4_{last.external_message_id}"
    assert message.external_message_id == remote["id"]
    assert (message.direction, message.identity, message.conversation) == ("out", alice, conversation)
    conversation.refresh_from_db()
    assert conversation.last_message == message and conversation.last_direction == "out"


def test_browser_line_breaks_are_sent_and_stored_as_plain_newlines(fake_reddit, alice, conversation):
    message = send_manual(identity=alice, body="line one\r\nline two\rthree", idempotency_key="k-crlf",
                          conversation=conversation)

    assert fake_reddit.sent[-1]["body"] == "line one\nline two\nthree"
    assert message.body_text == "line one\nline two\nthree"
    archive(alice)  # the synced copy is the same message, not a second one
    assert conversation.messages.filter(body_text__startswith="line one").count() == 1


def test_a_reply_marks_the_counterpart_contacted(fake_reddit, alice, conversation):
    message = send_manual(identity=alice, body="fine, thanks", idempotency_key="k-2", conversation=conversation)
    bob = ExternalAccount.objects.get(external_username="bob")
    assert bob.contact_state == "contacted"
    assert bob.first_contacted_at is not None and bob.first_contacted_at <= message.sent_at


def test_every_attempt_leaves_an_audit_row(fake_reddit, alice, conversation):
    message = send_manual(identity=alice, body="one", idempotency_key="k-3", conversation=conversation)
    row = send_audits().get()
    assert (row.result, row.identity_id, row.entity_id) == ("ok", alice.pk, message.pk)
    assert row.request_json["body"] == "one"
    assert row.response_json["external_message_id"] == message.external_message_id


def test_a_double_click_sends_once_and_shows_the_first_result(fake_reddit, alice, conversation):
    first = send_manual(identity=alice, body="only once", idempotency_key="same-key", conversation=conversation)
    second = send_manual(identity=alice, body="only once", idempotency_key="same-key", conversation=conversation)
    assert first.pk == second.pk
    assert len(posts(fake_reddit)) == 1 and len(fake_reddit.sent) == 1
    assert Message.objects.filter(body_text="only once").count() == 1
    assert send_audits().count() == 2 and send_audits().first().response_json["replayed"] is True


def test_a_key_still_being_sent_is_not_sent_again(fake_reddit, alice, conversation, monkeypatch):
    monkeypatch.setattr(sending, "WAIT_FOR_FIRST_SECONDS", 0.2)
    SendAttempt.objects.create(idempotency_key="busy", identity=alice, conversation=conversation,
                               to_username="bob", body_text="x")
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="x", idempotency_key="busy", conversation=conversation)
    assert caught.value.code == "in_progress" and posts(fake_reddit) == []


def test_it_refuses_a_do_not_contact_recipient_before_calling_the_provider(fake_reddit, alice, conversation):
    add_do_not_contact("reddit", "BOB", "asked to stop")
    fake_reddit.requests.clear()
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="hello again", idempotency_key="k-4", conversation=conversation)
    assert caught.value.code == "dnc" and "do-not-contact" in caught.value.user_message
    assert fake_reddit.requests == []
    assert SendAttempt.objects.get(idempotency_key="k-4").status == "failed"
    assert send_audits().get().result == "error"


def test_a_first_message_opens_a_conversation_with_the_remote_thread_id(fake_reddit, alice):
    fake_reddit.add_user("carol")
    message = send_manual(identity=alice, body="hello carol", idempotency_key="k-5", to_username="carol",
                          subject="a question")
    remote = fake_reddit.sent[-1]
    assert message.external_message_id == remote["id"]
    assert message.conversation.external_conversation_id == remote["id"]
    assert message.conversation.subject == "a question"
    assert message.conversation.counterpart_account.external_username == "carol"
    assert message.conversation.identity == alice


def test_a_first_message_needs_a_subject_and_a_recipient(fake_reddit, alice):
    with pytest.raises(SendError, match="subject"):
        send_manual(identity=alice, body="hi", idempotency_key="k-6", to_username="carol")
    with pytest.raises(SendError, match="who"):
        send_manual(identity=alice, body="hi", idempotency_key="k-7", subject="s")
    assert posts(fake_reddit) == [] and not SendAttempt.objects.exists()


@pytest.mark.parametrize("body, key", [("   ", "k-8"), ("x" * 10_001, "k-9"), ("hi", ""), ("hi", "bad key!")])
def test_bad_input_is_refused_without_sending(fake_reddit, alice, conversation, body, key):
    with pytest.raises(SendError):
        send_manual(identity=alice, body=body, idempotency_key=key, conversation=conversation)
    assert posts(fake_reddit) == []


def test_a_conversation_keeps_its_identity(fake_reddit, alice, conversation):
    other = ProviderCredentialFactory(identity=IdentityFactory(provider=alice.provider)).identity
    with pytest.raises(SendError, match="another identity"):
        send_manual(identity=other, body="hi", idempotency_key="k-10", conversation=conversation)
    assert posts(fake_reddit) == []


def test_a_notice_or_a_gone_account_cannot_be_replied_to(fake_reddit, alice):
    fake_reddit.add_message(None, "alice", "an automated notice", distinguished="admin")
    archive(alice)
    notice = Conversation.objects.get()
    with pytest.raises(SendError, match="Nobody can receive"):
        send_manual(identity=alice, body="hi", idempotency_key="k-11", conversation=notice)


def test_a_recipient_who_refuses_messages_is_told_in_plain_words(fake_reddit, alice, conversation):
    fake_reddit.add_user("bob", accepts_messages=False)
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="hi", idempotency_key="k-12", conversation=conversation)
    assert caught.value.code == "recipient_refused"
    assert "does not accept private messages" in caught.value.user_message
    assert not Message.objects.filter(body_text="hi").exists()


def test_rate_limiting_is_told_in_plain_words(fake_reddit, alice, conversation):
    fake_reddit.inject(r"^/api/comment", status=429, headers={"Retry-After": "30"})
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="hi", idempotency_key="k-13", conversation=conversation)
    assert caught.value.code == "rate_limited" and "rate limit" in caught.value.user_message


def test_a_revoked_token_is_told_and_flags_the_identity(fake_reddit, alice, conversation):
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="hi", idempotency_key="k-14", conversation=conversation)
    assert caught.value.code == "auth" and "reconnect" in caught.value.user_message
    alice.refresh_from_db()
    assert alice.needs_reconnect


def test_the_network_being_down_is_told_in_plain_words(fake_reddit, alice, conversation, settings):
    settings.PROVIDER_REDDIT_OAUTH_URL = settings.PROVIDER_REDDIT_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(SendError) as caught:
        send_manual(identity=alice, body="hi", idempotency_key="k-15", conversation=conversation)
    assert caught.value.code == "unreachable" and "could not be reached" in caught.value.user_message
    assert send_audits().get().result == "error"


def test_after_a_failure_the_same_click_can_be_tried_again(fake_reddit, alice, conversation):
    fake_reddit.add_user("bob", accepts_messages=False)
    with pytest.raises(SendError):
        send_manual(identity=alice, body="retry me", idempotency_key="k-16", conversation=conversation)
    fake_reddit.add_user("bob", accepts_messages=True)
    message = send_manual(identity=alice, body="retry me", idempotency_key="k-16", conversation=conversation)
    assert message.external_message_id == fake_reddit.sent[-1]["id"]
    assert len(fake_reddit.sent) == 1
    assert SendAttempt.objects.get(idempotency_key="k-16").status == "sent"


def test_a_send_the_provider_gave_no_id_for_gets_it_from_the_next_sync(fake_reddit, alice):
    fake_reddit.add_user("dave")
    empty = {"kind": "Listing", "data": {"after": None, "children": []}}
    fake_reddit.inject(r"^/message/sent", status=200, body=empty)  # the provider's look-up finds nothing
    message = send_manual(identity=alice, body="hello dave", idempotency_key="k-17", to_username="dave",
                          subject="hi")
    assert message.external_message_id is None
    assert message.conversation.external_conversation_id.startswith("pending:")

    archive(alice)

    message.refresh_from_db()
    remote = fake_reddit.sent[-1]
    assert message.external_message_id == remote["id"]
    assert message.conversation.external_conversation_id == remote["id"]
    assert Message.objects.count() == 1 and Conversation.objects.count() == 1


def test_the_send_path_needs_an_active_identity(fake_reddit, alice, conversation):
    alice.is_active = False
    alice.save()
    with pytest.raises(SendError, match="deactivated"):
        send_manual(identity=alice, body="hi", idempotency_key="k-18", conversation=conversation)


def test_a_conversation_with_nothing_remote_to_reply_to_is_refused(fake_reddit, alice):
    conversation = ConversationFactory(identity=alice, provider=alice.provider, subject="hello")
    with pytest.raises(SendError, match="nothing to reply to"):
        send_manual(identity=alice, body="hi there", idempotency_key="k-19", conversation=conversation)
    assert posts(fake_reddit) == []


def test_an_archive_only_identity_cannot_send_and_says_why(fake_reddit, db):
    identity = IdentityFactory(external_username="imported", display_name="Imported")
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    with pytest.raises(SendError, match="Imported has no access to Reddit yet .*connect it to sync or send"):
        send_manual(identity=identity, body="hi", idempotency_key="k-archive", conversation=conversation)
    assert posts(fake_reddit) == [] and not SendAttempt.objects.exists()
