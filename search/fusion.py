"""Reciprocal rank fusion: the one way keyword and vector rankings are combined.

Both backends fuse in Python with this function, so hybrid results do not depend
on which backend is configured.  RRF only looks at ranks, which makes BM25 scores
and cosine similarities (different scales) comparable without tuning.
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60  # the constant from Cormack et al. (2009), also Elasticsearch's default


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = RRF_K, size: int | None = None) -> list[tuple[str, float]]:
    """Fuse ranked lists of document ids into one list of (doc_id, score), best first."""
    scores: dict[str, float] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for list_no, ranking in enumerate(rankings):
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
            first_seen.setdefault(doc_id, (rank, list_no))
    # Ties (same ranks in different lists) break by best single rank, then list order: stable results.
    fused = sorted(scores.items(), key=lambda item: (-item[1], first_seen[item[0]]))
    return fused[:size] if size is not None else fused
