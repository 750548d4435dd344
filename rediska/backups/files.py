"""File helpers shared by dump, snapshot and restore: hashing, a space budget, safe copies."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from pathlib import Path, PurePosixPath

from django.conf import settings

from .errors import BackupError, BackupSpaceError

CHUNK = 1024 * 1024
_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Budget:
    """Bytes this run may still write: BACKUP_MAX_BYTES (a test or a quota), else unlimited."""

    def __init__(self, max_bytes: int | None = None):
        if max_bytes is None:
            max_bytes = settings.BACKUP_MAX_BYTES
        self.max_bytes = int(max_bytes) if max_bytes else None
        self.used = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.max_bytes is not None and self.used > self.max_bytes:
            raise BackupSpaceError(
                f"The backup needs more than the {self.max_bytes} bytes allowed (BACKUP_MAX_BYTES); "
                "nothing was replaced."
            )

    def refund(self, n: int) -> None:
        self.used -= n


@contextlib.contextmanager
def disk_errors(where: Path):
    """Turn a full disk into a BackupSpaceError with a plain message."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _SPACE_ERRNOS:
            raise BackupSpaceError(f"The disk holding {where} is full; nothing was replaced.") from None
        raise


class HashingWriter:
    """A binary file writer that hashes, counts and charges the budget as it goes."""

    def __init__(self, path: Path, budget: Budget):
        self.path, self.budget = path, budget
        self.digest = hashlib.sha256()
        self.size = 0
        self._fh = open(path, "xb")

    def write(self, data: bytes) -> int:
        self.budget.spend(len(data))
        self._fh.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


def copy_hashing(src: Path, dst: Path, budget: Budget) -> tuple[str, int]:
    """Copy src to dst (exclusive create) and return the sha256/size of what was copied."""
    writer = HashingWriter(dst, budget)
    try:
        with open(src, "rb") as fh:
            while chunk := fh.read(CHUNK):
                writer.write(chunk)
    finally:
        writer.close()
    os.utime(dst, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns))
    return writer.sha256, writer.size


def safe_relpath(rel: str) -> PurePosixPath:
    """A path from a manifest, refused if it could escape its folder."""
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or any(part in ("..", "") for part in path.parts) or "\\" in rel:
        raise BackupError(f"The manifest lists an unsafe file path {rel!r}; this backup cannot be trusted.")
    return path


def write_sidecar(path: Path, digest: str, budget: Budget) -> Path:
    """`<file>.sha256` in sha256sum's format, so `sha256sum -c` works on it too."""
    sidecar = path.with_name(path.name + ".sha256")
    data = f"{digest}  {path.name}\n".encode()
    budget.spend(len(data))
    sidecar.write_bytes(data)
    return sidecar
