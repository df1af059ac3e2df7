"""Exports of a trained model for other tools: word2vec text and binary, and TSV for embedding projectors.

Formats (facts of the word2vec.c / gensim formats):
- text:   "V d\n", then one line per word: the word and d numbers separated by single spaces;
- binary: "V d\n", then per word: the word, one space, d little-endian float32, "\n";
- projector: vectors.tsv (d tab-separated numbers a line) and metadata.tsv (one word a line, no header).
Words come most frequent first (id order). Lines end with "\n" only.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .errors import UserError
from .model import Word2VecModel

ROWS_PER_CHUNK = 4096


def check_words(model: Word2VecModel) -> None:
    for w in model.words:
        if not w or any(c.isspace() for c in w):
            raise UserError(f"word {w!r} is empty or contains whitespace: the word2vec formats cannot hold it")


def _header(model: Word2VecModel) -> bytes:
    return f"{len(model.words)} {model.dim}\n".encode()


def _format_rows(vectors: np.ndarray, sep: str) -> list[str]:
    # 9 significant digits round-trip every float32 exactly
    return [sep.join(f"{x:.9g}" for x in row) for row in vectors.tolist()]


def word2vec_text(model: Word2VecModel) -> Iterator[bytes]:
    check_words(model)
    yield _header(model)
    for lo in range(0, len(model.words), ROWS_PER_CHUNK):
        rows = _format_rows(model.vectors[lo:lo + ROWS_PER_CHUNK], " ")
        yield "".join(f"{w} {r}\n" for w, r in zip(model.words[lo:lo + ROWS_PER_CHUNK], rows)).encode("utf-8")


def word2vec_binary(model: Word2VecModel) -> Iterator[bytes]:
    check_words(model)
    yield _header(model)
    vectors = model.vectors.astype("<f4", copy=False)
    for lo in range(0, len(model.words), ROWS_PER_CHUNK):
        parts = []
        for w, row in zip(model.words[lo:lo + ROWS_PER_CHUNK], vectors[lo:lo + ROWS_PER_CHUNK]):
            parts.append(w.encode("utf-8") + b" " + row.tobytes() + b"\n")
        yield b"".join(parts)


def projector_vectors(model: Word2VecModel) -> Iterator[bytes]:
    for lo in range(0, len(model.words), ROWS_PER_CHUNK):
        yield ("\n".join(_format_rows(model.vectors[lo:lo + ROWS_PER_CHUNK], "\t")) + "\n").encode("utf-8")


def projector_metadata(model: Word2VecModel) -> Iterator[bytes]:
    check_words(model)
    for lo in range(0, len(model.words), ROWS_PER_CHUNK):
        yield ("\n".join(model.words[lo:lo + ROWS_PER_CHUNK]) + "\n").encode("utf-8")


EXPORTS = {
    "vectors.txt": word2vec_text,
    "vectors.bin": word2vec_binary,
    "vectors.tsv": projector_vectors,
    "metadata.tsv": projector_metadata,
}


def export_model(spark, cfg, log=print) -> dict[str, str]:
    """Write every export of output.dir/model under output.dir/export/ (each file atomically)."""
    from .io.hadoop import HadoopFS, join
    from .io.model_files import load_model
    from .io.atomic import OutputExistsError

    fs = HadoopFS(spark)
    model = load_model(spark, join(cfg.output.dir, "model"))
    targets = {name: join(cfg.output.dir, "export", name) for name in EXPORTS}
    if not cfg.output.overwrite:
        for uri in targets.values():
            if fs.exists(uri):
                raise OutputExistsError(f"{uri} already exists; pass --overwrite (output.overwrite=true) to replace it")
    for name, uri in targets.items():
        fs.write_chunks(uri, EXPORTS[name](model))
        log(f"wrote {uri}")
    return targets
