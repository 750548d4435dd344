"""Embedded-backend specifics beyond the shared contract: the common-term plan and the vector cache."""

from __future__ import annotations

from datetime import timedelta
import time

import pytest

from search.backends.base import Filters, SearchUnavailable
from search.backends.embedded import EmbeddedBackend
from tests.search.test_backends import T0, doc, embed_all, search


@pytest.fixture
def backend(tmp_path):
    b = EmbeddedBackend(tmp_path / "index.sqlite3", common_df=3)
    b.create(embeddings_model="m", embeddings_dims=4)
    return b


def test_common_terms_are_left_out_when_a_selective_term_exists(backend):
    backend.upsert([doc(f"message:{i}", "the usual chatter") for i in range(1, 6)] + [doc("message:9", "the rare zephyr")])
    assert search(backend, "the zephyr") == ["message:9"]


def test_a_query_of_only_common_terms_lists_newest_documents_having_all_of_them(backend):
    backend.upsert(
        [doc(f"message:{i}", "the usual chatter", created_at=T0 + timedelta(hours=i)) for i in range(1, 6)]
        + [doc("message:7", "the unusual", created_at=T0 + timedelta(days=9))]
    )
    assert search(backend, "the usual", size=3) == ["message:5", "message:4", "message:3"]
    assert search(backend, "the", size=2) == ["message:7", "message:5"]


def test_common_term_listings_still_apply_filters(backend):
    backend.upsert(
        [doc(f"message:{i}", "the usual chatter", identity_id=str(i % 2)) for i in range(1, 8)]
        + [doc("message:8", "the usual chatter", identity_id="1", local_deleted=True, created_at=T0 + timedelta(days=1))]
    )
    found = search(backend, "the", Filters(identity_id="1"))
    assert sorted(found) == ["message:1", "message:3", "message:5", "message:7"]


def test_each_process_sees_vectors_written_by_another_connection(backend, tmp_path):
    other = EmbeddedBackend(tmp_path / "index.sqlite3")
    backend.upsert([doc("message:1", "a")])
    embed_all(backend, {"message:1": [1, 0, 0, 0]})
    assert [h.document.doc_id for h in other.vector([1, 0, 0, 0], Filters(), 3)] == ["message:1"]
    other.upsert([doc("message:2", "b")])
    embed_all(other, {"message:2": [0, 1, 0, 0]})
    assert [h.document.doc_id for h in backend.vector([0, 1, 0, 0], Filters(), 1)] == ["message:2"]


def test_a_damaged_index_file_gives_a_reindex_message(tmp_path):
    from search.backends.base import SearchError

    path = tmp_path / "broken.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SearchError, match="search_reindex"):
        EmbeddedBackend(path).keyword(["x"], Filters(), 5)


def test_the_vector_cache_grows_past_its_first_allocation(backend):
    docs = [doc(f"message:{i}", f"word{i}") for i in range(1, 1500)]
    backend.upsert(docs)
    embed_all(backend, {d.doc_id: [1, i / 1500, 0, 0] for i, d in enumerate(docs)})
    backend.vector([1, 0, 0, 0], Filters(), 1)  # first load
    backend.upsert([doc("message:2000", "late")])
    embed_all(backend, {"message:2000": [0, 0, 1, 0]})
    assert [h.document.doc_id for h in backend.vector([0, 0, 1, 0], Filters(), 1)] == ["message:2000"]
    assert [h.document.doc_id for h in backend.vector([1, 0, 0, 0], Filters(), 1)] == ["message:1"]


def test_workers_creating_a_missing_index_at_once_end_with_one_usable_index(tmp_path):
    # Two Celery workers' first upserts used to race: the second took the first's
    # half-made index for an interrupted rebuild and dropped its tables.
    import threading

    path = tmp_path / "fresh.sqlite3"
    start, errors = threading.Barrier(6), []

    def first_write(n):
        b = EmbeddedBackend(path)
        start.wait()
        for attempt in range(5):
            try:
                b.ensure(embeddings_model="m", embeddings_dims=4)
                b.upsert([doc(f"message:{n}", f"words of worker {n}")])
                return
            except SearchUnavailable:  # "busy, try again shortly": transient, the ledger retries it
                time.sleep(0.05 * (attempt + 1))
            except Exception as exc:  # collected: an exception in a thread would pass silently
                errors.append(exc)
                return
        errors.append(AssertionError(f"worker {n} found the index busy five times"))

    threads = [threading.Thread(target=first_write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    meta = EmbeddedBackend(path).meta()
    assert meta.exists and meta.documents == 6 and meta.embeddings_dims == 4


def test_ensure_leaves_an_existing_index_and_its_documents_alone(backend):
    backend.upsert([doc("message:1", "kept words")])
    backend.ensure(embeddings_model="other", embeddings_dims=8)
    meta = backend.meta()
    assert meta.documents == 1 and (meta.embeddings_model, meta.embeddings_dims) == ("m", 4)
