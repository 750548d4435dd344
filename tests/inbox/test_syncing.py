"""Starting syncs and backfills from the identity page."""

import pytest

from inbox.errors import InboxError
from inbox.services.syncing import active_jobs, cursors, request_backfill, request_sync, schedule_syncs
from rediska.models import AuditLog, Job
from tests.factories import IdentityFactory, ProviderCredentialFactory


def test_sync_now_enqueues_a_sync_and_audits_the_click(db, identity):
    job = request_sync(identity)
    assert (job.job_type, job.status, job.payload_json["args"]) == ("ingest.sync_delta", "queued", [identity.pk])
    assert AuditLog.objects.get(action_type="inbox.request_sync").identity_id == identity.pk


def test_a_second_click_joins_the_job_under_way(db, identity):
    assert request_sync(identity).pk == request_sync(identity).pk
    assert request_backfill(identity).pk == request_backfill(identity).pk
    assert Job.objects.count() == 2


def test_sync_now_joins_a_running_backfill(db, identity):
    backfill = request_backfill(identity)
    assert request_sync(identity).pk == backfill.pk


def test_a_finished_job_does_not_block_the_next_click(db, identity):
    first = request_sync(identity)
    Job.objects.filter(pk=first.pk).update(status="done")
    assert request_sync(identity).pk != first.pk


def test_a_deactivated_identity_cannot_sync(db):
    identity = IdentityFactory(is_active=False)
    with pytest.raises(InboxError, match="deactivated"):
        request_sync(identity)
    with pytest.raises(InboxError, match="deactivated"):
        request_backfill(identity)
    assert not Job.objects.exists()


def test_active_jobs_are_those_of_the_identity(db, identity):
    other = ProviderCredentialFactory(identity=IdentityFactory(provider=identity.provider)).identity
    mine = request_backfill(identity)
    request_backfill(other)
    assert [j.pk for j in active_jobs(identity)] == [mine.pk]


def test_every_folder_has_a_cursor_to_show(db, identity):
    assert [(c.folder, c.pk, c.synced_until) for c in cursors(identity)] == [("inbox", None, None), ("sent", None, None)]


def test_an_archive_only_identity_cannot_sync_or_backfill_and_says_why(db):
    identity = IdentityFactory(display_name="Imported")
    for start in (request_sync, request_backfill):
        with pytest.raises(InboxError, match="Imported has no access to Reddit yet .*connect it to sync or send"):
            start(identity)
    assert not Job.objects.exists()


def test_the_beat_schedules_no_sync_for_archive_only_identities(db, identity):
    IdentityFactory(provider=identity.provider)
    assert [j.payload_json["args"] for j in schedule_syncs()] == [[identity.pk]]
