"""Typed run configuration: frozen dataclasses, one per TOML section.

Precedence: dataclass defaults < the TOML file < ``--set section.key=value`` overrides.
Unknown sections or keys and ill-typed values raise :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from . import compiled
from .errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration file or override that cannot be used as it is."""


MIN_ROUNDS = 16  # sync rounds over a whole run on several partitions, at least (TrainConfig.syncs)
HS_ROUNDS = 64  # hierarchical softmax on P partitions: at least min(P^2, this) rounds per epoch (TrainConfig.syncs)


EXPORT_NAMES = ("vectors.txt", "vectors.bin", "vectors.tsv", "metadata.tsv")  # the keys of w2vspark.export.EXPORTS


@dataclass(frozen=True)
class InputConfig:
    path: str = "data/kjv.txt.gz"  # file, folder or glob; any Hadoop URI
    format: str = "text"  # "text", or any Spark source such as "parquet"
    text_column: str = "text"  # string column read when format is not "text"
    tokens_column: str = ""  # array<string|int|bigint> column of ready-made sequences (IDs); "" = tokenize text


@dataclass(frozen=True)
class VocabConfig:
    min_count: int = 5
    max_vocab_size: int | None = None  # keep only the most frequent words; None keeps all
    max_sentence_length: int = 1000  # longer lines are cut into chunks of this many tokens
    lowercase: bool = True
    token_pattern: str = ""  # a Java/Python regex for one token; "" = Unicode letters with inner apostrophes


