"""manage.py backfill / sync: the same code, synchronously, with a summary line."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inbox.models import Message


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backfill_archives_an_identity_and_prints_a_summary(fake_reddit, alice):
    fake_reddit.bulk_threads("alice", threads=70, per_thread=3, counterparts=4)
    output = run("backfill", "--identity", "ALICE")
    assert Message.objects.count() == 210
    assert "alice: " in output and "210 new" in output and "msg" in output  # bar, then summary


def test_sync_fetches_what_is_new_for_every_active_identity(fake_reddit, alice, connect):
    connect("bob")
    fake_reddit.add_thread("carol", "alice", ["hi alice"])
    fake_reddit.add_thread("carol", "bob", ["hi bob"])
    output = run("sync", "--all")
    assert Message.objects.count() == 2
    assert "alice: 1 new" in output and "bob: 1 new" in output
    assert "0 new" in run("sync", "--identity", "alice")


def test_an_unknown_identity_is_one_clear_error(fake_reddit, alice):
    with pytest.raises(CommandError, match="No identity is called 'zed'"):
        run("backfill", "--identity", "zed")
    with pytest.raises(CommandError):
        run("sync")  # neither --identity nor --all


def test_a_revoked_token_is_reported_in_plain_words(fake_reddit, alice):
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(CommandError, match="reconnect"):
        run("sync", "--identity", "alice")
    with pytest.raises(CommandError, match="reconnect"):
        run("backfill", "--identity", "alice")


def test_sync_all_skips_an_identity_waiting_for_reconnection_and_says_so(fake_reddit, alice, connect):
    bob = connect("bob")
    bob.needs_reconnect_at = "2026-01-01T00:00:00Z"
    bob.save()
    fake_reddit.add_thread("carol", "alice", ["hi alice"])
    with pytest.raises(CommandError, match="bob: must be reconnected first"):
        run("sync", "--all")
    assert Message.objects.count() == 1  # alice was still synced


def test_backfill_goes_on_when_reddit_no_longer_serves_a_listing(fake_reddit, alice):
    fake_reddit.retire_listing("messages")
    fake_reddit.retire_listing("sent")
    fake_reddit.add_thread("bob", "alice", ["hi alice", "hi bob", "you there?"])
    err = StringIO()
    out = StringIO()
    call_command("backfill", "--identity", "alice", stdout=out, stderr=err)
    assert Message.objects.count() == 2 and "2 new" in out.getvalue()
    assert "sent: Reddit no longer serves" in err.getvalue() and "does not exist" not in err.getvalue()


def test_backfill_of_an_identity_without_a_connection_says_why(db):
    from tests.factories import IdentityFactory

    IdentityFactory(external_username="archived")
    with pytest.raises(CommandError, match="no connection"):
        run("backfill", "--identity", "archived")
