"""The build_vocab job's pure Arrow parts, without Spark: ranking the counted words and encoding token lists to
ids, checked against plain Python (dict lookups, ``sorted``)."""
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from w2vspark import corpus
from w2vspark.corpus import _encoder, ranked_vocabulary, vocab_table
from w2vspark.vocab import rank_counts


def test_ranking_in_arrow_is_pythons_order():
    # ties broken by code point: upper case before lower case, ASCII before accented letters and CJK
    counts = {"b": 3, "a": 3, "Z": 3, "é": 3, "z": 3, "日本": 5, "x": 1, "ab": 3, "a b": 3}
    table = pa.table({"word": list(counts), "count": pa.array(list(counts.values()), pa.int64())})
    vocab = ranked_vocabulary(table)
    expected = rank_counts(counts, min_count=1)
    assert list(vocab.words) == [w for w, _ in expected]
    assert vocab.counts.tolist() == [c for _, c in expected]
    written = vocab_table(vocab)
    assert written.column("id").to_pylist() == list(range(len(counts)))
    assert written.column("word").to_pylist() == list(vocab.words)
    assert not any(f.nullable for f in written.schema)


@pytest.mark.parametrize("gather", [1, 7, 1000])
def test_encoding_gathered_batches_equals_dict_lookup(monkeypatch, gather):
    """Batches gathered for one lookup (at least 4 or 7 tokens: lookups span batch edges; 1000: all batches in
    one lookup) give the same rows as a dict lookup per token: keys kept, out-of-vocabulary
    tokens dropped, empty lists kept empty, row order unchanged."""
    monkeypatch.setattr(corpus, "ENCODE_TOKENS", gather)
    words = ["the", "cat", "sat", "on", "mat", "日本"]
    rng = np.random.default_rng(0)
    pool = words + ["OOV", "Cat", ""]
    batches, expected = [], []
    for b in range(6):
        rows = [[pool[i] for i in rng.integers(0, len(pool), rng.integers(0, 6))] for _ in range(b % 3 + 1)]
        keys = [100 * b + i for i in range(len(rows))]
        batches.append(pa.RecordBatch.from_arrays([pa.array(keys, pa.int64()), pa.array(rows, pa.list_(pa.string()))],
                                                  names=["key", "tokens"]))
        expected += [(k, [words.index(t) for t in r if t in words]) for k, r in zip(keys, rows)]
    out = list(_encoder(SimpleNamespace(value=words))(iter(batches)))
    got = [(k, ids) for batch in out for k, ids in zip(batch.column("key").to_pylist(), batch.column("ids").to_pylist())]
    assert got == expected
    assert all(batch.schema.field("ids").type == pa.list_(pa.int32()) for batch in out)
    # gathered until min(max(gather, V = 6), 4 x gather) tokens: 4, 7, all of them
    assert len(out) == 1 if gather == 1000 else 1 < len(out) < 6
