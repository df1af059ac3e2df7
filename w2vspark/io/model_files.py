"""Model and checkpoint files on Hadoop URIs, written through Spark: always to a temporary folder, then renamed.

Checkpoint layout (``checkpoints/epoch=NNN/``): ``params/`` Parquet rows (matrix: string, start: int,
nrows: int, data: binary) holding float32 blocks of w_in and w_out, and ``state.json`` (the next round,
the metrics so far, the settings that must match on resume). A folder without ``state.json`` is incomplete
and ignored.
"""
from __future__ import annotations

import json
import re
import uuid

import numpy as np

from ..errors import UserError
from ..model import Word2VecModel, check_format
from ..train.combine import BLOCK_ROWS
from .atomic import OutputExistsError
from .hadoop import HadoopFS, join

CHECKPOINT_FORMAT = 1
_EPOCH_DIR = re.compile(r"epoch=(\d+)$")


def save_model(spark, model: Word2VecModel, uri: str, overwrite: bool = False, w_out=None) -> None:
    """Write ``model`` in the Spark ML Word2VecModel layout plus w2vspark.json at ``uri``, and the output vectors
    ``w_out`` (V, d), when given, as ``w_out/`` (Parquet word, vector in the same order) for continued training."""
    def vectors(tmp: str) -> None:
        write_vectors(spark, model, join(tmp, "data"))
        if w_out is not None:
            write_vectors(spark, Word2VecModel(model.words, w_out), join(tmp, "w_out"))

    write_model_folder(spark, uri, model.spark_metadata(), model.info(), vectors, overwrite)


def write_model_folder(spark, uri: str, metadata: dict, info: dict, write_vectors_to, overwrite: bool = False
                       ) -> None:
    """A model folder at ``uri`` through a temporary folder and a rename: Spark ML's metadata, the vectors that
    ``write_vectors_to(folder)`` writes (data/, w_out/) and w2vspark.json."""
    fs = HadoopFS(spark)
    if fs.exists(uri) and not overwrite:
        raise OutputExistsError(f"{uri} already exists; set output.overwrite=true to replace it")
    tmp = f"{uri.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        fs.write_text(join(tmp, "metadata", "part-00000"), json.dumps(metadata) + "\n")
        write_vectors_to(tmp)
        fs.write_json(join(tmp, "w2vspark.json"), info)
        fs.replace(tmp, uri)
    finally:
        fs.delete(tmp)


def write_vectors(spark, model: Word2VecModel, uri: str) -> None:
    """One Parquet file (word: string, vector: array<float>) at ``uri``: Spark ML's data/ layout."""
    model.to_spark(spark).coalesce(1).write.parquet(uri)


def model_rows(spark, uri: str, folder: str = "data"):
    """The vectors in ``folder`` (data/, w_out/) of the model folder at ``uri`` as (file, row, word, vector):
    ``row`` is the row's place in its Parquet file. Ordered by (file, row), the rows are in the order they were
    written (id order for w2vspark's models), whatever order Spark's tasks read a file's splits in."""
    from pyspark.sql import functions as F

    return (spark.read.parquet(join(uri, folder))
            .select(F.col("_metadata.file_name").alias("file"), F.col("_metadata.row_index").alias("row"),
                    "word", "vector"))


def _vectors_table(spark, uri: str, folder: str):
    """pyarrow Table (word, vector) of ``folder`` in the order it was written."""
    return model_rows(spark, uri, folder).orderBy("file", "row").select("word", "vector").toArrow()


def read_model_info(fs: HadoopFS, model_uri: str) -> dict:
    """w2vspark.json of the model folder at ``model_uri``, for the jobs that read the model on the executors;
    clear errors when it is not one or of another format."""
    info_uri = join(model_uri, "w2vspark.json")
    if not fs.exists(info_uri):
        raise UserError(f"{model_uri} is not a w2vspark model folder (no w2vspark.json); run jobs/train.py first")
    info = fs.read_json(info_uri)
    try:
        check_format(info, info_uri)
    except ValueError as e:
        raise UserError(str(e)) from None
    return info


def load_model(spark, uri: str, mllib: bool = False) -> Word2VecModel:
    """The model folder at ``uri``; with ``mllib`` a folder that Spark MLlib wrote (no w2vspark.json) is read
    too, as vectors without counts or settings."""
    fs = HadoopFS(spark)
    info_uri = join(uri, "w2vspark.json")
    has_info = fs.exists(info_uri)
    if not has_info and not mllib:
        raise UserError(f"{uri} is not a w2vspark model folder (no w2vspark.json)")
    table = _vectors_table(spark, uri, "data")
    if not has_info:
        return Word2VecModel.from_table(table)
    return Word2VecModel.from_parts(fs.read_json(info_uri), table, info_uri)


