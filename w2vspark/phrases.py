"""Phrase detection (word2phrase / gensim Phrases) on Spark: "new york" -> "new_york" before training.

Counting: every token that is not a connector word (``phrases.common_words``) counts once, and so does every
candidate "a [connectors...] b" between two consecutive non-connector tokens of a row (connectors before the
first or after the last token belong to no candidate). Words and candidates share one table of counts keyed by
their string, as gensim's vocabulary does. A candidate is a phrase when

    score = (count(candidate) - min_count) / (count(a) * count(b)) * vocabulary size  >  threshold

(Mikolov et al. 2013, "Distributed Representations of Words and Phrases and their Compositionality", eq. 6; the
vocabulary size is the number of distinct words and candidates, gensim's ``original_scorer``; word2phrase.c uses
the corpus word count instead). Rewriting is greedy from the left: a candidate found to be a phrase becomes one
token, and its last word does not start another candidate. ``passes = 2`` runs detection again on the rewritten
rows, so two phrases can join into one of up to four words.

Counting runs in Spark SQL; the rewrite is one Arrow function over the rows with the phrase set broadcast.
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np

from .config import Config
from .corpus import check_outputs, read_input, sequence_tokens, text_tokens
from .errors import InputError
from .io.hadoop import HadoopFS, join
from .session import sized_shuffles

OUTPUTS = ("phrases", "phrased", "phrases_stats.json")


def phrase_table(accepted: Iterable[tuple[str, str, str]], delimiter: str) -> dict:
    """Accepted (a, b, joined) -> {(a, b): {connectors between them (a tuple): joined}}, the lookup of
    :func:`join_phrases` (a pair is looked up before any string is built)."""
    table: dict = {}
    for a, b, joined in accepted:
        middle = joined[len(a) + len(delimiter):len(joined) - len(b) - len(delimiter)]
        between = tuple(middle.split(delimiter)) if middle else ()
        table.setdefault((a, b), {})[between] = joined
    return table


def join_phrases(tokens: Sequence[str], phrases: dict, connectors: frozenset) -> list[str]:
    """``tokens`` with every phrase, taken greedily from the left, joined into one token.

    ``phrases`` comes from :func:`phrase_table`: it is keyed by the words at both ends because a joined string can
    be split in more than one way once tokens contain the delimiter (a second pass).
    """
    out: list[str] = []
    start, between = None, []
    for word in tokens:
        if connectors and word in connectors:
            if start is None:
                out.append(word)
            else:
                between.append(word)
            continue
        if start is not None:
            found = phrases.get((start, word))
            joined = found.get(tuple(between)) if found else None
            if joined is not None:
                out.append(joined)
                start, between = None, []
                continue
            out.append(start)
            out.extend(between)
        start, between = word, []
    if start is not None:
        out.append(start)
        out.extend(between)
    return out


def candidate_rows(rows, connectors: Sequence[str], delimiter: str):
    """rows (tokens: array<string>) -> one row (a, b, joined) per candidate "a [connectors...] b".

    Spark runs the lambda functions here row by row, interpreted (the pairs of 15M words took 86 s against 28 s
    without them), so :func:`find_phrases` counts plain adjacent pairs without this when there are no connectors."""
    from pyspark.sql import functions as F

    tokens = F.col("tokens")
    conn = F.array(*[F.lit(c) for c in connectors]).cast("array<string>")
    # 0-based positions of the tokens that are not connectors (an empty row: [0] with a null token, dropped)
    last = F.greatest(F.size(tokens) - 1, F.lit(0))
    pos = F.filter(F.sequence(F.lit(0), last), lambda i: ~F.array_contains(conn, tokens[i]))
    n = F.greatest(F.size(pos) - 1, F.lit(0))
    cands = F.zip_with(F.slice(pos, 1, n), F.slice(pos, 2, n), lambda j, i: F.struct(
        tokens[j].alias("a"), tokens[i].alias("b"),
        F.array_join(F.slice(tokens, j + 1, i - j + 1), delimiter).alias("joined")))
    return rows.select(F.explode(cands).alias("c")).select("c.*")


def find_phrases(spark, rows, cfg: Config):
    """rows (tokens: array<string>) -> (DataFrame phrase, a, b, count, score of the accepted candidates, the
    vocabulary size of the pass, the DataFrames to unpersist)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    p = cfg.phrases
    connectors = sorted(set(p.common_words))
    tokens = F.col("tokens")
    if connectors:
        conn = F.array(*[F.lit(c) for c in connectors]).cast("array<string>")
        tokens = F.filter(tokens, lambda t: ~F.array_contains(conn, t))
    if connectors:
        words = rows.select(F.explode(tokens).alias("key")).groupBy("key").count()
        # one row per distinct candidate split (a, b): its count
        splits = (candidate_rows(rows, connectors, p.delimiter).groupBy("joined", "a", "b").count()
                  .persist(StorageLevel.MEMORY_AND_DISK))
    else:  # one pass: every token with the token after it (null at the end of a row), counted once per pair
        n = F.size(tokens)
        after = F.concat(F.slice(tokens, 2, F.greatest(n - 1, F.lit(0))), F.array(F.lit(None).cast("string")))
        pairs = (rows.select(F.explode(F.arrays_zip(tokens, after)).alias("c")).select("c.*").toDF("a", "b")
                 .groupBy("a", "b").count().persist(StorageLevel.MEMORY_AND_DISK))
        words = pairs.groupBy(F.col("a").alias("key")).agg(F.sum("count").alias("count"))
        splits = pairs.where(F.col("b").isNotNull()).select(
            F.concat_ws(p.delimiter, "a", "b").alias("joined"), "a", "b", "count")
    # words and joined candidates share one table of counts keyed by their string, as gensim's vocabulary
    counts = (words.unionByName(splits.select(F.col("joined").alias("key"), "count"))
              .groupBy("key").agg(F.sum("count").alias("count")).persist(StorageLevel.MEMORY_AND_DISK))
    vocab_size = counts.count()
    scored = splits.select("joined", "a", "b").join(counts.toDF("joined", "n_ab"), "joined")
    if p.threshold >= 0:  # a count <= min_count scores <= 0: skip those candidates before the joins
        scored = scored.where(F.col("n_ab") > p.min_count)
    scored = (scored.join(counts.toDF("a", "n_a"), "a").join(counts.toDF("b", "n_b"), "b")
              .select(F.col("joined").alias("phrase"), "a", "b", F.col("n_ab").alias("count"),
                      ((F.col("n_ab") - p.min_count) / (F.col("n_a") * F.col("n_b")) * vocab_size).alias("score")))
    return scored.where(F.col("score") > p.threshold), vocab_size, [pairs if not connectors else splits, counts]


