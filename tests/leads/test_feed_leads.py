"""Leads and profiles through feeds: an identity connected only by its feed token browses, watches and reads people."""

import pytest

from identities.services import connect_feed_token, session_for
from inbox.models import ExternalAccount
from leads import services
from leads.models import LeadPost, ProfileItem
from leads.tasks import browse_location, fetch_profile, fetch_profile_items
from rediska.models import Job
from tests.factories import ExternalAccountFactory, IdentityFactory, ProviderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed_scout(fake_feeds):
    ProviderFactory()
    token = fake_feeds.issue_token("scout")
    return connect_feed_token(provider_id="reddit", text=fake_feeds.feed_url("scout", token))


def test_a_watch_over_a_subreddit_feed_finds_a_lead(fake_feeds, feed_scout):
    reddit = fake_feeds.reddit
    reddit.add_post("hiking", "carol", title="Looking for a hiking buddy", selftext="Weekends, <b>Alps</b>")
    reddit.add_post("hiking", "dave", title="Trail report")
    watch = services.create_watch(identity=feed_scout, location="hiking", query="buddy", interval_seconds=600)
    assert browse_location()["watches_queued"] == 1
    job = Job.objects.get(job_type="ingest.browse_location", dedupe_key__startswith=f"watch:{watch.pk}:")
    result = browse_location(*job.payload_json["args"], job_id=job.pk, **job.payload_json["kwargs"])
    lead = LeadPost.objects.get()
    assert result["created"] == 1 and lead.title == "Looking for a hiking buddy"
    assert lead.body_text == "Weekends, <b>Alps</b>"  # text as the author wrote it; never rendered as HTML
    assert lead.author_account.external_username == "carol" and lead.post_url.startswith("https://")
    assert watch.hits.count() == 1
    assert any(r.path == "/r/hiking/search.rss" for r in fake_feeds.requests)
    # The next run stores nothing twice.
    services.run_watch(watch)
    assert LeadPost.objects.count() == 1


@pytest.mark.parametrize("sort", ["new", "hot", "top"])
def test_browsing_reads_the_sorted_subreddit_feed(fake_feeds, feed_scout, sort):
    fake_feeds.reddit.add_post("hiking", "carol", title="Anyone up for a climb?", score=9)
    services.browse_location(session_for(feed_scout), provider_id="reddit", location="hiking", sort=sort)
    assert LeadPost.objects.get().title == "Anyone up for a climb?"
    assert fake_feeds.requests[-1].path == f"/r/hiking/{sort}/.rss"


def test_a_persons_posts_and_comments_come_from_their_user_feeds(fake_feeds, feed_scout):
    reddit = fake_feeds.reddit
    post = reddit.add_post("hiking", "carol", title="My trip", selftext="It was great")
    reddit.add_comment("carol", "hiking", "Count me in", post_id=post)
    account = ExternalAccountFactory(external_username="carol")
    fetch_profile(account.pk)
    result = fetch_profile_items(account.pk)
    assert result["created"] == 2
    assert sorted(ProfileItem.objects.values_list("item_type", "text_content")) == [
        ("comment", "Count me in"), ("post", "My trip\n\nIt was great")]  # title and text, as for the API
    account.refresh_from_db()
    assert account.remote_status == ExternalAccount.RemoteStatus.ACTIVE


def test_an_identity_without_a_connection_is_not_picked_to_browse(fake_feeds, feed_scout):
    IdentityFactory(provider=feed_scout.provider, is_default=True, external_username="archived")
    assert services.browsing_identity("reddit") == feed_scout


def test_an_identity_without_a_connection_cannot_watch_and_is_told_why(db):
    archived = IdentityFactory()
    with pytest.raises(services.LeadsError, match="no connection"):
        services.create_watch(identity=archived, location="hiking", interval_seconds=600)
    with pytest.raises(services.LeadsError, match="no connection"):
        services.browsing_identity(identity_id=archived.pk)
