"""Stage 1 on Spark: read the input, tokenize, count, cut the vocabulary and write the encoded corpus.

Everything heavy runs in Spark (SQL functions and one Arrow UDF). A vocabulary of up to DRIVER_VOCAB_WORDS
words is ranked on the driver and broadcast to the encoder; a larger one is ranked in Spark and joined with the
tokens, so that none of its words reaches the driver (a start model's words are merged on the driver). Output
under ``output.dir``:
  vocab/   Parquet  id: int, word: string, count: long      (id = rank by count desc, then word asc)
  corpus/  Parquet  key: long, ids: array<int>             (one row per sentence chunk, OOV removed,
                                                            rows with < 2 ids dropped)
  corpus_stats.json
``key`` is xxhash64(line text, chunk index): a sentence's partition is pmod(key, P) and rows are ordered by
(key, ids) inside a partition, so the same input gives the same partitions whatever the input splits, file
names or cluster size.
"""
from __future__ import annotations

import time

from .config import Config, ConfigError
from .errors import InputError
from .io.atomic import OutputExistsError
from .io.hadoop import HadoopFS, join
from .io.tables import read_table
from .text import JAVA_TOKEN_PATTERN
from .train.partitions import partition_for_training
from .vocab import Vocabulary, VocabularyError, WordCounts

OUTPUTS = ("vocab", "corpus", "corpus_stats.json")
REPLACEMENT_CHAR = "\ufffd"


def check_outputs(fs: HadoopFS, out_dir: str, names, overwrite: bool) -> None:
    existing = [n for n in names if fs.exists(join(out_dir, n))]
    if existing and not overwrite:
        raise OutputExistsError(f"{join(out_dir, existing[0])} already exists; set output.overwrite=true "
                                f"to replace it")


def read_input(spark, fs: HadoopFS, cfg: Config):
    """-> DataFrame with one column: ``text`` (string), or ``seq`` (an array column of ready-made sequences)
    when ``input.tokens_column`` is set; clear errors for missing paths, columns and wrong column types."""
    path, fmt = cfg.input.path, cfg.input.format
    if not fs.glob(path):
        raise InputError(f"input path not found: {path}")
    files = fs.files_under(path)
    if not files:
        raise InputError(f"input path {path} holds no files")
    from pyspark.sql import functions as F

    if fmt == "text":
        if all(size == 0 for _, size in files):
            raise InputError(f"input {path} is empty ({len(files)} file(s) of 0 bytes)")
        return spark.read.text(path).select(F.col("value").alias("text"))
    df = read_table(spark, fs, path, fmt, "input", "input.path")
    if cfg.input.tokens_column:
        column = cfg.input.tokens_column
        require_column(df, column, SEQUENCE_TYPES, f"input table {path}", "input.tokens_column")
        return df.select(F.col(column).alias("seq"))
    column = cfg.input.text_column
    require_column(df, column, "string", f"input table {path}", "input.text_column")
    return df.select(F.col(column).alias("text"))


def require_column(df, column: str, dtypes: str | tuple[str, ...], where: str, key: str) -> None:
    """A clear error unless ``df`` has ``column`` of Spark type ``dtypes`` (one, or a tuple of allowed types);
    ``key`` is the setting naming it."""
    allowed = (dtypes,) if isinstance(dtypes, str) else dtypes
    if column not in df.columns:
        raise InputError(f"{where} has no column '{column}' ({key}); its columns are: {', '.join(df.columns)}")
    actual = dict(df.dtypes)[column]
    if actual not in allowed:
        names = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
        raise InputError(f"column '{column}' of {where} has type {actual}; {key} must name a column of type {names}")


SEQUENCE_TYPES = ("array<string>", "array<int>", "array<bigint>")  # ready-made sequences (input.tokens_column)


def check_token_pattern(spark, pattern: str) -> None:
    if not pattern:
        return
    try:
        spark._jvm.java.util.regex.Pattern.compile(pattern)
    except Exception as exc:
        raise ConfigError(f"config key 'vocab.token_pattern' is not a valid Java regex: {pattern!r} "
                          f"({str(exc).splitlines()[0][:200]})") from None


