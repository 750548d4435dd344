from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from django.utils import timezone

import search
from rediska.models import Job
from search import services
from search.backends import get_backend
from search.backends.base import Filters
from search.tasks import generate, upsert_content
from tests.factories import (
    ExternalAccountFactory,
    IdentityFactory,
    LeadPostFactory,
    MessageFactory,
    ProfileItemFactory,
    ProfileSnapshotFactory,
)

pytestmark = pytest.mark.django_db


def found(query, filters=Filters()):
    results = services.search_content(query, filters)
    assert results.error is None, results.error
    return [r.document.doc_id for g in results.groups for r in g.results]


def index(kind, *objs):
    return services.upsert_content(kind, [o.pk for o in objs])


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --- indexing -----------------------------------------------------------------------------


def test_index_later_enqueues_the_upsert_job_on_commit(django_capture_on_commit_callbacks):
    m = MessageFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        search.index_later("message", m.pk, m.pk)
    job = Job.objects.get(job_type="index.upsert_content")
    assert job.payload_json["args"] == ["message", [m.pk]] and len(callbacks) == 1


def test_index_later_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown search document kind"):
        search.index_later("attachment", 1)


def test_the_upsert_task_makes_every_kind_searchable():
    m = MessageFactory(body_text="kayak on the fjord")
    post = LeadPostFactory(title="Kayak partner", body_text="weekends")
    item = ProfileItemFactory(text_content="my kayak is red")
    snap = ProfileSnapshotFactory(summary_text="Paddles a kayak")
    for kind, obj in (("message", m), ("lead_post", post), ("profile_item", item), ("profile_snapshot", snap)):
        upsert_content(kind, [obj.pk])
    assert sorted(found("kayak")) == sorted(
        [f"message:{m.pk}", f"lead_post:{post.pk}", f"profile_item:{item.pk}", f"profile_snapshot:{snap.pk}"]
    )
    assert Job.objects.filter(job_type="index.upsert_content", status="done").count() == 4


def test_unchanged_text_is_not_rewritten_or_re_embedded(fake_llm, django_capture_on_commit_callbacks):
    m = MessageFactory(body_text="same words")
    assert index("message", m)["text_changed"] == 1
    assert index("message", m)["text_changed"] == 0
    m.body_text = "new words"
    m.save()
    assert index("message", m)["text_changed"] == 1
    embed_jobs = Job.objects.filter(job_type="embed.generate")
    assert [j.payload_json["args"] for j in embed_jobs] == [[[f"message:{m.pk}"]], [[f"message:{m.pk}"]]]


def test_no_embedding_job_without_an_embeddings_server():
    index("message", MessageFactory(body_text="hello"))
    assert not Job.objects.filter(job_type="embed.generate").exists()


def test_a_row_that_lost_its_text_leaves_the_index():
    m = MessageFactory(body_text="going away")
    index("message", m)
    m.body_text = ""
    m.save()
    assert index("message", m)["removed"] == 1
    assert found("going") == []


# --- filters never leak ---------------------------------------------------------------------


def test_locally_hidden_items_never_appear_unless_included():
    m = MessageFactory(body_text="birthday surprise")
    index("message", m)
    m.deleted_at = timezone.now()
    m.save()
    index("message", m)
    assert found("birthday") == []
    assert found("birthday", Filters(include_hidden=True)) == [f"message:{m.pk}"]


def test_hiding_a_conversation_hides_its_messages_through_index_later():
    m = MessageFactory(body_text="dinner plans")
    index("message", m)
    conv = m.conversation
    conv.deleted_at = timezone.now()
    conv.save()
    upsert_content("conversation", [conv.pk])
    assert found("dinner") == []


def test_other_identities_items_never_appear_when_an_identity_is_chosen():
    mine, theirs = IdentityFactory(), IdentityFactory()
    a = MessageFactory(conversation__identity=mine, body_text="the concert tickets")
    b = MessageFactory(conversation__identity=theirs, body_text="the concert tickets")
    post = LeadPostFactory(title="concert tickets for sale")
    index("message", a, b)
    index("lead_post", post)
    assert found("concert", Filters(identity_id=str(mine.pk))) == [f"message:{a.pk}"]
    assert len(found("concert")) == 3


