"""Where backups are kept.  Targets are pluggable; the local folder is the one we ship.

A target hands out a local staging folder for a new backup, publishes it under its
final name only once it is complete, lists complete backups, gives a local folder
to read one from, and removes old ones.  A NAS or object-store target would keep
the same methods (staging locally, then uploading in `publish`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from .errors import BackupError

# 20260109T030000Z, or 20260109T030000Z-2 for a second backup in the same second.
NAME_RE = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d{1,4}))?$")
PARTIAL_SUFFIX = ".partial"
LOCK_NAME = ".lock"


def sort_key(name: str) -> tuple[str, int]:
    match = NAME_RE.match(name)
    return (match[1], int(match[2] or 1)) if match else ("", 0)


def check_name(name: str) -> str:
    """A backup name from the user: only our own timestamp names (no paths)."""
    if not NAME_RE.match(name or ""):
        raise BackupError(f"{name!r} is not a backup name (expected something like 20260109T030000Z).")
    return name


@dataclass(frozen=True)
class StoredBackup:
    name: str
    path: Path


class BackupTarget(ABC):
    description: str

    @abstractmethod
    def check_writable(self) -> None:
        """Raise BackupError unless a new backup can be written."""

    @abstractmethod
    def lock(self, *, exclusive: bool, wait: float = 0):
        """Context manager: one backup/restore at a time; restore tests may share.

        Waits up to `wait` seconds for a running one to finish, then refuses."""

    @abstractmethod
    def new_staging(self) -> tuple[str, Path]:
        """A fresh name and an empty local folder to write it into."""

    @abstractmethod
    def publish(self, name: str, staging: Path) -> Path:
        """Make a complete staging folder visible as backup `name`."""

    @abstractmethod
    def discard(self, staging: Path) -> None:
        """Remove a staging folder after a failed run."""

    @abstractmethod
    def list(self) -> list[StoredBackup]:
        """Complete backups, oldest first."""

    @abstractmethod
    def get(self, name: str) -> StoredBackup:
        """One complete backup, readable from a local folder."""

    @abstractmethod
    def remove(self, name: str) -> None:
        ...

    @abstractmethod
    def clean_partials(self) -> list[str]:
        """Remove staging folders left by runs that died (called under the lock)."""


class LocalFolderTarget(BackupTarget):
    """BACKUPS_PATH/<timestamp>/ folders; `<timestamp>.partial/` while being written."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.description = f"local folder {self.root}"

    def _check_exists(self) -> None:
        if not self.root.exists():
            raise BackupError(
                f"BACKUPS_PATH {self.root} does not exist: create it (or mount the backup disk there) first."
            )
        if not self.root.is_dir():
            raise BackupError(f"BACKUPS_PATH {self.root} is not a folder.")

    def check_writable(self) -> None:
        self._check_exists()
        # Try for real: os.access() says yes to root even on a read-only folder.
        probe = self.root / f".write-test-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError(f"BACKUPS_PATH {self.root} is full.") from None
            raise BackupError(f"BACKUPS_PATH {self.root} is not writable ({exc.strerror}).") from None

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool, wait: float = 0):
        self._check_exists()
        try:
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            if exclusive:
                raise BackupError(f"BACKUPS_PATH {self.root} is not writable.") from None
            yield  # a read-only backup disk can still be restore-tested
            return
        try:
            _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, wait)
            yield
        finally:
            os.close(fd)

    def new_staging(self) -> tuple[str, Path]:
        base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        # Within one second, number after every name of that second still present
        # (pruning may have removed the first), so the newest backup sorts last.
        taken = [sort_key(p.name.removesuffix(PARTIAL_SUFFIX))[1] for p in self.root.glob(base + "*")]
        n = max(taken, default=0) + 1
        name = base if n == 1 else f"{base}-{n}"
        staging = self.root / (name + PARTIAL_SUFFIX)
        try:
            staging.mkdir()
        except OSError as exc:
            raise BackupError(f"Cannot write to BACKUPS_PATH {self.root} ({exc.strerror}).") from None
        return name, staging

    def publish(self, name: str, staging: Path) -> Path:
        final = self.root / name
        os.rename(staging, final)
        _fsync_dir(self.root)
        return final

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def list(self) -> list[StoredBackup]:
        self._check_exists()
        found = [StoredBackup(p.name, p) for p in self.root.iterdir() if NAME_RE.match(p.name) and p.is_dir()]
        return sorted(found, key=lambda b: sort_key(b.name))

    def get(self, name: str) -> StoredBackup:
        check_name(name)
        self._check_exists()
        path = self.root / name
        if not path.is_dir():
            raise BackupError(f"There is no backup named {name} in {self.description}.")
        return StoredBackup(name, path)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.root / check_name(name))

    def clean_partials(self) -> list[str]:
        removed = []
        for path in self.root.iterdir():
            if path.name.endswith(PARTIAL_SUFFIX) and NAME_RE.match(path.name[: -len(PARTIAL_SUFFIX)]):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return sorted(removed)


def _flock(fd: int, mode: int, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                if wait:
                    raise BackupError(f"Another backup, restore or restore test is still running after {wait:g} s; "
                                      "try again later.") from None
                raise BackupError("Another backup, restore or restore test is running; try again later.") from None
            time.sleep(min(0.2, left))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TARGETS = {"local": lambda: LocalFolderTarget(settings.BACKUPS_PATH)}


def get_target() -> BackupTarget:
    kind = settings.BACKUP_TARGET
    try:
        return TARGETS[kind]()
    except KeyError:
        raise BackupError(f"BACKUP_TARGET {kind!r} is not known (choose from: {', '.join(sorted(TARGETS))}).") from None
