"""The Elasticsearch backend (`ELASTIC_URL` set): spec §6 mapping and §6.2 queries.

The index is created with exactly the §6.1 settings and properties (`dims` from
`EMBEDDINGS_DIMS`), plus `dynamic: false` so our bookkeeping fields
(`content_hash`, `embedded_hash`) stay in `_source` without being mapped, and a
`_meta` recording the embeddings model and dimensions.  Keyword search is the
§6.2 bool query; vector search is a top-level `knn` with the same filters; the two
are fused by `search.fusion` in our code, as for the embedded backend.

Errors are translated to `SearchError`s whose messages never contain the server
URL (it may carry credentials).  Connection failures, timeouts, 429 and 5xx are
transient: indexing jobs retry later.
"""

from __future__ import annotations

from datetime import datetime

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch_dsl import Index, Mapping, Q, Search
from elasticsearch_dsl.field import Boolean, Date, DenseVector, Keyword, Text

from .base import (
    METADATA_FIELDS,
    REMOTE_GONE_STATUSES,
    REMOTE_GONE_VISIBILITIES,
    Document,
    Filters,
    Hit,
    IndexMeta,
    IndexMissing,
    PendingEmbedding,
    SearchBackend,
    SearchError,
    SearchUnavailable,
)

KEYWORD_FIELDS = (
    "doc_type", "provider_id", "identity_id", "account_id", "conversation_id", "message_id",
    "lead_post_id", "source_location", "remote_status", "remote_visibility",
)
_SOURCE_EXCLUDES = ["embedding"]
_SET_EMBEDDING = (
    "if (ctx._source.content_hash == params.content_hash) "
    "{ ctx._source.embedding = params.embedding; ctx._source.embedded_hash = params.content_hash } "
    "else { ctx.op = 'noop' }"
)


def index_body(*, dims: int, embeddings_model: str) -> dict:
    """The index creation body: spec §6.1 with our dims and bookkeeping."""
    mapping = Mapping()
    for name in KEYWORD_FIELDS:
        mapping.field(name, Keyword())
    mapping.field("local_deleted", Boolean())
    mapping.field("created_at", Date())
    mapping.field("text", Text())
    mapping.field("embedding", DenseVector(dims=dims, index=True, similarity="cosine"))
    mapping.meta("dynamic", False)
    mapping.meta("_meta", {"embeddings_model": embeddings_model, "embeddings_dims": dims})
    index = Index("unused")
    index.settings(analysis={"analyzer": {"default": {"type": "standard"}}})
    index.mapping(mapping)
    return index.to_dict()


def filter_clauses(filters: Filters) -> tuple[list[Q], list[Q]]:
    """(filter, must_not) clauses shared by the BM25 query, kNN and recent listings."""
    must: list[Q] = []
    for name in ("provider_id", "identity_id"):
        value = getattr(filters, name)
        if value is not None:
            must.append(Q("term", **{name: str(value)}))
    if filters.doc_types:
        must.append(Q("terms", doc_type=list(filters.doc_types)))
    if filters.source_location is not None:
        must.append(Q("term", source_location=filters.source_location))
    if filters.created_from is not None or filters.created_to is not None:
        bounds = {}
        if filters.created_from is not None:
            bounds["gte"] = filters.created_from.isoformat()
        if filters.created_to is not None:
            bounds["lte"] = filters.created_to.isoformat()
        must.append(Q("range", created_at=bounds))
    if not filters.include_hidden:
        must.append(Q("term", local_deleted=False))
    must_not: list[Q] = []
    if not filters.include_deleted:
        must_not.append(Q("terms", remote_status=list(REMOTE_GONE_STATUSES)))
        must_not.append(Q("terms", remote_visibility=list(REMOTE_GONE_VISIBILITIES)))
    return must, must_not


def _source(doc: Document) -> dict:
    data = doc.metadata()
    data["created_at"] = doc.created_at.isoformat() if doc.created_at else None
    data["text"] = doc.text
    data["content_hash"] = doc.content_hash
    return data


def _document(doc_id: str, source: dict) -> Document:
    created = source.get("created_at")
    return Document(
        doc_id=doc_id,
        doc_type=source.get("doc_type") or doc_id.split(":", 1)[0],
        text=source.get("text") or "",
        content_hash=source.get("content_hash") or "",
        created_at=datetime.fromisoformat(created) if created else None,
        local_deleted=bool(source.get("local_deleted")),
        **{name: source.get(name) for name in METADATA_FIELDS if name not in ("doc_type", "created_at", "local_deleted")},
    )


