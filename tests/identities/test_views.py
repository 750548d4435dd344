"""Identity pages, the §9.1 JSON endpoints, the OAuth connect flow and the do-not-contact page."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import signing
from django.test import Client
from django.urls import reverse

from identities import oauth, services
from identities.models import DoNotContact, Identity, ProviderCredential
from rediska.models import AuditLog
from rediska.providers.base import RemoteAccount
from rediska.providers.errors import AuthError
from tests.factories import ConversationFactory, IdentityFactory, ProviderFactory

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def start_connect(client, fake_reddit, username="alice", **data) -> str:
    """POST /identities like the connect form; follow the provider's consent page; return the callback URL."""
    fake_reddit.login(username)
    answer = client.post(reverse("identities:list"), {"provider_id": "reddit", **data})
    assert answer.status_code == 302, answer.content
    consent = requests.get(answer["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    parts = urlsplit(consent.headers["Location"])
    return f"{parts.path}?{parts.query}"


def connected(fake_reddit, username, **kwargs) -> Identity:
    return services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token(username),
                                     account=RemoteAccount(username=username), **kwargs)


# --- OAuth connect --------------------------------------------------------------------
def test_the_full_connect_flow_creates_the_first_identity_as_default(auth_client, fake_reddit):
    callback = start_connect(auth_client, fake_reddit, "alice", display_name="Alice hikes")
    answer = auth_client.get(callback)
    identity = Identity.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("identities:detail", args=[identity.pk])
    assert (identity.external_username, identity.display_name, identity.is_default) == ("alice", "Alice hikes", True)
    assert ProviderCredential.objects.filter(identity=identity).count() == 1
    assert AuditLog.objects.filter(action_type="identity.connect", identity_id=identity.pk).exists()
    grants = [r.form.get("grant_type") for r in fake_reddit.requests if r.path == "/api/v1/access_token"]
    assert grants[0] == "authorization_code"


def test_the_state_is_one_time(auth_client, fake_reddit):
    callback = start_connect(auth_client, fake_reddit, "alice")
    assert auth_client.get(callback).status_code == 302
    replay = auth_client.get(callback)
    assert replay.status_code == 400 and b"already used or has expired" in replay.content
    assert Identity.objects.count() == 1


def test_a_forged_state_is_refused_and_changes_nothing(auth_client, fake_reddit):
    existing = connected(fake_reddit, "bob")
    callback = start_connect(auth_client, fake_reddit, "alice")
    query = parse_qs(urlsplit(callback).query)
    forged = f"{reverse('identities:callback')}?state=forged{query['state'][0]}&code={query['code'][0]}"
    answer = auth_client.get(forged)
    assert answer.status_code == 400 and b"not valid" in answer.content
    assert list(Identity.objects.values_list("pk", flat=True)) == [existing.pk]


def test_a_state_older_than_ten_minutes_is_refused(auth_client, fake_reddit):
    class TenMinutesAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - oauth.MAX_AGE - 5)

    query = parse_qs(urlsplit(start_connect(auth_client, fake_reddit, "alice")).query)
    nonce = signing.loads(query["state"][0], salt=oauth.SALT)
    stale = TenMinutesAgo(salt=oauth.SALT).sign_object(nonce)
    answer = auth_client.get(reverse("identities:callback"), {"state": stale, "code": query["code"][0]})
    assert answer.status_code == 400 and b"longer than ten minutes" in answer.content
    assert Identity.objects.count() == 0


def test_a_state_from_another_browser_session_is_refused(auth_client, admin_user, fake_reddit):
    callback = start_connect(auth_client, fake_reddit, "alice")
    other = Client()
    other.force_login(admin_user)  # another browser: the nonce is not in its session
    assert other.get(callback).status_code == 400
    assert Identity.objects.count() == 0


def test_denied_consent_is_explained_and_changes_nothing(auth_client, fake_reddit):
    existing = connected(fake_reddit, "bob")
    fake_reddit.deny_consent()
    answer = auth_client.get(start_connect(auth_client, fake_reddit, "alice"))
    assert answer.status_code == 400 and b"declined" in answer.content
    assert list(Identity.objects.values_list("pk", flat=True)) == [existing.pk]


def test_connecting_an_already_connected_account_is_a_clear_duplicate(auth_client, fake_reddit):
    existing = connected(fake_reddit, "alice", display_name="Original")
    answer = auth_client.get(start_connect(auth_client, fake_reddit, "alice", display_name="Again"))
    assert answer.status_code == 400 and b"already connected" in answer.content
    existing.refresh_from_db()
    assert existing.display_name == "Original" and Identity.objects.count() == 1