def test_remotely_deleted_items_never_appear_when_excluded():
    gone_account = ExternalAccountFactory(remote_status="deleted")
    a = MessageFactory(conversation__counterpart_account=gone_account, body_text="museum trip")
    b = MessageFactory(body_text="museum trip", remote_visibility="deleted_by_author")
    c = LeadPostFactory(title="museum trip", remote_visibility="removed")
    d = MessageFactory(body_text="museum trip")
    index("message", a, b, d)
    index("lead_post", c)
    assert found("museum") == [f"message:{d.pk}"]
    assert len(found("museum", Filters(include_deleted=True))) == 4


def test_an_account_turning_deleted_is_excluded_after_reindexing_it():
    account = ExternalAccountFactory()
    item = ProfileItemFactory(account=account, text_content="vintage cameras")
    index("profile_item", item)
    account.remote_status = "deleted"
    account.save()
    upsert_content("account", [account.pk])
    assert found("cameras") == []


# --- searching ------------------------------------------------------------------------------


def test_results_are_grouped_by_type_with_snippets_titles_and_counts():
    account = ExternalAccountFactory(external_username="ada")
    m = MessageFactory(conversation__counterpart_account=account, body_text="Let's go <b>sailing</b> on Sunday")
    post = LeadPostFactory(title="Sailing crew needed", body_text="Sunday races", source_location="sailing")
    index("message", m)
    index("lead_post", post)
    results = services.search_content("sailing", Filters())
    assert [g.doc_type for g in results.groups] == ["message", "lead_post"]
    message = results.groups[0].results[0]
    assert message.title == "Conversation with ada"
    assert ("sailing", True) in message.snippet and ("Let's go <b>", False) in message.snippet
    assert results.groups[1].results[0].title == "Sailing crew needed · sailing"
    assert results.total == 2


@pytest.mark.urls("tests.search.urls_with_targets")
def test_results_link_to_the_conversation_message_lead_or_person():
    m = MessageFactory(body_text="orchid care")
    post = LeadPostFactory(title="orchid swap")
    item = ProfileItemFactory(text_content="orchid photos")
    index("message", m)
    index("lead_post", post)
    index("profile_item", item)
    urls = {r.document.doc_type: r.url for g in services.search_content("orchid", Filters()).groups for r in g.results}
    assert urls == {
        "message": f"/inbox/conversations/{m.conversation_id}/#m{m.pk}",
        "lead_post": f"/leads/{post.pk}/",
        "profile_item": f"/leads/people/{item.account_id}/",
    }


def test_message_results_link_to_their_place_in_the_real_conversation_page():
    m = MessageFactory(body_text="linked words")
    index("message", m)
    (result,) = services.search_content("linked", Filters()).groups[0].results
    assert result.url == f"/inbox/c/{m.conversation_id}/#m{m.pk}"


@pytest.mark.urls("tests.search.urls_without_targets")
def test_results_without_a_target_page_have_no_link_rather_than_an_error():
    m = MessageFactory(body_text="unlinked words")
    index("message", m)
    (result,) = services.search_content("unlinked", Filters()).groups[0].results
    assert result.url is None


def test_an_empty_query_lists_the_newest_items():
    old = MessageFactory(body_text="old", sent_at=datetime(2024, 1, 1, tzinfo=UTC))
    new = MessageFactory(body_text="new", sent_at=datetime(2025, 1, 1, tzinfo=UTC))
    index("message", old, new)
    results = services.search_content("", Filters())
    assert results.recent is True and [r.document.doc_id for r in results.groups[0].results] == [f"message:{new.pk}", f"message:{old.pk}"]


def test_a_query_of_only_symbols_says_so_and_lists_the_newest_items():
    index("message", MessageFactory(body_text="anything"))
    results = services.search_content('"()*-:^', Filters())
    assert results.recent is True and "no searchable words" in results.notices[0]


def test_searching_before_anything_is_indexed_says_to_build_the_index():
    results = services.search_content("hello", Filters())
    assert "search_reindex" in results.error and results.groups == []


def test_an_unreachable_elastic_server_gives_a_clear_message(settings):
    settings.ELASTIC_URL = f"http://127.0.0.1:{closed_port()}"
    results = services.search_content("hello", Filters())
    assert results.error == "The search server can't be reached right now; try again shortly."


def test_indexing_retries_later_when_elastic_is_unreachable(settings):
    settings.ELASTIC_URL = f"http://127.0.0.1:{closed_port()}"
    m = MessageFactory(body_text="queued")
    with pytest.raises(Exception) as info:
        upsert_content("message", [m.pk])
    assert info.value.transient is True
    job = Job.objects.get(job_type="index.upsert_content")
    assert job.status == "retrying" and job.next_run_at is not None and "reached" in job.last_error


