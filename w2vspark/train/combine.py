"""Combining the tasks' sparse deltas into one update per parameter row (summed in-process by the local
trainer, by row block on the executors on Spark; the driver applies the rule with :func:`rule_factors`).

Rules, for a row r touched by n(r) tasks with deltas D_p[r] and their sum U[r] = sum_p D_p[r]:
- ``sum``:        U[r]
- ``average``:    U[r] / n(r)                       (Spark MLlib's rule)
- ``scaled_row``: U[r] * clip(a(r), 1/n(r), 1) with the row's own agreement a(r) = sum_p |D_p[r]|^2 / |U[r]|^2:
                  an average when the tasks' deltas agree, a sum when they are unrelated.
- ``scaled``:     the same with a(r) pooled over the row's frequency band B(r) (four bands per octave of rank;
                  ids are ranks by count): sum_{s in B} sum_p |D_p[s]|^2 / sum_{s in B} |U[s]|^2.
                  One row's a(r) is a noisy estimate (a handful of noisy deltas), and multiplying each row by its
                  own noisy factor turns the rows' noise into errors of direction; the band's ratio has the same
                  mean with little noise. Against a sequential pass over the same data (8 partitions, one round,
                  two seeds each to remove the sampling noise), the pooled factor's update pointed closer to the
                  sequential one (cosine 0.95-0.99 against 0.89-0.93 for rows of rank 3,000 and beyond in w_out).
Parts are accumulated in the order given (the partition order), so the result is deterministic.

After the rule, :func:`step_limits` shortens the updates of rows that several tasks moved further than
``train.max_step`` x max(min(the row's length, 4 x typical), typical) in one round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .. import compiled

RULES = ("scaled", "scaled_row", "sum", "average")
BLOCK_ROWS = 8192  # parameter rows per block: of deltas, checkpoints and the parameters held on the executors
# the largest automatic task learning-rate multipliers (default_task_lr_scale)
TASK_LR_CAP = 4  # skip-gram with negative sampling
CBOW_TASK_LR_CAP = 8  # CBOW with negative sampling
HS_TASK_LR_CAP = 2  # hierarchical softmax, either architecture


@dataclass
class Combined:
    """What the rules need of one matrix's rows after a round: for each touched row, the summed delta
    U[r], sum_p |D_p[r]|^2 and n(r). Built by one accumulator (local trainer) or per block of rows on the
    executors (Spark), and the same either way."""

    matrix: str  # "in" (w_in) or "out" (w_out)
    ids: np.ndarray  # (m,) int32 ascending
    total: np.ndarray  # (m, d) float32
    square_sum: np.ndarray  # (m,) float64
    count: np.ndarray  # (m,) int32, >= 1

    def update(self, rule: str) -> np.ndarray:
        """-> the update rows (m, d) float32 under ``rule`` (``scaled`` pools over these rows only; see
        :func:`rule_updates` for a matrix cut into blocks)."""
        return rule_updates([self], rule)[0]

    def norm2(self) -> np.ndarray:
        """(m,) float64 |U[r]|^2."""
        return np.einsum("md,md->m", self.total, self.total, dtype=np.float64)

    def clipped(self, agreement: np.ndarray) -> np.ndarray:
        """clip(agreement[r], 1/n(r), 1) -> (m,) float64, the ``scaled`` rules' factor."""
        return np.clip(agreement, 1.0 / self.count.astype(np.float64), 1.0)


def frequency_band(ids: np.ndarray) -> np.ndarray:
    """Row ids (ranks by count) -> their frequency band, floor(4 log2(id + 1)): four bands per octave of rank,
    e.g. ids 90-106, 861-1022 and 32767-38966 are one band each; the 8 most frequent words are one each."""
    return (4.0 * np.log2(ids.astype(np.float64) + 1.0)).astype(np.int64)


