import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.vocab import NoiseSampler, Vocabulary, VocabularyError, keep_probabilities


def test_ids_by_count_then_word_with_cuts():
    counts = {"b": 5, "a": 5, "the": 9, "rare": 1, "c": 2}
    v = Vocabulary.from_counts(counts, min_count=2)
    assert v.words == ("the", "a", "b", "c")
    assert v.counts.tolist() == [9, 5, 5, 2]
    assert v.id("b") == 2 and "rare" not in v
    assert Vocabulary.from_counts(counts, min_count=2, max_vocab_size=2).words == ("the", "a")
    with pytest.raises(KeyError, match="rare"):
        v.id("rare")
    assert v.encode(["the", "rare", "c"]).tolist() == [0, 3]


def test_no_word_reaches_min_count_says_why():
    with pytest.raises(VocabularyError, match=r"3 distinct words and the highest count is 2"):
        Vocabulary.from_counts({"x": 1, "y": 2, "z": 1}, min_count=5)


def test_keep_probability_matches_word2vec_c_formula():
    counts = np.array([1000, 100, 10, 1])
    sample = 1e-2
    t = sample * counts.sum()  # 11.11
    expected = [(np.sqrt(c / t) + 1) * t / c for c in counts]  # word2vec.c, hand-evaluated
    got = keep_probabilities(counts, sample)
    assert got[0] == pytest.approx(expected[0]) and got[0] < 0.15
    assert got[1] == pytest.approx(expected[1])
    assert got[2] == 1.0 and got[3] == 1.0  # capped
    assert np.all(keep_probabilities(counts, 0.0) == 1.0)


@pytest.mark.parametrize("power", [0.75, 1.0, 0.0, -0.5])
def test_noise_frequencies_follow_count_power(power):
    counts = np.array([800, 200, 50, 10, 1])
    sampler = NoiseSampler(counts, power)
    expected = {0.75: counts ** 0.75, 1.0: counts, 0.0: np.ones(5), -0.5: 1 / np.sqrt(counts)}[power]
    expected = expected / expected.sum()
    n = 200_000
    draws = sampler.draw(np.random.default_rng(0), n)
    freq = np.bincount(draws, minlength=5) / n
    # standard error of a frequency is sqrt(p(1-p)/n) <= 0.0012; allow 5 standard errors
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) < 5 * sigma + 1e-12)
    assert draws.dtype == np.int32 and draws.max() <= 4


@pytest.mark.skipif(not compiled.available("alias_draw"),
                    reason="w2vspark_native was not built (no C compiler)")
def test_compiled_draws_equal_numpys():
    """The compiled alias lookup does numpy's float64 operations on the same uniform numbers: the same ids."""
    rng = np.random.default_rng(3)
    for size, power in ((2, 0.75), (7, 0.0), (3000, 0.75), (3000, -0.5)):
        counts = rng.zipf(1.5, size).clip(1, 10**6)
        counts[size // 2] = 0  # never drawn
        sampler = NoiseSampler(counts, power)
        for shape in ((0,), (5,), (400, 5), (50_000,)):
            by_native = sampler.draw(np.random.default_rng(size), shape, native=True)
            by_numpy = sampler.draw(np.random.default_rng(size), shape, native=False)
            assert by_native.dtype == by_numpy.dtype == np.int32 and by_native.shape == by_numpy.shape == shape
            assert np.array_equal(by_native, by_numpy)
            assert not (by_native == size // 2).any()
    out = np.empty(1, dtype=np.int32)
    with pytest.raises(ValueError, match=r"u\[0\] is not in \[0, 1\)"):
        compiled.helper("alias_draw", True)(np.array([1.0]), sampler._accept, sampler._alias, out)
