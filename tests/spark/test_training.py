"""Stage 2 on Spark: equality with the local trainer, the combining rule, determinism under retries, resume,
divergence, the memory check and quality on planted classes."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from w2vspark.config import load_config
from w2vspark.corpus import build_corpus, read_vocab
from w2vspark.errors import UserError
from w2vspark.train.local import load_run_corpus, train_local
from w2vspark.train.partitions import partition_for_training
from w2vspark.io.model_files import list_checkpoints, load_model
from w2vspark.train.spark_rounds import SparkRoundRunner, check_memory, load_partitioned_corpus
from w2vspark.train.loop import (RoundSpec, TrainingDiverged, apply_round, init_params, round_specs, run_task,
                                 task_plan)
from w2vspark.train.stage import train_on_spark

from ..unit.test_partition import _planted_corpus, planted_class_accuracy

quiet = dict(log=lambda *_: None)
TRAIN = ["train.dim=16", "train.window=3", "train.sample=0", "train.lr=0.05", "train.batch_pairs=128",
         "train.epochs=2", "train.syncs_per_epoch=2", "vocab.min_count=1"]


@pytest.fixture(scope="module")
def planted_run(spark, tmp_path_factory):
    """A run folder with vocab/ and corpus/ of the planted-class corpus."""
    root = tmp_path_factory.mktemp("planted")
    words, lines = _planted_corpus(sentences=600)
    (root / "in.txt").write_text("\n".join(" ".join(s) for s in lines) + "\n")
    cfg = load_config(None, [f"input.path={root / 'in.txt'}", f"output.dir={root / 'base'}", *TRAIN])
    build_corpus(spark, cfg, **quiet)
    return root, words


def run_cfg(planted_run, name, *extra):
    root, _ = planted_run
    target = root / name
    if not target.exists():  # each run gets its own folder holding a copy of the corpus stage's output
        import shutil
        shutil.copytree(root / "base", target)
    return load_config(None, [f"output.dir={target}", *TRAIN, *extra])


def test_one_partition_equals_the_local_trainer(spark, planted_run):
    cfg = run_cfg(planted_run, "p1", "train.num_partitions=1")
    model = train_on_spark(spark, cfg, **quiet)
    vocab = read_vocab(spark, cfg.output.dir)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, 1), vocab)
    assert np.array_equal(model.vectors, local.vectors)  # bit for bit: same tasks, same combining
    saved = load_model(spark, str(Path(cfg.output.dir) / "model"))
    assert np.array_equal(saved.vectors, model.vectors) and saved.words == list(vocab.words)


@pytest.mark.parametrize("partitions, sum_on", [(2, "executors"), (2, "driver"), (5, "auto")])
def test_several_partitions_also_equal_local(spark, planted_run, partitions, sum_on):
    # the deltas summed by the combine step or on the driver: the same sums in the same order, bit for bit
    cfg = run_cfg(planted_run, f"p{partitions}-{sum_on}", f"train.num_partitions={partitions}", "train.epochs=1",
                  f"train.sum_on={sum_on}")
    model = train_on_spark(spark, cfg, **quiet)
    local = train_local(cfg, load_run_corpus(cfg.output.dir, partitions), read_vocab(spark, cfg.output.dir))
    assert np.array_equal(model.vectors, local.vectors)


@pytest.mark.parametrize("partitions", [2, 3, 8])
def test_each_logical_partition_is_alone_in_its_spark_partition(spark, partitions):
    from pyspark.sql import functions as F

    encoded = spark.range(0, 400).select(F.col("id").alias("key"), F.array(F.lit(1), F.lit(2)).alias("ids"))
    df = partition_for_training(spark, encoded, partitions, persist=False)
    rows = df.select("part", "row", F.spark_partition_id().alias("physical")).collect()
    assert {(r.part, r.physical) for r in rows} == {(p, p) for p in range(partitions)}  # balanced tasks
    for p in range(partitions):  # rows numbered 0.. within each partition: the round slices' row mod S
        assert sorted(r.row for r in rows if r.part == p) == list(range(sum(r.part == p for r in rows)))


def test_a_corpus_stored_by_slice_gives_each_round_the_same_rows_in_the_same_order(spark, planted_run):
    """partition_for_training with syncs = S stores each partition sorted by slice: the runner's filter on the
    slice number yields exactly the rows (and their order) of the modulo filter on the row number."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    S = 3
    encoded = spark.range(0, 300).select((F.col("id") * 7919 % 1000).alias("key"),
                                         F.array(F.col("id").cast("int"), F.lit(5)).alias("ids"))
    by_row = partition_for_training(spark, encoded, 2, persist=False)
    by_slice = partition_for_training(spark, encoded, 2, syncs=S).persist(StorageLevel.MEMORY_ONLY)
    with pytest.raises(ValueError, match="needs its row numbers"):
        partition_for_training(spark, encoded, 2, numbered=False, syncs=S)
    try:
        assert "sync" in by_slice.columns and "sync" not in by_row.columns
        cfg = run_cfg(planted_run, "slices")
        runner = SparkRoundRunner(spark, by_slice, task_plan(cfg, read_vocab(spark, cfg.output.dir)))
        assert runner.corpus_syncs == S
        try:
            for sync in range(S):
                spec = RoundSpec(index=sync, epoch=0, sync=sync, syncs_per_epoch=S, lr_start=0.025,
                                 lr_end=0.025, planned_words=1)
                got = [tuple(r) for r in runner.corpus_slice(spec).collect()]
                expected = [(r.part, r.key, r.ids) for r in
                            by_row.filter(F.col("row") % S == sync).select("part", "key", "ids").collect()]
                assert got == expected and len(got) == 100
            other = RoundSpec(index=0, epoch=0, sync=0, syncs_per_epoch=S + 1, lr_start=0.025, lr_end=0.025,
                              planned_words=1)
            with pytest.raises(ValueError, match="4 syncs per epoch, but the corpus was stored sorted by 3"):
                runner.corpus_slice(other)  # another S would select other rows
        finally:
            runner.close()
        with pytest.raises(ValueError, match="no sync column"):
            SparkRoundRunner(spark, by_row, task_plan(cfg, read_vocab(spark, cfg.output.dir)))
    finally:
        by_slice.unpersist()


