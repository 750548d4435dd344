from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from search import services
from search.backends import get_backend
from search.backends.base import Filters
from tests.factories import LeadPostFactory, MessageFactory, ProfileItemFactory, ProfileSnapshotFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("search_reindex", *args, stdout=out)
    return out.getvalue()


def test_it_rebuilds_the_whole_index_from_the_database_with_a_progress_bar():
    MessageFactory(body_text="alpine lakes")
    LeadPostFactory(title="alpine hut trip")
    ProfileItemFactory(text_content="alpine flowers")
    ProfileSnapshotFactory(summary_text="Loves alpine walks")
    MessageFactory(body_text="")  # nothing to index
    out = run()
    assert "reindex: 100%" in out and "5/5" in out
    assert "Indexed 4 documents (message 1, lead_post 1, profile_item 1, profile_snapshot 1) in the embedded index; 0 embedded." in out
    assert services.search_content("alpine", Filters()).total == 4


def test_a_rebuild_drops_documents_whose_rows_are_gone_from_the_index():
    m = MessageFactory(body_text="stale entry")
    services.upsert_content("message", [m.pk])
    m.body_text = None
    m.save()
    run()
    assert services.search_content("stale", Filters()).total == 0


def test_one_kind_can_be_reindexed_in_place():
    MessageFactory(body_text="first pass")
    post = LeadPostFactory(title="kept post")
    services.upsert_content("lead_post", [post.pk])
    out = run("--kind", "message")
    assert "Indexed 1 documents (message 1)" in out
    assert services.search_content("kept", Filters()).total == 1 and services.search_content("pass", Filters()).total == 1


def test_it_embeds_everything_when_an_embeddings_server_is_configured(fake_llm):
    MessageFactory(body_text="one")
    MessageFactory(body_text="two")
    out = run()
    assert "2 embedded" in out
    assert get_backend().pending_embeddings() == []


def test_the_elastic_backend_needs_an_elastic_url():
    with pytest.raises(CommandError, match="ELASTIC_URL is not set"):
        run("--backend", "elastic")


def test_it_reindexes_into_elasticsearch_when_asked(fake_elastic, settings):
    settings.ELASTIC_URL = fake_elastic.url
    settings.ELASTIC_INDEX = "rediska-reindex-test"
    m = MessageFactory(body_text="to the cluster")
    run("--backend", "elastic")
    (create,) = fake_elastic.bodies("PUT", "/rediska-reindex-test")
    assert create["mappings"]["properties"]["embedding"]["dims"] == settings.EMBEDDINGS_DIMS
    assert fake_elastic.indices["rediska-reindex-test"]["docs"][f"message:{m.pk}"]["text"] == "to the cluster"


def test_an_unreachable_server_is_one_clear_error_line(settings):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings.ELASTIC_URL = f"http://127.0.0.1:{port}"
    MessageFactory(body_text="x")
    with pytest.raises(CommandError, match="^Search reindex failed: The search server can't be reached right now"):
        run()


def test_a_failed_embedding_step_keeps_the_previous_index(fake_llm, settings):
    m = MessageFactory(body_text="precious")
    services.upsert_content("message", [m.pk])
    fake_llm.reply_error(400, "bad request")
    with pytest.raises(CommandError, match="Search reindex failed"):
        run()
    assert services.search_content("precious", Filters()).total == 1
