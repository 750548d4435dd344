"""Search services: keep the index in step with the database, and answer searches.

The index is derived data: `reindex` rebuilds it from the database at any time.
Day to day, `upsert_content` (task `index.upsert_content`) rewrites the documents
of the rows other apps changed, and `generate_embeddings` (task `embed.generate`)
adds vectors for new or changed text when an embeddings server is configured.

The index records the embeddings model and dimensions it was built with.  When
the settings name another model or size, vectors are neither generated nor
queried (they would not be comparable) and every page and job says to run
`manage.py search_reindex`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from rediska.jobs import enqueue
from rediska.llm import LLMError, LLMNotConfigured, embeddings_client

from . import documents
from .backends import get_backend
from .backends.base import DOC_TYPES, Document, Filters, Hit, IndexMeta, SearchBackend, SearchError
from .fusion import FLOOR_MIN_DOCUMENTS, fusion_weights, reciprocal_rank_fusion, similarity_floor
from .text import embedding_input, keyword_terms, snippet, terms

FUSION_DEPTH = 100  # each ranking contributes its top 100 to the fusion
EMBED_BATCH = 64
FLOOR_SAMPLE = 400  # random documents whose pairwise cosines give the similarity floor
FLOOR_REFRESH_GROWTH = 1.25  # recomputed when the index has grown by a quarter since
TYPE_LABELS = {
    "message": "Messages",
    "lead_post": "Lead posts",
    "profile_item": "Profile posts and comments",
    "profile_snapshot": "Profile summaries",
}


class EmbeddingsMismatch(SearchError):
    """The index holds vectors of another model or size than the settings name."""


# --- the embeddings model the settings ask for ---------------------------------------------


def wanted_embeddings() -> tuple[str, int]:
    """(model, dims) new indexes record; model is "" when no embeddings server is configured."""
    model = settings.EMBEDDINGS_MODEL if settings.EMBEDDINGS_URL else ""
    return model, int(settings.EMBEDDINGS_DIMS)


def embeddings_mismatch(meta: IndexMeta) -> str | None:
    """A "run search_reindex" message when the configured embeddings differ from the index's."""
    model, dims = wanted_embeddings()
    if not model or (meta.embeddings_model, meta.embeddings_dims) == (model, dims):
        return None
    built = f"“{meta.embeddings_model}” ({meta.embeddings_dims} dimensions)" if meta.embeddings_model else "no embeddings"
    return (
        f"The search index was built with {built} but the settings now say “{model}” ({dims} dimensions): "
        "run `manage.py search_reindex` to rebuild it. Until then only keyword search is used."
    )


def _ensure_index(backend: SearchBackend) -> IndexMeta:
    meta = backend.meta()
    if not meta.exists:
        model, dims = wanted_embeddings()
        backend.ensure(embeddings_model=model, embeddings_dims=dims)  # workers may race to make it
        meta = backend.meta()
    return meta


# --- indexing -------------------------------------------------------------------------------


def upsert_content(kind: str, pks: list[int], *, backend: SearchBackend | None = None) -> dict:
    """Rewrite the documents of these rows; enqueue embeddings for new or changed text."""
    backend = backend or get_backend()
    meta = _ensure_index(backend)
    written = removed = 0
    changed: list[str] = []
    for doc_kind, kind_pks in documents.related(kind, pks).items():
        docs, gone = documents.build(doc_kind, kind_pks)
        changed += backend.upsert(docs)
        backend.delete(gone)
        written, removed = written + len(docs), removed + len(gone)
    embed_later = bool(changed) and bool(settings.EMBEDDINGS_URL) and embeddings_mismatch(meta) is None
    for start in range(0, len(changed) if embed_later else 0, 500):
        enqueue("embed.generate", changed[start : start + 500], queue="embed")
    return {"documents": written, "removed": removed, "text_changed": len(changed)}


def generate_embeddings(doc_ids: list[str] | None, *, backend: SearchBackend | None = None, job_id=None,
                        limit: int = 500) -> dict:
    """Embed documents (these, or any pending up to `limit`) whose vector is missing or stale."""
    backend = backend or get_backend()
    meta = backend.meta()
    if not meta.exists:
        return {"embedded": 0}
    mismatch = embeddings_mismatch(meta)
    if mismatch:
        raise EmbeddingsMismatch(mismatch)
    client = embeddings_client()  # LLMNotConfigured when EMBEDDINGS_URL is empty
    pending = backend.pending_embeddings(doc_ids, limit=limit)
    stored = 0
    for start in range(0, len(pending), EMBED_BATCH):
        batch = pending[start : start + EMBED_BATCH]
        vectors = client.embed([embedding_input(p.text) for p in batch], job_id=job_id)
        stored += backend.set_embeddings(list(zip(batch, vectors)))
    if stored and _floor_is_stale(backend.meta()):
        update_similarity_floor(backend)
    return {"embedded": stored, "pending": len(pending)}


