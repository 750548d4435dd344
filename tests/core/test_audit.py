import pytest

from rediska import audit
from rediska.models import AuditImmutableError, AuditLog

pytestmark = pytest.mark.django_db


def test_record_writes_one_row_with_the_entity():
    from tests.factories import IdentityFactory

    identity = IdentityFactory()
    row = audit.record("identity.update", entity=identity, identity_id=identity.pk, provider_id="reddit",
                       request={"display_name": "New"})
    assert AuditLog.objects.count() == 1
    assert (row.entity_type, row.entity_id, row.result, row.actor) == ("identities", identity.pk, "ok", "user")
    assert row.request_json == {"display_name": "New"}


def test_secrets_are_redacted_before_storing():
    row = audit.record(
        "identity.connect",
        request={"code": "abc", "state": "s1", "refresh_token": "r-123", "nested": {"Authorization": "Bearer x",
                 "api_key": "k", "password": "p", "username": "me"}},
        response={"access_token": "t", "scopes": ["read"]},
    )
    row.refresh_from_db()
    stored = str(row.request_json) + str(row.response_json)
    for secret in ("abc", "s1", "r-123", "Bearer x", "'k'", "'p'", "'t'"):
        assert secret not in stored
    assert row.request_json["nested"]["username"] == "me"
    assert row.response_json["scopes"] == ["read"]


def test_an_error_makes_the_row_an_error_with_plain_words():
    class ProviderSaysNo(Exception):
        user_message = "This person does not accept messages."

    row = audit.record("message.send_manual", error=ProviderSaysNo("raw 403 body"))
    assert row.result == "error"
    assert row.error_detail == "ProviderSaysNo: This person does not accept messages."


def test_rows_cannot_be_updated_or_deleted():
    row = audit.record("x.y")
    row.action_type = "tampered"
    with pytest.raises(AuditImmutableError):
        row.save()
    with pytest.raises(AuditImmutableError):
        row.delete()
    with pytest.raises(AuditImmutableError):
        AuditLog.objects.filter(pk=row.pk).update(action_type="tampered")
    with pytest.raises(AuditImmutableError):
        AuditLog.objects.all().delete()
    with pytest.raises(AuditImmutableError):
        AuditLog.objects.bulk_update([row], ["action_type"])
    assert AuditLog.objects.get(pk=row.pk).action_type == "x.y"
