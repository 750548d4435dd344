"""Core tables: the append-only audit log and the job ledger (spec §5)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from .fields import MediumTextField, created_at, enum_check, updated_at


class AuditImmutableError(Exception):
    """Audit rows are append-only: the app never updates or deletes them."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("audit_log rows cannot be updated")

    def delete(self):
        raise AuditImmutableError("audit_log rows cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditImmutableError("audit_log rows cannot be updated")


class AuditLogActor(models.TextChoices):
    USER = "user"
    SYSTEM = "system"
    AGENT = "agent"


class AuditLogResult(models.TextChoices):
    OK = "ok"
    ERROR = "error"


class AuditLog(models.Model):
    Actor = AuditLogActor

    Result = AuditLogResult

    ts = created_at()
    actor = models.CharField(max_length=6, choices=Actor.choices)
    action_type = models.CharField(max_length=128)
    provider_id = models.CharField(max_length=32, null=True, blank=True)
    identity_id = models.BigIntegerField(null=True, blank=True)
    entity_type = models.CharField(max_length=64, null=True, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    request_json = models.JSONField(null=True, blank=True)
    response_json = models.JSONField(null=True, blank=True)
    result = models.CharField(max_length=5, choices=Result.choices)
    error_detail = MediumTextField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "audit_log"
        ordering = ["-ts", "-id"]
        indexes = [
            models.Index(fields=["ts"], name="idx_audit_ts"),
            models.Index(fields=["action_type"], name="idx_audit_action"),
            models.Index(fields=["provider_id"], name="idx_audit_provider"),
            models.Index(fields=["identity_id"], name="idx_audit_identity"),
        ]
        constraints = [
            enum_check("audit_log", "actor", AuditLogActor.choices),
            enum_check("audit_log", "result", AuditLogResult.choices),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise AuditImmutableError("audit_log rows cannot be updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("audit_log rows cannot be deleted")

    def __str__(self):
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.actor} {self.action_type} {self.result}"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    FAILED = "failed"
    DONE = "done"


class Job(models.Model):
    Status = JobStatus

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.RETRYING)

    queue_name = models.CharField(max_length=64)
    job_type = models.CharField(max_length=64)
    payload_json = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_default=Status.QUEUED)
    attempts = models.IntegerField(default=0, db_default=0)
    max_attempts = models.IntegerField(default=10, db_default=10)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_error = MediumTextField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=256, null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()
    # Beyond the DDL: live progress and outcome for the jobs page and the
    # identity page, and timings to tell a stuck job from a slow one.
    progress_json = models.JSONField(null=True, blank=True)
    result_json = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Liveness (rediska.jobs.reap_stale_jobs): the database's clock at the running
    # worker's last sign of life, the token of the run that owns the row (a run
    # that lost it stops at its next progress report), and how many times a lost
    # worker's job was put back in the queue.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    run_id = models.CharField(max_length=32, null=True, blank=True)
    resumed_count = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "jobs"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_run_at"], name="idx_jobs_status")]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="uq_dedupe"),
            enum_check("jobs", "status", JobStatus.choices),
        ]

    def __str__(self):
        return f"{self.job_type}#{self.pk} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def percent(self) -> int | None:
        """Progress as a percentage when the job knows its total."""
        progress = self.progress_json or {}
        total, done = progress.get("total"), progress.get("done")
        if not total or done is None:
            return 100 if self.status == self.Status.DONE else None
        return max(0, min(100, int(done * 100 / total)))

    def set_progress(self, **fields) -> None:
        """Merge fields into progress_json and save only that column (cheap, often).

        It doubles as a heartbeat.  Raises JobLost when this run no longer owns
        the row (the job was deleted, or resumed elsewhere after its worker was
        taken for lost), so a superseded run stops before doing more work.
        """
        self.progress_json = {**(self.progress_json or {}), **fields}
        rows = Job.objects.filter(pk=self.pk)
        if self.run_id:
            rows = rows.filter(run_id=self.run_id)
        if not rows.update(progress_json=self.progress_json, updated_at=timezone.now(), heartbeat_at=Now()):
            raise JobLost(self.pk)


class JobLost(Exception):
    """This run of a job no longer owns its row: deleted, or resumed by another worker."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        super().__init__(f"job {job_id} was deleted or resumed by another worker; this run stops")


class NotificationKind(models.TextChoices):
    REPLY = "reply", "New reply"
    LEAD = "lead", "Lead above the score"
    BACKUP = "backup", "Failed backup"


class Notification(models.Model):
    """One event to tell the user about through Apprise (an outbox row).

    Written where the event happens (in its transaction, cheaply); sent later by
    the `notify.send` task, alone or in a digest.  Title and body are short and
    carry no secrets; `dedupe_key` keeps one event from being told twice.
    """

    Kind = NotificationKind

    kind = models.CharField(max_length=6, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True, default="")
    url = models.CharField(max_length=300, blank=True, default="")
    dedupe_key = models.CharField(max_length=128)
    created_at = created_at()
    # Claimed by one send (a random batch id) before it goes out: two sends never tell one event twice.
    batch = models.CharField(max_length=32, null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="uq_notification_key"),
            enum_check("notifications", "kind", NotificationKind.choices),
        ]
        indexes = [models.Index(fields=["sent_at", "created_at"], name="idx_notification_pending")]

    def __str__(self):
        return f"{self.kind}: {self.title}"
