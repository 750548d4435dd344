"""Identity rules (spec §0.1, §9), credentials, sessions and do-not-contact."""

import logging

import pytest
from django.db import connection

from identities import services
from identities.models import REFRESH_TOKEN, DoNotContact, Identity, ProviderCredential
from identities.services import DoNotContactError, IdentityError
from rediska import crypto
from rediska.models import AuditLog
from rediska.providers.base import RemoteAccount
from rediska.providers.errors import AuthError
from tests.factories import ConversationFactory, IdentityFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def connect(fake_reddit, username, **kwargs):
    token = fake_reddit.issue_refresh_token(username)
    return services.connect_identity(provider_id="reddit", refresh_token=token,
                                     account=RemoteAccount(username=username, user_id="id-" + username), **kwargs)


def defaults(provider_id="reddit"):
    return list(Identity.objects.filter(provider_id=provider_id, is_default=True).values_list("pk", flat=True))


# --- connecting -----------------------------------------------------------------
def test_the_first_identity_of_a_provider_becomes_its_default(fake_reddit):
    first = connect(fake_reddit, "alice")
    second = connect(fake_reddit, "bob")
    assert first.is_default and not second.is_default
    assert defaults() == [first.pk]


def test_connecting_stores_the_refresh_token_encrypted(fake_reddit):
    token = fake_reddit.issue_refresh_token("alice")
    identity = services.connect_identity(provider_id="reddit", refresh_token=token,
                                         account=RemoteAccount(username="alice"))
    credential = ProviderCredential.objects.get(identity=identity, credential_type=REFRESH_TOKEN)
    assert token not in credential.secret_encrypted
    assert crypto.decrypt(credential.secret_encrypted, context=credential.context) == token
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM provider_credentials")
        assert all(token not in row[0] for row in cursor.fetchall())


def test_a_secret_never_reaches_audit_rows_or_logs(fake_reddit, caplog):
    caplog.set_level(logging.DEBUG)
    token = fake_reddit.issue_refresh_token("alice")
    identity = services.connect_identity(provider_id="reddit", refresh_token=token,
                                         account=RemoteAccount(username="alice"))
    services.session_for(identity).whoami()
    fake_reddit.revoke_refresh_token(token)
    with pytest.raises(AuthError):
        services.session_for(Identity.objects.get(pk=identity.pk)).whoami()
    audit = list(AuditLog.objects.values_list("request_json", "response_json", "error_detail"))
    assert audit and token not in repr(audit)
    assert token not in caplog.text
    assert token not in repr(identity.credentials.get())


def test_the_display_name_defaults_to_the_username(fake_reddit):
    assert connect(fake_reddit, "alice").display_name == "alice"
    assert connect(fake_reddit, "bob", display_name="Bob the hiker").display_name == "Bob the hiker"


def test_a_duplicate_identity_is_refused_and_left_untouched(fake_reddit):
    identity = connect(fake_reddit, "alice", display_name="Original")
    credential_before = identity.credentials.get().secret_encrypted
    with pytest.raises(IdentityError, match="already connected"):
        connect(fake_reddit, "ALICE", display_name="Other")
    identity.refresh_from_db()
    assert identity.display_name == "Original"
    assert identity.credentials.get().secret_encrypted == credential_before
    assert Identity.objects.count() == 1


def test_reconnecting_replaces_the_token_and_clears_the_flag(fake_reddit):
    identity = connect(fake_reddit, "alice")
    old = fake_reddit.issue_refresh_token("alice")
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(AuthError):
        services.session_for(identity).whoami()
    identity.refresh_from_db()
    assert identity.needs_reconnect and identity.last_auth_error
    new_token = fake_reddit.issue_refresh_token("alice")
    reconnected = services.connect_identity(provider_id="reddit", refresh_token=new_token,
                                            account=RemoteAccount(username="alice"), identity=identity)
    assert reconnected.pk == identity.pk and not reconnected.needs_reconnect
    assert services.session_for(reconnected).whoami().username == "alice"
    assert old != new_token


