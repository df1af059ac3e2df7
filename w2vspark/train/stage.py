"""Stage 2 on Spark: train on vocab/ + corpus/ of a run folder; write metrics, checkpoints and the model."""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Callable

from ..config import Config, negative_group_for, sequential_for
from ..continued import word_outputs
from ..corpus import read_counts, read_vocab, vocab_size
from ..errors import UserError
from ..io.atomic import OutputExistsError
from ..io.hadoop import HadoopFS, join
from ..io.model_files import (blocks_table, list_checkpoints, load_checkpoint, read_checkpoint_state, save_model,
                              write_checkpoint, write_metrics, write_model_folder)
from ..model import Word2VecModel, model_info, spark_metadata
from ..report import health_warnings, untrained_loss
from .file_exchange import exchange_root
from .executor_params import (ExecutorParameters, blocks_from_arrays, blocks_from_checkpoint, initial_blocks,
                              write_blocks, write_vectors_from_blocks)
from .loop import DriverParameters, GuardState, fit_store, format_progress, format_rollback, round_specs, task_plan
from .spark_rounds import (SUM_SITE_TEXT, SparkRoundRunner, check_memory, load_partitioned_corpus, local_master,
                          start_python_workers, sum_site)
from .traffic import traffic_line

NAIVE_SOFTMAX_WARN_VOCAB = 20_000
# settings that a resumed run must share with the run that wrote the checkpoint
_RESUME_KEYS = ("model", "cbow_mean", "dim", "window", "num_negatives", "negative_group", "ns_exponent",
                "shrink_windows", "sample", "lr", "min_lr", "epochs", "loss", "batch_pairs", "step", "damping",
                "num_partitions", "syncs_per_epoch", "combine", "task_lr_scale", "max_step", "rollback_ratio", "seed",
                "init_model")

# keys added to _RESUME_KEYS later, with the value that older checkpoints were trained with
_ADDED_KEYS = {"ns_exponent": 0.75, "shrink_windows": True, "init_model": "", "model": "skipgram",
               "cbow_mean": True, "negative_group": 1, "step": "minibatch"}


class _Stop(Exception):
    pass


def _fingerprint(cfg: Config, vocab_size: int) -> dict:
    train = dataclasses.asdict(cfg.train)
    train["negative_group"] = negative_group_for(cfg.train)  # 0 (auto) as the value it resolves to
    train["step"] = "sequential" if sequential_for(cfg.train) else "minibatch"  # likewise "auto"
    return {"vocab_size": vocab_size, **{k: train[k] for k in _RESUME_KEYS}}


def params_site(spark, cfg: Config, vocab_size: int) -> tuple[str, str | None]:
    """Where the parameters live (``train.params_on``, "auto" resolved) and, when "auto" chose the executors, why.

    "auto" keeps them on the driver (the faster side on one machine, docs/cost_model.md) unless the driver's
    memory check refuses the model; then they go to the executors, if the settings allow it (no step limit, not
    the full softmax) and the executors' check passes; otherwise the driver's refusal stands."""
    t = cfg.train
    if t.params_on != "auto":
        return t.params_on, None
    try:
        check_memory(spark, vocab_size, t.dim)
        return "driver", None
    except UserError as refused:
        if t.max_step > 0 or t.loss == "naive_softmax":
            raise
        check_memory(spark, vocab_size, t.dim, on_executors=True)
        return "executors", f"the driver cannot hold the model ({refused}); the parameters go to the executors"


def check_model_size(spark, cfg: Config, vocab_size: int, on_executors: bool = False) -> None:
    """Fail before training when the model cannot fit; warn when the full softmax will be slow."""
    t = cfg.train
    if t.loss == "hierarchical_softmax" and vocab_size < 2:
        raise UserError(f"train.loss=hierarchical_softmax needs a vocabulary of at least 2 words, this one has "
                        f"{vocab_size}; lower vocab.min_count or use neg_sampling")
    if t.loss == "naive_softmax" and vocab_size > NAIVE_SOFTMAX_WARN_VOCAB:
        print(f"warning: train.loss=naive_softmax scores all {vocab_size} words for every pair (about "
              f"{vocab_size * t.dim * 6:,} flops per pair, {vocab_size // (t.num_negatives + 1)}x negative "
              f"sampling's cost); neg_sampling is the practical choice for vocabularies this large", file=sys.stderr)
    check_memory(spark, vocab_size, t.dim, on_executors=on_executors)


