from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from leads.models import LeadPost
from tests.leads.conftest import connect

pytestmark = pytest.mark.django_db


def browse(*args) -> str:
    out = StringIO()
    call_command("browse", *args, stdout=out)
    return out.getvalue()


def test_it_browses_a_location_with_a_progress_bar_and_a_summary(fake_reddit, scout):
    for n in range(120):
        fake_reddit.add_post("hiking", f"author{n}", title=f"buddy post {n}")

    output = browse("hiking", "--limit", "110")

    assert LeadPost.objects.count() == 110
    assert "110/110" in output  # the progress bar
    assert output.rstrip().endswith("hiking: 110 posts in 2 pages, 110 new, 0 updated.")


def test_it_searches_as_the_named_identity(fake_reddit, scout):
    connect(fake_reddit, "other_persona")
    fake_reddit.add_post("hiking", "carol", title="buddy wanted")
    fake_reddit.add_post("hiking", "dave", title="boots")

    output = browse("hiking", "--query", "buddy", "--identity", "OTHER_PERSONA", "--sort", "top")

    assert "1 posts in 1 pages, 1 new" in output
    assert {r.username for r in fake_reddit.requests if r.path == "/r/hiking/search"} == {"other_persona"}


@pytest.mark.parametrize(("args", "message"), [
    (["../inbox"], "A location is a name"),
    (["hiking", "--limit", "0"], "--limit must be between 1 and 10000."),
    (["hiking", "--identity", "nobody"], "No identity is called 'nobody'."),
])
def test_bad_input_is_one_clear_line(fake_reddit, scout, args, message):
    with pytest.raises(CommandError) as caught:
        browse(*args)

    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not LeadPost.objects.exists()


def test_a_private_location_is_a_clear_error(fake_reddit, scout):
    fake_reddit.private_subreddit("hiking")

    with pytest.raises(CommandError, match="private"):
        browse("hiking")


def test_without_an_identity_it_says_to_connect_one(fake_reddit, db):
    with pytest.raises(CommandError, match="Connect an active identity first"):
        browse("hiking")
