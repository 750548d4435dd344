import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from identities.models import DoNotContact
from leads import services
from leads.models import LeadPost, Watch, WatchHit
from rediska.models import AuditLog, Job
from tests.factories import (
    ConversationFactory,
    ExternalAccountFactory,
    IdentityFactory,
    LeadPostFactory,
    ProfileItemFactory,
)
from tests.leads.conftest import image_bytes, store_image

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>alert('x')</script>"


@pytest.fixture
def client_with_identity(auth_client, identity):
    return auth_client


def rows(html: str) -> list[str]:
    """The lead ids of the list's rows, in order."""
    return re.findall(r'<tr data-row tabindex="0" id="lead-(\d+)"', html)


def lead_ids(*leads) -> list[str]:
    return [str(lead.pk) for lead in leads]


# --------------------------------------------------------------------------- list
def test_the_list_needs_an_identity_first(auth_client):
    response = auth_client.get(reverse("leads:list"))

    assert response.status_code == 302 and response.url == reverse("identities:setup")


def test_the_list_shows_leads_newest_first_without_the_ignored_ones(client_with_identity):
    now = datetime.now(UTC)
    old = LeadPostFactory(post_created_at=now - timedelta(days=2))
    new = LeadPostFactory(post_created_at=now)
    LeadPostFactory(status="ignored")

    html = client_with_identity.get(reverse("leads:list")).content.decode()

    assert rows(html) == lead_ids(new, old)


@pytest.mark.parametrize(("query", "expected"), [
    ("location=CLIMBING", ["climb"]),
    ("status=saved", ["saved"]),
    ("status=ignored", ["ignored"]),
    ("status=any", ["high", "climb", "saved", "ignored", "old"]),
    ("min_score=50", ["high"]),
    ("since=2030-01-02&until=2030-01-03", ["climb", "saved"]),
    ("sort=score", ["high", "climb", "old", "saved"]),
])
def test_filters_and_sorts(client_with_identity, query, expected):
    day = lambda d, h=12: datetime(2030, 1, d, h, tzinfo=UTC)  # noqa: E731
    made = {
        "high": LeadPostFactory(post_created_at=day(5), score=90),
        "climb": LeadPostFactory(post_created_at=day(3), source_location="climbing", score=40),
        "saved": LeadPostFactory(post_created_at=day(2), status="saved"),
        "ignored": LeadPostFactory(post_created_at=day(1, 23), status="ignored"),
        "old": LeadPostFactory(post_created_at=day(1), score=10),
    }

    html = client_with_identity.get(f"{reverse('leads:list')}?{query}").content.decode()

    names = {str(lead.pk): name for name, lead in made.items()}
    assert [names[pk] for pk in rows(html)] == expected


def test_scores_sort_with_unscored_leads_last(client_with_identity):
    unscored = LeadPostFactory(score=None)
    low = LeadPostFactory(score=5)
    high = LeadPostFactory(score=70)

    html = client_with_identity.get(reverse("leads:list") + "?sort=score").content.decode()

    assert rows(html) == lead_ids(high, low, unscored)


@pytest.mark.parametrize("query", ["since=yesterday", "min_score=500", "status=bogus", "watch=999",
                                   "since=2030-02-01&until=2030-01-01"])
def test_bad_filters_are_a_400_with_the_reason(client_with_identity, query):
    LeadPostFactory()

    response = client_with_identity.get(f"{reverse('leads:list')}?{query}")

    assert response.status_code == 400
    html = response.content.decode()
    assert "These filters could not be used" in html and rows(html) == []


def test_the_list_runs_a_constant_number_of_queries(client_with_identity):
    watch = Watch.objects.create(identity=IdentityFactory(), location="hiking")

    def count_queries(extra: int) -> int:
        for lead in LeadPostFactory.create_batch(extra):
            WatchHit.objects.create(watch=watch, lead_post=lead, first_seen_at=timezone.now())
        with CaptureQueriesContext(connection) as queries:
            response = client_with_identity.get(reverse("leads:list") + "?status=any")
        assert response.status_code == 200
        return len(queries)

    assert count_queries(3) == count_queries(40)


def test_provider_text_is_escaped(client_with_identity):
    LeadPostFactory(title=XSS, author_account__external_username="x<b>y</b>")

    html = client_with_identity.get(reverse("leads:list")).content.decode()

    assert XSS not in html and "&lt;script&gt;" in html and "<b>y</b>" not in html


