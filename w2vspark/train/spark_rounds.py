"""Training on Spark: the round runner (broadcast -> mapInArrow -> combine on the executors -> driver).

Each sync round the driver broadcasts (w_in, w_out) as float32 arrays; every task trains its partition's
slice with :func:`w2vspark.train.loop.run_task` and yields its touched rows cut into blocks of BLOCK_ROWS
consecutive row numbers, each block one Arrow row (row ids and float32 deltas as binary, never one cell per
word). A shuffle on (matrix, block) brings every partition's piece of a block to one executor task, which sums
them in partition order (:class:`w2vspark.train.combine.DeltaAccumulator`) and returns what the combining rules
need: U = sum of the deltas, sum of their squared norms, and how many partitions touched each row. The driver
receives about one model size per round whatever the number of partitions, and applies the rule.

In local mode the shuffle only moves bytes between processes of one machine, and its disk round trip and second
Python stage cost more than the sum itself: there (``train.sum_on``, :func:`sum_site`) the driver writes the
parameters to files that the tasks map, the tasks write their deltas to files and the driver sums them in the
same partition order (:mod:`w2vspark.train.file_exchange`), so the model is the same bit for bit.
"""
from __future__ import annotations

import itertools
import math
import os
import re
from typing import Iterator

import numpy as np
import pyarrow.compute as pc

from ..errors import InputError, UserError
from ..io.hadoop import HadoopFS, join
from .combine import BLOCK_ROWS, Combined, DeltaAccumulator
from .file_exchange import FileExchange, delta_path, load_params, read_deltas, write_deltas
from .loop import RoundSpec, TaskPlan, TaskReport, local_round, run_task
from .partitions import partition_for_training, slice_count
from .task import PartitionResult, native_step
from .traffic import RoundJobs, broadcast_size

# One schema for the tasks' output and for the combined blocks. kind "in"/"out": a block of rows of w_in/w_out
# (the tasks fill part, ids and total = their deltas; the combine step fills ids, total, square_sum, count);
# kind "stats": one task's report (block = part), with ``path`` = its delta file when the deltas go by files
# (:mod:`w2vspark.train.file_exchange`).
RESULT_SCHEMA = ("kind string, block int, part int, ids binary, total binary, square_sum binary, count binary, "
                 "loss double, pairs long, words long, seconds double, worker string, attempt int, path string")
RESULT_SCHEMA_NAMES = [f.strip().split(" ")[0] for f in RESULT_SCHEMA.split(",")]


def load_partitioned_corpus(spark, run_dir: str, num_partitions: int, syncs: int):
    """corpus/ of a run folder, partitioned for training and stored sorted by the slices of ``syncs`` rounds per
    epoch (see :func:`partition_for_training`)."""
    path = join(run_dir, "corpus")
    if not HadoopFS(spark).exists(path):
        raise InputError(f"no corpus at {path}: run jobs/build_vocab.py first with the same output.dir")
    return partition_for_training(spark, spark.read.parquet(path), num_partitions, syncs=syncs)


def arrow_sentences(list_array) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow list<int32> array -> (flat ids (N,) int32, offsets (S+1,) int64 starting at 0)."""
    offsets = list_array.offsets.to_numpy().astype(np.int64)
    values = list_array.values.to_numpy(zero_copy_only=False)
    flat = values[offsets[0]:offsets[-1]].astype(np.int32, copy=False)
    return flat, offsets - offsets[0]


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive values of a non-empty array."""
    cuts = np.flatnonzero(np.diff(values)) + 1
    return list(zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(values)].tolist()))


