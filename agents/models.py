"""LLM outputs: profile snapshots (spec §5), the recorded LLM calls and drafts."""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, created_at, enum_check, updated_at


class ProfileSnapshot(models.Model):
    account = models.ForeignKey(
        "inbox.ExternalAccount", on_delete=models.PROTECT, db_index=False, related_name="profile_snapshots"
    )
    fetched_at = models.DateTimeField()
    summary_text = MediumTextField(null=True, blank=True)
    signals_json = models.JSONField(null=True, blank=True)
    risk_flags_json = models.JSONField(null=True, blank=True)
    model_info_json = models.JSONField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "profile_snapshots"
        ordering = ["-fetched_at", "-id"]
        indexes = [models.Index(fields=["account", "fetched_at"], name="idx_snap_account_fetched")]

    def __str__(self):
        return f"Snapshot {self.pk} of account {self.account_id}"


class LLMCallEndpoint(models.TextChoices):
    CHAT = "chat", "Chat"
    EMBEDDINGS = "embeddings", "Embeddings"


class LLMCallStatus(models.TextChoices):
    OK = "ok", "OK"
    INVALID = "invalid", "Invalid reply"
    ERROR = "error", "Error"


class LLMCall(models.Model):
    """One request to a model server, whatever its outcome (written by the
    `rediska.llm` call listener that `agents` installs)."""

    Endpoint = LLMCallEndpoint
    Status = LLMCallStatus

    job = models.ForeignKey(
        "rediska.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="llm_calls"
    )
    operation = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=10, choices=LLMCallEndpoint.choices)
    model = models.CharField(max_length=128)
    prompt_version = models.CharField(max_length=64, blank=True, default="")
    attempt = models.PositiveSmallIntegerField(default=1)
    request_json = models.JSONField()
    response_text = MediumTextField(null=True, blank=True)
    status = models.CharField(max_length=7, choices=LLMCallStatus.choices)
    error_detail = models.TextField(null=True, blank=True)
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(default=0)
    created_at = created_at()

    class Meta:
        db_table = "llm_calls"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["operation", "created_at"], name="idx_llm_call_operation")]
        constraints = [
            enum_check("llm_calls", "endpoint", LLMCallEndpoint.choices),
            enum_check("llm_calls", "status", LLMCallStatus.choices),
        ]

    def __str__(self):
        return f"LLM call {self.pk} {self.operation} {self.status}"

    @property
    def messages(self) -> list[dict]:
        return (self.request_json or {}).get("messages") or []


class DraftKind(models.TextChoices):
    INTRO = "intro", "Intro"
    REPLY = "reply", "Reply suggestion"


class DraftStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENT = "sent", "Sent"
    DISCARDED = "discarded", "Discarded"


class Draft(models.Model):
    """A message the model wrote for the user to edit; only ever sent by the user."""

    Kind = DraftKind
    Status = DraftStatus

    kind = models.CharField(max_length=5, choices=DraftKind.choices)
    status = models.CharField(max_length=9, choices=DraftStatus.choices, default=DraftStatus.DRAFT, db_default=DraftStatus.DRAFT)
    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey("inbox.ExternalAccount", on_delete=models.PROTECT, related_name="+")
    lead_post = models.ForeignKey(
        "leads.LeadPost", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(max_length=300, null=True, blank=True)
    body_text = MediumTextField()
    discard_reason = models.CharField(max_length=255, null=True, blank=True)
    llm_call = models.ForeignKey(LLMCall, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model_info_json = models.JSONField(null=True, blank=True)
    sent_message = models.ForeignKey(
        "inbox.Message", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "drafts"
        ordering = ["-created_at", "-id"]
        constraints = [
            enum_check("drafts", "kind", DraftKind.choices),
            enum_check("drafts", "status", DraftStatus.choices),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} draft {self.pk} ({self.status})"
