"""Training with the parameters held on the executors (``train.params_on = "executors"``).

The rows of w_in and w_out live on the executors as blocks of BLOCK_ROWS consecutive rows in a keyed RDD
(key = matrix x blocks + block; value = first row, float32 bytes), hash-partitioned by key and stored on the
executors' local disks; every round's new blocks are cut from their lineage (a local checkpoint) and keep the
partitioning, so that a co-group with data partitioned the same way (:func:`co_group`) moves the data to the
blocks and never the blocks. An executor lost takes its blocks with it: with ``replicas`` > 1 copies of every
block (and of the corpus's slices) stay on other executors and Spark runs the lost tasks again from them; with
one copy the run stops (:class:`ExecutorLost`: resume from a checkpoint). The corpus is kept the same way, one
record per (training partition, round slice), so that the training step moves only the rows. The driver never
holds the parameters: per round it receives the tasks' reports, per block the ``scaled`` rule's band sums and
the count of non-finite rows, and decides (rule, guard, checkpoints) from those.

A round is four steps:

1. **rows asked**: every task replays its slice's random draws (:func:`w2vspark.train.task.task_rows`) and
   lists the rows it will read and move, cut by block; the lists go to the blocks' partitions;
2. **rows served**: a co-group with the blocks gives each list its rows, which go to the task's partition;
3. **training**: a co-group with the corpus brings a task its slice and its rows; it trains on just those rows
   (the same bits as on the whole matrices) and returns its deltas cut by block, which go to the blocks'
   partitions;
4. **combine and apply**: each block's deltas are summed in partition order (as on the driver), the driver
   pools the band sums into the rule's agreement, and a co-group with the blocks applies the rule where the
   rows live.

Per round the traffic is the tasks' rows twice (served, then their deltas) and their row lists, whatever the
model's size. The model is the same bit for bit as with the parameters on the driver (same task draws, same
partition order of every sum, same float32 operations), and so are checkpoints and resumes.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from ..model import vector_column
from .combine import (BLOCK_ROWS, Combined, DeltaAccumulator, add_rows, band_agreement, band_partials, block_factors,
                      scale_rows, sum_band_partials)
from .loop import RoundResult, RoundSpec, RoundStats, TaskPlan
from .spark_rounds import arrow_sentences, block_cuts, delta_blocks, worker_identity
from .task import PartitionResult, task_rng, task_rows, train_partition
from .traffic import RoundJobs, broadcast_size

_MATRICES = ("w_in", "w_out")
_KIND = {"in": "w_in", "out": "w_out"}  # the tasks' delta kinds (w2vspark.train.spark_rounds.delta_blocks)
DATA_FILE_BYTES = 128 << 20  # a model's data/ and w_out/ in part files of about this many bytes of rows


# ---------------------------------------------------------------- the parameter blocks
def initial_block(seed: int, dim: int, vocab_size: int, matrix: str, block: int,
                  block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Rows block x block_rows .. of word2vec.c's start, equal bit for bit to the same rows of
    :func:`w2vspark.train.loop.init_params` (V, d): w_in's uniform numbers are one stream of float32 draws,
    two per 64-bit output of PCG64, so the block's first draw is output block x block_rows x d / 2 (an integer:
    block_rows is even) and the stream is advanced there; w_out starts at zero."""
    lo, hi = block * block_rows, min(vocab_size, (block + 1) * block_rows)
    if matrix == "w_out":
        return np.zeros((hi - lo, dim), dtype=np.float32)
    rng = np.random.default_rng([seed, 0x1417])
    rng.bit_generator.advance(lo * dim // 2)
    return (rng.random((hi - lo, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim)  # (n, d)


def block_count(vocab_size: int, block_rows: int = BLOCK_ROWS) -> int:
    return max(1, math.ceil(vocab_size / block_rows))


class BlockKeys:
    """Block keys: matrix index x blocks + block (w_in's blocks first), and back."""

    def __init__(self, vocab_size: int, block_rows: int = BLOCK_ROWS):
        self.blocks, self.block_rows = block_count(vocab_size, block_rows), block_rows

    def key(self, matrix: str, block: int) -> int:
        return _MATRICES.index(matrix) * self.blocks + block

    def matrix(self, key: int) -> str:
        return _MATRICES[key // self.blocks]

    def block(self, key: int) -> int:
        return key % self.blocks


def _rows_of(value, dim: int) -> np.ndarray:
    """A block's value (first row, float32 bytes[, bad rows]) -> its (nrows, d) rows (read-only view)."""
    return np.frombuffer(value[1], dtype=np.float32).reshape(-1, dim)


def initial_blocks(spark, vocab_size: int, dim: int, seed: int, num_partitions: int, block_rows: int = BLOCK_ROWS):
    """The random start as keyed blocks, made on the executors (nothing on the driver)."""
    keys = BlockKeys(vocab_size, block_rows)

    def make(key: int):
        block = keys.block(key)
        rows = initial_block(seed, dim, vocab_size, keys.matrix(key), block, block_rows)
        return key, (block * block_rows, rows.tobytes())

    n = 2 * keys.blocks
    return spark.sparkContext.parallelize(range(n), max(1, min(n, num_partitions))).map(make) \
        .partitionBy(num_partitions)


def blocks_from_arrays(spark, w_in: np.ndarray, w_out: np.ndarray, num_partitions: int,
                       block_rows: int = BLOCK_ROWS):
    """Parameters built on the driver (a continued run's start) as keyed blocks."""
    keys = BlockKeys(len(w_in), block_rows)
    items = [(keys.key(name, lo // block_rows), (lo, np.ascontiguousarray(w[lo:lo + block_rows]).tobytes()))
             for name, w in (("w_in", w_in), ("w_out", w_out)) for lo in range(0, len(w), block_rows)]
    return spark.sparkContext.parallelize(items, max(1, min(len(items), num_partitions))).partitionBy(num_partitions)


def blocks_from_checkpoint(spark, uri: str, vocab_size: int, dim: int, num_partitions: int,
                           block_rows: int = BLOCK_ROWS):
    """A checkpoint's params/ (matrix, start, nrows, data) as keyed blocks, checked on the executors: every
    block whole, at its place, of the run's width."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(uri)
    bad = df.filter((F.col("start") % block_rows != 0) | (F.length("data") != F.col("nrows") * (4 * dim))
                    | (F.col("start") + F.col("nrows") > vocab_size)).limit(1).collect()
    rows = df.groupBy("matrix").agg(F.sum("nrows").alias("n")).collect()
    if bad or sorted((r["matrix"], r["n"]) for r in rows) != [("w_in", vocab_size), ("w_out", vocab_size)]:
        raise UserError(f"checkpoint {uri} does not match the vocabulary ({vocab_size} words) and train.dim={dim}")
    keys = BlockKeys(vocab_size, block_rows)
    return df.rdd.map(lambda r: (keys.key(r["matrix"], r["start"] // block_rows), (r["start"], bytes(r["data"])))) \
        .partitionBy(num_partitions)


def blocks_frame(spark, blocks, vocab_size: int, dim: int, block_rows: int = BLOCK_ROWS):
    """Keyed blocks -> DataFrame (matrix, block, start, nrows, data): the checkpoint layout plus the block."""
    keys = BlockKeys(vocab_size, block_rows)
    rows = blocks.map(lambda kv: (keys.matrix(kv[0]), keys.block(kv[0]), kv[1][0], len(kv[1][1]) // (4 * dim),
                                  bytearray(kv[1][1])))
    return spark.createDataFrame(rows, "matrix string, block int, start int, nrows int, data binary")


def write_blocks(spark, blocks, uri: str, vocab_size: int, dim: int) -> None:
    """The blocks in the checkpoint layout at ``uri``, written by the executors."""
    blocks_frame(spark, blocks, vocab_size, dim).select("matrix", "start", "nrows", "data").write.parquet(uri)


def write_vectors_from_blocks(spark, blocks, vocab_df, vocab_size: int, uri: str, matrix: str, dim: int) -> None:
    """Spark ML's data/ layout (word: string, vector: array<float>) for one matrix of the blocks, written by the
    executors in parallel: one part file per range of about DATA_FILE_BYTES, the files' names in row order and
    the rows in order within each (the readers order by file name, then row: ``model_rows``). The words come
    from ``vocab_df`` (id, word: the run's vocab/ as the vocabulary job wrote it, ``vocab_size`` rows), joined by
    block on the executors, so the driver never holds them as a table."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    word_blocks = (vocab_df.select((F.col("id") / F.lit(BLOCK_ROWS)).cast("int").alias("block"),
                                   F.struct("id", "word").alias("entry"))
                   .groupBy("block").agg(F.sort_array(F.collect_list("entry")).alias("entries"))
                   .select("block", F.col("entries.word").alias("words")))

    def explode(batches):
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for i in range(batch.num_rows):
                nrows = table.column("nrows")[i].as_py()
                rows = np.frombuffer(table.column("data")[i].as_buffer(), dtype=np.float32).reshape(nrows, dim)
                names = table.column("words")[i].as_py()
                if len(names) != nrows:
                    raise RuntimeError(f"block {table.column('block')[i].as_py()}: {nrows} rows, {len(names)} words")
                yield pa.RecordBatch.from_pydict({
                    "start": pa.array([table.column("start")[i].as_py()] * nrows, pa.int32()),
                    "row": pa.array(np.arange(nrows, dtype=np.int32)),
                    "word": pa.array(names, pa.string()), "vector": vector_column(rows)})

    files = max(1, -(-vocab_size * (4 * dim + 16) // DATA_FILE_BYTES))
    frame = blocks_frame(spark, blocks, vocab_size, dim)
    (frame.filter(frame.matrix == matrix).join(word_blocks, "block")
     .mapInArrow(explode, "start int, row int, word string, vector array<float>")
     .repartitionByRange(files, "start", "row").sortWithinPartitions("start", "row")
     .select("word", "vector").write.parquet(uri))


def corpus_slices(corpus_df, num_partitions: int):
    """The training corpus (:func:`w2vspark.train.partitions.partition_for_training` with ``syncs``) as one
    record per (partition, slice): key part, value (sync, flat ids bytes, offsets bytes), rows in order;
    partitioned by part, so that partition p holds task p's slices."""

    def pack(batches):
        import pyarrow as pa

        pending = {}
        for batch in batches:
            if batch.num_rows == 0:
                continue
            parts, syncs = batch.column("part").to_numpy(), batch.column("sync").to_numpy()
            keys = parts.astype(np.int64) << 32 | syncs.astype(np.int64)
            cuts = np.flatnonzero(np.diff(keys)) + 1
            for lo, hi in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(keys)].tolist()):
                ids, offsets = arrow_sentences(batch.column("ids").slice(lo, hi - lo))
                pending.setdefault((int(parts[lo]), int(syncs[lo])), []).append((ids, offsets))
        for (part, sync), pieces in sorted(pending.items()):
            ids = np.concatenate([p[0] for p in pieces]).astype(np.int32)
            lengths = np.concatenate([np.diff(p[1]) for p in pieces])
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            yield pa.RecordBatch.from_pydict({
                "part": pa.array([part], pa.int32()), "sync": pa.array([sync], pa.int32()),
                "ids": pa.array([ids.tobytes()], pa.binary()), "offsets": pa.array([offsets.tobytes()], pa.binary())})

    packed = corpus_df.select("part", "sync", "ids").mapInArrow(
        pack, "part int, sync int, ids binary, offsets binary")
    return packed.rdd.map(lambda r: (r["part"], (r["sync"], bytes(r["ids"]), bytes(r["offsets"])))) \
        .partitionBy(num_partitions)


def _sentences(value) -> list[tuple[np.ndarray, np.ndarray]]:
    """A slice record's value -> [(ids, offsets)]."""
    return [(np.frombuffer(value[1], dtype=np.int32), np.frombuffer(value[2], dtype=np.int64))]


# ---------------------------------------------------------------- one round's steps
def make_request(spec: RoundSpec, plan_bc, keys: BlockKeys):
    """Step 1: a task's rows, cut by block -> (block key, (part, row ids bytes))."""

    def request(item):
        part, value = item
        plan = plan_bc.value
        rng = task_rng(plan.seed, spec.epoch, spec.sync, part)
        rows = task_rows(_sentences(value), plan.kernel, plan.keep_probs(), plan.noise(), rng, plan.tree())
        for matrix, ids in zip(_MATRICES, rows):
            for block, lo, hi in block_cuts(ids, keys.block_rows):
                yield keys.key(matrix, block), (part, ids[lo:hi].tobytes())

    return request


def make_serve(dim: int):
    """Step 2: a block with its requests -> (part, (block key, row ids bytes, rows bytes)) for each."""

    def serve(item):
        key, (blocks, requests) = item
        blocks = list(blocks)
        if len(blocks) != 1:
            raise RuntimeError(f"{len(blocks)} parameter blocks for block key {key} (expected 1)")
        start, rows = blocks[0][0], _rows_of(blocks[0], dim)
        for part, ids in requests:
            ids_ = np.frombuffer(ids, dtype=np.int32)
            yield part, (key, ids, rows[ids_ - start].tobytes())

    return serve


def _gathered(pieces: list, keys: BlockKeys, matrix: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A task's served rows of one matrix -> (row ids (n,) int32 ascending, rows (n, d) float32)."""
    picks = sorted(p for p in pieces if keys.matrix(p[0]) == matrix)
    if not picks:
        return np.zeros(0, dtype=np.int32), np.zeros((0, dim), dtype=np.float32)
    ids = np.concatenate([np.frombuffer(p[1], dtype=np.int32) for p in picks])
    rows = np.concatenate([np.frombuffer(p[2], dtype=np.float32) for p in picks]).reshape(len(ids), dim)
    return ids, rows


def make_train(spec: RoundSpec, plan_bc, keys: BlockKeys, dim: int, fail_first_attempt: bool = False):
    """Step 3: a task's slice with its served rows -> its deltas by block, (block key, (part, ids bytes, delta
    bytes)), and its report, (-1 - part, (loss, pairs, words, seconds, worker, attempt))."""

    def train(item):
        from pyspark import TaskContext

        part, (slices, served) = item
        slices = list(slices)
        if not slices:  # rows served to a partition without a slice cannot happen: the slice asked for them
            return
        ctx = TaskContext.get()
        attempt = ctx.attemptNumber() if ctx is not None else 0
        if fail_first_attempt and attempt == 0:
            raise RuntimeError("injected failure of a first task attempt (fault-injection test)")
        plan = plan_bc.value
        served = list(served)
        in_rows, w_in = _gathered(served, keys, "w_in", dim)
        out_rows, w_out = _gathered(served, keys, "w_out", dim)
        res = train_partition(_sentences(slices[0]), w_in, w_out, plan.kernel, plan.keep_probs(), plan.noise(),
                              task_rng(plan.seed, spec.epoch, spec.sync, part), spec.lr_start, spec.lr_end,
                              spec.planned_words, plan.tree(), rows=(in_rows, out_rows))
        yield from _deltas_by_block(part, res, keys)
        yield -1 - part, (res.loss_sum, res.pairs, res.words, res.seconds, worker_identity(), attempt)

    return train


def _deltas_by_block(part: int, res: PartitionResult, keys: BlockKeys):
    for kind, block, ids, delta in delta_blocks(res, keys.block_rows):
        yield keys.key(_KIND[kind], block), (part, ids, delta)


def make_combine(keys: BlockKeys, dim: int):
    """Step 4's sums (over a partition of deltas keyed by block): each block's pieces added in partition order
    -> (block key, (RIGHT, (ids, total, square_sum, count) bytes)), tagged for :func:`co_group`; the tasks'
    reports (negative keys) pass through."""

    def combine(items):
        pieces = {}
        for key, piece in items:
            if key < 0:
                yield key, piece
            else:
                pieces.setdefault(key, []).append(piece)
        for key in sorted(pieces):
            block = keys.block(key)
            acc = DeltaAccumulator(keys.block_rows, dim, first=block * keys.block_rows)
            for _, ids, delta in sorted(pieces[key], key=lambda p: p[0]):
                ids_ = np.frombuffer(ids, dtype=np.int32)
                acc.add(ids_, np.frombuffer(delta, dtype=np.float32).reshape(len(ids_), dim))
            c = acc.combined(keys.matrix(key))
            yield key, (RIGHT, (c.ids.tobytes(), c.total.tobytes(), c.square_sum.tobytes(), c.count.tobytes()))

    return combine


def _combined(key: int, value, keys: BlockKeys, dim: int) -> Combined:
    """A combined block's value (ids, total, square_sum, count as bytes) -> its Combined (views, no copies)."""
    ids = np.frombuffer(value[0], dtype=np.int32)
    return Combined(keys.matrix(key), ids, np.frombuffer(value[1], dtype=np.float32).reshape(len(ids), dim),
                    np.frombuffer(value[2], dtype=np.float64), np.frombuffer(value[3], dtype=np.int32))


def make_summary(keys: BlockKeys, dim: int, rule: str):
    """What the driver needs of a combined partition: the tasks' reports, (-1 - part, report), and with the
    ``scaled`` rule each block's band partials, (block key, ((2, bands) float64 bytes, bands))."""

    def summary(items):
        for key, value in items:
            if key < 0:
                yield key, value
            elif rule == "scaled":
                c = _combined(key, value[1], keys, dim)
                (p,) = band_partials(c.ids, c.square_sum, c.norm2(), keys.block_rows).values()
                yield key, (p.tobytes(), p.shape[1])

    return summary


def make_apply(keys: BlockKeys, dim: int, rule: str, agreement: dict, max_factor: float):
    """Step 4's update: a block with its combined deltas -> (block key, (first row, new rows bytes, non-finite
    rows))."""

    def apply(item):
        key, (blocks, combined) = item
        blocks, combined = list(blocks), list(combined)
        if len(blocks) != 1 or len(combined) > 1:
            raise RuntimeError(f"{len(blocks)} parameter blocks and {len(combined)} combined deltas for block key "
                               f"{key} (expected 1 and at most 1)")
        start = blocks[0][0]
        w = _rows_of(blocks[0], dim).copy()  # (nrows, d)
        if combined:
            c = _combined(key, combined[0], keys, dim)
            add_rows(w, c.ids - start, scale_rows(c.total, block_factors(c, rule, max_factor,
                                                                         agreement.get(c.matrix))))
        return key, (start, w.tobytes(), int((~np.isfinite(w)).any(axis=1).sum()))

    return apply


RIGHT = "right"  # the first element of a right-hand value of co_group (made so by tag_right or the producer)


def tag_right(rdd):
    """``rdd``'s values as the right-hand side of :func:`co_group`; applied before the shuffle that partitions
    them, it runs in the producing Python stage and costs no stage of its own."""
    return rdd.mapValues(lambda v: (RIGHT, v))


def co_group(left, right, keep_left=None, keep_key=None):
    """Two keyed RDDs hash-partitioned alike (the same number of partitions, PySpark's default partition
    function) -> (key, (left values, right values)) for every key of either, in key order within each partition,
    without moving either side (a partitioner-aware union read partition by partition). Right-hand values are
    ``(RIGHT, value)`` (:func:`tag_right`) and grouped without the tag; left-hand values are tuples whose first
    element is a number. ``keep_left(value)`` and ``keep_key(key)`` leave out left values and keys.

    Both sides enter the union as they are: persisted or shuffled data, read by the JVM. A Python step on either
    side (a filter, a tag) would run a Python worker of its own inside the union's task, feeding the task's
    worker through the same JVM thread; with three workers chained that way a round on a standalone cluster
    stalled for good (measured: the inner worker blocked writing its output, its socket's segments dropped and
    retransmitted at a backed-off 120 s timeout, the outer worker waiting for input).

    PySpark's own ``cogroup`` groups through an external merger that spills to disk whenever the Python worker's
    resident memory passes spark.python.worker.memory (512 MB by default), and a worker that once trained a large
    task stays above it: measured with 1 GB of parameters, every round after the first spilled 3-7 GB and took
    three times as long. A partition here is a task's rows or 64 MB of blocks, held in memory as it is anyway."""
    from pyspark import RDD
    from pyspark.serializers import BatchedSerializer

    if left.partitioner is None or left.partitioner != right.partitioner:
        raise ValueError("co_group needs two RDDs partitioned alike")
    a, b = left._jrdd_deserializer, right._jrdd_deserializer
    if not (isinstance(a, BatchedSerializer) and isinstance(b, BatchedSerializer)
            and type(a.serializer) is type(b.serializer)):
        raise ValueError(f"co_group needs both sides in batches of one pickler; got {a} and {b}")
    # both sides are streams of pickled batches, which either deserializer reads: no reserializing step
    both = RDD(left._jrdd.union(right._jrdd), left.ctx, a)
    if both.getNumPartitions() != left.getNumPartitions():  # a plain union would pair other partitions
        raise ValueError("the union of the two RDDs is not partitioner-aware")
    both.partitioner = left.partitioner

    def group(items):
        groups = {}
        for key, value in items:
            if keep_key is not None and not keep_key(key):
                continue
            if isinstance(value[0], str):
                groups.setdefault(key, ([], []))[1].append(value[1])
            elif keep_left is None or keep_left(value):
                groups.setdefault(key, ([], []))[0].append(value)
        for key in sorted(groups):
            yield key, groups[key]

    return both.mapPartitions(group, preservesPartitioning=True)


def _bad_rows(items, keys: BlockKeys):
    """A partition of new blocks -> [(matrix, rows with a NaN or infinite entry)]."""
    counts = {}
    for key, value in items:
        counts[keys.matrix(key)] = counts.get(keys.matrix(key), 0) + value[2]
    return list(counts.items())


# ---------------------------------------------------------------- the store
class ExecutorLost(UserError, RuntimeError):
    """An executor holding parameter blocks went away: the run must resume from a checkpoint."""


class ExecutorParameters:
    """A :class:`w2vspark.train.loop.ParameterStore` whose rows live on the executors (see the module's text).

    ``corpus_df`` from :func:`w2vspark.train.partitions.partition_for_training` with ``syncs``; ``blocks`` from
    :func:`initial_blocks`, :func:`blocks_from_arrays` or :func:`blocks_from_checkpoint`, partitioned into
    ``param_partitions``."""

    def __init__(self, spark, corpus_df, plan: TaskPlan, blocks, vocab_size: int, dim: int,
                 param_partitions: int, num_partitions: int, fail_first_attempt_round: int | None = None,
                 block_rows: int = BLOCK_ROWS, replicas: int = 1):
        from .partitions import slice_count

        if plan.kernel.loss == "naive_softmax":
            raise UserError("train.params_on=executors needs neg_sampling or hierarchical_softmax: the full softmax "
                            "reads every output row in every task")
        self.corpus_syncs = slice_count(corpus_df)
        if not self.corpus_syncs:
            raise ValueError("the corpus has no sync column: partition it with partition_for_training(..., syncs=S)")
        self.spark, self.plan = spark, plan
        self.vocab_size, self.dim = vocab_size, dim
        self.keys = BlockKeys(vocab_size, block_rows)
        self.param_partitions, self.num_partitions = param_partitions, num_partitions
        self.plan_bc = spark.sparkContext.broadcast(plan)
        self.plan_bytes = broadcast_size(self.plan_bc, plan.counts.nbytes)
        self.fail_round = fail_first_attempt_round
        self.replicas = replicas
        self._quiet_unpersist_warnings(spark)
        sc = spark.sparkContext
        sc.setJobDescription("w2vspark train: the corpus by partition and slice, the parameter blocks")
        self.slices = self._cut(corpus_slices(corpus_df, num_partitions))[0]
        self.blocks = self._cut(blocks.partitionBy(param_partitions))[0]  # a no-op when already so partitioned
        sc.setJobDescription(None)
        self.kept_blocks: dict[int, object] = {}
        self.workers: set[str] = set()
        self.retried_tasks = 0
        self.traffic: dict | None = None

    @staticmethod
    def _quiet_unpersist_warnings(spark) -> None:
        """Spark warns at every unpersist of a locally checkpointed RDD that its lineage is gone; the store drops
        two such RDDs per round on purpose (the blocks and corpus it replaced). Those two loggers are set to
        errors only, when the JVM uses log4j 2 (Spark's default)."""
        try:
            jvm = spark.sparkContext._jvm
            level = jvm.org.apache.logging.log4j.Level.ERROR
            for name in ("org.apache.spark.api.python.PythonRDD", "org.apache.spark.rdd.MapPartitionsRDD"):
                jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
        except Exception:  # noqa: BLE001 - another logging backend: the warnings stay
            pass

    def _cut(self, rdd, action=None):
        """``rdd`` stored on the executors' local disks (``replicas`` copies, each on another executor), cut from
        its lineage and computed by ``action`` (default: a count), whose result is returned with it; its
        partitioning is kept (a persisted RDD is never fused with the steps that read it).

        On disk, not in the JVM heap: the blocks, the rollback points and a round's sums are about four models,
        and held in the heap they left too little room for the shuffle's fetch buffers (1 GB of parameters on two
        executors of 2 GB: out of memory); the operating system's page cache keeps recent files in memory
        anyway."""
        from pyspark import StorageLevel

        rdd = rdd.persist(StorageLevel(True, False, False, False, self.replicas))
        rdd.localCheckpoint()
        result = rdd.count() if action is None else action(rdd)
        return rdd, result

    def run(self, spec: RoundSpec, rule: str, max_step: float, max_factor: float) -> RoundResult:
        from pyspark import StorageLevel

        if max_step > 0:
            raise UserError("train.max_step needs the parameters on the driver (train.params_on=driver)")
        if spec.syncs_per_epoch != self.corpus_syncs:
            raise ValueError(f"round {spec.index} has {spec.syncs_per_epoch} syncs per epoch, but the corpus was "
                             f"stored sorted by {self.corpus_syncs} slices")
        sc = self.spark.sparkContext
        sc.setJobDescription(f"w2vspark train (rows on the executors): epoch {spec.epoch + 1}, round "
                             f"{spec.sync + 1}/{spec.syncs_per_epoch}")
        n, P, keys, dim = self.param_partitions, self.num_partitions, self.keys, self.dim
        sync = spec.sync
        combined = None
        try:
            with RoundJobs(sc) as jobs:
                # job 1: rows asked, served, trained, their deltas summed by block (kept for job 2)
                sliced = self.slices.filter(lambda kv: kv[1][0] == sync)  # keeps the partitioning
                requests = tag_right(sliced.flatMap(make_request(spec, self.plan_bc, keys))).partitionBy(n)
                served = tag_right(co_group(self.blocks, requests).flatMap(make_serve(dim))).partitionBy(P)
                trained = (co_group(self.slices, served, keep_left=lambda value: value[0] == sync)
                           .flatMap(make_train(spec, self.plan_bc, keys, dim, spec.index == self.fail_round)))
                combined = (trained.partitionBy(n).mapPartitions(make_combine(keys, dim), preservesPartitioning=True)
                            .persist(StorageLevel.DISK_ONLY))
                summary = combined.mapPartitions(make_summary(keys, dim, rule)).collect()
                reports = [value for key, value in sorted(summary, key=lambda kv: kv[0], reverse=True) if key < 0]
                agreement = self._agreement([kv for kv in summary if kv[0] >= 0])
                # job 2: the rule applied where the rows live; the new blocks kept, and their non-finite rows
                applied, bad = self._cut(
                    co_group(self.blocks, combined, keep_key=lambda key: key >= 0)
                    .map(make_apply(keys, dim, rule, agreement, max_factor), preservesPartitioning=True),
                    lambda rdd: rdd.mapPartitions(lambda items: _bad_rows(items, keys)).collect())
        except Exception as e:  # noqa: BLE001 - one cause is ours to explain, the rest pass on as they are
            if "Checkpoint block" in str(e) and "not found" in str(e):
                raise ExecutorLost(
                    f"round {spec.index + 1}: an executor that held parameter blocks was lost (with "
                    f"train.params_on=executors the parameters exist only on the executors, in "
                    f"train.params_replicas={self.replicas} cop{'y' if self.replicas == 1 else 'ies'}); continue from "
                    f"the last checkpoint with --resume (train.checkpoint_every sets how often they are written), and "
                    f"set train.params_replicas=2 for runs that must survive a lost executor") from None
            raise
        finally:
            if combined is not None:
                combined.unpersist()
            sc.setJobDescription(None)
        previous, self.blocks = self.blocks, applied
        self._drop(previous)
        self.traffic = {"broadcast_bytes": self.plan_bytes, **jobs.bytes()}
        self.plan_bytes = 0
        bad_rows = {}
        for matrix, count in bad:
            bad_rows[matrix] = bad_rows.get(matrix, 0) + count
        return RoundResult(self._stats(reports), {m: c for m, c in bad_rows.items() if c}, 0.0)

    def _agreement(self, partials) -> dict:
        """The ``scaled`` rule's agreement per matrix, pooled from the blocks' band partials (in block order)."""
        by_matrix = {"w_in": {}, "w_out": {}}
        for key, (values, bands) in partials:
            by_matrix[self.keys.matrix(key)][self.keys.block(key)] = \
                np.frombuffer(values, dtype=np.float64).reshape(2, bands)
        return {m: band_agreement(sum_band_partials([p])) for m, p in by_matrix.items() if p}

    def _stats(self, reports) -> RoundStats:
        stats = RoundStats()
        for loss, pairs, words, seconds, worker, attempt in reports:
            stats.loss_sum += loss
            stats.pairs += pairs
            stats.words += words
            stats.task_seconds.append(seconds)
            self.workers.add(worker)
            self.retried_tasks += attempt > 0
        return stats

    # ---- the guard's rollback points: earlier blocks stay on the executors until they are dropped
    def keep(self, k: int) -> None:
        for r in [r for r in self.kept_blocks if r < k - 1]:
            self._drop(self.kept_blocks.pop(r))
        self.kept_blocks[k] = self.blocks

    def restore(self, k: int) -> None:
        self.blocks = self.kept_blocks[k]
        for r in [r for r in self.kept_blocks if r > k]:
            self._drop(self.kept_blocks.pop(r))

    def _drop(self, rdd) -> None:
        if rdd is not self.blocks and all(rdd is not r for r in self.kept_blocks.values()):
            rdd.unpersist()

    def kept(self, k: int) -> bool:
        return k in self.kept_blocks

    def view(self, k: int | None = None):
        return self.blocks if k is None else self.kept_blocks[k]

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Both matrices, (V, d) each, on the driver: read one partition of blocks at a time (the driver's JVM
        holds no more than a partition of them)."""
        w = {m: np.empty((self.vocab_size, self.dim), dtype=np.float32) for m in _MATRICES}
        for key, value in self.blocks.toLocalIterator():
            rows = _rows_of(value, self.dim)
            w[self.keys.matrix(key)][value[0]:value[0] + len(rows)] = rows
        return w["w_in"], w["w_out"]

    def release(self) -> None:
        """Unpersist the blocks and the rollback points (after the model has been read or written), waiting
        until the executors have dropped them (an application that stops right after would otherwise close the
        connections of removals still under way, which Spark logs as errors)."""
        for rdd in [self.blocks, *self.kept_blocks.values()]:
            rdd.unpersist(blocking=True)
        self.kept_blocks.clear()

    def close(self) -> None:
        self.plan_bc.destroy()
        self.slices.unpersist()
