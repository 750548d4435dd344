"""A watch scores its new leads in the background (when a model is configured), behind clicks."""

import pytest
from django.urls import reverse

from agents.tasks import lead_scoring
from leads import services
from leads.models import LeadPost, Watch
from rediska.models import Job

pytestmark = pytest.mark.django_db


def test_a_watch_queues_a_background_score_for_each_new_lead(fake_reddit, scout, fake_llm, settings,
                                                              django_capture_on_commit_callbacks):
    settings.AUTO_SCORE_DELAY_SECONDS = 30
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    fake_reddit.add_post("hiking", "dave", title="Partner wanted")
    watch = services.create_watch(identity=scout, location="hiking")
    assert watch.auto_score  # on by default
    with django_capture_on_commit_callbacks():
        services.run_watch(watch)
    jobs = list(Job.objects.filter(job_type="agent.lead_scoring").order_by("pk"))
    assert len(jobs) == 2
    assert {j.queue_name for j in jobs} == {"agent-background"}
    # Later than a click, and spaced out so a click is never stuck behind the batch.
    assert jobs[0].next_run_at is not None and jobs[1].next_run_at > jobs[0].next_run_at
    assert {j.dedupe_key for j in jobs} == {f"agents:score:{pk}:auto" for pk in LeadPost.objects.values_list("pk", flat=True)}


def test_the_queued_score_scores_the_lead_and_the_list_shows_its_top_reason(fake_reddit, scout, fake_llm,
                                                                            auth_client):
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    services.run_watch(services.create_watch(identity=scout, location="hiking"))
    job = Job.objects.get(job_type="agent.lead_scoring")
    fake_llm.reply_json({"score": 88, "reasons": ["Looking for exactly this", "Nearby"]})
    lead_scoring(*job.payload_json["args"])
    page = auth_client.get(reverse("leads:list")).content.decode()
    assert ">88<" in page and "Looking for exactly this" in page


def test_no_background_scores_without_a_model_or_when_the_watch_says_no(fake_reddit, scout, settings):
    settings.INFERENCE_URL = ""
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    services.run_watch(services.create_watch(identity=scout, location="hiking"))
    assert not Job.objects.filter(job_type="agent.lead_scoring").exists()


def test_a_watch_with_auto_score_off_queues_nothing(fake_reddit, scout, fake_llm):
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    services.run_watch(services.create_watch(identity=scout, location="hiking", auto_score=False))
    assert not Job.objects.filter(job_type="agent.lead_scoring").exists()


def test_leads_already_scored_or_seen_before_are_not_scored_again(fake_reddit, scout, fake_llm):
    fake_reddit.add_post("hiking", "carol", title="Buddy wanted")
    watch = services.create_watch(identity=scout, location="hiking")
    services.run_watch(watch)
    Watch.objects.filter(pk=watch.pk).update(next_run_at=None)
    services.run_watch(watch)  # the same post again: no new hit
    assert Job.objects.filter(job_type="agent.lead_scoring").count() == 1


def test_the_watch_form_toggles_auto_scoring(scout, auth_client):
    watch = services.create_watch(identity=scout, location="hiking")
    response = auth_client.post(reverse("leads:watch_edit", args=[watch.pk]), {
        "identity": scout.pk, "location": "hiking", "query": "", "sort": "new", "interval_minutes": 60,
        "limit": 100, "enabled": "on"})
    assert response.status_code == 302
    watch.refresh_from_db()
    assert watch.auto_score is False
    page = auth_client.get(reverse("leads:watch_edit", args=[watch.pk])).content.decode()
    assert "Score new leads automatically" in page