# --- embeddings -----------------------------------------------------------------------------


def _unit(i, dims):
    return [1.0 if j == i else 0.0 for j in range(dims)]


def test_search_by_meaning_finds_text_sharing_no_words_with_the_query(fake_llm):
    dog = MessageFactory(body_text="my puppy chewed the sofa")
    tax = MessageFactory(body_text="quarterly tax forms")
    index("message", dog, tax)
    fake_llm.reply_embeddings([_unit(0, fake_llm.dims), _unit(1, fake_llm.dims)])  # the documents, in pk order
    assert generate([f"message:{dog.pk}", f"message:{tax.pk}"]) == {"embedded": 2, "pending": 2}
    fake_llm.reply_embeddings([[0.9, 0.1] + [0.0] * (fake_llm.dims - 2)])  # the query "canine companion"
    results = services.search_content("canine companion", Filters())
    first = results.groups[0].results[0]
    assert first.document.doc_id == f"message:{dog.pk}" and first.sources == ["vector"]
    assert fake_llm.requests[-1]["input"] == ["canine companion"]


def test_meaning_matches_below_the_minimum_similarity_are_not_shown(fake_llm, settings):
    settings.SEARCH_MIN_SIMILARITY = 0.5
    dog = MessageFactory(body_text="my puppy chewed the sofa")
    tax = MessageFactory(body_text="quarterly tax forms")
    index("message", dog, tax)
    fake_llm.reply_embeddings([_unit(0, fake_llm.dims), _unit(1, fake_llm.dims)])
    generate([f"message:{dog.pk}", f"message:{tax.pk}"])
    fake_llm.reply_embeddings([[0.9, 0.1] + [0.0] * (fake_llm.dims - 2)])  # cosine 0.99 to dog, 0.11 to tax
    results = services.search_content("canine companion", Filters())
    assert [r.document.doc_id for g in results.groups for r in g.results] == [f"message:{dog.pk}"]


def test_hybrid_ranking_puts_items_found_both_ways_first(fake_llm):
    a = MessageFactory(body_text="camping gear list")
    b = MessageFactory(body_text="camping at the lake")
    c = MessageFactory(body_text="tent and sleeping bag")
    index("message", a, b, c)
    fake_llm.reply_embeddings([_unit(1, fake_llm.dims), _unit(0, fake_llm.dims), _unit(0, fake_llm.dims)])
    generate([f"message:{x.pk}" for x in (a, b, c)])
    fake_llm.reply_embeddings([_unit(0, fake_llm.dims)])
    ids = found("camping lake")
    assert ids[0] == f"message:{b.pk}"  # best keyword match and a vector match
    assert set(ids) == {f"message:{x.pk}" for x in (a, b, c)}


def test_embedding_only_new_text_and_skipping_vectors_already_there(fake_llm):
    m = MessageFactory(body_text="first")
    index("message", m)
    assert services.generate_embeddings([f"message:{m.pk}"])["embedded"] == 1
    calls = len(fake_llm.requests)
    assert services.generate_embeddings([f"message:{m.pk}"])["embedded"] == 0
    assert len(fake_llm.requests) == calls


def test_an_unreachable_embeddings_server_falls_back_to_keywords_with_a_notice(fake_llm, settings):
    index("message", MessageFactory(body_text="piano lessons"))
    settings.EMBEDDINGS_URL = f"http://127.0.0.1:{closed_port()}"
    results = services.search_content("piano", Filters())
    assert results.error is None and results.total == 1
    assert "Search by meaning is unavailable" in results.notices[0]


def test_the_embedding_job_retries_later_when_the_server_is_down(fake_llm, settings):
    m = MessageFactory(body_text="retry me")
    index("message", m)
    settings.EMBEDDINGS_URL = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(Exception):
        generate([f"message:{m.pk}"])
    job = Job.objects.filter(job_type="embed.generate").latest("pk")
    assert job.status == "retrying"


