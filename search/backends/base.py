"""The backend interface: what a search index must do, whatever stores it.

A backend stores `Document`s (the spec §6 fields, ids as strings), answers
keyword (BM25) and vector (kNN) queries under the same `Filters`, and keeps
per-document content hashes so unchanged text is neither rewritten nor
re-embedded.  Ranking fusion, snippets and grouping happen above it, in
`search.services`, identically for every backend.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

DOC_TYPES = ("message", "lead_post", "profile_item", "profile_snapshot")
REMOTE_GONE_STATUSES = ("deleted", "suspended")
REMOTE_GONE_VISIBILITIES = ("deleted_by_author", "removed")


@dataclass
class Document:
    """One searchable item.  `doc_id` is "<doc_type>:<pk>"; all ids are strings."""

    doc_id: str
    doc_type: str
    text: str
    provider_id: str | None = None
    identity_id: str | None = None
    account_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    lead_post_id: str | None = None
    source_location: str | None = None
    remote_status: str | None = None
    remote_visibility: str | None = None
    local_deleted: bool = False
    created_at: datetime | None = None
    content_hash: str = ""

    @property
    def pk(self) -> int:
        return int(self.doc_id.split(":", 1)[1])

    def metadata(self) -> dict:
        """Every field but the text and its hash: what a metadata-only update writes."""
        data = asdict(self)
        for name in ("doc_id", "text", "content_hash"):
            data.pop(name)
        return data


METADATA_FIELDS = tuple(f.name for f in fields(Document) if f.name not in ("doc_id", "text", "content_hash"))


@dataclass(frozen=True)
class Filters:
    """What a search may return.  Defaults hide locally hidden and remotely deleted items."""

    identity_id: str | None = None
    provider_id: str | None = None
    doc_types: tuple[str, ...] = ()
    source_location: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    include_hidden: bool = False
    include_deleted: bool = False


@dataclass
class Hit:
    document: Document
    score: float
    # Which rankings found it ("bm25", "vector"), for display and tests.
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IndexMeta:
    exists: bool
    embeddings_model: str = ""
    embeddings_dims: int = 0
    documents: int = 0
    # The cosine below which a vector hit is taken for chance, derived from the index's own
    # vectors (see `search.services.update_similarity_floor`); None until computed.
    similarity_floor: float | None = None
    floor_documents: int = 0  # how many documents the index held when it was computed


@dataclass(frozen=True)
class PendingEmbedding:
    doc_id: str
    content_hash: str
    text: str


class SearchError(Exception):
    """A search backend failure with a plain-words `user_message` (no URLs, no secrets)."""

    transient = False
    default_message = "Search failed."

    def __init__(self, user_message: str | None = None):
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


class SearchUnavailable(SearchError):
    """The index can't be reached right now (server down, file locked): retry later."""

    transient = True
    default_message = "The search index can't be reached right now; try again shortly."


class IndexMissing(SearchError):
    default_message = "The search index has not been built yet: run `manage.py search_reindex`."


class SearchBackend(abc.ABC):
    name: str

    @abc.abstractmethod
    def meta(self) -> IndexMeta: ...

    @abc.abstractmethod
    def create(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        """Create an empty index (dropping any previous one) recording the embeddings model."""

    @abc.abstractmethod
    def ensure(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        """Create the index when there is none; an existing one (and its documents) is left alone.

        Safe when several workers call it at once: exactly one index results.
        """

    def begin_rebuild(self, *, embeddings_model: str, embeddings_dims: int) -> SearchBackend:
        """Start rebuilding; returns the backend to write the rebuilt index through.

        The default rebuilds in place (searches see a partial index meanwhile);
        backends that can build aside and switch atomically override this.
        """
        self.create(embeddings_model=embeddings_model, embeddings_dims=embeddings_dims)
        return self

    def finish_rebuild(self, writer: SearchBackend) -> None:
        """Make the rebuilt index the one searches read."""

    def abort_rebuild(self, writer: SearchBackend) -> None:
        """Give up a rebuild; the index searches read stays as it was (when built aside)."""

    @abc.abstractmethod
    def upsert(self, documents: list[Document]) -> list[str]:
        """Write documents; returns the doc_ids that are new or whose text changed.

        Unchanged documents are not written; a text change drops the stale embedding.
        """

    @abc.abstractmethod
    def delete(self, doc_ids: list[str]) -> None: ...

    @abc.abstractmethod
    def pending_embeddings(self, doc_ids: list[str] | None = None, *, limit: int = 500) -> list[PendingEmbedding]:
        """Documents (of `doc_ids`, or any) whose embedding is missing or older than their text."""

    @abc.abstractmethod
    def set_embeddings(self, items: list[tuple[PendingEmbedding, list[float]]]) -> int:
        """Store vectors, skipping any whose document text changed since; returns how many were stored."""

    @abc.abstractmethod
    def keyword(self, query_terms: list[str], filters: Filters, size: int) -> list[Hit]:
        """BM25 ranking of documents matching any of the terms."""

    @abc.abstractmethod
    def vector(self, embedding: list[float], filters: Filters, size: int, min_similarity: float = 0.0) -> list[Hit]:
        """Cosine-similarity ranking of documents that have an embedding.

        Documents less similar than `min_similarity` (a raw cosine, -1..1) are left out.
        """

    @abc.abstractmethod
    def sample_embeddings(self, size: int, *, seed: int = 0) -> list[list[float]]:
        """Up to `size` stored vectors of documents picked at random (repeatable for a seed)."""

    @abc.abstractmethod
    def set_similarity_floor(self, floor: float, *, documents: int) -> None:
        """Record the similarity floor with the index's embeddings model metadata."""

    @abc.abstractmethod
    def recent(self, filters: Filters, size: int) -> list[Hit]:
        """Newest documents first (what an empty query shows)."""

    @abc.abstractmethod
    def get(self, doc_ids: list[str]) -> dict[str, Document]: ...
