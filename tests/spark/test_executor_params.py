"""Parameters held on the executors (train.params_on=executors): the same model bit for bit as with the
parameters on the driver, written by the executors, resumable, and rows rather than matrices on the move."""
import json
from pathlib import Path

import numpy as np
import pytest

from w2vspark.config import load_config
from w2vspark.corpus import read_vocab
from w2vspark.errors import UserError
from w2vspark.io.model_files import list_checkpoints, load_model
from w2vspark.train.local import load_run_corpus, train_local
from w2vspark.train.stage import train_on_spark

from .test_training import dense_run, planted_run, quiet, run_cfg  # noqa: F401 - the module's fixtures

EXEC = "train.params_on=executors"


@pytest.mark.parametrize("partitions, extra", [(2, ()), (3, ("train.model=cbow",)),
                                               (2, ("train.loss=hierarchical_softmax",))])
def test_the_model_is_the_one_trained_on_the_driver(spark, planted_run, partitions, extra, monkeypatch
                                                    ):  # noqa: F811
    """Bit for bit the in-process trainer's model (w_in, and w_out when saved), written by the executors as
    several part files (DATA_FILE_BYTES made small: about 10 rows each), which Spark's loader, the local
    (pyarrow) loader and Spark ML's Word2VecModel read in row order. In the skip-gram run every task of round 1
    fails its first attempt: the retries give the same model."""
    from pyspark.ml.feature import Word2VecModel as MLlibModel

    from w2vspark.io.model_files import load_output_vectors
    from w2vspark.model import Word2VecModel
    from w2vspark.train import executor_params, stage
    from w2vspark.train.loop import init_params

    monkeypatch.setattr(executor_params, "DATA_FILE_BYTES", 800)  # 10 rows of d 16
    # the driver reads the vocabulary's counts, never its words
    monkeypatch.setattr(stage, "read_vocab", lambda *_: pytest.fail("the train job read the words"))
    name = f"exec-{partitions}-{'-'.join(e.split('=')[1] for e in extra)}"
    cfg = run_cfg(planted_run, name, f"train.num_partitions={partitions}", EXEC, *extra)
    lines = []
    assert train_on_spark(spark, cfg, fail_first_attempt_round=None if extra else 1, log=lines.append) is None
    monkeypatch.undo()
    assert ("2 task(s) succeeded on a retry after a failed attempt" in lines) == (not extra)  # the fault happened
    uri = Path(cfg.output.dir) / "model"
    saved = load_model(spark, str(uri))
    vocab = read_vocab(spark, cfg.output.dir)
    w_in, w_out = init_params(len(vocab), cfg.train.dim, cfg.train.seed)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, partitions), vocab, params=(w_in, w_out))
    assert saved.words == list(vocab.words) and np.array_equal(saved.counts, vocab.counts)
    assert np.array_equal(saved.vectors, local.vectors)  # bit for bit
    assert len(list((uri / "data").glob("part-*.parquet"))) >= 3
    assert np.array_equal(Word2VecModel.load(uri).vectors, local.vectors)
    saved_out = load_output_vectors(spark, str(uri), vocab.words)
    assert saved_out is None if "hierarchical_softmax" in "".join(extra) else np.array_equal(saved_out, w_out)
    if not extra:
        mllib = {r["word"]: r["vector"].toArray() for r in MLlibModel.load(str(uri)).getVectors().collect()}
        assert len(mllib) == len(vocab.words) and all(
            np.array_equal(mllib[w], local.vectors[i].astype(np.float64)) for i, w in enumerate(vocab.words))


def test_resume_from_the_executors_checkpoint_on_either_side(spark, planted_run):  # noqa: F811
    import shutil

    three = ("train.num_partitions=2", "train.epochs=3")
    cfg = run_cfg(planted_run, "exec-resume", *three, EXEC)
    assert train_on_spark(spark, cfg, stop_after_epochs=1, **quiet) is None
    ckpts = list_checkpoints(spark, str(Path(cfg.output.dir) / "checkpoints"))
    assert [e for e, _ in ckpts] == [1]  # written by the executors, in the checkpoint layout
    driver_dir = Path(cfg.output.dir).with_name("exec-resume-on-driver")
    shutil.copytree(cfg.output.dir, driver_dir)
    train_on_spark(spark, run_cfg(planted_run, "exec-resume", *three, EXEC, "train.resume=true"), **quiet)
    on_driver = train_on_spark(spark, run_cfg(planted_run, driver_dir.name, *three, "train.resume=true"), **quiet)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, 2), read_vocab(spark, cfg.output.dir))
    resumed = load_model(spark, str(Path(cfg.output.dir) / "model"))
    assert np.array_equal(resumed.vectors, local.vectors) and np.array_equal(on_driver.vectors, local.vectors)
    metrics = [json.loads(line) for line in (Path(cfg.output.dir) / "metrics.jsonl").read_text().splitlines()]
    assert [m["round"] for m in metrics] == list(range(1, 7))
    # the plan is broadcast once per run (the first round of each of the two runs), the parameters never
    assert [m["broadcast_bytes"] > 0 for m in metrics] == [True, False, True, False, False, False]
    assert all(m["broadcast_bytes"] < 20_000 and m["shuffle_bytes"] > 0 for m in metrics)