def join_pairs(values: list, offsets: np.ndarray, pairs: dict) -> tuple[list, np.ndarray]:
    """:func:`join_phrases` without connectors for many rows at once, vectorized: ``values`` are the rows' tokens
    end to end, row i is values[offsets[i]:offsets[i + 1]], and ``pairs`` maps (a, b) -> joined.

    A phrase at position i (tokens i and i+1) is taken unless the one at i-1 was: in a run of consecutive phrase
    positions the first, third, ... are taken, as the left-to-right scan takes them. -> (values, offsets)."""
    n = len(values)
    rows = len(offsets) - 1
    if n < 2 or not pairs:
        return list(values), offsets
    looked = list(map(pairs.get, zip(values, values[1:])))  # (n-1,) joined string or None
    hit = np.fromiter((x is not None for x in looked), dtype=bool, count=n - 1)  # (n-1,)
    row_start = np.zeros(n, dtype=bool)
    row_start[offsets[1:-1]] = True
    hit &= ~row_start[1:]  # never across two rows
    at = np.flatnonzero(hit)  # (h,)
    if not len(at):
        return list(values), offsets
    new_run = np.r_[True, np.diff(at) != 1]  # (h,)
    first = at[new_run][np.cumsum(new_run) - 1]  # (h,) the first position of each hit's run
    taken = at[(at - first) % 2 == 0]
    out = np.empty(n, dtype=object)
    out[:] = values
    out[taken] = [looked[i] for i in taken]
    keep = np.ones(n, dtype=bool)
    keep[taken + 1] = False
    row_of = np.repeat(np.arange(rows), np.diff(offsets))  # (n,)
    lengths = np.bincount(row_of[keep], minlength=rows)
    return out[keep].tolist(), np.concatenate([[0], np.cumsum(lengths)]).astype(offsets.dtype)


def _rewrite_function(phrases_bc, connectors: frozenset):
    def rewrite(batches: Iterable):
        import pyarrow as pa

        phrases = phrases_bc.value
        pairs = None if connectors else {ab: joined[()] for ab, joined in phrases.items() if () in joined}
        for batch in batches:
            column = batch.column(0)
            offsets = column.offsets.to_numpy()  # (rows + 1,)
            offsets = offsets - offsets[0]
            # numpy's conversion of the strings is about 10x faster than to_pylist's
            values = column.flatten().to_numpy(zero_copy_only=False).tolist()
            if pairs is not None:
                values, offsets = join_pairs(values, offsets, pairs)
            else:
                rows = [join_phrases(values[lo:hi], phrases, connectors) for lo, hi in zip(offsets, offsets[1:])]
                values = [t for r in rows for t in r]
                offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
            out = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.string()))
            yield pa.RecordBatch.from_arrays([out], ["tokens"])
    return rewrite