def test_reconnect_replaces_a_revoked_token(auth_client, fake_reddit):
    identity = connected(fake_reddit, "alice")
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(AuthError):
        services.session_for(identity).whoami()
    fake_reddit.login("alice")
    answer = auth_client.post(reverse("identities:reconnect", args=[identity.pk]))
    consent = requests.get(answer["Location"], allow_redirects=False, timeout=5).headers["Location"]
    parts = urlsplit(consent)
    assert auth_client.get(f"{parts.path}?{parts.query}").status_code == 302
    identity.refresh_from_db()
    assert not identity.needs_reconnect
    assert services.session_for(identity).whoami().username == "alice"


def test_reconnecting_with_the_wrong_account_is_refused(auth_client, fake_reddit):
    identity = connected(fake_reddit, "alice")
    fake_reddit.login("bob")
    answer = auth_client.post(reverse("identities:reconnect", args=[identity.pk]))
    consent = requests.get(answer["Location"], allow_redirects=False, timeout=5).headers["Location"]
    parts = urlsplit(consent)
    page = auth_client.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 400 and b"signed in as bob" in page.content
    assert Identity.objects.get().external_username == "alice"


def test_a_provider_outage_during_the_callback_is_a_clear_502(auth_client, fake_reddit):
    callback = start_connect(auth_client, fake_reddit, "alice")
    fake_reddit.inject(r"^/api/v1/access_token$", status=503, count=2)
    answer = auth_client.get(callback)
    assert answer.status_code == 502 and b"try again" in answer.content
    assert Identity.objects.count() == 0


def test_an_unconfigured_provider_is_a_form_error(auth_client, fake_reddit, settings):
    settings.PROVIDER_REDDIT_CLIENT_ID = ""
    answer = auth_client.post(reverse("identities:list"), {"provider_id": "reddit"})
    assert answer.status_code == 400 and b"PROVIDER_REDDIT_CLIENT_ID" in answer.content


def test_an_unknown_provider_is_a_form_error(auth_client, fake_reddit):
    answer = auth_client.post(reverse("identities:list"), {"provider_id": "myspace"}, **JSON)
    assert answer.status_code == 400 and "provider_id" in answer.json()["detail"]


def test_creating_over_json_returns_the_authorize_url(auth_client, fake_reddit):
    answer = auth_client.post(reverse("identities:list"), json.dumps({"provider_id": "reddit"}),
                              content_type="application/json", **JSON)
    assert answer.status_code == 201
    assert answer.json()["authorize_url"].startswith(f"{fake_reddit.url}/api/v1/authorize?")


# --- pages and JSON -------------------------------------------------------------------------
def test_the_list_groups_identities_by_provider(auth_client, fake_reddit):
    default = connected(fake_reddit, "alice", display_name="Alice")
    connected(fake_reddit, "bob", display_name="Bob")
    page = auth_client.get(reverse("identities:list"))
    assert page.status_code == 200 and b"Alice" in page.content and b"Bob" in page.content
    data = auth_client.get(reverse("identities:list"), **JSON).json()
    group = next(p for p in data["providers"] if p["provider_id"] == "reddit")
    assert [(i["display_name"], i["is_default"]) for i in group["identities"]] == [("Alice", True), ("Bob", False)]
    assert group["default_identity_id"] == default.pk


def test_the_list_has_a_constant_number_of_queries(auth_client, django_assert_max_num_queries):
    provider = ProviderFactory()
    for _ in range(12):
        IdentityFactory(provider=provider)
    with django_assert_max_num_queries(8):
        assert auth_client.get(reverse("identities:list")).status_code == 200


def test_detail_shows_an_identity_as_html_and_json(auth_client):
    identity = IdentityFactory(display_name="Alice", voice_config_json={"tone": "warm"}, is_default=True)
    page = auth_client.get(reverse("identities:detail", args=[identity.pk]))
    assert page.status_code == 200 and b"Alice" in page.content and b"warm" in page.content
    data = auth_client.get(reverse("identities:detail", args=[identity.pk]), **JSON).json()
    assert data["voice_config"] == {"system_prompt": "", "tone": "warm", "style": ""}
    assert data["is_default"] is True and "secret" not in json.dumps(data)


def test_a_deactivated_identity_stays_readable(auth_client):
    identity = IdentityFactory(display_name="Old persona", is_active=False)
    page = auth_client.get(reverse("identities:detail", args=[identity.pk]))
    assert page.status_code == 200 and b"Old persona" in page.content and b"deactivated" in page.content


def test_an_unknown_identity_is_404(auth_client):
    answer = auth_client.get(reverse("identities:detail", args=[999]), **JSON)
    assert answer.status_code == 404 and answer.json()["error"] == "Not found"


