"""The training loop, independent of where the tasks run.

For each sync round (epochs x syncs_per_epoch of them) the loop hands the current parameters to a *round
runner* (in-process for the local trainer, broadcast + mapInArrow on Spark), combines the partitions' sparse
deltas with the configured rule, limits each row's step (``train.max_step``), applies them, checks that every
parameter stays finite, logs one metrics record, and checkpoints at the configured epoch boundaries. Tasks are a
pure function of (parameters, data slice, seed, epoch, round, partition), so a run is bit-for-bit reproducible
and resumable.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from ..config import Config, TrainConfig, negative_group_for, sequential_for
from ..errors import UserError
from ..huffman import HuffmanTree, huffman_tree
from ..vocab import NoiseSampler, Vocabulary, WordCounts, keep_probabilities
from .combine import (Combined, DeltaAccumulator, add_rows, default_task_lr_scale, row_norms, rule_factors, scale_rows,
                        step_limits)
from .task import KernelParams, PartitionResult, take_slice, task_rng, train_partition


class TrainingDiverged(UserError, RuntimeError):
    """A parameter became NaN or infinite."""


@dataclass(frozen=True)
class RoundSpec:
    """What every task of one sync round needs to know besides its data and the parameters."""

    index: int  # global round number, 0-based
    epoch: int
    sync: int  # round within the epoch
    syncs_per_epoch: int
    lr_start: float  # task learning rate at the start and end of its slice (multiplier included)
    lr_end: float
    planned_words: int  # expected raw tokens in one task's slice


@dataclass(frozen=True)
class TaskPlan:
    """Run-wide constants shipped to every task (small: O(V) numbers)."""

    counts: np.ndarray  # (V,) int64 word counts
    sample: float
    seed: int
    kernel: KernelParams
    ns_exponent: float = 0.75  # negatives are drawn from counts^ns_exponent

    def keep_probs(self) -> np.ndarray:
        return self._memo("_keep_probs", lambda: keep_probabilities(self.counts, self.sample))

    def noise(self) -> NoiseSampler:
        return self._memo("_noise", lambda: NoiseSampler(self.counts, self.ns_exponent))

    def tree(self) -> HuffmanTree | None:
        """The Huffman tree of hierarchical softmax (None for the other losses), built from the counts."""
        if self.kernel.loss != "hierarchical_softmax":
            return None
        return self._memo("_tree", lambda: huffman_tree(self.counts))

    def _memo(self, name: str, build):
        """Built once per plan object: a Python worker keeps a broadcast plan for all tasks of a run."""
        if name not in self.__dict__:
            object.__setattr__(self, name, build())
        return self.__dict__[name]


def run_task(batches: Iterable[tuple[np.ndarray, np.ndarray]], partition: int, spec: RoundSpec, plan: TaskPlan,
             w_in: np.ndarray, w_out: np.ndarray, keep_probs=None, noise=None, sliced: bool = False) -> PartitionResult:
    """Train one partition's slice for one round (the body of every task, local or on Spark).

    ``batches`` hold the whole partition, or only this round's slice when ``sliced`` (the sentences whose row
    number in the partition is congruent to the round's sync index modulo syncs_per_epoch)."""
    rng = task_rng(plan.seed, spec.epoch, spec.sync, partition)
    return train_partition(
        batches if sliced else take_slice(batches, spec.sync, spec.syncs_per_epoch), w_in, w_out, plan.kernel,
        plan.keep_probs() if keep_probs is None else keep_probs,
        plan.noise() if noise is None else noise,
        rng, spec.lr_start, spec.lr_end, spec.planned_words, plan.tree())


def task_plan(cfg: Config, vocab: Vocabulary | WordCounts) -> TaskPlan:
    t = cfg.train
    return TaskPlan(counts=vocab.counts, sample=t.sample, seed=t.seed, ns_exponent=t.ns_exponent,
                    kernel=KernelParams(window=t.window, num_negatives=t.num_negatives, loss=t.loss,
                                        model=t.model, cbow_mean=t.cbow_mean,
                                        batch_pairs=t.batch_pairs, damping=t.damping,
                                        shrink_windows=t.shrink_windows, negative_group=negative_group_for(t),
                                        sequential=sequential_for(t), skip_saturated=t.skip_saturated))


