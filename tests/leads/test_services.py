from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Attachment, ExternalAccount
from leads import media, services
from leads.models import AccountProfile, LeadPost, ProfileItem, Watch, WatchHit
from rediska.models import AuditLog, Job
from rediska.providers import get_provider
from rediska.providers.errors import ForbiddenError, NotFoundError, TransientError
from tests.factories import ExternalAccountFactory, LeadPostFactory, ProfileItemFactory, ProviderFactory
from tests.leads.conftest import files_under, image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(fake_reddit):
    ProviderFactory()
    return get_provider("reddit").session(fake_reddit.issue_refresh_token("scout"))


def browse(session, location="hiking", **kwargs):
    return services.browse_location(session, provider_id="reddit", location=location, **kwargs)


# --------------------------------------------------------------------------- browsing
def test_browse_stores_each_post_as_a_new_lead_with_its_author_account(fake_reddit, session):
    post_id = fake_reddit.add_post("hiking", "carol", title="Looking for a hiking buddy", selftext="Alps in June")
    fake_reddit.add_post("hiking", "dave", title="Trail report")

    result = browse(session)

    assert (result.seen, result.created, result.updated, result.pages) == (2, 2, 0, 1)
    lead = LeadPost.objects.get(external_post_id=post_id)
    assert (lead.status, lead.source_location, lead.title, lead.body_text) == (
        "new", "hiking", "Looking for a hiking buddy", "Alps in June")
    assert lead.remote_visibility == "visible"
    assert lead.post_url.endswith(f"/comments/{post_id}/looking_for_a_hiking_buddy/")
    assert lead.post_created_at.tzinfo is not None
    assert lead.author_account.external_username == "carol"
    assert set(ExternalAccount.objects.values_list("external_username", flat=True)) == {"carol", "dave"}


def test_browse_pages_through_the_location_up_to_the_limit(fake_reddit, session):
    for n in range(250):
        fake_reddit.add_post("hiking", f"author{n % 7}", title=f"post {n}")

    result = browse(session, limit=230)

    assert (result.seen, result.created, result.pages) == (230, 230, 3)
    assert LeadPost.objects.count() == 230
    listing = [r for r in fake_reddit.requests if r.path == "/r/hiking/new"]
    assert [r.query.get("limit") for r in listing] == ["100", "100", "30"]
    assert listing[1].query["after"] and listing[2].query["after"] != listing[1].query["after"]


def test_browsing_again_updates_known_posts_and_never_duplicates_them(fake_reddit, session):
    kept = fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    removed = fake_reddit.add_post("hiking", "dave", title="Gear swap", selftext="Boots, size 44")
    browse(session)
    LeadPost.objects.filter(external_post_id=kept).update(status="saved")
    fake_reddit.remove_post(removed, by="moderator")
    fake_reddit.add_post("hiking", "erin", title="New one")

    result = browse(session)

    assert (result.seen, result.created, result.updated) == (3, 1, 1)
    assert LeadPost.objects.count() == 3
    assert LeadPost.objects.get(external_post_id=kept).status == "saved"
    gone = LeadPost.objects.get(external_post_id=removed)
    assert (gone.remote_visibility, gone.body_text, gone.title) == ("removed", "Boots, size 44", "Gear swap")
    assert gone.remote_deleted_at is not None


def test_keyword_search_stores_only_the_matching_posts(fake_reddit, session):
    match = fake_reddit.add_post("hiking", "carol", title="Hiking buddy in Tyrol")
    fake_reddit.add_post("hiking", "dave", title="Boots for sale")

    result = browse(session, query="buddy tyrol")

    assert result.seen == 1
    assert list(LeadPost.objects.values_list("external_post_id", flat=True)) == [match]
    search = [r for r in fake_reddit.requests if r.path == "/r/hiking/search"]
    assert search[0].query["q"] == "buddy tyrol" and search[0].query["restrict_sr"] == "on"


