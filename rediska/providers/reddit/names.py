"""Reddit's names (usernames, subreddits, sorts), checked before they go into a URL."""

from __future__ import annotations

import re

from ..errors import InvalidRequestError

USERNAME = re.compile(r"^[A-Za-z0-9_-]{3,20}$")
COMMUNITY = re.compile(r"^[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*$")
SORTS = ("new", "hot", "top")


def username(value: str) -> str:
    name = (value or "").strip().removeprefix("/").removeprefix("u/").removeprefix("user/")
    if not USERNAME.match(name):
        raise InvalidRequestError(f"{value!r} is not a Reddit username (3-20 letters, digits, _ or -).")
    return name


def community(value: str) -> str:
    name = (value or "").strip().removeprefix("/").removeprefix("r/")
    if not COMMUNITY.match(name):
        raise InvalidRequestError(f"{value!r} is not a subreddit name.")
    return name
