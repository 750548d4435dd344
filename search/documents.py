"""Search documents built from the database: one small builder per model.

Each builder loads its rows in one query (`select_related` the conversation and
account it needs) and returns spec §6 `Document`s.  A row whose text is empty,
or that no longer exists, has no document: its doc id is returned to delete.
`local_deleted` is true when the item, its conversation or its account is
hidden locally, so hiding any of them hides the item from search.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.models import ProfileSnapshot
from inbox.models import ExternalAccount, Message
from leads.models import LeadPost, ProfileItem

from .backends.base import Document
from .text import content_hash

KINDS = ("message", "lead_post", "profile_item", "profile_snapshot")


def _id(value) -> str | None:
    return str(value) if value is not None else None


def _document(doc_type: str, pk: int, text: str, account: ExternalAccount | None, hidden: bool, **fields) -> Document:
    return Document(
        doc_id=f"{doc_type}:{pk}",
        doc_type=doc_type,
        text=text,
        content_hash=content_hash(text),
        account_id=_id(account.pk) if account else None,
        remote_status=account.remote_status if account else None,
        local_deleted=hidden or bool(account and account.deleted_at),
        **fields,
    )


def message_documents(pks: Iterable[int]) -> list[Document]:
    rows = Message.objects.filter(pk__in=pks).select_related("conversation__counterpart_account")
    docs = []
    for m in rows:
        conversation = m.conversation
        docs.append(
            _document(
                "message", m.pk, m.body_text or "", conversation.counterpart_account,
                m.deleted_at is not None or conversation.deleted_at is not None,
                provider_id=m.provider_id,
                # The identity whose conversation it is: incoming messages belong to it too.
                identity_id=_id(conversation.identity_id),
                conversation_id=_id(conversation.pk),
                message_id=_id(m.pk),
                remote_visibility=m.remote_visibility,
                created_at=m.sent_at,
            )
        )
    return docs


def lead_post_documents(pks: Iterable[int]) -> list[Document]:
    docs = []
    for post in LeadPost.objects.filter(pk__in=pks).select_related("author_account"):
        text = "\n\n".join(part for part in (post.title, post.body_text) if part)
        docs.append(
            _document(
                "lead_post", post.pk, text, post.author_account, post.deleted_at is not None,
                provider_id=post.provider_id,
                lead_post_id=_id(post.pk),
                source_location=post.source_location,
                remote_visibility=post.remote_visibility,
                created_at=post.post_created_at or post.created_at,
            )
        )
    return docs


def profile_item_documents(pks: Iterable[int]) -> list[Document]:
    docs = []
    for item in ProfileItem.objects.filter(pk__in=pks).select_related("account"):
        docs.append(
            _document(
                "profile_item", item.pk, item.text_content or "", item.account, item.deleted_at is not None,
                provider_id=item.account.provider_id,
                remote_visibility=item.remote_visibility,
                created_at=item.item_created_at or item.created_at,
            )
        )
    return docs


def profile_snapshot_documents(pks: Iterable[int]) -> list[Document]:
    docs = []
    for snap in ProfileSnapshot.objects.filter(pk__in=pks).select_related("account"):
        docs.append(
            _document(
                "profile_snapshot", snap.pk, snap.summary_text or "", snap.account, False,
                provider_id=snap.account.provider_id,
                created_at=snap.fetched_at,
            )
        )
    return docs


BUILDERS = {
    "message": message_documents,
    "lead_post": lead_post_documents,
    "profile_item": profile_item_documents,
    "profile_snapshot": profile_snapshot_documents,
}
MODELS = {"message": Message, "lead_post": LeadPost, "profile_item": ProfileItem, "profile_snapshot": ProfileSnapshot}


def build(kind: str, pks: Iterable[int]) -> tuple[list[Document], list[str]]:
    """(documents to write, doc ids to delete) for these rows of one kind."""
    pks = sorted({int(pk) for pk in pks})
    docs = BUILDERS[kind](pks)
    keep = [d for d in docs if d.text.strip()]
    kept = {d.pk for d in keep}
    return keep, [f"{kind}:{pk}" for pk in pks if pk not in kept]


def related(kind: str, pks: Iterable[int]) -> dict[str, list[int]]:
    """Expand a conversation or an account into the rows whose documents depend on it."""
    pks = list(pks)
    if kind == "conversation":
        return {"message": list(Message.objects.filter(conversation_id__in=pks).values_list("pk", flat=True))}
    if kind == "account":
        return {
            "message": list(
                Message.objects.filter(conversation__counterpart_account_id__in=pks).values_list("pk", flat=True)
            ),
            "lead_post": list(LeadPost.objects.filter(author_account_id__in=pks).values_list("pk", flat=True)),
            "profile_item": list(ProfileItem.objects.filter(account_id__in=pks).values_list("pk", flat=True)),
            "profile_snapshot": list(ProfileSnapshot.objects.filter(account_id__in=pks).values_list("pk", flat=True)),
        }
    return {kind: pks}
