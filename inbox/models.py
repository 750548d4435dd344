"""Counterpart accounts, conversations, messages and attachments (spec §5)."""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, Visibility, created_at, enum_check, updated_at


class ExternalAccountRemoteStatus(models.TextChoices):
    ACTIVE = "active"
    DELETED = "deleted"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"


class ExternalAccountAnalysisState(models.TextChoices):
    NOT_ANALYZED = "not_analyzed", "Not analyzed"
    ANALYZED = "analyzed", "Analyzed"
    NEEDS_REFRESH = "needs_refresh", "Needs refresh"


class ExternalAccountContactState(models.TextChoices):
    NOT_CONTACTED = "not_contacted", "Not contacted"
    CONTACTED = "contacted", "Contacted"


class ExternalAccountEngagementState(models.TextChoices):
    NOT_ENGAGED = "not_engaged", "Not engaged"
    ENGAGED = "engaged", "Engaged"


class ExternalAccount(models.Model):
    RemoteStatus = ExternalAccountRemoteStatus

    AnalysisState = ExternalAccountAnalysisState

    ContactState = ExternalAccountContactState

    EngagementState = ExternalAccountEngagementState

    # Statuses nobody can write to, and why, in the words the pages show.
    UNREACHABLE = {
        ExternalAccountRemoteStatus.SUSPENDED: "This account is suspended on the provider.",
        ExternalAccountRemoteStatus.DELETED: "This account no longer exists on the provider.",
    }

    provider = models.ForeignKey("identities.Provider", on_delete=models.PROTECT, db_index=False, related_name="+")
    external_user_id = models.CharField(max_length=128, null=True, blank=True)
    external_username = models.CharField(max_length=128)
    remote_status = models.CharField(
        max_length=9, choices=RemoteStatus.choices, default=RemoteStatus.UNKNOWN, db_default=RemoteStatus.UNKNOWN
    )
    remote_status_last_seen_at = models.DateTimeField(null=True, blank=True)
    analysis_state = models.CharField(
        max_length=13, choices=AnalysisState.choices,
        default=AnalysisState.NOT_ANALYZED, db_default=AnalysisState.NOT_ANALYZED,
    )
    contact_state = models.CharField(
        max_length=13, choices=ContactState.choices,
        default=ContactState.NOT_CONTACTED, db_default=ContactState.NOT_CONTACTED,
    )
    engagement_state = models.CharField(
        max_length=11, choices=EngagementState.choices,
        default=EngagementState.NOT_ENGAGED, db_default=EngagementState.NOT_ENGAGED,
    )
    first_analyzed_at = models.DateTimeField(null=True, blank=True)
    first_contacted_at = models.DateTimeField(null=True, blank=True)
    first_inbound_after_contact_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "external_accounts"
        ordering = ["external_username"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_username"], name="uq_account"),
            enum_check("external_accounts", "remote_status", ExternalAccountRemoteStatus.choices),
            enum_check("external_accounts", "analysis_state", ExternalAccountAnalysisState.choices),
            enum_check("external_accounts", "contact_state", ExternalAccountContactState.choices),
            enum_check("external_accounts", "engagement_state", ExternalAccountEngagementState.choices),
        ]
        indexes = [
            models.Index(fields=["provider", "remote_status"], name="idx_remote_status"),
            models.Index(fields=["analysis_state", "contact_state", "engagement_state"], name="idx_states"),
        ]

    def __str__(self):
        return self.external_username

    @property
    def unreachable_reason(self) -> str:
        """Why nobody can write to this account (suspended or deleted on the provider), or ""."""
        return self.UNREACHABLE.get(self.remote_status, "")


class MessageDirection(models.TextChoices):
    IN = "in", "Incoming"
    OUT = "out", "Outgoing"
    SYSTEM = "system", "System"


class Conversation(models.Model):
    provider = models.ForeignKey("identities.Provider", on_delete=models.PROTECT, db_index=False, related_name="+")
    external_conversation_id = models.CharField(max_length=128)
    counterpart_account = models.ForeignKey(
        ExternalAccount, on_delete=models.PROTECT, db_index=False, related_name="conversations"
    )
    identity = models.ForeignKey(
        "identities.Identity", on_delete=models.PROTECT, db_index=False, related_name="conversations"
    )
    created_at = created_at()
    updated_at = updated_at()
    last_activity_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Beyond the DDL: the thread's subject, and its newest message (kept by
    # ingest and send) so the list can show it with one join, and that
    # message's direction so the list filters (needs reply) without any join.
    subject = models.CharField(max_length=300, null=True, blank=True)
    last_message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, db_index=False, related_name="+"
    )
    last_direction = models.CharField(max_length=6, choices=MessageDirection.choices, null=True, blank=True)
    # Conversation state (issue 15).  Each mark remembers the newest message
    # when it was set: a later incoming message (a higher id than that) means
    # they wrote since, which makes the conversation unread, ends a snooze and
    # settles a follow-up, without ingest having to touch these columns.
    read_message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, db_index=False, related_name="+"
    )
    marked_unread = models.BooleanField(default=False, db_default=False)
    snoozed_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)  # null while snoozed: until they reply
    snooze_message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, db_index=False, related_name="+"
    )
    follow_up_at = models.DateTimeField(null=True, blank=True)
    follow_up_message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, db_index=False, related_name="+"
    )

    class Meta:
        db_table = "conversations"
        ordering = ["-last_activity_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_conversation_id"], name="uq_conv"),
        ]
        indexes = [
            models.Index(fields=["counterpart_account"], name="idx_conv_counterpart"),
            models.Index(fields=["identity"], name="idx_conv_identity"),
            models.Index(fields=["last_activity_at"], name="idx_conv_last_activity"),
            models.Index(fields=["last_direction", "last_activity_at"], name="idx_conv_direction_activity"),
            models.Index(fields=["follow_up_at"], name="idx_conv_follow_up"),
        ]

    def __str__(self):
        return f"Conversation {self.pk} with {self.counterpart_account_id}"