def _split_by_part(batches) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """Arrow batches (part, key, ids) sorted by part -> (part, (ids, offsets)) pieces."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        parts = batch.column("part").to_numpy()
        for lo, hi in _runs(parts):
            yield int(parts[lo]), arrow_sentences(batch.column("ids").slice(lo, hi - lo))


def _record(**values):
    """One Arrow row of RESULT_SCHEMA; missing fields are null."""
    import pyarrow as pa

    types = {"kind": pa.string(), "block": pa.int32(), "part": pa.int32(), "ids": pa.binary(), "total": pa.binary(),
             "square_sum": pa.binary(), "count": pa.binary(), "loss": pa.float64(), "pairs": pa.int64(),
             "words": pa.int64(), "seconds": pa.float64(), "worker": pa.string(), "attempt": pa.int32(),
             "path": pa.string()}
    return pa.RecordBatch.from_arrays([pa.array([values.get(name)], types[name]) for name in RESULT_SCHEMA_NAMES],
                                      names=RESULT_SCHEMA_NAMES)


def _report(part: int, res: PartitionResult, worker: str, attempt: int, path: str | None = None):
    return _record(kind="stats", block=part, part=part, loss=res.loss_sum, pairs=res.pairs, words=res.words,
                   seconds=res.seconds, worker=worker, attempt=attempt, path=path)


def block_cuts(ids: np.ndarray, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, int, int]]:
    """Ascending row ids cut at multiples of ``block_rows`` -> (block, lo, hi) of every non-empty piece."""
    if len(ids) == 0:
        return
    blocks = np.arange(ids[0] // block_rows, ids[-1] // block_rows + 1)
    cuts = np.searchsorted(ids, np.r_[blocks * block_rows, (blocks[-1] + 1) * block_rows])
    for block, lo, hi in zip(blocks.tolist(), cuts[:-1].tolist(), cuts[1:].tolist()):
        if hi > lo:
            yield block, lo, hi


def delta_blocks(res: PartitionResult, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[str, int, bytes, bytes]]:
    """A task's deltas cut at multiples of ``block_rows`` (row ids are ascending) -> (kind "in"/"out", block, row
    ids as int32 bytes, delta rows as float32 bytes) for every non-empty piece."""
    for kind, ids, delta in (("in", res.in_ids, res.in_delta), ("out", res.out_ids, res.out_delta)):
        for block, lo, hi in block_cuts(ids, block_rows):
            yield (kind, block, np.ascontiguousarray(ids[lo:hi], dtype=np.int32).tobytes(),
                   np.ascontiguousarray(delta[lo:hi], dtype=np.float32).tobytes())


def result_batches(part: int, res: PartitionResult, worker: str, attempt: int, block_rows: int = BLOCK_ROWS):
    """A task's deltas by block (:func:`delta_blocks`) as Arrow rows, then its report."""
    for kind, block, ids, total in delta_blocks(res, block_rows):
        yield _record(kind=kind, block=block, part=part, ids=ids, total=total)
    yield _report(part, res, worker, attempt)


def _delta_pieces(table, rows, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids (n,) int32, deltas (n, d) float32) of the given rows of a task-result table, in that order (views
    into the Arrow buffers, no copies)."""
    ids_col, total_col = table.column("ids"), table.column("total")
    for i in rows:
        ids = np.frombuffer(ids_col[i].as_buffer(), dtype=np.int32)
        yield ids, np.frombuffer(total_col[i].as_buffer(), dtype=np.float32).reshape(len(ids), dim)


def make_combine(dim: int, block_rows: int = BLOCK_ROWS):
    """The grouped-map function of the combine step: all partitions' pieces of one (kind, block) -> one row."""

    def combine_block(key, table):
        import pyarrow as pa

        kind, block = key[0].as_py(), key[1].as_py()
        if kind == "stats":
            return table
        acc = DeltaAccumulator(block_rows, dim, first=block * block_rows)
        order = np.argsort(table.column("part").to_numpy(), kind="stable")  # partition order: deterministic sums
        for ids, delta in _delta_pieces(table, order.tolist(), dim):
            acc.add(ids, delta)
        c = acc.combined(kind)
        batch = _record(kind=kind, block=block, ids=c.ids.tobytes(), total=c.total.tobytes(),
                        square_sum=c.square_sum.tobytes(), count=c.count.tobytes())
        return pa.Table.from_batches([batch])

    return combine_block


