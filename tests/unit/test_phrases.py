"""The greedy rewrite of one row, by hand."""
import pytest

from w2vspark.config import ConfigError, load_config
from w2vspark.phrases import join_phrases, phrase_table

NONE = frozenset()


def test_joins_left_to_right_and_the_end_of_a_phrase_starts_nothing():
    phrases = phrase_table([("new", "york", "new_york"), ("york", "times", "york_times")], "_")
    assert join_phrases("the new york times".split(), phrases, NONE) == ["the", "new_york", "times"]
    assert join_phrases("york times".split(), phrases, NONE) == ["york_times"]
    assert join_phrases("new new york".split(), phrase_table([("new", "york", "new-york")], "-"), NONE) == \
        ["new", "new-york"]


def test_connectors_sit_inside_phrases_never_at_their_ends():
    conn = frozenset({"of", "the"})
    phrases = phrase_table([("bank", "america", "bank_of_america")], "_")
    assert phrases == {("bank", "america"): {("of",): "bank_of_america"}}
    assert join_phrases("the bank of america of".split(), phrases, conn) == ["the", "bank_of_america", "of"]
    assert join_phrases("bank of the america".split(), phrases, conn) == ["bank", "of", "the", "america"]
    assert join_phrases("of of".split(), phrases, conn) == ["of", "of"]


def test_the_key_names_both_ends():
    # "new_york_times" can be new_york + times or new + york_times: only the accepted split joins
    phrases = phrase_table([("new_york", "times", "new_york_times")], "_")
    assert join_phrases(["new_york", "times"], phrases, NONE) == ["new_york_times"]
    assert join_phrases(["new", "york_times"], phrases, NONE) == ["new", "york_times"]


@pytest.mark.parametrize("setting,match", [("phrases.passes=0", "phrases.passes"),
                                           ("phrases.delimiter=", "phrases.delimiter"),
                                           ("phrases.min_count=-1", "phrases.min_count"),
                                           ("phrases.threshold=nan", "phrases.threshold")])
def test_bad_settings_name_the_key(setting, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [setting])


def test_the_vectorized_rewrite_equals_the_scan():
    # many rows of a 6-word vocabulary with half of the pairs phrases: runs of consecutive phrases, rows of one
    # token and phrases that would cross two rows all occur
    import numpy as np

    from w2vspark.phrases import join_pairs

    rng = np.random.default_rng(0)
    words = list("abcdef")
    accepted = [(a, b, f"{a}_{b}") for a in words for b in words if rng.random() < 0.5]
    rows = [[words[i] for i in rng.integers(0, 6, size=rng.integers(1, 9))] for _ in range(500)]
    values = [t for r in rows for t in r]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    pairs = {(a, b): joined for a, b, joined in accepted}
    out, out_offsets = join_pairs(values, offsets, pairs)
    got = [out[out_offsets[i]:out_offsets[i + 1]] for i in range(len(rows))]
    assert got == [join_phrases(r, phrase_table(accepted, "_"), NONE) for r in rows]
    assert sum(len(r) for r in got) < len(values)  # phrases were joined
