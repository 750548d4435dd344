"""What the Django benchmarks share: an isolated app and a scratch database.

Importing this module sets Django up on a temporary DATA_DIR with rate limits
off, no outside servers and an in-memory broker (tasks are called directly), so
a benchmark never touches ./var or a real database.  `scratch_database()` then
makes a fresh SQLite file, or with MYSQL_URL set a `test_<name>` database on
that server, and drops it (and the temporary folder) afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA_DIR = Path(tempfile.mkdtemp(prefix="rediska-bench-"))
os.environ.update({
    "DATA_DIR": str(DATA_DIR), "REDISKA_IGNORE_DOTENV": "1", "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://", "PROVIDER_RATE_QPM_DEFAULT": "0", "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "text", "DJANGO_SETTINGS_MODULE": "rediska.settings",
})
for _name in ("INFERENCE_URL", "EMBEDDINGS_URL", "ELASTIC_URL", "ATTACHMENTS_PATH"):
    os.environ.pop(_name, None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402


@contextlib.contextmanager
def scratch_database() -> Iterator[None]:
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(DATA_DIR / "bench.sqlite3")
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@contextlib.contextmanager
def fake_provider(**extra_settings) -> Iterator:
    """The fake provider server in this process, with the provider's settings pointed at it."""
    from tests.fakes.reddit_server import FakeReddit

    fake = FakeReddit()
    # The fake answers headers and body in two writes: without TCP_NODELAY every
    # answer waits ~40 ms for the client's delayed ACK (Nagle), which would be
    # measured here instead of Rediska.
    fake.server.RequestHandlerClass.disable_nagle_algorithm = True
    settings.PROVIDER_REDDIT_OAUTH_URL = settings.PROVIDER_REDDIT_BASE_URL = fake.url
    settings.PROVIDER_REDDIT_CLIENT_ID = fake.client_id
    settings.PROVIDER_REDDIT_CLIENT_SECRET = fake.client_secret
    settings.PROVIDER_REDDIT_REDIRECT_URI = fake.redirect_uri
    settings.PROVIDER_REDDIT_USER_AGENT = "rediska-bench/0.1"
    for key, value in extra_settings.items():
        setattr(settings, key, value)
    try:
        yield fake
    finally:
        fake.close()
