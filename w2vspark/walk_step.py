"""One step of many random walks at once, in numpy: DeepWalk's first-order and node2vec's second-order choice.

The graph arrives as CSR pieces, one row per walker (not per node): walker i stands on a node whose out-edges are
``nbrs[offsets[i]:offsets[i+1]]`` with weights ``weights[...]``, came from ``prev[i]`` (when ``has_prev[i]``)
whose own neighbours are ``prev_nbrs[prev_offsets[i]:prev_offsets[i+1]]``, and draws with its uniform number
``u[i]`` in [0, 1). This is the body of the Spark walk job's per-step Arrow function and is tested on its own.

node2vec (Grover & Leskovec 2016, section 3.2.2): from v, reached from t, the unnormalised probability of going to
x is w(v, x) * alpha(t, x), alpha = 1/p when x = t, 1 when x is a neighbour of t, 1/q otherwise; p = q = 1 is
DeepWalk's walk (weighted by w when the graph has weights).
"""
from __future__ import annotations

import numpy as np


def _rows(offsets: np.ndarray) -> np.ndarray:
    """CSR offsets (n+1,) -> the row of every entry (E,)."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def neighbour_of_previous(offsets: np.ndarray, nbrs: np.ndarray, prev_offsets: np.ndarray,
                          prev_nbrs: np.ndarray) -> np.ndarray:
    """-> (E,) bool: candidate e of walker i is among walker i's previous node's neighbours. Exact (a sort of
    the (walker, node) pairs of both sets), whatever the node ids."""
    rows = np.concatenate([_rows(offsets), _rows(prev_offsets)])  # (E+F,)
    nodes = np.concatenate([nbrs, prev_nbrs])  # (E+F,)
    tag = np.concatenate([np.zeros(len(nbrs), np.int8), np.ones(len(prev_nbrs), np.int8)])  # 1 = previous's
    order = np.lexsort((tag, nodes, rows))  # by walker, node, candidates before the previous node's entries
    r, v, t = rows[order], nodes[order], tag[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (r[1:] != r[:-1]) | (v[1:] != v[:-1])
    group = np.cumsum(start) - 1  # (E+F,) index of the (walker, node) group
    group_has_prev = np.maximum.reduceat(t, np.flatnonzero(start)) if len(order) else t  # (groups,)
    found = np.empty(len(order), dtype=bool)
    found[order] = group_has_prev[group].astype(bool)
    return found[: len(nbrs)]


def choose_next(offsets: np.ndarray, nbrs: np.ndarray, weights: np.ndarray, u: np.ndarray,
                prev: np.ndarray | None = None, has_prev: np.ndarray | None = None,
                prev_offsets: np.ndarray | None = None, prev_nbrs: np.ndarray | None = None,
                p: float = 1.0, q: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Each walker's next node.

    offsets (n+1,), nbrs (E,) int64, weights (E,) > 0, u (n,) in [0, 1); for node2vec (p or q not 1) also
    prev (n,) int64, has_prev (n,) bool, prev_offsets (n+1,), prev_nbrs (F,).
    -> (next (n,) int64, moved (n,) bool): walkers on a node without out-edges do not move (next = -1).
    Walker i takes candidate e with probability weight'(e) / sum of its candidates' weight' (inverse transform
    of u[i] on its cumulative weights), weight' = weight x alpha.
    """
    n = len(offsets) - 1
    deg = np.diff(offsets)  # (n,)
    rows = _rows(offsets)  # (E,)
    w = np.asarray(weights, dtype=np.float64)
    if (p != 1.0 or q != 1.0) and prev is not None and len(nbrs):
        back = has_prev[rows] & (nbrs == prev[rows])  # (E,) the step back to t
        near = neighbour_of_previous(offsets, nbrs, prev_offsets, prev_nbrs)  # (E,) x adjacent to t
        alpha = np.where(back, 1.0 / p, np.where(near, 1.0, 1.0 / q))
        w = w * np.where(has_prev[rows], alpha, 1.0)
    moved = deg > 0
    nxt = np.full(n, -1, dtype=np.int64)
    if not len(nbrs):
        return nxt, moved
    cum = np.cumsum(w)  # (E,)
    before = np.concatenate([[0.0], cum])[offsets[:-1]]  # (n,) weight of all earlier walkers' candidates
    total = np.concatenate([[0.0], cum])[offsets[1:]] - before  # (n,)
    key = rows + (cum - before[rows]) / total[rows]  # (E,) in (row, row + 1], ascending
    pick = np.searchsorted(key, np.arange(n) + u, side="right")  # (n,) first candidate past the draw
    pick = np.clip(pick, offsets[:-1], np.maximum(offsets[1:] - 1, offsets[:-1]))
    nxt[moved] = nbrs[pick[moved]]
    return nxt, moved
