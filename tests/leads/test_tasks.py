from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Attachment, ExternalAccount
from leads import services
from leads.models import AccountProfile, LeadPost, ProfileItem, Watch
from leads.tasks import browse_location, fetch_post, fetch_profile, fetch_profile_items
from rediska.models import Job
from rediska.providers.errors import AuthError, RateLimitedError
from tests.factories import ExternalAccountFactory
from tests.leads.conftest import image_bytes

pytestmark = pytest.mark.django_db


def run_queued(job: Job):
    """Run a queued ledger job in-process, as a worker would."""
    return browse_location(*job.payload_json["args"], job_id=job.pk, **job.payload_json["kwargs"])


def test_beat_runs_each_watch_on_its_own_schedule(fake_reddit, scout):
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    watch = services.create_watch(identity=scout, location="hiking", interval_seconds=600)

    tick = browse_location()  # what beat calls, with no arguments

    assert tick["watches_queued"] == 1
    job = Job.objects.get(job_type="ingest.browse_location", dedupe_key__startswith=f"watch:{watch.pk}:")
    result = run_queued(job)
    job.refresh_from_db()
    assert job.status == "done" and result["created"] == 1 and job.result_json["new_for_watch"] == 1
    assert LeadPost.objects.get().title == "Buddy wanted"

    assert browse_location()["watches_queued"] == 0  # not due again for 10 minutes
    watch.refresh_from_db()
    assert watch.next_run_at - watch.last_run_at == timedelta(seconds=600)

    # Ten minutes later: a new slot, a new job, the new post found.
    # (a slot well before the first one: DATETIME columns keep whole seconds on MySQL)
    Watch.objects.filter(pk=watch.pk).update(next_run_at=timezone.now() - timedelta(minutes=5))
    fake_reddit.add_post("hiking", "dave", title="Another one")
    assert browse_location()["watches_queued"] == 1
    second = Job.objects.filter(dedupe_key__startswith=f"watch:{watch.pk}:").exclude(pk=job.pk).get()
    assert run_queued(second)["created"] == 1
    assert LeadPost.objects.count() == 2


def test_a_failing_watch_run_fails_its_job_with_the_reason_and_leaves_retrying_to_the_schedule(fake_reddit,
                                                                                              scout):
    fake_reddit.ban_subreddit("hiking")
    watch = services.create_watch(identity=scout, location="hiking")

    with pytest.raises(services.WatchRunError):
        browse_location(watch.pk)

    job = Job.objects.get(job_type="ingest.browse_location")
    assert job.status == "failed" and job.attempts == 1
    assert "banned" in job.last_error and "hiking" in job.last_error
    watch.refresh_from_db()
    assert watch.consecutive_failures == 1 and "banned" in watch.last_error


def test_a_run_for_a_deleted_or_paused_watch_does_nothing(fake_reddit, scout):
    watch = services.create_watch(identity=scout, location="hiking")
    Watch.objects.filter(pk=watch.pk).update(paused_reason="Paused after 3 failed runs")

    assert browse_location(watch.pk) == {"skipped": "the watch is paused or disabled"}
    assert browse_location(987654) == {"skipped": "the watch was deleted"}
    assert not [r for r in fake_reddit.requests if r.path.startswith("/r/")]


def test_a_one_off_browse_uses_the_default_identity(fake_reddit, scout):
    fake_reddit.add_post("climbing", "carol", title="Partner wanted")

    result = browse_location(location="climbing", query="partner", sort="new", limit=10)

    assert result["created"] == 1
    assert {r.username for r in fake_reddit.requests if r.path.startswith("/r/")} == {"scout"}


def test_browsing_without_an_identity_fails_the_job_with_a_clear_reason(fake_reddit, db):
    with pytest.raises(services.LeadsError):
        browse_location(location="climbing")

    assert "Connect an active identity first" in Job.objects.get().last_error


def test_a_revoked_token_fails_the_job_asking_to_reconnect(fake_reddit, scout):
    fake_reddit.revoke_user_tokens("scout")

    with pytest.raises(AuthError):
        browse_location(location="climbing")

    job = Job.objects.get()
    assert job.status == "failed" and "reconnect" in job.last_error.lower()


def test_rate_limiting_is_retried_by_the_ledger(fake_reddit, scout):
    fake_reddit.inject(r"^/r/hiking/new$", status=429, headers={"Retry-After": "1"}, count=None)

    with pytest.raises(RateLimitedError):
        browse_location(location="hiking")

    job = Job.objects.get()
    assert job.status == "retrying" and job.next_run_at > timezone.now()


def test_fetch_post_marks_a_removed_post(fake_reddit, scout):
    post_id = fake_reddit.add_post("hiking", "carol", title="Buddy", selftext="text")
    browse_location(location="hiking")
    lead = LeadPost.objects.get()
    fake_reddit.remove_post(post_id)

    assert fetch_post(lead.pk) == {"lead_post_id": lead.pk, "remote_visibility": "removed"}
    lead.refresh_from_db()
    assert lead.body_text == "text" and lead.remote_deleted_at is not None


def test_fetch_profile_and_items_read_a_counterpart_with_images(fake_reddit, scout, attachments_dir):
    fake_reddit.add_user("carol", bio="Alps every summer")
    url = fake_reddit.add_image("/img/summit.png", image_bytes(size=(5, 5)))
    fake_reddit.add_post("pics", "carol", title="Summit", image_url=url)
    fake_reddit.add_comment("carol", "hiking", "See you there")
    account = ExternalAccountFactory(external_username="carol", remote_status="unknown")

    assert fetch_profile(account.pk) == {"remote_status": "active"}
    result = fetch_profile_items(account.pk)

    assert (result["items"], result["created"], result["images"]) == (2, 3, 1)
    assert AccountProfile.objects.get(account=account).about_json["bio"] == "Alps every summer"
    image = ProfileItem.objects.get(account=account, item_type="image")
    assert image.attachment.sha256 == Attachment.objects.get().sha256
    job = Job.objects.get(job_type="ingest.fetch_profile_items")
    assert job.status == "done" and job.progress_json["images"] == 1


def test_a_suspended_counterpart_is_reported_on_the_job(fake_reddit, scout):
    fake_reddit.add_user("carol", status="suspended")
    account = ExternalAccountFactory(external_username="carol")

    assert fetch_profile(account.pk)["note"] == "This account is suspended on the provider."
    assert fetch_profile_items(account.pk)["note"] == "This account is suspended on the provider."
    assert ExternalAccount.objects.get(pk=account.pk).remote_status == "suspended"
    assert not [r for r in fake_reddit.requests if r.path.endswith(("/submitted", "/comments"))]


def test_a_private_profile_fails_its_job_with_the_reason_and_changes_nothing(fake_reddit, scout):
    from rediska.providers.errors import ForbiddenError

    fake_reddit.add_user("carol")
    account = ExternalAccountFactory(external_username="carol", remote_status="active")
    fake_reddit.inject(r"^/user/carol/about$", status=403, count=None)

    with pytest.raises(ForbiddenError):
        fetch_profile(account.pk)

    job = Job.objects.get(job_type="ingest.fetch_profile")
    assert job.status == "failed" and "not accessible" in job.last_error
    profile = AccountProfile.objects.get(account=account)
    assert "not accessible" in profile.fetch_error and profile.about_json is None and profile.fetched_at is None
    account.refresh_from_db()
    assert account.remote_status == "active" and account.last_fetched_at is None
