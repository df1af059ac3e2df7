"""train.init_model through the jobs and the Spark ML drop-in: ids kept, new words appended, output vectors
carried over, word2vec files as a start, bit-for-bit reruns."""
import json

import numpy as np
import pytest

from w2vspark.config import load_config
from w2vspark.continued import read_start_model
from w2vspark.corpus import build_corpus, read_vocab
from w2vspark.errors import UserError
from w2vspark.export import word2vec_binary
from w2vspark.ml import Word2Vec
from w2vspark.io.model_files import load_model
from w2vspark.train.stage import train_on_spark

from ..unit.test_continued import _topic_corpus

quiet = dict(log=lambda *_: None)
TRAIN = ["train.dim=8", "train.window=3", "train.sample=0", "train.lr=0.05", "train.batch_pairs=128",
         "train.epochs=1", "train.num_partitions=2", "train.syncs_per_epoch=2", "vocab.min_count=1",
         "train.checkpoint_every=0"]


@pytest.fixture(scope="module")
def first_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("continued")
    for name, topics, seed in (("a", [0, 1, 2], 1), ("b", [1, 2, 3], 2)):
        (root / f"{name}.txt").write_text("\n".join(" ".join(s) for s in _topic_corpus(topics, 200, seed)) + "\n")
    cfg = load_config(None, [f"input.path={root / 'a.txt'}", f"output.dir={root / 'a'}", *TRAIN])
    build_corpus(spark, cfg, **quiet)
    model = train_on_spark(spark, cfg, **quiet)
    return root, model


def _continue(spark, root, start, name, *extra):
    cfg = load_config(None, [f"input.path={root / 'b.txt'}", f"output.dir={root / name}", f"train.init_model={start}",
                             "output.overwrite=true", *TRAIN, *extra])
    stats = build_corpus(spark, cfg, **quiet)
    return stats, train_on_spark(spark, cfg, **quiet)


def test_continue_from_a_model_folder(spark, first_run):
    root, first = first_run
    start = read_start_model(spark, str(root / "a" / "model"))
    assert start.w_out is not None and start.w_out.any() and start.counts is not None  # saved beside the model
    stats, model = _continue(spark, root, root / "a" / "model", "b")
    assert model.words[:len(first.words)] == first.words  # known words keep their ids
    assert sorted(model.words[len(first.words):]) == [f"dd{chr(97 + i)}" for i in range(10)]
    assert (stats["known_words"], stats["known_words_in_corpus"], stats["new_words"]) == (30, 20, 10)
    vocab = read_vocab(spark, str(root / "b"))
    # counts add up: a topic-0 word (absent from b) keeps its count from a; a topic-1 word gains b's
    assert vocab.counts[first.words.index("aaa")] == first.counts[first.words.index("aaa")]
    assert vocab.counts[first.words.index("bba")] > first.counts[first.words.index("bba")]
    # a word absent from b is never trained: its vector is the start's, unchanged
    i = first.words.index("aaa")
    assert np.array_equal(model.vectors[i], first.vectors[i]) and not np.array_equal(model.vectors, first.vectors[:1])
    _, again = _continue(spark, root, root / "a" / "model", "b")
    assert np.array_equal(again.vectors, model.vectors)  # bit for bit
    saved = json.loads((root / "b" / "corpus_stats.json").read_text())
    assert saved["init_model"] == str(root / "a" / "model") and saved["new_words"] == 10


def test_continue_from_a_word2vec_file_and_mismatches(spark, first_run, tmp_path):
    root, first = first_run
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"".join(word2vec_binary(load_model(spark, str(root / "a" / "model")))))
    stats, model = _continue(spark, root, path, "from_bin")
    assert model.words[:30] == first.words and stats["new_words"] == 10
    i = first.words.index("aaa")
    assert np.array_equal(model.vectors[i], first.vectors[i])
    cfg = load_config(None, [f"output.dir={root / 'from_bin'}", f"train.init_model={path}", "output.overwrite=true",
                             *TRAIN, "train.dim=4"])
    with pytest.raises(UserError, match="train.dim=4 but the model to continue from .* has 8 dimensions"):
        train_on_spark(spark, cfg, **quiet)
    cfg = load_config(None, [f"input.path={root / 'b.txt'}", f"output.dir={tmp_path / 'x'}",
                             f"train.init_model={tmp_path / 'missing'}", *TRAIN])
    with pytest.raises(UserError, match="train.init_model not found: .*missing"):
        build_corpus(spark, cfg, **quiet)


def test_drop_in_initial_model(spark, first_run, tmp_path):
    root, first = first_run
    df = spark.createDataFrame([(s,) for s in _topic_corpus([1, 2, 3], 100, 5)], ["tokens"])
    w2v = Word2Vec(vectorSize=8, minCount=1, seed=1, inputCol="tokens", outputCol="v", batchPairs=128,
                   initialModel=str(root / "a" / "model"))
    model = w2v.fit(df)
    assert model.wordVectors.words[:30] == first.words and len(model.wordVectors) == 40
    model.save(str(tmp_path / "m"))
    start = read_start_model(spark, str(tmp_path / "m"))  # the drop-in's folder carries its output vectors too
    assert start.w_out is not None and start.w_out.shape == (40, 8) and start.w_out.any()
