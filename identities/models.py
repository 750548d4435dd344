"""Providers, the user's identities (personas), their credentials, do-not-contact."""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, created_at, updated_at

VOICE_KEYS = ("system_prompt", "tone", "style")
REFRESH_TOKEN = "oauth_refresh_token"
# The user's personal feed token (reads their feeds as them; never sends).
FEED_TOKEN = "feed_token"


class Provider(models.Model):
    provider_id = models.CharField(max_length=32, primary_key=True)
    display_name = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True, db_default=True)
    created_at = created_at()

    class Meta:
        db_table = "providers"
        ordering = ["provider_id"]

    def __str__(self):
        return self.display_name


class Identity(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, db_index=False, related_name="identities")
    external_username = models.CharField(max_length=128)
    external_user_id = models.CharField(max_length=128, null=True, blank=True)
    display_name = models.CharField(max_length=128)
    voice_config_json = models.JSONField(null=True, blank=True)
    is_default = models.BooleanField(default=False, db_default=False)
    is_active = models.BooleanField(default=True, db_default=True)
    created_at = created_at()
    updated_at = updated_at()
    # Beyond the DDL: set when the provider refused the stored token (revoked,
    # expired); the identity must be reconnected.  Cleared by a reconnect.
    needs_reconnect_at = models.DateTimeField(null=True, blank=True)
    last_auth_error = models.CharField(max_length=255, null=True, blank=True)
    # Pacing (inbox.services.pacing): the account's age and karma as whoami last told,
    # the user's own daily cap of first messages (None: the settings' default), and
    # the provider's "doing that too much" cooldown.
    account_created_at = models.DateTimeField(null=True, blank=True)
    account_karma = models.IntegerField(null=True, blank=True)
    account_checked_at = models.DateTimeField(null=True, blank=True)
    first_messages_per_day = models.PositiveSmallIntegerField(null=True, blank=True)
    send_cooldown_until = models.DateTimeField(null=True, blank=True)
    send_cooldown_reason = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        db_table = "identities"
        ordering = ["provider_id", "display_name", "id"]
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["provider", "external_username"], name="uq_identity")]
        indexes = [
            models.Index(fields=["provider"], name="idx_identity_provider"),
            models.Index(fields=["provider", "is_default"], name="idx_identity_default"),
        ]

    def __str__(self):
        return f"{self.display_name} ({self.external_username})"

    @property
    def needs_reconnect(self) -> bool:
        return self.needs_reconnect_at is not None

    @property
    def is_archive_only(self) -> bool:
        """No stored access (created from a data export): readable, but it cannot sync or send until connected."""
        if hasattr(self, "_prefetched_objects_cache") and "credentials" in self._prefetched_objects_cache:
            return not self._prefetched_objects_cache["credentials"]
        return self.pk is None or not self.credentials.exists()

    @property
    def voice(self) -> dict:
        """The voice config with every key present (empty strings when unset)."""
        voice = self.voice_config_json if isinstance(self.voice_config_json, dict) else {}
        return {key: str(voice.get(key) or "") for key in VOICE_KEYS}


class ProviderCredential(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, db_index=False, related_name="+")
    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, null=True, blank=True, related_name="credentials")
    credential_type = models.CharField(max_length=64)
    secret_encrypted = MediumTextField()
    created_at = created_at()
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "provider_credentials"
        constraints = [
            models.UniqueConstraint(fields=["provider", "identity", "credential_type"], name="uq_cred"),
        ]

    def __str__(self):
        return f"{self.credential_type} for identity {self.identity_id}"

    def __repr__(self):  # the ciphertext is not shown either
        return f"<ProviderCredential {self.pk} {self.credential_type}>"

    @property
    def context(self) -> str:
        """Associated data binding the ciphertext to this row (see rediska.crypto)."""
        return f"provider_credentials:{self.provider_id}:{self.identity_id}:{self.credential_type}"


class DoNotContact(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, db_index=False, related_name="+")
    external_username = models.CharField(max_length=128)
    reason = models.CharField(max_length=255, null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "do_not_contact"
        ordering = ["external_username"]
        verbose_name = "do-not-contact entry"
        verbose_name_plural = "do-not-contact list"
        constraints = [models.UniqueConstraint(fields=["provider", "external_username"], name="uq_dnc")]

    def __str__(self):
        return self.external_username
