"""Field helpers that keep the Django schema equal to the spec's MySQL DDL."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class MediumTextField(models.TextField):
    """MEDIUMTEXT on MySQL (16 MB cap, as the spec's DDL); TEXT elsewhere."""

    def db_type(self, connection):
        if connection.vendor == "mysql":
            return "mediumtext"
        return super().db_type(connection)


def created_at(**kwargs) -> models.DateTimeField:
    """DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP (Python default too, so the
    value is known right after save on every backend)."""
    return models.DateTimeField(default=timezone.now, db_default=Now(), **kwargs)


def updated_at() -> models.DateTimeField:
    # ON UPDATE CURRENT_TIMESTAMP is Django's auto_now: every save() bumps it.
    return models.DateTimeField(auto_now=True, db_default=Now())


def enum_check(table: str, field: str, choices) -> models.CheckConstraint:
    """The DDL's ENUM(...) as a CHECK constraint (enforced by MySQL 8, MariaDB, SQLite)."""
    values = [value for value, _ in choices]
    return models.CheckConstraint(condition=models.Q(**{f"{field}__in": values}), name=f"ck_{table}_{field}")


class Visibility(models.TextChoices):
    VISIBLE = "visible", "Visible"
    DELETED_BY_AUTHOR = "deleted_by_author", "Deleted by author"
    REMOVED = "removed", "Removed"
    UNKNOWN = "unknown", "Unknown"
