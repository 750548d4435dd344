"""factory-boy factories for every model.  Append yours; keep them plain."""

from datetime import UTC, datetime

import factory
from factory.django import DjangoModelFactory


class ProviderFactory(DjangoModelFactory):
    class Meta:
        model = "identities.Provider"
        django_get_or_create = ("provider_id",)

    provider_id = "reddit"
    display_name = "Reddit"


class IdentityFactory(DjangoModelFactory):
    class Meta:
        model = "identities.Identity"

    provider = factory.SubFactory(ProviderFactory)
    external_username = factory.Sequence(lambda n: f"persona_{n}")
    display_name = factory.LazyAttribute(lambda o: o.external_username.replace("_", " ").title())
    is_active = True


class ProviderCredentialFactory(DjangoModelFactory):
    """An identity's stored credential (an OAuth refresh token unless told otherwise), encrypted as the app does."""

    class Meta:
        model = "identities.ProviderCredential"
        skip_postgeneration_save = True

    identity = factory.SubFactory(IdentityFactory)
    provider = factory.LazyAttribute(lambda o: o.identity.provider)
    credential_type = "oauth_refresh_token"
    secret_encrypted = "-"

    @factory.post_generation
    def encrypt(obj, create, extracted, **kwargs):
        from rediska import crypto

        obj.secret_encrypted = crypto.encrypt(extracted or "not-a-real-token", context=obj.context)
        if create:
            obj.save(update_fields=["secret_encrypted"])


class ExternalAccountFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.ExternalAccount"

    provider = factory.SubFactory(ProviderFactory)
    external_username = factory.Sequence(lambda n: f"someone_{n}")
    remote_status = "active"


class ConversationFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.Conversation"

    provider = factory.SubFactory(ProviderFactory)
    identity = factory.SubFactory(IdentityFactory)
    counterpart_account = factory.SubFactory(ExternalAccountFactory)
    external_conversation_id = factory.Sequence(lambda n: f"conv{n}")
    last_activity_at = factory.LazyFunction(lambda: datetime.now(UTC))


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.Message"

    provider = factory.SubFactory(ProviderFactory)
    conversation = factory.SubFactory(ConversationFactory)
    external_message_id = factory.Sequence(lambda n: f"msg{n}")
    direction = "in"
    sent_at = factory.LazyFunction(lambda: datetime.now(UTC))
    body_text = factory.Faker("sentence")
    remote_visibility = "visible"


class LeadPostFactory(DjangoModelFactory):
    class Meta:
        model = "leads.LeadPost"

    provider = factory.SubFactory(ProviderFactory)
    source_location = "hiking"
    external_post_id = factory.Sequence(lambda n: f"post{n}")
    post_url = factory.LazyAttribute(lambda o: f"https://example.invalid/{o.source_location}/{o.external_post_id}")
    author_account = factory.SubFactory(ExternalAccountFactory)
    title = factory.Faker("sentence")
    body_text = factory.Faker("paragraph")
    post_created_at = factory.LazyFunction(lambda: datetime.now(UTC))
    remote_visibility = "visible"


class ProfileItemFactory(DjangoModelFactory):
    class Meta:
        model = "leads.ProfileItem"

    account = factory.SubFactory(ExternalAccountFactory)
    item_type = "comment"
    external_item_id = factory.Sequence(lambda n: f"item{n}")
    item_created_at = factory.LazyFunction(lambda: datetime.now(UTC))
    text_content = factory.Faker("paragraph")
    remote_visibility = "visible"


class ProfileSnapshotFactory(DjangoModelFactory):
    class Meta:
        model = "agents.ProfileSnapshot"

    account = factory.SubFactory(ExternalAccountFactory)
    fetched_at = factory.LazyFunction(lambda: datetime.now(UTC))
    summary_text = factory.Faker("paragraph")
    signals_json = factory.LazyFunction(lambda: {"interests": ["hiking"]})
    risk_flags_json = factory.LazyFunction(list)


class JobFactory(DjangoModelFactory):
    class Meta:
        model = "rediska.Job"

    queue_name = "ingest"
    job_type = "ingest.sync_delta"
    payload_json = factory.LazyFunction(lambda: {"args": [], "kwargs": {}})


class ProviderCredentialFactory(DjangoModelFactory):
    """A stored refresh token (encrypted as the app stores it): the identity is connected, not archive-only."""

    class Meta:
        model = "identities.ProviderCredential"

    identity = factory.SubFactory(IdentityFactory)
    provider = factory.LazyAttribute(lambda o: o.identity.provider)
    credential_type = "oauth_refresh_token"
    secret_encrypted = "-"

    @factory.post_generation
    def token(obj, create, value, **kwargs):
        from rediska import crypto

        obj.secret_encrypted = crypto.encrypt(value or "factory-refresh-token", context=obj.context)
        if create:
            obj.save(update_fields=["secret_encrypted"])
class LabelFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.Label"

    name = factory.Sequence(lambda n: f"label {n}")
    key = factory.LazyAttribute(lambda o: o.name.lower())


class AccountNoteFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.AccountNote"

    account = factory.SubFactory(ExternalAccountFactory)
    body = factory.Faker("sentence")


class SavedReplyFactory(DjangoModelFactory):
    class Meta:
        model = "inbox.SavedReply"

    title = factory.Sequence(lambda n: f"Saved reply {n}")
    body = "Hi {name}, nice to meet you."