def test_reconnecting_as_another_account_is_refused(fake_reddit):
    identity = connect(fake_reddit, "alice")
    with pytest.raises(IdentityError, match="bob.*alice|alice.*bob"):
        services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("bob"),
                                  account=RemoteAccount(username="bob"), identity=identity)
    assert Identity.objects.get().external_username == "alice"


def test_connecting_a_deactivated_account_again_reactivates_it(fake_reddit):
    identity = connect(fake_reddit, "alice")
    services.deactivate_identity(identity)
    again = connect(fake_reddit, "alice")
    assert again.pk == identity.pk and again.is_active and again.is_default


def test_connecting_writes_an_audit_row(fake_reddit):
    identity = connect(fake_reddit, "alice")
    row = AuditLog.objects.get(action_type="identity.connect")
    assert (row.identity_id, row.provider_id, row.result) == (identity.pk, "reddit", "ok")


# --- defaults -----------------------------------------------------------------------
def test_setting_a_default_unsets_the_old_one():
    provider = ProviderFactory()
    first = IdentityFactory(provider=provider, is_default=True)
    second = IdentityFactory(provider=provider)
    services.set_default_identity(second)
    assert defaults() == [second.pk]
    first.refresh_from_db()
    assert not first.is_default


def test_defaults_are_per_provider():
    first = IdentityFactory(is_default=True)
    other = IdentityFactory(provider=ProviderFactory(provider_id="other", display_name="Other"), is_default=True)
    services.set_default_identity(IdentityFactory(provider=first.provider))
    other.refresh_from_db()
    assert other.is_default and len(defaults()) == 1


def test_a_deactivated_identity_cannot_become_default():
    default = IdentityFactory(is_default=True)
    inactive = IdentityFactory(provider=default.provider, is_active=False)
    with pytest.raises(IdentityError, match="deactivated"):
        services.set_default_identity(inactive)
    assert defaults() == [default.pk]


def test_deactivating_the_default_hands_the_role_to_another_active_identity():
    default = IdentityFactory(is_default=True)
    IdentityFactory(provider=default.provider, is_active=False)
    heir = IdentityFactory(provider=default.provider)
    services.deactivate_identity(default)
    assert defaults() == [heir.pk]
    default.refresh_from_db()
    assert not default.is_active and not default.is_default


def test_deactivating_the_last_active_identity_leaves_no_default():
    default = IdentityFactory(is_default=True)
    IdentityFactory(provider=default.provider, is_active=False)
    services.deactivate_identity(default)
    assert defaults() == []


def test_deactivating_another_identity_keeps_the_default():
    default = IdentityFactory(is_default=True)
    other = IdentityFactory(provider=default.provider)
    services.deactivate_identity(other)
    assert defaults() == [default.pk]


def test_deactivation_writes_an_audit_row_naming_the_new_default():
    default = IdentityFactory(is_default=True)
    heir = IdentityFactory(provider=default.provider)
    services.deactivate_identity(default)
    row = AuditLog.objects.get(action_type="identity.deactivate")
    assert row.identity_id == default.pk and row.response_json == {"new_default_id": heir.pk}


def test_conversations_keep_their_identity_forever():
    default = IdentityFactory(is_default=True)
    conversation = ConversationFactory(identity=default, provider=default.provider)
    other = IdentityFactory(provider=default.provider)
    services.set_default_identity(other)
    services.deactivate_identity(default)
    conversation.refresh_from_db()
    assert conversation.identity_id == default.pk
    assert Identity.objects.filter(pk=default.pk).exists()  # deactivated, still readable


# --- voice and edits ---------------------------------------------------------------------
def test_voice_config_is_editable():
    identity = IdentityFactory(is_default=True)
    services.update_identity(identity, display_name="Hiker", voice={"system_prompt": "You are warm.",
                                                                    "tone": "friendly", "style": ""})
    identity.refresh_from_db()
    assert identity.display_name == "Hiker"
    assert identity.voice_config_json == {"system_prompt": "You are warm.", "tone": "friendly"}
    assert identity.voice == {"system_prompt": "You are warm.", "tone": "friendly", "style": ""}