def test_rows_are_keyboard_driven(client_with_identity):
    lead = LeadPostFactory()

    html = client_with_identity.get(reverse("leads:list")).content.decode()

    assert "data-keys" in html
    assert f'href="{reverse("leads:lead_detail", args=[lead.pk])}" data-key="Enter"' in html
    assert 'data-key="s"' in html and 'data-key="i"' in html
    assert 'data-key="q"' not in html  # a new lead is saved before it is queued


def test_new_since_last_visit_marks_posts_first_seen_after_the_visit(client_with_identity):
    watch = Watch.objects.create(identity=IdentityFactory(), location="hiking")
    seen = LeadPostFactory()
    WatchHit.objects.create(watch=watch, lead_post=seen, first_seen_at=timezone.now() - timedelta(hours=1))
    url = f"{reverse('leads:list')}?watch={watch.pk}"

    first = client_with_identity.get(url).content.decode()
    assert first.count('badge-new">new<') == 1  # never visited: all new

    fresh = LeadPostFactory()
    watch.refresh_from_db()
    WatchHit.objects.create(watch=watch, lead_post=fresh,
                            first_seen_at=watch.last_visited_at + timedelta(microseconds=1))
    second = client_with_identity.get(url).content.decode()
    assert re.search(rf'id="lead-{fresh.pk}">\s*<td>\s*<span class="badge badge-new">', second)
    assert not re.search(rf'id="lead-{seen.pk}">\s*<td>\s*<span class="badge badge-new">', second)

    only_new = client_with_identity.get(url + "&new_only=on").content.decode()
    assert rows(only_new) == []  # the last visit was just now


# --------------------------------------------------------------------------- row actions
def test_a_row_action_answers_the_updated_row_to_htmx(client_with_identity):
    lead = LeadPostFactory()

    response = client_with_identity.post(reverse("leads:lead_status", args=[lead.pk]), {"status": "saved"}, **HX)

    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith("<tr data-row")
    assert "Saved" in html and 'data-key="q"' in html
    lead.refresh_from_db()
    assert lead.status == "saved"
    assert AuditLog.objects.filter(action_type="lead.status", entity_id=lead.pk).exists()


def test_a_forbidden_move_is_a_400_row_with_the_reason(client_with_identity):
    lead = LeadPostFactory(status="new")

    response = client_with_identity.post(reverse("leads:lead_status", args=[lead.pk]),
                                         {"status": "contacted"}, **HX)

    assert response.status_code == 400
    assert "A lead that is new cannot become contacted." in response.content.decode()
    lead.refresh_from_db()
    assert lead.status == "new"


def test_a_forbidden_move_without_htmx_is_a_400_page(client_with_identity):
    lead = LeadPostFactory(status="ignored")

    response = client_with_identity.post(reverse("leads:lead_status", args=[lead.pk]), {"status": "nonsense"})

    assert response.status_code == 400
    assert "Choose one of" in response.content.decode()


def test_a_move_without_htmx_redirects_back_to_a_local_page_only(client_with_identity):
    lead = LeadPostFactory(status="new")
    url = reverse("leads:lead_status", args=[lead.pk])

    back = client_with_identity.post(url, {"status": "saved", "next": "/leads/?status=any"})
    assert back.status_code == 302 and back.url == "/leads/?status=any"

    elsewhere = client_with_identity.post(url, {"status": "ignored", "next": "https://evil.example/"})
    assert elsewhere.url == reverse("leads:lead_detail", args=[lead.pk])


def test_queueing_is_not_offered_for_a_do_not_contact_author(client_with_identity):
    lead = LeadPostFactory(status="saved", author_account__external_username="Carol")
    DoNotContact.objects.create(provider_id="reddit", external_username="carol")

    html = client_with_identity.get(reverse("leads:list")).content.decode()
    assert 'data-key="q"' not in html and "do not contact" in html

    response = client_with_identity.post(reverse("leads:lead_status", args=[lead.pk]),
                                         {"status": "contact_queued"}, **HX)
    assert response.status_code == 400 and "do-not-contact" in response.content.decode()


def test_queueing_is_not_offered_for_a_suspended_author(client_with_identity):
    lead = LeadPostFactory(status="saved", author_account__remote_status="suspended")

    html = client_with_identity.get(reverse("leads:list")).content.decode()
    assert 'data-key="q"' not in html and "suspended" in html
    detail = client_with_identity.get(reverse("leads:lead_detail", args=[lead.pk])).content.decode()
    assert "Queue for contact" not in detail and "suspended on the provider" in detail


