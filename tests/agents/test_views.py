import re

import pytest
from django.urls import reverse

from agents import services
from agents.models import LLMCall
from agents.tasks import draft_intro, lead_scoring, profile_summary
from identities.models import DoNotContact
from inbox.forms import ReplyForm
from inbox.models import Message
from rediska.models import Job
from tests.factories import (
    ConversationFactory,
    ExternalAccountFactory,
    IdentityFactory,
    LeadPostFactory,
    MessageFactory,
    ProfileItemFactory,
    ProfileSnapshotFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>alert('x')</script>"


@pytest.fixture
def no_model(settings):
    settings.INFERENCE_URL = ""


# --- account panel -----------------------------------------------------------------


def test_account_panel_is_a_fragment_for_htmx_and_a_page_otherwise(auth_client, fake_llm):
    account = ExternalAccountFactory()
    url = reverse("agents:account_panel", args=[account.pk])

    fragment = auth_client.get(url, **HX).content.decode()
    page = auth_client.get(url).content.decode()

    assert fragment.lstrip().startswith('<section class="panel agent-panel" id="agent-account-')
    assert "<html" not in fragment
    assert "<html" in page and f'id="agent-account-{account.pk}"' in page
    assert "Analyse profile" in fragment and "No summary yet." in fragment


def test_account_panel_shows_the_latest_snapshot_escaped_with_links_to_its_calls(auth_client, fake_llm):
    account = ExternalAccountFactory(analysis_state="analyzed")
    ProfileItemFactory(account=account)
    fake_llm.reply_json({
        "summary": f"Summary {XSS}",
        "signals": {"interests": [f"<b>hiking</b>"], "needs": [], "location_hints": [], "activity_pattern": "",
                    "languages": []},
        "risk_flags": [{"flag": "spam", "evidence": "<img src=x onerror=alert(1)>"}],
    })
    snapshot = services.summarize_profile(account)

    html = auth_client.get(reverse("agents:account_panel", args=[account.pk]), **HX).content.decode()

    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and XSS not in html
    assert "&lt;b&gt;hiking&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f"{reverse('agents:calls')}?snapshot={snapshot.pk}" in html
    assert reverse("agents:snapshot_detail", args=[snapshot.pk]) in html
    assert "Analyse again" in html


def test_without_a_model_the_account_panel_explains_and_offers_no_button(auth_client, no_model):
    account = ExternalAccountFactory()

    html = auth_client.get(reverse("agents:account_panel", args=[account.pk]), **HX).content.decode()

    assert "No language model is configured" in html
    assert "Analyse profile" not in html


def test_analyse_queues_a_job_and_the_panel_polls_it(auth_client, fake_llm):
    account = ExternalAccountFactory()

    response = auth_client.post(reverse("agents:analyse_profile", args=[account.pk]), **HX)

    job = Job.objects.get(job_type="agent.profile_summary")
    assert job.payload_json["args"] == [account.pk]
    html = response.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert reverse("job_detail", args=[job.pk]) in html


def test_analyse_without_htmx_redirects_back_to_the_panel(auth_client, fake_llm):
    account = ExternalAccountFactory()

    response = auth_client.post(reverse("agents:analyse_profile", args=[account.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("agents:account_panel", args=[account.pk])


def test_analyse_without_a_model_answers_409_with_the_reason(auth_client, no_model):
    account = ExternalAccountFactory()

    response = auth_client.post(reverse("agents:analyse_profile", args=[account.pk]))

    assert response.status_code == 409
    assert "No language model is configured" in response.content.decode()
    assert not Job.objects.exists()


def test_a_failed_analysis_shows_its_reason_on_the_panel(auth_client, fake_llm):
    account = ExternalAccountFactory()
    services.request_profile_summary(account)
    job = Job.objects.get()
    with pytest.raises(Exception):
        profile_summary(account.pk, job_id=job.pk)

    html = auth_client.get(reverse("agents:account_panel", args=[account.pk]), **HX).content.decode()

    assert "no public posts or comments stored yet" in html
    assert "badge-failed" in html


def test_panels_answer_404_for_unknown_ids(auth_client, fake_llm):
    for name in ("account_panel", "lead_panel", "conversation_panel", "draft_detail", "snapshot_detail",
                 "call_detail"):
        assert auth_client.get(reverse(f"agents:{name}", args=[999999])).status_code == 404


def test_panels_require_login(client):
    response = client.get(reverse("agents:account_panel", args=[1]))

    assert response.status_code == 302 and "login" in response["Location"]


# --- lead panel --------------------------------------------------------------------------


def test_lead_panel_shows_score_and_reasons_escaped(auth_client, fake_llm):
    lead = LeadPostFactory()
    fake_llm.reply_json({"score": 73, "reasons": [f"Wants company {XSS}"]})
    services.score_lead(lead)

    html = auth_client.get(reverse("agents:lead_panel", args=[lead.pk]), **HX).content.decode()

    assert ">73<" in html
    assert "Wants company &lt;script&gt;" in html and XSS not in html
    assert reverse("agents:call_detail", args=[LLMCall.objects.get().pk]) in html


def test_score_button_queues_a_scoring_job(auth_client, fake_llm):
    lead = LeadPostFactory()

    auth_client.post(reverse("agents:score_lead", args=[lead.pk]), **HX)

    assert Job.objects.get(job_type="agent.lead_scoring").payload_json["args"] == [lead.pk]


def test_draft_intro_queues_a_job_for_the_chosen_identity(auth_client, fake_llm, identity):
    lead = LeadPostFactory()

    response = auth_client.post(reverse("agents:draft_intro", args=[lead.pk]), {"identity": identity.pk}, **HX)

    job = Job.objects.get(job_type="agent.draft_intro")
    assert job.payload_json["kwargs"] == {"lead_post_id": lead.pk, "identity_id": identity.pk}
    assert response.status_code == 200


@pytest.mark.parametrize("choice", ["not-a-number", "999999", "inactive"])
def test_draft_intro_refuses_an_identity_that_cannot_write(auth_client, fake_llm, identity, choice):
    lead = LeadPostFactory()
    if choice == "inactive":
        choice = IdentityFactory(is_active=False).pk

    response = auth_client.post(reverse("agents:draft_intro", args=[lead.pk]), {"identity": choice})

    assert response.status_code == 400
    assert "Choose one of your active identities on this network." in response.content.decode()
    assert not Job.objects.exists()


def test_lead_panel_refuses_intros_to_someone_on_the_do_not_contact_list(auth_client, fake_llm, identity):
    lead = LeadPostFactory()
    DoNotContact.objects.create(provider_id=lead.provider_id,
                                external_username=lead.author_account.external_username.upper())

    html = auth_client.get(reverse("agents:lead_panel", args=[lead.pk]), **HX).content.decode()
    response = auth_client.post(reverse("agents:draft_intro", args=[lead.pk]), {"identity": identity.pk})

    assert "is on the do-not-contact list" in html and "Draft intro</button>" not in html
    assert response.status_code == 409
    assert "do-not-contact" in response.content.decode()
    assert not Job.objects.filter(job_type="agent.draft_intro").exists()


def test_lead_panel_offers_no_intro_to_a_deleted_account(auth_client, fake_llm, identity):
    lead = LeadPostFactory(author_account=ExternalAccountFactory(remote_status="deleted"))

    html = auth_client.get(reverse("agents:lead_panel", args=[lead.pk]), **HX).content.decode()
    response = auth_client.post(reverse("agents:draft_intro", args=[lead.pk]), {"identity": identity.pk})

    assert "account is deleted" in html and "Draft intro</button>" not in html
    assert response.status_code == 409 and "account is deleted" in response.content.decode()


def test_lead_panel_lists_drafts_escaped_with_a_link_to_edit(auth_client, fake_llm, identity):
    lead = LeadPostFactory()
    fake_llm.reply_json({"subject": "Hi", "body": f"Hello {XSS}"})
    draft = services.draft_intro(lead, identity)

    html = auth_client.get(reverse("agents:lead_panel", args=[lead.pk]), **HX).content.decode()

    assert "Hello &lt;script&gt;" in html and XSS not in html
    assert reverse("agents:draft_detail", args=[draft.pk]) in html


def test_without_a_model_the_lead_panel_explains(auth_client, no_model):
    lead = LeadPostFactory()

    html = auth_client.get(reverse("agents:lead_panel", args=[lead.pk]), **HX).content.decode()

    assert "No language model is configured" in html and "Score</button>" not in html


# --- conversation panel ---------------------------------------------------------------------


def test_suggest_reply_queues_a_job_and_polls_for_it(auth_client, fake_llm):
    conversation = ConversationFactory()

    html = auth_client.post(reverse("agents:suggest_reply", args=[conversation.pk]), **HX).content.decode()

    job = Job.objects.get(job_type="agent.draft_intro")
    assert job.payload_json["kwargs"] == {"conversation_id": conversation.pk}
    assert f"?after={job.pk}" in html and 'hx-trigger="every 2s"' in html


def test_the_poll_that_sees_the_job_done_fills_the_reply_box_out_of_band(auth_client, fake_llm):
    conversation = MessageFactory().conversation
    services.request_reply_draft(conversation)
    job = Job.objects.get()
    fake_llm.reply_json({"subject": "", "body": f"See you Saturday {XSS}"})
    draft_intro(conversation_id=conversation.pk, job_id=job.pk)

    url = reverse("agents:conversation_panel", args=[conversation.pk])
    html = auth_client.get(f"{url}?after={job.pk}", **HX).content.decode()

    # The same element the inbox's reply form renders, so the swap keeps its behaviour.
    inbox_textarea = str(ReplyForm()["body"]).split(">", 1)[0]
    assert inbox_textarea + ' hx-swap-oob="true">' in html
    assert "See you Saturday &lt;script&gt;" in html and XSS not in html
    assert 'hx-trigger="every 2s"' not in html
    plain = auth_client.get(url, **HX).content.decode()
    assert 'id="reply-body"' not in plain and "See you Saturday" in plain


def test_use_in_reply_box_link_fills_it_and_falls_back_to_the_draft_page(auth_client, fake_llm):
    conversation = MessageFactory().conversation
    draft = services.draft_reply(conversation)
    url = reverse("agents:conversation_panel", args=[conversation.pk])

    panel = auth_client.get(url, **HX).content.decode()
    filled = auth_client.get(f"{url}?fill={draft.pk}", **HX).content.decode()

    assert f'href="{reverse("agents:draft_detail", args=[draft.pk])}"' in panel
    assert f'hx-get="{url}?fill={draft.pk}"' in panel
    assert 'id="reply-body"' in filled


def test_fill_and_after_that_are_not_ids_are_ignored(auth_client):
    conversation = ConversationFactory()
    url = reverse("agents:conversation_panel", args=[conversation.pk])

    for query in ("fill=%C2%B2", "after=%C2%B2", "fill=abc", "after=-1"):  # "²".isdigit() is true
        response = auth_client.get(f"{url}?{query}", **HX)
        assert response.status_code == 200 and 'id="reply-body"' not in response.content.decode()


def test_suggest_reply_to_someone_on_the_do_not_contact_list_is_refused(auth_client, fake_llm):
    conversation = ConversationFactory()
    DoNotContact.objects.create(provider_id=conversation.provider_id,
                                external_username=conversation.counterpart_account.external_username)

    response = auth_client.post(reverse("agents:suggest_reply", args=[conversation.pk]))

    assert response.status_code == 409 and "do-not-contact" in response.content.decode()
    assert not Job.objects.exists()


# --- drafts ---------------------------------------------------------------------------------------


@pytest.fixture
def draft(fake_llm, identity):
    fake_llm.reply_json({"subject": "Hiking", "body": f"Hi there {XSS}"})
    return services.draft_intro(LeadPostFactory(), identity)


def test_draft_page_shows_the_draft_in_an_editable_box_escaped(auth_client, draft):
    html = auth_client.get(reverse("agents:draft_detail", args=[draft.pk])).content.decode()

    assert '<textarea name="body"' in html and "Hi there &lt;script&gt;" in html and XSS not in html
    assert 'for="draft-body"' in html
    assert "Nothing is sent until you press Send." in html


def test_draft_page_links_to_the_lead_it_was_written_for(auth_client, draft):
    html = auth_client.get(reverse("agents:draft_detail", args=[draft.pk])).content.decode()

    assert f'For the post <a href="{reverse("leads:lead_detail", args=[draft.lead_post_id])}">' in html


def test_saving_an_edited_draft_keeps_the_new_text(auth_client, draft):
    response = auth_client.post(
        reverse("agents:draft_detail", args=[draft.pk]), {"subject": "Hello", "body": "My words", "action": "save"}
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.subject, draft.body_text, draft.status) == ("Hello", "My words", "draft")


def test_an_empty_draft_is_refused_with_a_form_error(auth_client, draft):
    response = auth_client.post(reverse("agents:draft_detail", args=[draft.pk]), {"body": "  ", "action": "send"})

    assert response.status_code == 400
    assert "The message is empty." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.body_text.startswith("Hi there")


def test_discarding_needs_a_reason(auth_client, draft):
    url = reverse("agents:draft_discard", args=[draft.pk])

    refused = auth_client.post(url, {"reason": ""})
    accepted = auth_client.post(url, {"reason": "Wrong tone"})

    assert refused.status_code == 400 and "Say why you discard this draft." in refused.content.decode()
    assert accepted.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.discard_reason) == ("discarded", "Wrong tone")
    html = auth_client.get(reverse("agents:draft_detail", args=[draft.pk])).content.decode()
    assert "Discarded: Wrong tone" in html and "<textarea" not in html


def test_regenerate_discards_and_queues_a_new_draft(auth_client, draft):
    response = auth_client.post(reverse("agents:draft_regenerate", args=[draft.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("agents:lead_panel", args=[draft.lead_post_id])
    draft.refresh_from_db()
    assert draft.status == "discarded"
    assert Job.objects.filter(job_type="agent.draft_intro").count() == 1


def test_a_discarded_draft_cannot_be_regenerated_or_discarded_again(auth_client, draft):
    services.discard_draft(draft, reason="no")

    regen = auth_client.post(reverse("agents:draft_regenerate", args=[draft.pk]))
    again = auth_client.post(reverse("agents:draft_discard", args=[draft.pk]), {"reason": "again"})

    assert regen.status_code == 409 and again.status_code == 409
    assert "Only an unsent draft" in again.content.decode()


# --- snapshots and recorded calls ---------------------------------------------------------------------


def test_call_detail_shows_the_full_prompt_and_response_escaped(auth_client, fake_llm):
    account = ExternalAccountFactory()
    ProfileItemFactory(account=account, text_content=f"My post {XSS}")
    fake_llm.reply_text(f"not json {XSS}")
    fake_llm.reply_text("still not json")
    with pytest.raises(Exception):
        profile_summary(account.pk)
    first = LLMCall.objects.order_by("id").first()

    html = auth_client.get(reverse("agents:call_detail", args=[first.pk])).content.decode()

    assert "My post &lt;script&gt;" in html and "not json &lt;script&gt;" in html and XSS not in html
    assert "Invalid reply" in html
    assert reverse("job_detail", args=[first.job_id]) in html


def test_calls_list_filters_by_job_in_a_bounded_number_of_queries(auth_client, fake_llm, django_assert_max_num_queries):
    accounts = [ExternalAccountFactory() for _ in range(3)]
    for account in accounts:
        ProfileItemFactory(account=account)
        profile_summary(account.pk)
    job = Job.objects.filter(job_type="agent.profile_summary").order_by("id").first()

    with django_assert_max_num_queries(8):
        everything = auth_client.get(reverse("agents:calls")).content.decode()
    one_job = auth_client.get(reverse("agents:calls"), {"job": job.pk}).content.decode()

    assert len(re.findall(r'href="/agents/calls/\d+/"', everything)) == 3
    assert len(re.findall(r'href="/agents/calls/\d+/"', one_job)) == 1


def test_calls_list_with_a_bad_filter_says_so(auth_client, fake_llm):
    response = auth_client.get(reverse("agents:calls"), {"job": "abc"})

    assert response.status_code == 200
    assert "Filters must be whole numbers" in response.content.decode()


def test_snapshot_page_lists_the_calls_that_produced_it(auth_client, fake_llm):
    account = ExternalAccountFactory()
    ProfileItemFactory(account=account)
    fake_llm.reply_text("nope")
    profile_summary(account.pk)
    snapshot = account.profile_snapshots.get()
    calls = list(LLMCall.objects.order_by("id"))

    html = auth_client.get(reverse("agents:snapshot_detail", args=[snapshot.pk])).content.decode()
    by_snapshot = auth_client.get(reverse("agents:calls"), {"snapshot": snapshot.pk}).content.decode()

    for call in calls:
        assert reverse("agents:call_detail", args=[call.pk]) in html
        assert reverse("agents:call_detail", args=[call.pk]) in by_snapshot
    assert "prompt" in html.lower() and snapshot.model_info_json["prompt_version"] in html
    assert "temperature 0.2, at most 1500 tokens out" in html


def test_a_snapshot_made_elsewhere_without_model_info_still_renders(auth_client, db):
    snapshot = ProfileSnapshotFactory(model_info_json=None)

    response = auth_client.get(reverse("agents:snapshot_detail", args=[snapshot.pk]))

    assert response.status_code == 200 and "No recorded calls." in response.content.decode()


def test_sending_an_intro_without_a_subject_is_refused_with_a_form_error(auth_client, draft):
    response = auth_client.post(
        reverse("agents:draft_detail", args=[draft.pk]), {"subject": "", "body": "Hi", "action": "send"}
    )

    assert response.status_code == 400
    assert "A first message needs a subject." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"


# --- sending: only the user's click, only through the inbox's send path ----------------------------


@pytest.fixture
def carol_intro(fake_llm, fake_reddit, alice):
    fake_reddit.add_user("carol")
    lead = LeadPostFactory(author_account=ExternalAccountFactory(external_username="carol"))
    fake_llm.reply_json({"subject": "Hiking", "body": "Hi Carol, fancy a walk?"})
    return services.draft_intro(lead, alice)


def test_drafting_sends_nothing(carol_intro, fake_reddit):
    assert fake_reddit.sent == []
    assert not Message.objects.exists()


def test_send_click_sends_the_edited_intro_once_as_the_identity(auth_client, carol_intro, fake_reddit):
    url = reverse("agents:draft_detail", args=[carol_intro.pk])
    form = {"subject": "Walk?", "body": "Hi Carol, my own words.", "action": "send"}

    first = auth_client.post(url, form)
    again = auth_client.post(url, form)

    assert first.status_code == 302
    assert len(fake_reddit.sent) == 1
    sent = fake_reddit.sent[0]
    assert (sent["author"], sent["dest"], sent["body"]) == ("alice", "carol", "Hi Carol, my own words.")
    carol_intro.refresh_from_db()
    assert carol_intro.status == "sent" and carol_intro.body_text == "Hi Carol, my own words."
    assert carol_intro.sent_message.body_text == "Hi Carol, my own words."
    assert again.status_code == 409 and "already sent" in again.content.decode()


def test_a_draft_for_someone_put_on_do_not_contact_after_drafting_cannot_be_sent(
    auth_client, carol_intro, fake_reddit
):
    DoNotContact.objects.create(provider_id="reddit", external_username="CAROL")
    url = reverse("agents:draft_detail", args=[carol_intro.pk])

    page = auth_client.get(url).content.decode()
    response = auth_client.post(url, {"subject": "Walk?", "body": "Hi", "action": "send"})

    assert "cannot be sent" in page
    assert response.status_code == 409 and "do-not-contact" in response.content.decode()
    assert fake_reddit.sent == []
    carol_intro.refresh_from_db()
    assert carol_intro.status == "draft"


def test_a_provider_refusal_is_shown_and_the_draft_kept(auth_client, carol_intro, fake_reddit):
    fake_reddit.add_user("carol", accepts_messages=False)
    url = reverse("agents:draft_detail", args=[carol_intro.pk])

    response = auth_client.post(url, {"subject": "Walk?", "body": "My words", "action": "send"})

    assert response.status_code == 409
    html = response.content.decode()
    assert "My words" in html  # the typed text is kept in the box
    carol_intro.refresh_from_db()
    assert carol_intro.status == "draft"


def test_a_reply_draft_page_has_no_subject_and_links_its_conversation(auth_client, fake_llm):
    conversation = MessageFactory().conversation
    draft = services.draft_reply(conversation)

    html = auth_client.get(reverse("agents:draft_detail", args=[draft.pk])).content.decode()

    assert 'name="subject"' not in html and '<textarea name="body"' in html
    assert reverse("agents:conversation_panel", args=[conversation.pk]) in html


# --- job page hook ---------------------------------------------------------------------------


def test_the_job_page_lists_the_model_calls_of_the_job_and_links_the_snapshot_it_made(auth_client, fake_llm):
    account = ExternalAccountFactory()
    ProfileItemFactory(account=account)
    fake_llm.reply_text("nope")
    profile_summary(account.pk)
    job = Job.objects.get(job_type="agent.profile_summary")
    snapshot = account.profile_snapshots.get()

    html = auth_client.get(reverse("job_detail", args=[job.pk])).content.decode()

    for call in LLMCall.objects.all():
        assert reverse("agents:call_detail", args=[call.pk]) in html
    assert reverse("agents:snapshot_detail", args=[snapshot.pk]) in html


def test_a_failed_agent_job_page_shows_its_invalid_calls_with_the_raw_reply_one_click_away(auth_client, fake_llm):
    lead = LeadPostFactory()
    fake_llm.reply_text("Sure! <b>not json</b>")
    fake_llm.reply_text("still not json")
    with pytest.raises(Exception):
        lead_scoring(lead.pk)
    job = Job.objects.get(job_type="agent.lead_scoring")

    html = auth_client.get(reverse("job_detail", args=[job.pk]), **HX).content.decode()

    assert "Invalid reply" in html and "raw reply is kept" in html
    last = LLMCall.objects.order_by("id").last()
    assert reverse("agents:call_detail", args=[last.pk]) in html
    detail = auth_client.get(reverse("agents:call_detail", args=[last.pk])).content.decode()
    assert "still not json" in detail


def test_a_job_without_model_calls_shows_no_model_call_section(auth_client, db):
    job = Job.objects.create(job_type="ingest.sync_delta", status="done", payload_json={"args": [], "kwargs": {}})

    html = auth_client.get(reverse("job_detail", args=[job.pk])).content.decode()

    assert "<h2>Model calls</h2>" not in html


def test_recorded_model_calls_are_reachable_from_the_main_navigation(auth_client, db):
    html = auth_client.get(reverse("jobs")).content.decode()

    assert f'href="{reverse("agents:calls")}"' in html


# --- pacing and saved replies on the draft page --------------------------------------------


def test_the_draft_page_shows_what_is_left_today_and_offers_the_saved_replies(auth_client, carol_intro, settings):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 2
    page = auth_client.get(reverse("agents:draft_detail", args=[carol_intro.pk])).content.decode()
    assert "2 of 2 first messages to new people left today" in page
    assert f"{reverse('inbox:saved_reply_picker')}?account={carol_intro.account_id}" in page
    assert f"post={carol_intro.lead_post_id}" in page and "target=draft-body" in page


def test_a_draft_over_the_daily_cap_is_not_sent_and_says_why(auth_client, carol_intro, fake_reddit, settings):
    settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = 0
    url = reverse("agents:draft_detail", args=[carol_intro.pk])
    assert "Sending waits" not in auth_client.get(url).content.decode()  # the draft page's own words
    response = auth_client.post(url, {"subject": "Walk?", "body": "Hi", "action": "send"})
    assert response.status_code == 409 and "Replies in existing conversations are not capped" in \
        response.content.decode()
    assert fake_reddit.sent == []


def test_a_cooling_down_identity_shows_it_on_the_draft_page(auth_client, carol_intro):
    from datetime import UTC, datetime, timedelta

    from identities.models import Identity

    Identity.objects.filter(pk=carol_intro.identity_id).update(
        send_cooldown_until=datetime.now(UTC) + timedelta(minutes=7), send_cooldown_reason="Reddit says: slow down")
    page = auth_client.get(reverse("agents:draft_detail", args=[carol_intro.pk])).content.decode()
    assert "nothing can be sent until" in page and "slow down" in page


def test_a_draft_that_still_has_a_placeholder_is_not_sent(auth_client, carol_intro, fake_reddit):
    url = reverse("agents:draft_detail", args=[carol_intro.pk])
    response = auth_client.post(url, {"subject": "Walk?", "body": "Hi {name}!", "action": "send"})
    assert response.status_code == 400 and "still contains {name}" in response.content.decode()
    assert fake_reddit.sent == []
    saved = auth_client.post(url, {"subject": "Walk?", "body": "Hi {name}!", "action": "save"})
    assert saved.status_code == 302  # saving keeps it for later
