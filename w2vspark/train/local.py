"""The single-process trainer: the same loop and tasks as the Spark trainer, run in this process.

It is the reference the Spark trainer is tested against (one partition on Spark gives the same model as
this), and a quick way to train on a small corpus without a SparkSession.
"""
from __future__ import annotations

import bz2
import gzip
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..config import Config
from ..model import Word2VecModel
from ..text import chunk, tokenize
from ..vocab import Vocabulary
from .loop import TaskPlan, fit, init_params, local_round, round_specs, run_task, task_plan
from .task import train_partition


def read_text_lines(path: str | Path) -> Iterator[str]:
    """Lines of a plain, .gz or .bz2 text file (undecodable bytes replaced)."""
    path = Path(path)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            yield line


def tokenized_sentences(lines: Iterable[str], cfg: Config) -> Iterator[list[str]]:
    """Each line's tokens (whole: :func:`corpus_from_sentences` cuts long ones)."""
    v = cfg.vocab
    return (tokenize(line, v.lowercase, v.token_pattern) for line in lines)


def encode(sentences: Iterable[Sequence[str]], vocab: Vocabulary) -> list[np.ndarray]:
    """Token lists -> id arrays without out-of-vocabulary tokens; sentences left with < 2 tokens are dropped."""
    encoded = (vocab.encode(s) for s in sentences)
    return [ids for ids in encoded if len(ids) >= 2]


def pack(sentences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A list of id arrays -> (flat ids (N,) int32, offsets (S+1,) int64)."""
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    ids = np.concatenate(sentences).astype(np.int32) if len(sentences) else np.zeros(0, np.int32)
    return ids, np.concatenate([[0], np.cumsum(lengths)])


def split_round_robin(sentences: Sequence[np.ndarray], num_partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sentence i goes to partition i mod P, keeping order."""
    return [pack(sentences[p::num_partitions]) for p in range(num_partitions)]


def local_runner(parts: Sequence[tuple[np.ndarray, np.ndarray]], plan: TaskPlan):
    keep_probs, noise = plan.keep_probs(), plan.noise()

    def run_round(spec, w_in, w_out):
        results = ((p, run_task([batch], p, spec, plan, w_in, w_out, keep_probs, noise))
                   for p, batch in enumerate(parts))
        return local_round(results, w_in, w_out)

    return run_round


def train_local(cfg: Config, parts: Sequence[tuple[np.ndarray, np.ndarray]], vocab: Vocabulary,
                on_round: Callable[[dict], None] | None = None,
                on_rollback: Callable[[dict], None] | None = None,
                params: tuple[np.ndarray, np.ndarray] | None = None) -> Word2VecModel:
    """Train on in-memory partitions (each (ids, offsets)) and return the model (input vectors).

    ``params`` (w_in, w_out), each (V, d) float32, are the start (trained in place); None = a random start."""
    t = cfg.train
    plan = task_plan(cfg, vocab)
    corpus_words = int(sum(len(ids) for ids, _ in parts))
    w_in, w_out = params if params is not None else init_params(len(vocab), t.dim, t.seed)
    specs = round_specs(t, corpus_words, len(parts))
    fit(t, local_runner(parts, plan), w_in, w_out, specs, on_round=on_round, on_rollback=on_rollback)
    return Word2VecModel(vocab.words, w_in, vocab.counts, cfg.to_dict())


def model_loss(cfg: Config, vocab: Vocabulary, parts: Sequence[tuple[np.ndarray, np.ndarray]], w_in: np.ndarray,
               w_out: np.ndarray, seed: int = 0) -> float:
    """The mean loss per training example of the parameters (w_in, w_out) over the corpus ``parts``: one pass
    with the training's own sampling (subsampling, windows, negatives or Huffman paths, drawn from ``seed``) and
    no update.

    A round's reported loss is measured while its tasks train, at m x the learning rate with several partitions
    (``train.task_lr_scale``): it says how the tasks fare, not how good the combined model is. This measures the
    model itself, so that runs at different partition counts compare on equal terms."""
    plan = task_plan(cfg, vocab)
    pairs = 0
    loss_sum = 0.0
    for p, batch in enumerate(parts):
        res = train_partition([batch], w_in, w_out, plan.kernel, plan.keep_probs(), plan.noise(),
                              np.random.default_rng([seed, p]), 0.0, 0.0, 1, plan.tree())
        loss_sum += res.loss_sum
        pairs += res.pairs
    return loss_sum / max(pairs, 1)


def load_run_corpus(run_dir: str | Path, num_partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The corpus/ written by the Spark corpus stage (a local folder), split as the Spark trainer splits it:
    partition p = pmod(key, P), rows ordered by key."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(run_dir) / "corpus", columns=["key", "ids"])
    keys = table.column("key").to_numpy()
    sentences = [np.asarray(s, dtype=np.int32) for s in table.column("ids").to_pylist()]
    parts = keys % num_partitions  # numpy's % of a positive modulus is never negative, like Spark's pmod
    order = np.lexsort((keys, parts))
    return [pack([sentences[i] for i in order[parts[order] == p]]) for p in range(num_partitions)]


def corpus_from_text(path: str | Path, cfg: Config) -> tuple[Vocabulary, list[np.ndarray]]:
    """Read, tokenize, count and encode a text file in this process."""
    return corpus_from_sentences(tokenized_sentences(read_text_lines(path), cfg), cfg)


def corpus_from_sentences(sentences: Iterable[Sequence[str]], cfg: Config) -> tuple[Vocabulary, list[np.ndarray]]:
    """Count and encode already tokenized sentences (as they are: no lowercasing, no pattern), each cut into
    pieces of at most vocab.max_sentence_length tokens."""
    sentences = [s for sentence in sentences for s in chunk(list(sentence), cfg.vocab.max_sentence_length)]
    counts = Counter(tok for s in sentences for tok in s)
    vocab = Vocabulary.from_counts(counts, cfg.vocab.min_count, cfg.vocab.max_vocab_size)
    return vocab, encode(sentences, vocab)


def run_local(cfg: Config, log: Callable[[str], None] = print) -> Word2VecModel:
    """Read input.path, train in-process, save output.dir/model and print nearest neighbours."""
    import time

    from .loop import format_progress, format_rollback

    t0 = time.perf_counter()
    vocab, sentences = corpus_from_text(cfg.input.path, cfg)
    words = int(sum(len(s) for s in sentences))
    log(f"corpus {cfg.input.path}: {len(sentences)} sentences, {words} words in vocabulary, "
        f"{len(vocab)} distinct ({time.perf_counter() - t0:.1f}s)")
    parts = split_round_robin(sentences, cfg.train.num_partitions)
    t1 = time.perf_counter()
    model = train_local(cfg, parts, vocab, on_round=lambda r: log(format_progress(r)),
                        on_rollback=lambda e: log(format_rollback(e)))
    seconds = time.perf_counter() - t1
    log(f"trained {cfg.train.epochs} epochs in {seconds:.1f}s: "
        f"{words * cfg.train.epochs / seconds / 1000:.1f}k words/s")
    out = Path(cfg.output.dir) / "model"
    model.save(out, overwrite=cfg.output.overwrite)
    log(f"model written to {out}")
    for word in cfg.eval.words:
        if word in model:
            near = ", ".join(w for w, _ in model.most_similar(word, cfg.eval.topn))
            log(f"  {word:>10}: {near}")
    return model
