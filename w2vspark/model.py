"""The trained model: words and their input vectors, with similarity queries and a Spark ML compatible layout.

Saved layout (a folder):
  metadata/part-00000   one line of Spark ML JSON (class org.apache.spark.ml.feature.Word2VecModel)
  data/part-*.parquet   word: string, vector: array<float>   (one row per word, id order: the files in name
                        order, the rows of each in file order; one file when written from the driver)
  w2vspark.json         format_version, counts, resolved training config
so that ``pyspark.ml.feature.Word2VecModel.load(path)`` reads it as well as :meth:`Word2VecModel.load`.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from .io.atomic import atomic_dir, read_json, write_json

FORMAT_VERSION = 1
SPARK_ML_CLASS = "org.apache.spark.ml.feature.Word2VecModel"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(V, d) -> the rows scaled to length 1 (zero rows stay zero)."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class Word2VecModel:
    def __init__(self, words: Sequence[str], vectors: np.ndarray, counts: Sequence[int] | None = None,
                 config: dict | None = None):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (V, d)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self.config = config or {}
        self._index = {w: i for i, w in enumerate(self.words)}
        if len(self._index) != len(self.words):
            raise ValueError("model words must be unique")
        self._unit = None

    # ------------------------------------------------------------------ queries
    @property
    def vocabulary(self) -> list[str]:
        return list(self.words)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        try:
            return self._index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the model's vocabulary ({len(self.words)} words)") from None

    def vector(self, word: str) -> np.ndarray:
        return self.vectors[self.index(word)]

    def _unit_vectors(self) -> np.ndarray:
        if self._unit is None:
            self._unit = unit_rows(self.vectors)  # (V, d)
        return self._unit

    def _query(self, query: np.ndarray, exclude: Sequence[int], topn: int) -> list[tuple[str, float]]:
        q = np.asarray(query, dtype=np.float32)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        sims = self._unit_vectors() @ q  # (V,)
        sims[list(exclude)] = -np.inf
        k = min(topn, len(sims) - len(exclude))
        if k <= 0:
            return []
        best = np.argpartition(-sims, k - 1)[:k]
        best = best[np.lexsort((best, -sims[best]))]
        return [(self.words[i], float(sims[i])) for i in best]

    def most_similar(self, word_or_vector, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` words closest by cosine similarity (a query word itself is excluded)."""
        if isinstance(word_or_vector, str):
            i = self.index(word_or_vector)
            return self._query(self.vectors[i], [i], topn)
        return self._query(word_or_vector, [], topn)

    def similarity(self, w1: str, w2: str) -> float:
        unit = self._unit_vectors()
        return float(unit[self.index(w1)] @ unit[self.index(w2)])

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """3CosAdd: the words closest to b - a + c, the three inputs excluded ("a is to b as c is to ?")."""
        unit = self._unit_vectors()
        ia, ib, ic = self.index(a), self.index(b), self.index(c)
        return self._query(unit[ib] - unit[ia] + unit[ic], [ia, ib, ic], topn)

    def by_frequency(self) -> "Word2VecModel":
        """This model with its words in count order, most frequent first (itself when they already are, or when
        it has no counts). A continued run's vocabulary lists the start's words first, then the new ones."""
        if self.counts is None or bool(np.all(self.counts[:-1] >= self.counts[1:])):
            return self
        order = np.argsort(-self.counts, kind="stable")  # (V,)
        return Word2VecModel([self.words[i] for i in order], self.vectors[order], self.counts[order], self.config)

    # ------------------------------------------------------------------ persistence
    def spark_metadata(self) -> dict:
        """The one-line JSON of Spark ML's metadata/part-00000."""
        return spark_metadata(self.dim, self.config)

    def info(self) -> dict:
        """The contents of w2vspark.json."""
        return model_info(self.dim, len(self.words), self.counts, self.config)

    def arrow_table(self):
        """pyarrow Table (word: string, vector: list<float32>), one row per word in id order."""
        import pyarrow as pa

        return pa.table({"word": pa.array(self.words, type=pa.string()), "vector": vector_column(self.vectors)})

    def to_spark(self, spark):
        """A Spark DataFrame (word: string, vector: array<float>), one row per word, most frequent first."""
        return spark.createDataFrame(self.arrow_table())

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Save to a local folder (see :func:`w2vspark.io.model_files.save_model` for Hadoop URIs)."""
        import pyarrow.parquet as pq

        with atomic_dir(path, overwrite=overwrite) as tmp:
            (tmp / "metadata").mkdir()
            (tmp / "data").mkdir()
            (tmp / "metadata" / "part-00000").write_text(json.dumps(self.spark_metadata()) + "\n",
                                                         encoding="utf-8")
            pq.write_table(self.arrow_table(), tmp / "data" / "part-00000.parquet")
            write_json(tmp / "w2vspark.json", self.info())

    @classmethod
    def load(cls, path: str | Path) -> "Word2VecModel":
        path = Path(path)
        info_path = path / "w2vspark.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{path} is not a w2vspark model folder (no w2vspark.json)")
        return cls.from_parts(read_json(info_path), read_data_dir(path / "data"), str(info_path))

    @classmethod
    def from_parts(cls, info: dict, table, where: str = "w2vspark.json") -> "Word2VecModel":
        """Rebuild from the w2vspark.json contents and the data table (word, vector)."""
        check_format(info, where)
        words, vectors = _words_and_vectors(table, info["dim"])
        return cls(words, vectors, info.get("counts"), info.get("config"))

    @classmethod
    def from_table(cls, table) -> "Word2VecModel":
        """Rebuild from a data table alone (a model folder written by Spark MLlib): no counts, no settings."""
        column = table.column("vector").combine_chunks()
        dim = len(column[0]) if len(column) else 0
        return cls(*_words_and_vectors(table, dim))


def read_data_dir(folder: Path):
    """pyarrow Table of a local data/ folder: its Parquet files in name order (the executors write a model's rows
    as part files named in row order), the rows of each in file order. Hidden and ``_`` files are skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"{folder} holds no Parquet file")
    return pa.concat_tables([pq.read_table(f) for f in files])


