"""Exports of a trained model for other tools: word2vec text and binary, and TSV for embedding projectors.

Formats (facts of the word2vec.c / gensim formats):
- text:   "V d\n", then one line per word: the word and d numbers separated by single spaces;
- binary: "V d\n", then per word: the word, one space, d little-endian float32, "\n";
- projector: vectors.tsv (d tab-separated numbers a line) and metadata.tsv (one word a line, no header).
Words come most frequent first (id order). Lines end with "\n" only.

:func:`export_model` (the export job) formats on the executors: each Spark task formats runs of consecutive rows of
the model's data/, Spark's text writer writes them in row order as part files, and the driver's JVM copies the
header and the parts into the one export file. The driver never holds the vectors, so a model larger than its
memory (``train.params_on = "executors"``) exports as it trained.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .errors import UserError
from .model import Word2VecModel, vectors_of

ROWS_PER_CHUNK = 4096
PART_BYTES = 64 << 20  # the export job's rows (as float32) per task
# what str.isspace() calls whitespace, in Java's regex syntax: Unicode's White_Space and the separators U+001C-1F
_SPACE_REGEX = r"(?U)[\s\x{1C}-\x{1F}]"


def _numbers(vectors: np.ndarray, sep: str) -> list[str]:
    # 9 significant digits round-trip every float32 exactly; one format string a row (1.6x faster than per number)
    row_format = sep.join(["%.9g"] * vectors.shape[1])
    return [row_format % tuple(row) for row in vectors.tolist()]


def _text_body(words: list[str], vectors: np.ndarray) -> bytes:
    return "\n".join(f"{w} {r}" for w, r in zip(words, _numbers(vectors, " "))).encode("utf-8")


def _binary_body(words: list[str], vectors: np.ndarray) -> bytes:
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    return b"\n".join(w.encode("utf-8") + b" " + row.tobytes() for w, row in zip(words, rows))


def _tsv_body(words: list[str], vectors: np.ndarray) -> bytes:
    return "\n".join(_numbers(vectors, "\t")).encode("utf-8")


def _metadata_body(words: list[str], vectors: np.ndarray) -> bytes:
    return "\n".join(words).encode("utf-8")


@dataclass(frozen=True)
class Format:
    header: bool  # "V d\n" first
    body: Callable[[list[str], np.ndarray], bytes]  # the rows' lines joined by "\n", no final "\n"


EXPORTS = {  # the names are w2vspark.config.EXPORT_NAMES
    "vectors.txt": Format(True, _text_body),
    "vectors.bin": Format(True, _binary_body),
    "vectors.tsv": Format(False, _tsv_body),
    "metadata.tsv": Format(False, _metadata_body),
}


def _bad_word_error(word: str, where: str = "") -> UserError:
    return UserError(f"word {word!r}{where} is empty or contains whitespace: the word2vec formats cannot hold it")


def check_words(model: Word2VecModel) -> None:
    for w in model.words:
        if not w or any(c.isspace() for c in w):
            raise _bad_word_error(w)


def export_chunks(model: Word2VecModel, name: str) -> Iterator[bytes]:
    """The export ``name`` (a key of EXPORTS) of an in-memory model, as chunks of bytes."""
    fmt = EXPORTS[name]
    if name != "vectors.tsv":
        check_words(model)
    if fmt.header:
        yield f"{len(model.words)} {model.dim}\n".encode()
    for lo in range(0, len(model.words), ROWS_PER_CHUNK):
        yield fmt.body(model.words[lo:lo + ROWS_PER_CHUNK], model.vectors[lo:lo + ROWS_PER_CHUNK]) + b"\n"


def word2vec_text(model: Word2VecModel) -> Iterator[bytes]:
    return export_chunks(model, "vectors.txt")


def word2vec_binary(model: Word2VecModel) -> Iterator[bytes]:
    return export_chunks(model, "vectors.bin")


def projector_vectors(model: Word2VecModel) -> Iterator[bytes]:
    return export_chunks(model, "vectors.tsv")


def projector_metadata(model: Word2VecModel) -> Iterator[bytes]:
    return export_chunks(model, "metadata.tsv")


def _run_starts(files: list, rows: np.ndarray) -> list[int]:
    """Where the runs of a batch start: at a new file, a gap in the row numbers, or ROWS_PER_CHUNK rows on."""
    starts = []
    for i in range(len(rows)):
        if (not starts or files[i] != files[i - 1] or rows[i] != rows[i - 1] + 1
                or i - starts[-1] == ROWS_PER_CHUNK):
            starts.append(i)
    return starts


def run_bodies(body, dim: int):
    """mapInArrow function: batches of (file, row, word, vector), in (file, row) order -> one record (data) per
    run of consecutive rows of one file, at most ROWS_PER_CHUNK rows (a record stays far below Arrow's 2 GB
    whatever spark.sql.execution.arrow.maxRecordsPerBatch is): ``body`` of the run's words and vectors."""
    import pyarrow as pa

    def fn(batches):
        for batch in batches:
            files = batch.column(0).to_pylist()
            rows = batch.column(1).to_numpy()  # (n,) int64
            words = batch.column(2).to_pylist()
            vectors = vectors_of(batch, 3, dim)  # (n, dim)
            starts = _run_starts(files, rows)
            for a, b in zip(starts, [*starts[1:], len(rows)]):
                yield pa.RecordBatch.from_pydict({"data": pa.array([body(words[a:b], vectors[a:b])], pa.binary())})
    return fn