def test_patch_updates_display_name_and_voice(auth_client):
    identity = IdentityFactory(is_default=True)
    answer = auth_client.patch(reverse("identities:detail", args=[identity.pk]),
                               json.dumps({"display_name": "Trail Talker",
                                           "voice_config": {"tone": "cheerful", "system_prompt": "Be brief."}}),
                               content_type="application/json", **JSON)
    assert answer.status_code == 200 and answer.json()["display_name"] == "Trail Talker"
    identity.refresh_from_db()
    assert identity.voice_config_json == {"tone": "cheerful", "system_prompt": "Be brief."}


def test_patch_can_make_an_identity_the_default(auth_client):
    old = IdentityFactory(is_default=True)
    new = IdentityFactory(provider=old.provider)
    answer = auth_client.patch(reverse("identities:detail", args=[new.pk]), json.dumps({"is_default": True}),
                               content_type="application/json", **JSON)
    assert answer.status_code == 200 and answer.json()["is_default"] is True
    old.refresh_from_db()
    assert not old.is_default


@pytest.mark.parametrize("body", [{"display_name": ""}, {"display_name": "x" * 129}, {"voice_config": "loud"},
                                  {"voice_config": {"accent": "posh"}}, {"is_default": False}, {"nope": 1}])
def test_bad_patches_are_400_with_a_reason_and_change_nothing(auth_client, body):
    identity = IdentityFactory(display_name="Keep", is_default=True)
    answer = auth_client.patch(reverse("identities:detail", args=[identity.pk]), json.dumps(body),
                               content_type="application/json", **JSON)
    assert answer.status_code == 400 and answer.json()["detail"]
    identity.refresh_from_db()
    assert identity.display_name == "Keep" and identity.is_default


def test_malformed_json_is_400(auth_client):
    identity = IdentityFactory()
    answer = auth_client.patch(reverse("identities:detail", args=[identity.pk]), "{not json",
                               content_type="application/json", **JSON)
    assert answer.status_code == 400


def test_json_nested_too_deep_to_parse_is_400_not_500(auth_client):
    identity = IdentityFactory()
    for method, url in (("patch", reverse("identities:detail", args=[identity.pk])),
                        ("post", reverse("identities:list"))):
        answer = getattr(auth_client, method)(url, "[" * 100_000, content_type="application/json", **JSON)
        assert answer.status_code == 400 and answer.json()["detail"] == "The body is not valid JSON."