def worker_identity() -> str:
    """host, executor id and where the w2vspark code came from, for the task that calls it.

    A standalone executor runs its Python workers in .../app-ID/EXECUTOR_ID; in local mode there is no such
    folder ("driver"). ``code=shipped`` means the --py-files zip, ``code=installed`` a local installation;
    ``kernel=native`` the compiled minibatch step and scatter-add, ``kernel=numpy`` the numpy path (the same
    math; skip-gram's and CBOW's results equal up to float32 rounding, see :func:`w2vspark.train.task.skipgram_step`).
    """
    import os
    import socket

    import w2vspark

    cwd = os.getcwd()
    executor = os.path.basename(cwd) if os.path.basename(os.path.dirname(cwd)).startswith("app-") else "driver"
    origin = "shipped" if ".zip" in (w2vspark.__file__ or "") else "installed"
    kernel = "native" if native_step() else "numpy"
    return f"{socket.gethostname()}/executor={executor}/code={origin}/kernel={kernel}"


def make_task(spec: RoundSpec, plan_bc, params_bc, fail_first_attempt: bool = False, block_rows: int = BLOCK_ROWS,
              params_files: tuple[str, str] | None = None):
    """The mapInArrow function of one round. The parameters come from ``params_bc``, or with ``params_files``
    (local mode) from the round's .npy files; then the deltas go back by a file of the task's own too, and the
    task returns its report only (:mod:`w2vspark.train.file_exchange`)."""

    def task(batches):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if fail_first_attempt and ctx is not None and ctx.attemptNumber() == 0:
            raise RuntimeError("injected failure of a first task attempt (fault-injection test)")
        plan = plan_bc.value
        w_in, w_out = params_bc.value if params_files is None else load_params(*params_files)
        keep_probs, noise = plan.keep_probs(), plan.noise()
        worker = worker_identity()
        attempt = ctx.attemptNumber() if ctx is not None else 0
        pieces = _split_by_part(batches)
        for part, group in itertools.groupby(pieces, key=lambda item: item[0]):
            res = run_task((batch for _, batch in group), part, spec, plan, w_in, w_out, keep_probs, noise,
                           sliced=True)
            if params_files is None:
                yield from result_batches(part, res, worker, attempt, block_rows)
            else:
                path = delta_path(params_files[0], spec.index, part, attempt)
                write_deltas(path, res)
                yield _report(part, res, worker, attempt, path)

    return task


SUM_SITE_TEXT = {"executors": "deltas summed on the executors", "driver": "deltas summed on the driver",
                 "files": "parameters and deltas through local files, summed on the driver"}


def _start_worker(batches):
    """A warm-up task: its Python worker has imported this module to run it; the compiled helper loads too."""
    native_step()
    yield from ()


def start_python_workers(spark):
    """Start the executors' Python workers in the background (a thread running one tiny job of one task per
    core) and return the thread: the first Python task of an application waits for its worker to start and
    import pyarrow, numpy and w2vspark (measured 6.9 s for the first such job against 0.3 s for the next, local[2]),
    which would otherwise fall into the first training round. Started before the driver reads the vocabulary and
    partitions the corpus, it runs alongside that work; workers are reused by later tasks. A failure here is
    left to the first round to report."""
    import threading

    def run():
        sc = spark.sparkContext
        sc.setJobDescription("w2vspark train: start the Python workers")
        n = max(1, sc.defaultParallelism)
        try:
            spark.range(0, n, 1, n).mapInArrow(_start_worker, "id long").collect()
        except Exception:  # noqa: BLE001 - the first round runs the same code and reports its error
            pass

    thread = threading.Thread(target=run, name="w2vspark-start-workers", daemon=True)
    thread.start()
    return thread


def local_master(spark) -> bool:
    """True when the application runs in local mode (one process holds the driver and the tasks' block manager)."""
    return spark.sparkContext.getConf().get("spark.master", "").startswith("local")


