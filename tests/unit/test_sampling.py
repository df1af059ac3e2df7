import numpy as np

from w2vspark.sampling import pair_counts, subsample, window_groups


def test_subsample_keeps_sentence_structure_and_rate():
    rng = np.random.default_rng(0)
    ids = np.array([0] * 5000 + [1] * 5000, dtype=np.int32)
    offsets = np.array([0, 5000, 10000])
    keep = np.array([0.25, 1.0])
    kept, new_offsets = subsample(ids, offsets, keep, rng)
    first = kept[new_offsets[0]:new_offsets[1]]
    second = kept[new_offsets[1]:new_offsets[2]]
    assert np.all(first == 0) and np.all(second == 1)
    assert len(second) == 5000
    # binomial(5000, 0.25): sd = 30.6; allow 5 sd
    assert abs(len(first) - 1250) < 5 * 30.6


def test_windows_stay_inside_sentences():
    ids = np.array([1, 2, 3, 4, 5, 6, 7], dtype=np.int32)
    offsets = np.array([0, 3, 4, 7])  # [1 2 3] [4] [5 6 7]
    targets, contexts = window_groups(ids, offsets, 5, np.random.default_rng(1))
    assert 4 not in targets.tolist()  # a one-word sentence has no pairs
    sentence_of = {1: 0, 2: 0, 3: 0, 4: 1, 5: 2, 6: 2, 7: 2}
    for t, row in zip(targets, contexts):
        for c in row[row >= 0]:
            assert sentence_of[int(c)] == sentence_of[int(t)] and c != t


def test_pair_counts_per_distance_follow_dynamic_window():
    # one long sentence of distinct ids; a pair at distance k exists when k <= b, b ~ U{1..w}
    window, n = 4, 40000
    ids = np.arange(n, dtype=np.int32)
    targets, contexts = window_groups(ids, np.array([0, n]), window, np.random.default_rng(3))
    dist = np.abs(contexts - targets[:, None])[contexts >= 0]
    counts = np.bincount(dist, minlength=window + 1)[1:]
    expected = np.array([2 * n * (window - k + 1) / window for k in range(1, window + 1)])
    # counts are sums of ~n Bernoulli draws per side: sd <= sqrt(2n * 0.25) = 141; allow 5 sd (edges: a few)
    assert np.all(np.abs(counts - expected) < 5 * 141 + 2 * window)
    assert pair_counts(contexts).sum() == counts.sum()
