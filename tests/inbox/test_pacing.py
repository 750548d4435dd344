"""Pacing: the daily cap of first messages and the provider's cooldown (frozen time, both databases)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from identities.models import Identity
from inbox.errors import SendError
from inbox.models import Conversation
from inbox.services import pacing, send_manual
from inbox.services.ingest import walk_folder
from identities.services import session_for

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture
def people(fake_reddit):
    names = [f"person{i}" for i in range(12)]
    for name in names:
        fake_reddit.add_user(name)
    return names


def aged(identity, days: int | None):
    identity.account_created_at = None if days is None else NOON - timedelta(days=days)
    identity.save(update_fields=["account_created_at"])
    return identity


def first(identity, to: str, key: str):
    return send_manual(identity=identity, body=f"hello {to}", idempotency_key=key, to_username=to, subject="hi")


def test_a_young_account_may_send_the_stricter_number_of_first_messages(settings, clock, fake_reddit, alice, people):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 2
    aged(alice, days=5)
    first(alice, people[0], "k0")
    first(alice, people[1], "k1")
    assert pacing.pacing_for(alice).left == 0

    with pytest.raises(SendError) as caught:
        first(alice, people[2], "k2")

    assert caught.value.code == "cap"
    assert "2 first messages" in caught.value.user_message and "Replies" in caught.value.user_message
    assert [m["dest"] for m in fake_reddit.sent] == people[:2]  # nothing went out for the third


def test_an_account_older_than_thirty_days_gets_the_default_cap(settings, clock, alice, people):
    settings.PACING_FIRST_MESSAGES_PER_DAY = 4
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 1
    aged(alice, days=31)
    for i in range(4):
        first(alice, people[i], f"k{i}")
    with pytest.raises(SendError, match="the default daily cap"):
        first(alice, people[4], "k4")


def test_an_account_of_unknown_age_is_treated_as_young(settings, clock, alice):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 1
    state = pacing.pacing_for(aged(alice, days=None))
    assert (state.cap, state.young, state.age_days) == (1, True, None)
    assert "until the account's age is read" in state.summary()


def test_the_identitys_own_cap_replaces_the_defaults(settings, clock, alice, people):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 5
    pacing.set_first_message_cap(aged(alice, days=2), 1)
    first(alice, people[0], "k0")
    with pytest.raises(SendError, match="own daily cap"):
        first(alice, people[1], "k1")


def test_the_cap_starts_again_the_next_day(settings, clock, alice, people):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 1
    aged(alice, days=3)
    first(alice, people[0], "k0")
    with pytest.raises(SendError):
        first(alice, people[1], "k1")

    clock.move_to(NOON + timedelta(days=1))
    assert pacing.pacing_for(alice).left == 1
    first(alice, people[1], "k1")  # the same click, the next day, goes through


def test_a_reply_is_never_capped(settings, clock, fake_reddit, alice, people):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 0
    fake_reddit.add_thread("bob", "alice", ["hi alice"], subject="hello")
    for folder in ("inbox", "sent"):
        walk_folder(alice, session_for(alice), folder, full=True, owner="test")
    conversation = Conversation.objects.get(counterpart_account__external_username="bob")

    message = send_manual(identity=alice, body="hi bob", idempotency_key="r1", conversation=conversation)

    assert message.direction == "out"
    with pytest.raises(SendError, match="first messages to new people today"):
        first(alice, people[0], "k0")


def test_a_new_thread_to_someone_already_written_with_is_not_a_first_message(settings, clock, alice, people):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 1
    first(alice, people[0], "k0")
    assert not pacing.is_first_message(alice, people[0])
    first(alice, people[0].upper(), "k1")  # not counted: they already know each other
    assert pacing.pacing_for(alice).used == 1


def test_doing_that_too_much_becomes_a_cooldown_for_that_identity(clock, fake_reddit, alice, connect, people):
    fake_reddit.doing_that_too_much(minutes=9)
    with pytest.raises(SendError) as caught:
        first(alice, people[0], "k0")
    assert caught.value.code == "cooldown" and "Nothing is sent from" in caught.value.user_message
    assert "until 2026-03-10 12:09" in caught.value.user_message
    alice.refresh_from_db()
    assert alice.send_cooldown_until == NOON + timedelta(minutes=9)

    # The next click (another person, even a reply) is refused here, before the provider.
    requests = len(fake_reddit.requests)
    with pytest.raises(SendError, match="until 2026-03-10 12:09") as again:
        first(alice, people[1], "k1")
    assert again.value.code == "cooldown" and len(fake_reddit.requests) == requests
    bob = connect("bob")  # another identity is not cooling down
    first(bob, people[2], "k2")

    clock.move_to(NOON + timedelta(minutes=10))
    first(alice, people[1], "k1")
    assert [m["dest"] for m in fake_reddit.sent] == [people[2], people[1]]


def test_the_cooldown_is_shown_with_the_time_it_ends(clock, alice):
    Identity.objects.filter(pk=alice.pk).update(send_cooldown_until=NOON + timedelta(minutes=5),
                                                send_cooldown_reason="Reddit says: slow down")
    alice.refresh_from_db()
    state = pacing.pacing_for(alice)
    assert state.cooling_down and "12:05" in state.cooldown_message() and "slow down" in state.cooldown_message()
    clock.move_to(NOON + timedelta(minutes=6))
    assert not pacing.pacing_for(alice).cooling_down


def test_a_cap_out_of_range_is_refused(alice):
    from inbox.errors import InboxError

    with pytest.raises(InboxError, match="0 to 1000"):
        pacing.set_first_message_cap(alice, 5000)
    alice.refresh_from_db()
    assert alice.first_messages_per_day is None


# --- where the pacing is shown ------------------------------------------------------
def test_the_identity_panel_shows_age_karma_and_what_is_left(clock, auth_client, alice, settings):
    settings.PACING_FIRST_MESSAGES_PER_DAY = 7
    Identity.objects.filter(pk=alice.pk).update(account_created_at=NOON - timedelta(days=400), account_karma=1234)
    page = auth_client.get(reverse("inbox:identity_pacing", args=[alice.pk])).content.decode()
    assert "400 days" in page and "1234" in page and "7 of 7 first messages to new people left today" in page


def test_the_account_facts_are_read_from_whoami_on_the_click(clock, auth_client, fake_reddit, alice):
    fake_reddit.add_user("alice", created=(NOON - timedelta(days=12)).timestamp(), link_karma=40, comment_karma=2)
    response = auth_client.post(reverse("inbox:identity_account_refresh", args=[alice.pk]))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.account_created_at == NOON - timedelta(days=12) and alice.account_karma == 42
    assert pacing.pacing_for(alice).young


def test_the_identity_cap_is_set_on_the_panel_and_refused_out_of_range(auth_client, alice):
    url = reverse("inbox:identity_pacing", args=[alice.pk])
    assert auth_client.post(url, {"first_messages_per_day": "5000"}).status_code == 400
    assert auth_client.post(url, {"first_messages_per_day": "2"}).status_code == 302
    alice.refresh_from_db()
    assert alice.first_messages_per_day == 2
    auth_client.post(url, {"first_messages_per_day": ""})
    alice.refresh_from_db()
    assert alice.first_messages_per_day is None


def test_the_reply_box_says_replies_are_not_capped_and_shows_the_cooldown(clock, auth_client, fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi alice"], subject="hello")
    for folder in ("inbox", "sent"):
        walk_folder(alice, session_for(alice), folder, full=True, owner="test")
    conversation = Conversation.objects.get()
    url = reverse("inbox:conversation", args=[conversation.pk])
    assert "A reply is not a first message" in auth_client.get(url).content.decode()

    Identity.objects.filter(pk=alice.pk).update(send_cooldown_until=NOON + timedelta(minutes=4))
    page = auth_client.get(url).content.decode()
    assert "nothing can be sent until 2026-03-10 12:04" in page

    response = auth_client.post(reverse("inbox:reply", args=[conversation.pk]),
                                {"body": "hello again", "idempotency_key": "k-cool"})
    assert response.status_code == 429 and "12:04" in response.content.decode()
    assert fake_reddit.sent == []
