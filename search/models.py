"""Questions asked of the archive ("Ask your archive") and their answers.

The index itself is derived data and lives outside the database; a question is the
user's own record: what was asked, under which filters, what the local model answered
and which archived items it cited.  An answer is stored only when complete.
"""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, created_at, enum_check, updated_at


class ArchiveQuestionStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the model"
    ANSWERED = "answered", "Answered"
    NOTHING_FOUND = "nothing", "Nothing relevant found"
    FAILED = "failed", "Failed"


class ArchiveQuestion(models.Model):
    Status = ArchiveQuestionStatus

    question = models.TextField()
    filters_json = models.JSONField(default=dict)  # the search filters, as the form's GET parameters
    status = models.CharField(max_length=8, choices=ArchiveQuestionStatus.choices, default=ArchiveQuestionStatus.QUEUED)
    answer_text = MediumTextField(null=True, blank=True)
    # [{"n", "doc_id", "doc_type", "title", "url", "created_at", "excerpt"}] of the items the answer cites.
    citations_json = models.JSONField(default=list)
    notices_json = models.JSONField(default=list)  # e.g. "search by meaning was unavailable"
    error = models.TextField(null=True, blank=True)
    job = models.ForeignKey("rediska.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    llm_call_ids = models.JSONField(default=list)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "archive_questions"
        ordering = ["-created_at", "-id"]
        constraints = [enum_check("archive_questions", "status", ArchiveQuestionStatus.choices)]

    def __str__(self):
        return f"Question {self.pk} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.QUEUED