@pytest.mark.parametrize("sort", ["hot", "top"])
def test_hot_and_top_read_the_matching_listing(fake_reddit, session, sort):
    fake_reddit.add_post("hiking", "carol", title="a", score=1)
    fake_reddit.add_post("hiking", "dave", title="b", score=50)

    browse(session, sort=sort)

    assert [r.path for r in fake_reddit.requests if r.path.startswith("/r/")] == [f"/r/hiking/{sort}"]
    assert LeadPost.objects.count() == 2


@pytest.mark.parametrize(("setup", "error", "words"), [
    (lambda fake: None, NotFoundError, "does not exist"),
    (lambda fake: fake.ban_subreddit("hiking"), ForbiddenError, "banned"),
    (lambda fake: fake.private_subreddit("hiking"), ForbiddenError, "private"),
])
def test_unknown_banned_or_private_locations_fail_with_a_reason_and_store_nothing(fake_reddit, session, setup,
                                                                                   error, words):
    setup(fake_reddit)

    with pytest.raises(error) as caught:
        browse(session)

    assert words in caught.value.user_message
    assert LeadPost.objects.count() == 0 and ExternalAccount.objects.count() == 0


@pytest.mark.parametrize("location", ["", "../message/inbox", "hiking/../../api/v1/me", "a b", "x" * 65,
                                      "hiking?limit=1", "%2e%2e"])
def test_hostile_location_names_are_refused_before_any_request(fake_reddit, session, location):
    with pytest.raises(services.LeadsError, match="A location is a name"):
        browse(session, location=location)

    assert [r for r in fake_reddit.requests if not r.path.startswith("/api/v1/access_token")] == []


def test_a_failure_midway_keeps_the_pages_already_stored_whole(fake_reddit, session):
    for n in range(150):
        fake_reddit.add_post("hiking", f"author{n}", title=f"post {n}")
    # Fail the second page: each page is its own transaction, so the first stays whole.
    fail_next = lambda **progress: fake_reddit.inject(r"^/r/hiking/new$", status=403)  # noqa: E731

    with pytest.raises(ForbiddenError):
        browse(session, limit=150, progress=fail_next)

    assert LeadPost.objects.count() == 100
    assert ExternalAccount.objects.count() == 100


def test_a_post_listed_twice_on_a_page_is_stored_once(fake_reddit, session):
    post_id = fake_reddit.add_post("hiking", "carol", title="Buddy")
    posts = session.list_posts("hiking").posts

    result = services.store_posts("reddit", posts + posts)

    assert result.created == 1
    assert LeadPost.objects.filter(external_post_id=post_id).count() == 1


def test_posts_without_a_known_author_are_kept_without_an_account(fake_reddit, session):
    fake_reddit.add_post("hiking", None, title="Orphan post")

    browse(session)

    lead = LeadPost.objects.get()
    assert lead.author_account is None and lead.title == "Orphan post"


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>",
                                 "//evil.example/x", "vbscript:x"])
def test_only_web_addresses_are_kept_as_post_and_item_links(url):
    from rediska.providers.base import RemotePost, RemoteProfileItem

    ProviderFactory()
    services.store_posts("reddit", [RemotePost(external_id="p1", location="hiking", url=url, author="carol",
                                               title="Buddy", body=None, created_at=None)])
    account = ExternalAccount.objects.get(external_username="carol")
    services.store_profile_items(account, [RemoteProfileItem(external_id="c1", item_type="comment",
                                                             created_at=None, text="hi", url=url)], {})

    assert LeadPost.objects.get().post_url == ""
    assert ProfileItem.objects.get().url is None


# --------------------------------------------------------------------------- fetch_post
@pytest.mark.parametrize(("by", "visibility"), [("moderator", "removed"), ("author", "deleted_by_author")])
def test_fetch_post_marks_remote_removal_and_keeps_the_text(fake_reddit, session, by, visibility):
    post_id = fake_reddit.add_post("hiking", "carol", title="Buddy", selftext="Meet at the lake")
    browse(session)
    lead = LeadPost.objects.get(external_post_id=post_id)
    fake_reddit.remove_post(post_id, by=by)

    lead = services.fetch_post(session, lead)

    assert lead.remote_visibility == visibility
    assert (lead.title, lead.body_text) == ("Buddy", "Meet at the lake")
    assert lead.author_account.external_username == "carol"
    first_marked = lead.remote_deleted_at
    assert first_marked is not None

    lead = services.fetch_post(session, lead)
    assert lead.remote_deleted_at == first_marked  # set once, never moved


