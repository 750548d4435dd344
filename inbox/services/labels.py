"""Labels on conversations and people, and private notes on people (the user's own words)."""

from __future__ import annotations

import re

from django.db import transaction

from rediska import audit

from ..errors import InboxError
from ..models import AccountLabel, AccountNote, Conversation, ConversationLabel, ExternalAccount, Label

MAX_LABEL = 40
MAX_NOTE = 5000
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_label(name: str) -> str:
    """The label as stored: spaces collapsed, 1 to MAX_LABEL characters (any text; pages escape it)."""
    name = _SPACES.sub(" ", name or "").strip()
    if not name:
        raise InboxError("Write a label first.")
    if len(name) > MAX_LABEL:
        raise InboxError(f"A label is at most {MAX_LABEL} characters (this one has {len(name):,}).")
    if _CONTROL.search(name):
        raise InboxError("A label cannot contain control characters.")
    return name


def _label(name: str) -> Label:
    name = clean_label(name)
    label, _ = Label.objects.get_or_create(key=name.lower(), defaults={"name": name})
    return label


def all_labels():
    return Label.objects.order_by("key")


def add_conversation_label(conversation: Conversation, name: str) -> Label:
    with transaction.atomic():
        label = _label(name)
        ConversationLabel.objects.get_or_create(conversation=conversation, label=label)
        audit.record("conversation.label", provider_id=conversation.provider_id,
                     identity_id=conversation.identity_id, entity=conversation, request={"label": label.name})
    return label


def remove_conversation_label(conversation: Conversation, label: Label) -> None:
    with transaction.atomic():
        ConversationLabel.objects.filter(conversation=conversation, label=label).delete()
        audit.record("conversation.unlabel", provider_id=conversation.provider_id,
                     identity_id=conversation.identity_id, entity=conversation, request={"label": label.name})


def add_account_label(account: ExternalAccount, name: str) -> Label:
    with transaction.atomic():
        label = _label(name)
        AccountLabel.objects.get_or_create(account=account, label=label)
        audit.record("account.label", provider_id=account.provider_id, entity=account,
                     request={"label": label.name})
    return label


def remove_account_label(account: ExternalAccount, label: Label) -> None:
    with transaction.atomic():
        AccountLabel.objects.filter(account=account, label=label).delete()
        audit.record("account.unlabel", provider_id=account.provider_id, entity=account,
                     request={"label": label.name})


def conversation_label_names(conversation_ids) -> dict[int, str]:
    """"a, b" label names of each of these conversations, in one query (for the CSV export)."""
    names: dict[int, list[str]] = {}
    for conversation_id, name in (ConversationLabel.objects.filter(conversation_id__in=conversation_ids)
                                  .order_by("label__key").values_list("conversation_id", "label__name")):
        names.setdefault(conversation_id, []).append(name)
    return {k: ", ".join(v) for k, v in names.items()}


def conversation_labels(conversation: Conversation) -> list[Label]:
    return [link.label for link in conversation.label_links.select_related("label").order_by("label__key")]


def account_labels(account: ExternalAccount) -> list[Label]:
    return [link.label for link in account.label_links.select_related("label").order_by("label__key")]


# --------------------------------------------------------------------------- notes
def add_note(account: ExternalAccount, body: str) -> AccountNote:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise InboxError("Write the note first.")
    if len(body) > MAX_NOTE:
        raise InboxError(f"A note is at most {MAX_NOTE:,} characters (this one has {len(body):,}).")
    with transaction.atomic():
        note = AccountNote.objects.create(account=account, body=body)
        audit.record("account.note_add", provider_id=account.provider_id, entity=note,
                     request={"account_id": account.pk, "chars": len(body)})
    return note


def delete_note(note: AccountNote) -> None:
    with transaction.atomic():
        audit.record("account.note_delete", provider_id=note.account.provider_id, entity=note,
                     request={"account_id": note.account_id})
        note.delete()


def notes_of(account: ExternalAccount) -> list[AccountNote]:
    return list(AccountNote.objects.filter(account=account).order_by("-created_at", "-id"))
