"""The counterpart account state machine (inbox/accounts.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from inbox import accounts
from inbox.models import ExternalAccount
from rediska.models import Job
from tests.factories import ConversationFactory, ExternalAccountFactory, MessageFactory, ProviderFactory

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def provider(db):
    return ProviderFactory()


def test_upsert_accounts_creates_missing_accounts_in_bulk(provider, django_assert_max_num_queries):
    ExternalAccountFactory(provider=provider, external_username="alice")
    with django_assert_max_num_queries(4):
        found = accounts.upsert_accounts(provider.pk, {"alice": None, "bob": None, "carol": "active"})
    assert set(found) == {"alice", "bob", "carol"}
    assert ExternalAccount.objects.count() == 3
    assert found["carol"].remote_status == "active"
    assert found["bob"].remote_status == "unknown"


def test_upsert_accounts_matches_usernames_case_insensitively(provider):
    existing = ExternalAccountFactory(provider=provider, external_username="Alice")
    found = accounts.upsert_accounts(provider.pk, [("alice", None), ("ALICE", None)])
    assert found["alice"].pk == found["ALICE"].pk == existing.pk
    assert ExternalAccount.objects.count() == 1


def test_upsert_accounts_records_a_known_status_and_when_it_was_seen(provider):
    account = ExternalAccountFactory(provider=provider, external_username="dave", remote_status="active")
    found = accounts.upsert_accounts(provider.pk, {"dave": "suspended"}, seen_at=T0)
    account.refresh_from_db()
    assert account.remote_status == "suspended" == found["dave"].remote_status
    assert account.remote_status_last_seen_at == T0


def index_jobs():
    return [j.payload_json["args"] for j in Job.objects.filter(job_type="index.upsert_content").order_by("id")]


def test_a_changed_remote_status_reindexes_the_account_for_search(provider):
    changed = ExternalAccountFactory(provider=provider, external_username="dave", remote_status="active")
    same = ExternalAccountFactory(provider=provider, external_username="erin", remote_status="active")
    accounts.upsert_accounts(provider.pk, {"dave": "suspended", "erin": "active", "frank": "active"}, seen_at=T0)
    # Only dave's documents change; erin was only seen again, frank is new (nothing indexed yet).
    assert index_jobs() == [["account", [changed.pk]]]
    accounts.mark_remote_status(same, "deleted", T0)
    assert index_jobs()[-1] == ["account", [same.pk]]


def test_upsert_accounts_keeps_the_status_when_there_is_no_news(provider):
    account = ExternalAccountFactory(provider=provider, external_username="erin", remote_status="deleted")
    accounts.upsert_accounts(provider.pk, {"erin": None})
    accounts.upsert_accounts(provider.pk, {"erin": "unknown"})
    account.refresh_from_db()
    assert account.remote_status == "deleted"


def test_mark_contacted_sets_the_first_contact_once(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_contacted(account, T0)
    accounts.mark_contacted(account, T0 + timedelta(days=1))
    account.refresh_from_db()
    assert account.contact_state == "contacted"
    assert account.first_contacted_at == T0


def test_mark_inbound_engages_only_after_a_first_contact(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_inbound(account, T0)
    account.refresh_from_db()
    assert account.engagement_state == "not_engaged" and account.first_inbound_after_contact_at is None

    accounts.mark_contacted(account, T0 + timedelta(hours=1))
    accounts.mark_inbound(account, T0 + timedelta(hours=2))
    accounts.mark_inbound(account, T0 + timedelta(hours=3))
    account.refresh_from_db()
    assert account.engagement_state == "engaged"
    assert account.first_inbound_after_contact_at == T0 + timedelta(hours=2)


def test_mark_inbound_before_the_first_contact_does_not_engage(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_contacted(account, T0)
    accounts.mark_inbound(account, T0 - timedelta(minutes=5))
    account.refresh_from_db()
    assert account.engagement_state == "not_engaged"


def test_new_items_make_an_analyzed_account_need_a_refresh(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_items_arrived(account)
    account.refresh_from_db()
    assert account.analysis_state == "not_analyzed"

    accounts.mark_analyzed(account, T0)
    accounts.mark_items_arrived(account)
    account.refresh_from_db()
    assert account.analysis_state == "needs_refresh"


def test_first_analyzed_at_is_set_once_and_never_moves(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_analyzed(account, T0)
    accounts.mark_items_arrived(account)
    accounts.mark_analyzed(account, T0 + timedelta(days=3))
    account.refresh_from_db()
    assert account.analysis_state == "analyzed"
    assert account.first_analyzed_at == T0


def test_mark_remote_status_records_status_and_time(provider):
    account = ExternalAccountFactory(provider=provider, remote_status="active")
    accounts.mark_remote_status(account, "suspended", T0)
    account.refresh_from_db()
    assert (account.remote_status, account.remote_status_last_seen_at) == ("suspended", T0)


def test_history_sets_contact_and_engagement_from_the_archive(provider):
    account = ExternalAccountFactory(provider=provider)
    conversation = ConversationFactory(provider=provider, counterpart_account=account)
    MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0)
    MessageFactory(provider=provider, conversation=conversation, direction="out", sent_at=T0 + timedelta(hours=1))
    MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0 + timedelta(hours=2))
    MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0 + timedelta(hours=5))

    accounts.apply_message_history([account.pk])

    account.refresh_from_db()
    assert account.contact_state == "contacted" and account.first_contacted_at == T0 + timedelta(hours=1)
    assert account.engagement_state == "engaged"
    assert account.first_inbound_after_contact_at == T0 + timedelta(hours=2)


def test_history_only_ever_moves_first_contact_earlier(provider):
    account = ExternalAccountFactory(provider=provider)
    accounts.mark_contacted(account, T0 + timedelta(days=10))  # a send made before the archive was imported
    conversation = ConversationFactory(provider=provider, counterpart_account=account)
    MessageFactory(provider=provider, conversation=conversation, direction="out", sent_at=T0)
    MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0 + timedelta(days=1))

    accounts.apply_message_history([account.pk])

    account.refresh_from_db()
    assert account.first_contacted_at == T0
    assert account.first_inbound_after_contact_at == T0 + timedelta(days=1)


def test_history_without_an_outgoing_message_changes_nothing(provider):
    account = ExternalAccountFactory(provider=provider)
    conversation = ConversationFactory(provider=provider, counterpart_account=account)
    MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0)
    accounts.apply_message_history([account.pk])
    account.refresh_from_db()
    assert (account.contact_state, account.engagement_state) == ("not_contacted", "not_engaged")


def test_history_runs_in_a_constant_number_of_queries(provider, django_assert_max_num_queries):
    ids = []
    for n in range(12):
        account = ExternalAccountFactory(provider=provider)
        conversation = ConversationFactory(provider=provider, counterpart_account=account)
        MessageFactory(provider=provider, conversation=conversation, direction="out", sent_at=T0)
        MessageFactory(provider=provider, conversation=conversation, direction="in", sent_at=T0 + timedelta(hours=n + 1))
        ids.append(account.pk)
    with django_assert_max_num_queries(6):
        accounts.apply_message_history(ids)
    assert ExternalAccount.objects.filter(engagement_state="engaged").count() == 12
