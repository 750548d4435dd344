"""Storing pages of messages: threading, idempotency, remote deletion, bad input."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from inbox.models import Conversation, ExternalAccount, Message
from inbox.services.ingest import DELETED_ACCOUNT, SYSTEM_ACCOUNT, store_messages
from rediska.models import Job
from rediska.providers.base import RemoteMessage
from tests.factories import IdentityFactory

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def me(db):
    return IdentityFactory(external_username="alice")


def msg(ext, conv=None, author="bob", recipient="alice", minutes=0, body=None, **kw):
    return RemoteMessage(
        external_id=ext, conversation_external_id=conv or ext, author=author, recipient=recipient,
        sent_at=T0 + timedelta(minutes=minutes), body=body if body is not None else f"body of {ext}", **kw,
    )


def thread():
    return [
        msg("a1", author="bob", recipient="alice", minutes=0, subject="hello"),
        msg("a2", "a1", author="alice", recipient="bob", minutes=5, parent_external_id="a1"),
        msg("a3", "a1", author="bob", recipient="alice", minutes=9, parent_external_id="a2"),
    ]


def test_a_thread_becomes_one_conversation_with_the_other_party(me):
    store_messages(me, thread())
    conversation = Conversation.objects.get()
    assert conversation.external_conversation_id == "a1"
    assert conversation.identity == me
    assert conversation.counterpart_account.external_username == "bob"
    assert conversation.subject == "hello"
    assert list(conversation.messages.values_list("external_message_id", "direction")) == [
        ("a1", "in"), ("a2", "out"), ("a3", "in")]


def test_outgoing_messages_carry_the_identity_incoming_ones_do_not(me):
    store_messages(me, thread())
    assert set(Message.objects.filter(direction="out").values_list("identity_id", flat=True)) == {me.pk}
    assert set(Message.objects.filter(direction="in").values_list("identity_id", flat=True)) == {None}


def test_the_conversation_points_at_its_newest_message(me):
    store_messages(me, thread())
    conversation = Conversation.objects.get()
    assert conversation.last_message.external_message_id == "a3"
    assert conversation.last_activity_at == T0 + timedelta(minutes=9)


def test_an_older_page_never_moves_the_newest_message_back(me):
    store_messages(me, thread()[2:])
    store_messages(me, thread()[:2])
    conversation = Conversation.objects.get()
    assert conversation.last_message.external_message_id == "a3"
    assert conversation.messages.count() == 3


def test_storing_a_page_twice_keeps_one_row_per_message(me):
    first = store_messages(me, thread())
    second = store_messages(me, thread())
    assert len(first.new_ids) == 3 and second.new_ids == []
    assert Message.objects.count() == 3 and Conversation.objects.count() == 1
    assert ExternalAccount.objects.count() == 1


def test_a_message_seen_in_both_folders_is_stored_once(me):
    store_messages(me, [msg("b1", author="alice", recipient="carol")])
    store_messages(me, [msg("b1", author="alice", recipient="carol"), msg("b1", author="alice", recipient="carol")])
    assert Message.objects.filter(external_message_id="b1").count() == 1


def test_usernames_match_the_identity_case_insensitively(me):
    store_messages(me, [msg("c1", author="ALICE", recipient="dave")])
    message = Message.objects.get()
    assert message.direction == "out"
    assert message.conversation.counterpart_account.external_username == "dave"


def test_admin_notices_are_system_messages_from_their_sender(me):
    store_messages(me, [msg("s1", author="admins", is_system=True), msg("s2", author=None, is_system=True)])
    by_id = {m.external_message_id: m for m in Message.objects.select_related("conversation__counterpart_account")}
    assert {m.direction for m in by_id.values()} == {"system"}
    assert by_id["s1"].conversation.counterpart_account.external_username == "admins"
    assert by_id["s2"].conversation.counterpart_account.external_username == SYSTEM_ACCOUNT


def test_a_thread_from_a_deleted_account_gets_the_deleted_placeholder(me):
    store_messages(me, [msg("d1", author=None)])
    account = Conversation.objects.get().counterpart_account
    assert account.external_username == DELETED_ACCOUNT
    assert account.remote_status == "deleted"


def test_a_placeholder_counterpart_is_replaced_once_the_person_is_named(me):
    store_messages(me, [msg("e1", author=None)])
    store_messages(me, [msg("e2", "e1", author="alice", recipient="erin", minutes=1)])
    assert Conversation.objects.get().counterpart_account.external_username == "erin"


def test_a_remote_deletion_marks_the_message_and_keeps_its_body(me):
    store_messages(me, thread())
    deleted = msg("a3", "a1", author=None, minutes=9, body="", visibility="deleted_by_author")
    result = store_messages(me, [RemoteMessage(**{**deleted.__dict__, "body": None})])
    message = Message.objects.get(external_message_id="a3")
    assert message.remote_visibility == "deleted_by_author"
    assert message.remote_deleted_at is not None
    assert message.body_text == "body of a3"
    assert result.changed_ids == [message.pk]
    assert Message.objects.count() == 3


def test_a_removal_marks_the_message_removed(me):
    store_messages(me, thread())
    removed = RemoteMessage(**{**thread()[0].__dict__, "body": None, "visibility": "removed"})
    store_messages(me, [removed])
    assert Message.objects.get(external_message_id="a1").remote_visibility == "removed"


def test_an_author_turned_deleted_marks_the_counterpart_account_deleted(me):
    store_messages(me, thread())
    store_messages(me, [RemoteMessage(**{**thread()[2].__dict__, "author": None})])
    bob = ExternalAccount.objects.get(external_username="bob")
    assert bob.remote_status == "deleted" and bob.remote_status_last_seen_at is not None
    assert Message.objects.get(external_message_id="a3").body_text == "body of a3"


def test_a_message_first_seen_deleted_is_stored_with_its_state(me):
    store_messages(me, [msg("f1", body="", visibility="removed")])
    message = Message.objects.get()
    assert message.remote_visibility == "removed" and message.remote_deleted_at is not None


def test_new_and_changed_messages_are_queued_for_search(me):
    result = store_messages(me, thread())
    job = Job.objects.get(job_type="index.upsert_content")
    assert job.payload_json["args"] == ["message", sorted(result.new_ids)]


def test_a_page_is_stored_in_a_constant_number_of_queries(me, django_assert_max_num_queries):
    store_messages(me, [msg("warm", author="carol")])
    # (80 rows still fit in one SQLite INSERT; beyond that the driver splits the batch.)
    small = [msg(f"x{i}", author=f"p{i % 3}", minutes=i) for i in range(10)]
    big = [msg(f"y{i}", f"y{i // 4}", author=f"q{i % 40}", minutes=i) for i in range(80)]
    with django_assert_max_num_queries(20) as small_run:
        store_messages(me, small)
    with django_assert_max_num_queries(20) as big_run:
        store_messages(me, big)
    assert len(big_run.captured_queries) == len(small_run.captured_queries)


def test_bad_items_are_skipped_with_a_logged_reason_and_the_rest_is_kept(me, caplog):
    naive = RemoteMessage(external_id="n1", conversation_external_id="n1", author="bob", recipient="alice",
                          sent_at=datetime(2026, 1, 1), body="naive time")
    page = [msg("", body="no id"), naive, msg("ok1"), msg("x" * 200), msg("ok2", author="b" * 300)]
    with caplog.at_level(logging.WARNING, logger="inbox"):
        result = store_messages(me, page)
    assert list(Message.objects.values_list("external_message_id", flat=True)) == ["ok1"]
    assert len(result.skipped) == 4
    assert "no usable message id" in caplog.text and "no timezone-aware time" in caplog.text


def test_emoji_huge_bodies_and_invalid_utf8_are_stored(me):
    huge = "word " * 400_000  # 2 MB
    store_messages(me, [msg("u1", body="hi 👋🏽 ✨"), msg("u2", body=huge), msg("u3", body="bad \udcff byte")])
    bodies = dict(Message.objects.values_list("external_message_id", "body_text"))
    assert bodies["u1"] == "hi 👋🏽 ✨"
    assert bodies["u2"] == huge
    assert bodies["u3"].startswith("bad ") and bodies["u3"].endswith(" byte") and "\ufffd" in bodies["u3"]


def test_a_body_beyond_the_column_size_is_skipped_not_truncated(me, caplog):
    with caplog.at_level(logging.WARNING, logger="inbox"):
        result = store_messages(me, [msg("big", body="x" * (17 * 1024 * 1024)), msg("small")])
    assert list(Message.objects.values_list("external_message_id", flat=True)) == ["small"]
    assert result.skipped[0].reason == "a body larger than 16 MB"
