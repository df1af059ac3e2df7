"""jobs/phrases.py against gensim's Phrases on the same tokens and settings: the same phrases, the same scores,
the same rewritten rows."""
import gzip
from pathlib import Path

import pytest
from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS, Phrases

from w2vspark.config import load_config
from w2vspark.phrases import build_phrases
from w2vspark.io.atomic import OutputExistsError
from w2vspark.text import tokenize

KJV = Path(__file__).resolve().parents[2] / "data" / "kjv.txt.gz"


@pytest.fixture(scope="module")
def sentences(spark, tmp_path_factory):
    lines = gzip.open(KJV, "rt", encoding="utf-8").read().splitlines()[:2000]
    sents = [t for t in (tokenize(line) for line in lines) if t]
    path = str(tmp_path_factory.mktemp("phrases") / "in")
    spark.createDataFrame([(s,) for s in sents] + [(None,), ([],)], "tokens array<string>") \
        .coalesce(1).write.parquet(path)
    return sents, path


def _run(spark, path, out, *settings):
    cfg = load_config(None, [f"input.path={path}", "input.format=parquet", "input.tokens_column=tokens",
                             f"output.dir={out}", *settings])
    stats = build_phrases(spark, cfg, log=lambda *_: None)
    phrases = spark.read.parquet(f"{out}/phrases").toPandas()
    rows = sorted(tuple(r.tokens) for r in spark.read.parquet(f"{out}/phrased").collect())
    return stats, phrases, rows


def test_same_phrases_scores_and_rows_as_gensim(spark, sentences, tmp_path):
    sents, path = sentences
    stats, phrases, rows = _run(spark, path, tmp_path)
    gensim = Phrases(sents, min_count=5, threshold=10.0, connector_words=frozenset())
    expected = gensim.export_phrases()  # phrase -> score
    ours = dict(zip(phrases.phrase, phrases.score))
    assert len(expected) > 50 and set(ours) == set(expected)  # "thus_saith", "burnt_offering", ...
    assert all(ours[p] == pytest.approx(s, rel=1e-12) for p, s in expected.items())
    assert rows == sorted(tuple(gensim[s]) for s in sents)
    assert stats["rows"] == len(sents) and stats["tokens"] == sum(map(len, sents))  # null and empty rows dropped
    with pytest.raises(OutputExistsError, match="phrases already exists"):
        _run(spark, path, tmp_path)


def test_connector_words_and_two_passes_as_gensim(spark, sentences, tmp_path):
    sents, path = sentences
    connectors = frozenset(ENGLISH_CONNECTOR_WORDS)
    stats, phrases, rows = _run(spark, path, tmp_path, "phrases.passes=2", "phrases.threshold=5",
                                f"phrases.common_words={','.join(sorted(connectors))}")
    first = Phrases(sents, min_count=5, threshold=5.0, connector_words=connectors)
    assert set(phrases.phrase[phrases["pass"] == 1]) == set(first.export_phrases())
    assert any("_of_" in p for p in phrases.phrase)  # e.g. "house_of_israel"
    once = [first[s] for s in sents]
    second = Phrases(once, min_count=5, threshold=5.0, connector_words=connectors)
    assert rows == sorted(tuple(second[s]) for s in once)
    assert [p["pass"] for p in stats["passes"]] == [1, 2] and stats["passes"][1]["phrases"] > 0