def test_fetch_post_of_a_post_the_provider_no_longer_knows_marks_it_deleted_and_keeps_the_text(fake_reddit,
                                                                                                session):
    lead = LeadPostFactory(external_post_id="zzzz1", title="Buddy", body_text="Meet at the lake")

    lead = services.fetch_post(session, lead)

    assert lead.remote_visibility == "deleted_by_author" and lead.remote_deleted_at is not None
    assert (lead.title, lead.body_text) == ("Buddy", "Meet at the lake")
    first_marked = lead.remote_deleted_at
    assert services.fetch_post(session, lead).remote_deleted_at == first_marked  # set once, never moved


def test_fetch_post_with_a_transient_error_raises_and_marks_nothing(fake_reddit, session):
    lead = LeadPostFactory(external_post_id="zzzz1")
    fake_reddit.inject(r"^/api/info$", status=503, count=None)

    with pytest.raises(TransientError):
        services.fetch_post(session, lead)
    lead.refresh_from_db()
    assert lead.remote_visibility == "visible" and lead.remote_deleted_at is None


# --------------------------------------------------------------------------- triage
@pytest.mark.parametrize(("start", "target"), [
    ("new", "saved"), ("new", "ignored"), ("saved", "contact_queued"), ("saved", "ignored"),
    ("ignored", "saved"), ("contact_queued", "contacted"), ("contact_queued", "saved"),
])
def test_allowed_status_moves_are_made_and_audited(start, target):
    lead = LeadPostFactory(status=start)

    services.set_lead_status(lead, target)

    lead.refresh_from_db()
    assert lead.status == target
    row = AuditLog.objects.get(action_type="lead.status")
    assert (row.entity_type, row.entity_id, row.request_json) == ("lead_posts", lead.pk,
                                                                  {"from": start, "to": target})


@pytest.mark.parametrize(("start", "target"), [
    ("new", "contacted"), ("new", "contact_queued"), ("ignored", "contact_queued"), ("contacted", "saved"),
    ("saved", "new"), ("new", "bogus"),
])
def test_moves_the_enum_does_not_allow_are_refused_with_a_reason(start, target):
    lead = LeadPostFactory(status=start)

    with pytest.raises(services.InvalidStatusMove) as caught:
        services.set_lead_status(lead, target)

    lead.refresh_from_db()
    assert lead.status == start
    assert "cannot become" in caught.value.user_message or "Unknown status" in caught.value.user_message


def test_a_do_not_contact_author_cannot_be_queued_for_contact():
    from identities.models import DoNotContact

    lead = LeadPostFactory(status="saved", author_account__external_username="Carol")
    DoNotContact.objects.create(provider_id="reddit", external_username="carol", reason="asked")

    with pytest.raises(services.InvalidStatusMove, match="do-not-contact"):
        services.set_lead_status(lead, "contact_queued")
    lead.refresh_from_db()
    assert lead.status == "saved"


@pytest.mark.parametrize(("status", "words"), [("suspended", "suspended"), ("deleted", "no longer exists")])
def test_a_lead_whose_author_is_gone_cannot_be_queued_for_contact(status, words):
    lead = LeadPostFactory(status="saved", author_account__remote_status=status)

    with pytest.raises(services.InvalidStatusMove, match=words):
        services.set_lead_status(lead, "contact_queued")
    lead.refresh_from_db()
    assert lead.status == "saved"


def test_queued_leads_become_contacted_once_their_author_was_written_to():
    queued = LeadPostFactory(status="contact_queued", author_account__contact_state="contacted")
    waiting = LeadPostFactory(status="contact_queued")
    saved = LeadPostFactory(status="saved", author_account__contact_state="contacted")

    assert services.promote_contacted_leads() == 1

    statuses = dict(LeadPost.objects.values_list("pk", "status"))
    assert statuses == {queued.pk: "contacted", waiting.pk: "contact_queued", saved.pk: "saved"}