@pytest.mark.parametrize("rule, block_rows, max_step, sum_on", [
    ("average", 8192, 0, "executors"), ("sum", 8192, 0, "executors"), ("scaled_row", 7, 0, "executors"),
    ("scaled", 8192, 0, "executors"), ("scaled", 7, 0, "executors"), ("scaled", 7, 0.3, "executors"),
    ("scaled_row", 7, 0, "driver"), ("scaled", 7, 0.3, "driver"), ("scaled", 7, 0.3, "files")])
def test_round_update_is_the_rule_applied_by_hand(spark, planted_run, rule, block_rows, max_step, sum_on):
    """The executors' block-wise combining (or the driver's sum of the tasks' blocks) + the driver's rule (and
    step limit) = the rule applied by hand to the partitions' deltas (computed here in-process: a task is a pure
    function of its inputs)."""
    cfg = run_cfg(planted_run, "rule", "train.num_partitions=3", f"train.combine={rule}")
    vocab = read_vocab(spark, cfg.output.dir)
    plan = task_plan(cfg, vocab)
    corpus = load_partitioned_corpus(spark, cfg.output.dir, 3, cfg.train.syncs(3))
    w_in, w_out = init_params(len(vocab), 16, 1)
    w_out += 0.01  # non-zero, so that the input vectors move too
    spec = round_specs(cfg.train, 5000, 3)[0]
    got_in, got_out = w_in.copy(), w_out.copy()
    try:
        runner = SparkRoundRunner(spark, corpus, plan, block_rows=block_rows, sum_on=sum_on)  # 7: uneven cuts
        stats = apply_round(runner(spec, w_in, w_out), got_in, got_out, rule, max_step)
        if runner.exchange is not None:  # every file of the round was removed once read
            assert os.listdir(runner.exchange.dir) == []
        runner.close()
        assert runner.exchange is None or not os.path.exists(runner.exchange.dir)
    finally:
        corpus.unpersist()
    results = [run_task([part], p, spec, plan, w_in, w_out) for p, part in
               enumerate(load_run_corpus(cfg.output.dir, 3))]
    assert stats.words == sum(r.words for r in results) > 0
    shortened = 0
    for name, w, got, ids_of, delta_of in (("in", w_in, got_in, "in_ids", "in_delta"),
                                           ("out", w_out, got_out, "out_ids", "out_delta")):
        dense = np.zeros((3,) + w.shape)
        for p, res in enumerate(results):
            dense[p, getattr(res, ids_of)] = getattr(res, delta_of)
        touched = (np.abs(dense).sum(axis=2) > 0).sum(axis=0)  # n(r)
        total = dense.sum(axis=0)
        if rule == "sum":
            expected = total
        elif rule == "average":
            expected = total / np.maximum(touched, 1)[:, None]
        else:
            sq = (dense ** 2).sum(axis=(0, 2))
            norm = (total ** 2).sum(axis=1)
            if rule == "scaled":  # pooled over bands floor(4 log2(id + 1)) of the touched rows
                band = np.floor(4 * np.log2(np.arange(len(w)) + 1.0)).astype(int)
                sq, norm = (np.bincount(band, weights=x * (touched > 0))[band] for x in (sq, norm))
            f = np.where(norm > 0, sq / np.where(norm > 0, norm, 1), 1.0)
            expected = total * np.clip(f, 1 / np.maximum(touched, 1), 1)[:, None]
        if max_step:  # rows moved by several tasks: at most max_step x max(min(length, 4 typical), typical)
            rows = touched > 0
            length, step = np.linalg.norm(w, axis=1), np.linalg.norm(expected, axis=1)
            typical = max(np.median(length[rows]), np.median(step[rows]))
            limit = max_step * np.maximum(np.minimum(length, 4 * typical), typical)
            cut = rows & (touched > 1) & (step > limit)
            expected[cut] *= (limit[cut] / step[cut])[:, None]
            shortened += int(cut.sum())
        assert np.allclose(got - w, expected, atol=1e-6), name
        assert (touched > 1).sum() > 0  # rows really were shared between partitions
        assert np.abs(expected).max() > 1e-4  # and really moved
    assert stats.shortened_rows == shortened and (shortened > 0) == (max_step > 0)


