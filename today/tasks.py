"""The notification test (the task that sends pending notifications is `notify.send` in rediska.tasks)."""

from __future__ import annotations

from dataclasses import asdict

from rediska import notify
from rediska.jobs import ledger_task


@ledger_task("notify.test", queue="notify", max_attempts=1)
def send_test_notification(job) -> list[dict]:
    return [asdict(result) for result in notify.send_test()]
