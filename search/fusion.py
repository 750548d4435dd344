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

RRF_K = 60  # the constant from Cormack et al. (2009), also Elasticsearch's default


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
