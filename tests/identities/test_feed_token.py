"""Connecting an identity with the personal feed token; capabilities; where sessions come from."""

import logging

import pytest
from django.core.management import call_command
from django.urls import reverse

from identities import services
from identities.models import FEED_TOKEN, REFRESH_TOKEN, Identity, ProviderCredential
from identities.services import IdentityError, capabilities_for, connect_feed_token, session_for
from rediska.models import AuditLog, Job
from rediska.providers.base import RemoteAccount
from rediska.providers.errors import AuthError
from rediska.providers.reddit.feeds import FeedSession
from tests.factories import IdentityFactory, ProviderFactory


@pytest.fixture
def token(fake_feeds, db):
    ProviderFactory()
    return fake_feeds.issue_token("alice")


def link(fake_feeds, token, user="alice"):
    return fake_feeds.feed_url(user, token)


def everything_said(caplog) -> str:
    rows = AuditLog.objects.values_list("request_json", "response_json", "error_detail")
    jobs = Job.objects.values_list("last_error", "result_json")
    return " ".join(map(str, [*rows, *jobs])) + caplog.text


# --- services ------------------------------------------------------------------------------
def test_a_feed_token_connects_a_new_identity_stored_encrypted(fake_feeds, token, caplog):
    caplog.set_level(logging.DEBUG)
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token), display_name="Al")
    assert (identity.external_username, identity.display_name, identity.is_default) == ("alice", "Al", True)
    credential = ProviderCredential.objects.get(identity=identity)
    assert credential.credential_type == FEED_TOKEN and token not in credential.secret_encrypted
    assert [r.path for r in fake_feeds.requests] == ["/message/inbox/.rss"]  # checked by one read
    assert AuditLog.objects.get(action_type="identity.connect").request_json["connection"] == FEED_TOKEN
    assert token not in everything_said(caplog)
    assert services.masked_feed_token(identity) == "••••••••" + token[-4:]


def test_the_bare_token_needs_the_username(fake_feeds, token):
    identity = connect_feed_token(provider_id="reddit", text=token, username="alice")
    assert identity.external_username == "alice"


@pytest.mark.parametrize("make, says", [
    (lambda f, t: ("https://example.org/message/inbox/.rss?feed=" + t + "&user=alice", None), "not a Reddit feed"),
    (lambda f, t: (t, "bob"), "refused the feed token"),
    (lambda f, t: (f.feed_url("bob", t), None), "refused the feed token"),
])
def test_bad_tokens_are_refused_in_plain_words_and_store_nothing(fake_feeds, token, make, says, caplog):
    fake_feeds.issue_token("bob")
    text, user = make(fake_feeds, token)
    with pytest.raises(IdentityError, match=says) as caught:
        connect_feed_token(provider_id="reddit", text=text, username=user)
    assert token not in caught.value.user_message and token not in everything_said(caplog)
    assert not Identity.objects.exists() and not ProviderCredential.objects.exists()


def test_a_revoked_token_is_refused(fake_feeds, token):
    fake_feeds.change_token("alice")
    with pytest.raises(IdentityError, match="changed or revoked"):
        connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    assert not Identity.objects.exists()


def test_a_feed_answering_html_is_refused_clearly(fake_feeds, token):
    from rediska.providers.errors import ProviderError

    fake_feeds.inject(r"^/message/inbox", status=200, body=b"<html><body>Log in</body></html>")
    with pytest.raises(ProviderError, match="web page"):
        connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    assert not Identity.objects.exists()


def test_the_token_joins_an_existing_identity_of_the_same_account(fake_feeds, fake_reddit, token):
    oauth = services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("alice"),
                                      account=RemoteAccount(username="Alice"))
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    assert identity.pk == oauth.pk and Identity.objects.count() == 1
    assert services.connection_types(identity) == {REFRESH_TOKEN, FEED_TOKEN}


def test_replacing_checks_the_new_token_and_keeps_one_row(fake_feeds, token):
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    services.mark_needs_reconnect(identity, AuthError("refused"))
    new = fake_feeds.change_token("alice")
    connect_feed_token(provider_id="reddit", text=new, identity=identity)
    identity.refresh_from_db()
    assert not identity.needs_reconnect
    credential = ProviderCredential.objects.get(identity=identity)
    assert credential.rotated_at and services.masked_feed_token(identity).endswith(new[-4:])
    assert AuditLog.objects.filter(action_type="identity.replace_feed_token").count() == 1


def test_a_token_of_another_account_cannot_replace_this_identitys(fake_feeds, token):
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    bob = fake_feeds.issue_token("bob")
    with pytest.raises(IdentityError, match="belongs to u/bob"):
        connect_feed_token(provider_id="reddit", text=fake_feeds.feed_url("bob", bob), identity=identity)
    assert services.masked_feed_token(identity).endswith(token[-4:])


def test_removing_the_token_keeps_the_identity(fake_feeds, token):
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    assert services.remove_feed_token(identity) and not services.remove_feed_token(identity)
    assert Identity.objects.filter(pk=identity.pk, is_active=True).exists()
    assert not capabilities_for(identity).sync_received