def test_a_changed_embeddings_model_asks_for_a_reindex_instead_of_mixing_vectors(fake_llm, settings):
    m = MessageFactory(body_text="violin teacher")
    index("message", m)  # index records fake-embed / 8 dims
    settings.EMBEDDINGS_MODEL = "another-model"
    settings.EMBEDDINGS_DIMS = 16
    requests_before = len(fake_llm.requests)
    results = services.search_content("violin", Filters())
    assert results.total == 1 and "search_reindex" in results.notices[0] and "another-model" in results.notices[0]
    with pytest.raises(services.EmbeddingsMismatch):
        generate([f"message:{m.pk}"])
    assert len(fake_llm.requests) == requests_before  # no vector of the new model was made or mixed in
    job = Job.objects.filter(job_type="embed.generate").latest("pk")
    assert job.status == "failed" and "search_reindex" in job.last_error
    jobs_before = Job.objects.filter(job_type="embed.generate").count()
    m.body_text = "violin teacher wanted"
    m.save()
    assert index("message", m)["text_changed"] == 1  # keyword indexing goes on...
    assert Job.objects.filter(job_type="embed.generate").count() == jobs_before  # ...but no embedding job


def test_reindex_rebuilds_from_the_database_with_the_new_model(fake_llm, settings):
    m = MessageFactory(body_text="cello teacher")
    index("message", m)
    settings.EMBEDDINGS_MODEL = "another-model"
    result = services.reindex()
    assert result["documents"]["message"] == 1 and result["embedded"] == 1
    meta = get_backend().meta()
    assert (meta.embeddings_model, meta.embeddings_dims, meta.documents) == ("another-model", fake_llm.dims, 1)
    assert services.search_content("cello", Filters()).notices == []


def test_the_embedding_task_without_ids_sweeps_documents_left_without_vectors(fake_llm, settings):
    url = settings.EMBEDDINGS_URL
    settings.EMBEDDINGS_URL = f"http://127.0.0.1:{closed_port()}"
    m = MessageFactory(body_text="missed while the server was down")
    index("message", m)
    settings.EMBEDDINGS_URL = url
    assert generate() == {"embedded": 1, "pending": 1}
    assert get_backend().pending_embeddings() == []


# --- the similarity floor derived from the index (issue 14) ------------------------------


def _near_axis(i: int, dims: int) -> list[float]:
    """Unit vectors sharing a small common part: any two have a cosine of 0.09 / 1.09."""
    v = [0.0] * dims
    v[0], v[i] = 0.3, 1.0
    return v


def _index_topics(fake_llm, n: int):
    messages = [MessageFactory(body_text=f"topic number {i}") for i in range(1, n + 1)]
    index("message", *messages)
    fake_llm.reply_embeddings([_near_axis(i, fake_llm.dims) for i in range(1, n + 1)])
    generate([f"message:{m.pk}" for m in messages])
    return messages


def test_the_similarity_floor_is_derived_from_random_pairs_and_stored_with_the_index(fake_llm):
    _index_topics(fake_llm, 10)
    meta = get_backend().meta()
    assert meta.similarity_floor == pytest.approx(0.09 / 1.09, abs=1e-6)
    assert meta.floor_documents == 10 and meta.embeddings_model == "fake-embed"


def test_a_query_about_nothing_in_the_index_shows_no_meaning_matches_without_any_setting(fake_llm, settings):
    assert settings.SEARCH_MIN_SIMILARITY == 0
    messages = _index_topics(fake_llm, 10)
    fake_llm.reply_embeddings([_unit(40, fake_llm.dims)])  # orthogonal to every document
    assert found("volcanoes erupting") == []
    fake_llm.reply_embeddings([_unit(3, fake_llm.dims)])  # the meaning of message 3 only
    assert found("volcanoes erupting") == [f"message:{messages[2].pk}"]


def test_search_min_similarity_overrides_the_derived_floor(fake_llm, settings):
    _index_topics(fake_llm, 10)
    settings.SEARCH_MIN_SIMILARITY = 0.99
    fake_llm.reply_embeddings([_unit(3, fake_llm.dims)])  # cosine 0.958 to message 3
    assert found("volcanoes erupting") == []


def test_a_small_index_has_no_floor_until_it_grows(fake_llm):
    _index_topics(fake_llm, 3)
    assert get_backend().meta().similarity_floor is None
    more = [MessageFactory(body_text=f"another subject {i}") for i in range(4, 14)]
    index("message", *more)
    fake_llm.reply_embeddings([_near_axis(i, fake_llm.dims) for i in range(4, 14)])
    generate([f"message:{m.pk}" for m in more])
    assert get_backend().meta().floor_documents == 13


def test_reindex_recomputes_the_floor_from_the_rebuilt_vectors(fake_llm):
    _index_topics(fake_llm, 10)
    services.reindex()  # the fake's own bag-of-words vectors this time
    meta = get_backend().meta()
    assert meta.similarity_floor is not None and meta.similarity_floor != pytest.approx(0.09 / 1.09, abs=1e-6)
