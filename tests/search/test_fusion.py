from search.fusion import RRF_K, reciprocal_rank_fusion


def test_documents_found_by_both_rankings_come_first():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d", "a"]])
    assert [doc for doc, _ in fused] == ["a", "c", "b", "d"]


def test_scores_are_sums_of_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["a"], ["b", "a"]]))
    assert fused["a"] == 1 / (RRF_K + 1) + 1 / (RRF_K + 2)
    assert fused["b"] == 1 / (RRF_K + 1)


def test_ties_break_by_best_rank_then_list_order_and_size_cuts():
    assert [d for d, _ in reciprocal_rank_fusion([["x", "y"], ["z"]], size=2)] == ["x", "z"]


def test_one_empty_ranking_leaves_the_other_intact():
    assert [d for d, _ in reciprocal_rank_fusion([[], ["q", "r"]])] == ["q", "r"]


def test_weights_scale_each_hits_contribution():
    fused = dict(reciprocal_rank_fusion([["a", "b"], ["b"]], weights=[{"a": 0.5, "b": 0.1}, {"b": 1.0}]))
    assert fused["a"] == 0.5 / (RRF_K + 1)
    assert fused["b"] == 0.1 / (RRF_K + 2) + 1.0 / (RRF_K + 1)


def test_a_weak_keyword_hit_no_longer_beats_a_confident_vector_hit():
    # A paraphrase: BM25 ranks a message sharing one incidental word first; the vector ranking has the answer.
    rankings = [["incidental", "answer"], ["answer", "incidental"]]
    assert reciprocal_rank_fusion(rankings)[0][0] == "incidental"  # plain RRF: a tie broken by list order
    weighted = reciprocal_rank_fusion(rankings, weights=[{"incidental": 0.2, "answer": 0.2},
                                                         {"answer": 1.0, "incidental": 0.3}])
    assert weighted[0][0] == "answer"