def _floor_is_stale(meta: IndexMeta) -> bool:
    if meta.similarity_floor is None:
        return meta.documents >= FLOOR_MIN_DOCUMENTS
    return meta.documents >= meta.floor_documents * FLOOR_REFRESH_GROWTH


def update_similarity_floor(backend: SearchBackend | None = None) -> float | None:
    """Derive the similarity floor from the index's own vectors and record it with the index."""
    backend = backend or get_backend()
    documents = backend.meta().documents
    floor = similarity_floor(backend.sample_embeddings(FLOOR_SAMPLE))
    if floor is not None:
        backend.set_similarity_floor(floor, documents=documents)
    return floor


def min_similarity(meta: IndexMeta) -> float:
    """SEARCH_MIN_SIMILARITY when set (an override), else the floor derived from the index."""
    if settings.SEARCH_MIN_SIMILARITY:
        return float(settings.SEARCH_MIN_SIMILARITY)
    return meta.similarity_floor or 0.0


def reindex(*, backend: SearchBackend | None = None, kinds: tuple[str, ...] = documents.KINDS, batch: int = 1000,
            progress=None) -> dict:
    """Rebuild the index from the database (all kinds, or only `kinds` into the live index).

    A full rebuild writes a new index aside and switches to it at the end (embedded
    backend), recording the configured embeddings model.  `progress(n)` is called
    as documents are written and embedded.
    """
    backend = backend or get_backend()
    model, dims = wanted_embeddings()
    full = set(kinds) == set(documents.KINDS)
    if full:
        target = backend.begin_rebuild(embeddings_model=model, embeddings_dims=dims)
    else:
        meta = _ensure_index(backend)
        if embeddings_mismatch(meta):
            raise EmbeddingsMismatch(embeddings_mismatch(meta))
        target = backend
    try:
        result = _fill(target, kinds, model, batch, progress)
    except BaseException:
        if full:
            backend.abort_rebuild(target)
        raise
    if full:
        backend.finish_rebuild(target)
    return result


def _fill(target: SearchBackend, kinds, model: str, batch: int, progress) -> dict:
    counts = {}
    for kind in kinds:
        pks = list(documents.MODELS[kind].objects.order_by("pk").values_list("pk", flat=True))
        written = 0
        for start in range(0, len(pks), batch):
            docs, gone = documents.build(kind, pks[start : start + batch])
            target.upsert(docs)
            target.delete(gone)
            written += len(docs)
            if progress:
                progress(len(pks[start : start + batch]))
        counts[kind] = written
    embedded = 0
    if model:
        # Embed in place before switching, so searches never see an index without vectors.
        while True:
            done = generate_embeddings(None, backend=target, limit=batch)
            embedded += done["embedded"]
            if progress:
                progress(done["embedded"])
            if done["pending"] < batch or done["embedded"] == 0:
                break
        update_similarity_floor(target)  # from the rebuilt index's vectors, before searches see it
    return {"documents": counts, "embedded": embedded}


def count_reindex_work(kinds: tuple[str, ...] = documents.KINDS) -> int:
    return sum(documents.MODELS[kind].objects.count() for kind in kinds)


# --- searching ------------------------------------------------------------------------------


@dataclass
class Result:
    document: Document
    title: str
    snippet: list[tuple[str, bool]]
    url: str | None
    sources: list[str]


@dataclass
class Group:
    doc_type: str
    label: str
    results: list[Result]


@dataclass
class SearchResults:
    query: str
    groups: list[Group] = field(default_factory=list)
    total: int = 0
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    recent: bool = False  # an empty query lists the newest items


def search_content(query: str, filters: Filters, *, size: int = 25, backend: SearchBackend | None = None) -> SearchResults:
    """Hybrid search: BM25 and vector rankings fused by RRF, grouped by type, with snippets."""
    result = SearchResults(query=query)
    query_terms = terms(query)
    try:
        backend = backend or get_backend()
        if not query_terms:
            if query.strip():
                result.notices.append("The query has no searchable words; showing the newest items instead.")
            result.recent = True
            hits = backend.recent(filters, size)
        else:
            keyword_hits, vector_hits, floor = hybrid_rankings(backend, query, query_terms, filters, result.notices)
            hits = fuse(keyword_hits, vector_hits, query_terms, floor, size)
    except SearchError as exc:
        result.error = exc.user_message
        return result
    result.groups = _group(hits, query_terms)
    result.total = len(hits)
    return result


