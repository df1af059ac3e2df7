"""Stage 1 on Spark: counts and ids against plain Python, schemas, determinism, chunking, atomic writes, errors."""
import bz2
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from w2vspark.config import ConfigError, load_config
from w2vspark.corpus import build_corpus, read_counts, read_vocab
from w2vspark.errors import InputError
from w2vspark.io.atomic import OutputExistsError
from w2vspark.text import tokenize
from w2vspark.vocab import VocabularyError

TEXT = ("The cat sat on the mat. The dog sat on the log!\n"
        "A cat and a dog; the cat's toy.\n"
        "\n"
        "Naïve café owners don't sit, THE END. 42 numbers_are dropped\n")
MORE = "the cat and the dog sat\nthe end of the log\n"


def cfg_for(tmp_path, *overrides, inp=None):
    return load_config(None, [f"input.path={inp or tmp_path / 'in'}", f"output.dir={tmp_path / 'out'}",
                              "vocab.min_count=2", "train.num_partitions=2", *overrides])


def write_inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.txt").write_text(TEXT, encoding="utf-8")
    with gzip.open(d / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write(MORE)
    with bz2.open(d / "c.txt.bz2", "wt", encoding="utf-8") as f:
        f.write(MORE)
    return TEXT + MORE + MORE


def read_corpus(path):
    """-> list (one per part file, in file order) of lists of id lists."""
    files = sorted(Path(path).glob("part-*.parquet"))
    return [pq.read_table(f).column("ids").to_pylist() for f in files]


@pytest.mark.parametrize("encoder", ["broadcast", "join"])
def test_counts_and_ids_match_plain_python(spark, tmp_path, monkeypatch, encoder):
    """Against plain Python, with the words broadcast to the encoder and joined with the tokens (the path of
    vocabularies above DRIVER_VOCAB_WORDS, ranked in Spark); equal lines (the repeated file) keep a row each
    either way."""
    from w2vspark import corpus

    if encoder == "join":
        monkeypatch.setattr(corpus, "DRIVER_VOCAB_WORDS", 0)
        for name in ("select_vocab", "encode"):  # no word to the driver, none broadcast
            monkeypatch.setattr(corpus, name, lambda *_: pytest.fail("the words came to the driver"))
    all_text = write_inputs(tmp_path)
    cfg = cfg_for(tmp_path)
    stats = build_corpus(spark, cfg, log=lambda *_: None)

    counts = Counter(t for line in all_text.splitlines() for t in tokenize(line))
    expected = sorted(((w, c) for w, c in counts.items() if c >= 2), key=lambda wc: (-wc[1], wc[0]))
    vocab = read_vocab(spark, cfg.output.dir)
    assert list(zip(vocab.words, vocab.counts.tolist())) == expected
    assert "naïve" not in vocab and "cat's" in vocab or counts["cat's"] < 2

    vocab_df = spark.read.parquet(str(tmp_path / "out" / "vocab"))
    assert vocab_df.dtypes == [("id", "int"), ("word", "string"), ("count", "bigint")]
    corpus_df = spark.read.parquet(str(tmp_path / "out" / "corpus"))
    assert dict(corpus_df.dtypes)["ids"] == "array<int>"

    index = {w: i for i, (w, _) in enumerate(expected)}
    expected_sentences = []
    for line in all_text.splitlines():
        ids = [index[t] for t in tokenize(line) if t in index]
        if len(ids) >= 2:
            expected_sentences.append(ids)
    got = [s for part in read_corpus(tmp_path / "out" / "corpus") for s in part]
    assert sorted(got) == sorted(expected_sentences)
    assert stats["input_lines"] == len(all_text.splitlines())
    assert stats["tokens"] == sum(counts.values())
    assert stats["kept_tokens"] == sum(map(len, expected_sentences))
    assert stats["vocab_size"] == len(expected) and stats["distinct_words"] == len(counts)
    assert stats["rare_fraction"] == pytest.approx(1 - sum(c for _, c in expected) / sum(counts.values()))
    on_disk = json.loads((tmp_path / "out" / "corpus_stats.json").read_text())
    assert on_disk["vocab_size"] == stats["vocab_size"]


def test_spark_tokenizer_agrees_with_python(spark, tmp_path):
    line = "L'été, Œuvre naïve: don't 'quote' o’clock x2y under_score ÀÉÎ"
    (tmp_path / "in.txt").write_text(line + "\n" + line + "\n", encoding="utf-8")
    cfg = cfg_for(tmp_path, "vocab.min_count=1", inp=tmp_path / "in.txt")
    build_corpus(spark, cfg, log=lambda *_: None)
    assert sorted(read_vocab(spark, cfg.output.dir).words) == sorted(set(tokenize(line)))


def test_same_input_same_partitions_and_order(spark, tmp_path):
    write_inputs(tmp_path)
    cfg = cfg_for(tmp_path, "vocab.min_count=1")
    build_corpus(spark, cfg, log=lambda *_: None)
    first = read_corpus(tmp_path / "out" / "corpus")
    cfg2 = load_config(None, [f"input.path={tmp_path / 'in'}", f"output.dir={tmp_path / 'out2'}",
                              "vocab.min_count=1", "train.num_partitions=2"])
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64")  # different input splits
    try:
        build_corpus(spark, cfg2, log=lambda *_: None)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert read_corpus(tmp_path / "out2" / "corpus") == first
    assert len(first) == 2 and all(first)


def test_long_lines_are_chunked(spark, tmp_path):
    words = [f"w{chr(97 + i % 5)}" for i in range(25)]  # wa wb wc wd we, repeated
    (tmp_path / "in.txt").write_text(" ".join(words) + "\n", encoding="utf-8")
    cfg = cfg_for(tmp_path, "vocab.min_count=1", "vocab.max_sentence_length=10", inp=tmp_path / "in.txt")
    stats = build_corpus(spark, cfg, log=lambda *_: None)
    lengths = sorted(len(s) for part in read_corpus(tmp_path / "out" / "corpus") for s in part)
    assert lengths == [5, 10, 10] and stats["sentences"] == 3 and stats["input_lines"] == 1


def test_a_17mb_line_without_newline(spark, tmp_path):
    vocab = ["alpha", "beta", "gamma", "delta", "epsilon"]
    line = " ".join(vocab[i % 5] for i in range(3_000_000))  # 17 MB, no newline
    (tmp_path / "in.txt").write_text(line, encoding="ascii")
    cfg = cfg_for(tmp_path, "vocab.min_count=1", inp=tmp_path / "in.txt")
    stats = build_corpus(spark, cfg, log=lambda *_: None)
    assert stats["tokens"] == 3_000_000 and stats["kept_tokens"] == 3_000_000
    assert stats["sentences"] == 3000  # cut into chunks of max_sentence_length = 1000


def test_undecodable_bytes_are_replaced_and_counted(spark, tmp_path):
    (tmp_path / "in.txt").write_bytes(b"good words here\nbad \xff\xfe bytes here\nmore good words\n")
    cfg = cfg_for(tmp_path, "vocab.min_count=1", inp=tmp_path / "in.txt")
    stats = build_corpus(spark, cfg, log=lambda *_: None)
    assert stats["lines_with_undecodable_bytes"] == 1
    assert set(read_vocab(spark, cfg.output.dir).words) == {"good", "words", "here", "bad", "bytes", "more"}


def test_parquet_table_input(spark, tmp_path):
    spark.createDataFrame([("the cat sat",), ("the dog sat",), (None,)], "body string").write.parquet(
        str(tmp_path / "table"))
    cfg = cfg_for(tmp_path, "input.format=parquet", "input.text_column=body", inp=tmp_path / "table")
    build_corpus(spark, cfg, log=lambda *_: None)
    assert read_vocab(spark, cfg.output.dir).words == ("sat", "the")
    bad = cfg_for(tmp_path, "input.format=parquet", "input.text_column=text", "output.overwrite=true",
                  inp=tmp_path / "table")
    with pytest.raises(InputError, match=r"has no column 'text'.*its columns are: body"):
        build_corpus(spark, bad, log=lambda *_: None)


def test_sequence_column_input(spark, tmp_path):
    # ID sequences as they come from sessions or walks: numbers, nulls inside and instead of arrays, empty arrays
    rows = [([10, 20, 30, 10],), ([20, None, 10],), (None,), ([],), ([30, 20, 10, 7, 1 << 40],), ([10],)]
    spark.createDataFrame(rows, "walk array<bigint>").write.parquet(str(tmp_path / "walks"))
    cfg = cfg_for(tmp_path, "input.format=parquet", "input.tokens_column=walk", "vocab.max_sentence_length=3",
                  inp=tmp_path / "walks")
    logged = []
    stats = build_corpus(spark, cfg, log=logged.append)

    tokens = [str(t) for r in rows if r[0] for t in r[0] if t is not None]
    expected = sorted(((w, c) for w, c in Counter(tokens).items() if c >= 2), key=lambda wc: (-wc[1], wc[0]))
    vocab = read_vocab(spark, cfg.output.dir)
    assert list(zip(vocab.words, vocab.counts.tolist())) == expected  # "10" not lowercased/re-cut, "7" dropped
    assert (stats["null_rows"], stats["empty_rows"], stats["null_tokens"]) == (1, 1, 1)
    assert stats["input_lines"] == 5 and stats["tokens"] == len(tokens)
    assert any("skipped 1 null and 1 empty sequences and 1 null elements" in line for line in logged)
    # chunks of at most 3 ids, out-of-vocabulary ids removed, rows with fewer than 2 ids dropped
    ids = {w: i for i, w in enumerate(vocab.words)}
    corpus = sorted(sorted(r) for part in read_corpus(tmp_path / "out" / "corpus") for r in part)
    chunks = [[t for t in seq[i:i + 3]] for seq in ([10, 20, 30, 10], [20, 10], [30, 20, 10, 7, 1 << 40], [10])
              for i in range(0, len(seq), 3)]
    want = [sorted(ids[str(t)] for t in c if str(t) in ids) for c in chunks]
    assert corpus == sorted(w for w in want if len(w) >= 2)

    spark.createDataFrame([([1.5, 2.5],)], "walk array<double>").write.parquet(str(tmp_path / "floats"))
    bad = cfg_for(tmp_path, "input.format=parquet", "input.tokens_column=walk", "output.overwrite=true",
                  inp=tmp_path / "floats")
    with pytest.raises(InputError, match=r"column 'walk' of input table .*floats has type array<double>; "
                                         r"input.tokens_column must name a column of type array<string>"):
        build_corpus(spark, bad, log=lambda *_: None)


def test_missing_empty_and_rare_inputs(spark, tmp_path):
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "nope.txt"))):
        build_corpus(spark, cfg_for(tmp_path, inp=tmp_path / "nope.txt"), log=lambda *_: None)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputError, match="empty"):
        build_corpus(spark, cfg_for(tmp_path, inp=tmp_path / "empty.txt"), log=lambda *_: None)
    (tmp_path / "nofiles").mkdir()
    with pytest.raises(InputError, match="holds no files"):
        build_corpus(spark, cfg_for(tmp_path, inp=tmp_path / "nofiles"), log=lambda *_: None)
    (tmp_path / "rare.txt").write_text("one two three two\n")
    with pytest.raises(VocabularyError, match="3 distinct words and the highest count is 2"):
        build_corpus(spark, cfg_for(tmp_path, "vocab.min_count=5", inp=tmp_path / "rare.txt"), log=lambda *_: None)
    with pytest.raises(ConfigError, match="vocab.token_pattern"):
        build_corpus(spark, cfg_for(tmp_path, "vocab.token_pattern=[a-", inp=tmp_path / "rare.txt"),
                     log=lambda *_: None)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_overwrite_rules_and_atomicity(spark, tmp_path):
    write_inputs(tmp_path)
    cfg = cfg_for(tmp_path)
    build_corpus(spark, cfg, log=lambda *_: None)
    before = read_corpus(tmp_path / "out" / "corpus")
    with pytest.raises(OutputExistsError, match="overwrite"):
        build_corpus(spark, cfg, log=lambda *_: None)
    # a run that fails after reading (no word reaches min_count) leaves the earlier output untouched
    failing = cfg_for(tmp_path, "vocab.min_count=1000", "output.overwrite=true")
    with pytest.raises(VocabularyError):
        build_corpus(spark, failing, log=lambda *_: None)
    assert read_corpus(tmp_path / "out" / "corpus") == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["corpus", "corpus_stats.json", "vocab"]
    # overwrite replaces it
    build_corpus(spark, cfg_for(tmp_path, "vocab.min_count=1", "output.overwrite=true"), log=lambda *_: None)
    assert read_corpus(tmp_path / "out" / "corpus") != before