def test_an_update_changes_only_what_it_is_given():
    identity = IdentityFactory(display_name="Keep", voice_config_json={"tone": "dry"})
    services.update_identity(identity, voice={"style": "short"})
    identity.refresh_from_db()
    assert identity.display_name == "Keep" and identity.voice_config_json == {"tone": "dry", "style": "short"}


# --- sessions -------------------------------------------------------------------------------
def test_session_for_uses_the_identitys_token(fake_reddit):
    identity = connect(fake_reddit, "alice")
    assert services.session_for(identity).whoami().username == "alice"


def test_a_revoked_token_marks_the_identity_for_reconnection(fake_reddit):
    identity = connect(fake_reddit, "alice")
    fake_reddit.revoke_user_tokens("alice")
    with pytest.raises(AuthError, match="reconnect"):
        services.session_for(identity).list_messages("inbox")
    identity.refresh_from_db()
    assert identity.needs_reconnect and "reconnect" in identity.last_auth_error
    assert identity.is_active  # still readable, still listed
    assert AuditLog.objects.filter(action_type="identity.auth_failed", identity_id=identity.pk).exists()


def test_a_wrong_credentials_key_is_a_clear_auth_error(fake_reddit, settings):
    identity = connect(fake_reddit, "alice")
    settings.CREDENTIALS_KEY = crypto.generate_key()
    with pytest.raises(AuthError, match="different credentials key"):
        services.session_for(identity)
    identity.refresh_from_db()
    assert identity.is_active and identity.credentials.count() == 1


def test_an_identity_without_credentials_is_archive_only_and_must_be_connected(fake_reddit):
    identity = IdentityFactory()
    assert identity.is_archive_only
    with pytest.raises(AuthError, match="only imported history\\): connect it to sync or send"):
        services.session_for(identity)


def test_a_deactivated_identity_has_no_session(fake_reddit):
    identity = connect(fake_reddit, "alice")
    services.deactivate_identity(identity)
    with pytest.raises(AuthError, match="deactivated"):
        services.session_for(identity)


# --- do not contact ----------------------------------------------------------------------------
def test_do_not_contact_matches_case_insensitively():
    ProviderFactory()
    services.add_do_not_contact("reddit", "Quiet_Person", reason="asked us to stop")
    assert services.is_do_not_contact("reddit", "quiet_person")
    assert services.is_do_not_contact("reddit", " QUIET_PERSON ")
    assert not services.is_do_not_contact("reddit", "someone_else")
    assert not services.is_do_not_contact("other", "quiet_person")


def test_check_can_contact_refuses_listed_people_clearly():
    ProviderFactory()
    services.add_do_not_contact("reddit", "quiet_person")
    with pytest.raises(DoNotContactError, match="quiet_person.*do-not-contact") as caught:
        services.check_can_contact("reddit", "QUIET_PERSON")
    assert caught.value.user_message
    services.check_can_contact("reddit", "chatty_person")  # returns quietly for everyone else


def test_adding_twice_keeps_one_entry_and_the_new_reason():
    ProviderFactory()
    services.add_do_not_contact("reddit", "quiet_person", reason="first")
    services.add_do_not_contact("reddit", "QUIET_PERSON", reason="second")
    entry = DoNotContact.objects.get()
    assert (entry.external_username, entry.reason) == ("quiet_person", "second")


def test_removing_lifts_the_block_and_is_audited():
    ProviderFactory()
    services.add_do_not_contact("reddit", "quiet_person")
    assert services.remove_do_not_contact("reddit", "Quiet_Person") is True
    assert not services.is_do_not_contact("reddit", "quiet_person")
    assert services.remove_do_not_contact("reddit", "quiet_person") is False
    assert list(AuditLog.objects.filter(action_type__startswith="dnc.").values_list("action_type", flat=True)) == [
        "dnc.remove", "dnc.add"]


@pytest.mark.parametrize("bad", ["", "   ", "two words", "x" * 129])
def test_bad_usernames_are_refused(bad):
    ProviderFactory()
    with pytest.raises(IdentityError):
        services.add_do_not_contact("reddit", bad)
    assert DoNotContact.objects.count() == 0
