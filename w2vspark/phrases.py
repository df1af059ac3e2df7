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
import uuid
from typing import Iterable, Sequence

from .config import Config
from .corpus import check_outputs, read_input, sequence_tokens, text_tokens
from .errors import InputError
from .hadoop import HadoopFS, join

OUTPUTS = ("phrases", "phrased", "phrases_stats.json")


def join_phrases(tokens: Sequence[str], phrases: set, connectors: frozenset, delimiter: str) -> list[str]:
    """``tokens`` with every phrase, taken greedily from the left, joined into one token.

    ``phrases`` holds (a, b, joined) for each accepted candidate: the key names the words at both ends because
    a joined string can be split in more than one way once tokens contain the delimiter (a second pass).
    """
    out: list[str] = []
    start, between = None, []
    for word in tokens:
        if word in connectors:
            if start is None:
                out.append(word)
            else:
                between.append(word)
            continue
        if start is not None:
            joined = delimiter.join([start, *between, word])
            if (start, word, joined) in phrases:
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


def _candidates(tokens, connectors: Sequence[str], delimiter: str):
    """Spark column: array of struct(a, b, joined) for every candidate of the array<string> column ``tokens``."""
    from pyspark.sql import functions as F

    conn = F.array(*[F.lit(c) for c in connectors]).cast("array<string>")
    # 0-based positions of the tokens that are not connectors (an empty row: [0] with a null token, dropped)
    last = F.greatest(F.size(tokens) - 1, F.lit(0))
    pos = F.filter(F.sequence(F.lit(0), last), lambda i: ~F.array_contains(conn, tokens[i]))
    n = F.greatest(F.size(pos) - 1, F.lit(0))
    return F.zip_with(F.slice(pos, 1, n), F.slice(pos, 2, n), lambda j, i: F.struct(
        tokens[j].alias("a"), tokens[i].alias("b"),
        F.array_join(F.slice(tokens, j + 1, i - j + 1), delimiter).alias("joined")))


def find_phrases(spark, rows, cfg: Config):
    """rows (tokens: array<string>) -> (DataFrame phrase, a, b, count, score of the accepted candidates,
    vocabulary size of the pass)."""
    from pyspark.sql import functions as F

    p = cfg.phrases
    connectors = sorted(set(p.common_words))
    tokens = F.col("tokens")
    conn = F.array(*[F.lit(c) for c in connectors]).cast("array<string>")
    words = rows.select(F.explode(F.filter(tokens, lambda t: ~F.array_contains(conn, t))).alias("key"))
    cands = rows.select(F.explode(_candidates(tokens, connectors, p.delimiter)).alias("c")).select("c.*")
    counts = words.union(cands.select(F.col("joined").alias("key"))).groupBy("key").count().persist()
    vocab_size = counts.count()
    c = counts.select("key", "count")
    scored = cands.distinct().join(c.withColumnRenamed("key", "joined").withColumnRenamed("count", "n_ab"), "joined")
    if p.threshold >= 0:  # a count <= min_count scores <= 0: skip those candidates before the joins
        scored = scored.where(F.col("n_ab") > p.min_count)
    scored = (scored.join(c.withColumnRenamed("key", "a").withColumnRenamed("count", "n_a"), "a")
              .join(c.withColumnRenamed("key", "b").withColumnRenamed("count", "n_b"), "b")
              .select(F.col("joined").alias("phrase"), "a", "b", F.col("n_ab").alias("count"),
                      ((F.col("n_ab") - p.min_count) / (F.col("n_a") * F.col("n_b")) * vocab_size).alias("score")))
    accepted = scored.where(F.col("score") > p.threshold)
    return accepted, vocab_size, counts


def _rewrite_function(phrases_bc, connectors: frozenset, delimiter: str):
    def rewrite(batches: Iterable):
        import pyarrow as pa

        phrases = phrases_bc.value
        for batch in batches:
            rows = batch.column(0).to_pylist()
            out = [join_phrases(r, phrases, connectors, delimiter) for r in rows]
            yield pa.RecordBatch.from_arrays([pa.array(out, pa.list_(pa.string()))], ["tokens"])
    return rewrite


def input_rows(spark, fs: HadoopFS, cfg: Config):
    """The input as rows of tokens (tokens: array<string>), tokenized exactly as build_vocab would."""
    from pyspark.sql import functions as F

    df = read_input(spark, fs, cfg)
    if "seq" in df.columns:
        return df.select(sequence_tokens(F.col("seq").cast("array<string>")).alias("tokens"))
    return df.select(text_tokens(F.col("text"), cfg).alias("tokens"))


def build_phrases(spark, cfg: Config, log=print) -> dict:
    """Run the phrase job; -> its statistics (also written as phrases_stats.json)."""
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
        for n in range(1, p.passes + 1):
            spark.sparkContext.setJobDescription(f"w2vspark phrases: count pass {n}")
            accepted, vocab_size, counts = find_phrases(spark, rows, cfg)
            cached.append(counts)
            table = accepted.collect()
            keys = {(r["a"], r["b"], r["phrase"]) for r in table}
            best: dict[str, tuple[int, float]] = {}
            for r in table:
                if r["phrase"] not in best or r["score"] > best[r["phrase"]][1]:
                    best[r["phrase"]] = (int(r["count"]), float(r["score"]))
            found.extend((phrase, count, s, n) for phrase, (count, s) in best.items())
            spark.sparkContext.setJobDescription(f"w2vspark phrases: rewrite pass {n}")
            bc = spark.sparkContext.broadcast(keys)
            rewritten = rows.mapInArrow(_rewrite_function(bc, connectors, p.delimiter), "tokens array<string>")
            rewritten = rewritten.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(rewritten)
            out_tokens = rewritten.agg(F.sum(F.size("tokens"))).first()[0] or 0
            bc.unpersist()
            passes.append({"pass": n, "vocabulary": int(vocab_size), "phrases": len(best),
                           "tokens_after": int(out_tokens)})
            log(f"pass {n}: {len(best)} phrases among {vocab_size} words and candidates; "
                f"{out_tokens} tokens after joining them")
            rows = rewritten

        spark.sparkContext.setJobDescription("w2vspark phrases: write")
        tmp = join(out_dir, f"_tmp-phrases-{uuid.uuid4().hex[:8]}")
        try:
            (spark.createDataFrame(found, "phrase string, count long, score double, pass int")
             .orderBy(F.desc("count"), "phrase").coalesce(1).write.parquet(join(tmp, "phrases")))
            rows.write.parquet(join(tmp, "phrased"))
            stats = {"input": cfg.input.path, "rows": int(totals["rows"]), "tokens": int(totals["tokens"] or 0),
                     "min_count": p.min_count, "threshold": p.threshold, "delimiter": p.delimiter,
                     "common_words": sorted(connectors), "passes": passes, "phrases": len(found),
                     "seconds": round(time.perf_counter() - t0, 3)}
            fs.write_json(join(tmp, "phrases_stats.json"), stats)
            for name in OUTPUTS:
                fs.replace(join(tmp, name), join(out_dir, name))
        finally:
            fs.delete(tmp)
    finally:
        for df in cached:
            df.unpersist()
    return stats