def test_the_vocabulary_is_written_in_pieces_and_read_back_in_id_order(spark, tmp_path):
    import numpy as np

    from w2vspark.corpus import write_vocab
    from w2vspark.vocab import Vocabulary

    vocab = Vocabulary(tuple(f"w{i}" for i in range(10)), np.arange(100, 90, -1))
    write_vocab(spark, vocab, str(tmp_path / "run" / "vocab"), rows=3)
    assert len(list((tmp_path / "run" / "vocab").glob("*.parquet"))) == 4  # 3 + 3 + 3 + 1 rows
    back = read_vocab(spark, str(tmp_path / "run"))
    assert back.words == vocab.words and np.array_equal(back.counts, vocab.counts)
    counts = read_counts(spark, str(tmp_path / "run"))  # the counts alone, in the same id order
    assert len(counts) == 10 and counts.counts.dtype == np.int64 and np.array_equal(counts.counts, vocab.counts)


def test_the_vocabulary_is_numbered_in_spark_as_python_ranks_it(spark):
    """ranked_vocab_frame over several sorted partitions (ids continue from one partition to the next), with
    ties broken by the words' code points, min_count and max_vocab_size, against w2vspark.vocab.rank_counts."""
    import random

    from w2vspark.corpus import ranked_vocab_frame
    from w2vspark.vocab import rank_counts

    rng = random.Random(5)
    counts = {w: rng.randint(1, 9) for w in {"".join(rng.choice("abcé€😀Z") for _ in range(rng.randint(1, 4)))
                                             for _ in range(600)}}
    df = spark.createDataFrame(sorted(counts.items()), "word string, count long")
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        for extra, size in ((["vocab.min_count=3"], None), (["vocab.min_count=1", "vocab.max_vocab_size=50"], 50)):
            cfg = load_config(None, ["input.path=x", "output.dir=y", *extra])
            ranked, vocab_size, total = ranked_vocab_frame(df, cfg)
            assert ranked.rdd.getNumPartitions() > 1 or size  # the limit gathers its rows in one partition
            got = sorted((r["id"], r["word"], r["count"]) for r in ranked.collect())
            ranked.unpersist()
            want = rank_counts(counts, cfg.vocab.min_count, size)
            assert got == [(i, w, c) for i, (w, c) in enumerate(want)]
            assert (vocab_size, total) == (len(want), sum(c for _, c in want))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved)
