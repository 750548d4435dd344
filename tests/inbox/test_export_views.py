"""The identity page's data export panel: upload, live progress, the summary; bad uploads refused."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inbox.models import ExportImport, Message
from inbox.tasks import import_export
from rediska.models import Job
from tests.factories import IdentityFactory
from tests.fakes.reddit_export import chat, message, write_export

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uploads(tmp_path, settings):
    settings.EXPORT_UPLOADS_PATH = tmp_path / "uploads"


@pytest.fixture
def alice(db):
    return IdentityFactory(external_username="alice")


def upload(tmp_path, **tables):
    path = write_export(tmp_path / "export.zip", **tables)
    return SimpleUploadedFile("export.zip", path.read_bytes(), content_type="application/zip")


def test_the_identity_page_loads_the_export_panel(auth_client, alice):
    page = auth_client.get(reverse("identities:detail", args=[alice.pk])).content.decode()
    assert reverse("inbox:identity_export", args=[alice.pk]) in page


def test_an_upload_queues_an_import_whose_progress_and_summary_the_panel_shows(auth_client, alice, tmp_path):
    url = reverse("inbox:identity_export", args=[alice.pk])
    answer = auth_client.post(url, {"export": upload(tmp_path, messages=[message("m1", "bob", "alice", "hi")],
                                                     chats=[chat("c1", "alice", "yo"),
                                                            chat("g1", "x", "all", channel="g", kind="group")])})
    assert answer.status_code == 302
    record = ExportImport.objects.get()
    job = Job.objects.get(job_type="ingest.import_export")
    assert job.dedupe_key == f"inbox:{alice.pk}:import:{record.token}"
    panel = auth_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in panel and "Waiting" in panel

    import_export(*job.payload_json["args"], **job.payload_json["kwargs"])
    panel = auth_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' not in panel
    assert "2 new" in panel and "chat_history.csv" in panel
    assert "1 chat (1 line) not imported: group and community chats are not imported yet." in panel
    assert Message.objects.count() == 2


@pytest.mark.parametrize("data,error", [(b"not a zip", "This is not a ZIP file")])
def test_a_file_that_is_no_export_is_refused_and_nothing_is_queued(auth_client, alice, data, error):
    answer = auth_client.post(reverse("inbox:identity_export", args=[alice.pk]),
                              {"export": SimpleUploadedFile("x.zip", data)})
    assert answer.status_code == 400 and error in answer.content.decode()
    assert not ExportImport.objects.exists() and not Job.objects.exists()


def test_a_deactivated_identity_cannot_import(auth_client, tmp_path):
    identity = IdentityFactory(is_active=False, external_username="alice")
    answer = auth_client.post(reverse("inbox:identity_export", args=[identity.pk]),
                              {"export": upload(tmp_path, messages=[message("m1", "bob", "alice", "hi")])})
    assert answer.status_code == 409 and "deactivated" in answer.content.decode()
    assert not ExportImport.objects.exists() and not list((tmp_path / "uploads").glob("*.zip"))


def test_an_import_of_someone_elses_export_shows_as_refused_with_the_reason(auth_client, alice, tmp_path):
    url = reverse("inbox:identity_export", args=[alice.pk])
    auth_client.post(url, {"export": upload(tmp_path, messages=[message("m1", "bob", "carol", "hi")])})
    job = Job.objects.get(job_type="ingest.import_export")
    import_export(*job.payload_json["args"], **job.payload_json["kwargs"])
    panel = auth_client.get(url).content.decode()
    assert "Refused" in panel and "This export belongs to" in panel
    assert not Message.objects.exists()


def test_an_import_queued_by_the_new_identity_page_shows_as_waiting_before_its_job_runs(auth_client, alice):
    from rediska.jobs import enqueue

    enqueue("ingest.import_export", alice.pk, "ab" * 16, original_name="mine.zip",
            dedupe_key=f"inbox:{alice.pk}:import:{'ab' * 16}")
    panel = auth_client.get(reverse("inbox:identity_export", args=[alice.pk]), HTTP_HX_REQUEST="true")
    html = panel.content.decode()
    assert "mine.zip" in html and "Waiting" in html and 'hx-trigger="every 2s"' in html