class ElasticBackend(SearchBackend):
    name = "elastic"

    def __init__(self, url: str, index: str, *, timeout: float = 10.0):
        self.index = index
        # Our own retries come from the job ledger; the client must fail fast.
        self.client = Elasticsearch(url, request_timeout=timeout, max_retries=0, retry_on_timeout=False)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            raise _translate_api(exc) from None
        except TransportError:
            raise SearchUnavailable("The search server can't be reached right now; try again shortly.") from None

    # --- lifecycle ----------------------------------------------------------------------

    def meta(self) -> IndexMeta:
        try:
            mapping = self._call(self.client.indices.get_mapping, index=self.index)
        except IndexMissing:
            return IndexMeta(exists=False)
        body = next(iter(mapping.body.values()), {}) if mapping.body else {}
        meta = (body.get("mappings") or {}).get("_meta") or {}
        count = self._call(self.client.count, index=self.index).body.get("count", 0)
        floor = meta.get("similarity_floor")
        return IndexMeta(
            exists=True,
            embeddings_model=meta.get("embeddings_model", ""),
            embeddings_dims=int(meta.get("embeddings_dims") or 0),
            documents=count,
            similarity_floor=float(floor) if floor is not None else None,
            floor_documents=int(meta.get("floor_documents") or 0),
        )

    def set_similarity_floor(self, floor: float, *, documents: int) -> None:
        # `_meta` is replaced whole by a mapping update: carry the model and dims along.
        current = self.meta()
        self._call(
            self.client.indices.put_mapping,
            index=self.index,
            meta={
                "embeddings_model": current.embeddings_model,
                "embeddings_dims": current.embeddings_dims,
                "similarity_floor": float(floor),
                "floor_documents": documents,
            },
        )

    def sample_embeddings(self, size: int, *, seed: int = 0) -> list[list[float]]:
        query = Q(
            "function_score",
            query=Q("exists", field="embedding"),
            random_score={"seed": seed, "field": "_seq_no"},
            boost_mode="replace",
        )
        search = Search(using=self.client, index=self.index).query(query).source(["embedding"]).extra(size=size)
        response = self._call(search.execute)
        return [h["_source"]["embedding"] for h in response.to_dict()["hits"]["hits"]
                if (h.get("_source") or {}).get("embedding")]

    def create(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        self._call(self.client.options(ignore_status=404).indices.delete, index=self.index)
        body = index_body(dims=embeddings_dims, embeddings_model=embeddings_model)
        self._call(self.client.indices.create, index=self.index, settings=body["settings"], mappings=body["mappings"])

    def ensure(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        body = index_body(dims=embeddings_dims, embeddings_model=embeddings_model)
        try:
            self.client.indices.create(index=self.index, settings=body["settings"], mappings=body["mappings"])
        except ApiError as exc:
            # "Already exists" means another worker made it first, which is fine.
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            if not (isinstance(error, dict) and error.get("type") == "resource_already_exists_exception"):
                raise _translate_api(exc) from None
        except TransportError:
            raise SearchUnavailable("The search server can't be reached right now; try again shortly.") from None

    def finish_rebuild(self, writer: SearchBackend) -> None:
        self._call(self.client.indices.refresh, index=self.index)

    # --- writes -------------------------------------------------------------------------

    def _mget(self, doc_ids: list[str], fields: list[str]) -> dict[str, dict]:
        if not doc_ids:
            return {}
        response = self._call(self.client.mget, index=self.index, ids=doc_ids, source_includes=fields)
        return {d["_id"]: d.get("_source") or {} for d in response.body.get("docs", []) if d.get("found")}

    def _bulk(self, operations: list[dict]) -> list[dict]:
        if not operations:
            return []
        response = self._call(self.client.bulk, operations=operations)
        items = [next(iter(item.values())) for item in response.body.get("items", [])]
        failed = [item for item in items if item.get("error") and item.get("status") != 404]
        if failed:
            statuses = {item.get("status", 500) for item in failed}
            if any(status == 429 or status >= 500 for status in statuses):
                raise SearchUnavailable("The search server is overloaded; indexing will retry.")
            reason = (failed[0].get("error") or {}).get("type", "error")
            raise SearchError(f"The search server refused {len(failed)} document(s) ({reason}).")
        return items

    def upsert(self, documents: list[Document]) -> list[str]:
        existing = self._mget([d.doc_id for d in documents], ["content_hash", *METADATA_FIELDS])
        operations: list[dict] = []
        changed: list[str] = []
        for doc in documents:
            old = existing.get(doc.doc_id)
            source = _source(doc)
            if old is None or old.get("content_hash") != doc.content_hash:
                # A full write: replaces any stale embedding along with the text.
                operations += [{"index": {"_index": self.index, "_id": doc.doc_id}}, source]
                changed.append(doc.doc_id)
            else:
                metadata = {name: source[name] for name in METADATA_FIELDS}
                if any(old.get(name) != value for name, value in metadata.items()):
                    operations += [{"update": {"_index": self.index, "_id": doc.doc_id}}, {"doc": metadata}]
        self._bulk(operations)
        return changed

    def delete(self, doc_ids: list[str]) -> None:
        self._bulk([{"delete": {"_index": self.index, "_id": doc_id}} for doc_id in doc_ids])

    def pending_embeddings(self, doc_ids: list[str] | None = None, *, limit: int = 500) -> list[PendingEmbedding]:
        if doc_ids is not None:
            # mget is real-time: documents written a moment ago are seen before the next refresh.
            sources = self._mget(doc_ids, ["content_hash", "embedded_hash", "text"])
            pending = [
                PendingEmbedding(doc_id, s.get("content_hash", ""), s.get("text") or "")
                for doc_id, s in sources.items()
                if s.get("embedded_hash") != s.get("content_hash")
            ]
            return pending[:limit]
        search = (
            Search(using=self.client, index=self.index)
            .query(Q("bool", must_not=[Q("exists", field="embedding")]))
            .source(["content_hash", "text"])
            .extra(size=limit)
        )
        response = self._call(search.execute)
        return [PendingEmbedding(h.meta.id, h.content_hash, h.text) for h in response]

    def set_embeddings(self, items: list[tuple[PendingEmbedding, list[float]]]) -> int:
        operations: list[dict] = []
        for pending, vector in items:
            operations += [
                {"update": {"_index": self.index, "_id": pending.doc_id}},
                {
                    "script": {
                        "source": _SET_EMBEDDING,
                        "lang": "painless",
                        "params": {"content_hash": pending.content_hash, "embedding": [float(x) for x in vector]},
                    }
                },
            ]
        return sum(1 for item in self._bulk(operations) if item.get("result") == "updated")

    # --- reads --------------------------------------------------------------------------

    def _hits(self, search: Search, source: str) -> list[Hit]:
        response = self._call(search.execute)
        hits = []
        for h in response.to_dict()["hits"]["hits"]:
            hits.append(Hit(_document(h["_id"], h.get("_source") or {}), float(h.get("_score") or 0.0), [source] if source else []))
        return hits

    def _search(self) -> Search:
        return Search(using=self.client, index=self.index).source(excludes=_SOURCE_EXCLUDES)

    def keyword(self, query_terms: list[str], filters: Filters, size: int) -> list[Hit]:
        if not query_terms:
            return []
        must, must_not = filter_clauses(filters)
        # The match text is our cleaned terms, not the raw input: bounded length, no surprises.
        query = Q("bool", must=[Q("match", text=" ".join(query_terms))], filter=must, must_not=must_not)
        return self._hits(self._search().query(query).extra(size=size), "bm25")

    def vector(self, embedding: list[float], filters: Filters, size: int, min_similarity: float = 0.0) -> list[Hit]:
        must, must_not = filter_clauses(filters)
        # knn's `similarity` is the raw cosine (not the (1 + cos) / 2 score), like the embedded backend's.
        threshold = {"similarity": min_similarity} if min_similarity > 0 else {}
        search = self._search().knn(
            field="embedding",
            k=size,
            num_candidates=max(100, 4 * size),
            query_vector=[float(x) for x in embedding],
            filter=Q("bool", filter=must, must_not=must_not),
            **threshold,
        )
        return self._hits(search.extra(size=size), "vector")

    def recent(self, filters: Filters, size: int) -> list[Hit]:
        must, must_not = filter_clauses(filters)
        search = self._search().query(Q("bool", filter=must, must_not=must_not)).sort({"created_at": {"order": "desc"}})
        return self._hits(search.extra(size=size), "")

    def get(self, doc_ids: list[str]) -> dict[str, Document]:
        sources = self._mget(doc_ids, ["content_hash", "text", *METADATA_FIELDS])
        return {doc_id: _document(doc_id, source) for doc_id, source in sources.items()}


def _translate_api(exc: ApiError) -> SearchError:
    status = getattr(exc.meta, "status", 0) or 0
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    kind = error.get("type", "")
    if status == 404 and kind == "index_not_found_exception":
        return IndexMissing()
    if status == 429 or status >= 500:
        return SearchUnavailable("The search server is busy or failing; try again shortly.")
    return SearchError(f"The search server refused the request ({kind or status}).")
