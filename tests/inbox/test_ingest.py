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
    assert conversation.last_direction == "in"  # a3 came from bob: the list filters on it without a join


def test_an_older_page_never_moves_the_newest_message_back(me):
    store_messages(me, thread()[2:])
    store_messages(me, thread()[:2])
    conversation = Conversation.objects.get()
    assert conversation.last_message.external_message_id == "a3"
    assert conversation.last_direction == "in"  # not a2's "out"
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


def index_jobs():
    return [j.payload_json["args"] for j in Job.objects.filter(job_type="index.upsert_content").order_by("id")]


def test_a_placeholder_counterpart_is_replaced_once_the_person_is_named(me):
    store_messages(me, [msg("e1", author=None)])
    store_messages(me, [msg("e2", "e1", author="alice", recipient="erin", minutes=1)])
    conversation = Conversation.objects.get()
    assert conversation.counterpart_account.external_username == "erin"
    # The older message's search document names the person now.
    assert ["conversation", [conversation.pk]] in index_jobs()


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
    assert index_jobs()[-1] == ["account", [bob.pk]]


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


# --- walking folders of the fake server ---------------------------------------------

import json  # noqa: E402

from identities.services import session_for  # noqa: E402
from inbox.models import SyncCursor  # noqa: E402
from inbox.services.ingest import check_counterparts, walk_folder  # noqa: E402
from rediska.providers.errors import ProviderError, TransientError  # noqa: E402
from tests.fakes.reddit_server import FIXTURES_DIR  # noqa: E402


class WorkerKilled(BaseException):
    """Stands for the worker process dying between two pages."""


def walk_all(identity, *, full=True, owner="test", **kw):
    session = session_for(identity)
    return [walk_folder(identity, session, folder, full=full, owner=owner, **kw) for folder in ("inbox", "sent")]


def message_requests(fake):
    return [r for r in fake.requests if r.path.startswith("/message/")]


def recorded_messages(*names):
    """Every private message in the recorded listings: id -> (thread id, author)."""
    found = {}
    for name in names:
        for interaction in json.loads((FIXTURES_DIR / name).read_text())["interactions"]:
            try:
                listing = json.loads(interaction["response"]["body"]["string"])
            except ValueError:
                continue
            if not isinstance(listing, dict) or listing.get("kind") != "Listing":
                continue
            for thing in listing["data"]["children"]:
                replies = thing["data"].get("replies") or {}
                for item in [thing] + (replies.get("data") or {}).get("children", []):
                    data = item["data"]
                    if not data.get("was_comment"):
                        root = (data.get("first_message_name") or "").removeprefix("t4_") or data["id"]
                        author = data.get("author")
                        found[data["id"]] = (root, "alice" if author == "<USERNAME>" else author)
    return found


def test_the_recorded_message_threads_are_archived_thread_by_thread(fake_reddit, alice):
    fake_reddit.load_fixture("TestInbox.test_messages.json", username="alice")
    expected = recorded_messages("TestInbox.test_messages.json")

    walk_all(alice)

    stored = {m.external_message_id: m for m in Message.objects.select_related("conversation")}
    assert set(stored) == set(expected)
    for ext, (root, author) in expected.items():
        assert stored[ext].conversation.external_conversation_id == root
        assert (stored[ext].direction == "out") == (author == "alice")
    assert Conversation.objects.count() == len({root for root, _ in expected.values()})
    assert Message.objects.filter(direction="system").exists()  # the recorded admin notices


def test_the_recorded_sent_listing_is_archived_as_outgoing(fake_reddit, alice):
    # (Sent only: these replies belong to threads whose roots the recording does not hold.)
    fake_reddit.load_fixture("TestInbox.test_sent.json", username="alice")
    expected = recorded_messages("TestInbox.test_sent.json")

    walk_folder(alice, session_for(alice), "sent", full=True, owner="t")

    stored = {m.external_message_id: m for m in Message.objects.select_related("conversation__counterpart_account")}
    assert set(stored) == set(expected)
    assert {m.direction for m in stored.values()} == {"out"}
    assert all(stored[ext].conversation.external_conversation_id == root for ext, (root, _) in expected.items())
    assert "alice" not in {m.conversation.counterpart_account.external_username for m in stored.values()}