# --------------------------------------------------------------------------- watches
def test_a_watch_is_created_due_now_and_duplicates_are_refused(scout):
    watch = services.create_watch(identity=scout, location="hiking", query="buddy", interval_seconds=900)

    assert watch.next_run_at <= timezone.now() and watch.enabled and not watch.is_paused
    with pytest.raises(services.LeadsError, match="already a watch"):
        services.create_watch(identity=scout, location="HIKING", query="Buddy", interval_seconds=900)
    assert AuditLog.objects.filter(action_type="watch.create").count() == 1


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"location": "../x"}, "A location is a name"),
    ({"interval_seconds": 10}, "interval"),
    ({"sort": "rising"}, "Sort by"),
    ({"query": "x" * 300}, "too long"),
])
def test_bad_watch_settings_are_refused_with_a_reason(scout, kwargs, words):
    with pytest.raises(services.LeadsError, match=words):
        services.create_watch(identity=scout, **{"location": "hiking", **kwargs})
    assert Watch.objects.count() == 0


def test_a_watch_run_stores_hits_and_schedules_the_next_run(fake_reddit, scout):
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    fake_reddit.add_post("hiking", "dave", title="Selling boots")
    watch = services.create_watch(identity=scout, location="hiking", query="buddy", interval_seconds=900)
    now = timezone.now()

    result = services.run_watch(watch, now=now)

    watch.refresh_from_db()
    assert (result.seen, result.new_hits) == (1, 1)
    assert WatchHit.objects.get(watch=watch).lead_post.title == "Buddy wanted"
    assert watch.last_run_at == now and watch.next_run_at == now + timedelta(seconds=900)
    assert services.run_watch(watch).new_hits == 0


def test_a_watch_that_keeps_failing_is_paused_with_the_reason(fake_reddit, scout, settings):
    settings.WATCH_MAX_FAILURES = 3
    fake_reddit.add_subreddit("hiking")
    # Three runs of two tries each (the client retries a read once on a server error).
    fake_reddit.inject(r"^/r/hiking/new$", status=503, count=6)
    watch = services.create_watch(identity=scout, location="hiking")

    for attempt in range(3):
        with pytest.raises(services.WatchRunError, match="server error"):
            services.run_watch(watch)
        watch.refresh_from_db()
        assert watch.consecutive_failures == attempt + 1
        assert watch.is_paused == (attempt == 2)  # a transient error uses up the allowance first

    assert "Paused after 3 failed runs" in watch.paused_reason and "server error" in watch.paused_reason
    assert services.run_watch(watch) is None  # paused: not run
    assert not services.due_watches(timezone.now() + timedelta(days=1)).filter(pk=watch.pk).exists()

    services.resume_watch(watch)
    services.run_watch(watch)
    watch.refresh_from_db()
    assert (watch.consecutive_failures, watch.paused_reason, watch.last_error) == (0, None, None)


@pytest.mark.parametrize(("setup", "words"), [
    (lambda fake: None, "does not exist"),
    (lambda fake: fake.ban_subreddit("hiking"), "banned"),
    (lambda fake: fake.private_subreddit("hiking"), "private"),
])
def test_a_watch_on_a_location_that_is_gone_is_paused_at_the_first_failure(fake_reddit, scout, settings,
                                                                            setup, words):
    settings.WATCH_MAX_FAILURES = 3
    setup(fake_reddit)
    watch = services.create_watch(identity=scout, location="hiking")

    with pytest.raises(services.WatchRunError, match=words):
        services.run_watch(watch)

    watch.refresh_from_db()
    assert watch.is_paused and watch.consecutive_failures == 1
    assert words in watch.paused_reason and "Paused after" not in watch.paused_reason
    assert not services.due_watches(timezone.now() + timedelta(days=1)).filter(pk=watch.pk).exists()
    audit = AuditLog.objects.filter(action_type="watch.run").latest("id")
    assert audit.result == "error" and audit.response_json["paused"] is True

    fake_reddit.add_subreddit("hiking", status="public")
    services.resume_watch(watch)
    assert services.run_watch(watch) is not None


