"""Skip-gram and CBOW losses and their gradients, in pure numpy (CS224n assignment 2 notation).

V is the vocabulary size and d the dimension. ``outside_vectors`` (V, d) holds the outside vectors u as rows;
``center_vec`` (d,) is one center vector v_c.

- naive softmax:      y_hat = softmax(U v_c),  J = -log y_hat[o]
                      dJ/dv_c = U^T (y_hat - y),  dJ/dU = (y_hat - y) v_c^T
- negative sampling:  J = -log s(u_o.v_c) - sum_k log s(-u_k.v_c)
                      dJ/dv_c = (s(u_o.v_c) - 1) u_o + sum_k s(u_k.v_c) u_k
                      dJ/du_o = (s(u_o.v_c) - 1) v_c,  dJ/du_k = s(u_k.v_c) v_c once per occurrence of k
- hierarchical softmax: the outside word o is a leaf of a Huffman tree (:mod:`w2vspark.huffman`); with n_j the
                      inner nodes on its path, b_j their code bits and sign_j = 1 - 2 b_j,
                      J = -sum_j log s(sign_j u_{n_j}.v_c)  (U holds the inner nodes' vectors)
                      dJ/dv_c = sum_j -sign_j s(-sign_j u_{n_j}.v_c) u_{n_j},
                      dJ/du_{n_j} = -sign_j s(-sign_j u_{n_j}.v_c) v_c

Skip-gram sums one of these losses over the outside words of a center word; CBOW (:func:`cbow`) predicts one
word from h, the mean (or sum) of its context words' vectors, and sends dJ/dh back to them (divided by their
number for the mean).

The negatives are an argument (drawn by the caller), so every function here is deterministic and can be
gradient-checked. Every function stays finite, without overflow warnings, for scores of +-1000.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _float_array(x) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def sigmoid(x):
    """s(x) = 1 / (1 + exp(-x)), for scalars and arrays; never evaluates exp of a positive number."""
    x = _float_array(x)
    z = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)
    return s[()] if s.ndim == 0 else s


def sigmoid_grad(x):
    """ds/dx = s(x) (1 - s(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def logistic_curvature_bound(x, s=None):
    """c(x) = (s(x) - 1/2) / x (1/4 at x = 0): the curvature of the tightest quadratic in x that lies above the
    logistic loss -log s(x) everywhere and touches it at x (and at -x); Jaakkola & Jordan's bound, "Bayesian
    parameter estimation via variational methods" (Statistics and Computing, 2000). Even in x, so it serves
    -log s(-x) as well. It is at least s(x) (1 - s(x)), the curvature at x itself, and unlike it does not vanish
    where the score is large and wrong (x = -10: 0.05 against 4.5e-5): a step sized by it never passes the
    minimum of the loss it bounds. ``s``: s(x) when the caller has it."""
    x = _float_array(x)
    s = sigmoid(x) if s is None else np.asarray(s, dtype=x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):  # x = 0 is replaced below
        c = np.asarray((s - x.dtype.type(0.5)) / x)
    # (s - 1/2) / x = 1/4 - x^2 / 48 + ...: 1/4 to float32 precision for |x| < 1e-3
    np.copyto(c, x.dtype.type(0.25), where=np.abs(x) < 1e-3)
    return c[()] if c.ndim == 0 else c


def log_sigmoid(x):
    """log s(x) = -log(1 + exp(-x)), computed stably."""
    x = _float_array(x)
    return -np.logaddexp(0.0, -x)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log softmax of scores (..., V)."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------------------------------------
# single-example form (the CS224n contract)

def naive_softmax_loss_and_gradient(center_vec: np.ndarray, outside_idx: int, outside_vectors: np.ndarray):
    """Cross-entropy of softmax(U v_c) against the outside word.

    center_vec (d,), outside_idx int, outside_vectors (V, d) -> loss float, grad_center_vec (d,),
    grad_outside_vectors (V, d).
    """
    scores = outside_vectors @ center_vec  # (V,)
    log_probs = _log_softmax(scores)  # (V,)
    loss = float(-log_probs[outside_idx])
    delta = np.exp(log_probs)  # (V,)  y_hat - y
    delta[outside_idx] -= 1.0
    grad_center_vec = outside_vectors.T @ delta  # (d,)
    grad_outside_vectors = np.outer(delta, center_vec)  # (V, d)
    return loss, grad_center_vec, grad_outside_vectors


def _logistic_terms(center_vec: np.ndarray, ids: np.ndarray, signs: np.ndarray, outside_vectors: np.ndarray):
    """J = -sum_i log s(signs_i u_{ids_i}.v_c): the loss shared by negative sampling and hierarchical softmax.

    center_vec (d,), ids (n,) rows of outside_vectors (V, d) (may repeat), signs (n,) +-1 -> loss float,
    grad_center_vec (d,), grad_outside_vectors (V, d).
    """
    u = outside_vectors[ids]  # (n, d)
    z = signs * (u @ center_vec)  # (n,)
    loss = float(-log_sigmoid(z).sum())
    coef = -signs * sigmoid(-z)  # (n,)  dJ/d(u_i . v_c)
    grad_center_vec = coef @ u  # (d,)
    grad_outside_vectors = np.zeros_like(outside_vectors)  # (V, d)
    np.add.at(grad_outside_vectors, ids, coef[:, None] * center_vec[None, :])  # repeats accumulate
    return loss, grad_center_vec, grad_outside_vectors


def neg_sampling_loss_and_gradient(center_vec: np.ndarray, outside_idx: int, outside_vectors: np.ndarray,
                                   negative_ids: Sequence[int]):
    """Negative-sampling loss for one (center, outside) pair and K given negatives (which may repeat).

    center_vec (d,), outside_idx int, outside_vectors (V, d), negative_ids (K,) -> loss float,
    grad_center_vec (d,), grad_outside_vectors (V, d).
    """
    ids = np.concatenate([[outside_idx], np.asarray(negative_ids, dtype=np.int64)])  # (K+1,)
    signs = np.ones(len(ids))
    signs[1:] = -1.0  # (K+1,)  +1 for the outside word, -1 for negatives
    return _logistic_terms(center_vec, ids, signs, outside_vectors)


def hierarchical_softmax_loss_and_gradient(center_vec: np.ndarray, outside_idx: int, node_vectors: np.ndarray,
                                           tree):
    """Hierarchical-softmax loss of one (center, outside) pair: -log P(outside | center) along the outside
    word's path in ``tree`` (a :class:`w2vspark.huffman.HuffmanTree`).

    center_vec (d,), outside_idx int, node_vectors (N, d) with N >= V - 1 (row n: inner node n) -> loss float,
    grad_center_vec (d,), grad_node_vectors (N, d).
    """
    length = int(tree.lengths[outside_idx])
    nodes = tree.points[outside_idx, :length].astype(np.int64)  # (L,)
    signs = 1.0 - 2.0 * tree.codes[outside_idx, :length]  # (L,)  branch 0: +1, branch 1: -1
    return _logistic_terms(center_vec, nodes, signs, node_vectors)


def skipgram(center_idx: int, outside_ids: Sequence[int], center_vectors: np.ndarray, outside_vectors: np.ndarray,
             loss_fn: Callable = naive_softmax_loss_and_gradient, negatives: Sequence[Sequence[int]] | None = None):
    """Skip-gram loss of one window: the sum over the outside words of ``loss_fn``.

    center_vectors (V, d) and outside_vectors (V, d) -> loss float, grad_center_vectors (V, d),
    grad_outside_vectors (V, d). ``negatives`` gives one (K,) list per outside word and is required by
    (and only passed to) a negative-sampling ``loss_fn``.
    """
    if negatives is not None and len(negatives) != len(outside_ids):
        raise ValueError(f"negatives has {len(negatives)} lists for {len(outside_ids)} outside words")
    loss = 0.0
    grad_center_vectors = np.zeros_like(center_vectors)  # (V, d)
    grad_outside_vectors = np.zeros_like(outside_vectors)  # (V, d)
    center_vec = center_vectors[center_idx]  # (d,)
    for j, outside_idx in enumerate(outside_ids):
        extra = () if negatives is None else (negatives[j],)
        pair_loss, grad_center, grad_outside = loss_fn(center_vec, outside_idx, outside_vectors, *extra)
        loss += pair_loss
        grad_center_vectors[center_idx] += grad_center
        grad_outside_vectors += grad_outside
    return loss, grad_center_vectors, grad_outside_vectors


def cbow(outside_idx: int, context_ids: Sequence[int], center_vectors: np.ndarray, outside_vectors: np.ndarray,
         loss_fn: Callable = naive_softmax_loss_and_gradient, extra: tuple = (), mean: bool = True):
    """CBOW loss of one window: ``outside_idx`` (the word in the middle) predicted from h, the mean (``mean``)
    or the sum of the input vectors of its context words, with ``loss_fn(h, outside_idx, outside_vectors,
    *extra)``.

    context_ids (C,) (may repeat), center_vectors (V, d), outside_vectors (N, d) -> loss float,
    grad_center_vectors (V, d), grad_outside_vectors (N, d). Each context occurrence gets dJ/dh / C (mean)
    or dJ/dh (sum): the exact gradient.
    """
    context_ids = np.asarray(context_ids, dtype=np.int64)  # (C,)
    if len(context_ids) == 0:
        raise ValueError("a CBOW window needs at least one context word")
    h = center_vectors[context_ids].sum(axis=0)  # (d,)
    if mean:
        h = h / len(context_ids)
    loss, grad_h, grad_outside_vectors = loss_fn(h, outside_idx, outside_vectors, *extra)
    grad_center_vectors = np.zeros_like(center_vectors)  # (V, d)
    share = grad_h / len(context_ids) if mean else grad_h  # (d,)
    np.add.at(grad_center_vectors, context_ids, share[None, :])
    return loss, grad_center_vectors, grad_outside_vectors


# ----------------------------------------------------------------------------------------------------------
# batch-first form: B pairs at once; gradients are of the MEAN loss over the batch

def sum_rows(ids: np.ndarray, rows: np.ndarray):
    """Sum rows (N, d) that share an id: -> unique ids (U,) ascending, summed rows (U, d)."""
    if len(ids) == 0:
        return ids[:0], rows[:0]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    return sorted_ids[starts], np.add.reduceat(rows[order], starts, axis=0)


def naive_softmax_loss_and_gradient_batch(centers: np.ndarray, outside_ids: np.ndarray,
                                          outside_vectors: np.ndarray):
    """centers (B, d), outside_ids (B,), outside_vectors (V, d) -> mean loss, grad_centers (B, d),
    (row ids (V,), grad rows (V, d)): every outside row is touched by a full softmax."""
    batch = len(outside_ids)
    scores = centers @ outside_vectors.T  # (B, V)
    log_probs = _log_softmax(scores)  # (B, V)
    rows = np.arange(batch)
    loss = float(-log_probs[rows, outside_ids].mean())
    delta = np.exp(log_probs)  # (B, V)
    delta[rows, outside_ids] -= 1.0
    delta /= batch
    grad_centers = delta @ outside_vectors  # (B, d)
    grad_rows = delta.T @ centers  # (V, d)
    return loss, grad_centers, (np.arange(len(outside_vectors)), grad_rows)


def neg_sampling_loss_and_gradient_batch(centers: np.ndarray, outside_ids: np.ndarray, outside_vectors: np.ndarray,
                                         negatives: np.ndarray):
    """centers (B, d), outside_ids (B,), outside_vectors (V, d), negatives (B, K) -> mean loss,
    grad_centers (B, d), (touched row ids (U,), grad rows (U, d))."""
    batch = len(outside_ids)
    ids = np.concatenate([np.asarray(outside_ids)[:, None], np.asarray(negatives)], axis=1)  # (B, K+1)
    signs = np.full(ids.shape[1], -1.0, dtype=centers.dtype)
    signs[0] = 1.0  # (K+1,)
    u = outside_vectors[ids]  # (B, K+1, d)
    z = signs * np.einsum("bkd,bd->bk", u, centers)  # (B, K+1)
    loss = float(-log_sigmoid(z).sum() / batch)
    coef = -signs * sigmoid(-z) / batch  # (B, K+1)
    grad_centers = np.einsum("bk,bkd->bd", coef, u)  # (B, d)
    contrib = coef[:, :, None] * centers[:, None, :]  # (B, K+1, d)
    row_ids, grad_rows = sum_rows(ids.reshape(-1), contrib.reshape(-1, centers.shape[1]))
    return loss, grad_centers, (row_ids, grad_rows)
