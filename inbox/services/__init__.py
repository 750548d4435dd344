"""Inbox services: ingest (archive and sync), sending, local hiding.

`send_manual` is the only way anything is sent.
"""

from ..errors import InboxError, SendError  # noqa: F401
from .sending import new_idempotency_key, send_manual  # noqa: F401
