"""ID evaluations' arithmetic against hand-worked values, and the planted graph generator's structure."""
import math

import numpy as np
import pytest

from w2vspark.graph_eval import auc, f1_scores, pair_scores
from w2vspark.graphs import planted_graph


def test_f1_scores_by_hand():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    # class 0: tp 2, fp 0, fn 1 -> 4/5; class 1: tp 1, fp 1, fn 1 -> 1/2; class 2: tp 1, fp 1, fn 0 -> 2/3
    got = f1_scores(truth, predicted)
    assert got["micro_f1"] == pytest.approx(4 / 6)
    assert got["macro_f1"] == pytest.approx((4 / 5 + 1 / 2 + 2 / 3) / 3)


def test_auc_counts_pairs_and_half_ties():
    # pairs (p, n): 3 > 1, 3 > 2, 2 > 1, 2 = 2 (half): (3 + 0.5) / 4
    assert auc(np.array([3.0, 2.0]), np.array([1.0, 2.0])) == pytest.approx(3.5 / 4)
    assert auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert math.isnan(auc(np.array([]), np.array([1.0])))


def test_pair_scores_plain_and_centred_by_hand():
    # mean (2, 1): centred rows (-1, -1), (1, -1), (-1, 1), (1, 1)
    vectors = np.array([[1, 0], [3, 0], [1, 2], [3, 2]], dtype=np.float32)
    ia, ib = np.array([0, 0, 1, 2]), np.array([1, 3, 2, 3])
    cosine, centred = pair_scores(vectors[ia], vectors[ib], vectors.mean(axis=0, dtype=np.float64))
    # plain cosines: edges 1 and 3/sqrt(13) = 0.832, non-edges 3/(3 sqrt(5)) = 0.447 and 7/sqrt(65) = 0.868;
    # centred: edges 0 and -1, non-edges -1 and 0
    assert cosine == pytest.approx([1, 3 / math.sqrt(13), 3 / (3 * math.sqrt(5)), 7 / math.sqrt(65)], rel=1e-6)
    assert centred == pytest.approx([0, -1, -1, 0], abs=1e-12)
    # AUC: 3 of the 4 (edge, non-edge) comparisons won; centred: 1 won, 2 ties
    assert auc(cosine[:2], cosine[2:]) == pytest.approx(0.75) and auc(centred[:2], centred[2:]) == pytest.approx(0.5)


def test_planted_graph_keeps_most_edges_inside_communities():
    src, dst, community = planted_graph(3000, 6, degree=8, mixing=0.2, seed=3)
    assert len(community) == 3000 and not np.any(src == dst)
    assert abs(len(src) - 12_000) < 200  # n x degree / 2 edges, minus the few self-loops dropped
    inside = np.mean(community[src] == community[dst])
    # 80% drawn inside, plus 20% x ~1/6 that land inside by chance: 0.833; 12,000 edges: sd 0.004, allow 5 sd
    assert abs(inside - (0.8 + 0.2 / 6)) < 0.02
    degrees = np.bincount(np.concatenate([src, dst]), minlength=3000)
    assert degrees.max() > 5 * np.median(degrees)  # Pareto degree weights: a heavy tail
    again = planted_graph(3000, 6, degree=8, mixing=0.2, seed=3)
    assert np.array_equal(again[0], src) and np.array_equal(again[1], dst)
