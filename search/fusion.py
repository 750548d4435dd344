"""Reciprocal rank fusion, weighted by how sure each ranking is of each hit.

Both backends fuse in Python with this function, so hybrid results do not depend
on which backend is configured.  Plain RRF only looks at ranks, which makes BM25
scores and cosine similarities (different scales) comparable without tuning, but it
also gives a ranking's weakest hit nearly the weight of its best: a paraphrased
question whose only shared word is incidental pulled unrelated messages above the
one the vector ranking had found first.  So each hit's 1 / (k + rank) is multiplied
by a confidence in 0..1 that its ranking gives it (`search.services` computes them:
the share of the query's words a keyword hit holds, how far a vector hit is above
the similarity floor).  Weights of 1 give plain RRF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .backends.base import Hit
from .text import keyword_terms, term_coverage

RRF_K = 60  # the constant from Cormack et al. (2009), also Elasticsearch's default
# The similarity floor: cosines between documents picked at random are, in an archive of
# many topics, mostly those of unrelated texts.  A vector hit must beat nearly all of them
# (this quantile of the sampled documents' pairwise cosines) to count as related.
FLOOR_QUANTILE = 0.99
FLOOR_MIN_DOCUMENTS = 4  # fewer vectors than this say nothing about the model: no floor yet


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, weights: Sequence[Mapping[str, float]] | None = None,
                           k: int = RRF_K, size: int | None = None) -> list[tuple[str, float]]:
    """Fuse ranked lists of document ids into one list of (doc_id, score), best first.

    `weights[i][doc_id]` scales that document's contribution from ranking i (default 1).
    """
    scores: dict[str, float] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for list_no, ranking in enumerate(rankings):
        list_weights = weights[list_no] if weights is not None else {}
        for rank, doc_id in enumerate(ranking, start=1):
            weight = float(list_weights.get(doc_id, 1.0))
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
            first_seen.setdefault(doc_id, (rank, list_no))
    # Ties (same ranks in different lists) break by best single rank, then list order: stable results.
    fused = sorted(scores.items(), key=lambda item: (-item[1], first_seen[item[0]]))
    return fused[:size] if size is not None else fused


def fusion_weights(keyword_hits: list[Hit], vector_hits: list[Hit], query_terms: list[str],
                   floor: float) -> tuple[dict[str, float], dict[str, float]]:
    """How sure each ranking is of each of its hits (0..1), for the weighted RRF.

    Keyword: the share of the query's meaningful words the document holds, so a
    message matching one incidental word of a paraphrase weighs little.  Vector: how
    far the cosine rises from the similarity floor towards the best hit's, so hits
    barely above chance weigh little and a clear winner keeps its lead.
    """
    meaningful = keyword_terms(query_terms)
    keyword = {h.document.doc_id: term_coverage(h.document.text, meaningful) for h in keyword_hits}
    vector: dict[str, float] = {}
    if vector_hits:
        top = max(h.score for h in vector_hits)
        span = max(top - floor, 1e-6)
        vector = {h.document.doc_id: max(0.0, min(1.0, (h.score - floor) / span)) for h in vector_hits}
    return keyword, vector


def similarity_floor(vectors: list[list[float]]) -> float | None:
    """The FLOOR_QUANTILE of the cosines between distinct pairs of these vectors."""
    if len(vectors) < FLOOR_MIN_DOCUMENTS:
        return None
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    if len(matrix) < FLOOR_MIN_DOCUMENTS:
        return None
    cosines = (matrix @ matrix.T)[np.triu_indices(len(matrix), k=1)]
    return float(np.quantile(cosines, FLOOR_QUANTILE))
