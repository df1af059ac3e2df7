"""Training with the parameters held on the executors (``train.params_on = "executors"``).

The rows of w_in and w_out live in a Spark dataset of blocks of BLOCK_ROWS consecutive rows (the checkpoint
layout: matrix, start, nrows, float32 data, plus the block number), hash-partitioned by (matrix, block) over
the executors and cut from its lineage every round (a local checkpoint). The driver never holds them: it
receives per round the tasks' reports, per block the ``scaled`` rule's band sums and the count of non-finite
rows, and decides (rule, guard, checkpoints) from those. A round is four steps:

1. **rows asked**: every task replays its slice's random draws (:func:`w2vspark.train.task.task_rows`) and
   lists the rows it will read and move, cut by block;
2. **rows served**: the requests meet their blocks (a co-group by block) and each gets its rows;
3. **training**: a co-group by partition brings a task its slice's sentences (in row order) and its rows; it
   trains on just those rows (the same bits as on the whole matrices) and returns its deltas cut by block;
4. **combine and apply**: the deltas are summed by block in partition order (as on the driver), the driver
   pools the band sums into the rule's agreement, and a co-group of the combined blocks with the parameter
   blocks applies the rule where the rows live.

Each step moves rows, never a matrix: per round the traffic is the tasks' rows twice (served, then their
deltas) plus the round's slice of the corpus, so it does not grow with the model's size, only with what the
tasks touch. The model is the same bit for bit as with the parameters on the driver (same task draws, same
partition order of every sum, same float32 operations), and so are checkpoints and resumes.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from .combine import (BLOCK_ROWS, Combined, add_rows, band_agreement, band_partials, block_factors, scale_rows,
                      sum_band_partials)
from .loop import RoundResult, RoundSpec, RoundStats, TaskPlan, TaskReport
from .partitions import partition_keys, slice_count
from .spark_rounds import (RESULT_SCHEMA, _split_by_part, arrow_sentences, block_cuts, make_combine, result_batches,
                           worker_identity)
from .task import task_rng, task_rows, train_partition
from .traffic import RoundJobs, broadcast_size

PARAMS_SCHEMA = "matrix string, block int, start int, nrows int, data binary"
_MATRICES = ("w_in", "w_out")
_KIND = {"in": "w_in", "out": "w_out"}  # the tasks' delta kinds -> matrix names
REQUEST_SCHEMA = "part int, matrix string, block int, ids binary"
SERVED_SCHEMA = "part int, matrix string, block int, ids binary, rows binary"
SUMMARY_SCHEMA = ("kind string, block int, part int, loss double, pairs long, words long, seconds double, "
                  "worker string, attempt int, partials binary, bands int")
APPLIED_SCHEMA = PARAMS_SCHEMA + ", bad int"


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


def _params_record(matrix: str, block: int, start: int, rows: np.ndarray, bad: int | None = None):
    import pyarrow as pa

    cols = {"matrix": pa.array([matrix]), "block": pa.array([block], pa.int32()),
            "start": pa.array([start], pa.int32()), "nrows": pa.array([len(rows)], pa.int32()),
            "data": pa.array([np.ascontiguousarray(rows, dtype=np.float32).tobytes()], pa.binary())}
    if bad is not None:
        cols["bad"] = pa.array([bad], pa.int32())
    return pa.RecordBatch.from_pydict(cols)


def _block_rows(table, i: int, dim: int) -> np.ndarray:
    """Row i of a blocks table -> its (nrows, d) float32 rows (a read-only view of the Arrow buffer)."""
    nrows = table.column("nrows")[i].as_py()
    return np.frombuffer(table.column("data")[i].as_buffer(), dtype=np.float32).reshape(nrows, dim)


def block_count(vocab_size: int, block_rows: int = BLOCK_ROWS) -> int:
    return max(1, math.ceil(vocab_size / block_rows))


def initial_blocks(spark, vocab_size: int, dim: int, seed: int, num_partitions: int, block_rows: int = BLOCK_ROWS):
    """The random start as a DataFrame of blocks, made on the executors (nothing on the driver)."""
    from pyspark.sql import functions as F

    n = block_count(vocab_size, block_rows)

    def make(batches):
        for batch in batches:
            for i in batch.column("id").to_numpy().tolist():
                matrix, block = _MATRICES[i // n], i % n
                yield _params_record(matrix, block, block * block_rows,
                                     initial_block(seed, dim, vocab_size, matrix, block, block_rows))

    ids = spark.range(0, 2 * n, 1, max(1, min(2 * n, num_partitions)))
    return ids.mapInArrow(make, PARAMS_SCHEMA).repartition(num_partitions, "matrix", "block").select(
        "matrix", F.col("block").cast("int"), "start", "nrows", "data")


def blocks_from_arrays(spark, w_in: np.ndarray, w_out: np.ndarray, num_partitions: int,
                       block_rows: int = BLOCK_ROWS):
    """Parameters built on the driver (a continued run's start) as a DataFrame of blocks."""
    import pyarrow as pa

    batches = [_params_record(name, lo // block_rows, lo, w[lo:lo + block_rows])
               for name, w in (("w_in", w_in), ("w_out", w_out)) for lo in range(0, len(w), block_rows)]
    return spark.createDataFrame(pa.Table.from_batches(batches)).repartition(num_partitions, "matrix", "block")


def blocks_from_checkpoint(spark, uri: str, vocab_size: int, dim: int, num_partitions: int,
                           block_rows: int = BLOCK_ROWS):
    """A checkpoint's params/ (matrix, start, nrows, data) as a DataFrame of blocks, checked on the executors:
    every block whole, at its place, of the run's width."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(uri)
    bad = df.filter((F.col("start") % block_rows != 0) | (F.length("data") != F.col("nrows") * (4 * dim))
                    | (F.col("start") + F.col("nrows") > vocab_size)).limit(1).collect()
    rows = df.groupBy("matrix").agg(F.sum("nrows").alias("n")).collect()
    if bad or sorted((r["matrix"], r["n"]) for r in rows) != [("w_in", vocab_size), ("w_out", vocab_size)]:
        raise UserError(f"checkpoint {uri} does not match the vocabulary ({vocab_size} words) and train.dim={dim}")
    return (df.select("matrix", (F.col("start") / block_rows).cast("int").alias("block"), "start", "nrows", "data")
            .repartition(num_partitions, "matrix", "block"))


def write_blocks(blocks, uri: str) -> None:
    """The blocks in the checkpoint layout at ``uri``, written by the executors."""
    blocks.select("matrix", "start", "nrows", "data").write.parquet(uri)


def write_vectors_from_blocks(spark, blocks, words: list[str], uri: str, matrix: str = "w_in",
                              dim: int | None = None) -> None:
    """Spark ML's data/ layout (word: string, vector: array<float>, in row order) for one matrix of the blocks,
    written by the executors. The words go as a table joined on the block number (the driver has them from the
    vocabulary job)."""
    import pyarrow as pa

    n = len(words)
    word_blocks = spark.createDataFrame(pa.table({
        "block": pa.array(np.arange(n) // BLOCK_ROWS, pa.int32()), "word": pa.array(words, pa.string())})) \
        .groupBy("block").agg({"word": "collect_list"}).withColumnRenamed("collect_list(word)", "words")

    def explode(batches):
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for i in range(batch.num_rows):
                rows = _block_rows(table, i, dim)
                names = table.column("words")[i].as_py()
                flat = pa.array(rows.reshape(-1), pa.float32())
                offsets = pa.array(np.arange(0, len(rows) * dim + 1, dim, dtype=np.int32))
                yield pa.RecordBatch.from_pydict({
                    "start": pa.array([table.column("start")[i].as_py()] * len(rows), pa.int32()),
                    "row": pa.array(np.arange(len(rows), dtype=np.int32)),
                    "word": pa.array(names, pa.string()), "vector": pa.ListArray.from_arrays(offsets, flat)})

    (blocks.filter(blocks.matrix == matrix).join(word_blocks, "block")
     .mapInArrow(explode, "start int, row int, word string, vector array<float>")
     .orderBy("start", "row").select("word", "vector").write.parquet(uri))


# ---------------------------------------------------------------- one round's steps
def make_request(spec: RoundSpec, plan_bc, block_rows: int = BLOCK_ROWS):
    """Step 1 (mapInArrow over the round's slice): each task's rows, cut by block."""

    def request(batches):
        import itertools

        plan = plan_bc.value
        keep_probs, noise, tree = plan.keep_probs(), plan.noise(), plan.tree()
        for part, group in itertools.groupby(_split_by_part(batches), key=lambda item: item[0]):
            rng = task_rng(plan.seed, spec.epoch, spec.sync, part)
            rows = task_rows((b for _, b in group), plan.kernel, keep_probs, noise, rng, tree)
            for matrix, ids in zip(_MATRICES, rows):
                for block, lo, hi in block_cuts(ids, block_rows):
                    yield _request_record(part, matrix, block, ids[lo:hi])

    return request


def _request_record(part: int, matrix: str, block: int, ids: np.ndarray, rows: np.ndarray | None = None):
    import pyarrow as pa

    cols = {"part": pa.array([part], pa.int32()), "matrix": pa.array([matrix]), "block": pa.array([block], pa.int32()),
            "ids": pa.array([np.ascontiguousarray(ids, dtype=np.int32).tobytes()], pa.binary())}
    if rows is not None:
        cols["rows"] = pa.array([np.ascontiguousarray(rows, dtype=np.float32).tobytes()], pa.binary())
    return pa.RecordBatch.from_pydict(cols)


def make_serve(dim: int):
    """Step 2 (co-group of one block's requests with the block): every request gets its rows."""

    def serve(requests, blocks):
        import pyarrow as pa

        if requests.num_rows == 0:
            return pa.Table.from_batches([], schema=_served_schema())
        if blocks.num_rows != 1:
            raise RuntimeError(f"{blocks.num_rows} parameter blocks for one block number (expected 1)")
        rows = _block_rows(blocks, 0, dim)
        start = blocks.column("start")[0].as_py()
        out = []
        for i in range(requests.num_rows):
            ids = np.frombuffer(requests.column("ids")[i].as_buffer(), dtype=np.int32)
            out.append(_request_record(requests.column("part")[i].as_py(), requests.column("matrix")[i].as_py(),
                                       requests.column("block")[i].as_py(), ids, rows[ids - start]))
        return pa.Table.from_batches(out)

    return serve


def _served_schema():
    import pyarrow as pa

    return pa.schema([("part", pa.int32()), ("matrix", pa.string()), ("block", pa.int32()), ("ids", pa.binary()),
                      ("rows", pa.binary())])


def _gathered(served, matrix: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A task's served rows of one matrix -> (row ids (n,) int32 ascending, rows (n, d) float32)."""
    picks = [i for i, m in enumerate(served.column("matrix").to_pylist()) if m == matrix]
    picks.sort(key=lambda i: served.column("block")[i].as_py())
    if not picks:
        return np.zeros(0, dtype=np.int32), np.zeros((0, dim), dtype=np.float32)
    ids = np.concatenate([np.frombuffer(served.column("ids")[i].as_buffer(), dtype=np.int32) for i in picks])
    rows = np.concatenate([np.frombuffer(served.column("rows")[i].as_buffer(), dtype=np.float32)
                           for i in picks]).reshape(len(ids), dim)
    return ids, rows


def make_train(spec: RoundSpec, plan_bc, dim: int, fail_first_attempt: bool = False, block_rows: int = BLOCK_ROWS):
    """Step 3 (co-group of one partition's slice with its served rows): train on those rows; deltas by block."""

    def train(key, sentences, served):
        import pyarrow as pa
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if fail_first_attempt and ctx is not None and ctx.attemptNumber() == 0:
            raise RuntimeError("injected failure of a first task attempt (fault-injection test)")
        part = key[1].as_py()  # grouped by (_pkey, part)
        plan = plan_bc.value
        sentences = sentences.take(np.argsort(sentences.column("row").to_numpy(), kind="stable"))
        batches = [arrow_sentences(sentences.column("ids").combine_chunks())] if sentences.num_rows else []
        in_rows, w_in = _gathered(served, "w_in", dim)
        out_rows, w_out = _gathered(served, "w_out", dim)
        res = train_partition(batches, w_in, w_out, plan.kernel, plan.keep_probs(), plan.noise(),
                              task_rng(plan.seed, spec.epoch, spec.sync, part), spec.lr_start, spec.lr_end,
                              spec.planned_words, plan.tree(), rows=(in_rows, out_rows))
        attempt = ctx.attemptNumber() if ctx is not None else 0
        return pa.Table.from_batches(list(result_batches(part, res, worker_identity(), attempt, block_rows)))

    return train


def make_summary(rule: str):
    """After step 4's sums: what the driver needs of each combined block (the ``scaled`` rule's band partials)
    and the tasks' reports, which the combine step passed through."""

    def summary(batches):
        import pyarrow as pa

        for batch in batches:
            table = pa.Table.from_batches([batch])
            kinds = table.column("kind").to_pylist()
            for i, kind in enumerate(kinds):
                if kind == "stats":
                    yield _summary_record(table, i)
                    continue
                partials = None
                bands = 0
                if rule == "scaled":
                    c = _combined_at(table, i, kind, None)
                    (p,) = band_partials(c.ids, c.square_sum, c.norm2()).values() or [np.zeros((2, 0))]
                    partials, bands = p.tobytes(), p.shape[1]
                yield pa.RecordBatch.from_pydict(_summary_fields(kind=kind, block=table.column("block")[i].as_py(),
                                                                 partials=partials, bands=bands))

    return summary


def _summary_fields(**values) -> dict:
    import pyarrow as pa

    types = {"kind": pa.string(), "block": pa.int32(), "part": pa.int32(), "loss": pa.float64(),
             "pairs": pa.int64(), "words": pa.int64(), "seconds": pa.float64(), "worker": pa.string(),
             "attempt": pa.int32(), "partials": pa.binary(), "bands": pa.int32()}
    return {name: pa.array([values.get(name)], t) for name, t in types.items()}


def _summary_record(table, i: int):
    import pyarrow as pa

    names = ("kind", "block", "part", "loss", "pairs", "words", "seconds", "worker", "attempt")
    return pa.RecordBatch.from_pydict(_summary_fields(**{n: table.column(n)[i].as_py() for n in names}))


def _combined_at(table, i: int, kind: str, dim: int | None) -> Combined:
    """Row i of a combined-blocks table -> its Combined (views into the Arrow buffers)."""
    ids = np.frombuffer(table.column("ids")[i].as_buffer(), dtype=np.int32)
    total = np.frombuffer(table.column("total")[i].as_buffer(), dtype=np.float32)
    return Combined(kind, ids, total.reshape(len(ids), -1 if dim is None else dim),
                    np.frombuffer(table.column("square_sum")[i].as_buffer(), dtype=np.float64),
                    np.frombuffer(table.column("count")[i].as_buffer(), dtype=np.int32))


def make_apply(dim: int, rule: str, agreement: dict[str, np.ndarray | None], max_factor: float):
    """Step 4's update (co-group of a parameter block with its combined deltas): the rule where the rows live,
    and the count of rows left non-finite."""

    def apply(blocks, combined):
        import pyarrow as pa

        if blocks.num_rows != 1:
            raise RuntimeError(f"{blocks.num_rows} parameter blocks for one block number (expected 1)")
        matrix, block, start = (blocks.column(n)[0].as_py() for n in ("matrix", "block", "start"))
        w = _block_rows(blocks, 0, dim).copy()  # (nrows, d)
        for i in range(combined.num_rows):
            c = _combined_at(combined, i, matrix, dim)
            f = block_factors(c, rule, max_factor, agreement.get(matrix))
            add_rows(w, c.ids - start, scale_rows(c.total, f))
        bad = int((~np.isfinite(w)).any(axis=1).sum())
        return pa.Table.from_batches([_params_record(matrix, block, start, w, bad)])

    return apply


# ---------------------------------------------------------------- the store
class ExecutorParameters:
    """A :class:`w2vspark.train.loop.ParameterStore` whose rows live on the executors (see the module's text).

    ``corpus_df`` from :func:`w2vspark.train.partitions.partition_for_training` with ``syncs``; ``blocks`` from
    :func:`initial_blocks`, :func:`blocks_from_arrays` or :func:`blocks_from_checkpoint`, with
    ``param_partitions`` partitions."""

    def __init__(self, spark, corpus_df, plan: TaskPlan, blocks, vocab_size: int, dim: int,
                 param_partitions: int, num_partitions: int, fail_first_attempt_round: int | None = None,
                 block_rows: int = BLOCK_ROWS):
        if plan.kernel.loss == "naive_softmax":
            raise UserError("train.params_on=executors needs neg_sampling or hierarchical_softmax: the full softmax "
                            "reads every output row in every task")
        self.corpus_syncs = slice_count(corpus_df)
        if not self.corpus_syncs:
            raise ValueError("the corpus has no sync column: partition it with partition_for_training(..., syncs=S)")
        self.spark, self.corpus, self.plan = spark, corpus_df, plan
        self.vocab_size, self.dim, self.block_rows = vocab_size, dim, block_rows
        self.param_partitions, self.num_partitions = param_partitions, num_partitions
        self.keys = partition_keys(spark, num_partitions)
        self.plan_bc = spark.sparkContext.broadcast(plan)
        self.plan_bytes = broadcast_size(self.plan_bc, plan.counts.nbytes)
        self.fail_round = fail_first_attempt_round
        self.blocks = self._cut(blocks)
        self.kept_blocks: dict[int, object] = {}
        self.workers: set[str] = set()
        self.retried_tasks = 0
        self.traffic: dict | None = None

    def _cut(self, df):
        """``df`` materialized on the executors and cut from its lineage (its partitioning kept)."""
        return df.localCheckpoint(eager=True)

    def _by_part(self, df):
        """``df`` (with ``part``) hash-partitioned so that partition p holds task p alone."""
        from pyspark.sql import functions as F

        pkey = F.element_at(F.array(*[F.lit(k).cast("bigint") for k in self.keys]), F.col("part") + 1)
        return df.withColumn("_pkey", pkey).repartition(self.num_partitions, "_pkey")

    def run(self, spec: RoundSpec, rule: str, max_step: float, max_factor: float) -> RoundResult:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if max_step > 0:
            raise UserError("train.max_step needs the parameters on the driver (train.params_on=driver)")
        if spec.syncs_per_epoch != self.corpus_syncs:
            raise ValueError(f"round {spec.index} has {spec.syncs_per_epoch} syncs per epoch, but the corpus was "
                             f"stored sorted by {self.corpus_syncs} slices")
        sc = self.spark.sparkContext
        sc.setJobDescription(f"w2vspark train (rows on the executors): epoch {spec.epoch + 1}, round "
                             f"{spec.sync + 1}/{spec.syncs_per_epoch}")
        keyed = ["matrix", "block"]
        sliced = self.corpus.filter(F.col("sync") == F.lit(spec.sync)).select("part", "key", "ids", "row")
        combined = None
        try:
            with RoundJobs(sc) as jobs:
                requests = sliced.select("part", "key", "ids").mapInArrow(
                    make_request(spec, self.plan_bc, self.block_rows), REQUEST_SCHEMA)
                served = (requests.repartition(self.param_partitions, *keyed).groupBy(*keyed)
                          .cogroup(self.blocks.groupBy(*keyed))
                          .applyInArrow(make_serve(self.dim), SERVED_SCHEMA))
                trained = (self._by_part(sliced).groupBy("_pkey", "part")
                           .cogroup(self._by_part(served).groupBy("_pkey", "part"))
                           .applyInArrow(make_train(spec, self.plan_bc, self.dim, spec.index == self.fail_round,
                                                    self.block_rows), RESULT_SCHEMA))
                combined = (trained.repartition(self.param_partitions, "kind", "block").groupBy("kind", "block")
                            .applyInArrow(make_combine(self.dim, self.block_rows), RESULT_SCHEMA)
                            .persist(StorageLevel.MEMORY_AND_DISK))
                summary = combined.mapInArrow(make_summary(rule), SUMMARY_SCHEMA).collect()
                stats, agreement = self._read_summary(summary, rule)
                deltas = (combined.filter(F.col("kind") != "stats")
                          .select(F.concat(F.lit("w_"), F.col("kind")).alias("matrix"), "block", "ids", "total",
                                  "square_sum", "count")
                          .repartition(self.param_partitions, *keyed))
                applied = (self.blocks.groupBy(*keyed).cogroup(deltas.groupBy(*keyed))
                           .applyInArrow(make_apply(self.dim, rule, agreement, max_factor), APPLIED_SCHEMA))
                applied = self._cut(applied)
                bad = applied.groupBy("matrix").agg(F.sum("bad").alias("bad")).collect()
        finally:
            if combined is not None:
                combined.unpersist()
            sc.setJobDescription(None)
        self.blocks = applied.select("matrix", "block", "start", "nrows", "data")
        self.traffic = {"broadcast_bytes": self.plan_bytes, **jobs.bytes()}
        self.plan_bytes = 0
        bad_rows = {r["matrix"]: int(r["bad"]) for r in bad if r["bad"]}
        return RoundResult(stats, bad_rows, 0.0)

    def _read_summary(self, rows, rule: str) -> tuple[RoundStats, dict]:
        stats = RoundStats()
        partials = {"w_in": {}, "w_out": {}}
        for r in sorted((r for r in rows if r["kind"] == "stats"), key=lambda r: r["part"]):
            report = TaskReport(r["part"], r["loss"], r["pairs"], r["words"], r["seconds"])
            stats.loss_sum += report.loss_sum
            stats.pairs += report.pairs
            stats.words += report.words
            stats.task_seconds.append(report.seconds)
            self.workers.add(r["worker"])
            self.retried_tasks += r["attempt"] > 0
        for r in rows:
            if r["kind"] != "stats" and r["partials"] is not None:
                values = np.frombuffer(r["partials"], dtype=np.float64).reshape(2, r["bands"])
                partials[_KIND[r["kind"]]][r["block"]] = values
        agreement = {m: band_agreement(sum_band_partials([p])) if p else None for m, p in partials.items()} \
            if rule == "scaled" else {}
        return stats, agreement

    # ---- the guard's rollback points: earlier blocks stay on the executors until they are dropped
    def keep(self, k: int) -> None:
        for r in [r for r in self.kept_blocks if r < k - 1]:
            self.kept_blocks.pop(r).unpersist()
        self.kept_blocks[k] = self.blocks

    def restore(self, k: int) -> None:
        self.blocks = self.kept_blocks[k]
        for r in [r for r in self.kept_blocks if r > k]:
            self.kept_blocks.pop(r).unpersist()

    def kept(self, k: int) -> bool:
        return k in self.kept_blocks

    def view(self, k: int | None = None):
        return self.blocks if k is None else self.kept_blocks[k]

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Both matrices collected to the driver (tests and small models only)."""
        w = {m: np.empty((self.vocab_size, self.dim), dtype=np.float32) for m in _MATRICES}
        table = self.blocks.toArrow()
        for i in range(table.num_rows):
            start = table.column("start")[i].as_py()
            rows = _block_rows(table, i, self.dim)
            w[table.column("matrix")[i].as_py()][start:start + len(rows)] = rows
        return w["w_in"], w["w_out"]

    def close(self) -> None:
        self.plan_bc.destroy()
