"""Backup errors: each carries one plain sentence for the user (command stderr, job error, page)."""

from __future__ import annotations


class BackupError(Exception):
    """A backup, restore test or restore that could not be done; nothing was overwritten."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


class BackupSpaceError(BackupError):
    """The backup would not fit (disk full, or more than BACKUP_MAX_BYTES)."""


class RestoreRefused(BackupError):
    """restore would be unsafe (no --yes, busy workers, newer schema, other database kind)."""


class RestoreTestFailed(BackupError):
    """restore_test ran and found a mismatch; `report` says which checks failed."""

    def __init__(self, report):
        failed = [check for check in report.checks if not check.ok]
        first = failed[0] if failed else None
        reason = f"{first.name}: {first.detail}" if first else "unknown reason"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        super().__init__(f"Restore test of {report.name or 'the backup'} failed: {reason}{more}")
        self.report = report