def test_a_live_thread_is_archived_in_order_with_directions(fake_reddit, alice):
    root = fake_reddit.add_thread("bob", "alice", ["hi", "hey bob", "how are you"])
    fake_reddit.add_message("alice", "carol", "a new conversation", subject="hello carol")
    walk_all(alice)
    conversation = Conversation.objects.get(external_conversation_id=root.removeprefix("t4_"))
    assert [(m.body_text, m.direction) for m in conversation.messages.all()] == [
        ("hi", "in"), ("hey bob", "out"), ("how are you", "in")]
    assert conversation.counterpart_account.external_username == "bob"
    assert Conversation.objects.get(counterpart_account__external_username="carol").messages.get().direction == "out"


def test_contact_and_engagement_follow_the_archive(fake_reddit, alice):
    fake_reddit.add_thread("alice", "dave", ["hello dave", "hi alice"])
    fake_reddit.add_thread("erin", "alice", ["hi"])
    walk_all(alice)
    dave = ExternalAccount.objects.get(external_username="dave")
    erin = ExternalAccount.objects.get(external_username="erin")
    assert (dave.contact_state, dave.engagement_state) == ("contacted", "engaged")
    assert dave.first_contacted_at < dave.first_inbound_after_contact_at
    assert (erin.contact_state, erin.engagement_state) == ("not_contacted", "not_engaged")


def test_running_a_backfill_twice_leaves_one_row_per_remote_message(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=60, per_thread=4, counterparts=7)
    walk_all(alice)
    walk_all(alice)
    assert Message.objects.count() == 240
    assert Message.objects.values("external_message_id").distinct().count() == 240
    assert Conversation.objects.count() == 60
    assert ExternalAccount.objects.count() == 7


def test_a_sync_fetches_only_what_is_new(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=150, per_thread=2, counterparts=5)
    walk_all(alice, full=False)  # the first sync archives everything
    assert Message.objects.count() == 300
    fake_reddit.requests.clear()
    fake_reddit.add_message("alice_peer1", "alice", "something new", subject="news")

    results = walk_all(alice, full=False)

    assert len(message_requests(fake_reddit)) == 2  # the first page of each folder, nothing older
    assert Message.objects.count() == 301
    assert sum(r.new for r in results) == 1
    assert SyncCursor.objects.get(identity=alice, folder="inbox").synced_until is not None


def test_a_killed_walk_resumes_where_it_stopped_and_loses_nothing(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=40, per_thread=3, counterparts=6)
    session = session_for(alice)

    def die_after_two_pages(progress):
        if progress.pages == 2:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        walk_folder(alice, session, "sent", full=True, owner="job:1", page_size=10, on_page=die_after_two_pages)
    cursor = SyncCursor.objects.get(identity=alice, folder="sent")
    assert cursor.walking and cursor.walk_pages == 2 and cursor.walk_after
    partial = Message.objects.count()
    assert partial == 20
    fake_reddit.requests.clear()

    result = walk_folder(alice, session, "sent", full=True, owner="job:1", page_size=10)

    assert message_requests(fake_reddit)[0].query.get("after") == cursor.walk_after
    assert result.complete
    # bulk_threads alternates who opens a thread: alice wrote 60 of the 120 messages
    assert Message.objects.filter(direction="out").count() == 60 == Message.objects.count()
    assert Message.objects.values("external_message_id").distinct().count() == 60
    assert not SyncCursor.objects.get(identity=alice, folder="sent").walking


