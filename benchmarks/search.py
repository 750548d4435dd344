"""Benchmark the embedded search backend: index build rate and query latency.

    .venv/bin/python benchmarks/search.py [--docs 100000] [--dims 1024] [--queries 200]

Builds a fresh index in a temporary folder from synthetic documents of mixed
types and realistic lengths (Zipf-distributed vocabulary, with embeddings), then
prints docs/s for the build and p50/p95 latency for BM25, vector and hybrid
(BM25 + kNN fused by RRF) queries under the default filters, plus one with an
identity filter.  Query embeddings are given, so the embeddings server's own
latency is not part of the figures.  Targets: BM25 p95 < 50 ms, hybrid p95 < 150 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.backends.base import Document, Filters  # noqa: E402
from search.backends.embedded import EmbeddedBackend  # noqa: E402
from search.fusion import fusion_weights, reciprocal_rank_fusion, similarity_floor  # noqa: E402
from search.text import content_hash, keyword_terms, terms  # noqa: E402

TYPES = [  # (doc_type, share, min words, max words)
    ("message", 0.55, 4, 90),
    ("lead_post", 0.15, 40, 400),
    ("profile_item", 0.25, 8, 160),
    ("profile_snapshot", 0.05, 60, 220),
]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ven", "dor", "al", "is", "um", "er", "zo", "qui"]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words = set(["the", "a", "and", "to", "of", "i", "you", "for", "in", "is", "it", "looking", "hiking", "buddy"])
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    ordered = sorted(words)  # sets iterate in a per-process order: sort, then shuffle reproducibly
    rng.shuffle(ordered)
    return ordered


def documents(n: int, dims: int, seed: int = 7):
    rng = random.Random(seed)
    vocab = vocabulary(20_000, rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf
    cum = np.cumsum(weights)
    cum /= cum[-1]
    nprng = np.random.default_rng(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    shares = np.cumsum([t[1] for t in TYPES])
    for i in range(1, n + 1):
        t = TYPES[int(np.searchsorted(shares, rng.random()))]
        length = rng.randint(t[2], t[3])
        idx = np.searchsorted(cum, nprng.random(length))
        text = " ".join(vocab[j] for j in idx)
        doc = Document(
            doc_id=f"{t[0]}:{i}",
            doc_type=t[0],
            text=text,
            content_hash=content_hash(text),
            provider_id="prov",
            identity_id=str(rng.randint(1, 4)) if t[0] == "message" else None,
            account_id=str(rng.randint(1, 5000)),
            conversation_id=str(rng.randint(1, 8000)) if t[0] == "message" else None,
            message_id=str(i) if t[0] == "message" else None,
            lead_post_id=str(i) if t[0] == "lead_post" else None,
            source_location=rng.choice(["hiking", "travel", "books", "games"]) if t[0] == "lead_post" else None,
            remote_status=rng.choices(["active", "deleted", "suspended", "unknown"], [90, 4, 2, 4])[0],
            remote_visibility=rng.choices(["visible", "deleted_by_author", "removed"], [95, 3, 2])[0],
            local_deleted=rng.random() < 0.02,
            created_at=start + timedelta(minutes=rng.randint(0, 3 * 365 * 24 * 60)),
        )
        yield doc, nprng.standard_normal(dims).astype(np.float32)
    return vocab


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rediska-bench-") as tmp:
        backend = EmbeddedBackend(Path(tmp) / "search-index.sqlite3")
        backend.create(embeddings_model="bench", embeddings_dims=args.dims)

        docs_batch, vec_batch = [], []
        t0 = time.perf_counter()
        text_seconds = vec_seconds = 0.0
        sample_texts = []
        for doc, vec in documents(args.docs, args.dims):
            docs_batch.append(doc)
            vec_batch.append(vec)
            if len(sample_texts) < 2000:
                sample_texts.append(doc.text)
            if len(docs_batch) == args.batch:
                text_seconds, vec_seconds = _flush(backend, docs_batch, vec_batch, text_seconds, vec_seconds)
                docs_batch, vec_batch = [], []
        if docs_batch:
            text_seconds, vec_seconds = _flush(backend, docs_batch, vec_batch, text_seconds, vec_seconds)
        total = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6

        print(f"documents: {args.docs:,}  dims: {args.dims}  index size: {size_mb:,.0f} MB")
        print(f"index build: {args.docs / total:,.0f} docs/s overall ({total:.1f} s incl. generating docs); "
              f"text+FTS {args.docs / text_seconds:,.0f} docs/s, embeddings {args.docs / vec_seconds:,.0f} docs/s")

        rng = random.Random(11)
        queries = []
        for _ in range(args.queries):
            words = rng.choice(sample_texts).split()
            start = rng.randrange(max(1, len(words) - 3))
            queries.append(" ".join(words[start : start + rng.randint(1, 3)]))
        nprng = np.random.default_rng(3)
        vectors = [list(nprng.standard_normal(args.dims).astype(np.float32)) for _ in queries]

        t = time.perf_counter()
        backend.vector(vectors[0], Filters(), 25)  # loads the vector cache once per process
        print(f"vector cache load (once per process): {(time.perf_counter() - t) * 1000:,.0f} ms")
        t = time.perf_counter()
        floor = similarity_floor(backend.sample_embeddings(400))  # what reindex and growth recompute
        print(f"similarity floor from 400 random documents: {floor:.3f} in {(time.perf_counter() - t) * 1000:,.0f} ms")

        def timed(fn):
            samples = []
            for q, v in zip(queries, vectors):
                t = time.perf_counter()
                fn(q, v)
                samples.append((time.perf_counter() - t) * 1000)
            return samples

        def bm25(q, v, filters=Filters()):
            return backend.keyword(keyword_terms(terms(q)), filters, 25)

        def vector(q, v, filters=Filters()):
            return backend.vector(v, filters, 25)

        def hybrid(q, v, filters=Filters()):
            # As search.services does: meaningful words to BM25, vectors above the floor
            # (0 here: random query vectors would all fall below a real floor), weighted RRF.
            query_terms = terms(q)
            k = backend.keyword(keyword_terms(query_terms), filters, 100)
            n = backend.vector(v, filters, 100)
            weights = fusion_weights(k, n, query_terms, 0.0)
            return reciprocal_rank_fusion([[h.document.doc_id for h in k], [h.document.doc_id for h in n]],
                                          weights=weights, size=25)

        def hybrid_plain(q, v, filters=Filters()):
            # Before issue 14: every word to BM25, unweighted RRF (for comparison in the same run).
            k = backend.keyword(terms(q), filters, 100)
            n = backend.vector(v, filters, 100)
            return reciprocal_rank_fusion([[h.document.doc_id for h in k], [h.document.doc_id for h in n]], size=25)

        one_identity = Filters(identity_id="2")
        rows = [
            ("bm25", timed(bm25), 50),
            ("vector", timed(vector), None),
            ("hybrid, plain RRF (before)", timed(hybrid_plain), None),
            ("hybrid", timed(hybrid), 150),
            ("hybrid, identity filter", timed(lambda q, v: hybrid(q, v, one_identity)), 150),
        ]
        print(f"queries: {args.queries} (1-3 words taken from documents), top 25, hybrid fuses top 100 + top 100")
        for name, samples, target in rows:
            p50, p95 = percentile(samples, 50), percentile(samples, 95)
            verdict = "" if target is None else ("  OK" if p95 < target else f"  over target {target} ms")
            print(f"  {name:<27} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{verdict}")


def _flush(backend, docs, vecs, text_seconds, vec_seconds):
    t = time.perf_counter()
    backend.upsert(docs)
    text_seconds += time.perf_counter() - t
    t = time.perf_counter()
    pending = {p.doc_id: p for p in backend.pending_embeddings([d.doc_id for d in docs], limit=len(docs))}
    backend.set_embeddings([(pending[d.doc_id], v) for d, v in zip(docs, vecs)])
    vec_seconds += time.perf_counter() - t
    return text_seconds, vec_seconds


if __name__ == "__main__":
    main()
