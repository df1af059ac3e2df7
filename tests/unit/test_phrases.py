"""The greedy rewrite of one row, by hand."""
import pytest

from w2vspark.config import ConfigError, load_config
from w2vspark.phrases import join_phrases

NONE = frozenset()


def test_joins_left_to_right_and_the_end_of_a_phrase_starts_nothing():
    phrases = {("new", "york", "new_york"), ("york", "times", "york_times")}
    assert join_phrases("the new york times".split(), phrases, NONE, "_") == ["the", "new_york", "times"]
    assert join_phrases("york times".split(), phrases, NONE, "_") == ["york_times"]
    assert join_phrases("new new york".split(), phrases, NONE, "-") == ["new", "new", "york"]  # delimiter counts


def test_connectors_sit_inside_phrases_never_at_their_ends():
    conn = frozenset({"of", "the"})
    phrases = {("bank", "america", "bank_of_america")}
    assert join_phrases("the bank of america of".split(), phrases, conn, "_") == ["the", "bank_of_america", "of"]
    assert join_phrases("bank of the america".split(), phrases, conn, "_") == ["bank", "of", "the", "america"]
    assert join_phrases("of of".split(), phrases, conn, "_") == ["of", "of"]


def test_the_key_names_both_ends():
    # "new_york_times" can be new_york + times or new + york_times: only the accepted split joins
    phrases = {("new_york", "times", "new_york_times")}
    assert join_phrases(["new_york", "times"], phrases, NONE, "_") == ["new_york_times"]
    assert join_phrases(["new", "york_times"], phrases, NONE, "_") == ["new", "york_times"]


@pytest.mark.parametrize("setting,match", [("phrases.passes=0", "phrases.passes"),
                                           ("phrases.delimiter=", "phrases.delimiter"),
                                           ("phrases.min_count=-1", "phrases.min_count"),
                                           ("phrases.threshold=nan", "phrases.threshold")])
def test_bad_settings_name_the_key(setting, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [setting])
