"""The embedded backend (default): one SQLite file with FTS5 for BM25 and NumPy for vectors.

Layout of the file at `SEARCH_INDEX_PATH`:

- `meta(key, value)`: the active generation, a generation being rebuilt, a write
  sequence counter, and per generation the embeddings model and dimensions;
- per generation N, `docs_N` (the §6 fields, the text, its hash, the float32
  embedding) and `fts_N`, a contentless FTS5 table over the text
  (`porter unicode61 remove_diacritics 2`; CJK is pre-split by `search.text.segment`).

A rebuild fills generation N+1 while searches keep reading N, then flips `active`
in one write: searches never see a half-built index.  Writes made during a rebuild
go to both generations.

Vector search keeps the embeddings of the active generation in memory (one float32
matrix per process, refreshed incrementally through the `seq` column) and filters
with NumPy masks, so filters and cosine ranking are one vectorised pass.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..text import fts_match, segment
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

_COLUMNS = ("doc_id", "doc_type") + tuple(f for f in METADATA_FIELDS if f != "doc_type") + ("text", "content_hash")
_SELECT = "rid, " + ", ".join(_COLUMNS)
_CHUNK = 500
_local = threading.local()


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _row_to_document(row: sqlite3.Row) -> Document:
    data = {name: row[name] for name in _COLUMNS}
    data["local_deleted"] = bool(data["local_deleted"])
    created = data["created_at"]
    data["created_at"] = datetime.fromtimestamp(created, UTC) if created is not None else None
    return Document(**data)


def _document_values(doc: Document) -> tuple:
    values = []
    for name in _COLUMNS:
        value = getattr(doc, name)
        if name == "created_at":
            value = _ts(value)
        elif name == "local_deleted":
            value = int(bool(value))
        values.append(value)
    return tuple(values)


class EmbeddedBackend(SearchBackend):
    name = "embedded"

    def __init__(self, path: str | Path, *, common_df: int = 10_000, bm25_budget: int = 15_000,
                 generation: int | None = None):
        self.path = Path(path)
        self.common_df = common_df
        self.bm25_budget = bm25_budget
        # Set on the writer returned by `begin_rebuild`: reads and writes go to that generation only.
        self.generation = generation

    # --- connection and generations -------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conns = getattr(_local, "conns", None)
        if conns is None:
            conns = _local.conns = {}
        conn = conns.get(self.path)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            except (OSError, sqlite3.Error) as exc:
                raise _translate(exc) from None
            conns[self.path] = conn
        return conn

    def _meta_values(self, conn) -> dict[str, str]:
        return {row["key"]: row["value"] for row in conn.execute("SELECT key, value FROM meta")}

    def _active(self, conn) -> int | None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'active'").fetchone()
        return int(row["value"]) if row else None

    def _write_generations(self, conn) -> list[int]:
        if self.generation is not None:
            return [self.generation]
        values = self._meta_values(conn)
        gens = [int(values[key]) for key in ("active", "building") if values.get(key)]
        if not gens:
            raise IndexMissing()
        return gens

    @contextmanager
    def _transaction(self):
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc) from None

    def _read(self):
        conn = self._conn()
        gen = self.generation if self.generation is not None else self._active(conn)
        if gen is None:
            raise IndexMissing()
        return conn, gen

    def _next_seq(self, conn) -> int:
        row = conn.execute(
            "INSERT INTO meta (key, value) VALUES ('seq', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value"
        ).fetchone()
        return int(row[0])

    @staticmethod
    def _create_tables(conn, gen: int) -> None:
        conn.execute(
            f"""CREATE TABLE docs_{gen} (
                rid INTEGER PRIMARY KEY,
                doc_id TEXT NOT NULL UNIQUE,
                doc_type TEXT NOT NULL,
                provider_id TEXT, identity_id TEXT, account_id TEXT, conversation_id TEXT,
                message_id TEXT, lead_post_id TEXT, source_location TEXT,
                remote_status TEXT, remote_visibility TEXT,
                local_deleted INTEGER NOT NULL DEFAULT 0,
                created_at REAL,
                text TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                seq INTEGER NOT NULL,
                embedding BLOB
            )"""
        )
        # Deleted rows, so the in-memory vector cache can drop them incrementally.
        conn.execute(f"CREATE TABLE gone_{gen} (rid INTEGER PRIMARY KEY, seq INTEGER NOT NULL)")
        conn.execute(f"CREATE INDEX docs_{gen}_created ON docs_{gen} (created_at)")
        conn.execute(f"CREATE INDEX docs_{gen}_seq ON docs_{gen} (seq)")
        conn.execute(
            f"CREATE VIRTUAL TABLE fts_{gen} USING fts5(text, content='', "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )

    @staticmethod
    def _drop_tables(conn, gen: int) -> None:
        conn.execute(f"DROP TABLE IF EXISTS fts_{gen}")
        conn.execute(f"DROP TABLE IF EXISTS gone_{gen}")
        conn.execute(f"DROP TABLE IF EXISTS docs_{gen}")

    # --- index lifecycle ----------------------------------------------------------------

    def meta(self) -> IndexMeta:
        try:
            conn = self._conn()
            values = self._meta_values(conn)
            if self.generation is None and not values.get("active"):
                return IndexMeta(exists=False)
            gen = self.generation if self.generation is not None else int(values["active"])
            count = conn.execute(f"SELECT count(*) FROM docs_{gen}").fetchone()[0]
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        floor = values.get(f"g{gen}.similarity_floor")
        return IndexMeta(
            exists=True,
            embeddings_model=values.get(f"g{gen}.embeddings_model", ""),
            embeddings_dims=int(values.get(f"g{gen}.embeddings_dims") or 0),
            documents=count,
            similarity_floor=float(floor) if floor else None,
            floor_documents=int(values.get(f"g{gen}.floor_documents") or 0),
        )

    def set_similarity_floor(self, floor: float, *, documents: int) -> None:
        with self._transaction() as conn:
            gen = self.generation if self.generation is not None else self._active(conn)
            if gen is None:
                raise IndexMissing()
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(f"g{gen}.similarity_floor", repr(float(floor))), (f"g{gen}.floor_documents", str(documents))],
            )

    def sample_embeddings(self, size: int, *, seed: int = 0) -> list[list[float]]:
        conn, gen = self._read()
        try:
            rids = [r[0] for r in conn.execute(f"SELECT rid FROM docs_{gen} WHERE embedding IS NOT NULL")]
            if not rids:
                return []
            picked = np.random.default_rng(seed).choice(len(rids), size=min(size, len(rids)), replace=False)
            chosen = [rids[i] for i in sorted(picked)]
            blobs = []
            for start in range(0, len(chosen), _CHUNK):
                chunk = chosen[start : start + _CHUNK]
                blobs += [r[0] for r in conn.execute(
                    f"SELECT embedding FROM docs_{gen} WHERE rid IN ({','.join('?' * len(chunk))})", chunk
                )]
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return [np.frombuffer(b, dtype=np.float32).tolist() for b in blobs if b]

    def create(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        self.finish_rebuild(self.begin_rebuild(embeddings_model=embeddings_model, embeddings_dims=embeddings_dims))

    def _new_generation(self, conn, gen: int, role: str, embeddings_model: str, embeddings_dims: int) -> None:
        """Tables of generation `gen`, recorded as the `active` or `building` one with its model."""
        self._create_tables(conn, gen)
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                (role, str(gen)),
                ("last_gen", str(gen)),
                (f"g{gen}.embeddings_model", embeddings_model),
                (f"g{gen}.embeddings_dims", str(embeddings_dims)),
            ],
        )

    def ensure(self, *, embeddings_model: str, embeddings_dims: int) -> None:
        # One IMMEDIATE transaction: the first worker creates, the others then see it active.
        # (Not begin/finish_rebuild: a second worker would take the first one's
        # half-made generation for an interrupted rebuild and drop it.)
        with self._transaction() as conn:
            values = self._meta_values(conn)
            if values.get("active"):
                return
            gen = max(int(values.get(k) or 0) for k in ("building", "last_gen")) + 1
            self._new_generation(conn, gen, "active", embeddings_model, embeddings_dims)

    def begin_rebuild(self, *, embeddings_model: str, embeddings_dims: int) -> EmbeddedBackend:
        """Start an empty generation; returns a backend that writes only there.

        Until `finish_rebuild`, searches read the active generation and ordinary
        writes go to both, so nothing indexed during the rebuild is lost.
        """
        with self._transaction() as conn:
            values = self._meta_values(conn)
            if values.get("building"):  # an interrupted rebuild: start it over
                self._drop_tables(conn, int(values["building"]))
            gen = max([int(values.get(k) or 0) for k in ("active", "building", "last_gen")]) + 1
            self._new_generation(conn, gen, "building", embeddings_model, embeddings_dims)
        return EmbeddedBackend(self.path, common_df=self.common_df, bm25_budget=self.bm25_budget, generation=gen)

    def finish_rebuild(self, writer: EmbeddedBackend) -> None:
        gen = writer.generation
        with self._transaction() as conn:
            old = self._active(conn)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('active', ?)", (str(gen),))
            conn.execute("DELETE FROM meta WHERE key = 'building'")
            if old is not None and old != gen:
                self._drop_tables(conn, old)
                conn.execute("DELETE FROM meta WHERE key LIKE ?", (f"g{old}.%",))
        _vector_caches.pop((self.path, gen), None)

    def abort_rebuild(self, writer: EmbeddedBackend) -> None:
        with self._transaction() as conn:
            if self._meta_values(conn).get("building") == str(writer.generation):
                self._drop_tables(conn, writer.generation)
                conn.execute("DELETE FROM meta WHERE key = 'building' OR key LIKE ?", (f"g{writer.generation}.%",))

    # --- writes -------------------------------------------------------------------------

    def upsert(self, documents: list[Document]) -> list[str]:
        if not documents:
            return []
        changed: list[str] = []
        with self._transaction() as conn:
            seq = self._next_seq(conn)
            for gen_no, gen in enumerate(self._write_generations(conn)):
                gen_changed = self._upsert_into(conn, gen, documents, seq)
                if gen_no == 0:
                    changed = gen_changed
        return changed

    def _upsert_into(self, conn, gen: int, documents: list[Document], seq: int) -> list[str]:
        changed: list[str] = []
        # Row ids are never reused (the vector cache keys on them): start above deleted ones too.
        next_rid = 1 + conn.execute(
            f"SELECT max(coalesce((SELECT max(rid) FROM docs_{gen}), 0), coalesce((SELECT max(rid) FROM gone_{gen}), 0))"
        ).fetchone()[0]
        for start in range(0, len(documents), _CHUNK):
            chunk = documents[start : start + _CHUNK]
            existing = {
                row["doc_id"]: row
                for row in conn.execute(
                    f"SELECT {_SELECT} FROM docs_{gen} WHERE doc_id IN ({','.join('?' * len(chunk))})",
                    [d.doc_id for d in chunk],
                )
            }
            inserts, fts_inserts, fts_deletes, rewrites, meta_updates = [], [], [], [], []
            for doc in chunk:
                values = _document_values(doc)
                old = existing.get(doc.doc_id)
                if old is None:
                    inserts.append((next_rid, *values, seq))
                    fts_inserts.append((next_rid, segment(doc.text)))
                    next_rid += 1
                    changed.append(doc.doc_id)
                elif old["content_hash"] != doc.content_hash:
                    fts_deletes.append((old["rid"], segment(old["text"])))
                    fts_inserts.append((old["rid"], segment(doc.text)))
                    rewrites.append((*values, seq, old["rid"]))
                    changed.append(doc.doc_id)
                elif tuple(old[name] for name in _COLUMNS) != values:
                    meta_updates.append((*values, seq, old["rid"]))
            assignments = ", ".join(f"{name} = ?" for name in _COLUMNS) + ", seq = ?"
            if inserts:
                conn.executemany(
                    f"INSERT INTO docs_{gen} (rid, {', '.join(_COLUMNS)}, seq) "
                    f"VALUES ({','.join('?' * (len(_COLUMNS) + 2))})",
                    inserts,
                )
            if fts_deletes:
                conn.executemany(f"INSERT INTO fts_{gen} (fts_{gen}, rowid, text) VALUES ('delete', ?, ?)", fts_deletes)
            if fts_inserts:
                conn.executemany(f"INSERT INTO fts_{gen} (rowid, text) VALUES (?, ?)", fts_inserts)
            if rewrites:
                # New text: the old vector no longer describes it.
                conn.executemany(f"UPDATE docs_{gen} SET {assignments}, embedding = NULL WHERE rid = ?", rewrites)
            if meta_updates:
                conn.executemany(f"UPDATE docs_{gen} SET {assignments} WHERE rid = ?", meta_updates)
        return changed

    def delete(self, doc_ids: list[str]) -> None:
        if not doc_ids:
            return
        with self._transaction() as conn:
            seq = self._next_seq(conn)
            for gen in self._write_generations(conn):
                for start in range(0, len(doc_ids), _CHUNK):
                    chunk = doc_ids[start : start + _CHUNK]
                    rows = conn.execute(
                        f"SELECT rid, text FROM docs_{gen} WHERE doc_id IN ({','.join('?' * len(chunk))})", chunk
                    ).fetchall()
                    conn.executemany(
                        f"INSERT INTO fts_{gen} (fts_{gen}, rowid, text) VALUES ('delete', ?, ?)",
                        [(r["rid"], segment(r["text"])) for r in rows],
                    )
                    conn.executemany(f"DELETE FROM docs_{gen} WHERE rid = ?", [(r["rid"],) for r in rows])
                    conn.executemany(
                        f"INSERT OR REPLACE INTO gone_{gen} (rid, seq) VALUES (?, ?)", [(r["rid"], seq) for r in rows]
                    )

    def pending_embeddings(self, doc_ids: list[str] | None = None, *, limit: int = 500) -> list[PendingEmbedding]:
        conn, gen = self._read()
        try:
            if doc_ids is None:
                rows = conn.execute(
                    f"SELECT doc_id, content_hash, text FROM docs_{gen} WHERE embedding IS NULL ORDER BY rid LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = []
                for start in range(0, len(doc_ids), _CHUNK):
                    chunk = doc_ids[start : start + _CHUNK]
                    rows += conn.execute(
                        f"SELECT doc_id, content_hash, text FROM docs_{gen} "
                        f"WHERE embedding IS NULL AND doc_id IN ({','.join('?' * len(chunk))}) ORDER BY rid",
                        chunk,
                    ).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return [PendingEmbedding(r["doc_id"], r["content_hash"], r["text"]) for r in rows[:limit]]

    def set_embeddings(self, items: list[tuple[PendingEmbedding, list[float]]]) -> int:
        if not items:
            return 0
        stored = 0
        with self._transaction() as conn:
            seq = self._next_seq(conn)
            for gen in self._write_generations(conn):
                before = conn.total_changes
                conn.executemany(
                    f"UPDATE docs_{gen} SET embedding = ?, seq = ? WHERE doc_id = ? AND content_hash = ?",
                    [
                        (np.asarray(vector, dtype=np.float32).tobytes(), seq, pending.doc_id, pending.content_hash)
                        for pending, vector in items
                    ],
                )
                stored = max(stored, conn.total_changes - before)
        return stored

    # --- reads --------------------------------------------------------------------------

    def get(self, doc_ids: list[str]) -> dict[str, Document]:
        conn, gen = self._read()
        found: dict[str, Document] = {}
        try:
            for start in range(0, len(doc_ids), _CHUNK):
                chunk = doc_ids[start : start + _CHUNK]
                for row in conn.execute(
                    f"SELECT {_SELECT} FROM docs_{gen} WHERE doc_id IN ({','.join('?' * len(chunk))})", chunk
                ):
                    found[row["doc_id"]] = _row_to_document(row)
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return found

    def keyword(self, query_terms: list[str], filters: Filters, size: int) -> list[Hit]:
        """BM25 over the query's most selective terms; newest-first when every term is common.

        FTS5 computes bm25() for every matching row (~2 µs each), so a term found in
        most documents ("the") would cost hundreds of milliseconds at 100k documents.
        Each term's document frequency is probed (counting stops at `common_df`);
        the rarest terms are ranked by BM25 while their matches fit `bm25_budget`.
        The terms left out are the frequent ones, which carry almost no BM25 weight
        (tiny IDF).  A query made only of very common terms lists the newest
        documents containing all of them (any of them if none has all): still a
        useful answer, at a bounded cost.
        """
        if not query_terms:
            return []
        conn, gen = self._read()
        where, params = _filter_sql(filters)
        try:
            counts = sorted((self._document_frequency(conn, gen, t), i, t) for i, t in enumerate(query_terms))
            selective, budget = [], self.bm25_budget
            for df, _, term in counts:
                if df > self.common_df or (selective and df > budget):
                    break
                selective.append(term)
                budget -= df
            if selective:
                sql = (
                    f"SELECT {', '.join('d.' + c for c in ('rid',) + _COLUMNS)}, bm25(fts_{gen}) AS score "
                    f"FROM fts_{gen} JOIN docs_{gen} AS d ON d.rid = fts_{gen}.rowid "
                    f"WHERE fts_{gen} MATCH ? {where} ORDER BY score LIMIT ?"
                )
                rows = conn.execute(sql, [fts_match(selective), *params, size]).fetchall()
                # bm25() is lower-is-better; flip it so every backend reports higher-is-better.
                return [Hit(_row_to_document(r), -r["score"], ["bm25"]) for r in rows]
            rows = []
            for expression in (fts_match(query_terms).replace('" OR "', '" AND "'), fts_match(query_terms)):
                # `+d.rid` keeps SQLite walking the created_at index (newest first, stopping at
                # `size`) and testing membership, instead of sorting every match.
                sql = (
                    f"SELECT {_SELECT} FROM docs_{gen} AS d WHERE +d.rid IN "
                    f"(SELECT rowid FROM fts_{gen} WHERE fts_{gen} MATCH ?) {where} "
                    "ORDER BY d.created_at DESC LIMIT ?"
                )
                rows = conn.execute(sql, [expression, *params, size]).fetchall()
                if rows or len(query_terms) == 1:
                    break
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        # Newest first: scores only need to keep that order through fusion.
        return [Hit(_row_to_document(r), 1.0 / (rank + 1), ["bm25"]) for rank, r in enumerate(rows)]

    def _document_frequency(self, conn, gen: int, term: str) -> int:
        # Counting stops past the threshold, so a probe costs at most `common_df` index steps.
        sql = f"SELECT count(*) FROM (SELECT rowid FROM fts_{gen} WHERE fts_{gen} MATCH ? LIMIT ?)"
        return conn.execute(sql, (fts_match([term]), self.common_df + 1)).fetchone()[0]

    def recent(self, filters: Filters, size: int) -> list[Hit]:
        conn, gen = self._read()
        where, params = _filter_sql(filters)
        sql = f"SELECT {_SELECT} FROM docs_{gen} AS d WHERE 1 = 1 {where} ORDER BY created_at DESC, rid DESC LIMIT ?"
        try:
            rows = conn.execute(sql, [*params, size]).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return [Hit(_row_to_document(r), 0.0, []) for r in rows]

    def vector(self, embedding: list[float], filters: Filters, size: int, min_similarity: float = 0.0) -> list[Hit]:
        conn, gen = self._read()
        try:
            dims = int(self._meta_values(conn).get(f"g{gen}.embeddings_dims") or 0)
            if dims != len(embedding):
                raise SearchError(
                    f"The query embedding has {len(embedding)} dimensions but the index holds {dims}: "
                    "run `manage.py search_reindex`."
                )
            cache = _vector_caches.get((self.path, gen))
            if cache is None or cache.dims != dims:
                cache = _vector_caches[(self.path, gen)] = _VectorCache(dims)
            cache.refresh(conn, gen)
            ranked = [(rid, score) for rid, score in cache.search(np.asarray(embedding, dtype=np.float32), filters, size)
                      if score >= min_similarity]
            if not ranked:
                return []
            rids = [rid for rid, _ in ranked]
            rows = {
                r["rid"]: r
                for r in conn.execute(
                    f"SELECT {_SELECT} FROM docs_{gen} WHERE rid IN ({','.join('?' * len(rids))})", rids
                )
            }
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return [Hit(_row_to_document(rows[rid]), score, ["vector"]) for rid, score in ranked if rid in rows]


def _filter_sql(filters: Filters) -> tuple[str, list]:
    clauses, params = [], []
    for column in ("identity_id", "provider_id", "source_location"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"d.{column} = ?")
            params.append(str(value))
    if filters.doc_types:
        clauses.append(f"d.doc_type IN ({','.join('?' * len(filters.doc_types))})")
        params += list(filters.doc_types)
    if filters.created_from is not None:
        clauses.append("d.created_at >= ?")
        params.append(_ts(filters.created_from))
    if filters.created_to is not None:
        clauses.append("d.created_at <= ?")
        params.append(_ts(filters.created_to))
    if not filters.include_hidden:
        clauses.append("d.local_deleted = 0")
    if not filters.include_deleted:
        clauses.append(f"coalesce(d.remote_status, '') NOT IN ({','.join('?' * len(REMOTE_GONE_STATUSES))})")
        params += list(REMOTE_GONE_STATUSES)
        clauses.append(f"coalesce(d.remote_visibility, '') NOT IN ({','.join('?' * len(REMOTE_GONE_VISIBILITIES))})")
        params += list(REMOTE_GONE_VISIBILITIES)
    return "".join(f" AND {c}" for c in clauses), params


def _translate(exc: Exception) -> SearchError:
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return SearchUnavailable("The search index is busy (another process is writing); try again shortly.")
    if isinstance(exc, OSError):
        return SearchUnavailable("The search index file can't be opened; check DATA_DIR permissions.")
    if "no such table" in message:
        return IndexMissing()
    return SearchError("The search index file is damaged or unreadable: run `manage.py search_reindex`.")


class _VectorCache:
    """The active generation's embeddings and filter columns as NumPy arrays."""

    _CODED = ("doc_type", "provider_id", "identity_id", "source_location")

    def __init__(self, dims: int):
        self.dims = dims
        self.seq = 0
        self.n = 0
        self.lock = threading.Lock()
        self.pos: dict[int, int] = {}
        self.codes: dict[str, int] = {}
        self._alloc(1024)

    def _alloc(self, capacity: int) -> None:
        def grow(old, shape, dtype, fill=0):
            new = np.full(shape, fill, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            return new

        get = lambda name: getattr(self, name, None)  # noqa: E731
        self.capacity = capacity
        self.vecs = grow(get("vecs"), (capacity, self.dims), np.float32)
        self.has_vec = grow(get("has_vec"), capacity, bool, False)
        self.alive = grow(get("alive"), capacity, bool, False)
        self.rids = grow(get("rids"), capacity, np.int64)
        for name in self._CODED:
            setattr(self, name, grow(get(name), capacity, np.int32))
        self.local_deleted = grow(get("local_deleted"), capacity, bool, False)
        self.remote_gone = grow(get("remote_gone"), capacity, bool, False)
        self.created_at = grow(get("created_at"), capacity, np.float64, np.nan)

    def _code(self, value) -> int:
        if value is None:
            return 0
        return self.codes.setdefault(str(value), len(self.codes) + 1)

    def refresh(self, conn, gen: int) -> None:
        with self.lock:
            top = conn.execute(f"SELECT coalesce(max(seq), 0) FROM docs_{gen}").fetchone()[0]
            deleted = conn.execute(f"SELECT rid, seq FROM gone_{gen} WHERE seq > ?", (self.seq,)).fetchall()
            if top <= self.seq and not deleted:
                return
            rows = conn.execute(
                f"SELECT rid, doc_type, provider_id, identity_id, source_location, local_deleted, remote_status, "
                f"remote_visibility, created_at, embedding FROM docs_{gen} WHERE seq > ?",
                (self.seq,),
            ).fetchall()
            if rows:
                self._set_rows(rows)
            for rid, _ in deleted:
                pos = self.pos.get(rid)
                if pos is not None:
                    self.alive[pos] = False
            self.seq = max([top] + [seq for _, seq in deleted])

    def _set_rows(self, rows) -> None:
        """Write changed rows into the arrays in bulk (the first load is the whole index)."""
        positions = []
        for row in rows:
            pos = self.pos.get(row["rid"])
            if pos is None:
                pos = self.pos[row["rid"]] = self.n
                self.n += 1
            positions.append(pos)
        if self.n > self.capacity:
            self._alloc(max(self.n, self.capacity * 2))
        at = np.asarray(positions, dtype=np.int64)
        self.rids[at] = [row["rid"] for row in rows]
        self.alive[at] = True
        for name in self._CODED:
            getattr(self, name)[at] = [self._code(row[name]) for row in rows]
        self.local_deleted[at] = [bool(row["local_deleted"]) for row in rows]
        self.remote_gone[at] = [
            row["remote_status"] in REMOTE_GONE_STATUSES or row["remote_visibility"] in REMOTE_GONE_VISIBILITIES
            for row in rows
        ]
        self.created_at[at] = [row["created_at"] if row["created_at"] is not None else np.nan for row in rows]
        width = self.dims * 4
        has = np.array([row["embedding"] is not None and len(row["embedding"]) == width for row in rows], dtype=bool)
        vecs = np.zeros((len(rows), self.dims), dtype=np.float32)
        if has.any():
            blob = b"".join(row["embedding"] for row, ok in zip(rows, has) if ok)
            raw = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.dims)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            vecs[has] = np.divide(raw, norms, out=np.zeros_like(raw), where=norms > 0)
            has[has] = norms[:, 0] > 0
        self.vecs[at] = vecs
        self.has_vec[at] = has

    def _mask(self, filters: Filters) -> np.ndarray:
        n = self.n
        mask = self.alive[:n] & self.has_vec[:n]
        for name in ("identity_id", "provider_id", "source_location"):
            value = getattr(filters, name)
            if value is not None:
                code = self.codes.get(str(value))
                if code is None:
                    return np.zeros(n, dtype=bool)
                mask &= getattr(self, name)[:n] == code
        if filters.doc_types:
            codes = [self.codes[t] for t in filters.doc_types if t in self.codes]
            mask &= np.isin(self.doc_type[:n], codes)
        # NaN dates compare False, so undated documents drop out of a date range, as in SQL.
        if filters.created_from is not None:
            mask &= self.created_at[:n] >= filters.created_from.timestamp()
        if filters.created_to is not None:
            mask &= self.created_at[:n] <= filters.created_to.timestamp()
        if not filters.include_hidden:
            mask &= ~self.local_deleted[:n]
        if not filters.include_deleted:
            mask &= ~self.remote_gone[:n]
        return mask

    def search(self, query: np.ndarray, filters: Filters, size: int) -> list[tuple[int, float]]:
        with self.lock:
            norm = float(np.linalg.norm(query))
            if self.n == 0 or norm == 0:
                return []
            mask = self._mask(filters)
            candidates = np.flatnonzero(mask)
            if candidates.size == 0:
                return []
            # Dense filters: one matrix-vector product over everything; sparse: only the survivors.
            if candidates.size > self.n // 4:
                scores = self.vecs[: self.n] @ (query / norm)
                scores = scores[candidates]
            else:
                scores = self.vecs[candidates] @ (query / norm)
            k = min(size, candidates.size)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(int(self.rids[candidates[i]]), float(scores[i])) for i in top]


_vector_caches: dict[tuple[Path, int], _VectorCache] = {}
