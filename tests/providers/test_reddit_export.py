"""Rows of Reddit's data export onto the provider types: ids, dates, people, chats."""

from datetime import UTC, datetime

import pytest

from rediska.providers.base import ExportRowError
from rediska.providers.reddit.export import RedditExport
from tests.fakes.reddit_export import chat, message

FMT = RedditExport()


@pytest.mark.parametrize("name,table", [("messages.csv", "messages"), ("messages_2.csv", "messages"),
                                        ("messages_archive.csv", "messages"), ("Chat_History.csv", "chats"),
                                        ("posts.csv", "posts"), ("comments_1.csv", "comments"),
                                        ("message_headers.csv", None), ("ip_logs.csv", None)])
def test_files_are_told_apart_by_name(name, table):
    assert FMT.table_of(name) == table


@pytest.mark.parametrize("value", ["2024-05-01 12:00:00 UTC", "2024-05-01T12:00:00Z", "2024-05-01 14:00:00+02:00",
                                   "2024-05-01 12:00:00"])
def test_dates_keep_their_utc_meaning(value):
    row = message("abc", "bob", "alice", "hi")
    row["date"] = value
    assert FMT.message(row).sent_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_ids_are_normalised_to_the_api_form_and_deleted_people_are_nobody():
    m = FMT.message(message("t4_abc", "[deleted]", "u/alice", "hi\r\nthere", thread="t4_root"))
    assert (m.external_id, m.conversation_external_id, m.author, m.recipient, m.body) == \
        ("abc", "root", None, "alice", "hi\nthere")


def test_a_message_without_thread_is_its_own_thread():
    assert FMT.message(message("abc", "bob", "alice", "hi")).conversation_external_id == "abc"


@pytest.mark.parametrize("field,reason", [("id", "no message id"), ("date", "no date")])
def test_unusable_rows_say_why(field, reason):
    row = message("abc", "bob", "alice", "hi")
    row[field] = ""
    with pytest.raises(ExportRowError, match=reason):
        FMT.message(row)


@pytest.mark.parametrize("kind,direct", [("direct", True), ("DM", True), ("group", False),
                                         ("community", False), ("", None)])
def test_chat_lines_carry_their_chat_and_whether_it_is_direct(kind, direct):
    line = FMT.chat_line(chat("$ev1", "bob", "yo", channel="xyz", kind=kind))
    assert (line.external_id, line.channel_id, line.direct) == ("chat:$ev1", "chat:!xyz:reddit.com", direct)


def test_very_long_chat_ids_become_a_digest_that_fits_the_column():
    line = FMT.chat_line(chat("e" * 300, "bob", "yo", channel="r" * 300))
    assert len(line.external_id) <= 128 and len(line.channel_id) <= 128
    assert line.external_id == FMT.chat_line(chat("e" * 300, "bob", "yo")).external_id
