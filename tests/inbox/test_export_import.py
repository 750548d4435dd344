"""Importing a data export: the same conversations and messages as a sync, every quirk of the format."""

from datetime import UTC, datetime

import pytest

from inbox.models import Conversation, ExportImport, Message
from inbox.services.export_import import local_import, run_import
from inbox.services.ingest import walk_folder
from inbox.tasks import import_export
from leads.models import ProfileItem
from rediska.models import AuditLog, Job
from tests.factories import IdentityFactory, ProviderFactory
from tests.fakes.reddit_export import MESSAGE_COLUMNS, chat, message, write_export


@pytest.fixture
def me(db):
    return IdentityFactory(external_username="alice", provider=ProviderFactory())


def run(identity, path):
    record = local_import(identity, path)
    summary = run_import(record)
    record.refresh_from_db()
    return record, summary


def legacy_thread():
    return [
        message("m1", "bob", "alice", "first line\nsecond line", minutes=0, subject="about the trip"),
        message("m2", "alice", "Bob", "a reply", thread="m1", minutes=5),
        message("m3", "bob", "alice", "and back", thread="t4_m1", minutes=9),
    ]


def test_a_legacy_thread_becomes_one_conversation_with_directions_line_breaks_and_utc_dates(me, tmp_path):
    record, summary = run(me, write_export(tmp_path / "export.zip", messages=legacy_thread()))
    assert record.status == "done" and summary["new"] == 3
    conversation = Conversation.objects.get()
    assert (conversation.external_conversation_id, conversation.identity, conversation.subject) == \
        ("m1", me, "about the trip")
    assert conversation.counterpart_account.external_username == "bob"
    rows = list(conversation.messages.values_list("external_message_id", "direction", "body_text", "sent_at"))
    assert rows == [
        ("m1", "in", "first line\nsecond line", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        ("m2", "out", "a reply", datetime(2024, 5, 1, 12, 5, tzinfo=UTC)),
        ("m3", "in", "and back", datetime(2024, 5, 1, 12, 9, tzinfo=UTC)),
    ]
    assert conversation.last_message.external_message_id == "m3"


def test_the_ip_column_is_never_stored(me, tmp_path):
    run(me, write_export(tmp_path / "export.zip", messages=legacy_thread()))
    assert not any("203.0.113.7" in str(row) for row in Message.objects.values())
    assert not any("203.0.113.7" in str(row) for row in ExportImport.objects.values())
    assert not any("203.0.113.7" in str(row) for row in AuditLog.objects.values())


def test_a_second_import_of_the_same_file_stores_nothing_new(me, tmp_path):
    path = write_export(tmp_path / "export.zip", messages=legacy_thread(), chats=[chat("c1", "bob", "hi")])
    run(me, path)
    _, summary = run(me, path)
    assert (summary["new"], summary["known"]) == (0, 4)
    assert Message.objects.count() == 4


def test_split_files_an_archive_file_a_bom_and_columns_in_another_order_with_extra_ones(me, tmp_path):
    columns = ["body", "to", "extra_column", "from", "date", "id", "thread_id", "ip", "subject", "permalink"]
    rows = [message(f"s{i}", "bob" if i % 2 else "alice", "alice" if i % 2 else "bob", f"body {i}", thread="s0",
                    minutes=i) for i in range(7)]
    path = write_export(tmp_path / "export.zip", messages=rows, split=3, message_columns=columns, bom=True,
                        messages_archive=[message("old1", "carol", "alice", "archived", minutes=-500)])
    _, summary = run(me, path)
    names = [f["name"] for f in summary["files"]]
    assert names == ["messages_1.csv", "messages_2.csv", "messages_3.csv", "messages_archive.csv"]
    assert summary["new"] == 8
    assert Conversation.objects.get(external_conversation_id="s0").messages.count() == 7


def test_direct_chats_become_one_conversation_per_chat_with_the_other_person(me, tmp_path):
    chats = [chat("c1", "dave", "hey there\nhow are you?", channel="roomA", minutes=1),
             chat("c2", "Alice", "good!", channel="roomA", minutes=2),
             chat("c3", "alice", "are you around?", channel="roomB", minutes=3, channel_name="erin")]
    _, summary = run(me, write_export(tmp_path / "export.zip", chats=chats))
    assert summary["new"] == 3
    a = Conversation.objects.get(external_conversation_id="chat:!roomA:reddit.com")
    assert a.counterpart_account.external_username == "dave" and a.subject == "Chat"  # told apart from messages
    assert list(a.messages.values_list("direction", "body_text")) == [("in", "hey there\nhow are you?"),
                                                                      ("out", "good!")]
    b = Conversation.objects.get(external_conversation_id="chat:!roomB:reddit.com")
    assert b.counterpart_account.external_username == "erin"  # only alice wrote: the chat's name is the person's


def test_group_and_community_chats_are_counted_and_listed_as_not_imported(me, tmp_path):
    chats = [chat("g1", "dave", "hi all", channel="group1", kind="group"),
             chat("g2", "erin", "hello", channel="group1", kind="group"),
             chat("g3", "alice", "hey", channel="three", kind=""), chat("g4", "frank", "yo", channel="three", kind=""),
             chat("g5", "gina", "sup", channel="three", kind=""),
             chat("d1", "dave", "direct", channel="direct1")]
    _, summary = run(me, write_export(tmp_path / "export.zip", chats=chats))
    assert summary["new"] == 1
    assert summary["chats_not_imported"] == {"chats": 2, "lines": 5, "kinds": {"group": 1, "unknown": 1},
                                             "reason": "group and community chats are not imported yet"}
    assert summary["files"][0]["skipped"] == {"group and community chats are not imported yet": 5}


def test_rows_with_empty_or_unreadable_dates_are_skipped_with_the_reason(me, tmp_path):
    rows = legacy_thread()
    rows[1]["date"] = ""
    rows[2]["date"] = "yesterday"
    _, summary = run(me, write_export(tmp_path / "export.zip", messages=rows))
    assert summary["new"] == 1
    assert summary["files"][0]["skipped"] == {"no date": 1, "a date that cannot be read": 1}


def test_an_export_of_another_user_is_refused_and_stores_nothing(me, tmp_path):
    rows = [message("x1", "zed", "yolanda", "not ours"), message("x2", "yolanda", "zed", "nope", thread="x1"),
            message("x3", "zed", "bob", "other")]
    record, summary = run(me, write_export(tmp_path / "export.zip", messages=rows))
    assert record.status == "refused"
    assert "belongs to zed, not alice" in summary["refused"]
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0


def test_a_file_missing_a_required_column_is_skipped_and_the_others_import(me, tmp_path):
    columns = [c for c in MESSAGE_COLUMNS if c != "body"]
    path = write_export(tmp_path / "export.zip", messages=legacy_thread(), message_columns=columns,
                        chats=[chat("c1", "alice", "hi")])
    record, summary = run(me, path)
    assert record.status == "done"
    assert summary["files"][0]["error"] == "it misses the column body"
    assert Message.objects.get().external_message_id == "chat:c1"


def test_broken_quoting_skips_the_whole_file_so_it_leaves_no_partial_rows(me, tmp_path):
    good = "\n".join(["id,thread_id,date,from,to,subject,body"] +
                     [f"q{i},,2024-05-01 12:00:0{i} UTC,bob,alice,s,fine {i}" for i in range(5)])
    broken = good + '\nq9,,2024-05-01 12:00:09 UTC,bob,alice,s,"never " closed\n'
    path = write_export(tmp_path / "export.zip", chats=[chat("c1", "alice", "hi")],
                        extra_files={"messages.csv": broken.encode()})
    _, summary = run(me, path)
    messages_file = next(f for f in summary["files"] if f["name"] == "messages.csv")
    assert "CSV is broken near line" in messages_file["error"]
    assert list(Message.objects.values_list("external_message_id", flat=True)) == ["chat:c1"]


def test_an_export_with_no_readable_file_is_refused(me, tmp_path):
    path = write_export(tmp_path / "export.zip", messages=legacy_thread(),
                        message_columns=["id", "date", "subject"])
    record, summary = run(me, path)
    assert record.status == "refused" and "No file of this export can be read" in summary["refused"]
    assert Message.objects.count() == 0


def test_own_posts_and_comments_become_profile_items_of_the_identitys_own_account(me, tmp_path):
    posts = [{"id": "p1", "permalink": "/r/hiking/comments/p1/trail/", "date": "2024-01-02 03:04:05 UTC",
              "ip": "198.51.100.1", "subreddit": "hiking", "title": "Trail report", "url": "", "body": "Lovely\nday"}]
    comments = [{"id": "k1", "permalink": "/r/hiking/comments/p1/trail/k1/", "date": "2024-01-03 03:04:05 UTC",
                 "subreddit": "hiking", "link": "t3_p1", "parent": "t3_p1", "body": "Thanks!"}]
    _, summary = run(me, write_export(tmp_path / "export.zip", posts=posts, comments=comments))
    assert summary["new"] == 2
    items = ProfileItem.objects.filter(account__external_username="alice").order_by("external_item_id")
    assert [(i.external_item_id, i.item_type, i.location) for i in items] == [("k1", "comment", "hiking"),
                                                                              ("p1", "post", "hiking")]
    assert items[1].url == "https://www.reddit.com/r/hiking/comments/p1/trail/"


def test_the_job_reports_progress_and_ends_with_the_summary_per_file(me, tmp_path):
    record = local_import(me, write_export(tmp_path / "export.zip", messages=legacy_thread()))
    result = import_export(me.pk, record.token)
    job = Job.objects.get(job_type="ingest.import_export")
    assert job.status == "done" and job.result_json == result
    assert job.progress_json["done"] == job.progress_json["total"] == 3 and job.percent == 100
    assert result["files"] == [{"name": "messages.csv", "table": "messages", "rows": 3, "new": 3, "known": 0,
                                "skipped": {}}]


def test_a_run_interrupted_after_a_batch_resumes_at_the_next_row_without_duplicates_or_gaps(me, tmp_path, monkeypatch):
    from inbox.services import export_import

    monkeypatch.setattr(export_import, "BATCH", 4)
    rows = [message(f"r{i}", "bob", "alice", f"body {i}", thread="r0", minutes=i) for i in range(10)]
    record = local_import(me, write_export(tmp_path / "export.zip", messages=rows))
    calls = []
    original = export_import.store_messages

    def dying_store(identity, messages):
        calls.append(len(messages))
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return original(identity, messages)

    monkeypatch.setattr(export_import, "store_messages", dying_store)
    with pytest.raises(SystemExit):
        run_import(record)
    record.refresh_from_db()
    assert (record.cursor_member, record.cursor_row, Message.objects.count()) == (0, 4, 4)
    monkeypatch.setattr(export_import, "store_messages", original)
    summary = run_import(record)
    assert sorted(Message.objects.values_list("external_message_id", flat=True)) == sorted(f"r{i}" for i in range(10))
    assert (summary["new"], summary["known"], summary["done"]) == (10, 0, 10)


def test_an_uploaded_file_is_deleted_once_its_import_finishes(me, tmp_path, settings):
    from inbox.services.export_import import request_import
    from rediska.exports import upload_path

    token = "ab" * 16
    write_export(upload_path(token), messages=legacy_thread())
    record = request_import(me, token, "export.zip")
    import_export(me.pk, token)
    record.refresh_from_db()
    assert record.status == "done" and not upload_path(token).exists()


# --- the merge with the API, in both orders ------------------------------------------------


@pytest.fixture
def synced_alice(connect, fake_reddit):
    alice = connect("alice")
    root = fake_reddit.add_thread("bob", "alice", ["hello from bob", "hi bob"])
    return alice, root


def _export_of(fake_reddit, root, tmp_path):
    thread = fake_reddit.messages_between("alice", "bob")
    rows = [message(m["id"], m["author"], m["dest"], m["body"], thread="" if m["id"] == root[3:] else root[3:],
                    minutes=i) for i, m in enumerate(thread)]
    rows.append(message("zz1", "bob", "alice", "only in the export", thread=root[3:], minutes=-100))
    return write_export(tmp_path / "export.zip", messages=rows)


def test_an_export_after_a_sync_adds_only_what_the_api_did_not_have(synced_alice, fake_reddit, tmp_path):
    from identities.services import session_for

    alice, root = synced_alice
    walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert Message.objects.count() == 2
    _, summary = run(alice, _export_of(fake_reddit, root, tmp_path))
    assert (summary["new"], summary["known"]) == (1, 2)
    assert Conversation.objects.count() == 1 and Message.objects.count() == 3


def test_a_sync_after_an_export_does_not_duplicate_imported_messages(synced_alice, fake_reddit, tmp_path):
    from identities.services import session_for

    alice, root = synced_alice
    run(alice, _export_of(fake_reddit, root, tmp_path))
    assert Message.objects.count() == 3
    result = walk_folder(alice, session_for(alice), "inbox", full=True, owner="t")
    assert result.new == 0
    assert Conversation.objects.count() == 1 and Message.objects.count() == 3


def test_a_second_run_of_the_same_import_behind_the_first_stops_without_counting_twice(me, tmp_path, monkeypatch):
    from inbox.services import export_import
    from rediska.jobs import TransientJobError

    monkeypatch.setattr(export_import, "BATCH", 4)
    rows = [message(f"r{i}", "bob", "alice", f"body {i}", thread="r0", minutes=i) for i in range(10)]
    record = local_import(me, write_export(tmp_path / "export.zip", messages=rows))

    def another_run_moves_on(progress):
        if progress.get("done") == 4:  # after this run's first batch, the other run stored the next one
            ExportImport.objects.filter(pk=record.pk).update(cursor_row=8)

    with pytest.raises(TransientJobError, match="Another run of this import is ahead"):
        run_import(record, on_progress=another_run_moves_on)
    record.refresh_from_db()
    assert (record.cursor_row, record.summary_json["new"], Message.objects.count()) == (8, 4, 4)


def test_a_refused_import_leaves_what_is_stored_exactly_as_it_was(me, tmp_path):
    run(me, write_export(tmp_path / "mine.zip", messages=legacy_thread()))
    before = (list(Message.objects.order_by("pk").values()), list(Conversation.objects.order_by("pk").values()))
    rows = [message("m1", "zed", "yolanda", "a different body for a known id"), message("n2", "yolanda", "zed", "x")]
    record, _ = run(me, write_export(tmp_path / "theirs.zip", messages=rows))
    assert record.status == "refused"
    assert (list(Message.objects.order_by("pk").values()), list(Conversation.objects.order_by("pk").values())) == before
