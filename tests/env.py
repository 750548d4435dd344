"""Loaded before Django (`-p tests.env`): isolate every test run.

Each run gets its own DATA_DIR (so nothing touches ./var and parallel runs
never share files), an in-memory Celery broker (tasks are called directly in
tests), no provider rate limit unless a test turns it on, and no outside
model or search servers unless a fixture starts a fake one.
"""

import os
import re
import tempfile

_data_dir = tempfile.mkdtemp(prefix="rediska-test-")
os.environ["DATA_DIR"] = _data_dir
os.environ["REDISKA_IGNORE_DOTENV"] = "1"
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["CELERY_RESULT_BACKEND"] = "cache+memory://"
os.environ["PROVIDER_RATE_QPM_DEFAULT"] = "0"
os.environ["LOG_FORMAT"] = "text"
os.environ.setdefault("LOG_LEVEL", "WARNING")
for name in ("INFERENCE_URL", "EMBEDDINGS_URL", "ELASTIC_URL", "ATTACHMENTS_PATH", "BACKUPS_PATH",
             "SEARCH_INDEX_PATH", "ENCRYPTION_KEY", "DJANGO_SECRET_KEY"):
    os.environ.pop(name, None)

# Tests flush the cache between tests (FLUSHDB on Redis): under pytest-xdist each
# worker gets its own Redis database so one worker never wipes another's state.
_worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
if os.environ.get("REDIS_URL") and _worker:
    _url = re.match(r"(redis://[^/]*)(?:/(\d+))?$", os.environ["REDIS_URL"])
    if _url:
        os.environ["REDIS_URL"] = f"{_url[1]}/{(int(_url[2] or 0) - int(_worker[1])) % 16}"
