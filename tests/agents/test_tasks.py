import pytest

from agents.models import Draft, LLMCall, ProfileSnapshot
from agents.tasks import draft_intro, lead_scoring, profile_summary
from leads.models import LeadPost
from rediska.llm import LLMTransportError, LLMValidationError
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


def _run(agent):
    """Start each agent through its task on fresh inputs; returns (task call, what it would write)."""
    if agent == "profile_summary":
        account = ExternalAccountFactory()
        ProfileItemFactory(account=account)
        return (lambda: profile_summary(account.pk)), (lambda: ProfileSnapshot.objects.exists())
    if agent == "lead_scoring":
        lead = LeadPostFactory()
        return (lambda: lead_scoring(lead.pk)), (lambda: LeadPost.objects.filter(score__isnull=False).exists())
    lead, identity = LeadPostFactory(), IdentityFactory()
    return (lambda: draft_intro(lead_post_id=lead.pk, identity_id=identity.pk)), (lambda: Draft.objects.exists())


@pytest.mark.parametrize("agent", ["profile_summary", "lead_scoring", "draft_intro"])
def test_each_agent_fails_its_job_on_invalid_json_and_writes_nothing(fake_llm, agent):
    run, wrote = _run(agent)
    fake_llm.reply_text("Sure! {not json")
    fake_llm.reply_text("```json\n{\"still\": \"wrong\"}\n```")

    with pytest.raises(LLMValidationError):
        run()

    job = Job.objects.get(job_type=f"agent.{agent}")
    assert job.status == "failed" and "expected format" in job.last_error
    assert not wrote()
    assert [c.status for c in job.llm_calls.order_by("id")] == ["invalid", "invalid"]


@pytest.mark.parametrize("agent", ["profile_summary", "lead_scoring", "draft_intro"])
def test_each_agent_retries_its_job_later_when_the_model_times_out(fake_llm, settings, agent):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    settings.LLM_MAX_RETRIES = 0
    run, wrote = _run(agent)
    fake_llm.reply_slow(3)

    with pytest.raises(LLMTransportError):
        run()

    job = Job.objects.get(job_type=f"agent.{agent}")
    assert job.status == "retrying" and "did not answer within 0.3 s" in job.last_error
    assert not wrote()