def load_output_vectors(spark, uri: str, words) -> np.ndarray | None:
    """The output vectors saved beside a model (``w_out/``) in the order of ``words``; None when absent."""
    path = join(uri, "w_out")
    if not HadoopFS(spark).exists(path):
        return None
    table = _vectors_table(spark, uri, "w_out")
    out = Word2VecModel.from_table(table)
    if out.words != list(words):
        raise UserError(f"{path} does not list the words of {join(uri, 'data')} in the same order")
    return out.vectors


def blocks_table(w_in: np.ndarray, w_out: np.ndarray):
    import pyarrow as pa

    matrices, starts, nrows, data = [], [], [], []
    for name, w in (("w_in", w_in), ("w_out", w_out)):
        for lo in range(0, len(w), BLOCK_ROWS):
            block = np.ascontiguousarray(w[lo:lo + BLOCK_ROWS], dtype=np.float32)
            matrices.append(name)
            starts.append(lo)
            nrows.append(len(block))
            data.append(block.tobytes())
    return pa.table({"matrix": pa.array(matrices), "start": pa.array(starts, pa.int32()),
                     "nrows": pa.array(nrows, pa.int32()), "data": pa.array(data, pa.binary())})


def write_checkpoint(spark, checkpoints_uri: str, epoch: int, write_params, state: dict, keep: int = 2) -> str:
    """Checkpoint ``epoch=NNN`` whose params/ ``write_params(uri)`` writes (from the driver's arrays or from
    the executors' blocks), through a temporary folder; keep only the newest ``keep``."""
    fs = HadoopFS(spark)
    final = join(checkpoints_uri, f"epoch={epoch:03d}")
    tmp = join(checkpoints_uri, f"_tmp-epoch={epoch:03d}-{uuid.uuid4().hex[:8]}")
    try:
        write_params(join(tmp, "params"))
        fs.write_json(join(tmp, "state.json"), {**state, "format": CHECKPOINT_FORMAT, "epoch": epoch})
        fs.replace(tmp, final)
    finally:
        fs.delete(tmp)
    for old in list_checkpoints(spark, checkpoints_uri)[:-keep]:
        fs.delete(old[1])
    return final


def list_checkpoints(spark, checkpoints_uri: str) -> list[tuple[int, str]]:
    """Complete checkpoints as (epoch, uri), oldest first."""
    fs = HadoopFS(spark)
    if not fs.exists(checkpoints_uri):
        return []
    found = []
    for uri in fs.glob(join(checkpoints_uri, "epoch=*")):
        m = _EPOCH_DIR.search(uri.rstrip("/"))
        if m and fs.exists(join(uri, "state.json")):
            found.append((int(m.group(1)), uri))
    return sorted(found)


def read_checkpoint_state(spark, uri: str) -> dict:
    """A checkpoint's state.json."""
    return HadoopFS(spark).read_json(join(uri, "state.json"))


def load_checkpoint(spark, uri: str, vocab_size: int, dim: int) -> tuple[np.ndarray, np.ndarray, dict]:
    state = read_checkpoint_state(spark, uri)
    table = spark.read.parquet(join(uri, "params")).toArrow()
    w = {"w_in": np.empty((vocab_size, dim), np.float32), "w_out": np.empty((vocab_size, dim), np.float32)}
    seen = {"w_in": 0, "w_out": 0}
    for name, start, nrows, data in zip(*(table.column(c).to_pylist() for c in ("matrix", "start", "nrows", "data"))):
        block = np.frombuffer(data, dtype=np.float32)
        if block.size != nrows * dim or start + nrows > vocab_size:
            raise UserError(f"checkpoint {uri} does not match the vocabulary ({vocab_size} words) and "
                            f"train.dim={dim}")
        w[name][start:start + nrows] = block.reshape(nrows, dim)
        seen[name] += nrows
    if seen != {"w_in": vocab_size, "w_out": vocab_size}:
        raise UserError(f"checkpoint {uri} is incomplete: {seen} rows for a vocabulary of {vocab_size}")
    return w["w_in"], w["w_out"], state


def write_metrics(spark, uri: str, records: list[dict]) -> None:
    """Rewrite metrics.jsonl (one JSON record per round) through a temporary file and a rename."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    HadoopFS(spark).write_chunks(uri, [text.encode("utf-8")])