class Message(models.Model):
    Direction = MessageDirection

    provider = models.ForeignKey("identities.Provider", on_delete=models.PROTECT, db_index=False, related_name="+")
    external_message_id = models.CharField(max_length=128, null=True, blank=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, db_index=False, related_name="messages")
    identity = models.ForeignKey(
        "identities.Identity", on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="+"
    )
    direction = models.CharField(max_length=6, choices=Direction.choices)
    sent_at = models.DateTimeField()
    body_text = MediumTextField(null=True, blank=True)
    remote_visibility = models.CharField(
        max_length=17, choices=Visibility.choices, default=Visibility.UNKNOWN, db_default=Visibility.UNKNOWN
    )
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "messages"
        ordering = ["sent_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_message_id"], name="uq_msg_ext"),
            enum_check("messages", "direction", MessageDirection.choices),
            enum_check("messages", "remote_visibility", Visibility.choices),
        ]
        indexes = [
            models.Index(fields=["conversation", "sent_at"], name="idx_msg_conv_time"),
            models.Index(fields=["identity"], name="idx_msg_identity"),
        ]

    def __str__(self):
        return f"Message {self.pk} ({self.direction})"


class AttachmentStorageBackend(models.TextChoices):
    FS = "fs", "Local filesystem"


class Attachment(models.Model):
    StorageBackend = AttachmentStorageBackend

    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="attachments"
    )
    storage_backend = models.CharField(
        max_length=2, choices=StorageBackend.choices, default=StorageBackend.FS, db_default=StorageBackend.FS
    )
    storage_key = models.CharField(max_length=512)
    sha256 = models.CharField(max_length=64)
    mime_type = models.CharField(max_length=128)
    size_bytes = models.BigIntegerField()
    width_px = models.IntegerField(null=True, blank=True)
    height_px = models.IntegerField(null=True, blank=True)
    remote_visibility = models.CharField(
        max_length=17, choices=Visibility.choices, default=Visibility.UNKNOWN, db_default=Visibility.UNKNOWN
    )
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "attachments"
        constraints = [
            enum_check("attachments", "storage_backend", AttachmentStorageBackend.choices),
            enum_check("attachments", "remote_visibility", Visibility.choices),
        ]
        indexes = [
            models.Index(fields=["message"], name="idx_attach_msg"),
            models.Index(fields=["sha256"], name="idx_attach_sha"),
        ]

    def __str__(self):
        return self.storage_key


class SyncFolder(models.TextChoices):
    INBOX = "inbox", "Inbox"
    SENT = "sent", "Sent"


class SyncCursor(models.Model):
    """How far the archive of one identity's folder has come, and the walk under way.

    A walk pages from the newest message down to `walk_stop_at` (None: to the
    end of the folder).  `walk_after` advances in the same transaction as the
    page it covers, so a killed walk resumes where it stopped.  When a walk
    completes, `synced_until` moves up to the newest message it saw: every
    message sent up to then is archived.  The lease keeps two walks of one
    folder from interleaving (a dead worker's lease simply expires).
    """

    Folder = SyncFolder

    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="inbox_cursors")
    folder = models.CharField(max_length=8, choices=Folder.choices)
    synced_until = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    backfilled_at = models.DateTimeField(null=True, blank=True)
    walk_started_at = models.DateTimeField(null=True, blank=True)
    walk_after = models.CharField(max_length=128, null=True, blank=True)
    walk_stop_at = models.DateTimeField(null=True, blank=True)
    walk_top_at = models.DateTimeField(null=True, blank=True)
    walk_pages = models.IntegerField(default=0)
    walk_messages = models.IntegerField(default=0)
    walk_new = models.IntegerField(default=0)
    lease_owner = models.CharField(max_length=64, null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = updated_at()

    class Meta:
        db_table = "inbox_sync_cursors"
        ordering = ["identity_id", "folder"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "folder"], name="uq_sync_cursor"),
            enum_check("inbox_sync_cursors", "folder", SyncFolder.choices),
        ]

    def __str__(self):
        return f"{self.folder} cursor of identity {self.identity_id}"

    @property
    def walking(self) -> bool:
        return self.walk_started_at is not None


