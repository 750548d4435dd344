"""Today: what needs the user, in order, every item linked, every empty section saying what to do."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from agents.models import Draft
from inbox.models import Conversation
from inbox.services import state
from inbox.services.ingest import store_messages
from leads.models import Watch, WatchHit
from rediska.providers.base import RemoteMessage
from tests.factories import IdentityFactory, JobFactory, LeadPostFactory, ProviderFactory

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_ids = count(1)


@pytest.fixture
def me(db):
    ProviderFactory()
    return IdentityFactory(external_username="me", display_name="Me", is_default=True)


def say(identity, who: str, at: datetime, *, thread: str, body: str = "hello there") -> Conversation:
    n = next(_ids)
    mine = who == identity.external_username
    store_messages(identity, [RemoteMessage(
        external_id=f"t{n}", conversation_external_id=thread, author=who,
        recipient=thread if mine else identity.external_username, sent_at=at, body=body, subject="hi",
    )])
    return Conversation.objects.get(external_conversation_id=thread)


def found_by_watch(identity, seen_at: datetime, **lead):
    watch, _ = Watch.objects.get_or_create(identity=identity, location="hiking", defaults={"next_run_at": T0})
    post = LeadPostFactory(**lead)
    WatchHit.objects.create(watch=watch, lead_post=post, first_seen_at=seen_at)
    return post


def positions(page: str, *names: str) -> list[int]:
    return [page.index(name) for name in names]


def test_replies_waiting_come_oldest_first_and_link_to_the_reply_box(me, auth_client):
    say(me, "newest", T0, thread="newest")
    say(me, "oldest", T0 - timedelta(days=2), thread="oldest")
    say(me, "middle", T0 - timedelta(days=1), thread="middle")
    answered = say(me, "answered", T0 - timedelta(days=3), thread="answered")
    say(me, "me", T0 - timedelta(days=3) + timedelta(minutes=5), thread="answered")
    page = auth_client.get(reverse("home")).content.decode()
    section = page[page.index('id="replies"'):page.index('id="follow-ups"')]
    assert positions(section, ">oldest<", ">middle<", ">newest<") == sorted(positions(section, ">oldest<", ">middle<", ">newest<"))
    assert "answered" not in section
    oldest = Conversation.objects.get(external_conversation_id="oldest")
    assert f'href="{reverse("inbox:conversation", args=[oldest.pk])}#reply-body"' in section
    assert answered.pk  # (kept for the assertion above: an answered thread is not listed)


def test_a_snoozed_conversation_waits_off_today_until_its_time(me, auth_client):
    conversation = say(me, "bob", T0, thread="bob")
    state.snooze_conversation(conversation, T0 + timedelta(days=1), now=T0 + timedelta(minutes=1))
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        page = auth_client.get(reverse("home")).content.decode()
        assert ">bob<" not in page
    with time_machine.travel(T0 + timedelta(days=1, minutes=1), tick=False):
        assert ">bob<" in auth_client.get(reverse("home")).content.decode()


def test_follow_ups_show_when_due_and_leave_when_they_reply(me, auth_client):
    conversation = say(me, "me", T0, thread="carol")
    state.set_follow_up(conversation, 3, now=T0)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        section = auth_client.get(reverse("home")).content.decode().split('id="follow-ups"')[1]
        assert "carol" not in section.split("</section>")[0]
    with time_machine.travel(T0 + timedelta(days=3, minutes=1), tick=False):
        section = auth_client.get(reverse("home")).content.decode().split('id="follow-ups"')[1].split("</section>")[0]
        assert ">carol<" in section and "no reply yet" in section
        say(me, "carol", T0 + timedelta(days=3, minutes=2), thread="carol")
        section = auth_client.get(reverse("home")).content.decode().split('id="follow-ups"')[1].split("</section>")[0]
        assert ">carol<" not in section


def test_new_leads_come_best_score_first_with_their_top_reason(me, auth_client):
    found_by_watch(me, T0, title="Middling lead", score=55, score_reasons_json={"reasons": ["Asks vaguely"]})
    found_by_watch(me, T0, title="Unscored lead")
    found_by_watch(me, T0, title="Great lead", score=92,
                   score_reasons_json={"reasons": ["Wants a hiking partner this weekend", "Local"]})
    page = auth_client.get(reverse("home")).content.decode()
    section = page[page.index('id="new-leads"'):page.index('id="drafts"')]
    assert positions(section, "Great lead", "Middling lead", "Unscored lead") == sorted(
        positions(section, "Great lead", "Middling lead", "Unscored lead"))
    assert "Wants a hiking partner this weekend" in section and ">92<" in section


def test_leads_seen_in_the_leads_list_are_no_longer_new(me, auth_client):
    found_by_watch(me, timezone.now() - timedelta(minutes=5), title="Seen lead")
    assert "Seen lead" in auth_client.get(reverse("home")).content.decode()
    auth_client.get(reverse("leads:list"))  # the visit
    assert "Seen lead" not in auth_client.get(reverse("home")).content.decode()


def test_drafts_reconnects_and_failures_are_listed_with_their_links(me, auth_client):
    lead = LeadPostFactory(title="A post")
    draft = Draft.objects.create(kind="intro", identity=me, account=lead.author_account, lead_post=lead,
                                 body_text="Hi!")
    Draft.objects.create(kind="intro", identity=me, account=lead.author_account, body_text="sent", status="sent")
    broken = IdentityFactory(display_name="Broken Persona", needs_reconnect_at=T0, last_auth_error="Token revoked")
    job = JobFactory(job_type="ingest.sync_delta", status="failed", last_error="Provider down")
    backup = JobFactory(job_type="maintenance.mysql_dump_local", status="failed", last_error="Disk full")
    page = auth_client.get(reverse("home")).content.decode()
    assert reverse("agents:draft_detail", args=[draft.pk]) in page and page.count("agents/drafts/") == 1
    assert reverse("identities:detail", args=[broken.pk]) in page and "Token revoked" in page
    assert reverse("job_detail", args=[job.pk]) in page and "Provider down" in page
    assert reverse("job_detail", args=[backup.pk]) in page and "Disk full" in page


def test_every_empty_section_says_what_to_do_with_a_link(me, auth_client):
    page = auth_client.get(reverse("home")).content.decode()
    for hint, link in [("Nobody is waiting for an answer", reverse("inbox:list")),
                       ("No follow-up is due", reverse("inbox:list")),
                       ("No new leads", reverse("leads:watches")),
                       ("No drafts waiting", reverse("leads:list")),
                       ("Every identity is connected", reverse("identities:list")),
                       ("No failed backups", reverse("backups:list")),
                       ("No job failed this week", reverse("jobs"))]:
        assert hint in page
        assert f'href="{link}"' in page.split(hint, 1)[1][:300]


def test_today_is_the_home_page_and_first_in_the_navigation(me, auth_client):
    page = auth_client.get("/").content.decode()
    nav = page[page.index('<nav aria-label="Main">'):page.index("</nav>")]
    assert nav.index(">Today<") < nav.index("Inbox")
    assert 'aria-current="page">Today<' in nav


def test_sections_show_counts_beyond_what_they_list(me, auth_client):
    for n in range(13):
        say(me, f"person{n}", T0 - timedelta(minutes=n), thread=f"p{n}")
    page = auth_client.get(reverse("home")).content.decode()
    assert "3 more in the inbox" in page


def test_today_takes_a_constant_number_of_queries(me, auth_client, django_assert_max_num_queries):
    def fill(n0, n):
        for i in range(n0, n0 + n):
            say(me, f"p{i}", T0 - timedelta(minutes=i), thread=f"q{i}")
            state.set_follow_up(say(me, "me", T0 - timedelta(days=5, minutes=i), thread=f"f{i}"), 1,
                                now=T0 - timedelta(days=4))
            found_by_watch(me, T0, score=i % 100)
            JobFactory(status="failed", last_error="x")

    fill(0, 12)  # every section has more than it lists (so each counts)
    with django_assert_max_num_queries(24) as few:
        auth_client.get(reverse("home"))
    fill(12, 20)
    with django_assert_max_num_queries(24) as many:
        auth_client.get(reverse("home"))
    assert len(few.captured_queries) == len(many.captured_queries)