def hybrid_rankings(backend: SearchBackend, query: str, query_terms: list[str], filters: Filters,
                    notices: list[str]) -> tuple[list[Hit], list[Hit], float]:
    """(keyword hits, vector hits, similarity floor used) for a query, under the filters."""
    keyword_hits = backend.keyword(keyword_terms(query_terms), filters, FUSION_DEPTH)
    meta = backend.meta() if settings.EMBEDDINGS_URL else IndexMeta(exists=False)
    floor = min_similarity(meta)
    return keyword_hits, _vector_hits(backend, meta, query, filters, floor, notices), floor


def _vector_hits(backend: SearchBackend, meta: IndexMeta, query: str, filters: Filters, floor: float,
                 notices: list[str]) -> list[Hit]:
    if not settings.EMBEDDINGS_URL:
        return []
    mismatch = embeddings_mismatch(meta)
    if mismatch:
        notices.append(mismatch)
        return []
    try:
        (vector,) = embeddings_client().embed([embedding_input(query)], operation="search_query")
    except LLMNotConfigured:
        return []
    except LLMError as exc:
        notices.append(f"Search by meaning is unavailable ({exc.user_message}); showing keyword matches only.")
        return []
    return backend.vector(vector, filters, FUSION_DEPTH, floor)


def fuse(keyword_hits: list[Hit], vector_hits: list[Hit], query_terms: list[str], floor: float,
         size: int) -> list[Hit]:
    """The hybrid ranking: keyword and vector hits fused by confidence-weighted RRF."""
    rankings = [keyword_hits, vector_hits]
    by_id: dict[str, Hit] = {}
    for ranking in rankings:
        for hit in ranking:
            known = by_id.setdefault(hit.document.doc_id, Hit(hit.document, 0.0, []))
            known.sources += hit.sources
    weights = fusion_weights(keyword_hits, vector_hits, query_terms, floor)
    fused = reciprocal_rank_fusion([[h.document.doc_id for h in ranking] for ranking in rankings],
                                   weights=weights, size=size)
    hits = []
    for doc_id, score in fused:
        hit = by_id[doc_id]
        hit.score = score
        hits.append(hit)
    return hits


def describe(hits: list[Hit], query_terms: list[str]) -> list[Result]:
    """Hits as results to show: title, snippet and the page each opens (one query for the names)."""
    names = _account_names(hits)
    return [Result(h.document, _title(h.document, names), snippet(h.document.text, query_terms), _url(h.document),
                   h.sources) for h in hits]


def _group(hits: list[Hit], query_terms: list[str]) -> list[Group]:
    grouped: dict[str, list[Result]] = {t: [] for t in DOC_TYPES}
    for result in describe(hits, query_terms):
        grouped.setdefault(result.document.doc_type, []).append(result)
    return [Group(t, TYPE_LABELS.get(t, t), results) for t, results in grouped.items() if results]


def _account_names(hits: list[Hit]) -> dict[str, str]:
    from inbox.models import ExternalAccount

    ids = {int(h.document.account_id) for h in hits if h.document.account_id}
    return {str(pk): name for pk, name in ExternalAccount.objects.filter(pk__in=ids).values_list("pk", "external_username")}


def _title(doc: Document, names: dict[str, str]) -> str:
    who = names.get(doc.account_id or "", "someone")
    if doc.doc_type == "message":
        return f"Conversation with {who}"
    if doc.doc_type == "lead_post":
        first_line = doc.text.split("\n", 1)[0][:120]
        return f"{first_line} · {doc.source_location}" if doc.source_location else first_line
    if doc.doc_type == "profile_item":
        return f"Posted by {who}"
    return f"Profile summary of {who}"


def _url(doc: Document) -> str | None:
    """The page a result opens; None when that page's app has no such URL (yet)."""
    try:
        if doc.doc_type == "message" and doc.conversation_id:
            return reverse("inbox:conversation", args=[int(doc.conversation_id)]) + f"#m{doc.message_id}"
        if doc.doc_type == "lead_post" and doc.lead_post_id:
            return reverse("leads:lead_detail", args=[int(doc.lead_post_id)])
        if doc.account_id:
            return reverse("leads:person", args=[int(doc.account_id)])
    except NoReverseMatch:
        return None
    return None


def parse_date_bounds(date_from, date_to) -> tuple[datetime | None, datetime | None]:
    """Whole days in the site's time zone, as aware datetimes (the end day is included)."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(date_from, time.min, tzinfo=tz) if date_from else None
    end = datetime.combine(date_to, time.min, tzinfo=tz) + timedelta(days=1) - timedelta(microseconds=1) if date_to else None
    return start, end