def test_a_success_resets_the_failure_count(fake_reddit, scout):
    fake_reddit.add_post("hiking", "carol")
    watch = services.create_watch(identity=scout, location="hiking")
    fake_reddit.inject(r"^/r/hiking/new$", status=500, count=2)  # both tries of one run
    with pytest.raises(services.WatchRunError):
        services.run_watch(watch)

    services.run_watch(watch)

    watch.refresh_from_db()
    assert watch.consecutive_failures == 0 and watch.last_error is None


def test_the_tick_queues_each_due_watch_once_per_slot(fake_reddit, scout):
    due = services.create_watch(identity=scout, location="hiking")
    later = services.create_watch(identity=scout, location="climbing")
    Watch.objects.filter(pk=later.pk).update(next_run_at=timezone.now() + timedelta(hours=1))
    paused = services.create_watch(identity=scout, location="running")
    Watch.objects.filter(pk=paused.pk).update(paused_reason="Paused after 3 failed runs")

    assert services.enqueue_due_watches()["watches_queued"] == 1
    assert services.enqueue_due_watches()["watches_queued"] == 1  # same slot: the same job

    jobs = Job.objects.filter(job_type="ingest.browse_location")
    assert [(j.payload_json["args"], j.dedupe_key) for j in jobs] == [
        ([due.pk], f"watch:{due.pk}:{int(due.next_run_at.timestamp())}")]


def test_new_since_last_visit_counts_hits_first_seen_after_the_visit(fake_reddit, scout):
    fake_reddit.add_post("hiking", "carol", title="old")
    watch = services.create_watch(identity=scout, location="hiking")
    services.run_watch(watch)
    is_new = services.new_since_visit_q(watch)
    assert LeadPost.objects.filter(is_new).count() == 1  # never visited: everything is new

    services.visit_watches([watch])
    fake_reddit.add_post("hiking", "dave", title="fresh")
    services.run_watch(watch)

    assert list(LeadPost.objects.filter(services.new_since_visit_q(watch)).values_list("title", flat=True)) == [
        "fresh"]


# --------------------------------------------------------------------------- profiles
def test_fetch_profile_records_status_about_data_and_user_id(fake_reddit, session):
    fake_reddit.add_user("carol", link_karma=12, comment_karma=30, bio="Hiker <b>and</b> climber")
    account = ExternalAccountFactory(external_username="carol", remote_status="unknown")

    result = services.fetch_profile(session, account)

    account.refresh_from_db()
    assert result.status == "active" and result.note is None
    assert account.remote_status == "active" and account.external_user_id
    assert account.remote_status_last_seen_at and account.last_fetched_at
    profile = AccountProfile.objects.get(account=account)
    assert profile.about_json["bio"] == "Hiker <b>and</b> climber"
    assert profile.about_json["link_karma"] == 12 and profile.fetch_error is None


@pytest.mark.parametrize(("status", "words"), [("suspended", "suspended"), ("deleted", "no longer exists")])
def test_a_suspended_or_deleted_account_is_marked_and_the_reason_kept(fake_reddit, session, status, words):
    fake_reddit.add_user("carol", status=status)
    account = ExternalAccountFactory(external_username="carol", remote_status="active")
    kept = ProfileItemFactory(account=account)

    result = services.fetch_profile(session, account)

    account.refresh_from_db()
    assert account.remote_status == status and words in result.note
    assert words in AccountProfile.objects.get(account=account).fetch_error
    assert ProfileItem.objects.filter(pk=kept.pk).exists()  # nothing local is removed


def test_items_of_an_unavailable_account_are_not_requested(fake_reddit, session):
    account = ExternalAccountFactory(external_username="carol", remote_status="suspended")

    result = services.fetch_profile_items(session, account)

    assert "suspended" in result.note
    assert not [r for r in fake_reddit.requests if r.path.startswith("/user/")]


