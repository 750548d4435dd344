"""The Elasticsearch backend's requests, checked against a recording ES-like server.

No Elasticsearch runs on this machine: these tests prove the exact bodies we send
(spec §6.1 mapping, §6.2 query shape, kNN with the same filters) and that answers
and failures are read correctly.  Ranking itself was not run against a real cluster.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from search.backends.base import Document, Filters, IndexMissing, PendingEmbedding, SearchError, SearchUnavailable
from search.backends.elastic import ElasticBackend
from search.text import content_hash, terms

INDEX = "rediska-test"

# Spec §6.1, verbatim but for `dims`.
SPEC_6_1 = {
    "settings": {"analysis": {"analyzer": {"default": {"type": "standard"}}}},
    "mappings": {
        "properties": {
            "doc_type": {"type": "keyword"},
            "provider_id": {"type": "keyword"},
            "identity_id": {"type": "keyword"},
            "account_id": {"type": "keyword"},
            "conversation_id": {"type": "keyword"},
            "message_id": {"type": "keyword"},
            "lead_post_id": {"type": "keyword"},
            "source_location": {"type": "keyword"},
            "remote_status": {"type": "keyword"},
            "remote_visibility": {"type": "keyword"},
            "local_deleted": {"type": "boolean"},
            "created_at": {"type": "date"},
            "text": {"type": "text"},
            "embedding": {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"},
        }
    },
}


@pytest.fixture
def backend(fake_elastic):
    b = ElasticBackend(fake_elastic.url, INDEX, timeout=2)
    b.create(embeddings_model="bge-small", embeddings_dims=384)
    fake_elastic.requests.clear()
    return b


def doc(doc_id, text, **fields):
    fields.setdefault("provider_id", "prov")
    return Document(doc_id=doc_id, doc_type=doc_id.split(":")[0], text=text, content_hash=content_hash(text), **fields)


def test_ensure_creates_a_missing_index_and_keeps_an_existing_one(fake_elastic):
    backend = ElasticBackend(fake_elastic.url, INDEX)
    backend.ensure(embeddings_model="bge-small", embeddings_dims=384)
    backend.upsert([doc("message:1", "kept")])
    backend.ensure(embeddings_model="bge-small", embeddings_dims=384)  # a second worker: already there
    assert [m for m, p in ((r[0], r[1]) for r in fake_elastic.requests) if p == f"/{INDEX}" and m == "DELETE"] == []
    assert len(fake_elastic.bodies("PUT", f"/{INDEX}")) == 2 and backend.meta().documents == 1


def test_index_creation_sends_the_spec_mapping_with_dims_from_settings(fake_elastic):
    ElasticBackend(fake_elastic.url, INDEX).create(embeddings_model="bge-small", embeddings_dims=384)
    (body,) = fake_elastic.bodies("PUT", f"/{INDEX}")
    mappings = dict(body["mappings"])
    # Our only additions: unmapped bookkeeping fields stay in _source, and the embeddings model is recorded.
    assert mappings.pop("dynamic") is False
    assert mappings.pop("_meta") == {"embeddings_model": "bge-small", "embeddings_dims": 384}
    assert {"settings": body["settings"], "mappings": mappings} == SPEC_6_1


def test_meta_reads_the_model_dims_and_count_back(backend):
    backend.upsert([doc("message:1", "hello")])
    meta = backend.meta()
    assert (meta.exists, meta.embeddings_model, meta.embeddings_dims, meta.documents) == (True, "bge-small", 384, 1)


def test_a_missing_index_reports_not_existing(fake_elastic):
    assert ElasticBackend(fake_elastic.url, "nothing-here").meta().exists is False


def test_keyword_query_has_the_spec_bool_shape_with_filters(backend, fake_elastic):
    backend.keyword(terms("looking for hiking buddy"), Filters(provider_id="prov", identity_id="123"), 25)
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body == {
        "size": 25,
        "_source": {"excludes": ["embedding"]},
        "query": {
            "bool": {
                "must": [{"match": {"text": "looking for hiking buddy"}}],
                "filter": [
                    {"term": {"provider_id": "prov"}},
                    {"term": {"identity_id": "123"}},
                    {"term": {"local_deleted": False}},
                ],
                "must_not": [
                    {"terms": {"remote_status": ["deleted", "suspended"]}},
                    {"terms": {"remote_visibility": ["deleted_by_author", "removed"]}},
                ],
            }
        },
    }


def test_query_syntax_reaches_elasticsearch_only_as_plain_words(backend, fake_elastic):
    backend.keyword(terms('"a" (b) c* -d NOT e:f'), Filters(include_hidden=True, include_deleted=True), 10)
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body["query"] == {"bool": {"must": [{"match": {"text": "a b c d NOT e f"}}]}}


def test_type_location_and_date_filters_become_terms_and_range(backend, fake_elastic):
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, 23, 59, tzinfo=UTC)
    backend.keyword(["x"], Filters(doc_types=("lead_post", "message"), source_location="hiking", created_from=start, created_to=end), 5)
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body["query"]["bool"]["filter"] == [
        {"terms": {"doc_type": ["lead_post", "message"]}},
        {"term": {"source_location": "hiking"}},
        {"range": {"created_at": {"gte": "2025-01-01T00:00:00+00:00", "lte": "2025-01-31T23:59:00+00:00"}}},
        {"term": {"local_deleted": False}},
    ]


def test_knn_query_searches_embeddings_under_the_same_filters(backend, fake_elastic):
    backend.vector([0.5] * 384, Filters(identity_id="7"), 20)
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body == {
        "size": 20,
        "_source": {"excludes": ["embedding"]},
        "knn": {
            "field": "embedding",
            "k": 20,
            "num_candidates": 100,
            "query_vector": [0.5] * 384,
            "filter": {
                "bool": {
                    "filter": [{"term": {"identity_id": "7"}}, {"term": {"local_deleted": False}}],
                    "must_not": [
                        {"terms": {"remote_status": ["deleted", "suspended"]}},
                        {"terms": {"remote_visibility": ["deleted_by_author", "removed"]}},
                    ],
                }
            },
        },
    }


def test_a_minimum_similarity_is_sent_as_knn_similarity(backend, fake_elastic):
    backend.vector([0.5] * 384, Filters(), 20, min_similarity=0.6)
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body["knn"]["similarity"] == 0.6 and body["knn"]["k"] == 20


def test_hits_come_back_as_documents_in_server_order(backend, fake_elastic):
    when = datetime(2025, 2, 3, 4, 5, tzinfo=UTC)
    backend.upsert([doc("message:1", "one", created_at=when, identity_id="9"), doc("lead_post:2", "two")])
    fake_elastic.reply_search(["lead_post:2", "message:1"], [3.5, 1.25])
    hits = backend.keyword(["one", "two"], Filters(), 10)
    assert [(h.document.doc_id, h.score, h.sources) for h in hits] == [("lead_post:2", 3.5, ["bm25"]), ("message:1", 1.25, ["bm25"])]
    assert hits[1].document.created_at == when and hits[1].document.identity_id == "9"


def test_upserts_write_new_text_fully_metadata_partially_and_skip_unchanged(backend, fake_elastic):
    assert backend.upsert([doc("message:1", "hello")]) == ["message:1"]
    assert backend.upsert([doc("message:1", "hello")]) == []
    assert backend.upsert([doc("message:1", "hello", local_deleted=True)]) == []
    assert backend.upsert([doc("message:1", "hello again", local_deleted=True)]) == ["message:1"]
    bulks = fake_elastic.bodies("PUT", "/_bulk") + fake_elastic.bodies("POST", "/_bulk")
    assert len(bulks) == 3  # the unchanged upsert sent nothing
    assert bulks[0][0] == {"index": {"_index": INDEX, "_id": "message:1"}}
    assert bulks[0][1]["text"] == "hello" and bulks[0][1]["content_hash"] == content_hash("hello")
    assert bulks[1][0] == {"update": {"_index": INDEX, "_id": "message:1"}}
    assert bulks[1][1]["doc"]["local_deleted"] is True and "text" not in bulks[1][1]["doc"]
    assert bulks[2][0] == {"index": {"_index": INDEX, "_id": "message:1"}}


def test_embeddings_are_stored_only_for_the_text_they_were_made_from(backend, fake_elastic):
    backend.upsert([doc("message:1", "v1"), doc("message:2", "other")])
    pending = {p.doc_id: p for p in backend.pending_embeddings(["message:1", "message:2"])}
    backend.upsert([doc("message:2", "changed")])
    stored = backend.set_embeddings([(pending["message:1"], [0.1] * 384), (pending["message:2"], [0.2] * 384)])
    assert stored == 1
    assert [p.doc_id for p in backend.pending_embeddings(["message:1", "message:2"])] == ["message:2"]
    script = (fake_elastic.bodies("PUT", "/_bulk") + fake_elastic.bodies("POST", "/_bulk"))[-1][1]["script"]
    assert script["params"]["content_hash"] == content_hash("v1") and "ctx.op = 'noop'" in script["source"]


def test_deletes_are_bulk_deletes(backend, fake_elastic):
    backend.upsert([doc("message:1", "x")])
    backend.delete(["message:1", "message:404"])
    assert backend.get(["message:1"]) == {}


def test_an_unreachable_server_is_a_transient_error_without_the_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    b = ElasticBackend(f"http://elastic:s3cret@127.0.0.1:{port}", INDEX, timeout=1)
    with pytest.raises(SearchUnavailable) as info:
        b.keyword(["x"], Filters(), 5)
    assert info.value.transient is True
    assert "s3cret" not in str(info.value) and str(port) not in str(info.value)


def test_server_errors_are_transient_and_client_errors_are_not(backend, fake_elastic):
    fake_elastic.fail(503, "unavailable_shards_exception")
    with pytest.raises(SearchUnavailable):
        backend.keyword(["x"], Filters(), 5)
    fake_elastic.fail(400, "parsing_exception")
    with pytest.raises(SearchError) as info:
        backend.keyword(["x"], Filters(), 5)
    assert info.value.transient is False and "parsing_exception" in info.value.user_message


def test_a_deleted_index_asks_for_a_reindex(backend, fake_elastic):
    fake_elastic.indices.clear()
    with pytest.raises(IndexMissing, match="search_reindex"):
        backend.keyword(["x"], Filters(), 5)


def test_rejected_bulk_items_under_load_are_transient(backend, fake_elastic):
    backend.upsert([doc("message:1", "x")])

    def overloaded(lines, default_index):
        return {"errors": True, "items": [{"index": {"_id": "message:2", "status": 429, "error": {"type": "es_rejected_execution_exception"}}}]}

    fake_elastic._bulk = overloaded
    try:
        with pytest.raises(SearchUnavailable):
            backend.upsert([doc("message:2", "y")])
    finally:
        del fake_elastic._bulk


def test_pending_embeddings_without_ids_asks_for_documents_missing_a_vector(backend, fake_elastic):
    backend.upsert([doc("message:1", "x")])
    fake_elastic.reply_search(["message:1"])
    assert backend.pending_embeddings() == [PendingEmbedding("message:1", content_hash("x"), "x")]
    body = fake_elastic.bodies("POST", f"/{INDEX}/_search")[-1]
    assert body["query"] == {"bool": {"must_not": [{"exists": {"field": "embedding"}}]}}


# --- the similarity floor (issue 14) -------------------------------------------------------


def test_the_similarity_floor_is_stored_in_the_mappings_meta_beside_the_model(backend, fake_elastic):
    backend.set_similarity_floor(0.31, documents=1200)
    (body,) = fake_elastic.bodies("PUT", f"/{INDEX}/_mapping")
    assert body == {"_meta": {"embeddings_model": "bge-small", "embeddings_dims": 384,
                              "similarity_floor": 0.31, "floor_documents": 1200}}
    meta = backend.meta()
    assert (meta.similarity_floor, meta.floor_documents, meta.embeddings_model) == (0.31, 1200, "bge-small")


def test_sampling_embeddings_asks_for_random_documents_with_vectors(backend, fake_elastic):
    backend.upsert([doc("message:1", "one"), doc("message:2", "two")])
    backend.set_embeddings([(PendingEmbedding("message:1", content_hash("one"), "one"), [0.1] * 384)])
    fake_elastic.requests.clear()
    fake_elastic.reply_search(["message:1"])

    vectors = backend.sample_embeddings(400, seed=3)

    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body == {
        "query": {"function_score": {"query": {"exists": {"field": "embedding"}},
                                     "functions": [{"random_score": {"seed": 3, "field": "_seq_no"}}],
                                     "boost_mode": "replace"}},
        "_source": ["embedding"],
        "size": 400,
    }
    assert vectors == [[0.1] * 384]


def test_keyword_query_leaves_out_words_that_carry_no_meaning(backend, fake_elastic):
    from search import services

    services.hybrid_rankings(backend, "who offered to lend me a tent", terms("who offered to lend me a tent"),
                             Filters(), [])
    (body,) = fake_elastic.bodies("POST", f"/{INDEX}/_search")
    assert body["query"]["bool"]["must"] == [{"match": {"text": "offered lend tent"}}]
