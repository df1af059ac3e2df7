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


def plain_contexts(sentences, window):
    """Every (target, sorted contexts) within ``window`` of each position, sentence by sentence, in plain Python."""
    rows = []
    for sentence in sentences:
        for i, target in enumerate(sentence):
            ctx = [sentence[j] for j in range(max(0, i - window), min(len(sentence), i + window + 1)) if j != i]
            if ctx:
                rows.append((target, sorted(ctx)))
    return rows


def test_full_windows_without_shrinking():
    sentences = [[1, 2, 3, 4, 5, 6, 7, 8], [9], [10, 11, 12]]
    ids = np.array([t for s in sentences for t in s], dtype=np.int32)
    offsets = np.cumsum([0] + [len(s) for s in sentences])
    for window in (1, 2, 3):
        targets, contexts = window_groups(ids, offsets, window, np.random.default_rng(0), shrink=False)
        got = [(int(t), sorted(int(c) for c in row if c >= 0)) for t, row in zip(targets, contexts)]
        assert got == plain_contexts(sentences, window)


def test_window_wider_than_sentences_is_whole_sentence_and_narrow():
    # item2vec's whole-basket window: every other item of the basket, in an array no wider than the basket
    sentences = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11]]
    ids = np.array([t for s in sentences for t in s], dtype=np.int32)
    offsets = np.cumsum([0] + [len(s) for s in sentences])
    targets, contexts = window_groups(ids, offsets, 10_000, np.random.default_rng(0), shrink=False)
    got = [(int(t), sorted(int(c) for c in row if c >= 0)) for t, row in zip(targets, contexts)]
    assert got == plain_contexts(sentences, 4)
    assert contexts.shape == (11, 8)  # 2 x (longest basket - 1) columns, not 2 x 10,000


def test_wide_window_draws_the_same_windows_as_its_stream():
    # capping the array width at the longest sentence must not change which windows a seed draws
    ids = np.arange(30, dtype=np.int32)
    offsets = np.array([0, 6, 12, 18, 24, 30])
    narrow = window_groups(ids, offsets, 5, np.random.default_rng(7))
    wide = window_groups(ids, offsets, 40, np.random.default_rng(7))
    draws = np.random.default_rng(7).integers(1, 41, size=30)  # b of every position, as the wide call draws them
    expected = [(t, sorted(c for c in range(s * 6, s * 6 + 6) if c != t and abs(c - t) <= draws[t]))
                for s in range(5) for t in range(s * 6, s * 6 + 6)]
    got = [(int(t), sorted(int(c) for c in row if c >= 0)) for t, row in zip(*wide)]
    assert got == [(t, c) for t, c in expected if c]
    assert narrow[1].shape[1] == 10 and wide[1].shape[1] == 10
