"""Random walks on a graph, in Spark: DeepWalk's (first-order) and node2vec's (second-order) walks.

Reads ``walks.edges`` (src, dst, optional weight), writes ``output.dir/walks`` (Parquet, ``walk: array<string>``,
one row per walk) and ``output.dir/walks_stats.json``; build_vocab then reads the walks with
``input.format = "parquet"`` and ``input.tokens_column = "walk"``.

Nothing of the graph comes to the driver. Nodes are keyed by xxhash64 of their name (a collision is detected and
reported); the adjacency (node -> sorted neighbours and weights) is a persisted, hash-partitioned DataFrame.
Every step joins the walkers that are still going with the adjacency of their current node (and, for node2vec,
of their previous node) and draws the next node from a uniform number that is a hash of (seed, start node, walk
index, step): for DeepWalk's walks in Spark itself, from per-node alias tables built once; for node2vec's by
rejection from the same tables (:func:`second_order_step`), the few walkers left after a few trials in an Arrow
function (:mod:`w2vspark.walk_step`) that also sees the previous node's neighbours. The walks depend on
the graph, the settings and the seed only, not on partitioning or retries. Each step's walkers are checkpointed
locally so that the plan does not grow with the walk length.
"""
from __future__ import annotations

import time

from .config import Config, ConfigError
from .corpus import check_outputs
from .errors import InputError
from .io.hadoop import HadoopFS, join
from .io.tables import read_table, source_format
from .session import sized_shuffles

OUTPUTS = ("walks", "walks_stats.json", "link_pairs")
NODE_TYPES = ("string", "int", "bigint")
WEIGHT_TYPES = ("double", "float", "int", "bigint", "smallint", "tinyint", "string")  # csv columns are strings


def read_edges(spark, fs: HadoopFS, cfg: Config):
    """-> DataFrame (src string, dst string, weight double) exactly as listed; clear errors for a missing file,
    column or a column of the wrong type."""
    from pyspark.sql import functions as F

    path = cfg.walks.edges
    if not path:
        raise ConfigError("config key 'walks.edges' must name an edge list (Parquet or CSV with columns src, dst "
                          "and optional weight)")
    df = read_table(spark, fs, path, source_format(path, cfg.walks.format), "edge list", "walks.edges")
    types = dict(df.dtypes)
    for column in ("src", "dst"):
        if column not in types:
            raise InputError(f"edge list {path} has no column '{column}'; its columns are: {', '.join(df.columns)}"
                             f" (a CSV needs a header line)")
        if types[column] not in NODE_TYPES:
            raise InputError(f"column '{column}' of edge list {path} has type {types[column]}; node ids must be "
                             f"string, int or bigint")
    if "weight" in types and types["weight"] not in WEIGHT_TYPES:
        raise InputError(f"column 'weight' of edge list {path} has type {types['weight']}; it must be numeric")
    weight = F.expr("try_cast(weight as double)") if "weight" in types else F.lit(1.0)  # text: null, reported
    return df.select(F.col("src").cast("string").alias("src"), F.col("dst").cast("string").alias("dst"),
                     weight.alias("weight"), (F.col("weight").isNull() if "weight" in types else F.lit(False))
                     .alias("_no_weight"))


