from datetime import UTC, datetime

import pytest

from search.documents import build, related
from tests.factories import (
    ConversationFactory,
    ExternalAccountFactory,
    LeadPostFactory,
    MessageFactory,
    ProfileItemFactory,
    ProfileSnapshotFactory,
)

pytestmark = pytest.mark.django_db
WHEN = datetime(2025, 4, 5, 6, 7, tzinfo=UTC)


def test_a_message_document_carries_its_conversation_identity_and_counterpart():
    conv = ConversationFactory(counterpart_account__remote_status="suspended")
    m = MessageFactory(conversation=conv, body_text="see you at the trailhead", sent_at=WHEN, remote_visibility="removed")
    (doc,), gone = build("message", [m.pk])
    assert gone == []
    assert (doc.doc_id, doc.doc_type, doc.text, doc.created_at) == (f"message:{m.pk}", "message", "see you at the trailhead", WHEN)
    assert (doc.identity_id, doc.conversation_id, doc.message_id) == (str(conv.identity_id), str(conv.pk), str(m.pk))
    assert (doc.account_id, doc.provider_id) == (str(conv.counterpart_account_id), m.provider_id)
    assert (doc.remote_status, doc.remote_visibility, doc.local_deleted) == ("suspended", "removed", False)


@pytest.mark.parametrize("hidden", ["message", "conversation", "account"])
def test_hiding_the_message_its_conversation_or_its_account_marks_it_locally_deleted(hidden):
    m = MessageFactory(body_text="private")
    target = {"message": m, "conversation": m.conversation, "account": m.conversation.counterpart_account}[hidden]
    target.deleted_at = WHEN
    target.save()
    (doc,), _ = build("message", [m.pk])
    assert doc.local_deleted is True


def test_a_lead_post_document_has_title_and_body_location_and_author():
    post = LeadPostFactory(title="Hiking buddy wanted", body_text="Saturdays, 10 km", source_location="hiking", post_created_at=WHEN)
    (doc,), _ = build("lead_post", [post.pk])
    assert doc.text == "Hiking buddy wanted\n\nSaturdays, 10 km"
    assert (doc.lead_post_id, doc.source_location, doc.account_id, doc.identity_id) == (str(post.pk), "hiking", str(post.author_account_id), None)


def test_profile_items_and_snapshots_belong_to_their_account():
    account = ExternalAccountFactory(remote_status="deleted")
    item = ProfileItemFactory(account=account, text_content="I love maps", item_created_at=WHEN)
    snap = ProfileSnapshotFactory(account=account, summary_text="Enjoys maps", fetched_at=WHEN)
    (item_doc,), _ = build("profile_item", [item.pk])
    (snap_doc,), _ = build("profile_snapshot", [snap.pk])
    for doc in (item_doc, snap_doc):
        assert (doc.account_id, doc.remote_status, doc.created_at, doc.provider_id) == (str(account.pk), "deleted", WHEN, account.provider_id)
    assert item_doc.remote_visibility == "visible" and snap_doc.text == "Enjoys maps"


def test_rows_without_text_or_gone_from_the_database_are_to_be_deleted():
    empty = MessageFactory(body_text="   ")
    docs, gone = build("message", [empty.pk, 999_999])
    assert docs == [] and gone == [f"message:{empty.pk}", "message:999999"]


def test_documents_are_built_in_a_constant_number_of_queries(django_assert_max_num_queries):
    pks = [MessageFactory().pk for _ in range(30)]
    with django_assert_max_num_queries(1):
        docs, _ = build("message", pks)
    assert len(docs) == 30


def test_a_conversation_or_account_expands_to_every_dependent_item():
    account = ExternalAccountFactory()
    m = MessageFactory(conversation__counterpart_account=account)
    post = LeadPostFactory(author_account=account)
    item = ProfileItemFactory(account=account)
    snap = ProfileSnapshotFactory(account=account)
    MessageFactory()  # someone else's
    assert related("conversation", [m.conversation_id]) == {"message": [m.pk]}
    assert related("account", [account.pk]) == {
        "message": [m.pk], "lead_post": [post.pk], "profile_item": [item.pk], "profile_snapshot": [snap.pk]
    }