def _chunks_expr(length: int):
    """array<string> column _tokens -> array of struct(chunk: int, tokens: array<string>), at most ``length``
    tokens each (one empty chunk for an empty array)."""
    from pyspark.sql import functions as F

    return F.expr(
        f"transform(sequence(0, greatest(cast(ceil(size(_tokens) / {length}) as int) - 1, 0)), "
        f"i -> struct(i as chunk, slice(_tokens, i * {length} + 1, {length}) as tokens))")


def text_tokens(text, cfg: Config):
    """A string column -> its tokens (array<string>) as the vocabulary sees them: invalid UTF-8 replaced by
    U+FFFD, lowercased when ``vocab.lowercase``, split by ``vocab.token_pattern``; null -> empty array."""
    from pyspark.sql import functions as F

    v = cfg.vocab
    clean = F.make_valid_utf8(F.coalesce(text, F.lit("")))
    lowered = F.lower(clean) if v.lowercase else clean
    return F.regexp_extract_all(lowered, F.lit(v.token_pattern or JAVA_TOKEN_PATTERN), 0)


def sequence_tokens(raw):
    """An array<string> column of ready-made sequences -> the same without null elements; null -> empty."""
    from pyspark.sql import functions as F

    return F.filter(F.coalesce(raw, F.array().cast("array<string>")), lambda x: x.isNotNull())


def sentence_chunks(text_df, cfg: Config):
    """text -> rows (key: long, chunk: int, tokens: array<string>, bad_utf8: boolean, null_row: boolean,
    null_tokens: int).

    One row per chunk of at most ``vocab.max_sentence_length`` tokens; ``bad_utf8`` marks (the first chunk
    of) lines whose bytes were not valid UTF-8; such bytes are replaced by U+FFFD before tokenizing. A null
    text (possible in a table) is one empty chunk with ``null_row`` set.
    """
    from pyspark.sql import functions as F

    text = F.col("text")
    tokens = text_tokens(text, cfg)
    chunks = _chunks_expr(cfg.vocab.max_sentence_length)
    first = F.col("chunk") == 0
    return (text_df.select(text, F.coalesce(~F.is_valid_utf8(text), F.lit(False)).alias("_bad"),
                           text.isNull().alias("_null"), tokens.alias("_tokens"))
            .select("text", "_bad", "_null", F.inline(chunks))
            .select(F.xxhash64("text", "chunk").alias("key"), "chunk", "tokens",
                    (F.col("_bad") & first).alias("bad_utf8"), (F.col("_null") & first).alias("null_row"),
                    F.lit(0).alias("null_tokens")))


def sequence_chunks(df, column: str, max_sentence_length: int):
    """An array column of sequences (one of the :data:`SEQUENCE_TYPES`) -> the rows of :func:`sentence_chunks`.

    Tokens are used as they are: numbers become their decimal string, nothing is lowercased or re-tokenized.
    Null elements are removed (counted in ``null_tokens`` on the first chunk); a null array is one empty chunk
    with ``null_row`` set. key = xxhash64(the whole sequence without its nulls, chunk index).
    """
    from pyspark.sql import functions as F

    raw = F.col(column).cast("array<string>")
    tokens = sequence_tokens(raw)
    dropped = F.when(raw.isNull(), F.lit(0)).otherwise(F.size(raw) - F.size(tokens))
    chunks = _chunks_expr(max_sentence_length)
    first = F.col("chunk") == 0
    return (df.select(raw.isNull().alias("_null"), tokens.alias("_tokens"), dropped.alias("_dropped"))
            .select("_tokens", "_null", "_dropped", F.inline(chunks))
            .select(F.xxhash64("_tokens", "chunk").alias("key"), "chunk", "tokens", F.lit(False).alias("bad_utf8"),
                    (F.col("_null") & first).alias("null_row"),
                    F.when(first, F.col("_dropped")).otherwise(F.lit(0)).alias("null_tokens")))


def count_words(chunks):
    from pyspark.sql import functions as F

    return chunks.select(F.explode("tokens").alias("word")).groupBy("word").count()


