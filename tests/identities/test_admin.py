"""The admin shows identities and do-not-contact, changes them through the services, never shows secrets."""

import pytest
from django.urls import reverse

from identities import services
from identities.models import DoNotContact, Identity, ProviderCredential
from rediska import crypto
from rediska.models import AuditLog
from rediska.providers.base import RemoteAccount
from tests.factories import IdentityFactory, ProviderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(fake_reddit):
    token = fake_reddit.issue_refresh_token("alice")
    identity = services.connect_identity(provider_id="reddit", refresh_token=token,
                                         account=RemoteAccount(username="alice"))
    return identity, token


def test_the_identity_pages_never_show_the_secret(admin_client, alice):
    identity, token = alice
    ciphertext = ProviderCredential.objects.get().secret_encrypted
    for url in (reverse("admin:identities_identity_changelist"),
                reverse("admin:identities_identity_change", args=[identity.pk])):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert token.encode() not in page.content and ciphertext.encode() not in page.content
    page = admin_client.get(reverse("admin:identities_identity_change", args=[identity.pk]))
    assert crypto.fingerprint_of(ciphertext).encode() in page.content
    assert admin_client.get("/admin/identities/providercredential/").status_code == 404


def test_identities_cannot_be_added_or_deleted_in_the_admin(admin_client, alice):
    identity, _ = alice
    assert admin_client.get(reverse("admin:identities_identity_add")).status_code == 403
    assert admin_client.post(reverse("admin:identities_identity_delete", args=[identity.pk]),
                             {"post": "yes"}).status_code == 403
    assert Identity.objects.filter(pk=identity.pk).exists()


def test_editing_an_identity_goes_through_the_service(admin_client, alice):
    identity, _ = alice
    answer = admin_client.post(reverse("admin:identities_identity_change", args=[identity.pk]),
                               {"display_name": "Renamed", "voice_config_json": '{"tone": "warm"}',
                                "credentials-TOTAL_FORMS": "1", "credentials-INITIAL_FORMS": "1",
                                "credentials-MIN_NUM_FORMS": "0", "credentials-MAX_NUM_FORMS": "1000",
                                "credentials-0-id": str(identity.credentials.get().pk),
                                "credentials-0-identity": str(identity.pk)})
    assert answer.status_code == 302, answer.content
    identity.refresh_from_db()
    assert identity.display_name == "Renamed" and identity.voice_config_json == {"tone": "warm"}
    assert AuditLog.objects.filter(action_type="identity.update", identity_id=identity.pk).exists()


def test_voice_json_nested_too_deep_is_a_form_error_not_a_500(admin_client, alice):
    identity, _ = alice
    answer = admin_client.post(reverse("admin:identities_identity_change", args=[identity.pk]),
                               {"display_name": "Renamed", "voice_config_json": "[" * 100_000,
                                "credentials-TOTAL_FORMS": "1", "credentials-INITIAL_FORMS": "1",
                                "credentials-MIN_NUM_FORMS": "0", "credentials-MAX_NUM_FORMS": "1000",
                                "credentials-0-id": str(identity.credentials.get().pk),
                                "credentials-0-identity": str(identity.pk)})
    assert answer.status_code == 200 and "Enter a valid JSON." in answer.content.decode()
    identity.refresh_from_db()
    assert identity.display_name != "Renamed"


def test_the_make_default_action_keeps_one_default(admin_client):
    old = IdentityFactory(is_default=True)
    new = IdentityFactory(provider=old.provider)
    admin_client.post(reverse("admin:identities_identity_changelist"),
                      {"action": "make_default", "_selected_action": [new.pk]})
    assert list(Identity.objects.filter(is_default=True).values_list("pk", flat=True)) == [new.pk]


def test_do_not_contact_is_managed_in_the_admin(admin_client):
    ProviderFactory()
    answer = admin_client.post(reverse("admin:identities_donotcontact_add"),
                               {"provider": "reddit", "external_username": " Quiet ", "reason": "asked"})
    assert answer.status_code == 302
    entry = DoNotContact.objects.get()
    assert entry.external_username == "Quiet" and services.is_do_not_contact("reddit", "quiet")
    assert AuditLog.objects.filter(action_type="dnc.add").exists()
    assert admin_client.get(reverse("admin:identities_donotcontact_changelist")).status_code == 200
    admin_client.post(reverse("admin:identities_donotcontact_delete", args=[entry.pk]), {"post": "yes"})
    assert not DoNotContact.objects.exists() and AuditLog.objects.filter(action_type="dnc.remove").exists()