def test_rollbacks_give_the_drivers_model(spark, dense_run):  # noqa: F811
    """The divergent run of test_training's rollback test: the same rollbacks and the same model."""
    import shutil

    root, _ = dense_run
    shutil.copytree(root / "base", root / "exec-roll")
    cfg = load_config(None, [f"output.dir={root / 'exec-roll'}", "vocab.min_count=1", "train.dim=16",
                             "train.epochs=2", "train.num_partitions=4", "train.damping=false", "train.lr=0.05",
                             "train.task_lr_scale=2", EXEC])
    train_on_spark(spark, cfg, **quiet)
    records = [json.loads(line) for line in (root / "exec-roll" / "metrics.jsonl").read_text().splitlines()]
    events = [r["round"] for r in records if "event" in r]
    local_events = []
    local = train_local(cfg, load_run_corpus(cfg.output.dir, 4), read_vocab(spark, cfg.output.dir),
                        on_rollback=local_events.append)
    assert len(events) >= 1 and events == [e["round"] for e in local_events]
    assert np.array_equal(load_model(spark, str(root / "exec-roll" / "model")).vectors, local.vectors)


def test_the_memory_check_counts_the_vocabulary_only_on_the_driver(spark):
    from w2vspark.train.spark_rounds import check_memory

    # 2M IDs x 64 dims = 1 GiB of parameters: too much for this 2g driver to hold three times, nothing for its
    # vocabulary
    with pytest.raises(UserError, match="train.params_on=executors"):
        check_memory(spark, 2_000_000, 64)
    assert check_memory(spark, 2_000_000, 64, on_executors=True)["model_bytes"] == 1_024_000_000
    with pytest.raises(UserError, match="spark.driver.memory"):
        check_memory(spark, 50_000_000, 64, on_executors=True)  # 50M words' strings and counts


def test_settings_that_need_the_parameters_on_the_driver_are_refused():
    from w2vspark.config import ConfigError

    for extra in ("train.max_step=0.5", "train.loss=naive_softmax"):
        with pytest.raises(ConfigError, match="train.params_on=executors"):
            load_config(None, ["input.path=x", "output.dir=y", EXEC, extra])


def test_lost_parameter_blocks_name_the_way_back(spark, planted_run):  # noqa: F811
    """With the parameters only on the executors, losing the blocks (an executor gone; here: unpersisted) ends
    the round with a message that says to resume, not with Spark's trace."""
    from w2vspark.train.executor_params import ExecutorLost, ExecutorParameters, initial_blocks
    from w2vspark.train.loop import round_specs, task_plan
    from w2vspark.train.spark_rounds import load_partitioned_corpus

    cfg = run_cfg(planted_run, "exec-lost", "train.num_partitions=2", EXEC)
    vocab = read_vocab(spark, cfg.output.dir)
    corpus = load_partitioned_corpus(spark, cfg.output.dir, 2, syncs=cfg.train.syncs(2))
    store = ExecutorParameters(spark, corpus, task_plan(cfg, vocab), initial_blocks(spark, len(vocab), 16, 1, 2),
                               len(vocab), 16, 2, 2)
    try:
        spec = round_specs(cfg.train, 1000, 2)[0]
        assert store.run(spec, "scaled", 0.0, 0.5).stats.pairs > 0
        store.blocks.unpersist()
        with pytest.raises(ExecutorLost, match="--resume.*train.params_replicas=2"):
            store.run(spec, "scaled", 0.0, 0.5)
    finally:
        store.close()
        corpus.unpersist()


def test_local_mode_keeps_one_copy_of_the_blocks(spark):
    """Local mode has one block manager: a second copy has nowhere to go (Spark would warn for every block), so
    train.params_replicas > 1 is logged and kept at 1; a cluster test loses a worker with 2 copies."""
    from w2vspark.train.stage import block_replicas

    lines = []
    assert block_replicas(spark, 2, lines.append) == 1
    assert "train.params_replicas=2" in lines[0] and "kept once" in lines[0]
    assert block_replicas(spark, 1, lines.append) == 1 and len(lines) == 1


def test_auto_keeps_small_models_on_the_driver_and_sends_large_ones_to_the_executors(spark):
    from w2vspark.train.stage import params_site

    def cfg(*extra):
        return load_config(None, ["input.path=x", "output.dir=y", "train.dim=64", *extra])

    assert params_site(spark, cfg(), 100_000) == ("driver", None)
    site, why = params_site(spark, cfg(), 2_000_000)  # 1 GB of parameters, a 2g driver
    assert site == "executors" and "spark.driver.memory" in why
    assert params_site(spark, cfg("train.params_on=driver"), 100_000) == ("driver", None)
    with pytest.raises(UserError, match="spark.driver.memory"):  # the step limit needs the driver: refused
        params_site(spark, cfg("train.max_step=0.5"), 2_000_000)