@pytest.mark.parametrize("sum_on", ["executors", "driver", "files"])
def test_a_rounds_traffic_is_what_it_broadcast_shuffled_and_collected(spark, planted_run, sum_on):
    """A round's metrics name the bytes it moved: the parameters broadcast (plus the task plan in the first
    round run), the tasks' deltas shuffled to the combine step and the combined rows collected to the driver, or
    with the sum on the driver nothing shuffled and every task's deltas collected; the caller's job group is
    left as it was."""
    cfg = run_cfg(planted_run, "traffic", "train.num_partitions=3")
    vocab = read_vocab(spark, cfg.output.dir)
    plan = task_plan(cfg, vocab)
    corpus = load_partitioned_corpus(spark, cfg.output.dir, 3, cfg.train.syncs(3))
    w_in, w_out = init_params(len(vocab), 16, 1)
    w_out += 0.01
    specs = round_specs(cfg.train, 5000, 3)
    sc = spark.sparkContext
    sc.setLocalProperty("spark.jobGroup.id", "caller")
    try:
        runner = SparkRoundRunner(spark, corpus, plan, sum_on=sum_on)
        traffic = []
        for spec in specs[:2]:
            apply_round(runner(spec, w_in.copy(), w_out.copy()), w_in.copy(), w_out.copy(), "scaled")
            traffic.append(runner.traffic)
        runner.close()
        assert sc.getLocalProperty("spark.jobGroup.id") == "caller"
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        corpus.unpersist()
    model_bytes = w_in.nbytes + w_out.nbytes
    results = [run_task([part], p, specs[1], plan, w_in, w_out) for p, part in
               enumerate(load_run_corpus(cfg.output.dir, 3))]
    row_bytes = 4 + 4 * 16  # an int32 id and a float32 row
    deltas = sum((len(r.in_ids) + len(r.out_ids)) * row_bytes for r in results)
    if sum_on == "files":  # two .npy files of the parameters (a 128-byte header each); every task's rows in a
        # file of four .npy arrays, and its report through Spark (a task result of 13 kB measured: the report row
        # with Spark's task metrics and accumulators)
        assert traffic[1]["broadcast_bytes"] == model_bytes + 2 * 128
        assert traffic[1]["shuffle_bytes"] == 0
        assert deltas + 4 * 128 * 3 < traffic[1]["driver_bytes"] < deltas + 4 * 128 * 3 + 20_000 * 3
        return
    # a pickle of two float32 arrays: their bytes plus a header of a few hundred bytes; the plan's counts
    # (V int64) come once, with the first round
    assert model_bytes < traffic[1]["broadcast_bytes"] < model_bytes + 1024
    assert traffic[0]["broadcast_bytes"] > traffic[1]["broadcast_bytes"] + plan.counts.nbytes
    if sum_on == "driver":  # the tasks' rows as they are, no shuffle
        assert traffic[1]["shuffle_bytes"] == 0
        # every result row (a block of one matrix, or a task's report) carries its 13 columns' Arrow buffers:
        # a few kB each besides the deltas (measured 4.4 kB; 3 partitions x 2 blocks + 3 reports here)
        records = sum((len(r.in_ids) > 0) + (len(r.out_ids) > 0) + 1 for r in results)
        assert deltas <= traffic[1]["driver_bytes"] < deltas + 8192 * records
        return
    # Spark writes them as rows with a few binary cells each, lz4-compressed (float noise compresses little)
    assert 0.5 * deltas < traffic[1]["shuffle_bytes"] < 2 * deltas + 4096
    combined = sum(len(np.unique(np.concatenate([getattr(r, ids) for r in results]))) for ids in ("in_ids", "out_ids"))
    # each combined row: id, total (d float32), squared norm (float64) and count (int32)
    assert traffic[1]["driver_bytes"] >= combined * (row_bytes + 8 + 4)


