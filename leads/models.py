"""Lead posts found in provider locations and public profile items (spec §5)."""

from __future__ import annotations

from django.db import models

from rediska.fields import MediumTextField, Visibility, created_at, enum_check, updated_at


class LeadPostStatus(models.TextChoices):
    NEW = "new", "New"
    SAVED = "saved", "Saved"
    IGNORED = "ignored", "Ignored"
    CONTACT_QUEUED = "contact_queued", "Queued for contact"
    CONTACTED = "contacted", "Contacted"


class LeadPost(models.Model):
    Status = LeadPostStatus

    provider = models.ForeignKey("identities.Provider", on_delete=models.PROTECT, db_index=False, related_name="+")
    source_location = models.CharField(max_length=128)
    external_post_id = models.CharField(max_length=128)
    post_url = models.CharField(max_length=512)
    author_account = models.ForeignKey(
        "inbox.ExternalAccount", on_delete=models.PROTECT, null=True, blank=True, db_index=False,
        related_name="lead_posts",
    )
    title = models.CharField(max_length=512, null=True, blank=True)
    body_text = MediumTextField(null=True, blank=True)
    post_created_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.NEW, db_default=Status.NEW)
    remote_visibility = models.CharField(
        max_length=17, choices=Visibility.choices, default=Visibility.UNKNOWN, db_default=Visibility.UNKNOWN
    )
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()
    # Beyond the DDL: the agent's lead score lives on the row so the leads list
    # can sort by it without the leads app importing agents.
    score = models.SmallIntegerField(null=True, blank=True)
    score_reasons_json = models.JSONField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "lead_posts"
        ordering = ["-post_created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_post_id"], name="uq_lead"),
            enum_check("lead_posts", "status", LeadPostStatus.choices),
            enum_check("lead_posts", "remote_visibility", Visibility.choices),
            models.CheckConstraint(
                condition=models.Q(score__isnull=True) | models.Q(score__gte=0, score__lte=100),
                name="ck_lead_posts_score",
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "source_location"], name="idx_source"),
            models.Index(fields=["author_account"], name="idx_author"),
            models.Index(fields=["status"], name="idx_status"),
        ]

    def __str__(self):
        return self.title or self.external_post_id

    @property
    def top_reason(self) -> str:
        """The model's first reason for the score (the list and Today show it under the number)."""
        reasons = (self.score_reasons_json or {}).get("reasons") if isinstance(self.score_reasons_json, dict) else None
        return str(reasons[0]) if isinstance(reasons, list) and reasons else ""


class ProfileItemItemType(models.TextChoices):
    POST = "post", "Post"
    COMMENT = "comment", "Comment"
    IMAGE = "image", "Image"


class ProfileItem(models.Model):
    ItemType = ProfileItemItemType

    account = models.ForeignKey(
        "inbox.ExternalAccount", on_delete=models.PROTECT, db_index=False, related_name="profile_items"
    )
    item_type = models.CharField(max_length=7, choices=ItemType.choices)
    external_item_id = models.CharField(max_length=128)
    item_created_at = models.DateTimeField(null=True, blank=True)
    text_content = MediumTextField(null=True, blank=True)
    attachment = models.ForeignKey(
        "inbox.Attachment", on_delete=models.PROTECT, null=True, blank=True, related_name="profile_items"
    )
    remote_visibility = models.CharField(
        max_length=17, choices=Visibility.choices, default=Visibility.UNKNOWN, db_default=Visibility.UNKNOWN
    )
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    # Beyond the DDL: where and under what title the item appeared, and its
    # address, so the person page can show and link it.
    location = models.CharField(max_length=128, null=True, blank=True)
    title = models.CharField(max_length=512, null=True, blank=True)
    url = models.CharField(max_length=512, null=True, blank=True)

    class Meta:
        db_table = "profile_items"
        ordering = ["-item_created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "item_type", "external_item_id"], name="uq_item"),
            enum_check("profile_items", "item_type", ProfileItemItemType.choices),
            enum_check("profile_items", "remote_visibility", Visibility.choices),
        ]
        indexes = [models.Index(fields=["account", "item_type"], name="idx_item_type")]

    def __str__(self):
        return f"{self.item_type} {self.external_item_id}"


class PostSort(models.TextChoices):
    NEW = "new", "New"
    HOT = "hot", "Hot"
    TOP = "top", "Top"


class Watch(models.Model):
    """A location (plus optional keyword query) browsed by beat on its own interval.

    Beyond the DDL.  A watch that keeps failing pauses itself (`paused_reason`);
    `last_visited_at` is when the user last opened the leads list for it, so the
    list can mark posts first seen after that as new.
    """

    Sort = PostSort

    identity = models.ForeignKey("identities.Identity", on_delete=models.PROTECT, related_name="watches")
    location = models.CharField(max_length=128)
    query = models.CharField(max_length=256, blank=True, default="", db_default="")
    sort = models.CharField(max_length=3, choices=Sort.choices, default=Sort.NEW, db_default=Sort.NEW)
    limit = models.PositiveIntegerField(default=100, db_default=100)
    interval_seconds = models.PositiveIntegerField(default=3600, db_default=3600)
    enabled = models.BooleanField(default=True, db_default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, db_default=0)
    last_error = models.CharField(max_length=500, null=True, blank=True)
    paused_reason = models.CharField(max_length=500, null=True, blank=True)
    last_visited_at = models.DateTimeField(null=True, blank=True)
    # Score the watch's new leads in the background (only when a model is configured).
    auto_score = models.BooleanField(default=True, db_default=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "lead_watches"
        ordering = ["location", "query", "id"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "location", "query", "sort"], name="uq_watch"),
            enum_check("lead_watches", "sort", PostSort.choices),
        ]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="idx_watch_due")]

    def __str__(self):
        return f"{self.location} “{self.query}”" if self.query else self.location

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_reason)


class WatchHit(models.Model):
    """A post a watch found; `first_seen_at` drives "new since last visit"."""

    watch = models.ForeignKey(Watch, on_delete=models.CASCADE, db_index=False, related_name="hits")
    lead_post = models.ForeignKey(LeadPost, on_delete=models.CASCADE, related_name="watch_hits")
    first_seen_at = models.DateTimeField()

    class Meta:
        db_table = "lead_watch_hits"
        constraints = [models.UniqueConstraint(fields=["watch", "lead_post"], name="uq_watch_hit")]
        indexes = [models.Index(fields=["watch", "first_seen_at"], name="idx_watch_hit_seen")]


class AccountProfile(models.Model):
    """The public "about" data of a counterpart, and how the last fetch went.

    Beyond the DDL: `external_accounts` has no column for it, and the person
    page must say why a profile could not be read.
    """

    account = models.OneToOneField(
        "inbox.ExternalAccount", on_delete=models.PROTECT, related_name="profile", primary_key=True
    )
    about_json = models.JSONField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    items_fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_error = models.CharField(max_length=500, null=True, blank=True)
    fetch_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = updated_at()

    class Meta:
        db_table = "account_profiles"

    def __str__(self):
        return f"profile of account {self.account_id}"