def vector_column(vectors: np.ndarray):
    """(n, d) float32 rows -> the Arrow list<float32> column of the data/ layout, one list per row."""
    import pyarrow as pa

    n, dim = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors).reshape(-1), type=pa.float32())
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)), flat)


def spark_metadata(dim: int, config: dict) -> dict:
    """Spark ML's metadata/part-00000 of a model of ``dim`` dimensions trained with ``config``."""
    return {"class": SPARK_ML_CLASS, "timestamp": int(time.time() * 1000), "sparkVersion": _spark_version(),
            "uid": f"Word2Vec_{uuid.uuid4().hex[:12]}", "paramMap": _spark_params(dim, config),
            "defaultParamMap": {}}


def check_format(info: dict, where: str = "w2vspark.json") -> None:
    """Refuse a w2vspark.json of a format version this w2vspark does not read."""
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where} has format_version {version!r}; this w2vspark reads version "
                         f"{FORMAT_VERSION} only (upgrade w2vspark to read it)")


def model_info(dim: int, vocab_size: int, counts, config: dict) -> dict:
    """The contents of w2vspark.json."""
    return {"format_version": FORMAT_VERSION, "dim": dim, "vocab_size": vocab_size,
            "counts": None if counts is None else np.asarray(counts).tolist(), "config": config}


def vectors_of(batch, column, dim: int) -> np.ndarray:
    """The list<float> column (name or index) of an Arrow batch or table as (n, dim) float32, a copy: the inverse
    of :func:`vector_column`."""
    lists = batch.column(column)
    lists = lists.combine_chunks() if hasattr(lists, "combine_chunks") else lists  # a table's column is chunked
    flat = lists.flatten().to_numpy(zero_copy_only=False)
    return np.array(flat, dtype=np.float32).reshape(len(lists), dim)  # (n, dim)


def _words_and_vectors(table, dim: int) -> tuple[list[str], np.ndarray]:
    return table.column("word").to_pylist(), vectors_of(table, "vector", dim)  # (V,), (V, dim)


def _spark_version() -> str:
    try:
        from importlib.metadata import version
        return version("pyspark")
    except Exception:  # pragma: no cover - pyspark is a dependency
        return "4.0.0"


def _spark_params(dim: int, config: dict) -> dict:
    train = config.get("train", {}) if config else {}
    vocab = config.get("vocab", {}) if config else {}
    params = {"vectorSize": dim}
    for spark_name, section, key in (("windowSize", train, "window"), ("minCount", vocab, "min_count"),
                                     ("maxIter", train, "epochs"), ("stepSize", train, "lr"),
                                     ("numPartitions", train, "num_partitions"), ("seed", train, "seed"),
                                     ("maxSentenceLength", vocab, "max_sentence_length")):
        if key in section:
            params[spark_name] = section[key]
    return params
