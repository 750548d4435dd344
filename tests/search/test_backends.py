"""The backend contract: every backend that can run here passes the same suite.

Elasticsearch cannot run on this machine; its request bodies are proven against a
recording server in test_elastic.py.  Add a backend here when it can run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from search.backends.base import Document, Filters, IndexMissing, PendingEmbedding
from search.backends.embedded import EmbeddedBackend
from search.text import content_hash, terms

DIMS = 4
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["embedded"])
def backend(request, tmp_path):
    b = EmbeddedBackend(tmp_path / "index.sqlite3")
    b.create(embeddings_model="test-embed", embeddings_dims=DIMS)
    return b


def doc(doc_id: str, text: str, **fields) -> Document:
    doc_type = doc_id.split(":")[0]
    fields.setdefault("provider_id", "prov")
    fields.setdefault("remote_status", "active")
    fields.setdefault("remote_visibility", "visible")
    fields.setdefault("created_at", T0)
    return Document(doc_id=doc_id, doc_type=doc_type, text=text, content_hash=content_hash(text), **fields)


def ids(hits) -> list[str]:
    return [h.document.doc_id for h in hits]


def search(backend, query, filters=Filters(), size=25):
    return ids(backend.keyword(terms(query), filters, size))


def embed_all(backend, vectors: dict[str, list[float]]):
    pending = {p.doc_id: p for p in backend.pending_embeddings(list(vectors))}
    return backend.set_embeddings([(pending[d], v) for d, v in vectors.items() if d in pending])


def test_a_missing_index_says_to_build_it(tmp_path):
    b = EmbeddedBackend(tmp_path / "none.sqlite3")
    assert b.meta().exists is False
    with pytest.raises(IndexMissing, match="search_reindex"):
        b.keyword(["x"], Filters(), 10)


def test_it_records_the_embeddings_model_and_dims(backend):
    meta = backend.meta()
    assert (meta.exists, meta.embeddings_model, meta.embeddings_dims, meta.documents) == (True, "test-embed", DIMS, 0)


def test_bm25_ranks_documents_with_more_query_terms_first(backend):
    backend.upsert(
        [
            doc("message:1", "anyone up for a hike this weekend"),
            doc("message:2", "looking for a hiking buddy near the lake, hiking every weekend"),
            doc("message:3", "selling my old bicycle"),
        ]
    )
    assert search(backend, "hiking buddy") == ["message:2", "message:1"]


def test_stemmed_words_match(backend):
    backend.upsert([doc("lead_post:1", "We hiked the ridge trail")])
    assert search(backend, "hiking") == ["lead_post:1"]


def test_upsert_reports_only_new_or_changed_text(backend):
    first = backend.upsert([doc("message:1", "hello there"), doc("message:2", "general kenobi")])
    again = backend.upsert([doc("message:1", "hello there"), doc("message:2", "general kenobi")])
    edited = backend.upsert([doc("message:1", "hello there"), doc("message:2", "you are a bold one")])
    assert (sorted(first), again, edited) == (["message:1", "message:2"], [], ["message:2"])
    assert search(backend, "kenobi") == [] and search(backend, "bold") == ["message:2"]


def test_a_metadata_change_is_written_without_touching_the_text(backend):
    backend.upsert([doc("message:1", "secret plans")])
    changed = backend.upsert([doc("message:1", "secret plans", local_deleted=True)])
    assert changed == []
    assert backend.get(["message:1"])["message:1"].local_deleted is True
    assert search(backend, "plans") == []


def test_deleted_documents_disappear(backend):
    backend.upsert([doc("message:1", "ephemeral words"), doc("message:2", "ephemeral too")])
    backend.delete(["message:1"])
    assert search(backend, "ephemeral") == ["message:2"]
    assert backend.meta().documents == 1


def test_hidden_items_never_appear_unless_asked_for(backend):
    backend.upsert([doc("message:1", "garden party", local_deleted=True), doc("message:2", "garden tools")])
    assert search(backend, "garden") == ["message:2"]
    assert sorted(search(backend, "garden", Filters(include_hidden=True))) == ["message:1", "message:2"]


def test_remotely_deleted_items_never_appear_when_excluded(backend):
    backend.upsert(
        [
            doc("message:1", "river trip", remote_status="deleted"),
            doc("message:2", "river trip", remote_status="suspended"),
            doc("message:3", "river trip", remote_visibility="deleted_by_author"),
            doc("message:4", "river trip", remote_visibility="removed"),
            doc("message:5", "river trip"),
        ]
    )
    assert search(backend, "river") == ["message:5"]
    assert len(search(backend, "river", Filters(include_deleted=True))) == 5


def test_an_identity_filter_never_returns_another_identitys_items(backend):
    backend.upsert(
        [
            doc("message:1", "coffee tomorrow?", identity_id="1"),
            doc("message:2", "coffee tomorrow?", identity_id="2"),
            doc("lead_post:3", "coffee lovers meetup"),  # lead posts belong to no identity
        ]
    )
    assert search(backend, "coffee", Filters(identity_id="1")) == ["message:1"]


def test_type_provider_location_and_date_filters_narrow_results(backend):
    backend.upsert(
        [
            doc("lead_post:1", "board games", source_location="games", created_at=T0 - timedelta(days=10)),
            doc("lead_post:2", "board games", source_location="chess", created_at=T0),
            doc("message:3", "board games", provider_id="other", created_at=T0),
            doc("profile_item:4", "board games", created_at=None),
        ]
    )
    assert sorted(search(backend, "board", Filters(doc_types=("lead_post",)))) == ["lead_post:1", "lead_post:2"]
    assert search(backend, "board", Filters(source_location="chess")) == ["lead_post:2"]
    assert search(backend, "board", Filters(provider_id="other")) == ["message:3"]
    assert sorted(search(backend, "board", Filters(created_from=T0 - timedelta(days=1)))) == ["lead_post:2", "message:3"]
    assert search(backend, "board", Filters(created_to=T0 - timedelta(days=1))) == ["lead_post:1"]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "(((",
        "*",
        "-",
        "NEAR(a b)",
        "AND OR NOT",
        "text:secret",
        "^start",
        "a' OR 1=1 --",
        "x" * 10_000,
    ],
)
def test_query_syntax_characters_are_plain_text(backend, query):
    backend.upsert([doc("message:1", "text secret near start and more")])
    # No exception, and the result is exactly what plain-word matching gives.
    expected = ["message:1"] if {t.casefold() for t in terms(query)} & {"text", "secret", "near", "start", "and"} else []
    assert search(backend, query) == expected


def test_fts_operators_in_queries_do_not_act_as_operators(backend):
    backend.upsert([doc("message:1", "cats"), doc("message:2", "dogs")])
    # As operators, "cats NOT dogs" would exclude nothing here and "NOT" alone would be an error.
    assert sorted(search(backend, "cats NOT dogs")) == ["message:1", "message:2"]


def test_cjk_and_arabic_text_is_found_by_a_word_inside_it(backend):
    backend.upsert(
        [
            doc("message:1", "明日は東京で会いましょう"),
            doc("message:2", "我们明天在北京见面"),
            doc("message:3", "مرحبا، هل تريد الذهاب إلى المكتبة غدا؟"),
        ]
    )
    assert search(backend, "東京") == ["message:1"]
    assert search(backend, "北京") == ["message:2"]
    assert search(backend, "المكتبة") == ["message:3"]


def test_an_empty_query_matches_nothing_and_recent_lists_newest_first(backend):
    backend.upsert(
        [
            doc("message:1", "old", created_at=T0 - timedelta(days=2)),
            doc("message:2", "new", created_at=T0),
            doc("message:3", "hidden", created_at=T0, local_deleted=True),
        ]
    )
    assert search(backend, "") == []
    assert ids(backend.recent(Filters(), 10)) == ["message:2", "message:1"]


def test_vector_search_ranks_by_cosine_similarity_under_the_same_filters(backend):
    backend.upsert(
        [
            doc("message:1", "alpha", identity_id="1"),
            doc("message:2", "beta", identity_id="1"),
            doc("message:3", "gamma", identity_id="2"),
            doc("message:4", "delta", identity_id="1", local_deleted=True),
        ]
    )
    stored = embed_all(
        backend,
        {
            "message:1": [1, 0, 0, 0],
            "message:2": [0.7, 0.7, 0, 0],
            "message:3": [1, 0, 0, 0],
            "message:4": [1, 0, 0, 0],
        },
    )
    assert stored == 4
    hits = backend.vector([1, 0.1, 0, 0], Filters(identity_id="1"), 10)
    assert ids(hits) == ["message:1", "message:2"]
    assert hits[0].score > hits[1].score


def test_vector_search_leaves_out_documents_below_the_minimum_similarity(backend):
    backend.upsert([doc("message:1", "alpha"), doc("message:2", "beta")])
    embed_all(backend, {"message:1": [1, 0, 0, 0], "message:2": [0, 1, 0, 0]})

    assert ids(backend.vector([1, 0.2, 0, 0], Filters(), 10, min_similarity=0.5)) == ["message:1"]
    assert ids(backend.vector([1, 0.2, 0, 0], Filters(), 10)) == ["message:1", "message:2"]


def test_new_text_drops_the_stale_embedding_and_asks_for_a_new_one(backend):
    backend.upsert([doc("message:1", "first words")])
    embed_all(backend, {"message:1": [1, 0, 0, 0]})
    assert backend.pending_embeddings(["message:1"]) == []
    assert ids(backend.vector([1, 0, 0, 0], Filters(), 5)) == ["message:1"]
    backend.upsert([doc("message:1", "second words")])
    assert [p.doc_id for p in backend.pending_embeddings(["message:1"])] == ["message:1"]
    assert backend.vector([1, 0, 0, 0], Filters(), 5) == []


def test_an_embedding_computed_for_old_text_is_not_stored(backend):
    backend.upsert([doc("message:1", "version one")])
    (pending,) = backend.pending_embeddings(["message:1"])
    backend.upsert([doc("message:1", "version two")])
    assert backend.set_embeddings([(pending, [1, 0, 0, 0])]) == 0
    assert backend.pending_embeddings(["message:1"])[0].content_hash == content_hash("version two")


def test_vector_results_follow_later_metadata_changes_and_deletes(backend):
    backend.upsert([doc("message:1", "one"), doc("message:2", "two")])
    embed_all(backend, {"message:1": [1, 0, 0, 0], "message:2": [0, 1, 0, 0]})
    assert ids(backend.vector([1, 1, 0, 0], Filters(), 5)) == ["message:1", "message:2"]
    backend.upsert([doc("message:1", "one", local_deleted=True)])
    backend.delete(["message:2"])
    assert backend.vector([1, 1, 0, 0], Filters(), 5) == []


def test_a_rebuild_is_invisible_until_finished_and_keeps_concurrent_writes(backend):
    backend.upsert([doc("message:1", "before rebuild")])
    writer = backend.begin_rebuild(embeddings_model="test-embed", embeddings_dims=DIMS)
    writer.upsert([doc("message:3", "rebuilt from the database")])
    assert search(backend, "rebuild") == ["message:1"]  # searches still read the old generation
    backend.upsert([doc("message:2", "written during rebuild")])
    backend.finish_rebuild(writer)
    assert sorted(search(backend, "rebuild") + search(backend, "rebuilt")) == ["message:2", "message:3"]


def test_vectors_of_the_wrong_dimension_are_refused_with_a_reindex_hint(backend):
    from search.backends.base import SearchError

    with pytest.raises(SearchError, match="search_reindex"):
        backend.vector([1.0] * (DIMS + 1), Filters(), 5)


def test_pending_embeddings_without_ids_lists_any_unembedded_document(backend):
    backend.upsert([doc("message:1", "a"), doc("message:2", "b")])
    embed_all(backend, {"message:1": [1, 0, 0, 0]})
    assert backend.pending_embeddings() == [PendingEmbedding("message:2", content_hash("b"), "b")]


def test_vector_search_finds_nothing_in_an_unembedded_index(backend):
    backend.upsert([doc("message:1", "a")])
    assert backend.vector(list(np.ones(DIMS)), Filters(), 5) == []
