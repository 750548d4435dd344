"""Reading an export archive safely: refusals before anything is read, streaming, whose export it is."""

import io
import tracemalloc
import zipfile

import pytest

from rediska.exports import ExportError, Member, open_archive, save_upload, scan, upload_path, uploads_dir
from rediska.providers.reddit.export import RedditExport
from tests.fakes.reddit_export import chat, message, write_export

FMT = RedditExport()


@pytest.fixture(autouse=True)
def _uploads(tmp_path, settings):
    settings.EXPORT_UPLOADS_PATH = tmp_path / "uploads"


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "export.zip"
    path.write_bytes(b"%PDF-1.4 not a zip at all")
    with pytest.raises(ExportError, match="This is not a ZIP file"):
        open_archive(path)


def test_a_zip_with_no_known_csv_is_refused(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday.jpg", b"\xff\xd8")
    with open_archive(path) as archive, pytest.raises(ExportError, match="none of the files an export has"):
        scan(archive, FMT)


@pytest.mark.parametrize("name", ["../messages.csv", "a/../../messages.csv", "/etc/messages.csv",
                                  "..\\messages.csv", "C:/messages.csv"])
def test_member_names_pointing_outside_the_zip_are_refused(tmp_path, name):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, b"id,date,from,to,body\n")
    with pytest.raises(ExportError, match="points outside it"):
        open_archive(path)
    assert [p.name for p in tmp_path.iterdir()] == ["export.zip"]  # nothing written by name


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("messages.csv", b"\0" * (20 * 2**20))
    with pytest.raises(ExportError, match="ZIP bomb"):
        open_archive(path)


def test_a_zip_over_the_uncompressed_cap_is_refused(tmp_path, settings):
    settings.EXPORT_MAX_UNCOMPRESSED_BYTES = 1000
    path = write_export(tmp_path / "export.zip", messages=[message(f"m{i}", "bob", "alice", "x" * 50)
                                                           for i in range(40)])
    with pytest.raises(ExportError, match="unpacks to .* more than the"):
        open_archive(path)


def test_a_zip_with_too_many_files_is_refused(tmp_path, settings):
    settings.EXPORT_MAX_MEMBERS = 3
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(4):
            archive.writestr(f"file{i}.csv", b"a\n")
    with pytest.raises(ExportError, match="holds 4 files"):
        open_archive(path)


def test_a_member_that_unpacks_to_more_than_it_declares_is_refused_as_a_bomb(tmp_path):
    path = write_export(tmp_path / "export.zip", messages=[message(f"m{i}", "bob", "alice", "x" * 100)
                                                           for i in range(50)])
    with open_archive(path) as archive:
        archive.members[0] = Member(archive.members[0].name, 500)  # what a lying header declares
        with pytest.raises(ExportError, match="unpacks to more than its size said"):
            scan(archive, FMT)


def test_an_unpacked_folder_is_read_like_the_zip(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    with zipfile.ZipFile(write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "alice", "hi")])) as z:
        (folder / "messages.csv").write_bytes(z.read("messages.csv"))
    with open_archive(folder) as archive:
        result = scan(archive, FMT)
    assert [(f.name, f.rows) for f in result.files] == [("messages.csv", 1)]


def test_the_owner_is_who_is_in_every_message_and_in_most_chats(tmp_path):
    rows = [message(f"m{i}", "alice" if i % 2 else f"p{i}", f"p{i}" if i % 2 else "Alice", "hi") for i in range(9)]
    chats = [chat("c1", "alice", "hi", channel="a"), chat("c2", "zoe", "hi", channel="a")]
    with open_archive(write_export(tmp_path / "e.zip", messages=rows, chats=chats)) as archive:
        result = scan(archive, FMT)
    assert result.candidates(1) == ["Alice"]
    assert result.owns("ALICE") and not result.owns("zoe") and not result.owns("p1")


def test_scanning_streams_a_large_table_in_flat_memory(tmp_path):
    def rows(n):
        return (message(f"m{i}", "bob", "alice", "line one\nline two " * 5, thread="m0") for i in range(n))

    peaks = []
    for n in (2_000, 20_000):
        path = write_export(tmp_path / f"e{n}.zip", messages=rows(n))
        tracemalloc.start()
        with open_archive(path) as archive:
            assert scan(archive, FMT).rows == n
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.5 + 256 * 1024


class _Upload(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.size = len(data)

    def chunks(self):
        yield self.getvalue()


def test_an_upload_is_kept_in_the_uploads_folder_until_its_import(tmp_path, settings):
    data = write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "alice", "hi")]).read_bytes()
    token = save_upload(_Upload(data))
    assert upload_path(token).read_bytes() == data
    assert upload_path(token).parent == uploads_dir() == settings.EXPORT_UPLOADS_PATH


def test_an_upload_that_is_not_a_zip_is_refused_and_not_kept(settings):
    with pytest.raises(ExportError, match="not a ZIP"):
        save_upload(_Upload(b"hello"))
    assert list(uploads_dir().iterdir()) == []


def test_an_upload_over_the_size_cap_is_refused_before_it_is_copied(settings):
    settings.EXPORT_MAX_UPLOAD_BYTES = 10
    with pytest.raises(ExportError, match="uploads are limited to"):
        save_upload(_Upload(b"x" * 11))
    assert list(uploads_dir().iterdir()) == []


@pytest.mark.parametrize("token", ["", "../../etc/passwd", "A" * 32, "0" * 31])
def test_upload_tokens_are_never_paths(token):
    with pytest.raises(ExportError):
        upload_path(token)


def test_uploads_are_kept_under_data_dir_by_default():
    from django.conf import settings

    from rediska import settings as defaults

    assert str(defaults.EXPORT_UPLOADS_PATH).startswith(str(settings.DATA_DIR))


def test_a_large_upload_streamed_to_a_temporary_file_is_moved_under_data_dir(tmp_path):
    from django.core.files.uploadedfile import TemporaryUploadedFile

    data = write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "alice", "hi")]).read_bytes()
    upload = TemporaryUploadedFile("export.zip", "application/zip", len(data), None)
    upload.write(data)
    upload.flush()
    token = save_upload(upload)
    upload.close()  # Django's clean-up of its temporary file must not fail once it was moved
    assert upload_path(token).read_bytes() == data


def test_uploads_left_unconfirmed_for_a_week_are_pruned_by_the_next_upload(tmp_path):
    import os
    import time

    data = write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "alice", "hi")]).read_bytes()
    old, recent = save_upload(_Upload(data)), save_upload(_Upload(data))
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(upload_path(old), (week_ago, week_ago))
    newest = save_upload(_Upload(data))
    assert not upload_path(old).exists() and upload_path(recent).exists() and upload_path(newest).exists()