# --------------------------------------------------------------------------- lead detail
def test_lead_detail_shows_the_post_the_author_their_items_and_agent_panels(client_with_identity):
    author = ExternalAccountFactory(external_username="carol", analysis_state="analyzed",
                                    first_analyzed_at=datetime(2030, 1, 1, tzinfo=UTC))
    lead = LeadPostFactory(author_account=author, title="Buddy wanted", body_text=f"Alps {XSS}")
    ProfileItemFactory(account=author, item_type="comment", text_content="Great route", location="climbing")

    html = client_with_identity.get(reverse("leads:lead_detail", args=[lead.pk])).content.decode()

    assert "Buddy wanted" in html and "Alps &lt;script&gt;" in html
    assert "Great route" in html and "climbing" in html
    assert "Analyzed" in html and "2030-01-01" in html
    assert reverse("leads:person", args=[author.pk]) in html
    for panel in (reverse("agents:lead_panel", args=[lead.pk]), reverse("agents:account_panel", args=[author.pk])):
        assert f'hx-get="{panel}"' in html and f'href="{panel}"' in html


def test_lead_detail_refresh_queues_a_fetch_post_job(client_with_identity):
    lead = LeadPostFactory()

    response = client_with_identity.post(reverse("leads:lead_refresh", args=[lead.pk]))

    job = Job.objects.get(job_type="ingest.fetch_post")
    assert job.payload_json["args"] == [lead.pk]
    assert response.url == reverse("job_detail", args=[job.pk])


def test_a_post_gone_from_the_provider_is_badged_on_the_lead_page_and_the_list(auth_client, scout, fake_reddit):
    from leads.tasks import fetch_post

    lead = LeadPostFactory(external_post_id="zzzz1", title="Buddy wanted", body_text="Alps in June")

    assert fetch_post(lead.pk)["remote_visibility"] == "deleted_by_author"

    assert Job.objects.get(job_type="ingest.fetch_post").status == "done"
    page = auth_client.get(reverse("leads:lead_detail", args=[lead.pk])).content.decode()
    assert 'class="badge badge-deleted_by_author">Deleted by author<' in page and "Alps in June" in page
    listing = auth_client.get(reverse("leads:list")).content.decode()
    assert 'class="badge badge-deleted_by_author">Deleted by author<' in listing


def test_an_unknown_lead_is_a_404(client_with_identity):
    assert client_with_identity.get(reverse("leads:lead_detail", args=[999])).status_code == 404


# --------------------------------------------------------------------------- person page
def test_the_person_page_gathers_posts_comments_images_leads_and_conversations(client_with_identity, fake_reddit,
                                                                               attachments_dir):
    from rediska.providers import get_provider

    account = ExternalAccountFactory(external_username="carol")
    ProfileItemFactory(account=account, item_type="post", text_content="My trip report", location="hiking")
    ProfileItemFactory(account=account, item_type="comment", text_content="Nice!", title="Other post")
    picture = store_image(fake_reddit.add_image("/img/a.png", image_bytes()),
                                is_media_host=get_provider("reddit").is_media_host)
    ProfileItemFactory(account=account, item_type="image", attachment=picture, text_content=None, title="Summit")
    lead = LeadPostFactory(author_account=account, title="Buddy wanted")
    conversation = ConversationFactory(counterpart_account=account, identity__display_name="Hiker Persona")

    html = client_with_identity.get(reverse("leads:person", args=[account.pk])).content.decode()

    assert "My trip report" in html and "Nice!" in html and "on “Other post”" in html
    assert f'src="{reverse("leads:image", args=[picture.pk])}"' in html
    assert reverse("leads:lead_detail", args=[lead.pk]) in html
    assert "Hiker Persona" in html
    assert "Fetch profile" in html and "Never contact carol" in html
    assert conversation.pk


def test_fetch_profile_queues_the_profile_and_items_jobs_once(client_with_identity):
    account = ExternalAccountFactory()
    url = reverse("leads:person_fetch", args=[account.pk])

    client_with_identity.post(url)
    client_with_identity.post(url)  # still queued: no second pair

    jobs = Job.objects.filter(job_type__startswith="ingest.fetch_profile")
    assert sorted(j.job_type for j in jobs) == ["ingest.fetch_profile", "ingest.fetch_profile_items"]
    assert all(j.payload_json["args"] == [account.pk] for j in jobs)
    page = client_with_identity.get(reverse("leads:person", args=[account.pk])).content.decode()
    assert "ingest.fetch_profile_items #" in page


