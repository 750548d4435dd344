"""`manage.py import_export`: the same import from a shell, with a progress bar and a summary."""

import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inbox.models import Message
from tests.factories import IdentityFactory
from tests.fakes.reddit_export import chat, message, write_export


@pytest.fixture
def alice(db):
    return IdentityFactory(external_username="alice")


def test_the_command_imports_a_zip_and_prints_the_summary_per_file(alice, tmp_path):
    path = write_export(tmp_path / "export.zip", messages=[message("m1", "bob", "alice", "hi")],
                        chats=[chat("c1", "alice", "yo"), chat("g1", "x", "hi all", channel="g", kind="group")])
    out = StringIO()
    call_command("import_export", "--identity", "alice", str(path), stdout=out)
    text = out.getvalue()
    assert "messages.csv: 1 rows, 1 new, 0 already known" in text
    assert "1 chats (1 lines) not imported: group and community chats are not imported yet." in text
    assert "alice: 2 new, 0 already known, 1 skipped" in text
    assert path.exists()  # the user's own file is never deleted


def test_the_command_reads_an_unpacked_folder_and_a_second_run_finds_nothing_new(alice, tmp_path):
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "alice", "hi")])) as z:
        z.extractall(folder)
    call_command("import_export", "--identity", "alice", str(folder), stdout=StringIO())
    out = StringIO()
    call_command("import_export", "--identity", "alice", str(folder), stdout=out)
    assert "alice: 0 new, 1 already known" in out.getvalue()
    assert Message.objects.count() == 1


@pytest.mark.parametrize("content,error", [(b"not a zip", "This is not a ZIP file"),
                                           (None, "does not exist")])
def test_bad_input_stops_with_one_clear_line(alice, tmp_path, content, error):
    path = tmp_path / "export.zip"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CommandError, match=error):
        call_command("import_export", "--identity", "alice", str(path), stdout=StringIO())
    assert Message.objects.count() == 0


def test_an_export_of_someone_else_is_refused(alice, tmp_path):
    path = write_export(tmp_path / "e.zip", messages=[message("m1", "bob", "carol", "hi")])
    with pytest.raises(CommandError, match="belongs to"):
        call_command("import_export", "--identity", "alice", str(path), stdout=StringIO())