def sum_site(spark, setting: str) -> str:
    """Where a round's deltas are summed, and how they get there: "executors" (the combine step of a shuffle),
    "driver" (every task's blocks collected) or "files" (the driver sums; parameters and deltas go through files,
    :mod:`w2vspark.train.file_exchange`). ``setting`` "executors" is kept as it is; "driver" is "files" when the
    master is local, else "driver"; "auto" is "files" when the master is local (one machine: the shuffle's disk
    round trip and second Python stage cost more than the driver summing, measured at 2 partitions, 95k x 100
    model: 0.7 s less per round, and files another 0.5 s less than broadcast and Arrow results), "executors"
    otherwise (on a cluster the driver's network link would carry partitions x the bytes). "driver" away from
    local mode needs every task's deltas together (at most partitions x the model) within
    spark.driver.maxResultSize."""
    if setting == "executors":
        return setting
    if local_master(spark):
        return "files"
    return "driver" if setting == "driver" else "executors"


def _task_reports(table) -> Iterator[TaskReport]:
    """The "stats" rows of a round's table -> TaskReport items in partition order."""
    kinds = table.column("kind").to_pylist()
    parts = table.column("part").to_pylist()
    for i in sorted((i for i, k in enumerate(kinds) if k == "stats"), key=lambda i: parts[i]):
        yield TaskReport(parts[i], *(table.column(name)[i].as_py() for name in ("loss", "pairs", "words", "seconds")))


def _summed_on_driver(table, num_rows: int, dim: int) -> Iterator[TaskReport | Combined]:
    """The tasks' own blocks (no combine step) -> TaskReport items, then one Combined item per matrix. Blocks are
    added in partition order, as the combine step adds them, so every row's sum is the same bit for bit."""
    yield from _task_reports(table)
    kinds = table.column("kind").to_pylist()
    parts = table.column("part").to_pylist()
    blocks = table.column("block").to_pylist()
    acc = {"in": DeltaAccumulator(num_rows, dim), "out": DeltaAccumulator(num_rows, dim)}
    order = sorted((i for i, k in enumerate(kinds) if k != "stats"), key=lambda i: (parts[i], blocks[i]))
    for i, (ids, delta) in zip(order, _delta_pieces(table, order, dim)):
        acc[kinds[i]].add(ids, delta)
    yield acc["in"].combined("in")
    yield acc["out"].combined("out")


def _summed_from_files(table, exchange: FileExchange, w_in: np.ndarray, w_out: np.ndarray
                       ) -> Iterator[TaskReport | Combined]:
    """As :func:`w2vspark.train.loop.local_round`, for tasks whose deltas came by files (each read, added, then
    removed): the same additions in the same partition order."""
    reports = {r.part: r for r in _task_reports(table)}
    paths = dict(zip(table.column("part").to_pylist(), table.column("path").to_pylist()))

    def results() -> Iterator[tuple[int, PartitionResult]]:
        for part in sorted(reports):
            in_ids, in_delta, out_ids, out_delta = read_deltas(paths[part])
            exchange.withdraw([paths[part]])
            r = reports[part]
            yield part, PartitionResult(in_ids, in_delta, out_ids, out_delta, r.loss_sum, r.pairs, r.words, r.seconds)

    yield from local_round(results(), w_in, w_out)


def _table_to_items(table, dim: int) -> Iterator[TaskReport | Combined]:
    """The round's combined table -> TaskReport items (partition order), then Combined blocks (views into the
    Arrow buffers, no copies)."""
    yield from _task_reports(table)
    kinds = table.column("kind").to_pylist()
    columns = {name: table.column(name) for name in ("ids", "total", "square_sum", "count")}
    for i, kind in enumerate(kinds):
        if kind == "stats":
            continue
        raw = {name: col[i].as_buffer() for name, col in columns.items()}
        ids = np.frombuffer(raw["ids"], dtype=np.int32)
        yield Combined(kind, ids, np.frombuffer(raw["total"], dtype=np.float32).reshape(len(ids), dim),
                       np.frombuffer(raw["square_sum"], dtype=np.float64), np.frombuffer(raw["count"], dtype=np.int32))