def train_partitioned(spark, cfg: Config, vocab, corpus, w_in, w_out, start_round: int = 0,
                      on_round: Callable[[dict], None] | None = None, on_epoch_end=None,
                      fail_first_attempt_round: int | None = None, log: Callable[[str], None] = print,
                      on_rollback: Callable[[dict], None] | None = None, guard: GuardState | None = None) -> None:
    """Run the sync rounds from ``start_round`` on ``corpus`` (from :func:`partition_for_training`), updating
    (w_in, w_out) in place; ``on_epoch_end(epoch, w_in, w_out, guard)``."""
    t = cfg.train
    runner = SparkRoundRunner(spark, corpus, task_plan(cfg, vocab), fail_first_attempt_round,
                              sum_on=sum_site(spark, t.sum_on), exchange_dir=exchange_root(spark))
    store = DriverParameters(runner, w_in, w_out, snapshots=t.rollback_ratio > 0)
    _train_store(spark, cfg, vocab, corpus, store, runner, SUM_SITE_TEXT[runner.sum_on], start_round, on_round,
                 None if on_epoch_end is None else (lambda epoch, view, g: on_epoch_end(epoch, *view, g)),
                 log, on_rollback, guard)


def train_on_executors(spark, cfg: Config, vocab, corpus, blocks, start_round: int = 0,
                       on_round: Callable[[dict], None] | None = None, on_epoch_end=None,
                       fail_first_attempt_round: int | None = None, log: Callable[[str], None] = print,
                       on_rollback: Callable[[dict], None] | None = None,
                       guard: GuardState | None = None) -> ExecutorParameters:
    """The same with the parameters held on the executors, starting from ``blocks``
    (:mod:`w2vspark.train.executor_params`); ``on_epoch_end(epoch, blocks, guard)``. Returns the store, whose
    ``blocks`` hold the trained parameters."""
    t = cfg.train
    store = ExecutorParameters(spark, corpus, task_plan(cfg, vocab), blocks, len(vocab), t.dim,
                               param_partitions(spark, 8 * len(vocab) * t.dim), t.num_partitions,
                               fail_first_attempt_round, replicas=block_replicas(spark, t.params_replicas, log))
    _train_store(spark, cfg, vocab, corpus, store, store, "parameters held on the executors", start_round, on_round,
                 on_epoch_end, log, on_rollback, guard)
    return store


def block_replicas(spark, setting: int, log: Callable[[str], None] = print) -> int:
    """Copies of each parameter block (``train.params_replicas``): one in local mode (one block manager: there is
    no other executor to lose or to copy to), else the setting; a warning when fewer executors have registered
    than copies are asked for (Spark then keeps fewer)."""
    if local_master(spark):
        if setting > 1:
            log(f"train.params_replicas={setting}: local mode has one block manager, the blocks are kept once")
        return 1
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # block managers but the driver's
    if setting > max(executors, 1):
        log(f"warning: train.params_replicas={setting} but {executors} executors have registered: Spark keeps at most "
            f"one copy per executor")
    return setting


PARAM_PARTITION_BYTES = 64 << 20  # parameter bytes per partition of blocks, at most (about; whole blocks)


def param_partitions(spark, model_bytes: int) -> int:
    """How many partitions hold the parameter blocks: one per core of the application (spark.default.parallelism),
    more when that would put more than PARAM_PARTITION_BYTES in one (a Python task holds a partition's blocks
    while it serves or updates them)."""
    return max(1, spark.sparkContext.defaultParallelism, math.ceil(model_bytes / PARAM_PARTITION_BYTES))


def _train_store(spark, cfg: Config, vocab, corpus, store, runner, where: str, start_round, on_round, on_epoch_end,
                 log, on_rollback, guard) -> None:
    from pyspark.sql import functions as F

    t = cfg.train
    spark.sparkContext.setJobDescription("w2vspark train: load and count the corpus")
    corpus_words = int(corpus.agg(F.sum(F.size("ids"))).first()[0] or 0)
    if corpus_words == 0:
        raise UserError("the corpus is empty: no sentence has two words of the vocabulary")
    specs = round_specs(t, corpus_words, t.num_partitions)
    log(f"training: {len(vocab)} words x {t.dim} dims, {corpus_words} corpus words, {t.num_partitions} partitions, "
        f"{t.epochs} epochs x {t.syncs()} syncs, combine={t.combine}, model={t.model}, loss={t.loss}, {where}")
    done = []
    t0 = time.perf_counter()
    try:
        fit_store(t, store, specs, start_round,
                  on_round=lambda r: (done.append(r), on_round(r) if on_round else None),
                  on_epoch_end=on_epoch_end, on_rollback=on_rollback, guard=guard)
    finally:
        runner.close()
    seconds = time.perf_counter() - t0
    words = sum(r["words"] for r in done)
    log(f"trained in {seconds:.1f}s: {words / max(seconds, 1e-9) / 1000:.1f}k words/s overall")
    log(f"tasks ran on: {', '.join(sorted(runner.workers))}")
    mixed = mixed_kernels(runner.workers)
    if mixed:
        log(mixed)
    moved = traffic_line(done)
    if moved:
        log(moved)
    if runner.retried_tasks:
        log(f"{runner.retried_tasks} task(s) succeeded on a retry after a failed attempt")