def input_rows(spark, fs: HadoopFS, cfg: Config):
    """The input as rows of tokens (tokens: array<string>), tokenized exactly as build_vocab would."""
    from pyspark.sql import functions as F

    df = read_input(spark, fs, cfg)
    if "seq" in df.columns:
        return df.select(sequence_tokens(F.col("seq").cast("array<string>")).alias("tokens"))
    return df.select(text_tokens(F.col("text"), cfg).alias("tokens"))


TOKENS_PER_SHUFFLE_PARTITION = 2_000_000


@sized_shuffles
def build_phrases(spark, cfg: Config, log, set_partitions) -> dict:
    """Run the phrase job; -> its statistics (also written as phrases_stats.json).

    The job's shuffles use max(2 x default parallelism, tokens / 2M) partitions (set for its duration): with
    Spark's 200 the 15M-word benchmark corpus took 232 s on 2 cores, with 8 partitions 154 s."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    p = cfg.phrases
    fs = HadoopFS(spark)
    out_dir = cfg.output.dir
    check_outputs(fs, out_dir, OUTPUTS, cfg.output.overwrite)
    connectors = frozenset(p.common_words)
    rows = input_rows(spark, fs, cfg).where(F.size("tokens") > 0).persist(StorageLevel.MEMORY_AND_DISK)
    cached, found, passes = [rows], [], []
    try:
        spark.sparkContext.setJobDescription("w2vspark phrases: read the input")
        totals = rows.agg(F.count("*").alias("rows"), F.sum(F.size("tokens")).alias("tokens")).first()
        if not totals["rows"]:
            raise InputError(f"input {cfg.input.path} holds no tokens")
        set_partitions(max(2 * spark.sparkContext.defaultParallelism,
                           -(-int(totals["tokens"]) // TOKENS_PER_SHUFFLE_PARTITION)))
        for n in range(1, p.passes + 1):
            spark.sparkContext.setJobDescription(f"w2vspark phrases: count pass {n}")
            t_pass = time.perf_counter()
            accepted, vocab_size, persisted = find_phrases(spark, rows, cfg)
            cached.extend(persisted)
            t_count = time.perf_counter()
            table = accepted.collect()
            t_score = time.perf_counter()
            keys = phrase_table(((r["a"], r["b"], r["phrase"]) for r in table), p.delimiter)
            best: dict[str, tuple[int, float]] = {}
            for r in table:
                if r["phrase"] not in best or r["score"] > best[r["phrase"]][1]:
                    best[r["phrase"]] = (int(r["count"]), float(r["score"]))
            found.extend((phrase, count, s, n) for phrase, (count, s) in best.items())
            spark.sparkContext.setJobDescription(f"w2vspark phrases: rewrite pass {n}")
            bc = spark.sparkContext.broadcast(keys)
            rewritten = rows.mapInArrow(_rewrite_function(bc, connectors), "tokens array<string>")
            rewritten = rewritten.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(rewritten)
            out_tokens = rewritten.agg(F.sum(F.size("tokens"))).first()[0] or 0
            bc.unpersist()
            passes.append({"pass": n, "vocabulary": int(vocab_size), "phrases": len(best),
                           "tokens_after": int(out_tokens)})
            log(f"pass {n}: {len(best)} phrases among {vocab_size} words and candidates; "
                f"{out_tokens} tokens after joining them (counted in {t_count - t_pass:.1f} s, scored in "
                f"{t_score - t_count:.1f} s, rewritten in {time.perf_counter() - t_score:.1f} s)")
            rows = rewritten

        spark.sparkContext.setJobDescription("w2vspark phrases: write")
        with fs.staged(out_dir, "phrases", OUTPUTS) as tmp:
            (spark.createDataFrame(found, "phrase string, count long, score double, pass int")
             .orderBy(F.desc("count"), "phrase").coalesce(1).write.parquet(join(tmp, "phrases")))
            rows.write.parquet(join(tmp, "phrased"))
            stats = {"input": cfg.input.path, "rows": int(totals["rows"]), "tokens": int(totals["tokens"] or 0),
                     "min_count": p.min_count, "threshold": p.threshold, "delimiter": p.delimiter,
                     "common_words": sorted(connectors), "passes": passes, "phrases": len(found),
                     "seconds": round(time.perf_counter() - t0, 3)}
            fs.write_json(join(tmp, "phrases_stats.json"), stats)
    finally:
        for df in cached:
            df.unpersist()
    return stats
