"""Labels, notes on people, saved replies and the conversations CSV export."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from inbox.errors import InboxError
from inbox.models import AccountLabel, AccountNote, ConversationLabel, Label, SavedReply
from inbox.services import labels, replies
from rediska.models import AuditLog
from tests.factories import (
    ConversationFactory,
    ExternalAccountFactory,
    LeadPostFactory,
    MessageFactory,
    SavedReplyFactory,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


# --------------------------------------------------------------------------- labels
def test_a_label_is_kept_once_whatever_its_case_and_spacing(db):
    conversation = ConversationFactory()
    first = labels.add_conversation_label(conversation, "  Hot   lead ")
    again = labels.add_account_label(conversation.counterpart_account, "HOT LEAD")
    assert first == again and first.name == "Hot lead" and Label.objects.count() == 1
    assert labels.conversation_labels(conversation) == [first]
    assert labels.account_labels(conversation.counterpart_account) == [first]


@pytest.mark.parametrize(("name", "reason"), [("", "Write a label"), ("x" * 10_000, "at most 40"),
                                              ("tab\x00", "control")])
def test_a_bad_label_is_refused_and_stores_nothing(db, name, reason):
    with pytest.raises(InboxError, match=reason):
        labels.add_conversation_label(ConversationFactory(), name)
    assert not Label.objects.exists() and not ConversationLabel.objects.exists()


def test_a_ten_thousand_character_label_is_a_form_error_not_a_500(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    response = auth_client.post(reverse("inbox:conversation_label_add", args=[conversation.pk]),
                                {"name": "x" * 10_000})
    assert response.status_code == 400
    assert "at most 40 characters" in response.content.decode()
    assert not Label.objects.exists()


def test_a_label_with_html_is_shown_escaped(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    MessageFactory(conversation=conversation, provider=identity.provider)
    response = auth_client.post(reverse("inbox:conversation_label_add", args=[conversation.pk]),
                                {"name": "<b>vip</b>"})
    assert response.status_code == 302
    page = auth_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "&lt;b&gt;vip&lt;/b&gt;" in page and "<b>vip</b>" not in page
    listing = auth_client.get(reverse("inbox:list")).content.decode()
    assert "&lt;b&gt;vip&lt;/b&gt;" in listing and "<b>vip</b>" not in listing


def test_the_inbox_filters_by_a_label_of_the_conversation_or_of_its_person(auth_client, identity):
    tagged = ConversationFactory(identity=identity, provider=identity.provider)
    person_tagged = ConversationFactory(identity=identity, provider=identity.provider)
    other = ConversationFactory(identity=identity, provider=identity.provider)
    label = labels.add_conversation_label(tagged, "warm")
    labels.add_account_label(person_tagged.counterpart_account, "warm")
    labels.add_conversation_label(other, "cold")

    page = auth_client.get(reverse("inbox:list"), {"label": label.pk}).content.decode()

    assert tagged.counterpart_account.external_username in page
    assert person_tagged.counterpart_account.external_username in page
    assert other.counterpart_account.external_username not in page


def test_an_unknown_label_filter_is_a_400_with_the_reason(auth_client, identity):
    response = auth_client.get(reverse("inbox:list"), {"label": 999})
    assert response.status_code == 400 and "That label does not exist" in response.content.decode()


def test_removing_a_label_leaves_the_other_labels(auth_client, identity):
    account = ExternalAccountFactory()
    keep = labels.add_account_label(account, "keep")
    drop = labels.add_account_label(account, "drop")
    response = auth_client.post(reverse("inbox:account_label_remove", args=[account.pk, drop.pk]),
                                {"next": "/inbox/"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert list(AccountLabel.objects.values_list("label", flat=True)) == [keep.pk]


def test_next_never_leads_off_site(auth_client, identity):
    account = ExternalAccountFactory()
    response = auth_client.post(reverse("inbox:account_label_add", args=[account.pk]),
                                {"name": "x", "next": "https://evil.example/"})
    assert response["Location"] == reverse("inbox:list")


# --------------------------------------------------------------------------- notes
def test_a_note_is_shown_on_the_conversation_and_the_person_panel(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    account = conversation.counterpart_account
    response = auth_client.post(reverse("inbox:note_add", args=[account.pk]),
                                {"body": "Met at the <meetup>; likes trail running", "next": "/inbox/"})
    assert response.status_code == 302
    assert AccountNote.objects.get().body == "Met at the <meetup>; likes trail running"
    for url in (reverse("inbox:conversation", args=[conversation.pk]), reverse("inbox:person_panel", args=[account.pk])):
        page = auth_client.get(url).content.decode()
        assert "Met at the &lt;meetup&gt;; likes trail running" in page
    assert AuditLog.objects.filter(action_type="account.note_add").exists()


def test_an_empty_or_huge_note_is_refused(auth_client, identity):
    account = ExternalAccountFactory()
    for body in ("   ", "n" * 5001):
        response = auth_client.post(reverse("inbox:note_add", args=[account.pk]), {"body": body})
        assert response.status_code == 400
    assert not AccountNote.objects.exists()


def test_a_note_can_be_deleted(auth_client, identity):
    note = labels.add_note(ExternalAccountFactory(), "to go")
    auth_client.post(reverse("inbox:note_delete", args=[note.pk]))
    assert not AccountNote.objects.exists()


# --------------------------------------------------------------------------- saved replies
def test_a_saved_reply_with_an_unknown_placeholder_is_a_form_error(auth_client, identity):
    response = auth_client.post(reverse("inbox:saved_replies"), {"title": "Hi", "body": "Hi {nmae}, {name}!"})
    assert response.status_code == 400
    assert "Unknown placeholder {nmae}" in response.content.decode()
    assert not SavedReply.objects.exists()


def test_a_saved_reply_title_is_unique(db):
    replies.save_reply(title="Hi", body="Hello {name}")
    with pytest.raises(InboxError, match="already a saved reply"):
        replies.save_reply(title="Hi", body="Other")


def test_a_saved_reply_is_filled_in_for_the_person_of_the_conversation(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    account = conversation.counterpart_account
    LeadPostFactory(author_account=account, provider=identity.provider, title="Looking for a hiking buddy")
    reply = SavedReplyFactory(body="Hi {name}, about “{post_title}” — {identity} here.")

    response = auth_client.get(reverse("inbox:saved_reply_fill", args=[reply.pk]), {"conversation": conversation.pk})

    data = json.loads(response.content)
    assert data == {"text": f"Hi {account.external_username}, about “Looking for a hiking buddy” — "
                            f"{identity.external_username} here.", "missing": [], "warning": ""}


def test_a_placeholder_without_a_value_stays_and_is_reported(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    reply = SavedReplyFactory(body="About {post_title}")
    data = json.loads(auth_client.get(reverse("inbox:saved_reply_fill", args=[reply.pk]),
                                      {"conversation": conversation.pk}).content)
    assert data["text"] == "About {post_title}" and data["missing"] == ["{post_title}"]
    assert "Replace it before sending" in data["warning"]


def test_the_post_of_a_draft_gives_its_title(db, identity):
    account = ExternalAccountFactory()
    older = LeadPostFactory(author_account=account, provider=identity.provider, title="The one the draft is for",
                            post_created_at=T0 - timedelta(days=3))
    LeadPostFactory(author_account=account, provider=identity.provider, title="Newer", post_created_at=T0)
    values = replies.placeholder_values(account=account, identity=identity, post_id=older.pk)
    assert values["post_title"] == "The one the draft is for"
    assert replies.placeholder_values(account=account, identity=None)["post_title"] == "Newer"


def test_a_fill_without_a_person_is_a_400(auth_client, identity):
    reply = SavedReplyFactory()
    response = auth_client.get(reverse("inbox:saved_reply_fill", args=[reply.pk]))
    assert response.status_code == 400 and "Say which conversation" in json.loads(response.content)["error"]


def test_a_reply_that_still_has_a_placeholder_is_not_sent(fake_reddit, alice, auth_client):
    from inbox.services.ingest import walk_folder
    from identities.services import session_for

    fake_reddit.add_thread("bob", "alice", ["hi alice"], subject="hello")
    for folder in ("inbox", "sent"):
        walk_folder(alice, session_for(alice), folder, full=True, owner="test")
    conversation = alice.conversations.get()
    response = auth_client.post(reverse("inbox:reply", args=[conversation.pk]),
                                {"body": "Hi bob, about {post_title}", "idempotency_key": "k-ph"})
    assert response.status_code == 400
    assert "still contains {post_title}" in response.content.decode()
    assert fake_reddit.sent == []


def test_the_reply_box_offers_the_saved_replies(auth_client, identity):
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    MessageFactory(conversation=conversation, provider=identity.provider)
    SavedReplyFactory(title="Warm intro")
    page = auth_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "Warm intro" in page and f"conversation={conversation.pk}" in page and "js/replies.js" in page


def test_the_picker_for_a_draft_fills_in_for_its_person_and_post(auth_client, identity):
    SavedReplyFactory(title="Warm intro")
    response = auth_client.get(reverse("inbox:saved_reply_picker"),
                               {"account": 5, "identity": identity.pk, "post": 7, "target": "draft-body"})
    page = response.content.decode()
    assert response.status_code == 200 and 'data-target="draft-body"' in page
    assert "account=5&amp;identity=" in page and "post=7" in page


# --------------------------------------------------------------------------- CSV export
def test_the_export_has_the_filtered_conversations_with_formula_cells_escaped(auth_client, identity):
    evil = ExternalAccountFactory(external_username="=HYPERLINK(\"x\")")
    tagged = ConversationFactory(identity=identity, provider=identity.provider, counterpart_account=evil,
                                 subject="+1 for you", last_direction="in")
    ConversationFactory(identity=identity, provider=identity.provider, subject="not tagged")
    labels.add_conversation_label(tagged, "@home")
    label = Label.objects.get()

    response = auth_client.get(reverse("inbox:export"), {"label": label.pk})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    rows = csv_rows(response)
    assert rows[0][:3] == ["conversation_id", "with", "identity"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert row["with"] == "'=HYPERLINK(\"x\")" and row["subject"] == "'+1 for you" and row["labels"] == "'@home"
    assert row["identity"] == identity.external_username and row["last_direction"] == "in"


def test_an_export_with_bad_filters_is_a_400(auth_client, identity):
    response = auth_client.get(reverse("inbox:export"), {"since": "yesterday"})
    assert response.status_code == 400 and "could not be used" in response.content.decode()


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_every_formula_start_is_escaped(value):
    from rediska.csvexport import safe_cell

    assert safe_cell(value) == "'" + value
    assert safe_cell(-1) == "-1" and safe_cell("plain") == "plain"