def mixed_kernels(workers) -> str | None:
    """A warning when some tasks ran the compiled kernel and others the numpy one (``kernel=`` of
    :func:`w2vspark.train.spark_rounds.worker_identity`), else None: their skip-gram and CBOW results agree to float32
    rounding only, so a task retried on the other kind of executor can change the model's last bits."""
    kinds = {w.rsplit("kernel=", 1)[-1] for w in workers if "kernel=" in w}
    if len(kinds) < 2:
        return None
    return ("warning: tasks ran both the compiled and the numpy kernel (" + ", ".join(sorted(kinds)) + "): the "
            "model is not bit-reproducible across retries; build w2vspark_native on every executor or ship it "
            "(spark-submit.sh does)")


def start_params(spark, cfg: Config, vocab, log: Callable[[str], None] = print):
    """(w_in, w_out) to start from: word2vec.c's random start, or the rows of ``train.init_model``."""
    from ..continued import initial_params, read_start_model

    t = cfg.train
    if not t.init_model:
        return initial_params(vocab, None, t.dim, t.seed)
    start = read_start_model(spark, t.init_model)
    outputs = start.w_out is not None and word_outputs(t.loss)
    log(f"continuing from {t.init_model}: {len(start.words)} known words"
        f"{'' if outputs else ' (input vectors only: output vectors start at zero)'}, "
        f"{len(vocab) - len(start.words)} new")
    return initial_params(vocab, start, t.dim, t.seed, t.loss)