class ListingState(models.Model):
    """Whether one of the provider's message listings works for an identity (as last seen by a walk).

    Providers retire listings for some apps (answering a redirect to a login
    page); the identity page says in plain words which ones still serve.
    """

    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="listing_states")
    folder = models.CharField(max_length=8, choices=SyncFolder.choices)
    listing = models.CharField(max_length=32)
    label = models.CharField(max_length=200)
    works = models.BooleanField()
    detail = models.CharField(max_length=255, blank=True, default="")
    checked_at = models.DateTimeField()

    class Meta:
        db_table = "inbox_listing_states"
        ordering = ["identity_id", "folder", "id"]
        constraints = [models.UniqueConstraint(fields=["identity", "listing"], name="uq_listing_state")]

    def __str__(self):
        return f"{self.listing} of identity {self.identity_id}: {'works' if self.works else 'stopped'}"


class SendAttemptStatus(models.TextChoices):
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class SendAttempt(models.Model):
    """One Send click, keyed by the form's idempotency key: a repeat sends nothing."""

    Status = SendAttemptStatus

    idempotency_key = models.CharField(max_length=64)
    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.PROTECT, null=True, blank=True, related_name="send_attempts"
    )
    to_username = models.CharField(max_length=128)
    subject = models.CharField(max_length=300, null=True, blank=True)
    body_text = MediumTextField()
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    message = models.ForeignKey(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    error_code = models.CharField(max_length=64, null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()
    # A first message to someone this identity never wrote with: counted by the daily pacing cap.
    is_first_message = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "inbox_send_attempts"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="uq_send_attempt_key"),
            enum_check("inbox_send_attempts", "status", SendAttemptStatus.choices),
        ]
        indexes = [models.Index(fields=["identity", "is_first_message", "created_at"], name="idx_send_first_day")]

    def __str__(self):
        return f"Send attempt {self.idempotency_key} ({self.status})"


class ExportImportStatus(models.TextChoices):
    QUEUED = "queued", "Waiting"
    SCANNING = "scanning", "Checking the files"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"


class ExportImport(models.Model):
    """One import of a data export into an identity's archive, resumable where it stopped.

    The first pass (`plan_json`) checks every file and learns who is in each
    chat; the second stores rows in batches, and `cursor_member`/`cursor_row`
    advance in the same transaction as each batch, so a killed worker's job
    resumes at the next row: nothing stored twice, nothing missed.
    """

    Status = ExportImportStatus

    token = models.CharField(max_length=32)
    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="export_imports")
    source_path = models.CharField(max_length=1024)
    original_name = models.CharField(max_length=255)
    # An upload kept under DATA_DIR only for this import (deleted when it finishes);
    # a path given to the command is the user's own and never deleted.
    owned = models.BooleanField(default=False)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    plan_json = models.JSONField(null=True, blank=True)
    cursor_member = models.IntegerField(default=0)
    cursor_row = models.IntegerField(default=0)
    summary_json = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "inbox_export_imports"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["token"], name="uq_export_import_token"),
            enum_check("inbox_export_imports", "status", ExportImportStatus.choices),
        ]

    def __str__(self):
        return f"Import {self.token} of {self.original_name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.SCANNING, self.Status.IMPORTING)
# --- the user's own workflow: labels, notes on people, saved replies --------------------


class Label(models.Model):
    """A word the user tags conversations and people with; `key` (lower case) keeps names unique."""

    name = models.CharField(max_length=40)
    key = models.CharField(max_length=40)
    created_at = created_at()

    class Meta:
        db_table = "inbox_labels"
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["key"], name="uq_label_key")]

    def __str__(self):
        return self.name


class ConversationLabel(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, db_index=False,
                                     related_name="label_links")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="conversation_links")
    created_at = created_at()

    class Meta:
        db_table = "inbox_conversation_labels"
        constraints = [models.UniqueConstraint(fields=["conversation", "label"], name="uq_conversation_label")]


class AccountLabel(models.Model):
    account = models.ForeignKey(ExternalAccount, on_delete=models.CASCADE, db_index=False,
                                related_name="label_links")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="account_links")
    created_at = created_at()

    class Meta:
        db_table = "inbox_account_labels"
        constraints = [models.UniqueConstraint(fields=["account", "label"], name="uq_account_label")]


class AccountNote(models.Model):
    """A private note the user wrote about a person: never sent, shown to the agents as the user's words."""

    account = models.ForeignKey(ExternalAccount, on_delete=models.PROTECT, db_index=False, related_name="notes")
    body = models.TextField()
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "inbox_account_notes"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"], name="idx_note_account")]

    def __str__(self):
        return f"Note {self.pk} on account {self.account_id}"


class SavedReply(models.Model):
    """A reusable text with placeholders ({name}, {post_title}, {identity}) filled in when inserted."""

    title = models.CharField(max_length=100)
    body = MediumTextField()
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "inbox_saved_replies"
        ordering = ["title", "id"]
        verbose_name_plural = "saved replies"
        constraints = [models.UniqueConstraint(fields=["title"], name="uq_saved_reply_title")]

    def __str__(self):
        return self.title