class SparkRoundRunner:
    """Runs one sync round on Spark: a RoundRunner for :func:`w2vspark.train.loop.fit`.

    ``corpus_df`` comes from :func:`w2vspark.train.partitions.partition_for_training` with ``syncs`` = the
    rounds' S (its ``sync`` column). ``sum_on``:
    "executors" (the combine step), "driver" (the tasks' blocks collected), or "files" (local mode only:
    parameters and deltas through the files of a :class:`w2vspark.train.file_exchange.FileExchange` in
    ``exchange_dir``, the driver sums)."""

    def __init__(self, spark, corpus_df, plan: TaskPlan, fail_first_attempt_round: int | None = None,
                 block_rows: int = BLOCK_ROWS, sum_on: str = "executors", exchange_dir: str | None = None):
        if sum_on not in ("executors", "driver", "files"):
            raise ValueError(f"sum_on must be 'executors', 'driver' or 'files' (resolve 'auto' with sum_site), "
                             f"not {sum_on!r}")
        self.corpus_syncs = slice_count(corpus_df)  # S the corpus was stored sorted by
        if not self.corpus_syncs:
            raise ValueError("the corpus has no sync column: partition it with partition_for_training(..., syncs=S)")
        self.spark = spark
        self.sum_on = sum_on
        self.exchange = FileExchange(exchange_dir) if sum_on == "files" else None
        self.block_rows = block_rows
        self.corpus = corpus_df
        self.plan_bc = spark.sparkContext.broadcast(plan)
        self.fail_round = fail_first_attempt_round
        self.workers: set[str] = set()  # worker_identity() of every task that delivered a result
        self.retried_tasks = 0  # results that came from a second or later attempt
        self.plan_bytes = broadcast_size(self.plan_bc, plan.counts.nbytes)  # counted with the first round run
        self.traffic: dict | None = None  # bytes moved by the last round (TRAFFIC_KEYS), for its metrics record

    def corpus_slice(self, spec: RoundSpec):
        """The sentences of a round's slice (row mod S = sync), in row order: the filter on the ``sync`` column
        reads only the slice's own cached batches (Spark's in-memory partition pruning)."""
        from pyspark.sql import functions as F

        if spec.syncs_per_epoch != self.corpus_syncs:
            raise ValueError(f"round {spec.index} has {spec.syncs_per_epoch} syncs per epoch, but the corpus was "
                             f"stored sorted by {self.corpus_syncs} slices")
        return self.corpus.filter(F.col("sync") == F.lit(spec.sync)).select("part", "key", "ids")

    def __call__(self, spec: RoundSpec, w_in: np.ndarray, w_out: np.ndarray):
        sc = self.spark.sparkContext
        sc.setJobDescription(f"w2vspark train: epoch {spec.epoch + 1}, round {spec.sync + 1}/{spec.syncs_per_epoch}")
        self.traffic = None
        if self.exchange is None:
            params_bc, files = sc.broadcast((w_in, w_out)), None
            broadcast = broadcast_size(params_bc, w_in.nbytes + w_out.nbytes) + self.plan_bytes
        else:
            params_bc, (*files, broadcast) = None, self.exchange.publish(spec.index, w_in, w_out)
            broadcast += self.plan_bytes
        task = make_task(spec, self.plan_bc, params_bc, fail_first_attempt=(spec.index == self.fail_round),
                         block_rows=self.block_rows, params_files=files)
        try:
            with RoundJobs(sc) as jobs:
                # the round's slice is selected in the JVM: Python receives 1/S of the partition, not all of it
                pieces = self.corpus_slice(spec).mapInArrow(task, RESULT_SCHEMA)
                if self.sum_on in ("driver", "files"):
                    table = pieces.toArrow()
                else:
                    # one combine task per (matrix, block) group set; toArrow streams the result to this process
                    # (DataFrame.toLocalIterator was measured to keep every round's rows alive in the driver JVM)
                    blocks = 2 * math.ceil(len(w_in) / self.block_rows)
                    table = (pieces.repartition(max(1, min(sc.defaultParallelism, blocks)), "kind", "block")
                             .groupBy("kind", "block")
                             .applyInArrow(make_combine(w_in.shape[1], self.block_rows), RESULT_SCHEMA)
                             .toArrow())
        finally:
            if params_bc is not None:
                params_bc.destroy(blocking=True)
            else:
                self.exchange.withdraw(files)
            sc.setJobDescription(None)
        self.plan_bytes = 0  # the plan is broadcast once, with the first round
        self.traffic = {"broadcast_bytes": broadcast, **jobs.bytes()}
        if self.exchange is not None:  # the delta files count as sent to the driver
            self.traffic["driver_bytes"] = (self.traffic["driver_bytes"] or 0) + sum(
                os.path.getsize(p) for p in table.column("path").to_pylist() if p is not None)
        stats = table.filter(pc.equal(table.column("kind"), "stats"))
        for worker, attempt in zip(stats.column("worker").to_pylist(), stats.column("attempt").to_pylist()):
            self.workers.add(worker)
            self.retried_tasks += attempt > 0
        if self.sum_on == "files":
            yield from _summed_from_files(table, self.exchange, w_in, w_out)
        elif self.sum_on == "driver":
            yield from _summed_on_driver(table, *w_in.shape)
        else:
            yield from _table_to_items(table, w_in.shape[1])

    def close(self) -> None:
        self.plan_bc.destroy()
        if self.exchange is not None:
            self.exchange.close()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)b?\s*$", re.IGNORECASE)


