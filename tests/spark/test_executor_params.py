"""Parameters held on the executors (train.params_on=executors): the same model bit for bit as with the
parameters on the driver, written by the executors, resumable, and rows rather than matrices on the move."""
from pathlib import Path

import numpy as np
import pytest

from w2vspark.corpus import read_vocab
from w2vspark.io.model_files import load_model
from w2vspark.train.local import load_run_corpus, train_local
from w2vspark.train.stage import train_on_spark

from .test_training import planted_run, quiet, run_cfg  # noqa: F401 - the module's fixture

EXEC = "train.params_on=executors"


@pytest.mark.parametrize("partitions, extra", [(2, ()), (3, ("train.model=cbow",)),
                                               (2, ("train.loss=hierarchical_softmax",))])
def test_the_model_is_the_one_trained_on_the_driver(spark, planted_run, partitions, extra):  # noqa: F811
    name = f"exec-{partitions}-{'-'.join(e.split('=')[1] for e in extra)}"
    cfg = run_cfg(planted_run, name, f"train.num_partitions={partitions}", EXEC, *extra)
    assert train_on_spark(spark, cfg, **quiet) is None  # the model is on storage only
    saved = load_model(spark, str(Path(cfg.output.dir) / "model"))
    vocab = read_vocab(spark, cfg.output.dir)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, partitions), vocab)
    assert saved.words == list(vocab.words) and np.array_equal(saved.counts, vocab.counts)
    assert np.array_equal(saved.vectors, local.vectors)  # bit for bit