def select_vocab(counts, cfg: Config) -> Vocabulary:
    """Apply min_count / max_vocab_size in Spark and bring the kept words to the driver as Arrow (a million
    words arrive in seconds, not as a million Row objects), ranked in Arrow by count desc, word asc."""
    from pyspark.sql import functions as F

    v = cfg.vocab
    kept = counts.where(F.col("count") >= v.min_count)
    if v.max_vocab_size is not None:
        kept = kept.orderBy(F.desc("count"), F.asc("word")).limit(v.max_vocab_size)
    table = kept.toArrow()
    if not table.num_rows:
        raise no_word_error(counts, v.min_count)
    return ranked_vocabulary(table)


def no_word_error(counts, min_count: int) -> VocabularyError:
    from pyspark.sql import functions as F

    summary = counts.agg(F.count("*").alias("n"), F.max("count").alias("top")).first()
    return VocabularyError(f"no word reaches min_count={min_count}: the input has {summary['n']} distinct words "
                           f"and the highest count is {summary['top'] or 0}; lower vocab.min_count")


def ranked_vocab_frame(counts, cfg: Config):
    """Apply min_count / max_vocab_size and number the kept words in Spark: -> (DataFrame (id int, word string,
    count long) with ids 0..V-1 by count desc, then word asc (Spark orders strings by their UTF-8 bytes, as
    :func:`ranked_vocabulary` and Python do), persisted: the caller unpersists it; V; the kept words' summed
    count). Nothing per word reaches the driver: the sort's partitions are numbered by their sizes (one row per
    partition), as RDD.zipWithIndex does."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    v = cfg.vocab
    ordered = counts.where(F.col("count") >= v.min_count).orderBy(F.desc("count"), F.asc("word"))
    if v.max_vocab_size is not None:
        ordered = ordered.limit(v.max_vocab_size)
    numbered = ordered.select("word", "count", F.spark_partition_id().alias("_part"),
                              F.monotonically_increasing_id().alias("_row")).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        sizes = sorted((r["_part"], r["n"], r["total"]) for r in numbered.groupBy("_part").agg(
            F.count("*").alias("n"), F.sum("count").alias("total")).collect())
        if not sizes:
            raise no_word_error(counts, v.min_count)
        first, start = [], 0
        for part, n, _ in sizes:
            first += [F.lit(part), F.lit(start)]
            start += n
        # monotonically_increasing_id = partition index << 33 + position in the partition
        position = F.col("_row") - F.shiftleft(F.col("_part").cast("long"), 33)
        ranked = numbered.select((F.element_at(F.create_map(*first), F.col("_part")) + position).cast("int")
                                 .alias("id"), "word", "count").persist(StorageLevel.MEMORY_AND_DISK)
        ranked.count()  # computed while numbered is cached: a second sort could number the partitions otherwise
        return ranked, start, sum(int(total) for _, _, total in sizes)
    finally:
        numbered.unpersist()


def ranked_vocabulary(table) -> Vocabulary:
    """A pyarrow Table (word: string, count: integer) of distinct words -> the Vocabulary with ids by count
    descending, then word ascending. Arrow orders strings by their UTF-8 bytes, which is code point order, the
    order of Python's ``sorted`` (:func:`w2vspark.vocab.rank_counts`)."""
    import pyarrow.compute as pc

    order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("word", "ascending")])
    ranked = table.take(order)
    return Vocabulary(tuple(ranked.column("word").to_pylist()), ranked.column("count").to_numpy())


