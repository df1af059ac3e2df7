"""Continued training (``train.init_model``): start from an earlier model instead of random vectors.

The start can be a w2vspark model folder (input and output vectors and counts, when it holds ``w_out/``), a
Spark ML Word2VecModel folder (input vectors), or a word2vec text or binary file (input vectors). The new
corpus's vocabulary is merged into the start's: every word of the start keeps its id (its row), whether or not it
occurs again; new words reaching ``vocab.min_count`` in the new corpus are appended, most frequent first, up to
``vocab.max_vocab_size`` words in all. A known word's count is its count in the start (0 when the start has no
counts) plus its count in the new corpus, as gensim's ``build_vocab(update=True)``; a known word that is absent
from the new corpus is neither trained nor drawn as a negative, and keeps its vectors.

Rows of new words start as word2vec.c starts every row (:func:`w2vspark.train.loop.init_params`); output vectors the
start does not have are zero, as word2vec.c's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import InputError, UserError
from .train.loop import init_params
from .vocab import Vocabulary, rank_counts


@dataclass(frozen=True)
class StartModel:
    words: tuple[str, ...]
    w_in: np.ndarray  # (K, d) float32
    w_out: np.ndarray | None  # (K, d) float32, or None: zeros
    counts: np.ndarray | None  # (K,) int64, or None: unknown (counted as 0)
    source: str

    @property
    def dim(self) -> int:
        return int(self.w_in.shape[1])


def merge_vocab(start: StartModel, new_counts: Iterable[tuple[str, int]], min_count: int,
                max_vocab_size: int | None = None) -> tuple[Vocabulary, dict]:
    """The start's words (ids kept) followed by the new corpus's new words -> (vocabulary, statistics)."""
    index = {w: i for i, w in enumerate(start.words)}
    counts = np.zeros(len(start.words), np.int64) if start.counts is None else start.counts.astype(np.int64)
    seen, fresh = 0, []
    for word, count in new_counts:
        i = index.get(word)
        if i is None:
            fresh.append((word, int(count)))
        else:
            counts[i] += int(count)
            seen += 1
    room = None if max_vocab_size is None else max(max_vocab_size - len(start.words), 0)
    added = rank_counts(fresh, min_count, room)
    vocab = Vocabulary(tuple(start.words) + tuple(w for w, _ in added),
                       np.concatenate([counts, np.array([c for _, c in added], np.int64)]))
    stats = {"init_model": start.source, "known_words": len(start.words), "known_words_in_corpus": seen,
             "new_words": len(added), "new_words_most_frequent": [w for w, _ in added[:20]],
             "new_words_beyond_max_vocab_size": sum(c >= min_count for _, c in fresh) - len(added)}
    if int(vocab.counts.sum()) == 0:
        raise UserError(f"no word of the corpus is in the vocabulary continued from {start.source} "
                        f"(none is known and none of the new words reaches vocab.min_count={min_count})")
    return vocab, stats


def word_outputs(loss: str) -> bool:
    """Whether row i of w_out is word i's output vector (false for hierarchical softmax, whose rows are the
    inner nodes of a Huffman tree that changes with the counts: such rows are neither saved nor reused)."""
    return loss != "hierarchical_softmax"


def initial_params(vocab: Vocabulary, start: StartModel | None, dim: int, seed: int,
                   loss: str = "neg_sampling") -> tuple[np.ndarray, np.ndarray]:
    """(w_in, w_out) for ``vocab`` (built by :func:`merge_vocab` from ``start``): the start's rows first, new
    rows as a fresh run would start them; without a start, a fresh run's. The start's output vectors are
    reused when both index them by word (see :func:`word_outputs`)."""
    if start is None:
        return init_params(len(vocab), dim, seed)
    k = len(start.words)
    if dim != start.dim:
        raise UserError(f"train.dim={dim} but the model to continue from ({start.source}) has {start.dim} "
                        f"dimensions")
    if tuple(vocab.words[:k]) != tuple(start.words):
        raise UserError(f"the vocabulary was not built from {start.source}: run jobs/build_vocab.py again with "
                        f"the same train.init_model")
    w_in, w_out = init_params(len(vocab), dim, seed)
    w_in[:k] = start.w_in
    if start.w_out is not None and word_outputs(loss):
        w_out[:k] = start.w_out
    return w_in, w_out


# ---------------------------------------------------------------- reading the start
def parse_word2vec(data: bytes, source: str) -> StartModel:
    """A word2vec text or binary file (as word2vec.c and gensim write them) -> its words and input vectors."""
    end = data.find(b"\n")
    try:
        count, dim = (int(x) for x in data[:end].split())
    except ValueError:
        raise InputError(f"{source} is not a word2vec file: its first line should be '<words> <dimensions>', "
                         f"got {data[:min(end, 80)]!r}") from None
    if _looks_binary(data, end + 1, dim):
        return _parse_binary(data, end + 1, count, dim, source)
    return _parse_text(data[end + 1:], count, dim, source)


def _looks_binary(data: bytes, pos: int, dim: int) -> bool:
    """The first record is text when its line splits into a word and ``dim`` numbers."""
    end = data.find(b"\n", pos)
    fields = data[pos:end if end >= 0 else len(data)].split()
    if len(fields) != dim + 1:
        return True
    try:
        [float(x) for x in fields[1:]]
        return False
    except ValueError:
        return True


def _parse_text(body: bytes, count: int, dim: int, source: str) -> StartModel:
    words, rows = [], []
    for n, line in enumerate(body.decode("utf-8", errors="replace").splitlines(), start=2):
        if not line.strip():
            continue
        fields = line.rstrip().split(" ")
        if len(fields) != dim + 1:
            raise InputError(f"{source} line {n}: expected a word and {dim} numbers, got {len(fields)} fields")
        words.append(fields[0])
        try:
            rows.append([float(x) for x in fields[1:]])
        except ValueError:
            raise InputError(f"{source} line {n}: a vector value is not a number") from None
    return _checked(words, np.array(rows, np.float32).reshape(len(words), dim), count, source)


def _parse_binary(data: bytes, pos: int, count: int, dim: int, source: str) -> StartModel:
    words, rows, size = [], [], 4 * dim
    for _ in range(count):
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b" "):
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + size > len(data):
            raise InputError(f"{source} ends after {len(words)} of the {count} vectors its header announces")
        words.append(data[pos:space].decode("utf-8", errors="replace"))
        rows.append(np.frombuffer(data, "<f4", dim, space + 1))
        pos = space + 1 + size
    return _checked(words, np.array(rows, np.float32).reshape(len(words), dim), count, source)


def _checked(words: list[str], w_in: np.ndarray, count: int, source: str) -> StartModel:
    if len(words) != count:
        raise InputError(f"{source} holds {len(words)} vectors but its header announces {count}")
    if len(set(words)) != len(words):
        raise InputError(f"{source} lists a word more than once")
    if not np.isfinite(w_in).all():
        raise InputError(f"{source} holds non-finite vector values")
    return StartModel(tuple(words), w_in, None, None, source)


def read_start_model(spark, path: str) -> StartModel:
    """The model at ``path`` (any Hadoop URI): a model folder (w2vspark or Spark ML) or a word2vec file."""
    from .io.hadoop import HadoopFS, join
    from .io.model_files import load_model, load_output_vectors

    fs = HadoopFS(spark)
    if not fs.exists(path):
        raise InputError(f"train.init_model not found: {path}")
    if fs.exists(join(path, "data")):
        model = load_model(spark, path, mllib=True)
        counts = None if model.counts is None else np.asarray(model.counts, np.int64)
        w_out = load_output_vectors(spark, path, model.words)
        return StartModel(tuple(model.words), model.vectors, w_out, counts, path)
    if fs.files_under(path) and fs.exists(join(path, "metadata")):
        raise InputError(f"{path} is a model folder without data/")
    return parse_word2vec(fs.read_bytes(path), path)