def test_forbidden_profile_items_raise_and_keep_the_reason_for_the_page(fake_reddit, session):
    fake_reddit.add_user("carol")
    account = ExternalAccountFactory(external_username="carol")
    fake_reddit.inject(r"^/user/carol/submitted$", status=403)

    with pytest.raises(ForbiddenError):
        services.fetch_profile_items(session, account)
    assert "not accessible" in AccountProfile.objects.get(account=account).fetch_error


def test_fetch_profile_items_stores_posts_and_comments_with_where_they_appeared(fake_reddit, session,
                                                                                attachments_dir):
    post_id = fake_reddit.add_post("hiking", "carol", title="Buddy wanted", selftext="Alps in June")
    comment_id = fake_reddit.add_comment("carol", "climbing", "Great route!")
    account = ExternalAccountFactory(external_username="carol")

    result = services.fetch_profile_items(session, account)

    assert (result.seen, result.created) == (2, 2)
    post = ProfileItem.objects.get(account=account, item_type="post")
    comment = ProfileItem.objects.get(account=account, item_type="comment")
    assert (post.external_item_id, post.location, post.title) == (post_id, "hiking", "Buddy wanted")
    assert post.text_content == "Buddy wanted\n\nAlps in June"
    assert (comment.external_item_id, comment.location, comment.text_content) == (comment_id, "climbing",
                                                                                   "Great route!")
    assert comment.url and comment.remote_visibility == "visible"
    assert AccountProfile.objects.get(account=account).items_fetched_at is not None


def test_profile_images_are_downloaded_once_per_hash(fake_reddit, session, attachments_dir):
    data = image_bytes(size=(4, 3))
    first = fake_reddit.add_image("/img/a.png", data)
    same_bytes = fake_reddit.add_image("/img/copy.png", data)
    other = fake_reddit.add_image("/img/b.jpg", image_bytes("JPEG", size=(8, 8)))
    fake_reddit.add_post("pics", "carol", title="Summit", image_url=first)
    fake_reddit.add_post("pics", "carol", title="Summit again", image_url=same_bytes)
    fake_reddit.add_post("pics", "carol", title="Lake", image_url=other)
    account = ExternalAccountFactory(external_username="carol")

    result = services.fetch_profile_items(session, account)

    images = ProfileItem.objects.filter(account=account, item_type="image").select_related("attachment")
    assert result.images == 3 and images.count() == 3
    assert Attachment.objects.count() == 2
    assert len(files_under(attachments_dir)) == 2
    summit = images.get(title="Summit").attachment
    assert (summit.mime_type, summit.width_px, summit.height_px) == ("image/png", 4, 3)
    assert (attachments_dir / summit.storage_key).read_bytes() == data

    image_requests = len([r for r in fake_reddit.requests if r.path.startswith("/img/")])
    services.fetch_profile_items(session, account)
    assert len([r for r in fake_reddit.requests if r.path.startswith("/img/")]) == image_requests


def test_a_failed_page_save_leaves_no_attachment_row_and_the_next_fetch_reuses_the_file(fake_reddit, session,
                                                                                       attachments_dir):
    from django.db import IntegrityError

    from rediska.providers.base import RemoteProfileItem

    data = image_bytes(size=(6, 6))
    url = fake_reddit.add_image("/img/a.png", data)
    account = ExternalAccountFactory(external_username="carol")
    services.store_profile_items(account, [RemoteProfileItem(external_id="p1", item_type="post", created_at=None,
                                                             text="Summit")], {})
    image = media.download_image(url, is_media_host=get_provider("reddit").is_media_host)
    # The database refuses the page (a visibility its check constraint rejects) after the download.
    broken = RemoteProfileItem(external_id="p1", item_type="post", created_at=None, text="Summit",
                               visibility="bogus", media_urls=(url,))

    with pytest.raises(IntegrityError):
        services.store_profile_items(account, [broken], {"p1:img0": (broken, image)})

    assert not Attachment.objects.exists() and not ProfileItem.objects.filter(item_type="image").exists()
    assert files_under(attachments_dir) == [attachments_dir / image.storage_key]  # content-addressed, kept

    fake_reddit.add_post("pics", "carol", title="Summit", image_url=url)
    result = services.fetch_profile_items(session, account)

    attachment = Attachment.objects.get()
    assert result.images == 1 and attachment.storage_key == image.storage_key
    assert ProfileItem.objects.get(item_type="image").attachment == attachment
    assert files_under(attachments_dir) == [attachments_dir / image.storage_key]