def check_edges(edges, path: str) -> dict:
    """Count what cannot be walked; raise on what must not be guessed (null ids, weights that are missing, not
    numbers, negative or infinite). -> counts of edges, self-loops and zero weights (both dropped)."""
    from pyspark.sql import functions as F

    w = F.col("weight")
    bad_weight = F.col("_no_weight") | w.isNull() | F.isnan(w) | (F.abs(w) == float("inf"))
    c = edges.agg(F.count("*").alias("edges"),
                  F.sum((F.col("src").isNull() | F.col("dst").isNull()).cast("long")).alias("null_ids"),
                  F.sum(bad_weight.cast("long")).alias("bad_weights"),
                  F.sum((w < 0).cast("long")).alias("negative"),
                  F.sum((w == 0).cast("long")).alias("zero"),
                  F.sum((F.col("src") == F.col("dst")).cast("long")).alias("self_loops")).first()
    if not c["edges"]:
        raise InputError(f"edge list {path} has no edges")

    def example(cond) -> str:
        r = edges.where(cond).select("src", "dst", "weight").orderBy("src", "dst").first()  # the same every run
        return f"{r['src']} -> {r['dst']} (weight {r['weight']})"

    if c["null_ids"]:
        raise InputError(f"edge list {path}: {c['null_ids']} of {c['edges']} edges have a null src or dst")
    if c["bad_weights"]:
        raise InputError(f"edge list {path}: {c['bad_weights']} edges have a weight that is missing, not a number "
                         f"or infinite, e.g. {example(bad_weight)}")
    if c["negative"]:
        raise InputError(f"edge list {path}: {c['negative']} edges have a negative weight, e.g. {example(w < 0)}; "
                         f"walk probabilities need weights >= 0")
    if c["self_loops"] + c["zero"] >= c["edges"] and not edges.where(
            (F.col("src") != F.col("dst")) & (w > 0)).limit(1).count():
        raise InputError(f"edge list {path} has only self-loops or zero weights ({c['edges']} edges): no walk can "
                         f"leave its start node")
    return {"edges": int(c["edges"]), "self_loops": int(c["self_loops"]), "zero_weight": int(c["zero"])}


def graph_nodes(edges):
    """-> DataFrame (key long, node string): every node named in ``edges``, keyed by the xxhash64 of its name."""
    from pyspark.sql import functions as F

    return (edges.select(F.col("src").alias("node")).union(edges.select(F.col("dst").alias("node")))
            .distinct().select(F.xxhash64("node").alias("key"), "node"))


def build_adjacency(walked_edges, nodes, directed: bool, num_partitions: int, with_wsum: bool = True):
    """-> DataFrame (node long, name string, nbrs array<long>, wts array<double>, [wsum double,] accept
    array<double>, alias array<long>) hash-partitioned by node and sorted by it in each partition: one row for
    every node of ``nodes`` (key, node), with its out-edges, or null lists when it has none. Self-loops and zero
    weights are dropped; repeated edges are merged, their weights summed; neighbours are sorted by key
    (deterministic). ``wsum``, the sum of the weights, only ``with_wsum`` (node2vec's step reads it, DeepWalk's
    does not); ``accept`` and ``alias`` are the node's alias table for
    first-order steps (:func:`_alias_draw`). The name rides along so that a walk step also names the node it
    leaves, and the walks need no join with the names at the end."""
    from pyspark.sql import functions as F

    e = walked_edges.where((F.col("src") != F.col("dst")) & (F.col("weight") > 0)).select("src", "dst", "weight")
    if not directed:
        e = e.union(e.select(F.col("dst").alias("src"), F.col("src").alias("dst"), "weight"))
    e = (e.groupBy("src", "dst").agg(F.sum("weight").alias("weight"))
         .select(F.xxhash64("src").alias("node"), F.struct(F.xxhash64("dst").alias("nbr"), "weight").alias("e")))
    out_edges = (e.groupBy("node").agg(F.array_sort(F.collect_list("e")).alias("es"))
                 .select("node", F.col("es")["nbr"].alias("nbrs"), F.col("es")["weight"].alias("wts"))
                 .mapInArrow(_with_alias_tables, "node long, nbrs array<long>, wts array<double>, "
                                                 "accept array<double>, alias array<long>")
                 .select("node", "nbrs", "wts",
                         *([F.aggregate("wts", F.lit(0.0), lambda a, b: a + b).alias("wsum")] if with_wsum else []),
                         "accept", "alias"))
    named = nodes.select(F.col("key").alias("node"), F.col("node").alias("name"))
    return named.join(out_edges, "node", "left").repartition(num_partitions, "node").sortWithinPartitions("node")