def _ratio(square_sum: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """sum_p |D_p|^2 / |U|^2, 1 where U is zero (the zero sum is kept)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm2 > 0, square_sum / norm2, 1.0)


def rule_factors(blocks: Sequence[Combined], rule: str, max_factor: float = 1.0) -> list[np.ndarray | None]:
    """Each block's per-row factor (m_i,) float64 under ``rule`` (None for ``sum`` without a cap: the rows as
    they are), at most ``max_factor``.

    ``scaled`` pools the agreement over all blocks (in order of row ids, so the result does not depend on how
    the rows were cut into blocks). The trainer caps the factors at 1 / m when the tasks trained at m x the
    learning rate (see :func:`w2vspark.train.loop.apply_round`)."""
    return [_capped(f, len(b.ids), max_factor) for b, f in zip(blocks, _uncapped_factors(blocks, rule))]


def block_factors(block: Combined, rule: str, max_factor: float = 1.0,
                  agreement: np.ndarray | None = None) -> np.ndarray | None:
    """One block's factors as :func:`rule_factors` gives them for the whole matrix, where ``agreement`` (bands,)
    is the ``scaled`` rule's pooled agreement of the whole matrix (:func:`band_agreement`): the same bits, for
    executors that hold some blocks only."""
    if rule == "scaled":
        factor = block.clipped(agreement[frequency_band(block.ids)]) if len(block.ids) else None
    else:
        factor = _uncapped_factors([block], rule)[0]
    return _capped(factor, len(block.ids), max_factor)


def _capped(factor: np.ndarray | None, rows: int, max_factor: float) -> np.ndarray | None:
    if max_factor >= 1.0:
        return factor
    return np.full(rows, max_factor) if factor is None else np.minimum(factor, max_factor)


def _uncapped_factors(blocks: Sequence[Combined], rule: str) -> list[np.ndarray | None]:
    if rule == "sum":
        return [None for _ in blocks]
    if rule == "average":
        return [1.0 / b.count for b in blocks]
    if rule == "scaled_row":
        return [b.clipped(_ratio(b.square_sum, b.norm2())) for b in blocks]
    if rule != "scaled":
        raise ValueError(f"unknown combine rule {rule!r}; expected one of {RULES}")
    order = sorted((i for i in range(len(blocks)) if len(blocks[i].ids)), key=lambda i: int(blocks[i].ids[0]))
    if not order:
        return [None for _ in blocks]
    ids, square_sum, norm2 = (np.concatenate([f(blocks[i]) for i in order])  # every touched row once, ascending
                              for f in (lambda b: b.ids, lambda b: b.square_sum, lambda b: b.norm2()))
    agreement = band_agreement(sum_band_partials([band_partials(ids, square_sum, norm2)]))  # (bands,)
    return [b.clipped(agreement[frequency_band(b.ids)]) for b in blocks]


def band_partials(ids: np.ndarray, square_sum: np.ndarray, norm2: np.ndarray,
                  block_rows: int = BLOCK_ROWS) -> dict[int, np.ndarray]:
    """The ``scaled`` rule's sums over each frequency band, one partial per block of ``block_rows`` row ids:
    ascending ids (m,), their sum_p |D_p|^2 and |U|^2 (m,) -> {block: (2, bands up to the block's) float64}.
    Summed by :func:`sum_band_partials` in block order, the partials of the executors that each hold whole
    blocks and those of the driver that holds all rows give the same bits."""
    out = {}
    if len(ids) == 0:
        return out
    blocks = ids // block_rows
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    for lo, hi in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(ids)].tolist()):
        band = frequency_band(ids[lo:hi])
        out[int(blocks[lo])] = np.stack([np.bincount(band, weights=square_sum[lo:hi]),
                                         np.bincount(band, weights=norm2[lo:hi])])
    return out


def sum_band_partials(partials: Iterable[dict[int, np.ndarray]]) -> np.ndarray:
    """{block: (2, b)} partials -> (2, bands) float64 totals, added in ascending block order."""
    merged = {}
    for part in partials:
        merged.update(part)
    width = max((p.shape[1] for p in merged.values()), default=0)
    total = np.zeros((2, width))
    for block in sorted(merged):
        p = merged[block]
        total[:, :p.shape[1]] += p
    return total


def band_agreement(totals: np.ndarray) -> np.ndarray:
    """(2, bands) totals of sum_p |D_p|^2 and |U|^2 -> (bands,) float64 pooled agreement."""
    return _ratio(totals[0], totals[1])


def scale_rows(rows: np.ndarray, factor: np.ndarray | None) -> np.ndarray:
    """rows (m, d) float32 times factor (m,) (None: the rows themselves)."""
    return rows if factor is None else rows * factor[:, None].astype(np.float32)


def rule_updates(blocks: Sequence[Combined], rule: str) -> list[np.ndarray]:
    """The update rows of every block of one matrix under ``rule`` -> list of (m_i, d) float32."""
    return [scale_rows(b.total, f) for b, f in zip(blocks, rule_factors(blocks, rule))]


def add_rows(w: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> None:
    """w[ids] += rows for unique ``ids`` (n,), rows (n, d): through the compiled scatter-add when it is built
    (one pass, no gathered copy of w's rows), else numpy's fancy indexing; the same float32 additions either
    way, so the same bits."""
    scatter_add = compiled.helper("scatter_add")
    if scatter_add is not None and w.dtype == np.float32 and w.flags.c_contiguous and len(ids):
        scatter_add(w, np.ascontiguousarray(ids, dtype=np.int64), np.ascontiguousarray(rows, dtype=np.float32),
                    w.shape[1])
    else:
        w[ids] += rows


class DeltaAccumulator:
    """Accumulates (row ids, delta rows) parts for rows ``first .. first + num_rows - 1`` of a (V, d) matrix."""

    def __init__(self, num_rows: int, dim: int, first: int = 0):
        self.first = first
        self.total = np.zeros((num_rows, dim), dtype=np.float32)  # (R, d)
        self.count = np.zeros(num_rows, dtype=np.int32)  # (R,) tasks that touched each row
        self.square_sum = np.zeros(num_rows, dtype=np.float64)  # (R,) sum_p |D_p[r]|^2

    def add(self, ids: np.ndarray, delta: np.ndarray) -> None:
        """ids (n,) unique, absolute row numbers; delta (n, d)."""
        if len(ids) == 0:
            return
        rows = ids - self.first if self.first else ids
        add_rows(self.total, rows, delta)
        self.count[rows] += 1
        self.square_sum[rows] += np.einsum("nd,nd->n", delta, delta, dtype=np.float64)

    def combined(self, matrix: str) -> Combined:
        rows = np.flatnonzero(self.count)
        return Combined(matrix, (rows + self.first).astype(np.int32), self.total[rows], self.square_sum[rows],
                        self.count[rows])


def row_norms(rows: np.ndarray) -> np.ndarray:
    """(m, d) -> (m,) float64 Euclidean length of every row."""
    return np.sqrt(np.einsum("md,md->m", rows, rows, dtype=np.float64))


LENGTH_CAP = 4.0  # a row longer than this x the typical length may still move only this x the typical per round


def step_limits(lengths: Sequence[np.ndarray], blocks: Sequence[Combined], steps: Sequence[np.ndarray],
                max_step: float) -> tuple[list[np.ndarray | None], int]:
    """The factors (m_i,) in (0, 1] that keep every row's combined step within ``max_step`` x
    max(min(its length, LENGTH_CAP x typical), typical); rows that one task alone moved are never shortened.

    lengths[i] (m_i,) are the lengths of block i's rows before the round, steps[i] (m_i,) the lengths of their
    updates after the rule; typical = max(median row length, median step) over all the matrix's touched rows
    (so rows can grow from zero: w_out starts at zero). The result does not depend on how the rows are cut into
    blocks. Returns each block's factors (None where nothing in the block is shortened, as :func:`scale_rows`
    takes them) and the number of shortened rows.

    - A row touched by one task moves by that task's own step, as in sequential training: with one partition
      nothing is ever shortened (a limit there cut every row in the first rounds, while rows grow from zero,
      and slowed the start).
    - Where several tasks touched a row, partitions that start from the same parameters can each push a word
      with very repetitive contexts a long way, and the combined step feeds a run-away growth of that row and
      of every row it meets (on the 15M-word text at 8 partitions, rows of 100-280 x the median length without
      a limit). A sequential pass moved no row further than 0.85 x max(its length, the median length).
    - The cap at LENGTH_CAP x typical keeps a row's growth per round additive (at most 4 typical lengths), not a
      multiple of its own length: a bound relative to the row's own length alone lets a row double every round.
    """
    all_steps = np.concatenate(steps) if len(steps) else np.zeros(0)
    if max_step <= 0 or len(all_steps) == 0:
        return [None for _ in steps], 0
    typical = max(float(np.median(np.concatenate(lengths))), float(np.median(all_steps)))
    factors, shortened = [], 0
    for length, block, step in zip(lengths, blocks, steps):
        limit = max_step * np.maximum(np.minimum(length, LENGTH_CAP * typical), typical)  # (m_i,)
        over = (step > limit) & (block.count > 1)
        if over.any():
            factor = np.ones(len(step))
            factor[over] = limit[over] / step[over]
            shortened += int(over.sum())
            factors.append(factor)
        else:
            factors.append(None)
    return factors, shortened


def combine(parts: Iterable[tuple[np.ndarray, np.ndarray]], num_rows: int, dim: int, rule: str):
    """Combine an iterable of (ids, delta) parts -> (row ids, update rows)."""
    acc = DeltaAccumulator(num_rows, dim)
    for ids, delta in parts:
        acc.add(ids, delta)
    combined = acc.combined("")
    return combined.ids, combined.update(rule)


def default_task_lr_scale(rule: str, num_partitions: int, loss: str = "neg_sampling",
                          model: str = "skipgram") -> float:
    """The task learning-rate multiplier m used when ``train.task_lr_scale`` is 0 (automatic): for ``scaled``
    and ``scaled_row`` min(P, 4) with skip-gram, min(P, 8) with CBOW, min(P, 2) with hierarchical softmax
    (either architecture); 1 for the other rules.

    ``scaled`` and ``scaled_row`` average rows that all partitions move the same way (factor about 1/n), which
    slows those rows down by up to P; tasks compensate with m, and each row's combined factor is capped at 1/m
    (:func:`w2vspark.train.loop.apply_round`), so the rows that one task alone moved keep the configured rate
    whatever m is. With m = P an averaged row moves as far as one task's step at the configured rate.

    Measured (docs/benchmarks.md): on uniform-frequency IDs (the stress matrix's random walks, 5 epochs),
    skip-gram's former min(max(sqrt(P), P / 2), 4) = 1.41 / 1.73 / 2 at 2 / 3 / 4 partitions left the trained
    model's loss 4.8 / 6.0 / 5.4% above 1 partition's; m = P leaves it within 0.3% (two seeds), and every other
    shape within 1.5%. On the 15M-word text benchmark (5 epochs, seed 1) 2 partitions give 0.683 / 0.392 / 30.9%
    and 4 partitions 0.678 / 0.390 / 30.9% (WS353 / SimLex / analogy; 1 partition 0.684 / 0.390 / 30.4%). At 8
    partitions m = 4 gave SimLex 0.381 / 0.384 (seeds 1 / 2) against 0.367 / 0.376 with m = 2 and 0.390 / 0.388
    at 1 partition.

    CBOW's updates agree across partitions even more (h averages the context vectors), so the rule averages
    more of them: with min(P, 4) its random walks at 8 partitions ended 5.2% / 5.0% above 1 partition's loss
    (seeds 1 / 2, 5 epochs), with min(P, 8) 11% below; at one epoch min(P, 8) took the Zipf text at 8 and 16
    partitions from 7.0% / 9.1% above 1 partition to 3.3% / 5.5% (seed 1; seed 2 the same to 0.4 points), and
    every other cell of the matrix passes as before (within 1% of min(P, 4) at 5 epochs).

    Hierarchical softmax caps m at 2: every window moves the top of the Huffman tree, so every task moves those
    rows. On the 15M-word text (5 epochs, 8 partitions, seeds 1 / 2; 1 partition 0.678 / 0.344 / 27.7% and
    0.670 / 0.339 / 27.7%), m = 4 gave 0.669 / 0.342 / 26.0% and 0.667 / 0.348 / 25.9%, m = 2 0.667 / 0.331 /
    27.1% and 0.686 / 0.333 / 27.9% (mean against 1 partition: WS353 +0.002, SimLex -0.0095, analogy -0.2);
    seed 1 with m = 3: 0.670 / 0.333 / 27.3%, with m = 8: 22.7%. With the sequential step (train.step, the
    default for hierarchical softmax since) seed 1 at 8 partitions gave analogy 27.8 / 27.3 / 27.4 / 27.5% with
    m = 1 / 2 / 3 / 4 (1 partition 29.2%): m matters less there, and 2 stays. What closes that gap is smaller
    rounds (64 per epoch: 28.9%; :meth:`w2vspark.config.TrainConfig.syncs`), not the rule: averaging the top 3,000
    rows of both matrices instead (the length a sequential pass gives them, bench/combine_study.py) scored 27.3%.
    """
    if rule not in ("scaled", "scaled_row"):
        return 1.0
    if loss == "hierarchical_softmax":
        cap = HS_TASK_LR_CAP
    else:
        cap = CBOW_TASK_LR_CAP if model == "cbow" else TASK_LR_CAP
    return float(min(num_partitions, cap))