def test_a_server_failure_mid_way_is_retried_from_the_cursor(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=30, per_thread=2, counterparts=3)
    session = session_for(alice)

    def fail_from_page_three(progress):
        if progress.pages == 2:
            fake_reddit.inject(r"^/message/", status=500, count=2)  # the read is retried once

    with pytest.raises(TransientError):
        walk_folder(alice, session, "inbox", full=True, owner="job:7", page_size=10, on_page=fail_from_page_three)
    assert Message.objects.count() == 40
    assert SyncCursor.objects.get(identity=alice, folder="inbox").lease_owner is None  # released for the retry

    walk_folder(alice, session, "inbox", full=True, owner="job:8", page_size=10)

    assert Message.objects.count() == 60
    assert Message.objects.values("external_message_id").distinct().count() == 60


def test_another_walk_of_the_same_folder_waits_for_the_lease(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    session = session_for(alice)
    SyncCursor.objects.create(identity=alice, folder="inbox", lease_owner="job:1",
                              lease_until=datetime.now(UTC) + timedelta(minutes=5))
    result = walk_folder(alice, session, "inbox", full=True, owner="job:2")
    assert result.busy and not result.complete
    assert Message.objects.count() == 0 and message_requests(fake_reddit) == []


def test_an_expired_lease_of_a_dead_worker_is_taken_over(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    SyncCursor.objects.create(identity=alice, folder="inbox", lease_owner="job:1",
                              lease_until=datetime.now(UTC) - timedelta(seconds=1))
    result = walk_folder(alice, session_for(alice), "inbox", full=True, owner="job:2")
    assert result.complete and Message.objects.count() == 1


def test_remote_deletions_are_marked_on_the_next_backfill(fake_reddit, alice):
    root = fake_reddit.add_thread("bob", "alice", ["one", "two", "three"])
    other = fake_reddit.add_message("carol", "alice", "from carol")
    walk_all(alice)
    thread = fake_reddit._threads[root.removeprefix("t4_")]
    fake_reddit.delete_message(thread[1], how="deleted")
    fake_reddit.delete_message(thread[2], how="removed")
    fake_reddit.set_user_status("carol", "deleted")

    walk_all(alice)

    states = {m.body_text: m.remote_visibility for m in Message.objects.all()}
    assert states == {"one": "visible", "two": "deleted_by_author", "three": "removed", "from carol": "visible"}
    assert Message.objects.count() == 4
    assert ExternalAccount.objects.get(external_username="carol").remote_status == "deleted"
    assert other


def test_counterpart_statuses_are_checked_a_few_at_a_time(fake_reddit, alice):
    for name in ("bob", "carol", "dave"):
        fake_reddit.add_message(name, "alice", f"hi from {name}")
    walk_all(alice)
    fake_reddit.set_user_status("carol", "suspended")
    fake_reddit.set_user_status("dave", "deleted")

    assert check_counterparts(alice, session_for(alice), limit=2) == 2
    assert check_counterparts(alice, session_for(alice), limit=2) == 1
    assert check_counterparts(alice, session_for(alice), limit=2) == 0  # all fresh now

    statuses = dict(ExternalAccount.objects.values_list("external_username", "remote_status"))
    assert statuses == {"bob": "active", "carol": "suspended", "dave": "deleted"}
    reindexed = {pk for kind, pks in index_jobs() if kind == "account" for pk in pks}
    assert reindexed == set(ExternalAccount.objects.values_list("pk", flat=True))
    assert not ExternalAccount.objects.filter(remote_status_last_seen_at__isnull=True).exists()


def test_a_page_with_broken_items_keeps_the_good_ones(fake_reddit, alice, caplog):
    good = {"kind": "t4", "data": {"id": "good1", "name": "t4_good1", "author": "bob", "dest": "alice",
                                   "subject": "hi", "body": "ok 🙂", "created_utc": 1_700_000_000.0,
                                   "first_message_name": None, "parent_id": None, "replies": ""}}
    listing = {"kind": "Listing", "data": {"after": None, "children": [
        good,
        {"kind": "t9", "data": {"id": "weird"}},
        {"kind": "t4", "data": {"id": "notime", "author": "bob", "dest": "alice", "body": "x"}},
        {"kind": "t4", "data": {**good["data"], "id": "gone1", "author": "[deleted]", "body": "[deleted]"}},
        "garbage",
    ]}}
    fake_reddit.inject(r"^/message/messages", status=200, body=listing)
    with caplog.at_level(logging.WARNING, logger="inbox"):
        result = walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert set(Message.objects.values_list("external_message_id", "remote_visibility")) == {
        ("good1", "visible"), ("gone1", "deleted_by_author")}
    assert result.skipped == 3 and "skipped" in caplog.text


def test_an_unreadable_answer_fails_the_walk_without_touching_the_cursor(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    fake_reddit.inject(r"^/message/messages", status=200, body={"kind": "NotAListing"})
    with pytest.raises(TransientError):
        walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    cursor = SyncCursor.objects.get(identity=alice, folder="inbox")
    assert cursor.walk_pages == 0 and cursor.synced_until is None
    walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert Message.objects.count() == 1


def test_the_recorded_mod_mail_listing_is_archived_with_every_shape(fake_reddit, alice):
    # 100 recorded messages: notices from moderators with no author, admin mail, replies in threads.
    fake_reddit.load_fixture("TestMessage.test_attributes.json", username="alice")
    expected = recorded_messages("TestMessage.test_attributes.json")

    walk_all(alice)
    walk_all(alice)  # twice: still one row per remote message

    stored = {m.external_message_id: m for m in Message.objects.select_related("conversation__counterpart_account")}
    assert set(stored) == set(expected) and len(stored) == Message.objects.count()
    for ext, (root, _) in expected.items():
        assert stored[ext].conversation.external_conversation_id == root
    authorless = [ext for ext, (_, author) in expected.items() if author is None]
    assert authorless and all(stored[ext].direction == "system" for ext in authorless)
    assert all(stored[ext].body_text for ext in expected)


def _raw_listing(*bodies: bytes) -> bytes:
    things = [
        b'{"kind": "t4", "data": {"id": "raw%d", "name": "t4_raw%d", "author": "bob", "dest": "alice", '
        b'"subject": "s", "body": "%s", "created_utc": 1700000000.0, "first_message_name": null, '
        b'"parent_id": null, "replies": ""}}' % (n, n, body)
        for n, body in enumerate(bodies)
    ]
    return b'{"kind": "Listing", "data": {"after": null, "children": [' + b", ".join(things) + b"]}}"


def test_a_truncated_answer_fails_the_walk_and_the_next_run_stores_the_page(fake_reddit, alice):
    fake_reddit.add_thread("bob", "alice", ["hi"])
    fake_reddit.inject(r"^/message/messages", status=200, headers={"Content-Type": "application/json"},
                       body=_raw_listing(b"first", b"second")[:150])
    with pytest.raises(ProviderError):
        walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert Message.objects.count() == 0
    assert SyncCursor.objects.get(identity=alice, folder="inbox").walk_pages == 0
    walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert Message.objects.count() == 1


def test_invalid_utf8_on_the_wire_is_stored_replaced_with_the_rest_of_the_page(fake_reddit, alice):
    fake_reddit.inject(r"^/message/messages", status=200, headers={"Content-Type": "application/json"},
                       body=_raw_listing(b"bad \xff\xfe byte", "fine \U0001f44b".encode()))
    walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    bodies = dict(Message.objects.values_list("external_message_id", "body_text"))
    assert set(bodies) == {"raw0", "raw1"}
    assert bodies["raw0"].startswith("bad ") and bodies["raw0"].endswith(" byte") and "\ufffd" in bodies["raw0"]
    assert bodies["raw1"] == "fine \U0001f44b"