def _with_alias_tables(batches):
    """mapInArrow function: adjacency rows -> the same rows with their alias tables."""
    import pyarrow as pa

    from w2vspark.walk_step import alias_tables

    for batch in batches:
        nbrs, wts = batch.column("nbrs"), batch.column("wts")
        offsets = nbrs.offsets.to_numpy()  # (n+1,) rows are never null or empty here
        values = nbrs.values.to_numpy()[offsets[0]:offsets[-1]]
        accept, alias_nbr = alias_tables(offsets - offsets[0], values,
                                         wts.values.to_numpy()[offsets[0]:offsets[-1]])
        start = pa.array(offsets - offsets[0], type=pa.int32())
        yield pa.RecordBatch.from_arrays(
            [batch.column("node"), nbrs, wts, pa.ListArray.from_arrays(start, pa.array(accept)),
             pa.ListArray.from_arrays(start, pa.array(alias_nbr))],
            names=["node", "nbrs", "wts", "accept", "alias"])


def _uniform(*columns):
    """A number in [0, 1) that is a function of the columns' values only (53 bits of their xxhash64)."""
    from pyspark.sql import functions as F

    return F.shiftrightunsigned(F.xxhash64(*columns), 11).cast("double") / 2.0 ** 53


def hold_out(edges, fraction: float, directed: bool, seed: int):
    """-> (the edges to walk, the held-out edges (src, dst)): a share ``fraction`` of the usable edges (no
    self-loops, weight > 0), drawn by a hash of (seed, edge); an undirected edge is held out in both directions."""
    from pyspark.sql import functions as F

    src, dst = F.col("src"), F.col("dst")
    a, b = (src, dst) if directed else (F.least(src, dst), F.greatest(src, dst))
    held = (src != dst) & (F.col("weight") > 0) & (_uniform(F.lit(seed), F.lit("holdout"), a, b) < fraction)
    return edges.where(~held), edges.where(held).select(a.alias("src"), b.alias("dst")).distinct()


