"""The draft page of an identity that cannot send through the provider: open its compose page, then "I sent it"."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from agents import services
from agents.models import Draft
from identities.services import add_do_not_contact, connect_feed_token
from inbox.models import Message
from tests.factories import LeadPostFactory, ProviderFactory


@pytest.fixture
def feed_identity(fake_feeds, db):
    ProviderFactory()
    token = fake_feeds.issue_token("scout")
    return connect_feed_token(provider_id="reddit", text=fake_feeds.feed_url("scout", token))


@pytest.fixture
def draft(fake_llm, feed_identity):
    fake_llm.reply_json({"subject": "Hiking", "body": "Hi there, fancy a hike?"})
    return services.draft_intro(LeadPostFactory(), feed_identity)


def post(client, draft, action, **fields):
    data = {"subject": "Hiking", "body": "Hi there, fancy a hike?", "action": action, **fields}
    return client.post(reverse("agents:draft_detail", args=[draft.pk]), data)


def test_the_draft_page_offers_the_providers_compose_page_instead_of_send(auth_client, draft):
    html = auth_client.get(reverse("agents:draft_detail", args=[draft.pk])).content.decode()
    assert 'value="open_on_site"' in html and 'value="send"' not in html
    assert "Sending through Rediska needs a Reddit API app" in html


def test_open_gives_the_prefilled_compose_url_and_i_sent_it_records_once(auth_client, draft, fake_reddit):
    answer = post(auth_client, draft, "open_on_site", body="Hi there, fancy a hike on Sunday?")
    html = answer.content.decode()
    url = re.search(r'id="open-on-site" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(url).query)
    assert query == {"to": [draft.account.external_username], "subject": ["Hiking"],
                     "message": ["Hi there, fancy a hike on Sunday?"]}
    draft.refresh_from_db()
    assert draft.status == Draft.Status.DRAFT and draft.body_text == "Hi there, fancy a hike on Sunday?"
    assert not Message.objects.exists()

    first = post(auth_client, draft, "sent_by_hand", body="Hi there, fancy a hike on Sunday?")
    second = post(auth_client, draft, "sent_by_hand", body="Hi there, fancy a hike on Sunday?")
    assert first.status_code == second.status_code == 302
    draft.refresh_from_db()
    message = Message.objects.get()
    assert draft.status == Draft.Status.SENT and draft.sent_message_id == message.pk
    assert message.direction == "out" and message.conversation.counterpart_account_id == draft.account_id
    assert message.conversation.counterpart_account.first_contacted_at is not None


def test_no_compose_link_for_someone_on_the_do_not_contact_list(auth_client, draft):
    add_do_not_contact("reddit", draft.account.external_username)
    answer = post(auth_client, draft, "open_on_site")
    assert answer.status_code == 409 and "do-not-contact" in answer.content.decode()
    assert "open-on-site" not in answer.content.decode()