def train_on_spark(spark, cfg: Config, log: Callable[[str], None] = print,
                   stop_after_epochs: int | None = None,
                   fail_first_attempt_round: int | None = None) -> Word2VecModel | None:
    """Train and write ``model/`` under ``output.dir``; returns the model (None when the run stopped early, or
    when the parameters were held on the executors: the model is then only on storage).

    ``stop_after_epochs`` ends the run early (after that epoch's checkpoint), as an interruption would;
    ``fail_first_attempt_round`` makes every task of that round fail its first attempt (fault-injection tests).
    """
    t = cfg.train
    fs = HadoopFS(spark)
    run = cfg.output.dir
    model_uri, ckpt_uri, metrics_uri = join(run, "model"), join(run, "checkpoints"), join(run, "metrics.jsonl")
    if not t.resume and not cfg.output.overwrite:
        for uri in (model_uri, ckpt_uri):
            if fs.exists(uri):
                raise OutputExistsError(f"{uri} already exists; use --resume to continue the run or set "
                                        f"output.overwrite=true to start again")
    workers = start_python_workers(spark)  # while the vocabulary is read and the corpus partitioned
    V, P = vocab_size(spark, run), t.num_partitions
    site, why = params_site(spark, cfg, V)
    on_executors = site == "executors"
    # the words for the driver's model or to match a start model's; otherwise only the counts reach the driver
    vocab = read_vocab(spark, run) if not on_executors or t.init_model else read_counts(spark, run)
    if why:
        log(why)
    check_model_size(spark, cfg, V, on_executors)

    fingerprint = _fingerprint(cfg, V)
    start_round, records, guard = 0, [], GuardState()
    checkpoints = list_checkpoints(spark, ckpt_uri) if t.resume else []
    blocks = w_in = w_out = None
    block_parts = param_partitions(spark, 8 * V * t.dim)
    if checkpoints:
        epoch, uri = checkpoints[-1]
        state = read_checkpoint_state(spark, uri)
        saved = {**_ADDED_KEYS, **state["fingerprint"]}  # checkpoints written before a key existed
        differ = {k: (saved.get(k), v) for k, v in fingerprint.items() if saved.get(k) != v}
        if differ:
            raise UserError(f"cannot resume from {uri}: settings differ from the checkpoint's (checkpoint, now): "
                            f"{differ}")
        if on_executors:
            blocks = blocks_from_checkpoint(spark, join(uri, "params"), V, t.dim, block_parts)
        else:
            w_in, w_out, _ = load_checkpoint(spark, uri, V, t.dim)
        start_round, records = state["next_round"], state["metrics"]
        guard = GuardState(**state.get("guard", {}))
        log(f"resuming from {uri} (epoch {epoch}, round {start_round})")
    else:
        if t.resume:
            log(f"no complete checkpoint under {ckpt_uri}: training from the start")
        for uri in (ckpt_uri, metrics_uri):
            fs.delete(uri)
        if on_executors and not t.init_model:
            blocks = initial_blocks(spark, V, t.dim, t.seed, block_parts)
        else:
            w_in, w_out = start_params(spark, cfg, vocab, log)
            if on_executors:  # a continued run's start is built on the driver, then handed to the executors
                blocks = blocks_from_arrays(spark, w_in, w_out, block_parts)
                w_in = w_out = None

    def on_round(record: dict) -> None:
        records.append(record)
        log(format_progress(record))
        write_metrics(spark, metrics_uri, records)

    def on_rollback(event: dict) -> None:
        # the rounds from the resume round on are trained again: their records go, the event stays
        records[:] = [r for r in records if "event" in r or r["round"] < event["resume_round"]]
        records.append(event)
        log(format_rollback(event))
        write_metrics(spark, metrics_uri, records)

    def on_epoch_end(epoch: int, view, guard: GuardState) -> None:
        done = epoch + 1
        last = done == t.epochs
        if t.checkpoint_every and (done % t.checkpoint_every == 0) and not last:
            next_round = done * t.syncs()  # with the guard, the next round's record already exists: not saved
            state = {"next_round": next_round, "fingerprint": fingerprint, "guard": guard.to_dict(),
                     "metrics": [r for r in records if "event" in r or r["round"] <= next_round]}
            write_checkpoint(spark, ckpt_uri, done, params_writer(spark, view, V, t.dim), state)
        if stop_after_epochs is not None and done >= stop_after_epochs and not last:
            raise _Stop()

    corpus = load_partitioned_corpus(spark, run, P, syncs=t.syncs(P))
    workers.join()
    try:
        if on_executors:
            store = train_on_executors(spark, cfg, vocab, corpus, blocks, start_round, on_round, on_epoch_end,
                                       fail_first_attempt_round, log, on_rollback, guard)
        else:
            train_partitioned(spark, cfg, vocab, corpus, w_in, w_out, start_round, on_round,
                              lambda epoch, w_in, w_out, g: on_epoch_end(epoch, (w_in, w_out), g),
                              fail_first_attempt_round, log, on_rollback, guard)
    except _Stop:
        log(f"stopped after epoch {stop_after_epochs}; continue with --resume")
        return None
    finally:
        corpus.unpersist()
    for line in health_warnings(records, untrained_loss(t)):
        log(line)
    if guard.rollbacks:
        log(f"warning: the run diverged and was rolled back {guard.rollbacks} time(s); it finished with the task "
            f"learning rate at {guard.lr_scale:g} x the configured one (metrics.jsonl has the events); a lower "
            f"train.lr or train.task_lr_scale avoids the lost rounds")
    if on_executors:
        started = time.perf_counter()
        save_model_from_blocks(spark, store.blocks, vocab, cfg, model_uri, with_w_out=word_outputs(t.loss))
        store.release()
        log(f"model written to {model_uri} by the executors in {time.perf_counter() - started:.1f} s")
        return None
    model = Word2VecModel(vocab.words, w_in, vocab.counts, cfg.to_dict())
    save_model(spark, model, model_uri, overwrite=True, w_out=w_out if word_outputs(t.loss) else None)
    log(f"model written to {model_uri}")
    return model


def params_writer(spark, view, vocab_size: int, dim: int) -> Callable[[str], None]:
    """A checkpoint's params/ writer for a store's view: the driver's (w_in, w_out) or the executors' blocks."""
    if isinstance(view, tuple):
        w_in, w_out = view
        return lambda uri: spark.createDataFrame(blocks_table(w_in, w_out)).write.parquet(uri)
    return lambda uri: write_blocks(spark, view, uri, vocab_size, dim)


def save_model_from_blocks(spark, blocks, vocab, cfg: Config, uri: str, with_w_out: bool) -> None:
    """The model folder written by the executors from the parameter blocks and the run's vocab/ (the driver
    holds only the counts for w2vspark.json)."""
    dim, config = cfg.train.dim, cfg.to_dict()
    vocab_df = spark.read.parquet(join(cfg.output.dir, "vocab")).select("id", "word")

    def vectors(tmp: str) -> None:
        write_vectors_from_blocks(spark, blocks, vocab_df, len(vocab), join(tmp, "data"), "w_in", dim)
        if with_w_out:
            write_vectors_from_blocks(spark, blocks, vocab_df, len(vocab), join(tmp, "w_out"), "w_out", dim)

    write_model_folder(spark, uri, spark_metadata(dim, config), model_info(dim, len(vocab), vocab.counts, config),
                       vectors, overwrite=True)
