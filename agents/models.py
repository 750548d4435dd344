"""LLM outputs: profile snapshots (spec §5)."""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, created_at


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
