import pytest

from agents.models import Draft, LLMCall, ProfileSnapshot
from agents.tasks import draft_intro, lead_scoring, profile_summary
from rediska.llm import LLMValidationError
from rediska.models import Job
from tests.factories import ExternalAccountFactory, IdentityFactory, LeadPostFactory, MessageFactory, ProfileItemFactory

pytestmark = pytest.mark.django_db


def test_profile_summary_task_records_its_calls_on_the_job(fake_llm):
    account = ExternalAccountFactory()
    ProfileItemFactory(account=account)

    result = profile_summary(account.pk)

    job = Job.objects.get(job_type="agent.profile_summary")
    snapshot = ProfileSnapshot.objects.get()
    assert job.status == "done"
    assert job.result_json == {"snapshot_id": snapshot.pk, "analysis_state": "analyzed"}
    assert result["snapshot_id"] == snapshot.pk
    assert list(job.llm_calls.values_list("operation", flat=True)) == ["profile_summary"]
    assert snapshot.model_info_json["job_id"] == job.pk


def test_profile_summary_task_fails_the_job_with_a_clear_reason_for_an_empty_profile(fake_llm):
    account = ExternalAccountFactory()

    with pytest.raises(Exception):
        profile_summary(account.pk)

    job = Job.objects.get(job_type="agent.profile_summary")
    assert job.status == "failed"
    assert "no public posts or comments stored yet" in job.last_error
    assert not ProfileSnapshot.objects.exists()


def test_invalid_model_output_fails_the_job_and_the_raw_reply_stays_on_its_calls(fake_llm):
    account = ExternalAccountFactory()
    ProfileItemFactory(account=account)
    fake_llm.reply_text("{oops")
    fake_llm.reply_text("{still oops")

    with pytest.raises(LLMValidationError):
        profile_summary(account.pk)

    job = Job.objects.get(job_type="agent.profile_summary")
    assert job.status == "failed"
    assert "did not match the expected format" in job.last_error
    assert list(job.llm_calls.order_by("id").values_list("response_text", flat=True)) == ["{oops", "{still oops"]


def test_a_server_error_schedules_a_retry_of_the_job(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    lead = LeadPostFactory()
    fake_llm.reply_error(500)

    with pytest.raises(Exception):
        lead_scoring(lead.pk)

    job = Job.objects.get(job_type="agent.lead_scoring")
    assert job.status == "retrying" and "HTTP 500" in job.last_error
    lead.refresh_from_db()
    assert lead.score is None


def test_lead_scoring_task_scores_the_lead(fake_llm):
    lead = LeadPostFactory()
    fake_llm.reply_json({"score": 55, "reasons": ["maybe"]})

    assert lead_scoring(lead.pk) == {"lead_post_id": lead.pk, "score": 55}
    lead.refresh_from_db()
    assert lead.score == 55


def test_draft_intro_task_writes_an_intro_or_a_reply_suggestion(fake_llm):
    lead = LeadPostFactory()
    identity = IdentityFactory()
    conversation = MessageFactory().conversation

    intro = draft_intro(lead_post_id=lead.pk, identity_id=identity.pk)
    reply = draft_intro(conversation_id=conversation.pk)

    assert Draft.objects.get(pk=intro["draft_id"]).kind == "intro"
    assert Draft.objects.get(pk=reply["draft_id"]).kind == "reply"
    assert LLMCall.objects.filter(job__job_type="agent.draft_intro").count() == 2