def continued_vocab(spark, counts, cfg: Config, start=None):
    """The vocabulary of ``train.init_model`` merged with this corpus's counts (see :mod:`w2vspark.continued`)
    -> (vocabulary, statistics for corpus_stats.json). Only the counts of known words and of words reaching
    min_count come to the driver."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    from .continued import merge_vocab, read_start_model

    start = start or read_start_model(spark, cfg.train.init_model)
    known = spark.createDataFrame(pa.table({"word": pa.array(start.words, pa.string())}))
    wanted = counts.where(F.col("count") >= cfg.vocab.min_count).unionByName(counts.join(known, "word", "left_semi"))
    table = wanted.distinct().toArrow()
    pairs = zip(table.column("word").to_pylist(), table.column("count").to_pylist())
    return merge_vocab(start, pairs, cfg.vocab.min_count, cfg.vocab.max_vocab_size)


ENCODE_TOKENS = 1 << 20  # tokens looked up together, at least; see _encoder


def _encoder(words_broadcast):
    """mapInArrow function: tokens (list<string>) -> ids (list<int32>) with out-of-vocabulary tokens removed.

    ``pc.index_in`` hashes its whole value set (the vocabulary) at every call: with a million words that is
    ~0.3 s, and one call per Arrow batch (2,048 walks) made encoding 39M tokens take 130 s on two cores. Batches
    are therefore gathered until they hold max(ENCODE_TOKENS, V) tokens (at most 4 x ENCODE_TOKENS) and looked
    up in one call, so hashing the vocabulary costs at most about as much as the lookups."""

    def encode(batches):
        import pyarrow as pa

        value_set = pa.array(words_broadcast.value, type=pa.string())
        enough = min(max(ENCODE_TOKENS, len(value_set)), 4 * ENCODE_TOKENS)
        keys, tokens, pending = [], [], 0
        for batch in batches:
            keys.append(batch.column("key"))
            tokens.append(batch.column("tokens"))
            pending += len(tokens[-1].flatten())
            if pending >= enough:
                yield _encode_batch(keys, tokens, value_set)
                keys, tokens, pending = [], [], 0
        if keys:
            yield _encode_batch(keys, tokens, value_set)

    return encode


def _encode_batch(keys: list, tokens: list, value_set):
    """Arrow arrays of keys and token lists (several batches) -> one RecordBatch (key, ids)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    key = pa.concat_arrays(keys)
    lists = pa.concat_arrays(tokens)
    n = len(lists)
    flat = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy()  # (T,)
    idx = pc.index_in(flat, value_set=value_set)  # (T,) int32, null when out of vocabulary
    valid = idx.is_valid().to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents[valid], minlength=n)  # (n,)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = idx.filter(pa.array(valid)).cast(pa.int32())
    return pa.RecordBatch.from_arrays([key, pa.ListArray.from_arrays(pa.array(offsets), values)], names=["key", "ids"])


def encode(spark, chunks, vocab: Vocabulary):
    """chunks (key, tokens) -> (DataFrame(key, ids) of chunks with >= 2 in-vocabulary tokens, the broadcast of
    the words that it needs until it is no longer evaluated: the caller unpersists it)."""
    from pyspark.sql import functions as F

    words_bc = spark.sparkContext.broadcast(list(vocab.words))
    encoded = chunks.select("key", "tokens").mapInArrow(_encoder(words_bc), "key long, ids array<int>")
    return encoded.where(F.size("ids") >= 2), words_bc


# Vocabularies up to this size are ranked on the driver (Arrow) and broadcast to the encoder, the faster way;
# larger ones are ranked in Spark (ranked_vocab_frame) and joined with the tokens (encode_by_join), so that no
# word reaches the driver or every Python worker (the broadcast costs each about 200 bytes a word). Measured
# on 2M IDs / 10M tokens, local[2]: 96 s and a 531 MiB Python driver one way, 155 s and 123 MiB the other.
DRIVER_VOCAB_WORDS = 1_000_000


def kept_words(counts, cfg: Config) -> int:
    """How many words the vocabulary keeps (min_count, then max_vocab_size)."""
    from pyspark.sql import functions as F

    kept = counts.where(F.col("count") >= cfg.vocab.min_count).count()
    return kept if cfg.vocab.max_vocab_size is None else min(kept, cfg.vocab.max_vocab_size)


def encode_by_join(chunks, vocab_df):
    """The same rows as :func:`encode` without the words on the driver or in the Python workers: each token,
    with its chunk and position, joined with vocab_df (id, word) and gathered back in position order."""
    from pyspark.sql import functions as F

    numbered = chunks.select("key", "tokens", F.monotonically_increasing_id().alias("_chunk"))  # keys repeat
    tokens = numbered.select("key", "_chunk", F.posexplode("tokens").alias("_pos", "word"))  # for equal lines
    found = tokens.join(vocab_df.select("word", "id"), "word")
    encoded = (found.groupBy("_chunk", "key").agg(F.sort_array(F.collect_list(F.struct("_pos", "id"))).alias("_s"))
               .select("key", F.col("_s")["id"].alias("ids")))
    return encoded.where(F.size("ids") >= 2)