def test_deterministic_across_runs_and_task_retries(spark, planted_run):
    first = train_on_spark(spark, run_cfg(planted_run, "det1", "train.num_partitions=2"), **quiet)
    second = train_on_spark(spark, run_cfg(planted_run, "det2", "train.num_partitions=2"), **quiet)
    lines = []
    retried = train_on_spark(spark, run_cfg(planted_run, "det3", "train.num_partitions=2"),
                             fail_first_attempt_round=1, log=lines.append)
    assert "2 task(s) succeeded on a retry after a failed attempt" in lines  # the fault really happened
    assert np.array_equal(first.vectors, second.vectors)
    assert np.array_equal(first.vectors, retried.vectors)


def test_resume_is_bit_identical(spark, planted_run):
    full = train_on_spark(spark, run_cfg(planted_run, "full", "train.num_partitions=2", "train.epochs=3"), **quiet)
    cfg = run_cfg(planted_run, "resumed", "train.num_partitions=2", "train.epochs=3")
    assert train_on_spark(spark, cfg, stop_after_epochs=1, **quiet) is None
    ckpts = list_checkpoints(spark, str(Path(cfg.output.dir) / "checkpoints"))
    assert [e for e, _ in ckpts] == [1]
    with pytest.raises(UserError, match="--resume"):
        train_on_spark(spark, cfg, **quiet)  # refuses to start again over the checkpoints
    resumed_cfg = run_cfg(planted_run, "resumed", "train.num_partitions=2", "train.epochs=3", "train.resume=true")
    resumed = train_on_spark(spark, resumed_cfg, **quiet)
    assert np.array_equal(full.vectors, resumed.vectors)
    metrics = [json.loads(l) for l in (Path(cfg.output.dir) / "metrics.jsonl").read_text().splitlines()]
    assert [m["round"] for m in metrics] == list(range(1, 7))
    # local mode sums the deltas on the driver: nothing is shuffled
    assert all(m["broadcast_bytes"] > 0 and m["shuffle_bytes"] == 0 and m["driver_bytes"] > 0 for m in metrics)
    # both tasks trained a slice: the fastest and the slowest task's time bracket a positive range
    assert all(0 < m["min_task_seconds"] <= m["max_task_seconds"] < m["seconds"] for m in metrics)
    changed = run_cfg(planted_run, "resumed", "train.num_partitions=2", "train.epochs=3", "train.resume=true",
                      "train.lr=0.01")
    (Path(cfg.output.dir) / "model").rename(Path(cfg.output.dir) / "model.done")
    with pytest.raises(UserError, match="settings differ"):
        train_on_spark(spark, changed, **quiet)


def test_divergence_names_the_round_and_keeps_the_checkpoint(spark, planted_run):
    # plain minibatch SGD: the damping sizes every row's step by a bound of its curvature, which keeps even this
    # learning rate finite
    cfg = run_cfg(planted_run, "nan", "train.num_partitions=2", "train.epochs=3", "train.lr=1e30",
                  "train.min_lr=1e30", "train.damping=false")
    with pytest.raises(TrainingDiverged, match=r"round \d+ \(epoch \d"):
        train_on_spark(spark, cfg, **quiet)
    assert not (Path(cfg.output.dir) / "model").exists()


