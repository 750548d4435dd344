"""System checks for misconfiguration (`manage.py check`, run at start-up)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def folders_writable(app_configs, **kwargs):
    problems = []
    for code, name in (("rediska.E001", "DATA_DIR"), ("rediska.E002", "ATTACHMENTS_PATH")):
        path = getattr(settings, name)
        if not os.access(path, os.W_OK):
            problems.append(Error(f"{name} ({path}) is not writable.", hint="Fix its ownership or point it elsewhere.", id=code))
    backups = settings.BACKUPS_PATH
    if backups.exists() and not os.access(backups, os.W_OK):
        problems.append(Error(f"BACKUPS_PATH ({backups}) is not writable.", id="rediska.E003"))
    return problems


@register()
def services_configured(app_configs, **kwargs):
    problems = []
    for code, name in (("rediska.E004", "INFERENCE_URL"), ("rediska.E005", "EMBEDDINGS_URL"), ("rediska.E006", "ELASTIC_URL")):
        url = getattr(settings, name)
        if url and urlsplit(url).scheme not in {"http", "https"}:
            problems.append(Error(f"{name} must be an http(s) URL, got {url!r}.", id=code))
    if settings.DEBUG and settings.MYSQL_URL:
        problems.append(Warning("DEBUG is on with a real database.", id="rediska.W001"))
    return problems