def build_corpus(spark, cfg: Config, log=print) -> dict:
    """Run the whole stage and return its statistics (also written as corpus_stats.json)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    fs = HadoopFS(spark)
    out_dir = cfg.output.dir
    check_outputs(fs, out_dir, OUTPUTS, cfg.output.overwrite)
    check_token_pattern(spark, cfg.vocab.token_pattern)
    text = read_input(spark, fs, cfg)
    spark.sparkContext.setJobDescription("w2vspark build_vocab: tokenize and count")
    sequences = bool(cfg.input.tokens_column)
    chunks = (sequence_chunks(text, "seq", cfg.vocab.max_sentence_length) if sequences
              else sentence_chunks(text, cfg)).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [chunks]
    try:
        first, row = F.col("chunk") == 0, ~F.col("null_row")
        totals = chunks.agg(F.sum((first & row).cast("long")).alias("lines"),
                            F.sum(F.size("tokens")).alias("tokens"),
                            F.sum(F.col("bad_utf8").cast("long")).alias("bad"),
                            F.sum(F.col("null_row").cast("long")).alias("nulls"),
                            F.sum((first & row & (F.size("tokens") == 0)).cast("long")).alias("empty"),
                            F.sum("null_tokens").alias("null_tokens")).first()
        what = f"column {cfg.input.tokens_column} of {cfg.input.path}" if sequences else f"input {cfg.input.path}"
        if not totals["lines"]:
            raise InputError(f"{what} has no {'non-null sequences' if sequences else 'lines'}"
                             + (f" ({totals['nulls']} null)" if totals["nulls"] else ""))
        if not totals["tokens"]:
            raise InputError(f"{what} has {totals['lines']} {'sequences' if sequences else 'lines'} but no tokens"
                             + ("" if sequences else " (vocab.token_pattern matches nothing)"))
        if sequences and (totals["nulls"] or totals["empty"] or totals["null_tokens"]):
            log(f"skipped {totals['nulls']} null and {totals['empty']} empty sequences and "
                f"{totals['null_tokens']} null elements of {what}")
        counts = count_words(chunks).persist(StorageLevel.MEMORY_AND_DISK)  # one row per distinct word
        cached.append(counts)
        continued, vocab, vocab_df = {}, None, None  # the vocabulary on the driver, or in Spark
        if cfg.train.init_model:  # merged with the start model's words on the driver
            vocab, continued = continued_vocab(spark, counts, cfg)
        elif kept_words(counts, cfg) <= DRIVER_VOCAB_WORDS:  # ranked as Arrow on the driver, broadcast
            vocab = select_vocab(counts, cfg)
        else:  # ranked in Spark, joined with the tokens
            vocab_df, vocab_size, in_vocab = ranked_vocab_frame(counts, cfg)
            cached.append(vocab_df)
        if vocab is not None:
            vocab_size, in_vocab = len(vocab), int(vocab.counts.sum())
        distinct = counts.count()
        log(f"vocabulary: {vocab_size} of {distinct} distinct words reach min_count={cfg.vocab.min_count}"
            + (f" or are known to {cfg.train.init_model} ({continued['known_words']} known, "
               f"{continued['known_words_in_corpus']} of them in this corpus; {continued['new_words']} new)"
               if continued else ""))

        with fs.staged(out_dir, "build_vocab", OUTPUTS) as tmp:
            if vocab is not None:
                write_vocab(spark, vocab, join(tmp, "vocab"))
            else:
                vocab_df.coalesce(max(1, -(-vocab_size // VOCAB_WRITE_ROWS))).write.parquet(join(tmp, "vocab"))

            spark.sparkContext.setJobDescription("w2vspark build_vocab: encode and write the corpus")
            encoded, words_bc = encode(spark, chunks, vocab) if vocab is not None else (
                encode_by_join(chunks, vocab_df), None)
            try:
                partition_for_training(spark, encoded, cfg.train.num_partitions, persist=False,
                                       numbered=False).drop("part") \
                    .write.parquet(join(tmp, "corpus"))
            finally:
                if words_bc is not None:
                    words_bc.unpersist()
            written = spark.read.parquet(join(tmp, "corpus")).agg(
                F.count("*").alias("sentences"), F.sum(F.size("ids")).alias("words")).first()
            stats = {
                "input": cfg.input.path, "input_lines": int(totals["lines"]), "tokens": int(totals["tokens"]),
                "tokens_in_vocab": in_vocab, "kept_tokens": int(written["words"] or 0),
                "sentences": int(written["sentences"]), "distinct_words": int(distinct),
                "vocab_size": vocab_size, "rare_fraction": 1.0 - in_vocab / int(totals["tokens"]),
                "lines_with_undecodable_bytes": int(totals["bad"] or 0),
                "tokens_column": cfg.input.tokens_column, "null_rows": int(totals["nulls"] or 0),
                "empty_rows": int(totals["empty"] or 0), "null_tokens": int(totals["null_tokens"] or 0),
                "num_partitions": cfg.train.num_partitions, "min_count": cfg.vocab.min_count,
                "max_sentence_length": cfg.vocab.max_sentence_length,
                "seconds": round(time.perf_counter() - t0, 3), **continued,
            }
            fs.write_json(join(tmp, "corpus_stats.json"), stats)
    finally:
        for df in cached:
            df.unpersist()
    return stats


def vocab_table(vocab: Vocabulary):
    """The vocabulary as the pyarrow Table written to vocab/: (id int32, word string, count int64), none null."""
    import numpy as np
    import pyarrow as pa

    schema = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("word", pa.string(), nullable=False),
                        pa.field("count", pa.int64(), nullable=False)])
    return pa.table([np.arange(len(vocab), dtype=np.int32), pa.array(vocab.words, pa.string()), vocab.counts],
                    schema=schema)


VOCAB_WRITE_ROWS = 250_000  # vocabulary rows per write job (each job's data travels inside its one task)


def write_vocab(spark, vocab: Vocabulary, uri: str, rows: int = VOCAB_WRITE_ROWS) -> None:
    """vocab/ (see :func:`vocab_table`) written ``rows`` words at a time, one Parquet file each: a table made on
    the driver reaches the executors inside the serialized tasks, and one task holding millions of words ran
    the driver's JVM out of memory (2M IDs with a 1 GB driver). The ids order the rows (:func:`read_vocab`)."""
    table = vocab_table(vocab)
    for lo in range(0, max(table.num_rows, 1), rows):
        spark.createDataFrame(table.slice(lo, rows)).coalesce(1).write.mode("append").parquet(uri)


