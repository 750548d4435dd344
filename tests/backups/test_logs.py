"""The maintenance tasks log JSON lines that carry their job id (so a nightly run can be followed)."""

import io
import json
import logging

import pytest

from rediska.logging import ContextFilter, JsonFormatter
from rediska.models import Job
from rediska.tasks import mysql_dump_local

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_backup_task_logs_a_json_line_with_its_job_id(archive, folders):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rediska.backups.services")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        result = mysql_dump_local()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    job = Job.objects.get(job_type="maintenance.mysql_dump_local")
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["job_id"] == str(job.pk)
    assert line["msg"].startswith(f"backup {result['backup']} written")
