"""The local folder target's lock: scheduled runs queue behind each other, a restore does not wait."""

import fcntl
import os
import threading
import time

import pytest

from rediska.backups import services
from rediska.backups.errors import BackupError
from rediska.backups.targets import LOCK_NAME, LocalFolderTarget
from tests.backups.conftest import backup_dirs


def hold_lock(root, seconds):
    """Another process's backup: an exclusive flock on the lock file, released after `seconds`."""
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def release():
        time.sleep(seconds)
        os.close(fd)

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_backup_waits_for_the_one_already_running(tmp_path):
    target = LocalFolderTarget(tmp_path)
    holder = hold_lock(tmp_path, 0.5)
    started = time.monotonic()
    with target.lock(exclusive=True, wait=10):
        waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.4


def test_it_gives_up_after_waiting_with_a_clear_message(tmp_path):
    target = LocalFolderTarget(tmp_path)
    holder = hold_lock(tmp_path, 1.5)
    with pytest.raises(BackupError, match=r"still running after 0.2 s; try again later"):
        with target.lock(exclusive=False, wait=0.2):
            pass
    holder.join()


@pytest.mark.django_db(transaction=True)
def test_a_restore_does_not_wait_for_a_running_backup(archive, folders):
    name = services.create_backup()["backup"]
    holder = hold_lock(folders.BACKUPS_PATH, 1.5)
    try:
        with pytest.raises(BackupError, match="Another backup, restore or restore test is running"):
            services.restore_backup(name, yes=True)
    finally:
        holder.join()
    assert backup_dirs(folders.BACKUPS_PATH) == [name]
