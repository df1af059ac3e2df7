"""Driver-side combining of the tasks' sparse deltas into one update per parameter row.

Rules, for a row r touched by n(r) tasks with deltas D_p[r] and their sum U[r] = sum_p D_p[r]:
- ``sum``:     U[r]
- ``average``: U[r] / n(r)                        (Spark MLlib's rule)
- ``scaled``:  U[r] * clip(sum_p |D_p[r]|^2 / |U[r]|^2, 1/n(r), 1)
               an average when the tasks' deltas agree, a sum when they are unrelated.
Parts are accumulated in the order given (the partition order), so the result is deterministic.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

RULES = ("scaled", "sum", "average")


class DeltaAccumulator:
    """Accumulates (row ids, delta rows) parts for one (V, d) parameter matrix."""

    def __init__(self, num_rows: int, dim: int):
        self.total = np.zeros((num_rows, dim), dtype=np.float32)  # (V, d)
        self.count = np.zeros(num_rows, dtype=np.int32)  # (V,) tasks that touched each row
        self.square_sum = np.zeros(num_rows, dtype=np.float64)  # (V,) sum_p |D_p[r]|^2

    def add(self, ids: np.ndarray, delta: np.ndarray) -> None:
        """ids (n,) unique, delta (n, d)."""
        if len(ids) == 0:
            return
        self.total[ids] += delta
        self.count[ids] += 1
        self.square_sum[ids] += np.einsum("nd,nd->n", delta, delta, dtype=np.float64)

    def update(self, rule: str) -> tuple[np.ndarray, np.ndarray]:
        """-> touched row ids (m,), update rows (m, d) float32."""
        ids = np.flatnonzero(self.count)
        summed = self.total[ids]  # (m, d)
        n = self.count[ids].astype(np.float64)  # (m,)
        if rule == "sum":
            return ids, summed
        if rule == "average":
            factor = 1.0 / n
        elif rule == "scaled":
            norm2 = np.einsum("md,md->m", summed, summed, dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(norm2 > 0, self.square_sum[ids] / norm2, 1.0)
            factor = np.clip(ratio, 1.0 / n, 1.0)
        else:
            raise ValueError(f"unknown combine rule {rule!r}; expected one of {RULES}")
        return ids, (summed * factor[:, None].astype(np.float32))


def combine(parts: Iterable[tuple[np.ndarray, np.ndarray]], num_rows: int, dim: int, rule: str):
    """Combine an iterable of (ids, delta) parts -> (row ids, update rows)."""
    acc = DeltaAccumulator(num_rows, dim)
    for ids, delta in parts:
        acc.add(ids, delta)
    return acc.update(rule)


def default_task_lr_scale(rule: str, num_partitions: int) -> float:
    """The task learning-rate multiplier used when ``train.task_lr_scale`` is 0 (automatic)."""
    if rule == "scaled":
        return float(min(np.sqrt(num_partitions), 2.83))
    return 1.0
