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


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias method (Vose's construction) for one node's out-edges: weights (k,) > 0 ->
    (accept (k,) float64 in [0, 1], alias (k,) int64 slot). A draw takes slot i = floor(k u), then slot i itself if
    its fraction k u - i < accept[i], else slot alias[i]; slot j's probability is
    (accept[j] + sum of (1 - accept[i]) over the slots i whose alias is j) / k = weights[j] / sum(weights)."""
    k = len(weights)
    scaled = np.asarray(weights, dtype=np.float64) * (k / np.sum(weights))  # (k,) mean 1
    accept = np.ones(k)
    alias = np.arange(k, dtype=np.int64)
    small = [i for i in range(k) if scaled[i] < 1.0]
    large = [i for i in range(k) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g  # slot s gives its missing share to g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return accept, alias  # slots left in either list keep accept 1 (their scaled value is 1 up to rounding)


def alias_tables(offsets: np.ndarray, nbrs: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alias tables of many nodes at once, CSR as in :func:`choose_next` (one row per node, every row non-empty)
    -> (accept (E,) float64, alias_nbr (E,) int64: the neighbour that slot e gives way to). Nodes whose
    out-edges all weigh the same get accept 1 everywhere (a uniform pick) without a table."""
    accept = np.ones(len(nbrs))
    alias_nbr = np.array(nbrs, dtype=np.int64)
    if not len(nbrs):
        return accept, alias_nbr
    starts = offsets[:-1]
    w = np.asarray(weights, dtype=np.float64)
    uneven = np.maximum.reduceat(w, starts) != np.minimum.reduceat(w, starts)  # (n,)
    for node in np.flatnonzero(uneven):
        a, b = offsets[node], offsets[node + 1]
        accept[a:b], slots = alias_table(w[a:b])
        alias_nbr[a:b] = nbrs[a + slots]
    return accept, alias_nbr
