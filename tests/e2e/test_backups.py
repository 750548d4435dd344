"""Backups: back up now and run a restore test of it, from the UI, through the real worker."""

from __future__ import annotations

import re

import pytest

from .flows import ARCHIVE_TIMEOUT, connect_identity
from .harness import check_page, expect

pytestmark = pytest.mark.e2e


def test_a_backup_and_a_restore_test_from_the_ui(page, stack):
    provider = stack.provider
    provider.add_thread("vera_vault", "otto_keeper", ["Please keep a copy of this.", "Will do."], subject="Copy")
    connect_identity(page, provider, "otto_keeper", "Keeper persona")

    page.goto("/jobs/")
    page.get_by_role("link", name="Backups and restore tests").click()
    expect(page.get_by_role("heading", name="Backups", exact=True)).to_be_visible()
    stored = page.locator("section", has=page.get_by_role("heading", name="Stored backups")).locator("tbody tr")
    runs = page.locator("#backup-runs tbody tr")
    expect(stored).to_have_text([re.compile(r"^No backups yet")])  # the empty state says how one is made
    # The backup folder is the operator's to create (a disk that is not mounted must not fill the root disk).
    backups_path = stack.app.data_dir / "backups"
    expect(page.locator("p.notice")).to_contain_text(f"BACKUPS_PATH {backups_path} does not exist")
    backups_path.mkdir()
    page.reload()
    expect(page.locator("p.notice")).to_have_count(0)

    # Back up now: the runs table follows the job to Done.
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator(".flash")).to_contain_text(re.compile(r"Backup queued \(job \d+\)"))
    expect(runs.first.locator(".badge")).to_have_text("Done", timeout=ARCHIVE_TIMEOUT)
    expect(runs.first).to_contain_text(re.compile(r"\d+ rows, \d+ files"))
    page.reload()
    expect(stored).to_have_count(1)
    backup = stored.first
    expect(backup).to_contain_text("full")
    expect(backup.locator(".badge")).to_have_text("not tested")
    name = backup.locator("code").inner_text()

    # Restore test of the newest backup: restored into a scratch database and checked.
    page.get_by_role("button", name="Run restore test (newest backup)").click()
    expect(page.locator(".flash")).to_contain_text(re.compile(r"Restore test queued \(job \d+\)"))
    expect(runs.first.locator(".badge")).to_have_text("Done", timeout=ARCHIVE_TIMEOUT)
    expect(runs.first).to_contain_text("all checks passed")
    expect(runs.first).to_contain_text(name)
    page.reload()
    expect(backup.locator(".badge")).to_have_text(re.compile(r"^verified \d{4}-\d{2}-\d{2}$"))
    check_page(page, "backups")

    # The verification links to its job.
    backup.get_by_role("link", name=re.compile("verified")).click()
    expect(page.get_by_role("heading", name=re.compile("maintenance.restore_test_local"))).to_be_visible()
    expect(page.locator("#job-detail .badge").first).to_have_text("Done")
