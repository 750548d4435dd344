"""Local hiding and the conversation list query."""

from datetime import UTC, date, datetime, timedelta

import pytest

from inbox.models import Conversation
from inbox.services.conversations import (
    conversation_page,
    conversation_page_messages,
    hide_conversation,
    hide_message,
    unhide_conversation,
    unhide_message,
)
from rediska.models import AuditLog, Job
from tests.factories import ConversationFactory, ExternalAccountFactory, IdentityFactory, MessageFactory

T0 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def conversation_with(last_direction, *, identity=None, at=T0, **kw):
    extra = {"identity": identity} if identity else {}
    conversation = ConversationFactory(last_activity_at=at, **extra, **kw)
    message = MessageFactory(conversation=conversation, provider=conversation.provider, direction=last_direction,
                             sent_at=at)
    Conversation.objects.filter(pk=conversation.pk).update(last_message=message, last_direction=message.direction)
    return conversation


def ids(filters):
    return [c.pk for c in conversation_page(filters, 1, 50)]


def test_hiding_a_conversation_is_local_audited_and_reindexed(db):
    conversation = conversation_with("in")
    hide_conversation(conversation)
    conversation.refresh_from_db()
    assert conversation.deleted_at is not None
    assert conversation.messages.count() == 1  # nothing removed
    assert AuditLog.objects.get(action_type="conversation.hide").entity_id == conversation.pk
    # Search re-indexes everything hanging off the conversation (its messages).
    job = Job.objects.get(job_type="index.upsert_content")
    assert job.payload_json["args"] == ["conversation", [conversation.pk]]

    unhide_conversation(conversation)
    conversation.refresh_from_db()
    assert conversation.deleted_at is None
    assert AuditLog.objects.filter(action_type="conversation.unhide").count() == 1
    assert [j.payload_json["args"] for j in Job.objects.filter(job_type="index.upsert_content").order_by("id")] == [
        ["conversation", [conversation.pk]], ["conversation", [conversation.pk]]]


def test_hiding_a_message_keeps_its_body(db):
    message = MessageFactory(body_text="keep me")
    hide_message(message)
    message.refresh_from_db()
    assert message.deleted_at is not None and message.body_text == "keep me"
    unhide_message(message)
    message.refresh_from_db()
    assert message.deleted_at is None
    assert [a.action_type for a in AuditLog.objects.order_by("id")] == ["message.hide", "message.unhide"]


def test_the_list_shows_newest_activity_first_without_hidden_ones(db):
    old = conversation_with("in", at=T0 - timedelta(days=2))
    new = conversation_with("out", at=T0)
    hidden = conversation_with("in", at=T0 + timedelta(days=1))
    hide_conversation(hidden)
    assert ids({}) == [new.pk, old.pk]
    assert ids({"hidden": True}) == [hidden.pk, new.pk, old.pk]


def test_the_list_filters_by_identity_direction_and_date(db):
    me = IdentityFactory()
    mine = conversation_with("in", identity=me, at=T0)
    theirs = conversation_with("out", at=T0 - timedelta(days=5))
    notice = conversation_with("system", at=T0 - timedelta(days=1))
    assert ids({"identity": me}) == [mine.pk]
    assert ids({"direction": "out"}) == [theirs.pk]
    assert ids({"direction": "system"}) == [notice.pk]
    assert ids({"since": date(2026, 4, 9)}) == [mine.pk, notice.pk]
    assert ids({"until": date(2026, 4, 6)}) == [theirs.pk]


def test_needs_reply_means_the_last_message_came_in_from_a_person(db):
    waiting = conversation_with("in")
    conversation_with("out")
    conversation_with("system")
    gone = conversation_with("in", counterpart_account=ExternalAccountFactory(external_username="[deleted]"))
    assert ids({"needs_reply": True}) == [waiting.pk]
    assert gone.pk not in ids({"needs_reply": True})


def test_a_deep_page_is_cut_on_the_conversations_alone_in_four_queries(db, django_assert_num_queries):
    made = [conversation_with("in", at=T0 - timedelta(minutes=n)).pk for n in range(30)]
    with django_assert_num_queries(4):  # count, the page's ids, the page's rows with what they show, their labels
        page = conversation_page({}, 2, 10)
        rows = list(page)
        assert all(r.counterpart_account.external_username and r.last_message.direction and r.snippet for r in rows)
    assert [r.pk for r in rows] == made[10:20]
    assert page.paginator.count == 30 and page.paginator.num_pages == 3
    assert [r.pk for r in conversation_page({}, 9, 10)] == made[20:]  # past the end: the last page


def test_an_empty_page_costs_no_row_query(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert list(conversation_page({"needs_reply": True}, 1, 10)) == []


def test_a_conversation_page_loads_messages_in_order_in_one_query(db, django_assert_num_queries):
    conversation = ConversationFactory()
    for n in range(40):
        MessageFactory(conversation=conversation, provider=conversation.provider, sent_at=T0 - timedelta(minutes=n))
    with django_assert_num_queries(1):
        messages = list(conversation_page_messages(conversation))
    assert [m.sent_at for m in messages] == sorted(m.sent_at for m in messages)