def test_the_person_page_says_why_images_of_the_last_fetch_were_refused(auth_client, scout, fake_reddit,
                                                                        attachments_dir, settings):
    from leads.tasks import fetch_profile_items

    settings.ATTACHMENT_MAX_BYTES = 2000
    big = fake_reddit.add_image("/img/big.bmp", image_bytes("BMP", size=(60, 60)), "image/bmp")
    fake_reddit.add_post("pics", "carol", title="Too big", image_url=big)
    fake_reddit.add_post("pics", "carol", title="Elsewhere", image_url="https://evil.example/x.png")
    account = ExternalAccountFactory(external_username="carol")
    services.request_profile_fetch(account)
    job = Job.objects.get(job_type="ingest.fetch_profile_items")
    fetch_profile_items(*job.payload_json["args"], job_id=job.pk)

    html = auth_client.get(reverse("leads:person", args=[account.pk])).content.decode()

    assert "larger than the 1 KiB limit" in html and "evil.example is not an allowed media host" in html


def test_the_do_not_contact_flag_is_added_and_removed_from_the_person_page(client_with_identity):
    account = ExternalAccountFactory(external_username="Carol")
    url = reverse("leads:person_dnc", args=[account.pk])

    client_with_identity.post(url, {"action": "add", "reason": "asked not to"})
    assert DoNotContact.objects.get().reason == "asked not to"
    html = client_with_identity.get(reverse("leads:person", args=[account.pk])).content.decode()
    assert "On the list: asked not to" in html and "Remove from the list" in html

    client_with_identity.post(url, {"action": "remove"})
    assert not DoNotContact.objects.exists()


def test_a_too_long_reason_is_refused_clearly(client_with_identity):
    account = ExternalAccountFactory()

    response = client_with_identity.post(reverse("leads:person_dnc", args=[account.pk]),
                                         {"action": "add", "reason": "x" * 300}, follow=True)

    assert "The reason is too long" in response.content.decode()
    assert not DoNotContact.objects.exists()