def test_sessions_are_oauth_first_then_the_feed_token(fake_feeds, fake_reddit, token):
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    assert isinstance(session_for(identity)._inner, FeedSession)
    services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("alice"),
                              account=RemoteAccount(username="alice"), identity=identity)
    assert not isinstance(session_for(identity)._inner, FeedSession)
    with pytest.raises(AuthError, match="has no access to Reddit yet"):
        session_for(IdentityFactory())


def test_capabilities_follow_how_the_identity_is_connected(fake_feeds, fake_reddit, token):
    feed_only = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    caps = capabilities_for(feed_only)
    assert (caps.sync_received, caps.sync_sent, caps.send, caps.browse, caps.read_profiles) == \
        (True, False, False, True, True)
    assert "Open on Reddit to send" in caps.why_not("send") and "no feed of sent" in caps.why_not("sync_sent")
    archive_only = IdentityFactory()
    nothing = capabilities_for(archive_only)
    assert not any((nothing.sync_received, nothing.sync_sent, nothing.send, nothing.browse, nothing.read_profiles))
    assert "no connection" in nothing.why_not("browse")
    oauth = services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("bob"),
                                      account=RemoteAccount(username="bob"))
    assert capabilities_for(oauth).send and capabilities_for(oauth).sync_sent


def test_the_key_rotation_covers_feed_tokens(fake_feeds, token, settings):
    import io

    from rediska import crypto

    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    new_key = crypto.generate_key()
    out = io.StringIO()
    call_command("rotate_credentials_key", stdin=io.StringIO(crypto.format_key(new_key) + "\n"), stdout=out)
    assert "1 credential" in out.getvalue() and token not in out.getvalue()
    settings.CREDENTIALS_KEY = new_key
    assert services.masked_feed_token(Identity.objects.prefetch_related("credentials").get(pk=identity.pk)) \
        .endswith(token[-4:])
    assert isinstance(session_for(identity)._inner, FeedSession)


# --- pages ---------------------------------------------------------------------------------
def test_the_connect_page_offers_three_ways_in_with_where_to_find_each_value(auth_client, fake_feeds, token):
    html = auth_client.get(reverse("identities:new")).content.decode()
    assert "I have an API app" in html and "Use my feed token" in html and "Only import my data export" in html
    assert "reddit.com/prefs/feeds" in html and "reddit.com/settings/data-request" in html
    assert reverse("identities:connect_feed") in html


def test_the_connect_page_says_the_api_way_is_closed_without_an_app(auth_client, fake_feeds, token, settings):
    settings.PROVIDER_REDDIT_CLIENT_ID = ""
    html = auth_client.get(reverse("identities:new")).content.decode()
    assert "No API app is configured" in html and "Check and connect" in html


def test_connecting_with_a_pasted_link_goes_to_the_identity_page(auth_client, fake_feeds, token):
    answer = auth_client.post(reverse("identities:connect_feed"),
                              {"provider_id": "reddit", "feed_link": link(fake_feeds, token)})
    identity = Identity.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("identities:detail", args=[identity.pk])
    html = auth_client.get(answer["Location"]).content.decode()
    assert "••••••••" + token[-4:] in html and token not in html
    assert "Replace the feed token" in html and "Send from Rediska" in html
    assert "Open on Reddit to send" in html  # why sending works differently, in plain words


def test_a_refused_token_is_a_form_error_and_never_echoed(auth_client, fake_feeds, token):
    fake_feeds.change_token("alice")
    answer = auth_client.post(reverse("identities:connect_feed"),
                              {"provider_id": "reddit", "feed_link": link(fake_feeds, token)})
    html = answer.content.decode()
    assert answer.status_code == 400 and "changed or revoked" in html and token not in html
    assert not Identity.objects.exists()


def test_a_link_that_is_no_feed_is_a_form_error(auth_client, fake_feeds, token):
    answer = auth_client.post(reverse("identities:connect_feed"),
                              {"provider_id": "reddit", "feed_link": "https://example.com/feed?feed=abcdefghijk&user=x"})
    assert answer.status_code == 400 and "not a Reddit feed link" in answer.content.decode()


def test_the_token_is_replaced_and_removed_from_the_identity_page(auth_client, fake_feeds, token):
    identity = connect_feed_token(provider_id="reddit", text=link(fake_feeds, token))
    new = fake_feeds.change_token("alice")
    answer = auth_client.post(reverse("identities:feed_token", args=[identity.pk]), {"feed_link": new})
    assert answer.status_code == 302 and services.masked_feed_token(identity).endswith(new[-4:])
    bad = auth_client.post(reverse("identities:feed_token", args=[identity.pk]), {"feed_link": token})
    assert bad.status_code == 400 and "changed or revoked" in bad.content.decode() and token not in bad.content.decode()
    assert services.masked_feed_token(identity).endswith(new[-4:])  # a refused replacement changes nothing
    auth_client.post(reverse("identities:feed_token_remove", args=[identity.pk]))
    assert not ProviderCredential.objects.filter(identity=identity).exists()
    html = auth_client.get(reverse("identities:detail", args=[identity.pk])).content.decode()
    assert "Add a feed token" in html and "no connection" in html
