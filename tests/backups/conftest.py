import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import MessageFactory


@pytest.fixture
def folders(settings, tmp_path):
    """Fresh BACKUPS_PATH and ATTACHMENTS_PATH for one test."""
    settings.BACKUPS_PATH = tmp_path / "backups"
    settings.ATTACHMENTS_PATH = tmp_path / "attachments"
    settings.BACKUPS_PATH.mkdir()
    settings.ATTACHMENTS_PATH.mkdir()
    return settings


def write_attachment(root: Path, rel: str, content: bytes, message=None):
    from inbox.models import Attachment

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return Attachment.objects.create(
        message=message, storage_key=rel, sha256=hashlib.sha256(content).hexdigest(),
        mime_type="image/png", size_bytes=len(content),
    )


@pytest.fixture
def archive(folders):
    """A small archive: messages with quotes and backslashes, and three attachment files."""
    messages = [MessageFactory(body_text=text) for text in (
        "plain", "it's a '),(' trap \\ with backslash", "line one\nline two", "emoji 🎒 and \"quotes\"",
    )]
    root = folders.ATTACHMENTS_PATH
    write_attachment(root, "ab/one.png", b"\x89PNG one" * 100, messages[0])
    write_attachment(root, "ab/two.png", b"\x89PNG two" * 200, messages[1])
    write_attachment(root, "cd/three.jpg", os.urandom(5000), messages[2])
    return messages


def files_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def backup_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name != ".lock")


@contextmanager
def as_nobody():
    """Drop root's power to write anywhere (so read-only folders are read-only for the test)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


mysql_only = pytest.mark.skipif(connection.vendor != "mysql", reason="needs MySQL/MariaDB (MYSQL_URL)")


@pytest.fixture
def fake_client_bin(tmp_path, monkeypatch):
    """A folder first on PATH where a test can put stand-in mysqldump/mysql scripts."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@pytest.fixture
def no_mysql_clients(tmp_path, monkeypatch):
    """PATH with python but without the mysql/mysqldump clients."""
    folder = tmp_path / "emptybin"
    folder.mkdir()
    for tool in ("gzip", "sh"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, folder / tool)
    monkeypatch.setenv("PATH", str(folder))
    return folder


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs), to see ENOSPC rather than a simulated limit; needs root."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