def test_images_are_served_from_the_attachments_folder_only(client_with_identity, fake_reddit, attachments_dir):
    from inbox.models import Attachment
    from rediska.providers import get_provider

    data = image_bytes()
    picture = store_image(fake_reddit.add_image("/img/a.png", data),
                                is_media_host=get_provider("reddit").is_media_host)

    response = client_with_identity.get(reverse("leads:image", args=[picture.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == data

    escaping = Attachment.objects.create(storage_key="../../etc/passwd", sha256="0" * 64, mime_type="image/png",
                                         size_bytes=1)
    assert client_with_identity.get(reverse("leads:image", args=[escaping.pk])).status_code == 404
    (attachments_dir / picture.storage_key).unlink()
    assert client_with_identity.get(reverse("leads:image", args=[picture.pk])).status_code == 404


# --------------------------------------------------------------------------- watches
def test_a_watch_is_added_from_the_watches_page(client_with_identity, identity):
    response = client_with_identity.post(reverse("leads:watches"), {
        "identity": identity.pk, "location": "hiking", "query": "buddy", "sort": "new",
        "interval_minutes": 30, "limit": 50, "enabled": "on"})

    assert response.status_code == 302
    watch = Watch.objects.get()
    assert (watch.location, watch.query, watch.interval_seconds, watch.limit) == ("hiking", "buddy", 1800, 50)
    html = client_with_identity.get(reverse("leads:watches")).content.decode()
    assert "hiking" in html and "“buddy”" in html


@pytest.mark.parametrize(("fields", "words"), [
    ({"location": "../../message/inbox"}, "A location is a name"),
    ({"interval_minutes": 1}, "greater than or equal to 5"),
    ({"limit": 0}, "greater than or equal to 1"),
])
def test_a_bad_watch_is_a_400_with_the_reason(client_with_identity, identity, fields, words):
    data = {"identity": identity.pk, "location": "hiking", "sort": "new", "interval_minutes": 30, "limit": 50,
            **fields}

    response = client_with_identity.post(reverse("leads:watches"), data)

    assert response.status_code == 400 and words in response.content.decode()
    assert not Watch.objects.exists()


def test_a_duplicate_watch_is_refused(client_with_identity, identity):
    services.create_watch(identity=identity, location="hiking")
    data = {"identity": identity.pk, "location": "Hiking", "sort": "new", "interval_minutes": 60, "limit": 100}

    response = client_with_identity.post(reverse("leads:watches"), data)

    assert response.status_code == 400 and "already a watch" in response.content.decode()


def test_a_paused_watch_shows_its_reason_and_can_be_resumed(client_with_identity, identity):
    watch = services.create_watch(identity=identity, location="hiking")
    Watch.objects.filter(pk=watch.pk).update(paused_reason="Paused after 3 failed runs in a row: hiking is private.",
                                             consecutive_failures=3)

    html = client_with_identity.get(reverse("leads:watches")).content.decode()
    assert "hiking is private." in html and "Resume" in html
    listing = client_with_identity.get(reverse("leads:list")).content.decode()
    assert "The watch hiking is paused" in listing and "hiking is private." in listing

    client_with_identity.post(reverse("leads:watch_resume", args=[watch.pk]))
    watch.refresh_from_db()
    assert not watch.is_paused and watch.consecutive_failures == 0


def test_a_watch_is_edited_and_deleted_keeping_its_posts(client_with_identity, identity):
    watch = services.create_watch(identity=identity, location="hiking")
    lead = LeadPostFactory()
    WatchHit.objects.create(watch=watch, lead_post=lead, first_seen_at=timezone.now())

    response = client_with_identity.post(reverse("leads:watch_edit", args=[watch.pk]), {
        "identity": identity.pk, "location": "climbing", "sort": "top", "interval_minutes": 120, "limit": 10})
    assert response.status_code == 302
    watch.refresh_from_db()
    assert (watch.location, watch.sort, watch.enabled) == ("climbing", "top", False)

    client_with_identity.post(reverse("leads:watch_delete", args=[watch.pk]))
    assert not Watch.objects.exists() and LeadPost.objects.filter(pk=lead.pk).exists()


def test_run_now_and_browse_once_queue_browse_jobs(client_with_identity, identity):
    watch = services.create_watch(identity=identity, location="hiking")

    run = client_with_identity.post(reverse("leads:watch_run", args=[watch.pk]))
    browse = client_with_identity.post(reverse("leads:browse"), {
        "identity": identity.pk, "location": "climbing", "query": "partner", "sort": "hot", "limit": 300})

    watch_job, browse_job = Job.objects.filter(job_type="ingest.browse_location").order_by("id")
    assert run.url == reverse("job_detail", args=[watch_job.pk]) and watch_job.payload_json["args"] == [watch.pk]
    assert browse.url == reverse("job_detail", args=[browse_job.pk])
    assert browse_job.payload_json["kwargs"] == {"identity_id": identity.pk, "location": "climbing",
                                                 "sort": "hot", "query": "partner", "limit": 300}


def test_browse_once_refuses_a_hostile_location(client_with_identity, identity):
    response = client_with_identity.post(reverse("leads:browse"), {
        "identity": identity.pk, "location": "a/../b", "sort": "new", "limit": 10})

    assert response.status_code == 400 and "A location is a name" in response.content.decode()
    assert not Job.objects.exists()


def test_the_watches_page_labels_both_forms_without_clashing_ids(client_with_identity):
    html = client_with_identity.get(reverse("leads:watches")).content.decode()

    ids = re.findall(r'\bid="(id_[^"]+)"', html)
    assert len(ids) == len(set(ids))
    for field_id in ids:
        assert f'for="{field_id}"' in html


def test_the_person_page_shows_the_state_machine_and_its_first_timestamps(client_with_identity):
    from inbox import accounts

    account = ExternalAccountFactory()
    contacted = datetime(2030, 3, 1, 10, 0, tzinfo=UTC)
    accounts.mark_contacted(account, contacted)
    accounts.mark_inbound(account, contacted + timedelta(hours=2))
    accounts.mark_contacted(account, contacted + timedelta(days=1))  # a later send never moves the first
    accounts.mark_analyzed(account, contacted)

    html = client_with_identity.get(reverse("leads:person", args=[account.pk])).content.decode()

    assert "Contacted" in html and "first 2030-03-01 10:00" in html
    assert "Engaged" in html and "first reply 2030-03-01 12:00" in html
    assert "Analyzed" in html


def test_the_person_page_runs_a_constant_number_of_queries(client_with_identity):
    account = ExternalAccountFactory()

    def count_queries(extra: int) -> int:
        ProfileItemFactory.create_batch(extra, account=account, item_type="post")
        ProfileItemFactory.create_batch(extra, account=account, item_type="comment")
        LeadPostFactory.create_batch(extra, author_account=account)
        ConversationFactory.create_batch(extra, counterpart_account=account)
        with CaptureQueriesContext(connection) as queries:
            assert client_with_identity.get(reverse("leads:person", args=[account.pk])).status_code == 200
        return len(queries)

    assert count_queries(2) == count_queries(25)


def test_the_lead_page_runs_a_constant_number_of_queries(client_with_identity):
    lead = LeadPostFactory()

    def count_queries(extra: int) -> int:
        ProfileItemFactory.create_batch(extra, account=lead.author_account)
        with CaptureQueriesContext(connection) as queries:
            assert client_with_identity.get(reverse("leads:lead_detail", args=[lead.pk])).status_code == 200
        return len(queries)

    assert count_queries(1) == count_queries(20)