class RoundRunner(Protocol):
    def __call__(self, spec: RoundSpec, w_in: np.ndarray, w_out: np.ndarray) -> Iterator[TaskReport | Combined]:
        """Yield a TaskReport for every partition and the Combined rows of both matrices (see apply_round)."""


def init_params(vocab_size: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c initialisation: w_in uniform in (-0.5/d, 0.5/d), w_out zeros; float32, (V, d) each."""
    rng = np.random.default_rng([seed, 0x1417])
    w_in = ((rng.random((vocab_size, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim))
    return w_in, np.zeros((vocab_size, dim), dtype=np.float32)


def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """Linear decay from lr to min_lr over the whole run (progress in [0, 1])."""
    return cfg.lr - (cfg.lr - cfg.min_lr) * min(max(progress, 0.0), 1.0)


def task_lr_multiplier(cfg: TrainConfig, num_partitions: int | None = None) -> float:
    """m: the tasks train at m x the learning rate (``train.task_lr_scale``, or the rule's default for the
    partition count)."""
    P = cfg.num_partitions if num_partitions is None else num_partitions
    return cfg.task_lr_scale or default_task_lr_scale(cfg.combine, P, cfg.loss, cfg.model)


def round_specs(cfg: TrainConfig, corpus_words: int, num_partitions: int) -> list[RoundSpec]:
    syncs = cfg.syncs(num_partitions)
    total_rounds = cfg.epochs * syncs
    scale = task_lr_multiplier(cfg, num_partitions)
    per_task = math.ceil(corpus_words / (num_partitions * syncs))
    return [RoundSpec(index=k, epoch=k // syncs, sync=k % syncs,
                      syncs_per_epoch=syncs,
                      lr_start=scale * learning_rate(cfg, k / total_rounds),
                      lr_end=scale * learning_rate(cfg, (k + 1) / total_rounds),
                      planned_words=per_task)
            for k in range(total_rounds)]


@dataclass(frozen=True)
class TaskReport:
    """One task's statistics for a round (its deltas travel separately, already combined)."""

    part: int
    loss_sum: float
    pairs: int
    words: int
    seconds: float


@dataclass
class RoundStats:
    loss_sum: float = 0.0
    pairs: int = 0
    words: int = 0
    task_seconds: list = field(default_factory=list)
    shortened_rows: int = 0  # rows whose update the step limit shortened


def apply_round(items: Iterable[TaskReport | Combined], w_in: np.ndarray, w_out: np.ndarray,
                rule: str, max_step: float = 0.0, max_factor: float = 1.0) -> RoundStats:
    """Apply a round's combined rows with ``rule`` (then :func:`step_limits` with ``max_step``; 0 = no limit)
    to (w_in, w_out) in place and total its task reports.

    ``max_factor`` caps every row's factor: 1 / m when the tasks trained at m x the learning rate, so that no
    row moves further than the plain sum of its partitions' steps at the configured rate (the first-order
    equivalent of training their slices one after another). The multiplier m exists for the frequent rows
    that every partition moves the same way, which the rule averages (factor about 1/P); a row that one task
    alone moved (rare words, most nodes of a graph) would otherwise keep the whole m x step.

    A runner yields every Combined item only after all tasks of the round have trained (they start from
    the parameters as they were before the round)."""
    stats = RoundStats()
    blocks = {"in": [], "out": []}
    for item in items:
        if isinstance(item, Combined):
            blocks[item.matrix].append(item)
        else:
            stats.loss_sum += item.loss_sum
            stats.pairs += item.pairs
            stats.words += item.words
            stats.task_seconds.append(item.seconds)
    for matrix, w in (("in", w_in), ("out", w_out)):
        items = blocks[matrix]
        factors = rule_factors(items, rule, max_factor)  # (m_i,) each: one block's update at a time is held
        limits = [None for _ in items]
        if max_step > 0 and items:
            lengths = row_norms(w)  # (V,)
            steps = [row_norms(scale_rows(item.total, f)) for item, f in zip(items, factors)]  # (m_i,) each
            limits, shortened = step_limits([lengths[item.ids] for item in items], items, steps, max_step)
            stats.shortened_rows += shortened
        for item, f, limit in zip(items, factors, limits):
            add_rows(w, item.ids, scale_rows(scale_rows(item.total, f), limit))  # (m_i, d)
    return stats


def local_round(results: Iterable[tuple[int, PartitionResult]], w_in: np.ndarray, w_out: np.ndarray):
    """Partition results -> TaskReport items as they come, then one Combined item per matrix."""
    acc = {"in": DeltaAccumulator(*w_in.shape), "out": DeltaAccumulator(*w_out.shape)}
    for part, res in results:
        acc["in"].add(res.in_ids, res.in_delta)
        acc["out"].add(res.out_ids, res.out_delta)
        yield TaskReport(part, res.loss_sum, res.pairs, res.words, res.seconds)
    yield acc["in"].combined("in")
    yield acc["out"].combined("out")


MAX_ROLLBACKS = 3  # rollbacks per run (each halves the task learning rate) before a run is stopped as diverged


def nonfinite_rows(w_in: np.ndarray, w_out: np.ndarray) -> dict[str, int]:
    """Rows with a NaN or infinite entry, per matrix that has any."""
    bad = {}
    for name, w in (("w_in", w_in), ("w_out", w_out)):
        if not np.isfinite(w).all():
            bad[name] = int((~np.isfinite(w)).any(axis=1).sum())
    return bad


class _Snapshots:
    """Copies of the parameters as they were before the two most recent rounds (the guard's rollback points).

    A round's loss is measured while its tasks train from the parameters the previous round left, so a bad
    combine in round k shows in round k + 1's loss: rolling back needs the parameters from before round k."""

    def __init__(self):
        self.rounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def take(self, k: int, w_in: np.ndarray, w_out: np.ndarray) -> None:
        old = [r for r in self.rounds if r < k - 1]  # a buffer two rounds old is reused, never a third allocated
        buffers = self.rounds.pop(old[0]) if old else (np.empty_like(w_in), np.empty_like(w_out))
        for r in old[1:]:
            del self.rounds[r]
        np.copyto(buffers[0], w_in)
        np.copyto(buffers[1], w_out)
        self.rounds[k] = buffers

    def restore(self, k: int, w_in: np.ndarray, w_out: np.ndarray) -> None:
        np.copyto(w_in, self.rounds[k][0])
        np.copyto(w_out, self.rounds[k][1])
        for r in [r for r in self.rounds if r > k]:
            del self.rounds[r]


@dataclass
class RoundResult:
    """What the loop needs of a round once its update is applied."""

    stats: RoundStats
    bad_rows: dict[str, int]  # rows with a NaN or infinite entry, per matrix that has any
    waited: float  # seconds spent waiting for the tasks


class ParameterStore(Protocol):
    """Where the parameters live while :func:`fit_store` trains them: on the driver (:class:`DriverParameters`)
    or on the executors (:class:`w2vspark.train.executor_params.ExecutorParameters`)."""

    def run(self, spec: RoundSpec, rule: str, max_step: float, max_factor: float) -> RoundResult:
        """Train round ``spec`` and apply its combined update."""

    def keep(self, k: int) -> None:
        """Remember the parameters as they are now, before round k (the guard's rollback points: the two most
        recent are kept)."""

    def restore(self, k: int) -> None:
        """Go back to the parameters kept before round k."""

    def kept(self, k: int) -> bool:
        """Whether the parameters from before round k are kept."""

    def view(self, k: int | None = None):
        """What ``on_epoch_end`` receives: the parameters now (None) or from before round k."""


class DriverParameters:
    """(w_in, w_out) as numpy arrays on the driver, updated in place by a :class:`RoundRunner`'s rounds."""

    def __init__(self, run_round: RoundRunner, w_in: np.ndarray, w_out: np.ndarray, snapshots: bool = True):
        self.run_round, self.w_in, self.w_out = run_round, w_in, w_out
        self.snapshots = _Snapshots() if snapshots else None
        self.traffic = None

    def run(self, spec: RoundSpec, rule: str, max_step: float, max_factor: float) -> RoundResult:
        waited = [0.0]
        stats = apply_round(_timed(self.run_round(spec, self.w_in, self.w_out), waited), self.w_in, self.w_out,
                            rule, max_step, max_factor)
        self.traffic = getattr(self.run_round, "traffic", None)
        return RoundResult(stats, nonfinite_rows(self.w_in, self.w_out), waited[0])

    def keep(self, k: int) -> None:
        if self.snapshots is not None:
            self.snapshots.take(k, self.w_in, self.w_out)

    def restore(self, k: int) -> None:
        self.snapshots.restore(k, self.w_in, self.w_out)

    def kept(self, k: int) -> bool:
        return self.snapshots is not None and k in self.snapshots.rounds

    def view(self, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return (self.w_in, self.w_out) if k is None else self.snapshots.rounds[k]


def judge_round(loss: float | None, best: float, bad_rows: dict[str, int], ratio: float) -> str | None:
    """Why a round must be rolled back (None: it is good). ``loss`` is None for a round that trained no pair
    (a slice without sentences); ``best`` is the lowest loss of the earlier kept rounds (inf when none)."""
    if bad_rows:
        return "NaN or infinite parameters (" + ", ".join(f"{n} rows of {m}" for m, n in bad_rows.items()) + ")"
    if loss is None:
        return None
    if not math.isfinite(loss):
        return f"loss {loss}"
    if ratio > 0 and math.isfinite(best) and loss > ratio * best:
        return f"loss {loss:.4g} is more than {ratio:g} x the best so far ({best:.4g})"
    return None


def _timed(results: Iterator, waited: list) -> Iterator:
    """Pass ``results`` through, adding the time spent waiting for each item to ``waited[0]``."""
    results = iter(results)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(results)
        except StopIteration:
            waited[0] += time.perf_counter() - t0
            return
        waited[0] += time.perf_counter() - t0
        yield item


def scaled_spec(spec: RoundSpec, lr_scale: float) -> RoundSpec:
    return spec if lr_scale == 1.0 else dataclasses.replace(spec, lr_start=spec.lr_start * lr_scale,
                                                            lr_end=spec.lr_end * lr_scale)


@dataclass
class GuardState:
    """What the divergence guard has decided so far; saved with every checkpoint so that a resumed run goes on
    with the same learning rate."""

    lr_scale: float = 1.0  # multiplier of every task learning rate from here on (halved by each rollback)
    rollbacks: int = 0

    def to_dict(self) -> dict:
        return {"lr_scale": self.lr_scale, "rollbacks": self.rollbacks}


def fit(cfg: TrainConfig, run_round: RoundRunner, w_in: np.ndarray, w_out: np.ndarray, specs: list[RoundSpec],
        start_round: int = 0, on_round: Callable[[dict], None] | None = None,
        on_epoch_end: Callable[[int, np.ndarray, np.ndarray, GuardState], None] | None = None,
        on_rollback: Callable[[dict], None] | None = None,
        guard: GuardState | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_store` with the parameters on the driver: rounds ``start_round..`` of ``specs`` update (w_in,
    w_out) in place; returns them. ``on_epoch_end(epoch, w_in, w_out, guard)``."""
    store = DriverParameters(run_round, w_in, w_out, snapshots=cfg.rollback_ratio > 0)
    fit_store(cfg, store, specs, start_round, on_round,
              None if on_epoch_end is None else (lambda epoch, view, g: on_epoch_end(epoch, *view, g)),
              on_rollback, guard)
    return w_in, w_out


def fit_store(cfg: TrainConfig, store: ParameterStore, specs: list[RoundSpec], start_round: int = 0,
              on_round: Callable[[dict], None] | None = None,
              on_epoch_end: Callable[[int, object, GuardState], None] | None = None,
              on_rollback: Callable[[dict], None] | None = None, guard: GuardState | None = None) -> None:
    """Run rounds ``start_round..`` of ``specs`` on the parameters of ``store``.

    The divergence guard (``cfg.rollback_ratio`` > 0): a round that leaves a NaN or infinite parameter, or whose
    loss is more than rollback_ratio x the lowest loss of the earlier rounds, is undone: the parameters go back
    to before the round that caused it (the round itself for non-finite values; the one before for a loss jump,
    since a round's loss measures the parameters it started from), the task learning rate of the rest of the run
    is halved, and training goes on from there. Every decision depends only on the losses and parameters, so a
    run repeats bit for bit. After ``MAX_ROLLBACKS`` rollbacks, or without the guard, a diverged round stops the
    run with :class:`TrainingDiverged`. ``on_rollback`` gets one event record per rollback.

    ``on_epoch_end(epoch, view, guard)`` is called (for checkpoints) with the store's view of the parameters at
    the end of each epoch; with the guard only once the next round's loss has confirmed them (the last epoch's at
    once).
    """
    guard = guard or GuardState()
    max_factor = 1.0 / task_lr_multiplier(cfg)
    ratio = cfg.rollback_ratio
    t_start = time.perf_counter()
    kept: dict[int, float] = {}  # round index -> loss of the rounds that stand
    pending_epoch = None  # (epoch, round index whose start holds the epoch's parameters) awaiting confirmation
    rounds_run = 0
    k = start_round
    while k < len(specs):
        spec = scaled_spec(specs[k], guard.lr_scale)
        if ratio > 0:
            store.keep(k)
        t0 = time.perf_counter()
        result = store.run(spec, cfg.combine, cfg.max_step, max_factor)
        stats, bad_rows = result.stats, result.bad_rows
        seconds = time.perf_counter() - t0
        rounds_run += 1
        loss = stats.loss_sum / max(stats.pairs, 1)
        best = min((v for r, v in kept.items() if r < k), default=math.inf)
        reason = judge_round(loss if stats.pairs else None, best, bad_rows, ratio)
        if reason is not None:
            target = k if bad_rows or k - 1 < start_round else k - 1  # the round whose combine went wrong
            if ratio <= 0 or guard.rollbacks >= MAX_ROLLBACKS or not store.kept(target):
                tried = f" after {guard.rollbacks} rollback(s) that lowered the task learning rate to " \
                        f"{guard.lr_scale:g} x" if guard.rollbacks else ""
                raise TrainingDiverged(
                    f"training diverged in round {k + 1} (epoch {spec.epoch + 1}, sync {spec.sync + 1}): "
                    f"{reason}{tried}; lower train.lr (now {cfg.lr:g}) or train.task_lr_scale, or raise "
                    f"train.syncs_per_epoch. No model was written; the last checkpoint is intact.")
            store.restore(target)
            guard.rollbacks += 1
            guard.lr_scale *= 0.5
            for r in [r for r in kept if r >= target]:
                del kept[r]
            pending_epoch = None
            if on_rollback is not None:
                on_rollback({"event": "rollback", "round": k + 1, "reason": reason, "resume_round": target + 1,
                             "lr_scale": guard.lr_scale, "rollbacks": guard.rollbacks})
            k = target
            continue
        if stats.pairs:
            kept[k] = loss
        elapsed = time.perf_counter() - t_start
        remaining = len(specs) - k - 1
        record = {
            "round": k + 1, "rounds": len(specs), "epoch": spec.epoch + 1, "sync": spec.sync + 1,
            "loss": loss, "pairs": stats.pairs, "words": stats.words,
            "words_per_sec": stats.words / seconds if seconds > 0 else 0.0,
            "lr": spec.lr_start, "seconds": seconds, "elapsed": elapsed,
            "eta": elapsed / rounds_run * remaining, "max_task_seconds": max(stats.task_seconds, default=0.0),
            "min_task_seconds": min(stats.task_seconds, default=0.0),
            "wait_seconds": result.waited, "combine_seconds": seconds - result.waited,
            "shortened_rows": stats.shortened_rows, "lr_scale": guard.lr_scale,
            **(getattr(store, "traffic", None) or {}),  # a Spark runner's bytes moved (w2vspark.train.traffic)
        }
        if on_round is not None:
            on_round(record)
        if pending_epoch is not None and on_epoch_end is not None:  # this round's loss confirms its start
            epoch, at = pending_epoch
            on_epoch_end(epoch, store.view(at), guard)
        pending_epoch = None
        if spec.sync == spec.syncs_per_epoch - 1:
            if ratio <= 0 or k + 1 == len(specs):
                if on_epoch_end is not None:
                    on_epoch_end(spec.epoch, store.view(), guard)
            else:
                pending_epoch = (spec.epoch, k + 1)
        k += 1


def format_progress(r: dict) -> str:
    return (f"epoch {r['epoch']} round {r['round']}/{r['rounds']}: loss {r['loss']:.4f}  "
            f"{r['words_per_sec'] / 1000:.1f}k words/s  lr {r['lr']:.5f}  "
            f"elapsed {r['elapsed']:.0f}s  eta {r['eta']:.0f}s")


def format_rollback(e: dict) -> str:
    return (f"round {e['round']} diverged ({e['reason']}): rolled back to the start of round {e['resume_round']}, "
            f"task learning rate now {e['lr_scale']:g} x (rollback {e['rollbacks']} of at most {MAX_ROLLBACKS})")
