"""Conversation state: read/unread, snooze, follow-up reminders (with frozen time)."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import time_machine
from django.urls import reverse

from inbox.errors import InboxError
from inbox.models import Conversation
from inbox.services import state
from inbox.services.ingest import store_messages
from rediska.models import AuditLog
from rediska.providers.base import RemoteMessage
from tests.factories import IdentityFactory, ProviderFactory

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_ids = count(1)


@pytest.fixture
def me(db):
    ProviderFactory()
    return IdentityFactory(external_username="me", is_default=True)


def say(identity, who: str, at: datetime, *, thread: str = "t1", body: str = "hello") -> Conversation:
    """Store one message of `who` (the identity itself or a person) through the real ingest store."""
    n = next(_ids)
    mine = who == identity.external_username
    store_messages(identity, [RemoteMessage(
        external_id=f"m{n}", conversation_external_id=thread, author=who,
        recipient="bob" if mine else identity.external_username, sent_at=at, body=body, subject="hi",
    )])
    return Conversation.objects.get(external_conversation_id=thread)


def fresh(conversation, now=None) -> Conversation:
    return state.with_state(Conversation.objects.filter(pk=conversation.pk), now).get()


# --- read / unread ---------------------------------------------------------------------------


def test_a_new_incoming_message_makes_the_conversation_unread_and_opening_reads_it(me, auth_client):
    conversation = say(me, "bob", T0)
    assert fresh(conversation).is_unread and state.unread_count() == 1
    auth_client.get(reverse("inbox:conversation", args=[conversation.pk]))
    assert not fresh(conversation).is_unread and state.unread_count() == 0
    say(me, "bob", T0 + timedelta(hours=1))
    assert fresh(conversation).is_unread


def test_our_own_message_leaves_a_read_conversation_read(me):
    conversation = say(me, "bob", T0)
    state.mark_read(conversation)
    say(me, "me", T0 + timedelta(minutes=5))
    assert not fresh(conversation).is_unread


def test_mark_unread_keeps_it_unread_until_opened_again(me, auth_client):
    conversation = say(me, "bob", T0)
    state.mark_read(conversation)
    response = auth_client.post(reverse("inbox:conversation_read", args=[conversation.pk]), {"unread": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("inbox:list")
    assert fresh(conversation).is_unread
    assert AuditLog.objects.filter(action_type="conversation.mark_unread", entity_id=conversation.pk).exists()
    auth_client.get(reverse("inbox:conversation", args=[conversation.pk]))
    assert not fresh(conversation).is_unread


def test_hidden_conversations_do_not_count_as_unread(me):
    conversation = say(me, "bob", T0)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=T0)
    assert state.unread_count() == 0


def test_unread_counts_show_in_the_list_filter_and_nav(me, auth_client):
    say(me, "bob", T0, thread="a")
    say(me, "carol", T0, thread="b")
    read = say(me, "dave", T0, thread="c")
    state.mark_read(read)
    page = auth_client.get(reverse("inbox:list"), {"state": "unread"}).content.decode()
    assert "bob" in page and "carol" in page and "dave" not in page
    assert 'class="nav-count"' in page and ">2<" in page


# --- snooze ---------------------------------------------------------------------------------


def test_a_snooze_hides_the_conversation_until_its_time(me, auth_client):
    conversation = say(me, "bob", T0)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        state.snooze_conversation(conversation, T0 + timedelta(days=2))
        assert "bob" not in auth_client.get(reverse("inbox:list")).content.decode()
        assert "bob" in auth_client.get(reverse("inbox:list"), {"state": "snoozed"}).content.decode()
    with time_machine.travel(T0 + timedelta(days=2, minutes=1), tick=False):
        assert not fresh(conversation).is_snoozed
        assert "bob" in auth_client.get(reverse("inbox:list")).content.decode()


def test_a_new_incoming_message_wakes_a_snooze_even_one_until_they_reply(me):
    conversation = say(me, "bob", T0)
    state.snooze_conversation(conversation, None, now=T0 + timedelta(minutes=1))
    assert fresh(conversation, T0 + timedelta(days=400)).is_snoozed  # no date: only a reply ends it
    say(me, "me", T0 + timedelta(minutes=2))  # our own message does not
    assert fresh(conversation).is_snoozed
    say(me, "bob", T0 + timedelta(minutes=3))
    assert not fresh(conversation).is_snoozed


@pytest.mark.parametrize("until, message", [
    (T0 - timedelta(days=1), "in the future"),
    (T0 + timedelta(seconds=10), "in the future"),
    (T0 + timedelta(days=400), "at most a year"),
])
def test_snooze_dates_in_the_past_or_absurdly_far_are_refused(me, until, message):
    conversation = say(me, "bob", T0)
    with pytest.raises(InboxError, match=message):
        state.snooze_conversation(conversation, until, now=T0)
    assert fresh(conversation).snoozed_at is None


@pytest.mark.parametrize("data, message", [
    ({"until": "2020-01-01T10:00"}, "in the future"),
    ({"until": "9999-12-31T10:00"}, "at most a year"),
    ({"until": "tomorrow-ish"}, "Enter a valid date/time"),
    ({"days": "100000"}, "less than or equal to 366"),
    ({}, "Choose one"),
    ({"days": "1", "until_reply": "on"}, "Choose one"),
])
def test_the_snooze_form_refuses_bad_dates_with_a_clear_message(me, auth_client, data, message):
    conversation = say(me, "bob", T0)
    with time_machine.travel(T0, tick=False):
        response = auth_client.post(reverse("inbox:conversation_snooze", args=[conversation.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert fresh(conversation).snoozed_at is None


def test_snoozing_from_the_list_for_a_day_and_unsnoozing(me, auth_client):
    conversation = say(me, "bob", T0)
    with time_machine.travel(T0, tick=False):
        response = auth_client.post(reverse("inbox:conversation_snooze", args=[conversation.pk]),
                                    {"days": "1", "next": "/inbox/?state=unread"})
        assert response["Location"] == "/inbox/?state=unread"
        assert fresh(conversation).snoozed_until == T0 + timedelta(days=1)
    auth_client.post(reverse("inbox:conversation_unsnooze", args=[conversation.pk]))
    assert not fresh(conversation).is_snoozed


def test_a_foreign_next_address_is_not_followed(me, auth_client):
    conversation = say(me, "bob", T0)
    response = auth_client.post(reverse("inbox:conversation_read", args=[conversation.pk]),
                                {"unread": "0", "next": "https://evil.example/"})
    assert response["Location"] == reverse("inbox:conversation", args=[conversation.pk])


# --- follow-ups -----------------------------------------------------------------------------


def test_a_follow_up_is_due_after_its_days_and_settled_by_their_reply(me):
    conversation = say(me, "me", T0)
    state.set_follow_up(conversation, 3, now=T0)
    assert not fresh(conversation, T0 + timedelta(days=2, hours=23)).follow_up_due
    assert fresh(conversation, T0 + timedelta(days=3)).follow_up_due
    say(me, "bob", T0 + timedelta(days=3, hours=1))
    assert not fresh(conversation, T0 + timedelta(days=4)).follow_up_due
    assert not fresh(conversation).follow_up_pending


def test_the_follow_up_form_sets_and_clears_a_reminder(me, auth_client):
    conversation = say(me, "me", T0)
    with time_machine.travel(T0, tick=False):
        auth_client.post(reverse("inbox:conversation_follow_up", args=[conversation.pk]), {"days": "3"})
    assert fresh(conversation).follow_up_at == T0 + timedelta(days=3)
    auth_client.post(reverse("inbox:conversation_follow_up_clear", args=[conversation.pk]))
    assert fresh(conversation).follow_up_at is None


@pytest.mark.parametrize("days", ["0", "91", "-3", "soon", ""])
def test_follow_up_days_out_of_range_are_refused(me, auth_client, days):
    conversation = say(me, "me", T0)
    response = auth_client.post(reverse("inbox:conversation_follow_up", args=[conversation.pk]), {"days": days})
    assert response.status_code == 400
    assert "days" in response.content.decode().lower()
    assert fresh(conversation).follow_up_at is None


def test_the_list_shows_state_in_a_constant_number_of_queries(me, auth_client, django_assert_max_num_queries):
    for n in range(3):
        say(me, "bob", T0, thread=f"few{n}")
    with django_assert_max_num_queries(12) as few:
        auth_client.get(reverse("inbox:list"))
    for n in range(30):
        conversation = say(me, "bob", T0, thread=f"many{n}")
        state.set_follow_up(conversation, 1, now=T0 - timedelta(days=2))
    with django_assert_max_num_queries(12) as many:
        page = auth_client.get(reverse("inbox:list")).content.decode()
    assert "follow-up due" in page
    assert len(few.captured_queries) == len(many.captured_queries)