def test_htmx_patch_with_a_form_body_returns_the_fragment(auth_client):
    identity = IdentityFactory(display_name="Before")
    answer = auth_client.patch(reverse("identities:detail", args=[identity.pk]),
                               "display_name=After&tone=calm&system_prompt=&style=",
                               content_type="application/x-www-form-urlencoded", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and b"After" in answer.content and b"<html" not in answer.content
    identity.refresh_from_db()
    assert identity.voice_config_json == {"tone": "calm"}


def test_the_edit_form_is_the_plain_post_fallback(auth_client):
    identity = IdentityFactory(display_name="Before")
    page = auth_client.get(reverse("identities:edit", args=[identity.pk]))
    assert page.status_code == 200 and b'<label for="id_display_name"' in page.content
    answer = auth_client.post(reverse("identities:edit", args=[identity.pk]),
                              {"display_name": "After", "system_prompt": "Be kind.", "tone": "", "style": "terse"})
    assert answer.status_code == 302
    identity.refresh_from_db()
    assert identity.display_name == "After" and identity.voice_config_json == {"system_prompt": "Be kind.",
                                                                              "style": "terse"}


def test_the_edit_form_shows_errors(auth_client):
    identity = IdentityFactory(display_name="Before")
    answer = auth_client.post(reverse("identities:edit", args=[identity.pk]), {"display_name": ""})
    assert answer.status_code == 400 and b"errorlist" in answer.content


def test_set_default_over_post_and_json(auth_client):
    old = IdentityFactory(is_default=True)
    new = IdentityFactory(provider=old.provider)
    assert auth_client.post(reverse("identities:set_default", args=[new.pk])).status_code == 302
    assert Identity.objects.get(is_default=True).pk == new.pk
    answer = auth_client.post(reverse("identities:set_default", args=[old.pk]), **JSON)
    assert answer.status_code == 200 and answer.json()["is_default"] is True


def test_set_default_on_a_deactivated_identity_is_a_clear_400(auth_client):
    default = IdentityFactory(is_default=True)
    inactive = IdentityFactory(provider=default.provider, is_active=False)
    answer = auth_client.post(reverse("identities:set_default", args=[inactive.pk]), **JSON)
    assert answer.status_code == 400 and "deactivated" in answer.json()["detail"]
    page = auth_client.post(reverse("identities:set_default", args=[inactive.pk]), follow=True)
    assert b"deactivated" in page.content
    assert Identity.objects.get(is_default=True).pk == default.pk


def test_delete_deactivates_and_hands_over_the_default(auth_client):
    default = IdentityFactory(is_default=True)
    heir = IdentityFactory(provider=default.provider)
    answer = auth_client.delete(reverse("identities:detail", args=[default.pk]), **JSON)
    assert answer.status_code == 200 and answer.json()["is_active"] is False
    heir.refresh_from_db()
    assert heir.is_default


def test_the_deactivate_button_is_the_plain_post_fallback(auth_client):
    identity = IdentityFactory(is_default=True)
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    assert auth_client.post(reverse("identities:deactivate", args=[identity.pk])).status_code == 302
    identity.refresh_from_db()
    conversation.refresh_from_db()
    assert not identity.is_active and conversation.identity_id == identity.pk


def test_get_is_not_allowed_on_actions(auth_client):
    identity = IdentityFactory()
    assert auth_client.get(reverse("identities:set_default", args=[identity.pk])).status_code == 405
    assert auth_client.get(reverse("identities:deactivate", args=[identity.pk])).status_code == 405


def test_the_detail_page_embeds_the_sync_panel_only_when_inbox_provides_it(auth_client):
    identity = IdentityFactory()
    page = auth_client.get(reverse("identities:detail", args=[identity.pk])).content.decode()
    assert 'id="identity-sync"' in page
    try:
        sync_url = reverse("inbox:identity_sync_panel", args=[identity.pk])
    except Exception:
        assert "hx-get" not in page.split('id="identity-sync"')[1].split("</div>")[0]
    else:
        assert sync_url in page


def test_pages_need_login(client):
    answer = client.get(reverse("identities:list"))
    assert answer.status_code == 302 and "/login/" in answer["Location"]


# --- onboarding gate ----------------------------------------------------------------------------
def test_setup_status_follows_active_identities(auth_client):
    assert auth_client.get(reverse("identities:setup_status")).json()["complete"] is False
    identity = IdentityFactory(is_default=True)
    status = auth_client.get(reverse("identities:setup_status")).json()
    assert status["complete"] is True and status["providers"][0]["default_identity_id"] == identity.pk
    services.deactivate_identity(identity)
    assert auth_client.get(reverse("identities:setup_status")).json()["complete"] is False


def test_the_gate_sends_people_to_setup_until_an_identity_is_active(auth_client):
    assert auth_client.get(reverse("home"))["Location"] == reverse("identities:setup")
    setup = auth_client.get(reverse("identities:setup"))
    assert setup.status_code == 200 and b"Connect" in setup.content
    IdentityFactory(is_default=True)
    assert auth_client.get(reverse("home")).status_code == 200


# --- do not contact -----------------------------------------------------------------------------
def test_people_are_added_to_and_removed_from_do_not_contact(auth_client):
    ProviderFactory()
    answer = auth_client.post(reverse("identities:dnc"), {"provider_id": "reddit", "username": "Quiet_One",
                                                          "reason": "asked to stop"})
    assert answer.status_code == 302
    entry = DoNotContact.objects.get()
    page = auth_client.get(reverse("identities:dnc"))
    assert b"Quiet_One" in page.content and b"asked to stop" in page.content
    assert services.is_do_not_contact("reddit", "quiet_one")
    assert auth_client.post(reverse("identities:dnc_remove", args=[entry.pk])).status_code == 302
    assert not DoNotContact.objects.exists()


def test_adding_someone_twice_says_so(auth_client):
    ProviderFactory()
    services.add_do_not_contact("reddit", "quiet_one")
    page = auth_client.post(reverse("identities:dnc"), {"provider_id": "reddit", "username": "QUIET_ONE"},
                            follow=True)
    assert b"already on the do-not-contact list" in page.content
    assert DoNotContact.objects.count() == 1


@pytest.mark.parametrize("data", [{"provider_id": "reddit", "username": ""},
                                  {"provider_id": "reddit", "username": "two words"},
                                  {"provider_id": "nope", "username": "someone"},
                                  {"provider_id": "reddit", "username": "someone", "reason": "x" * 256}])
def test_bad_do_not_contact_input_is_a_form_error(auth_client, data):
    ProviderFactory()
    answer = auth_client.post(reverse("identities:dnc"), data)
    assert answer.status_code == 400 and b"errorlist" in answer.content
    assert not DoNotContact.objects.exists()


def test_removing_an_unknown_entry_is_404(auth_client):
    assert auth_client.post(reverse("identities:dnc_remove", args=[404])).status_code == 404
