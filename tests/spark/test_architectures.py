"""CBOW and hierarchical softmax through the Spark trainer, the run folder and the Spark ML drop-in."""
from pathlib import Path

import numpy as np
import pytest

from w2vspark.corpus import read_vocab
from w2vspark.errors import UserError
from w2vspark.train.local import load_run_corpus, train_local
from w2vspark.ml import Word2Vec
from w2vspark.report import evaluate_run
from w2vspark.train.stage import train_on_spark

from ..unit.test_partition import planted_class_accuracy
from .test_training import planted_run, quiet, run_cfg  # noqa: F401  (the module fixture is shared)


def test_cbow_hs_on_spark_equals_local_and_resumes_only_with_the_same_architecture(spark, planted_run):
    root, words = planted_run
    arch = ["train.model=cbow", "train.loss=hierarchical_softmax", "train.num_partitions=2"]
    cfg = run_cfg(planted_run, "cbow_hs", *arch)
    model = train_on_spark(spark, cfg, **quiet)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, 2), read_vocab(spark, cfg.output.dir))
    assert np.array_equal(model.vectors, local.vectors)  # same tasks, same tree, same combining
    assert planted_class_accuracy(model, words) > 0.9  # chance 0.23
    run = Path(cfg.output.dir)
    assert not (run / "model" / "w_out").exists()  # inner-node rows are not word output vectors
    evaluate_run(spark, cfg, **quiet)
    text = (run / "report" / "report.md").read_text()
    assert "Architecture: CBOW with hierarchical softmax." in text and "| train.cbow_mean | True |" in text
    assert "train.num_negatives" not in text  # unused by hierarchical softmax
    # a checkpoint of one architecture is not resumed as another
    stopped = run_cfg(planted_run, "cbow_stop", *arch, "train.epochs=3")
    assert train_on_spark(spark, stopped, stop_after_epochs=1, **quiet) is None
    with pytest.raises(UserError, match="settings differ.*model"):
        train_on_spark(spark, run_cfg(planted_run, "cbow_stop", *arch[1:], "train.epochs=3", "train.resume=true"),
                       **quiet)


def test_drop_in_trains_mllibs_objective(spark):
    from ..unit.test_partition import _planted_corpus

    words, lines = _planted_corpus(sentences=400)
    df = spark.createDataFrame([(s,) for s in lines], ["tokens"])
    w2v = Word2Vec(vectorSize=16, windowSize=3, minCount=1, maxIter=2, stepSize=0.05, numPartitions=2, seed=3,
                   sample=0.0, batchPairs=128, inputCol="tokens", loss="hierarchical_softmax")
    assert w2v.getOrDefault("model") == "skipgram"
    cfg = w2v.setModel("cbow").setCbowMean(False)._to_config().train
    assert (cfg.model, cfg.cbow_mean, cfg.loss) == ("cbow", False, "hierarchical_softmax")
    model = w2v.setModel("skipgram").fit(df)
    assert planted_class_accuracy(model.wordVectors, words) > 0.9
    assert model._w_out is None  # nothing to continue from on the output side
    with pytest.raises(UserError, match="train.model"):
        Word2Vec(model="bag")._to_config()