@dataclass(frozen=True)
class TrainConfig:
    dim: int = 100
    window: int = 5
    num_negatives: int = 5
    ns_exponent: float = 0.75  # negatives are drawn from count^ns_exponent (word2vec.c: 0.75; may be negative)
    shrink_windows: bool = True  # each center draws its window from 1..window (false: always the full window)
    negative_group: int = 0  # skip-gram with neg_sampling: windows that share one draw of num_negatives
    # negatives (1 = every window its own; 0 = by the partition count, negative_group_for); larger groups touch
    # fewer output rows per task (less traffic)
    sample: float = 1e-3
    lr: float = 0.025
    min_lr: float = 0.0001
    epochs: int = 5
    model: str = "skipgram"  # or "cbow": the context words' mean vector predicts the word in the middle
    cbow_mean: bool = True  # CBOW: mean of the context vectors (word2vec.c, gensim); false = their sum
    loss: str = "neg_sampling"  # "hierarchical_softmax" (Huffman tree, as Spark MLlib) or "naive_softmax"
    batch_pairs: int = 4096  # (context, target) pairs per minibatch step
    step: str = "auto"  # "minibatch": a minibatch's gradients all at the same parameters, summed per row;
    # "sequential": its windows one after another (skip-gram pair by pair), each step at the parameters the
    # earlier ones left (word2vec.c's order); "auto" = sequential for CBOW and hierarchical_softmax (sequential_for)
    damping: bool = True  # a row repeated in a minibatch steps at most to the minimum of a quadratic bound of its loss
    skip_saturated: bool = False  # true: a product with |z| >= 6 takes no step (gensim's training; word2vec.c's
    # hierarchical softmax); false: every product takes its gradient step (word2vec.c's negative sampling)
    num_partitions: int = 2
    syncs_per_epoch: int = 0  # driver combines per epoch; 0 = automatic: max(4, 2 x num_partitions) (4 x on one
    # epoch) and, on several partitions, at least 16 rounds in the run; hierarchical softmax at least
    # min(P^2, 64) (see syncs)
    combine: str = "scaled"  # "scaled", "scaled_row", "sum" or "average" (Spark MLlib's rule)
    sum_on: str = "auto"  # where a round's deltas are summed on Spark: "executors" (a shuffle by row block),
    # "driver" (no shuffle; the driver sums every task's deltas, through local files in local mode), "auto" (driver
    # in local mode, else executors; see w2vspark.train.spark_rounds.sum_site)
    params_on: str = "auto"  # where the parameters live while training on Spark: "driver" (broadcast to the
    # tasks every round), "executors" (row blocks on the executors; each task fetches only the rows it needs;
    # see w2vspark.train.executor_params), "auto" = driver when spark.driver.memory can hold the model, else
    # executors (w2vspark.train.stage.params_site)
    params_replicas: int = 1  # with the parameters on the executors: copies of every parameter block (and of the
    # corpus's slices) on different executors; 2 = a run survives the loss of an executor (1: it stops and says to
    # resume from the last checkpoint); local mode keeps 1
    # task learning-rate multiplier; 0 = automatic (scaled, scaled_row: min(P, 4) for skip-gram, min(P, 8) for
    # CBOW, min(P, 2) with hierarchical softmax; other rules 1)
    task_lr_scale: float = 0.0
    max_step: float = 0.0  # a row that several tasks moved moves at most this x max(min(its length, 4 typical),
    # typical) per round; 0 = no limit (the default: the damping keeps every shape of the stress matrix stable)
    rollback_ratio: float = 1.5  # a round whose loss exceeds this x the best so far is rolled back; 0 = off
    seed: int = 1
    init_model: str = ""  # continue from this model folder or word2vec file ("" = random start); see README
    checkpoint_every: int = 1  # epochs between checkpoints; 0 disables them
    resume: bool = False

    def syncs(self, num_partitions: int | None = None) -> int:
        """Sync rounds per epoch: ``syncs_per_epoch``, or when it is 0, max(4, 2P) and, on several partitions,
        at least MIN_ROUNDS over the run. Measured on 11.5M words: at 8 partitions analogy accuracy went
        16.7% -> 21.2% -> 25.8% with 4 -> 8 -> 16 syncs (1 partition: 25.8%), so the rounds must grow with the
        partitions to keep each task's delta small. A run of few epochs needs more rounds per epoch for the same
        reason: on 15M words, 1 epoch at 2 partitions, analogy 9.8% / 11.3% / 12.7% with 4 / 8 / 16 syncs
        (1 partition 13.3%); at 5 epochs 4 per epoch (20 rounds) are enough. A single epoch has no later epoch
        to make up for what the partitions' staleness costs, so it gets 4P rounds: on the stress shapes at 16
        partitions (docs/benchmarks.md, ninth stop) 64 rounds instead of 32 lowered the model loss's excess over
        1 partition in all 8 cells (skip-gram and CBOW, dense / zipf / short / long).

        Hierarchical softmax needs smaller rounds on many partitions: at least min(P^2, 64) per epoch. Every
        window moves the top of the Huffman tree, and each task moves those rows without the other tasks' moves
        until the round ends. On the 15M-word text (5 epochs, skip-gram, sequential step; 1 partition 29.2% /
        28.8% analogy, seeds 1 / 2) 8 partitions scored 27.3% / 26.8% with 16 rounds per epoch, 27.6% with 32
        (seed 1) and 28.9% / 28.4% with 64; 16 partitions 28.3% / 28.7% with 64 and 28.0% with 128 (seed 1); 4
        partitions with 8 rounds 29.4%. Beyond 64 the rounds only cost: their fixed cost and the parameters sent
        each round (8 partitions on 2 cores: 64 rounds train 1.7x longer than 16), and on a small corpus they leave
        most tasks a sentence or none (the stress matrix's long sentences, 16 partitions, 1 epoch: 4.5% above 1
        partition's loss with 128 rounds, level with 64)."""
        if self.syncs_per_epoch:
            return self.syncs_per_epoch
        partitions = num_partitions or self.num_partitions
        if partitions <= 1:
            return 4
        few_epochs = -(-MIN_ROUNDS // self.epochs)  # ceil(MIN_ROUNDS / epochs)
        syncs = max(4, (4 if self.epochs == 1 else 2) * partitions, few_epochs)
        if self.loss == "hierarchical_softmax":  # 4 / 16 / 64 at 2 / 4 / 8 partitions, 64 from there
            syncs = max(syncs, min(partitions * partitions, HS_ROUNDS))
        return syncs


@dataclass(frozen=True)
class WalksConfig:
    edges: str = ""  # edge list (jobs/walks.py): Parquet or CSV with header; columns src, dst, optional weight
    format: str = ""  # "parquet" or "csv"; "" = csv when the path ends in .csv, parquet otherwise
    directed: bool = False  # false: every edge is walked both ways
    per_node: int = 10  # walks started from every node
    length: int = 80  # nodes per walk (shorter when a walk reaches a node without out-edges)
    p: float = 1.0  # node2vec return parameter; p = q = 1 is DeepWalk's uniform (or weighted) walk
    q: float = 1.0  # node2vec in-out parameter
    seed: int = 1


@dataclass(frozen=True)
class PhrasesConfig:
    min_count: int = 5  # subtracted from a candidate's count in its score (jobs/phrases.py)
    threshold: float = 10.0  # a candidate scoring above this becomes one token
    passes: int = 1  # 2: phrases of phrases (up to four words)
    delimiter: str = "_"  # joins the words of a phrase
    common_words: tuple[str, ...] = ()  # connector words that may sit inside a phrase ("of": bank_of_america)


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "out/run"  # the run folder every stage reads and writes
    overwrite: bool = False
    exports: tuple[str, ...] = EXPORT_NAMES  # the files jobs/export.py writes under export/


@dataclass(frozen=True)
class EvalConfig:
    data_dir: str = "data/eval"  # wordsim353.tsv, simlex999.txt, questions-words.txt (local folder)
    analogy_restrict: int = 30000  # analogy candidates: the most frequent words only
    words: tuple[str, ...] = ("king", "water", "gold", "three", "good", "said")  # neighbours in the report
    topn: int = 8
    labels: str = ""  # node/item labels (Parquet or CSV: id, label): node classification and a coloured map
    edges_holdout: float = 0.0  # jobs/walks.py holds out this share of edges; evaluate reports link prediction
    plot_words: tuple[str, ...] = ("king", "queen", "man", "woman", "gold", "silver", "iron", "water", "river",
                                   "sea", "one", "two", "three", "four", "red", "green", "blue")


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    walks: WalksConfig = field(default_factory=WalksConfig)
    phrases: PhrasesConfig = field(default_factory=PhrasesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


LOSSES = ("neg_sampling", "hierarchical_softmax", "naive_softmax")
STEPS = ("auto", "minibatch", "sequential")
MODELS = ("skipgram", "cbow")
COMBINE_RULES = ("scaled", "scaled_row", "sum", "average")
SUM_SITES = ("auto", "executors", "driver")
PARAM_SITES = ("auto", "driver", "executors")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, tp, value, from_text: bool):
    """Turn ``value`` into type ``tp``; ``from_text`` means it came from a ``--set`` string."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (from_text and str(value).strip().lower() in ("none", "null", "")):
            return None
        return _coerce(key, args[0], value, from_text)
    if origin is tuple:
        if from_text:
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config key '{key}' expects a list of strings, got {value!r}")
        return tuple(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return str(value).strip().lower() in ("true", "1", "yes")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_text:
            try:
                return int(str(value).strip())
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if from_text:
            try:
                return float(str(value).strip())
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if from_text:
            return str(value)
    raise ConfigError(f"config key '{key}' expects {_type_name(tp)}, got {value!r}")


def _section_types(section_cls) -> dict:
    return typing.get_type_hints(section_cls)


def _parse_override(text: str) -> tuple[str, str, str]:
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip()
    if key.count(".") != 1:
        raise ConfigError(f"--set expects section.key=value, got key {key!r}")
    section, name = key.split(".")
    return section, name, value


AUTO_GROUP_PARTITIONS = 8  # negative_group = 0 shares negatives from this many partitions on
MAX_AUTO_GROUP = 8


def sequential_for(t: TrainConfig) -> bool:
    """True when the tasks train a minibatch's windows one after another (``train.step``). "auto" chooses it for
    CBOW and for skip-gram with hierarchical softmax: there it is 1.6-2x faster than the minibatch step (whose
    damping measured every repeated row along its summed step) and learns more per pass (docs/benchmarks.md,
    eighteenth stop); skip-gram with negative sampling keeps the minibatch step, measured on every workload
    since the first release. "auto" also needs the compiled helper in the driver's build: without it the
    sequential step is a Python loop over the pairs, 100x slower, and the minibatch step's numpy form trains."""
    if t.step != "auto":
        return t.step == "sequential"
    return (t.model == "cbow" or t.loss == "hierarchical_softmax") and t.loss != "naive_softmax" \
        and compiled.available("sequential_step")


def negative_group_for(t: TrainConfig) -> int:
    """The windows that share one draw of negatives: train.negative_group, or for 0 (the default) 1 below
    AUTO_GROUP_PARTITIONS partitions (or without skip-gram and negative sampling) and num_partitions / 2 up to
    MAX_AUTO_GROUP from there: a task's rows, and the traffic per round, stop growing with the partitions where
    the draws of word2vec.c would make them (16 partitions move 3.0x the bytes of 2 instead of 7.4x; measured
    quality in docs/benchmarks.md, thirteenth and fifteenth stops)."""
    if t.negative_group:
        return t.negative_group
    if t.model != "skipgram" or t.loss != "neg_sampling" or t.num_partitions < AUTO_GROUP_PARTITIONS:
        return 1
    return min(MAX_AUTO_GROUP, t.num_partitions // 2)


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read ``path`` (TOML; optional) and apply ``--set`` style ``overrides``."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            with p.open("rb") as f:
                raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    section_types = _section_types(Config)
    values: dict[str, dict] = {name: {} for name in section_types}
    where = f" in {path}" if path is not None else ""
    for section, table in raw.items():
        if section not in section_types:
            raise ConfigError(f"unknown config section '{section}'{where}; known: {', '.join(section_types)}")
        if not isinstance(table, dict):
            raise ConfigError(f"config section '{section}'{where} must be a table")
        hints = _section_types(section_types[section])
        for name, value in table.items():
            if name not in hints:
                raise ConfigError(f"unknown config key '{section}.{name}'{where}; known: {', '.join(hints)}")
            values[section][name] = _coerce(f"{section}.{name}", hints[name], value, from_text=False)
    for text in overrides:
        section, name, value = _parse_override(text)
        if section not in section_types:
            raise ConfigError(f"unknown config section '{section}' in --set {text!r}; "
                              f"known: {', '.join(section_types)}")
        hints = _section_types(section_types[section])
        if name not in hints:
            raise ConfigError(f"unknown config key '{section}.{name}' in --set; known: {', '.join(hints)}")
        values[section][name] = _coerce(f"{section}.{name}", hints[name], value, from_text=True)
    cfg = Config(**{s: section_types[s](**v) for s, v in values.items()})
    validate(cfg)
    return cfg


def with_overrides(cfg: Config, **sections: dict) -> Config:
    """A copy of ``cfg`` with some fields replaced, e.g. ``with_overrides(cfg, train={"epochs": 1})``."""
    new = {s: dataclasses.replace(getattr(cfg, s), **kv) for s, kv in sections.items()}
    out = dataclasses.replace(cfg, **new)
    validate(out)
    return out


def validate(cfg: Config) -> None:
    t, v = cfg.train, cfg.vocab

    def need(ok: bool, key: str, what: str, value) -> None:
        if not ok:
            raise ConfigError(f"config key '{key}' must be {what}, got {value!r}")

    need(t.dim >= 1, "train.dim", ">= 1", t.dim)
    need(t.window >= 1, "train.window", ">= 1", t.window)
    need(t.num_negatives >= 1, "train.num_negatives", ">= 1", t.num_negatives)
    need(math.isfinite(t.ns_exponent), "train.ns_exponent", "a finite number", t.ns_exponent)
    need(t.sample >= 0, "train.sample", ">= 0 (0 disables subsampling)", t.sample)
    need(t.lr > 0, "train.lr", "> 0", t.lr)
    need(0 <= t.min_lr <= t.lr, "train.min_lr", "between 0 and train.lr", t.min_lr)
    need(t.epochs >= 1, "train.epochs", ">= 1", t.epochs)
    need(t.loss in LOSSES, "train.loss", f"one of {LOSSES}", t.loss)
    need(t.model in MODELS, "train.model", f"one of {MODELS}", t.model)
    need(t.batch_pairs >= 1, "train.batch_pairs", ">= 1", t.batch_pairs)
    need(t.step in STEPS, "train.step", f"one of {STEPS}", t.step)
    if t.step == "sequential":
        need(t.loss != "naive_softmax", "train.step", "'minibatch' or 'auto' with train.loss = naive_softmax",
             t.step)
    if t.skip_saturated:
        need(t.loss != "naive_softmax", "train.skip_saturated", "false with train.loss = naive_softmax (its scores "
             "are never skipped)", t.skip_saturated)
    need(t.negative_group >= 0, "train.negative_group", ">= 0 (0 = chosen by the partition count)", t.negative_group)
    if t.negative_group > 1:  # measured safe for skip-gram only (docs/benchmarks.md, thirteenth stop)
        need(t.loss == "neg_sampling", "train.negative_group", "1 unless train.loss = neg_sampling (it groups the "
             "draws of negatives)", t.negative_group)
        need(t.model == "skipgram", "train.negative_group", "1 with train.model = cbow (shared negatives raised "
             "CBOW's model loss by up to 40% at 8-16 partitions)", t.negative_group)
    need(t.num_partitions >= 1, "train.num_partitions", ">= 1", t.num_partitions)
    need(t.syncs_per_epoch >= 0, "train.syncs_per_epoch", ">= 0 (0 = automatic)", t.syncs_per_epoch)
    need(t.combine in COMBINE_RULES, "train.combine", f"one of {COMBINE_RULES}", t.combine)
    need(t.sum_on in SUM_SITES, "train.sum_on", f"one of {SUM_SITES}", t.sum_on)
    need(t.params_on in PARAM_SITES, "train.params_on", f"one of {PARAM_SITES}", t.params_on)
    need(t.params_replicas >= 1, "train.params_replicas", ">= 1", t.params_replicas)
    if t.params_on == "executors":
        need(t.loss != "naive_softmax", "train.loss", "neg_sampling or hierarchical_softmax with "
             "train.params_on=executors (the full softmax reads every output row in every task)", t.loss)
        need(t.max_step == 0, "train.max_step", "0 with train.params_on=executors (the step limit needs the "
             "parameters on the driver)", t.max_step)
    need(t.task_lr_scale >= 0, "train.task_lr_scale", ">= 0 (0 = automatic)", t.task_lr_scale)
    need(t.max_step >= 0, "train.max_step", ">= 0 (0 = no limit)", t.max_step)
    need(t.rollback_ratio == 0 or t.rollback_ratio > 1, "train.rollback_ratio", "> 1 (0 = no rollback)",
         t.rollback_ratio)
    need(t.checkpoint_every >= 0, "train.checkpoint_every", ">= 0", t.checkpoint_every)
    need(v.min_count >= 1, "vocab.min_count", ">= 1", v.min_count)
    need(v.max_vocab_size is None or v.max_vocab_size >= 1, "vocab.max_vocab_size", ">= 1 or none",
         v.max_vocab_size)
    need(v.max_sentence_length >= 2, "vocab.max_sentence_length", ">= 2", v.max_sentence_length)
    need(bool(cfg.output.dir), "output.dir", "a non-empty path", cfg.output.dir)
    need(bool(cfg.output.exports) and set(cfg.output.exports) <= set(EXPORT_NAMES), "output.exports",
         f"a non-empty list of {EXPORT_NAMES}", cfg.output.exports)
    need(cfg.eval.analogy_restrict >= 1, "eval.analogy_restrict", ">= 1", cfg.eval.analogy_restrict)
    need(cfg.eval.topn >= 1, "eval.topn", ">= 1", cfg.eval.topn)
    need(bool(cfg.input.path), "input.path", "a non-empty path", cfg.input.path)
    need(0 <= cfg.eval.edges_holdout < 1, "eval.edges_holdout", ">= 0 and < 1", cfg.eval.edges_holdout)
    w = cfg.walks
    need(w.format in ("", "parquet", "csv"), "walks.format", '"parquet", "csv" or "" (from the file name)', w.format)
    need(w.per_node >= 1, "walks.per_node", ">= 1", w.per_node)
    need(w.length >= 2, "walks.length", ">= 2", w.length)
    need(w.p > 0 and math.isfinite(w.p), "walks.p", "> 0", w.p)
    need(w.q > 0 and math.isfinite(w.q), "walks.q", "> 0", w.q)
    ph = cfg.phrases
    need(ph.min_count >= 0, "phrases.min_count", ">= 0", ph.min_count)
    need(math.isfinite(ph.threshold), "phrases.threshold", "a finite number", ph.threshold)
    need(1 <= ph.passes <= 4, "phrases.passes", "between 1 and 4", ph.passes)
    need(bool(ph.delimiter), "phrases.delimiter", "a non-empty string", ph.delimiter)
    if cfg.input.tokens_column:
        need(cfg.input.format != "text", "input.format",
             "a table source such as \"parquet\" when input.tokens_column is set (text files hold no arrays)",
             cfg.input.format)
        need(not v.token_pattern, "vocab.token_pattern",
             "empty when input.tokens_column is set (sequences are used as they are, never re-tokenized)",
             v.token_pattern)