def test_memory_check_names_the_setting(spark):
    with pytest.raises(UserError, match="spark.driver.memory"):
        check_memory(spark, 50_000_000, 300)
    assert check_memory(spark, 1000, 10)["model_bytes"] == 80_000


@pytest.mark.parametrize("partitions", [1, 4])
def test_planted_classes_on_spark(spark, planted_run, partitions):
    _, words = planted_run
    cfg = run_cfg(planted_run, f"q{partitions}", f"train.num_partitions={partitions}", "train.epochs=3")
    model = train_on_spark(spark, cfg, **quiet)
    # chance is 7/31 = 0.23
    assert planted_class_accuracy(model, words) > 0.9


def test_loss_falls_on_the_demo_corpus(spark, tmp_path):
    import gzip
    root = Path(__file__).parents[2]
    with gzip.open(root / "data" / "kjv.txt.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(6000)]  # Genesis to Numbers: a sixth of the corpus
    (tmp_path / "kjv.txt").write_text("".join(lines))
    cfg = load_config(root / "conf" / "demo.toml", [f"input.path={tmp_path / 'kjv.txt'}",
                                                    f"output.dir={tmp_path / 'run'}", "train.dim=32",
                                                    "train.epochs=3", "train.syncs_per_epoch=2"])
    build_corpus(spark, cfg, **quiet)
    train_on_spark(spark, cfg, **quiet)
    losses = [json.loads(l)["loss"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


@pytest.fixture(scope="module")
def dense_run(spark, tmp_path_factory):
    """A run folder with vocab/ and corpus/ of a small dense-vocabulary corpus (315 words, 40k tokens)."""
    from w2vspark.synthetic import planted_classes

    root = tmp_path_factory.mktemp("dense")
    data = planted_classes(tokens=40_000, seed=0)
    (root / "in.txt").write_text("\n".join(" ".join(s) for s in data.sentences) + "\n")
    cfg = load_config(None, [f"input.path={root / 'in.txt'}", f"output.dir={root / 'base'}", "vocab.min_count=1",
                             r"vocab.token_pattern=\S+"])
    build_corpus(spark, cfg, **quiet)
    return root, data


def test_a_rollback_on_spark_is_logged_and_the_model_equals_the_local_trainers(spark, dense_run):
    """Plain minibatch SGD (damping and step limit off) at twice the default learning rate diverges on this corpus;
    the guard rolls back, and the run ends with the model the in-process trainer gives (bit for bit)."""
    import shutil

    from w2vspark.synthetic import class_purity

    root, data = dense_run
    shutil.copytree(root / "base", root / "roll")
    # task_lr_scale 2 (the default before it became min(P, 4)): one rollback and then learning; at 4 x the
    # undamped run needs two (in-process, round-robin partitions: purity 0.39 after two, 0.69 after one)
    cfg = load_config(None, [f"output.dir={root / 'roll'}", "vocab.min_count=1", "train.dim=16", "train.epochs=2",
                             "train.num_partitions=4", "train.damping=false", "train.max_step=0", "train.lr=0.05",
                             "train.task_lr_scale=2"])
    lines = []
    model = train_on_spark(spark, cfg, log=lines.append)
    records = [json.loads(line) for line in (root / "roll" / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in records if "event" in r]
    assert len(events) >= 1 and events[0]["lr_scale"] == 0.5
    assert any("rolled back to the start of round" in line for line in lines)
    assert any(line.startswith("warning: the run diverged and was rolled back") for line in lines)
    rounds = [r["round"] for r in records if "event" not in r]
    assert rounds == list(range(1, len(rounds) + 1))  # the undone rounds' records are gone, each round once
    local_events = []
    local = train_local(cfg, load_run_corpus(cfg.output.dir, 4), read_vocab(spark, cfg.output.dir),
                        on_rollback=local_events.append)
    assert np.array_equal(model.vectors, local.vectors)
    assert [e["round"] for e in local_events] == [e["round"] for e in events]
    # it learned after the rollback: chance is 1/12; this small run (40k tokens, 2 epochs) ends near 0.7
    assert class_purity(model.words, model.vectors, data.labels) > 0.5
