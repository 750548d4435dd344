"""The provider's settings, parsed from the `PROVIDER_REDDIT_*` strings in Django settings.

Read at call time (never at import), so tests and operators can point the app at
any Reddit-compatible server.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from ..errors import NotConfiguredError

DEFAULTS = {
    "OAUTH_URL": "https://oauth.reddit.com",
    "BASE_URL": "https://www.reddit.com",
    "USER_AGENT": "rediska/0.1",
    "MEDIA_HOSTS": "i.redd.it,preview.redd.it,i.imgur.com",
    "TIMEOUT": "20",
    "ENABLED": "true",
    # Feeds (the personal feed token): where they are served, and each feed user's own budget.
    "FEED_URL": "https://www.reddit.com",
    "FEED_QPM": "60",
    "FEED_MAX_BYTES": str(16 * 1024 * 1024),
}
SCOPES = ("identity", "privatemessages", "read", "history")


@dataclass(frozen=True)
class Config:
    client_id: str
    client_secret: str
    redirect_uri: str
    user_agent: str
    oauth_url: str  # ends with "/": API paths are joined onto it
    base_url: str  # no trailing "/": "/api/v1/..." is appended
    media_hosts: tuple[str, ...]
    timeout: float
    enabled: bool
    feed_url: str = DEFAULTS["FEED_URL"]  # no trailing "/"
    feed_qpm: int = 60
    feed_max_bytes: int = 16 * 1024 * 1024

    def __repr__(self) -> str:  # the secret never reaches a log or traceback
        return f"Config(client_id={self.client_id!r}, oauth_url={self.oauth_url!r}, base_url={self.base_url!r})"

    @property
    def has_app_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)


def _setting(name: str) -> str:
    value = getattr(settings, f"PROVIDER_REDDIT_{name}", None)
    value = "" if value is None else str(value).strip()
    return value or DEFAULTS.get(name, "")


def _url(name: str) -> str:
    value = _setting(name)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise NotConfiguredError(f"PROVIDER_REDDIT_{name} must be an http(s) URL like {DEFAULTS[name]}, got {value!r}.")
    return value.rstrip("/")


def _integer(name: str, low: int, high: int) -> int:
    value = _setting(name)
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise NotConfiguredError(f"PROVIDER_REDDIT_{name} must be a whole number from {low} to {high}, got {value!r}.")
    return number


def load() -> Config:
    """The current settings; NotConfiguredError names the bad one."""
    try:
        timeout = float(_setting("TIMEOUT"))
    except ValueError:
        timeout = 0
    if not 0 < timeout <= 300:
        raise NotConfiguredError("PROVIDER_REDDIT_TIMEOUT must be a number of seconds between 0 and 300.")
    enabled = _setting("ENABLED").lower()
    if enabled not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise NotConfiguredError("PROVIDER_REDDIT_ENABLED must be true or false.")
    user_agent = _setting("USER_AGENT")
    if len(user_agent) < 7:
        raise NotConfiguredError("PROVIDER_REDDIT_USER_AGENT must describe the app (at least 7 characters).")
    hosts = tuple(h.strip().lower().rstrip(".") for h in _setting("MEDIA_HOSTS").split(",") if h.strip())
    feed_qpm = _integer("FEED_QPM", 1, 6000)
    feed_max_bytes = _integer("FEED_MAX_BYTES", 64 * 1024, 256 * 1024 * 1024)
    return Config(
        client_id=_setting("CLIENT_ID"),
        client_secret=_setting("CLIENT_SECRET"),
        redirect_uri=_setting("REDIRECT_URI"),
        user_agent=user_agent,
        oauth_url=_url("OAUTH_URL") + "/",
        base_url=_url("BASE_URL"),
        media_hosts=hosts,
        timeout=timeout,
        enabled=enabled in ("1", "true", "yes", "on"),
        feed_url=_url("FEED_URL"),
        feed_qpm=feed_qpm,
        feed_max_bytes=feed_max_bytes,
    )


def load_for_app() -> Config:
    """The settings, refusing when the app credentials (client id/secret) are missing."""
    config = load()
    if not config.enabled:
        raise NotConfiguredError("This provider is disabled (PROVIDER_REDDIT_ENABLED).")
    if not config.has_app_credentials:
        raise NotConfiguredError(
            "Set PROVIDER_REDDIT_CLIENT_ID and PROVIDER_REDDIT_CLIENT_SECRET (a 'web app' on reddit.com/prefs/apps)."
        )
    return config
