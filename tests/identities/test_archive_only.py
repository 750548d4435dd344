"""Identities without an API key: created from a data export, readable, connected later without losing anything."""

import os
import zipfile
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from identities import services
from identities.models import Identity
from inbox.models import Conversation, ExportImport, Message
from inbox.tasks import import_export
from rediska.exports import upload_path
from rediska.models import AuditLog, Job
from rediska.providers.base import RemoteAccount
from tests.factories import ConversationFactory, IdentityFactory, ProviderFactory
from tests.fakes.reddit_export import chat, message, write_export
from tests.identities.test_views import start_connect

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uploads(tmp_path, settings):
    settings.EXPORT_UPLOADS_PATH = tmp_path / "uploads"


def export_file(tmp_path, name="export.zip"):
    rows = [message("m1", "bob", "alice", "hello alice"), message("m2", "alice", "bob", "hi bob", thread="m1"),
            message("m3", "carol", "alice", "hey")]
    path = write_export(tmp_path / name, messages=rows, chats=[chat("c1", "dave", "a chat line\nwith two lines"),
                                                               chat("c2", "alice", "answer")])
    return SimpleUploadedFile(name, path.read_bytes(), content_type="application/zip")


def test_create_archive_identity_makes_an_active_identity_without_access(db):
    ProviderFactory()
    identity = services.create_archive_identity(provider_id="reddit", username="alice", display_name="Alice")
    assert identity.is_active and identity.is_default and identity.is_archive_only
    assert AuditLog.objects.get(action_type="identity.create_archive").identity_id == identity.pk


def test_an_identity_of_the_same_username_is_not_created_twice(db):
    ProviderFactory()
    services.create_archive_identity(provider_id="reddit", username="alice")
    with pytest.raises(services.IdentityError, match="already the identity"):
        services.create_archive_identity(provider_id="reddit", username="ALICE")
    assert Identity.objects.count() == 1


def test_connecting_the_same_account_later_attaches_to_the_archive_only_identity(fake_reddit):
    ProviderFactory()
    archived = services.create_archive_identity(provider_id="reddit", username="alice")
    conversation = ConversationFactory(identity=archived, provider=archived.provider)
    connected = services.connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token("alice"),
                                          account=RemoteAccount(username="Alice"))
    assert connected.pk == archived.pk and not connected.is_archive_only
    assert list(Conversation.objects.filter(identity=connected)) == [conversation]
    assert Identity.objects.count() == 1


def test_the_oauth_flow_from_the_identity_page_connects_an_archive_only_identity(auth_client, fake_reddit):
    ProviderFactory()
    archived = services.create_archive_identity(provider_id="reddit", username="alice")
    callback = start_connect(auth_client, fake_reddit, "alice")
    answer = auth_client.get(callback)
    assert answer.status_code == 302 and answer["Location"] == reverse("identities:detail", args=[archived.pk])
    assert not Identity.objects.get().is_archive_only


def test_an_archive_only_identity_passes_the_onboarding_gate_for_reading(auth_client):
    identity = IdentityFactory()
    conversation = ConversationFactory(identity=identity, provider=identity.provider)
    assert auth_client.get(reverse("inbox:list")).status_code == 200
    page = auth_client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "has no access to Reddit yet" in page and "connect it to sync or send" in page
    assert auth_client.get(reverse("search:search") + "?q=hello").status_code == 200


def test_the_identity_page_says_plainly_it_cannot_sync_or_send(auth_client):
    identity = IdentityFactory()
    page = auth_client.get(reverse("identities:detail", args=[identity.pk])).content.decode()
    assert "Archive-only" in page and "cannot sync or send until you connect it" in page
    answer = auth_client.post(reverse("inbox:identity_sync", args=[identity.pk]), HTTP_HX_REQUEST="true")
    assert answer.status_code == 409 and "connect it to sync or send" in answer.content.decode()
    assert not Job.objects.exists()


def test_the_connect_page_links_to_the_export_page(auth_client):
    page = auth_client.get(reverse("identities:new")).content.decode()
    assert reverse("identities:new_from_export") in page


# --- the new-from-export page -----------------------------------------------------------


def test_an_identity_from_an_export_shows_the_username_read_then_creates_and_imports(auth_client, tmp_path):
    ProviderFactory()
    url = reverse("identities:new_from_export")
    answer = auth_client.post(url, {"provider_id": "reddit", "export": export_file(tmp_path)})
    assert answer.status_code == 200
    confirm = answer.context["confirm"]
    assert confirm.initial["username"] == "alice" and not Identity.objects.exists()
    token = confirm.initial["token"]
    assert upload_path(token).exists()

    answer = auth_client.post(url, {"provider_id": "reddit", "token": token, "original_name": "export.zip",
                                    "username": "alice", "display_name": "Alice archive"})
    identity = Identity.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("identities:detail", args=[identity.pk])
    assert identity.is_archive_only and identity.display_name == "Alice archive"
    job = Job.objects.get(job_type="ingest.import_export")
    assert job.payload_json["args"] == [identity.pk, token]

    import_export(*job.payload_json["args"], **job.payload_json["kwargs"])
    assert Message.objects.count() == 5
    assert ExportImport.objects.get().status == "done" and not upload_path(token).exists()
    panel = auth_client.get(reverse("inbox:identity_export", args=[identity.pk])).content.decode()
    assert "export.zip" in panel and "5 new" in panel


def test_confirming_a_username_the_export_does_not_belong_to_is_refused(auth_client, tmp_path):
    ProviderFactory()
    url = reverse("identities:new_from_export")
    token = auth_client.post(url, {"provider_id": "reddit", "export": export_file(tmp_path)}
                             ).context["confirm"].initial["token"]
    answer = auth_client.post(url, {"provider_id": "reddit", "token": token, "username": "bob"})
    assert answer.status_code == 400 and "This export does not belong to bob: it belongs to alice" in answer.content.decode()
    assert not Identity.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("data,error", [(b"not a zip", "This is not a ZIP file"),
                                        (None, "none of the files an export has")])
def test_a_bad_upload_is_refused_with_the_reason_and_not_kept(auth_client, tmp_path, data, error):
    ProviderFactory()
    if data is None:
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("notes.txt", "hello")
        data = buffer.getvalue()
    answer = auth_client.post(reverse("identities:new_from_export"),
                              {"provider_id": "reddit", "export": SimpleUploadedFile("x.zip", data)})
    assert answer.status_code == 400 and error in answer.content.decode()
    assert not list((tmp_path / "uploads").glob("*.zip"))


def test_an_upload_over_the_cap_is_refused_before_it_is_read(auth_client, tmp_path, settings):
    ProviderFactory()
    settings.EXPORT_MAX_UPLOAD_BYTES = 100
    big = SimpleUploadedFile("big.zip", os.urandom(200 * 1024), content_type="application/zip")
    answer = auth_client.post(reverse("identities:new_from_export"), {"provider_id": "reddit", "export": big})
    assert answer.status_code == 413 and "uploads are limited to" in answer.content.decode()
    assert not Identity.objects.exists()


def test_an_unknown_upload_token_is_refused(auth_client):
    ProviderFactory()
    answer = auth_client.post(reverse("identities:new_from_export"),
                              {"provider_id": "reddit", "token": "0" * 32, "username": "alice"})
    assert answer.status_code == 400 and "upload the export again" in answer.content.decode()
    assert not Identity.objects.exists()