def check_rows(rows, data_uri: str, vocab_size: int, dim: int, words: bool = True) -> None:
    """One Spark job over the rows (file, row, word, vector): every word writable (unless not ``words``), every
    vector of ``dim`` numbers, ``vocab_size`` rows; the first offending row (in file and row order) is named."""
    from pyspark.sql import functions as F

    bad_word = F.col("word").isNull() | (F.col("word") == "") | F.col("word").rlike(_SPACE_REGEX)
    bad_word = bad_word if words else F.col("word").isNull()
    bad_dim = F.col("vector").isNull() | (F.size("vector") != dim)
    found = rows.agg(F.count(F.lit(1)).alias("n"), F.sum(bad_word.cast("long")).alias("bad_words"),
                     F.sum(bad_dim.cast("long")).alias("bad_dims")).first()
    first = F.min(F.struct("file", "row", "word")).alias("x")
    if found["bad_words"]:
        w = rows.filter(bad_word).agg(first).first()["x"]
        raise _bad_word_error(w["word"], f" (row {w['row']} of {data_uri}/{w['file']})")
    if found["bad_dims"]:
        v = rows.filter(bad_dim).agg(first).first()["x"]
        raise UserError(f"row {v['row']} of {data_uri}/{v['file']} (word {v['word']!r}) does not hold {dim} "
                        f"numbers, the dim of the model's w2vspark.json")
    if found["n"] != vocab_size:
        raise UserError(f"{data_uri} holds {found['n']} rows; the model's w2vspark.json says vocab_size "
                        f"{vocab_size}")


def export_model(spark, cfg, log=print) -> dict[str, str]:
    """Write the exports that ``output.exports`` names (all four by default) of output.dir/model under
    output.dir/export/, each file atomically: formatted by the executors, copied into place by the driver's JVM.
    Exports not named are left as they are."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from .io.atomic import OutputExistsError
    from .io.hadoop import HadoopFS, join
    from .io.model_files import model_rows, read_model_info

    fs = HadoopFS(spark)
    model_uri = join(cfg.output.dir, "model")
    info = read_model_info(fs, model_uri)
    dim, vocab_size = int(info["dim"]), int(info["vocab_size"])
    targets = {name: join(cfg.output.dir, "export", name) for name in EXPORTS if name in cfg.output.exports}
    if not cfg.output.overwrite:
        for uri in targets.values():
            if fs.exists(uri):
                raise OutputExistsError(f"{uri} already exists; pass --overwrite (output.overwrite=true) to replace it")
    # contiguous ranges of rows, in order within each: a task formats runs of consecutive rows and writes them
    # as the part file of its range (a file of data/ is one split unless large, so the read alone is not
    # parallel); read, cut and checked once for all the exports (kept on the executors' disks)
    tasks = max(spark.sparkContext.defaultParallelism, -(-vocab_size * (4 * dim + 16) // PART_BYTES))
    ranges = (model_rows(spark, model_uri).repartitionByRange(tasks, "file", "row")
              .sortWithinPartitions("file", "row").persist(StorageLevel.DISK_ONLY))
    parts_uri = join(cfg.output.dir, "export", f"_tmp-parts-{uuid.uuid4().hex[:8]}")
    try:
        check_rows(ranges, join(model_uri, "data"), vocab_size, dim)
        # an export killed on the way leaves its part files (as large as the exports) and temporary files behind
        for leftover in fs.glob(join(cfg.output.dir, "export", "_tmp-parts-*")) + fs.glob(
                join(cfg.output.dir, "export", "*.tmp-*")):
            fs.delete(leftover)
            log(f"removed {leftover}, left by an interrupted export")
        for name, uri in targets.items():
            fmt = EXPORTS[name]
            folder = join(parts_uri, name)
            (ranges.mapInArrow(run_bodies(fmt.body, dim), "data binary")
             .select(F.col("data").cast("string")).write.option("compression", "none")
             .option("maxRecordsPerFile", 0).text(folder))  # one part file per range, named in range order
            parts = sorted(path for path, _ in fs.files_under(folder))
            fs.concatenate(uri, f"{vocab_size} {dim}\n".encode() if fmt.header else b"", parts)
            log(f"wrote {uri}")
    finally:
        ranges.unpersist()
        fs.delete(parts_uri)
    return targets
