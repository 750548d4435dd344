"""Incremental attachments snapshots, their checks, and putting files back.

Every file is hashed; one whose content is already in the previous snapshot is
hard-linked from there (after checking that copy's hash, so damage is never
carried forward) instead of being copied again.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BackupError, BackupSpaceError
from .files import Budget, copy_hashing, disk_errors, safe_relpath, sha256_file

FOLDER = "attachments"
_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


@dataclass
class SnapshotResult:
    files: dict[str, dict] = field(default_factory=dict)
    linked: int = 0
    copied: int = 0
    copied_bytes: int = 0

    @property
    def bytes(self) -> int:
        return sum(f["size"] for f in self.files.values())


def walk_files(root: Path):
    """Regular files under root as (posix relative path, path); symlinks are not followed."""
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(root).as_posix(), path


def take_snapshot(source: Path, dest: Path, previous: tuple[Path, dict] | None, budget: Budget) -> SnapshotResult:
    result = SnapshotResult()
    prev_dir, prev_files = previous or (None, {})
    by_hash = {meta["sha256"]: rel for rel, meta in prev_files.items()}
    dest.mkdir()
    with disk_errors(dest):
        for rel, path in walk_files(source):
            try:
                digest, size = sha256_file(path)
            except FileNotFoundError:
                continue  # removed while we walked: nothing to keep
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if digest in by_hash and _link_verified(prev_dir / by_hash[digest], target, digest, size):
                result.linked += 1
            else:
                # The copy's own hash is what the manifest records (the file may change meanwhile).
                digest, size = copy_hashing(path, target, budget)
                result.copied += 1
                result.copied_bytes += size
            result.files[rel] = {"sha256": digest, "size": size}
    return result


def _link_verified(previous: Path, target: Path, digest: str, size: int) -> bool:
    try:
        if previous.stat().st_size != size or sha256_file(previous)[0] != digest:
            return False
        os.link(previous, target)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in _LINK_FALLBACK:
            return False  # another filesystem, or no hard links there: copy instead
        raise


def check_snapshot(folder: Path, files: dict[str, dict]) -> list[str]:
    """Problems found comparing a snapshot folder with its manifest entries (empty: all good)."""
    problems = []
    for rel, meta in sorted(files.items()):
        path = folder / safe_relpath(rel)
        if not path.is_file():
            problems.append(f"{rel} is missing")
            continue
        digest, size = sha256_file(path)
        if size != meta["size"]:
            problems.append(f"{rel} has {size} bytes, expected {meta['size']} (truncated or changed)")
        elif digest != meta["sha256"]:
            problems.append(f"{rel} does not match its sha256 (damaged)")
    for rel, _ in walk_files(folder):
        if rel not in files:
            problems.append(f"{rel} is not in the manifest")
    return problems


@dataclass
class RestoreFilesResult:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass
class RestorePlan:
    """What putting a snapshot back would change, worked out before anything is changed."""

    write: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes: int = 0


def _same_file(path: Path, meta: dict) -> bool:
    return (path.is_file() and not path.is_symlink() and path.stat().st_size == meta["size"]
            and sha256_file(path)[0] == meta["sha256"])


def plan_restore(files: dict[str, dict], target_root: Path, *, remove_extra: bool) -> RestorePlan:
    plan = RestorePlan()
    for rel, meta in sorted(files.items()):
        if _same_file(target_root / safe_relpath(rel), meta):
            plan.unchanged += 1
        else:
            plan.write.append(rel)
            plan.bytes += meta["size"]
    if remove_extra:
        plan.remove = [rel for rel, _ in walk_files(target_root) if rel not in files]
    return plan


def check_room(plan: RestorePlan, target_root: Path) -> None:
    """Refuse a restore whose files would not fit, before the database is replaced."""
    existing = next(p for p in (target_root, *target_root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if plan.bytes > free:
        raise BackupSpaceError(f"Restoring the attachments needs {plan.bytes} bytes but the disk holding "
                               f"{target_root} has {free} free; nothing was restored.")


def apply_restore(plan: RestorePlan, folder: Path, files: dict[str, dict], target_root: Path) -> RestoreFilesResult:
    """Make target_root hold the snapshot's files; each file is replaced atomically."""
    result = RestoreFilesResult(unchanged=plan.unchanged)
    target_root.mkdir(parents=True, exist_ok=True)
    unlimited = Budget(max_bytes=0)
    with disk_errors(target_root):
        for rel in plan.write:
            dst = target_root / safe_relpath(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.restoring")
            tmp.unlink(missing_ok=True)
            digest, _ = copy_hashing(folder / rel, tmp, unlimited)
            if digest != files[rel]["sha256"]:
                tmp.unlink()
                raise BackupError(f"The backup copy of {rel} is damaged; restore stopped.")
            os.replace(tmp, dst)
            result.written += 1
        for rel in plan.remove:
            path = target_root / rel
            if path.is_file():
                path.unlink()
                result.removed += 1
        if plan.remove:
            _remove_empty_dirs(target_root)
    return result


def _remove_empty_dirs(root: Path) -> None:
    for folder, _, _ in os.walk(root, topdown=False):
        if Path(folder) != root:
            try:
                os.rmdir(folder)  # succeeds only when empty
            except OSError:
                pass
