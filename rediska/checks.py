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


@register()
def notification_urls(app_configs, **kwargs):
    """NOTIFY_URLS Apprise does not understand (named by position and scheme: the rest may hold a token)."""
    if not settings.NOTIFY_URLS:
        return []
    import apprise

    problems = []
    for index, url in enumerate(settings.NOTIFY_URLS, start=1):
        if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
            scheme = url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)"
            problems.append(Error(
                f"NOTIFY_URLS entry {index} ({scheme}…) is not a notification URL Apprise understands.",
                hint="See https://github.com/caronc/apprise/wiki for the URL of each service; "
                     "notifications to the other URLs still go out.", id="rediska.E040"))
    return problems