def parse_memory(text: str) -> int:
    """'2g', '512m', '1024k' (Spark's JVM memory strings) -> bytes; a plain number is MiB as in Spark."""
    m = _SIZE.match(str(text))
    if not m:
        raise UserError(f"cannot read the memory setting {text!r}")
    unit = m.group(2).lower()
    scale = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[unit]
    return int(float(m.group(1)) * scale)


SPARK_BASELINE = 300 << 20  # heap that Spark itself uses before any w2vspark data


WORD_BYTES = 64  # driver JVM heap per vocabulary word with the parameters on the executors (counts, words table)


def check_memory(spark, vocab_size: int, dim: int, on_executors: bool = False) -> dict:
    """Refuse to start when the model cannot fit. With the parameters on the driver, the driver JVM holds one
    serialized broadcast of the model and the round's combined rows (about another model), and every executor
    a broadcast copy and its tasks' result blocks. With the parameters on the executors the driver holds the
    vocabulary only, and the executors together about four models (the current blocks, the guard's two
    rollback points, a round's combined deltas) plus their tasks' rows: checked when
    spark.executor.instances is set."""
    model_bytes = 2 * vocab_size * dim * 4
    conf = spark.sparkContext.getConf()
    driver = parse_memory(conf.get("spark.driver.memory", "1g"))
    need_driver = SPARK_BASELINE + (WORD_BYTES * vocab_size if on_executors else 3 * model_bytes)
    mb = 1 << 20
    if need_driver > driver:
        hint = "" if on_executors else ", or hold the parameters on the executors (train.params_on=executors)"
        raise UserError(
            f"the model (2 x {vocab_size} words x {dim} dims x 4 bytes = {model_bytes / mb:.0f} MiB) needs about "
            f"{need_driver / mb:.0f} MiB of driver memory but spark.driver.memory is {driver / mb:.0f} MiB: raise "
            f"spark.driver.memory (e.g. --driver-memory {math.ceil(need_driver / (1 << 30))}g), or lower "
            f"train.dim / vocab.max_vocab_size{hint}")
    if not local_master(spark):
        executor = parse_memory(conf.get("spark.executor.memory", "1g"))
        instances = int(conf.get("spark.executor.instances", "0") or 0)
        if on_executors:
            need_executor = SPARK_BASELINE + 4 * model_bytes // max(instances, 1) if instances else 0
        else:
            need_executor = SPARK_BASELINE + 2 * model_bytes
        if need_executor > executor:
            raise UserError(
                f"the model ({model_bytes / mb:.0f} MiB) needs about {need_executor / mb:.0f} MiB per executor but "
                f"spark.executor.memory is {executor / mb:.0f} MiB: raise spark.executor.memory "
                f"(--executor-memory), or lower train.dim / vocab.max_vocab_size")
    return {"model_bytes": model_bytes, "driver_memory": driver}