def _vocab_path(spark, run_dir: str) -> str:
    path = join(run_dir, "vocab")
    if not HadoopFS(spark).exists(path):
        raise InputError(f"no vocabulary at {path}: run jobs/build_vocab.py first with the same output.dir")
    return path


def vocab_size(spark, run_dir: str) -> int:
    """The number of words in vocab/, from the Parquet files' row counts (no column reaches the driver)."""
    return spark.read.parquet(_vocab_path(spark, run_dir)).count()


def _vocab_columns(spark, run_dir: str, columns: list[str]):
    """The columns of vocab/ (with ``id``) collected to the driver as a pyarrow Table in id order, checked."""
    import numpy as np
    import pyarrow.compute as pc

    path = _vocab_path(spark, run_dir)
    table = spark.read.parquet(path).select("id", *columns).toArrow()
    table = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))
    if not np.array_equal(table.column("id").to_numpy(), np.arange(table.num_rows)):
        raise InputError(f"vocabulary at {path} has ids that are not 0..V-1")
    return table


def read_vocab(spark, run_dir: str) -> Vocabulary:
    """The vocabulary written by :func:`build_corpus` (collected to the driver, in id order)."""
    table = _vocab_columns(spark, run_dir, ["word", "count"])
    return Vocabulary(tuple(table.column("word").to_pylist()), table.column("count").to_numpy())


def read_counts(spark, run_dir: str) -> WordCounts:
    """Only the counts of vocab/ in id order: what training needs of the vocabulary when the parameters live on
    the executors (12 bytes a word reach the driver instead of the words, their index and their counts)."""
    return WordCounts(_vocab_columns(spark, run_dir, ["count"]).column("count").to_numpy())
