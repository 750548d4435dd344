"""Saved replies: reusable texts with placeholders, filled in for one person when inserted.

Placeholders are `{name}` (the person's username), `{identity}` (the username the
message goes out as) and `{post_title}` (the title of their post the message is
about, else their latest lead post).  A saved reply may use only these; a
placeholder with no value for this person stays in the text and is reported, and
a message that still contains one is never sent (`unfilled_placeholders`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from identities.models import Identity
from rediska import audit

from ..errors import InboxError
from ..models import ExternalAccount, SavedReply

PLACEHOLDERS = {
    "name": "the person's username",
    "identity": "the username the message goes out as",
    "post_title": "the title of their post",
}
MAX_TITLE = 100
MAX_BODY = 10_000
TOKEN = re.compile(r"\{([^{}\s]{1,40})\}")
KNOWN = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

# Apps above the inbox (leads) tell it the title of a person's post: (account, post id or None) -> title.
_post_title_sources: list[Callable[[ExternalAccount, int | None], str | None]] = []


def register_post_title_source(source: Callable[[ExternalAccount, int | None], str | None]) -> None:
    if source not in _post_title_sources:
        _post_title_sources.append(source)


def placeholder_list() -> str:
    return ", ".join("{" + key + "}" for key in PLACEHOLDERS)


def unknown_placeholders(text: str) -> list[str]:
    return sorted({m.group(0) for m in TOKEN.finditer(text or "") if m.group(1) not in PLACEHOLDERS})


def unfilled_placeholders(text: str) -> list[str]:
    """Known placeholders still in a message about to be sent (it must not go out with braces)."""
    return sorted({m.group(0) for m in KNOWN.finditer(text or "")})


def _clean(title: str, body: str) -> tuple[str, str]:
    title = (title or "").strip()
    body = (body or "").replace("\r\n", "\n")
    if not title or len(title) > MAX_TITLE:
        raise InboxError(f"A saved reply needs a title of 1 to {MAX_TITLE} characters.")
    if not body.strip():
        raise InboxError("A saved reply needs a text.")
    if len(body) > MAX_BODY:
        raise InboxError(f"A saved reply is at most {MAX_BODY:,} characters.")
    unknown = unknown_placeholders(body)
    if unknown:
        raise InboxError(f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                         f"use only {placeholder_list()}.")
    return title, body


def save_reply(*, title: str, body: str, reply: SavedReply | None = None) -> SavedReply:
    title, body = _clean(title, body)
    try:
        with transaction.atomic():
            if reply is None:
                reply = SavedReply.objects.create(title=title, body=body)
                action = "saved_reply.create"
            else:
                SavedReply.objects.filter(pk=reply.pk).update(title=title, body=body)
                reply.title, reply.body = title, body
                action = "saved_reply.update"
            audit.record(action, entity=reply, request={"title": title})
    except IntegrityError:
        raise InboxError(f"There is already a saved reply called “{title}”.") from None
    return reply


def delete_reply(reply: SavedReply) -> None:
    with transaction.atomic():
        audit.record("saved_reply.delete", entity=reply, request={"title": reply.title})
        reply.delete()


@dataclass(frozen=True)
class Filled:
    text: str
    missing: list[str]  # placeholders left in the text: no value for this person

    @property
    def warning(self) -> str:
        if not self.missing:
            return ""
        return (f"No value for {', '.join(self.missing)} here: it was left in the text. "
                "Replace it before sending (a message with a placeholder is not sent).")


def placeholder_values(*, account: ExternalAccount | None, identity: Identity | None,
                       post_id: int | None = None) -> dict[str, str]:
    values = {}
    if account is not None:
        values["name"] = account.external_username
        for source in _post_title_sources:
            title = source(account, post_id)
            if title:
                values["post_title"] = title
                break
    if identity is not None:
        values["identity"] = identity.external_username
    return values


def fill_reply(reply: SavedReply, values: dict[str, str]) -> Filled:
    missing = []

    def one(match):
        value = values.get(match.group(1))
        if not value:
            missing.append(match.group(0))
            return match.group(0)
        return value

    text = KNOWN.sub(one, reply.body)
    return Filled(text=text, missing=sorted(set(missing)))