def non_edges(spark, nodes, edges, count: int, directed: bool, seed: int):
    """-> about ``count`` node pairs (src, dst) that are not edges of ``edges`` in either direction (for an
    undirected graph), drawn uniformly by a hash of (seed, draw index): the negatives of link prediction."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    indexed = nodes.select("node", (F.row_number().over(Window.orderBy("key")) - 1).alias("i"))
    n = indexed.count()
    draws = spark.range(int(count * 1.2) + 20).select(
        "id", F.pmod(F.xxhash64(F.lit(seed), F.lit("non-edge"), "id", F.lit(0)), F.lit(n)).alias("a"),
        F.pmod(F.xxhash64(F.lit(seed), F.lit("non-edge"), "id", F.lit(1)), F.lit(n)).alias("b"))
    pairs = (draws.where(F.col("a") != F.col("b"))
             .join(indexed.select(F.col("i").alias("a"), F.col("node").alias("src")), "a")
             .join(indexed.select(F.col("i").alias("b"), F.col("node").alias("dst")), "b"))
    known = edges.select("src", "dst")
    if not directed:
        known = known.union(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    pairs = pairs.join(known.distinct(), ["src", "dst"], "left_anti")
    ranked = pairs.select("src", "dst", F.row_number().over(Window.orderBy("id")).alias("k"))
    return ranked.where(F.col("k") <= count).select("src", "dst")


def _step_function(p: float, q: float):
    """mapInArrow function: walkers joined with their adjacency and their previous node's neighbours -> the
    walkers one node2vec step on (``cur`` null for those that could not move) and the name of the node left."""

    def step(batches):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from w2vspark.walk_step import choose_next

        def csr(column):
            lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
            return np.concatenate([[0], np.cumsum(lengths)]), column.flatten()

        for batch in batches:
            offsets, nbrs = csr(batch.column("nbrs"))
            weights = batch.column("wts").flatten().to_numpy(zero_copy_only=False)
            u = batch.column("u").to_numpy(zero_copy_only=False)
            prev = batch.column("prev")
            prev_offsets, prev_nbrs = csr(batch.column("pnbrs"))
            nxt, moved = choose_next(offsets, nbrs.to_numpy(zero_copy_only=False), weights, u,
                                     prev=prev.fill_null(0).to_numpy(zero_copy_only=False),
                                     has_prev=prev.is_valid().to_numpy(zero_copy_only=False),
                                     prev_offsets=prev_offsets, prev_nbrs=prev_nbrs.to_numpy(zero_copy_only=False),
                                     p=p, q=q)
            yield pa.RecordBatch.from_arrays(
                [batch.column("start"), batch.column("r"), pa.array(nxt, mask=~moved), batch.column("cur"),
                 batch.column("name")], names=["start", "r", "cur", "prev", "left"])

    return step


def _alias_draw(u):
    """The neighbour that the uniform number ``u`` draws from the joined node's alias table
    (:func:`w2vspark.walk_step.alias_table`): slot i = floor(degree u), kept when the fraction degree u - i <
    accept[i], else its alias; null at a node without out-edges."""
    from pyspark.sql import functions as F

    scaled = u * F.size("nbrs")  # in [0, degree)
    slot = (F.floor(scaled) + 1).cast("int")  # 1-based
    fraction = scaled - F.floor(scaled)  # uniform in [0, 1), independent of the slot
    return F.when(F.element_at("accept", slot) > fraction, F.element_at("nbrs", slot)).otherwise(
        F.element_at("alias", slot))


def first_order_step(joined, u):
    """Walkers joined with their node's adjacency and alias tables -> the walkers one step on (``cur`` null for
    those at a node without out-edges) with the name of the node they left (``left``), drawn in Spark itself
    (DeepWalk's walk, weighted by the edge weights; :func:`_alias_draw`). No neighbour list goes to Python:
    walkers gather on high-degree nodes (a walk visits a node in proportion to its degree), so the lists would
    grow to E[deg^2] / E[deg] entries per walker (measured: 115 on a planted-community graph of mean degree 10,
    91M entries a step for 800k walkers; the step took 13 s in an Arrow function, 2 s here)."""
    from pyspark.sql import functions as F

    return joined.select("start", "r", _alias_draw(u).alias("cur"), F.col("cur").alias("prev"),
                         F.col("name").alias("left"))


def second_order_step(walkers, walking: int, adj, seed: int, s: int, p: float, q: float, exact_step):
    """node2vec's step for the ``walking`` rows of ``walkers`` (start, r, cur, prev) -> ((start, r, cur, prev,
    left) as :func:`first_order_step`, the proposal rounds run, the walkers left to the exact step), by rejection
    sampling, in Spark's own expressions.

    The target: from v, reached from t, neighbour x with probability proportional to w(v, x) alpha(t, x), alpha
    = 1/p for x = t, 1 for a neighbour of t, 1/q otherwise. The envelope: A w(v, x) for every neighbour, A =
    max(1, 1/q), plus, when 1/p > A, a region of mass (1/p - A) w(v, t) that stands for the step back alone
    (the step back is the proposal that a walker at a high-degree node rarely makes, so a bound A = 1/p on
    every neighbour would reject most proposals). A proposal picks that region with probability (1/p - A)
    w(v, t) / (A W(v) + (1/p - A) w(v, t)), W(v) = the sum of v's weights, and then steps back; otherwise it
    draws x from v's alias table (by the weights) and is kept with probability min(alpha(t, x), A) / A. The
    first kept proposal of a sequence of independent ones is distributed exactly as the target.

    A round draws a few proposals per walker at once (``PROPOSALS``) where the walker meets v's adjacency (a
    join by v, which also gives w(v, t) and W(v)), then judges them in order where it meets t's neighbour list
    (a join by t: "x is a neighbour of t" is a search of that list, up to the first kept proposal); both lists
    stay on the executor that caches them, and only the walker with its proposals moves between the joins.
    Neighbour lists in Python for every walker (E[deg^2] / E[deg] entries each, walkers gathering on
    high-degree nodes) were what made this step slow.
    After the rounds of ``PROPOSALS``, or as soon as fewer than 1/64 of the walkers are left (each round costs
    two joins however few walkers it has), the walkers left (none of their proposals kept) take the exact step of
    ``exact_step`` (an Arrow function over both lists, :func:`_step_function`): a walker whose proposals were all
    rejected is drawn from the target too, so the mixture is exact. Every uniform number is a hash of (seed,
    start, r, step, proposal), so the walks do not depend on partitioning or retries."""
    from pyspark.sql import functions as F

    alpha_back, alpha_far = 1.0 / p, 1.0 / q
    bound = max(1.0, alpha_far)  # A
    extra = max(0.0, alpha_back - bound)  # the step back's weight beyond A w(v, t)
    prev = F.col("prev")
    prev_nbrs = adj.select(F.col("cur").alias("prev"), F.col("nbrs").alias("pnbrs"))
    at = F.array_position("nbrs", prev).cast("int")  # 1-based, 0 when v has no edge to t
    back_mass = F.col("w_back") * F.lit(extra)  # w_back = w(v, t), null when there is no step back
    kept, pending, remaining, drawn = [], walkers, 0, 0
    for rnd, count in enumerate(PROPOSALS):
        ks = range(drawn, drawn + count)  # this round's proposal numbers
        drawn += count
        backs, xs = [], []
        for k in ks:
            u = _uniform(F.lit(seed), F.lit("back"), "start", "r", F.lit(s), F.lit(k))
            backs.append(F.coalesce(u * (F.lit(bound) * F.col("wsum") + back_mass) < back_mass, F.lit(False))
                         if extra > 0 else F.lit(False))
            xs.append(_alias_draw(_uniform(F.lit(seed), "start", "r", F.lit(s), F.lit(k))))
        proposed = pending.join(adj, "cur")
        if extra > 0:
            proposed = proposed.withColumn("w_back", F.when(at > 0, F.element_at("wts", F.greatest(at, F.lit(1)))))
        proposed = proposed.select("start", "r", "cur", "prev", "name", F.array(*backs).alias("backs"),
                                   F.array(*xs).alias("xs"))
        keeps, steps = [], []
        for i, k in enumerate(ks):
            back, x = F.col("backs")[i], F.col("xs")[i]
            alpha = (F.when(x == prev, F.lit(min(alpha_back, bound)))
                     .when(F.array_contains("pnbrs", x), F.lit(1.0)).otherwise(F.lit(alpha_far)))
            u = _uniform(F.lit(seed), F.lit("keep"), "start", "r", F.lit(s), F.lit(k))
            keeps.append(back | x.isNull() | F.coalesce(u * F.lit(bound) < alpha, F.lit(False)))
            steps.append(F.when(back, prev).otherwise(x))
        first = F.lit(0)  # the first kept proposal (1-based), 0 when none: tested in order, so the neighbour
        for i, keep in reversed(list(enumerate(keeps))):  # list of t is searched only up to the first kept one
            first = F.when(keep, F.lit(i + 1)).otherwise(first)
        judged = (proposed.join(prev_nbrs, "prev", "left")
                  .select("start", "r", "cur", "prev", "name", first.alias("first"), F.array(*steps).alias("steps"))
                  .localCheckpoint(eager=True))
        done = F.col("first") > 0
        kept.append(judged.where(done).select("start", "r", F.element_at("steps", F.col("first").cast("int"))
                                              .alias("cur"), F.col("cur").alias("prev"), F.col("name").alias("left")))
        pending = judged.where(~done).select("start", "r", "cur", "prev")
        remaining = pending.count()
        if remaining * 64 < walking:  # too few for another round's joins: the exact step takes them at once
            break
    if remaining:
        rest = (pending.join(adj, "cur").join(prev_nbrs, "prev", "left")
                .select("start", "r", "cur", "prev", "name", "nbrs", "wts", "pnbrs",
                        _uniform(F.lit(seed), "start", "r", F.lit(s)).alias("u")))
        kept.append(rest.mapInArrow(exact_step, "start long, r int, cur long, prev long, left string"))
    moved = kept[0]
    for more in kept[1:]:
        moved = moved.union(more)
    return moved, rnd + 1, remaining


# node2vec's proposals per walker in each round of a step: most walkers keep one of their first two (a walker
# keeps about every second proposal at p = 0.5, q = 2 on a sparse graph, nearly every one at p = 1, q = 0.5),
# the others get 8 more. Every proposal of a round is drawn for every walker in it, so a first round of 8 costs
# the high-acceptance settings for nothing; measured on 790k walkers at p = 0.5, q = 2: 8 at once 10.3 s a step
# (1,132 walkers left to the exact step), 2 then 8 11.3-11.9 s (233 left), 3 then 8 10.5 s (108 left).
PROPOSALS = (2, 8)


WALKERS_PER_PARTITION = 1_000_000  # rows of a step's join per partition (a few tens of bytes each)


@sized_shuffles
def generate_walks(spark, cfg: Config, log, set_partitions) -> dict:
    """Run the whole walk job; -> its statistics (also written as walks_stats.json).

    The job's shuffles use max(default parallelism, walkers / 1M) partitions (set for its duration): a step's
    data is small per walker, and Spark's default of 200 partitions made each step of a small graph cost seconds
    of task overhead (measured: 2,000 nodes, 5 steps, local[2]: 169 s with 200 partitions, 41 s with 4)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    w = cfg.walks
    fs = HadoopFS(spark)
    out_dir = cfg.output.dir
    check_outputs(fs, out_dir, OUTPUTS, cfg.output.overwrite)
    edges = read_edges(spark, fs, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [edges]
    try:
        spark.sparkContext.setJobDescription("w2vspark walks: check the edge list")
        stats = check_edges(edges, w.edges)
        set_partitions(max(spark.sparkContext.defaultParallelism, 1))
        nodes = graph_nodes(edges).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(nodes)
        num_nodes = nodes.count()
        parts = max(spark.sparkContext.defaultParallelism, 1, -(-num_nodes * w.per_node // WALKERS_PER_PARTITION))
        set_partitions(parts)
        holdout = cfg.eval.edges_holdout
        walked_edges, held = hold_out(edges, holdout, w.directed, w.seed) if holdout else (edges, None)
        second_order = w.p != 1.0 or w.q != 1.0
        if nodes.select("key").distinct().count() != num_nodes:
            raise InputError(f"edge list {w.edges}: two node names share a 64-bit hash; rename one of them")
        adjacency = build_adjacency(walked_edges, nodes, w.directed, parts, with_wsum=second_order).persist(
            StorageLevel.MEMORY_AND_DISK)
        cached.append(adjacency)
        degrees = adjacency.where(F.col("nbrs").isNotNull()).agg(F.count("*").alias("n"),
                                                                 F.sum(F.size("nbrs")).alias("walked")).first()
        with_edges, walked = degrees["n"], degrees["walked"]
        log(f"graph: {num_nodes} nodes ({num_nodes - with_edges} without out-edges), {stats['edges']} edges "
            f"listed, {walked} walked ({'directed' if w.directed else 'both ways'}); dropped {stats['self_loops']} "
            f"self-loops and {stats['zero_weight']} zero-weight edges")

        walkers = (nodes.select(F.col("key").alias("start"))
                   .crossJoin(spark.range(w.per_node).select(F.col("id").cast("int").alias("r")))
                   .select("start", "r", F.col("start").alias("cur"), F.lit(None).cast("long").alias("prev")))
        steps = []  # (start, r, step, name): step s names the node that a walker left at step s + 1
        adj = adjacency.withColumnRenamed("node", "cur")
        node2vec_step = _step_function(w.p, w.q)
        at = 0  # the step that the walkers still going are at
        active = num_nodes * w.per_node  # walkers still going (every walk starts)
        rejection = {"proposal_rounds": 0, "exact_step_walkers": 0}  # node2vec's steps after the first
        for s in range(1, w.length):
            spark.sparkContext.setJobDescription(f"w2vspark walks: step {s} of {w.length - 1}")
            if second_order and s > 1:  # the first step has no previous node: it is first-order
                moved, rounds, exact = second_order_step(walkers, active, adj, w.seed, s, w.p, w.q, node2vec_step)
                rejection["proposal_rounds"] += rounds
                rejection["exact_step_walkers"] += exact
            else:
                moved = first_order_step(walkers.join(adj, "cur"), _uniform(F.lit(w.seed), "start", "r", F.lit(s)))
            moved = moved.localCheckpoint(eager=True)
            steps.append(moved.select("start", "r", F.lit(s - 1).alias("step"), F.col("left").alias("name")))
            walkers = moved.where(F.col("cur").isNotNull()).select("start", "r", "cur", "prev")
            at = s
            active = walkers.count()
            if s == 1 or s == w.length - 1 or s % 10 == 0:
                log(f"step {s}/{w.length - 1}: {active} of {num_nodes * w.per_node} walks still going"
                    + (f" ({rejection['proposal_rounds']} rounds of node2vec proposals so far, "
                       f"{rejection['exact_step_walkers']} walker steps left to the exact step)"
                       if second_order else ""))
            if not active:
                break
        # the node where each walk that went the whole way ends
        steps.append(walkers.join(adj, "cur").select("start", "r", F.lit(at).alias("step"), "name"))

        spark.sparkContext.setJobDescription("w2vspark walks: assemble and write the walks")
        all_steps = steps[0]
        for more in steps[1:]:
            all_steps = all_steps.union(more)
        walks = (all_steps.groupBy("start", "r")
                 .agg(F.sort_array(F.collect_list(F.struct("step", "name"))).alias("s"))
                 .select(F.col("s")["name"].alias("walk")))
        with fs.staged(out_dir, "walks", OUTPUTS) as tmp:
            walks.write.parquet(join(tmp, "walks"))
            if held is not None:
                spark.sparkContext.setJobDescription("w2vspark walks: held-out edges and non-edges")
                positives = held.persist(StorageLevel.MEMORY_AND_DISK)
                cached.append(positives)
                num_held = positives.count()
                negatives = non_edges(spark, nodes, edges, num_held, w.directed, w.seed)
                (positives.select("src", "dst", F.lit(True).alias("edge"))
                 .union(negatives.select("src", "dst", F.lit(False).alias("edge")))
                 .write.parquet(join(tmp, "link_pairs")))
                pairs = spark.read.parquet(join(tmp, "link_pairs")).groupBy("edge").count().collect()
                stats.update({"edges_holdout": holdout, **{("held_out_edges" if r["edge"] else "non_edges"):
                                                          int(r["count"]) for r in pairs}})
                log(f"held out {stats.get('held_out_edges', 0)} edges and drew {stats.get('non_edges', 0)} "
                    f"non-edges for link prediction (link_pairs/)")
            written = spark.read.parquet(join(tmp, "walks")).agg(
                F.count("*").alias("walks"), F.sum(F.size("walk")).alias("tokens"),
                F.sum((F.size("walk") == 1).cast("long")).alias("single")).first()
            seconds = time.perf_counter() - t0
            stats.update({
                "edge_list": w.edges, "nodes": int(num_nodes), "nodes_without_out_edges": int(num_nodes - with_edges),
                "directed_edges_walked": int(walked or 0), "directed": w.directed, "per_node": w.per_node,
                "length": w.length, "p": w.p, "q": w.q, "seed": w.seed, "walks": int(written["walks"]),
                "tokens": int(written["tokens"] or 0), "walks_of_one_node": int(written["single"] or 0),
                "seconds": round(seconds, 3),
                "seconds_per_million_edges": round(seconds / max(stats["edges"], 1) * 1e6, 3),
                **({f"node2vec_{k}": v for k, v in rejection.items()} if second_order else {})})
            fs.write_json(join(tmp, "walks_stats.json"), stats)
    finally:
        for df in cached:
            df.unpersist()
    return stats