def test_an_item_with_an_overlong_id_is_skipped_with_its_images(fake_reddit, attachments_dir):
    from rediska.providers.base import RemoteProfileItem

    url = fake_reddit.add_image("/img/a.png", image_bytes())
    image = media.download_image(url, is_media_host=get_provider("reddit").is_media_host)
    account = ExternalAccountFactory(external_username="carol")
    odd = RemoteProfileItem(external_id="x" * 126, item_type="post", created_at=None, text="Odd", media_urls=(url,))
    fine = RemoteProfileItem(external_id="p1", item_type="post", created_at=None, text="Fine")

    assert services.store_profile_items(account, [odd, fine], {f"{'x' * 126}:img0": (odd, image)}) == (1, 0)
    assert list(ProfileItem.objects.values_list("external_item_id", flat=True)) == ["p1"]
    assert not Attachment.objects.exists()


def test_refused_images_are_listed_and_the_rest_is_stored(fake_reddit, session, attachments_dir, settings):
    settings.ATTACHMENT_MAX_BYTES = 2000
    fake_reddit.add_post("pics", "carol", title="Elsewhere", image_url="https://evil.example/x.png")
    big = fake_reddit.add_image("/img/big.bmp", image_bytes("BMP", size=(60, 60)), "image/png")
    fake_reddit.add_post("pics", "carol", title="Too big", image_url=big)
    page = fake_reddit.add_image("/img/page.png", b"<html>hi</html>", "image/png")
    fake_reddit.add_post("pics", "carol", title="Not an image", image_url=page)
    account = ExternalAccountFactory(external_username="carol")

    result = services.fetch_profile_items(session, account)

    assert ProfileItem.objects.filter(account=account, item_type="post").count() == 3
    assert not ProfileItem.objects.filter(item_type="image").exists()
    reasons = " | ".join(result.skipped)
    assert "not an allowed media host" in reasons and "larger than" in reasons and "not an image" in reasons
    assert files_under(attachments_dir) == []


def test_new_items_send_an_analyzed_account_to_needs_refresh_keeping_first_analyzed_at(fake_reddit, session):
    analyzed_at = timezone.now() - timedelta(days=3)
    account = ExternalAccountFactory(external_username="carol", analysis_state="analyzed",
                                     first_analyzed_at=analyzed_at)
    fake_reddit.add_comment("carol", "hiking", "first")
    services.fetch_profile_items(session, account)
    account.refresh_from_db()
    assert account.analysis_state == "needs_refresh" and account.first_analyzed_at == analyzed_at

    ExternalAccount.objects.filter(pk=account.pk).update(analysis_state="analyzed")
    services.fetch_profile_items(session, account)  # nothing new
    account.refresh_from_db()
    assert account.analysis_state == "analyzed"


def test_a_comment_deleted_remotely_is_marked_and_keeps_its_text(fake_reddit, session):
    comment_id = fake_reddit.add_comment("carol", "hiking", "I will be there")
    account = ExternalAccountFactory(external_username="carol")
    services.fetch_profile_items(session, account)
    fake_reddit.delete_comment(comment_id, how="removed")

    services.fetch_profile_items(session, account)

    item = ProfileItem.objects.get(external_item_id=comment_id)
    assert (item.remote_visibility, item.text_content) == ("removed", "I will be there")
    assert item.remote_deleted_at is not None


def test_profile_items_page_through_up_to_the_limit(fake_reddit, session):
    for n in range(130):
        fake_reddit.add_comment("carol", "hiking", f"comment {n}")
    account = ExternalAccountFactory(external_username="carol")

    result = services.fetch_profile_items(session, account, limit=120)

    assert ProfileItem.objects.filter(account=account, item_type="comment").count() == 120
    assert result.pages == 3  # posts (empty), then two pages of comments
