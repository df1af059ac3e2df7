"""What the evaluation job reads of a model folder: never the whole model on the driver.

The driver gets the rows that the scores and the word maps use, a sample in id order, as a
:class:`~w2vspark.model.Word2VecModel`:
- the ``restrict`` most frequent words (the analogy answers, :func:`w2vspark.evaluate.analogy_accuracy`);
- the first ``head`` ids (the word maps' most frequent words and ids);
- every word that lowercases (``str.lower``) to a word of the similarity sets, so that the lowest id among the
  words of one lowercase form is in the sample as it is in the whole model (the index of
  :func:`w2vspark.evaluate.word_similarity`);
- the words named in the settings (``eval.words``, ``eval.plot_words``).
Every score and map computed on the sample is then the one of the whole model (tested against it). What needs
every row is computed by the executors: each named word's nearest neighbours (:func:`nearest`; each task keeps
its best candidates, the driver merges them) and the mean vector (:func:`mean_vector`). For a model of V words
the driver holds about ``restrict + head`` rows and the counts of w2vspark.json, whatever V is.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .model import Word2VecModel, unit_rows, vectors_of

HEAD = 500  # the word maps' ids: the first 500 labelled ids / 30 most frequent words


def id_rows(spark, model_uri: str):
    """The rows of model_uri/data as (file, row, id, word, vector), ``id`` the row's place in the model (data/'s
    files in name order, rows in file order, as :func:`w2vspark.io.model_files.load_model` reads them)."""
    from pyspark.sql import functions as F

    from .io.model_files import model_rows

    rows = model_rows(spark, model_uri)
    sizes = sorted((r["file"], r["n"]) for r in rows.groupBy("file").agg(F.count(F.lit(1)).alias("n")).collect())
    starts = np.concatenate([[0], np.cumsum([n for _, n in sizes])[:-1]]).astype(np.int64)  # (files,)
    first_id = F.create_map(*[F.lit(x) for (file, _), start in zip(sizes, starts) for x in (file, int(start))])
    return rows.select("file", "row", (F.element_at(first_id, F.col("file")) + F.col("row")).alias("id"),
                       "word", "vector")


def sample_ids(counts, vocab_size: int, restrict: int, head: int = HEAD) -> np.ndarray:
    """The ids of the ``restrict`` most frequent words (ties by id, as :meth:`Word2VecModel.by_frequency`) and
    of the first ``head`` ids, sorted."""
    if counts is None:
        top = np.arange(min(restrict, vocab_size))
    else:
        top = np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")[:restrict]
    return np.union1d(top, np.arange(min(head, vocab_size))).astype(np.int64)


def read_sample(rows, info: dict, ids: np.ndarray, folded: Iterable[str], named: Iterable[str]
                ) -> tuple[Word2VecModel, np.ndarray]:
    """The rows (from :func:`id_rows`) whose id is in ``ids``, whose word lowercases to one of ``folded`` or is
    one of ``named`` -> (a model of them in id order, with their counts and the model's settings; their ids (n,))."""
    import pyarrow as pa

    folded, named = frozenset(folded), frozenset(named)

    def keep(batches):
        for batch in batches:
            words = batch.column("word").to_pylist()
            wanted = np.isin(batch.column("id").to_numpy(), ids) | np.fromiter(
                (w.lower() in folded or w in named for w in words), bool, len(words))  # (n,)
            if wanted.any():
                yield batch.select(["id", "word", "vector"]).filter(pa.array(wanted))

    table = rows.mapInArrow(keep, "id long, word string, vector array<float>").toArrow().sort_by("id")
    chosen = table.column("id").to_numpy()
    counts = info.get("counts")
    sample = Word2VecModel(table.column("word").to_pylist(), vectors_of(table, "vector", int(info["dim"])),
                           None if counts is None else np.asarray(counts, dtype=np.int64)[chosen],
                           info.get("config"))
    return sample, chosen


def nearest(rows, sample: Word2VecModel, ids: np.ndarray, words: list[str], topn: int
            ) -> dict[str, list[tuple[str, float]]]:
    """Each of ``words`` (in ``sample``, whose model ids are ``ids``) -> its ``topn`` nearest words
    by cosine over every row of the model, the word itself left out, ties by id: what
    :meth:`Word2VecModel.most_similar` gives on the whole model. Each task sends the driver, per word, the rows
    of each batch at least as close as the batch's ``topn``-th."""
    import pyarrow as pa

    if not words:
        return {}
    queries = np.stack([sample.vector(w) for w in words])  # (k, d)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    own = ids[[sample.index(w) for w in words]]  # (k,)
    dim = queries.shape[1]

    def best(batches):
        for batch in batches:
            row_ids = batch.column("id").to_numpy()  # (n,)
            unit = unit_rows(vectors_of(batch, "vector", dim))  # (n, d)
            for j in range(len(words)):
                sims = unit @ queries[j]  # (n,)
                sims[row_ids == own[j]] = -np.inf
                m = min(topn, len(sims))
                if m <= 0:
                    continue
                cut = np.partition(sims, len(sims) - m)[len(sims) - m]
                take = np.flatnonzero((sims >= cut) & np.isfinite(sims))
                yield pa.RecordBatch.from_pydict({
                    "query": pa.array(np.full(len(take), j, dtype=np.int32)), "id": pa.array(row_ids[take]),
                    "word": batch.column("word").take(pa.array(take)), "sim": pa.array(sims[take])})

    found = rows.mapInArrow(best, "query int, id long, word string, sim float").toArrow()
    query, found_ids, sims = (found.column(c).to_numpy() for c in ("query", "id", "sim"))
    names = found.column("word").to_pylist()
    out = {}
    for j, word in enumerate(words):
        mine = np.flatnonzero(query == j)
        order = mine[np.lexsort((found_ids[mine], -sims[mine]))][:topn]
        out[word] = [(names[i], float(sims[i])) for i in order]
    return out


def mean_vector(rows, dim: int) -> np.ndarray:
    """The mean of the model's vectors, (d,) float64, summed by the executors."""
    import pyarrow as pa

    def sums(batches):
        for batch in batches:
            total = vectors_of(batch, "vector", dim).sum(axis=0, dtype=np.float64)  # (d,)
            yield pa.RecordBatch.from_pydict({"n": pa.array([batch.num_rows], pa.int64()),
                                              "total": pa.array([total], pa.list_(pa.float64()))})

    parts = rows.select("vector").mapInArrow(sums, "n long, total array<double>").toArrow()
    n = int(np.sum(parts.column("n").to_numpy()))
    total = parts.column("total").combine_chunks().flatten().to_numpy().reshape(-1, dim).sum(axis=0)  # (d,)
    return total / max(n, 1)

