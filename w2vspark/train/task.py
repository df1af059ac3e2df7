"""The partition trainer: minibatch skip-gram or CBOW SGD on one slice of sentences, in vectorized float32 numpy.

This is what each Spark task runs (and what the local trainer runs in-process). It trains a private copy of
the parameters and returns only the rows it touched, as deltas against the parameters it started from.

Kernel (negative sampling): the HogBatch form. For each target position, the input vectors of the words in
its dynamic window are scored against the output vectors of the target and of K negatives shared by the whole
window: one small (C, d) x (d, K+1) product per window, batched over about ``batch_pairs`` pairs. Every pair's
loss is the CS224n negative-sampling loss with v_c = w_in[context], u_o = w_out[target]; all gradients of a
minibatch are taken at the same parameters and then applied together (minibatch SGD, deterministic).
Hierarchical softmax has the same form with the inner nodes on the target's Huffman path in place of the target
and its negatives (:func:`output_rows`). CBOW scores h, the mean of the window's context vectors, once per
window instead of every context vector (:func:`cbow_step`).

Rows that occur many times in one minibatch (the glue words of a small vocabulary, "the" as a negative, a word
with very repetitive contexts) would get the sum of many gradients taken at the same point, where sequential SGD
takes them one after another and each step sees the previous ones: on a row whose loss is curved, the sum
overshoots, and with a learning rate large enough, grows without bound. With ``damping`` (the default) a row's
summed update never passes the minimum of a quadratic that lies above the row's own loss (see
:func:`trust_region_factors`), so it never raises that loss; rows whose summed step stays short of it keep the
plain SGD step.

With ``sequential`` (train.step, see w2vspark.config.sequential_for) the minibatch's windows are trained one
after another instead, each step at the parameters the earlier ones left (:func:`sequential_step`: skip-gram
pair by pair, CBOW window by window, word2vec.c's order); no row then holds a sum of steps, and the damping is a
factor per step.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .. import compiled
from ..huffman import HuffmanTree
from ..losses import log_sigmoid, logistic_curvature_bound, naive_softmax_loss_and_gradient_batch, sigmoid
from ..sampling import context_reach, pair_counts, subsample, window_groups, window_sizes
from ..vocab import NoiseSampler

CHUNK_WORDS = 32768  # raw tokens per internal chunk; results do not depend on how the input was batched
LOSS_EVERY = 8  # the reported loss is measured on every 8th minibatch (its cost is ~9% of a minibatch)
# with skip_saturated, a product whose score |z| reaches this takes no step: gensim's MAX_EXP, where its skip-gram
# and CBOW (negative sampling and hierarchical softmax) and word2vec.c's hierarchical softmax skip the product
SATURATED_SCORE = 6.0


@dataclass(frozen=True)
class KernelParams:
    window: int = 5
    num_negatives: int = 5
    loss: str = "neg_sampling"  # or "hierarchical_softmax", "naive_softmax"
    model: str = "skipgram"  # or "cbow"
    cbow_mean: bool = True  # CBOW's h is the mean of the context vectors (false: their sum)
    batch_pairs: int = 4096
    damping: bool = True  # repeated rows' minibatch steps stop at the minimum of a quadratic bound of their loss
    shrink_windows: bool = True  # each center draws its window size from 1..window
    negative_group: int = 1  # windows of a chunk that share one draw of negatives, G / g apart (see _windows)
    sequential: bool = False  # a minibatch's windows one after another (sequential_step)
    skip_saturated: bool = False  # products with |z| >= SATURATED_SCORE take no step (gensim's training)


@dataclass
class PartitionResult:
    in_ids: np.ndarray  # (n_in,) int32, ascending
    in_delta: np.ndarray  # (n_in, d) float32
    out_ids: np.ndarray  # (n_out,) int32, ascending
    out_delta: np.ndarray  # (n_out, d) float32
    loss_sum: float  # summed example losses (except naive softmax: estimated from every LOSS_EVERY-th minibatch)
    pairs: int  # training examples: (context, target) pairs for skip-gram, windows for CBOW
    words: int  # raw tokens read (before subsampling)
    seconds: float


def task_rng(seed: int, epoch: int, round_: int, partition: int) -> np.random.Generator:
    """The random stream of one task: a function of (seed, epoch, round, partition index) only."""
    return np.random.default_rng([seed, epoch, round_, partition])


def take_slice(batches: Iterable[tuple[np.ndarray, np.ndarray]], index: int, count: int):
    """Keep the sentences whose row number within the partition is congruent to ``index`` mod ``count``."""
    row = 0
    for ids, offsets in batches:
        n = len(offsets) - 1
        if count == 1:
            yield ids, offsets
        else:
            first = (index - row) % count
            chosen = np.arange(first, n, count)
            yield gather_sentences(ids, offsets, chosen)
        row += n


def gather_sentences(ids: np.ndarray, offsets: np.ndarray, chosen: np.ndarray):
    """Sentences ``chosen`` (ascending) of a flat batch -> (ids, offsets) of just those."""
    lengths = np.diff(offsets)[chosen]  # (k,)
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = offsets[chosen]
    index = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return ids[index], new_offsets


def rechunk(batches: Iterable[tuple[np.ndarray, np.ndarray]], chunk_words: int = CHUNK_WORDS) -> Iterator:
    """Regroup sentence batches into chunks of at least ``chunk_words`` tokens (the last may be smaller),
    so that training is independent of how Spark or the caller cut the input into batches."""
    pending_ids, pending_lengths, size = [], [], 0
    for ids, offsets in batches:
        lengths = np.diff(offsets)
        start = 0
        while start < len(lengths):
            need = chunk_words - size
            cum = np.cumsum(lengths[start:])
            stop = start + int(np.searchsorted(cum, need)) + 1  # first prefix reaching the need
            stop = min(stop, len(lengths))
            pending_ids.append(ids[offsets[start]:offsets[stop]])
            pending_lengths.append(lengths[start:stop])
            size += int(offsets[stop] - offsets[start])
            start = stop
            if size >= chunk_words:
                yield _join(pending_ids, pending_lengths)
                pending_ids, pending_lengths, size = [], [], 0
    if pending_lengths:
        yield _join(pending_ids, pending_lengths)


def _join(ids_list, lengths_list):
    lengths = np.concatenate(lengths_list)
    return np.concatenate(ids_list).astype(np.int32, copy=False), np.concatenate([[0], np.cumsum(lengths)])


def native_kernel() -> bool:
    """True when the compiled scatter-add is in use (else numpy's ``np.add.at``, with identical results)."""
    return compiled.available("scatter_add")


def _scatter_add(w: np.ndarray, ids: np.ndarray, rows: np.ndarray, native: bool | None = None) -> None:
    """w[ids[i]] += rows[i] for every i, repeated ids accumulating, in index order (deterministic).

    w (V, d) C-contiguous (the compiled path takes float32), ids (n,), rows (n, d). The compiled helper and
    the numpy path (an unbuffered add over the flat element indices, about 3x faster than sorting the ids and
    summing runs of equal ids) do the same additions in the same order: their results are bit-identical.
    ``native`` forces a path (None: the compiled one when it is built).
    """
    if not w.flags.c_contiguous:
        raise ValueError("the parameter matrix must be C-contiguous")
    num_rows, dim = w.shape
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    rows = np.ascontiguousarray(rows, dtype=w.dtype)
    scatter_add = compiled.helper("scatter_add", native) if w.dtype == np.float32 else None
    if scatter_add is not None:
        scatter_add(w, ids, rows, dim)
        return
    if len(ids) and (ids.min() < 0 or ids.max() >= num_rows):
        raise IndexError(f"scatter_add: row index out of range [0, {num_rows})")
    flat = np.multiply(ids[:, None], dim, dtype=np.intp) + np.arange(dim)  # (n, d) element indices
    np.add.at(w.reshape(-1), flat.reshape(-1), rows.reshape(-1))


def row_differences(a: np.ndarray, b: np.ndarray, ids: np.ndarray, native: bool | None = None) -> np.ndarray:
    """a[ids] - b[ids] -> (n, d): a task's deltas of the rows it touched. The compiled helper subtracts row by
    row without gathering copies of either matrix first; numpy's path gives the same float32 differences.
    ``native`` forces a path (None: the compiled one when it is built and the matrices suit it)."""
    diff = compiled.helper("row_differences", native)
    suits = (a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.flags.c_contiguous
             and b.flags.c_contiguous)
    if diff is None or not suits:
        return a[ids] - b[ids]
    out = np.empty((len(ids), a.shape[1]), dtype=np.float32)  # (n, d)
    diff(out, a, b, np.ascontiguousarray(ids, dtype=np.int64), a.shape[1])
    return out


def by_width(targets: np.ndarray, contexts: np.ndarray):
    """Order windows by their number of context words (widest first, stable) and move each row's context
    words to its front, so that a run of windows needs little padding: -> targets (G,), contexts (G, 2w),
    counts (G,) descending.

    Windows of equal width stay in corpus order. Hierarchical softmax once ordered them by their target's path
    length too (less padding of the paths), which made each minibatch's targets all rare or all frequent: on
    6M words, 1 partition, 5 epochs, it cost 0.5 and 1.2 analogy points (seeds 2 and 1) for no measurable
    speed with the compiled step, which skips padding (docs/benchmarks.md)."""
    counts = pair_counts(contexts)  # (G,)
    order = np.argsort(-counts, kind="stable")
    contexts = contexts[order]
    contexts = np.take_along_axis(contexts, np.argsort(contexts < 0, axis=1, kind="stable"), axis=1)
    return targets[order], contexts, counts[order]


def windows_by_width(ids: np.ndarray, offsets: np.ndarray, window: int, rng: np.random.Generator,
                     shrink: bool = True, native: bool | None = None):
    """The windows of a chunk of sentences, widest first: :func:`w2vspark.sampling.window_groups` then
    :func:`by_width`, -> targets (G,) int32, contexts (G, 2w) int32, counts (G,). The compiled helper (used when
    built; ``native`` forces a path) lays the same rows out in one pass from the same random window sizes, widest
    first and in position order among equals: both paths give equal arrays."""
    window_rows = compiled.helper("window_rows", native)
    if window_rows is None:
        targets, contexts = window_groups(ids, offsets, window, rng, shrink)
        if not len(targets):
            return targets, contexts, np.zeros(0, dtype=np.int64)
        return by_width(targets, contexts)
    n = len(ids)
    sizes = window_sizes(n, window, rng, shrink)  # (N,)
    reach = context_reach(np.diff(offsets), window)
    targets = np.empty(n, dtype=np.int32)
    contexts = np.empty((n, 2 * reach), dtype=np.int32)
    counts = np.empty(n, dtype=np.int64)
    windows = window_rows(np.ascontiguousarray(ids, dtype=np.int32), np.ascontiguousarray(offsets, dtype=np.int64),
                          np.ascontiguousarray(sizes, dtype=np.int64), reach, targets, contexts, counts)
    return targets[:windows], contexts[:windows], counts[:windows]


def trust_region_factors(ids: np.ndarray, curvature: np.ndarray, lr: float, num_rows: int) -> np.ndarray:
    """Per-occurrence factors (n,) that keep a minibatch's summed step of each row from passing the minimum of
    a quadratic model that lies above the row's own loss.

    ids (n,) row of every occurrence in [0, num_rows) (-1 = padding, factor 1); curvature (n,) that
    occurrence's curvature bound, h_i = c(z_i) |x_i|^2 with c the logistic loss's bound curvature
    (:func:`w2vspark.losses.logistic_curvature_bound`, z_i the score, x_i the vector the row is multiplied
    with). With H = sum_i h_i over the row's occurrences, the quadratic with curvature H along the step lies
    above the row's loss (the other matrix held fixed); the factor is 1 / max(1, lr H): rows with lr H <= 1
    (nearly all rows of a large vocabulary, and every row seen once at a sane learning rate) keep the plain SGD
    step, rows past it take the step to the bound's minimum, which lowers the row's loss whatever its scores.
    Sequential SGD never overshoots that way, because each of its steps sees the previous ones; the summed
    step of a row seen dozens of times in one minibatch does, and grows without bound. The curvature at the
    scores themselves, s (1 - s) |x|^2, is not a bound: it vanishes where scores are large and wrong (a word
    scored +10 against all its negatives), and there the summed step ran away (a topic word of 150 sentences
    of 1,000 tokens moved 20 x its length in one minibatch at 8 partitions). Sums run in occurrence order
    (deterministic).
    """
    valid = ids >= 0
    if num_rows <= 64 * len(ids):  # dense per-row sums: cheaper than sorting when the vocabulary is small
        rows = np.where(valid, ids, num_rows)  # padding goes to an extra row
        total = np.bincount(rows, weights=curvature, minlength=num_rows + 1)[rows]  # (n,) H of each one's row
    else:
        _, inverse = np.unique(ids, return_inverse=True)
        total = np.bincount(inverse, weights=curvature)[inverse]
    return np.where(valid, 1.0 / np.maximum(1.0, float(lr) * total), 1.0)


def directional_factors(ids: np.ndarray, steps: np.ndarray, trace: np.ndarray, lr: float, num_rows: int,
                        curvature_along) -> np.ndarray:
    """:func:`trust_region_factors` with each row's curvature measured along the row's own summed step.

    ids (n,) as there; steps (n, d) each occurrence's plain SGD step; trace (n,) h_i = sum_j c_ij |x_ij|^2;
    ``curvature_along(occurrences (k,), directions (k, d))`` -> (k,) sum_j c_ij (x_ij . e)^2 for those
    occurrences, e the unit direction given for each. A row's loss along its summed step D, as a function of the
    step length t, lies below the quadratic with curvature H = sum_i sum_j c_ij (x_ij . D/|D|)^2 (each
    logistic term's bound, :func:`w2vspark.losses.logistic_curvature_bound`, taken at the change of its score,
    t x_ij . D/|D|), whose minimum is at t = |D| / (lr H): the factor is 1 / max(1, lr H), and the damped step
    still never raises the row's own loss. H is at most the trace bound sum c |x|^2, which counts every x as if
    it pointed along the step: for a frequent word whose vectors x_ij point many ways (a common negative scored
    against hundreds of different contexts), the trace bound cut the step tens of times over where the loss
    along it is far flatter. Only rows that the trace bound cuts are measured (the others keep factor 1 either
    way), in occurrence order (deterministic).
    """
    factors = trust_region_factors(ids, trace, lr, num_rows)  # (n,)
    cut = np.flatnonzero(factors < 1)  # every occurrence of a row the trace bound cuts
    if len(cut) == 0:
        return factors
    rows, inverse = np.unique(ids[cut], return_inverse=True)
    total = np.zeros((len(rows), steps.shape[1]), dtype=steps.dtype)  # (r, d) each cut row's summed step
    _scatter_add(total, inverse, steps[cut])
    norm = np.sqrt(np.einsum("rd,rd->r", total, total))  # (r,)
    directions = total / np.where(norm > 0, norm, 1)[:, None].astype(total.dtype)  # (r, d), 0 for a zero step
    along = np.bincount(inverse, weights=curvature_along(cut, directions[inverse]), minlength=len(rows))  # (r,)
    factors[cut] = 1.0 / np.maximum(1.0, float(lr) * along[inverse])
    return factors


def output_rows(targets: np.ndarray, negatives: np.ndarray | None = None, tree: HuffmanTree | None = None):
    """The output rows each window is scored against and their labels: the target and K negatives (labels
    1, 0, ..., 0), or the inner nodes on the target's path in ``tree`` (label 1 - code bit).

    targets (G,), negatives (G, K) -> out_ids (G, L) int (-1 pads a path shorter than the batch's longest),
    labels (G, L) or (1, L) float32.
    """
    if tree is None:
        labels = np.zeros((1, negatives.shape[1] + 1), dtype=np.float32)
        labels[0, 0] = 1.0
        return np.concatenate([targets[:, None], negatives], axis=1), labels
    length = int(tree.lengths[targets].max())
    return tree.points[targets, :length], (1 - tree.codes[targets, :length]).astype(np.float32)


def _gather_out(w_out: np.ndarray, out_ids: np.ndarray, labels: np.ndarray):
    """-> rows (G, L) out_ids with padding at row 0, u (G, L, d), labels, and the validity mask of out_ids (None
    when nothing is padded).

    A padded slot gets a zero vector and the label 1/2: its score is 0 and its gradient label - s(0) is exactly
    0, so it changes nothing (its update, added to row 0, is zero) and needs no mask in the update (only the
    loss masks it)."""
    out_mask = out_ids >= 0
    if out_mask.all():
        return out_ids, w_out[out_ids], labels, None
    rows = np.where(out_mask, out_ids, 0)
    u = w_out[rows]
    u[~out_mask] = 0.0
    return rows, u, np.where(out_mask, labels, np.float32(0.5)), out_mask


_scratch = threading.local()  # per thread: row -> slot maps of the compiled step, kept at -1 between calls


def _slots(matrix: str, num_rows: int) -> np.ndarray:
    """An int32 (num_rows,) array of -1 for the compiled step's row slots of ``matrix`` ("in" or "out"; the
    step leaves it at -1 again)."""
    cache = getattr(_scratch, "slots", None)
    if cache is None:
        cache = _scratch.slots = {}
    if (matrix, num_rows) not in cache:
        if len(cache) >= 4:  # one size per matrix in a run; never grow without bound
            cache.clear()
        cache[matrix, num_rows] = np.full(num_rows, -1, dtype=np.int32)
    return cache[matrix, num_rows]


def native_step() -> bool:
    """True when skip-gram and CBOW minibatches run in the compiled step (else in numpy; the same math, see
    :func:`skipgram_step`)."""
    return compiled.available("minibatch_step")


def _use_native(native: bool | None, w_in: np.ndarray, w_out: np.ndarray) -> bool:
    return bool(native_step() if native is None else native) and w_in.dtype == w_out.dtype == np.float32 \
        and w_in.flags.c_contiguous and w_out.flags.c_contiguous


def _native_step(w_in, w_out, contexts, out_ids, labels, lr, model: int, with_loss, damping, touched,
                 sequential: bool = False, skip_saturated: bool = False) -> float:
    """The compiled minibatch step (or with ``sequential`` the compiled sequential_step, which needs no slots):
    model 0 skip-gram, 1 CBOW with the mean, 2 CBOW with the sum."""
    G, C = contexts.shape
    labels = np.ascontiguousarray(labels, dtype=np.float32)
    if touched is None:  # marks nobody reads
        touched = (np.zeros(len(w_in), dtype=bool), np.zeros(len(w_out), dtype=bool))
    step = compiled.helper("sequential_step" if sequential else "minibatch_step", True)
    slots = () if sequential else (_slots("in", len(w_in)), _slots("out", len(w_out)))
    return step(w_in, w_out, np.ascontiguousarray(contexts, dtype=np.int64),
                np.ascontiguousarray(out_ids, dtype=np.int64), labels, *slots, *_marks(touched, w_in, w_out), G, C,
                out_ids.shape[1], labels.shape[0], w_in.shape[1], float(lr), model, bool(with_loss), bool(damping),
                bool(skip_saturated))


def _marks(touched, w_in, w_out) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``touched``: (len(w_in),) and (len(w_out),) C-contiguous bool arrays."""
    touched_in, touched_out = touched
    for marks, w in ((touched_in, w_in), (touched_out, w_out)):
        if marks.dtype != np.bool_ or marks.shape != (len(w),) or not marks.flags.c_contiguous:
            raise ValueError(f"touched marks must be C-contiguous bool arrays of shape ({len(w)},)")
    return touched_in, touched_out


def _mark_rows(touched, contexts, out_ids) -> None:
    """The numpy path's marks: every valid context row of w_in and output row of w_out (-1 is padding)."""
    if touched is not None:
        touched[0][contexts[contexts >= 0]] = True
        touched[1][out_ids[out_ids >= 0]] = True


def skipgram_step(w_in, w_out, contexts, out_ids, labels, lr, with_loss: bool = True,
                  damping: bool = True, native: bool | None = None, touched=None,
                  skip_saturated: bool = False) -> float:
    """One skip-gram minibatch of the HogBatch kernel, applied in place: every context word of window g is
    scored against the output rows out_ids[g] (negative sampling or hierarchical softmax, see
    :func:`output_rows`). -> summed loss of its pairs (0.0 when ``with_loss`` is false: the update is the same,
    the loss is not computed). ``damping``: scale repeated rows' steps with :func:`directional_factors` (False:
    plain minibatch SGD). ``touched``: None or (touched_in (len(w_in),), touched_out (len(w_out),)) bool arrays
    where the rows of every valid context and output are set to True (the rows the step moves).
    ``skip_saturated``: a product whose score |z| reaches :data:`SATURATED_SCORE` takes no step and adds no
    curvature (gensim's training; its loss still counts); False: every product takes its gradient step.

    ``native`` (None: when built) runs the compiled step of ``native/w2vspark_native.c``: the same gradients,
    factors and updates, with each row's steps summed before its factor scales them, so the result equals this
    numpy code's up to float32 rounding (not bit for bit), and it is 1.6-3x faster (docs/benchmarks.md).

    contexts (G, C) padded with -1, out_ids (G, L) padded with -1, labels (G, L) or (1, L), lr float32.
    """
    if _use_native(native, w_in, w_out):
        return _native_step(w_in, w_out, contexts, out_ids, labels, lr, 0, with_loss, damping, touched,
                            skip_saturated=skip_saturated)
    _mark_rows(touched, contexts, out_ids)
    mask = contexts >= 0  # (G, C)
    ctx = np.where(mask, contexts, 0)  # (G, C)
    rows, u, labels, out_mask = _gather_out(w_out, out_ids, labels)  # (G, L), (G, L, d)
    v = w_in[ctx]  # (G, C, d)
    scores = v @ u.transpose(0, 2, 1)  # (G, C, L)
    loss = 0.0
    if with_loss:
        signed = scores * (2.0 * labels - 1.0)[:, None, :].astype(scores.dtype)
        weight = mask[:, :, None] if out_mask is None else mask[:, :, None] & out_mask[:, None, :]  # (G, C, L|1)
        loss = float(-(log_sigmoid(signed) * weight).sum())
    s = sigmoid(scores)  # (G, C, L)
    g = labels[:, None, :] - s  # (G, C, L)   label - s(score), times lr below; 0 on padded paths
    g *= (mask * lr)[:, :, None].astype(g.dtype, copy=False)
    taken = _taken(scores, skip_saturated)  # (G, C, L) or None
    if taken is not None:
        g *= taken
    dv = g @ u  # (G, C, d)
    du = g.transpose(0, 2, 1) @ v  # (G, L, d)
    if damping:
        G, C, L = scores.shape
        curv = logistic_curvature_bound(scores, s) * mask[:, :, None]  # (G, C, L), 0 on padded contexts
        if taken is not None:
            curv *= taken
        u2 = np.einsum("gkd,gkd->gk", u, u)  # (G, L), 0 on padded paths
        v2 = np.einsum("gcd,gcd->gc", v, v)  # (G, C)

        def along_in(occ, e):  # occurrence g * C + c of a context row: its L outputs
            gi, ci = np.divmod(occ, C)
            proj = (u[gi] @ e[:, :, None])[:, :, 0]  # (k, L) each output's component along e
            return np.einsum("kl,kl->k", curv[gi, ci], proj * proj)

        def along_out(occ, e):  # occurrence g * L + k of an output row: its window's C contexts
            gi, ki = np.divmod(occ, L)
            proj = (v[gi] @ e[:, :, None])[:, :, 0]  # (k, C) each context's component along e
            return np.einsum("kc,kc->k", curv[gi, :, ki], proj * proj)

        f_in = directional_factors(np.where(mask, contexts, -1).reshape(-1), dv.reshape(G * C, -1),
                                   np.einsum("gck,gk->gc", curv, u2).reshape(-1), lr, len(w_in), along_in)
        f_out = directional_factors(out_ids.reshape(-1), du.reshape(G * L, -1),
                                    np.einsum("gck,gc->gk", curv, v2).reshape(-1), lr, len(w_out), along_out)
        dv *= f_in.reshape(G, C, 1).astype(dv.dtype)
        du *= f_out.reshape(G, L, 1).astype(du.dtype)
    _scatter_add(w_in, ctx.reshape(-1), dv.reshape(-1, dv.shape[2]))  # padding rows are exact zeros
    _scatter_add(w_out, rows.reshape(-1), du.reshape(-1, du.shape[2]))
    return loss


def _taken(scores: np.ndarray, skip_saturated: bool) -> np.ndarray | None:
    """With ``skip_saturated``: 1 where a product (score z) takes its step, 0 where |z| >= SATURATED_SCORE (same
    shape and dtype as ``scores``); None (every product steps) without."""
    if not skip_saturated:
        return None
    return (np.abs(scores) < SATURATED_SCORE).astype(scores.dtype)


def _score_and_move(w_out, rows, same, label, x, lr, with_loss: bool, damping: bool, skip_saturated: bool = False):
    """One input vector x (d,) (a context row, or CBOW's h) against output rows ``rows`` (n,) with labels (n,):
    z_k = x . u_k, s_k = lr (label_k - s(z_k)); e = sum_k s_k u_k at the rows as x found them, then each u_k moves
    by f_k s_k x, f_k = 1 / max(1, lr c(z_k) |x|^2) with ``damping`` (a row that is two of the outputs sums its
    c(z): ``same`` (n,) numbers the distinct rows), else 1; with ``skip_saturated`` a product with |z_k| >= 6 has
    s_k = 0 and c(z_k) = 0. -> e (d,), the trace bound sum_k c(z_k) |u_k|^2 of the curvature in x (0 without
    damping), the products' loss (0 without ``with_loss``)."""
    u = w_out[rows]  # (n, d)
    z = u @ x  # (n,)
    loss = -float(log_sigmoid(np.where(label >= 0.5, z, -z)).sum()) if with_loss else 0.0
    step = lr * (label - sigmoid(z))  # (n,)
    taken = _taken(z, skip_saturated)  # (n,) or None
    if taken is not None:
        step = step * taken
    move, trace = step, 0.0
    if damping:
        bound = logistic_curvature_bound(z) * (1 if taken is None else taken)  # (n,)
        lr_h = lr * np.bincount(same, weights=bound)[same] * (x @ x)  # (n,) each output row's curvature along x
        move = np.where(lr_h > 1, step / np.maximum(lr_h, 1), step).astype(w_out.dtype)
        trace = float(bound @ np.einsum("kd,kd->k", u, u))
    e = step @ u  # (d,)
    np.add.at(w_out, rows, move[:, None] * x)
    return e, trace, loss


def sequential_step(w_in, w_out, contexts, out_ids, labels, lr, model: str = "skipgram", mean: bool = True,
                    with_loss: bool = True, damping: bool = True, native: bool | None = None, touched=None,
                    skip_saturated: bool = False) -> float:
    """The windows of one minibatch (arguments as :func:`skipgram_step`'s) trained one after another, in
    word2vec.c's order, applied in place -> summed loss of its pairs (skip-gram) or windows (CBOW); 0.0 when
    ``with_loss`` is false.

    Each step sees the parameters the steps before it left. Skip-gram goes pair by pair: window after window,
    context after context, the context row v meets the window's valid output rows u_k (the inner nodes of the
    target's Huffman path, or the target and its negatives): z_k = v . u_k, s_k = lr (label_k - s(z_k)),
    e = sum_k s_k u_k; each u_k moves by f_k s_k v, then v by f_v e. CBOW scores the window's h (the mean, or
    with ``mean`` false the sum, of its n context rows) once in v's place, then each context row moves by f e
    (the mean: h's own step, as word2vec.c and gensim) or f e / n (the sum). With ``damping`` the factors keep
    each step short of the minimum of the quadratic bound of the step's loss in that row (see
    :func:`trust_region_factors`): f_k = 1 / max(1, lr c(z_k) |x|^2) (the output row's curvature along its step,
    exactly), f_v = 1 / max(1, lr sum_k c(z_k) |u_k|^2) (the trace bound of v's) and for a CBOW context row that
    is r of the window's n contexts f = 1 / max(1, lr r sum_k c(z_k) |u_k|^2 / n) (the minibatch step's
    curvature of its occurrences), so no step raises its own loss in any row; without, every factor is 1
    (word2vec.c's step). A row meets one pair or window at a time, so the sums of many steps that the minibatch
    step has to damp never form (docs/benchmarks.md, eighteenth stop).

    ``skip_saturated`` as in :func:`skipgram_step`.

    ``native`` (None: when built) runs the compiled ``sequential_step``: the same order of steps and updates,
    equal to this numpy code up to float32 rounding; this one is a Python loop over the pairs (slow: a fallback
    and the tests' reference).
    """
    code = 0 if model == "skipgram" else (1 if mean else 2)
    if _use_native(native, w_in, w_out) and compiled.available("sequential_step"):
        return _native_step(w_in, w_out, contexts, out_ids, labels, lr, code, with_loss, damping, touched, True,
                            skip_saturated)
    dtype = w_in.dtype.type
    lr = dtype(lr)
    loss = 0.0

    def factor(h: float):
        return dtype(1.0 / (float(lr) * h) if damping and float(lr) * h > 1 else 1.0)

    for g in range(len(contexts)):
        valid = out_ids[g] >= 0
        rows = out_ids[g][valid]  # (n,)
        ctx = contexts[g][contexts[g] >= 0]  # (c,)
        if not len(rows) or not len(ctx):
            continue
        _mark_rows(touched, ctx, rows)
        label = labels[0 if len(labels) == 1 else g][valid].astype(w_in.dtype)  # (n,)
        same = np.unique(rows, return_inverse=True)[1]  # (n,) each product's row among the distinct ones
        if code == 0:
            for c in ctx:
                e, trace, pair_loss = _score_and_move(w_out, rows, same, label, w_in[c].copy(), lr, with_loss,
                                                      damping, skip_saturated)
                w_in[c] += factor(trace) * e
                loss += pair_loss
            continue
        h = w_in[ctx].sum(axis=0)  # (d,)
        if code == 1:
            h /= dtype(len(ctx))
        e, trace, window_loss = _score_and_move(w_out, rows, same, label, h, lr, with_loss, damping, skip_saturated)
        loss += window_loss
        for c in ctx:
            f = factor(float((ctx == c).sum()) * trace / len(ctx))
            w_in[c] += (f if code == 1 else f / dtype(len(ctx))) * e
    return loss


def neg_sampling_step(w_in, w_out, targets, contexts, negatives, lr, with_loss: bool = True,
                      damping: bool = True) -> float:
    """:func:`skipgram_step` with negative sampling: targets (G,), contexts (G, C), negatives (G, K)."""
    out_ids, labels = output_rows(targets, negatives)
    return skipgram_step(w_in, w_out, contexts, out_ids, labels, lr, with_loss, damping)


def _segment_sum(w: np.ndarray, contexts: np.ndarray, mask: np.ndarray, flat: np.ndarray, n: np.ndarray,
                 native: bool | None = None) -> np.ndarray:
    """Row g of the result (G, d) is the sum of w's rows at the valid ids of contexts[g] (a prefix of the row),
    added one after another from zero: the compiled helper and the numpy path (one column of windows at a
    time) do the same float32 additions in the same order, so their results are bit-identical. ``native``
    forces a path (None: the compiled one when it is built)."""
    segment_sum = compiled.helper("segment_sum", native) if w.dtype == np.float32 and w.flags.c_contiguous else None
    if segment_sum is not None:
        out = np.empty((len(n), w.shape[1]), dtype=np.float32)
        segment_sum(out, w, np.ascontiguousarray(flat, dtype=np.int64), n.astype(np.int64), w.shape[1])
        return out
    out = np.zeros((len(n), w.shape[1]), dtype=w.dtype)  # (G, d)
    for c in range(contexts.shape[1]):
        rows = np.flatnonzero(mask[:, c])  # windows with a c-th context word: a prefix, as widths descend
        out[rows] += w[contexts[rows, c]]
    return out


def _window_mean(w_in, contexts, mean: bool):
    """-> flat (N,) the context ids window by window, n (G,) context words per window, h (G, d)."""
    mask = contexts >= 0  # (G, C), every row a prefix of valid ids (see by_width)
    flat = contexts[mask]  # (N,)
    n = mask.sum(axis=1)  # (G,) >= 1: windows without context are never formed
    h = _segment_sum(w_in, contexts, mask, flat, n)  # (G, d)
    if mean:
        h /= n[:, None].astype(h.dtype)
    return flat, n, h


def _context_steps(n, dh, mean: bool) -> np.ndarray:
    """Every context vector of window g moves by dh[g] (mean) or dh[g] / n[g] (sum): either way the window's h
    moves by one SGD step on h, as word2vec.c and gensim train CBOW. -> (N, d), window by window."""
    return np.repeat(dh if mean else dh / n[:, None].astype(dh.dtype), n, axis=0)


def _spread_to_context(w_in, flat, n, dh, mean: bool) -> None:
    _scatter_add(w_in, flat, _context_steps(n, dh, mean))


def cbow_step(w_in, w_out, contexts, out_ids, labels, lr, mean: bool = True, with_loss: bool = True,
              damping: bool = True, native: bool | None = None, touched=None,
              skip_saturated: bool = False) -> float:
    """One CBOW minibatch, applied in place: window g's h (the mean, or with ``mean`` false the sum, of its
    context words' input vectors) is scored against the output rows out_ids[g]. -> summed loss of its windows.

    The output rows take the SGD step of the loss J(h); h takes its SGD step -lr dJ/dh, shared out to the
    context vectors by :func:`_spread_to_context` (for the mean that is C times the exact gradient of each
    context vector, the convention of word2vec.c and gensim). ``damping`` as in :func:`skipgram_step`, with
    the curvature of each context vector along its actual step.

    ``native``, ``touched`` and ``skip_saturated`` as in :func:`skipgram_step` (the compiled step is equal to
    this up to float32 rounding).

    contexts (G, C) padded with -1 after the valid ids, out_ids (G, L) padded with -1, labels (G, L) or
    (1, L), lr float32.
    """
    if _use_native(native, w_in, w_out):
        return _native_step(w_in, w_out, contexts, out_ids, labels, lr, 1 if mean else 2, with_loss, damping,
                            touched, skip_saturated=skip_saturated)
    _mark_rows(touched, contexts, out_ids)
    flat, n, h = _window_mean(w_in, contexts, mean)  # (N,), (G,), (G, d)
    rows, u, labels, out_mask = _gather_out(w_out, out_ids, labels)  # (G, L), (G, L, d)
    scores = (u @ h[:, :, None])[:, :, 0]  # (G, L)
    loss = 0.0
    if with_loss:
        terms = log_sigmoid(scores * (2.0 * labels - 1.0).astype(scores.dtype))
        loss = float(-(terms if out_mask is None else terms * out_mask).sum())
    s = sigmoid(scores)  # (G, L)
    g = ((labels - s) * lr).astype(h.dtype, copy=False)  # (G, L), 0 on padded paths
    taken = _taken(scores, skip_saturated)  # (G, L) or None
    if taken is not None:
        g *= taken
    dh = (g[:, None, :] @ u)[:, 0, :]  # (G, d)
    du = g[:, :, None] * h[:, None, :]  # (G, L, d)
    steps = _context_steps(n, dh, mean)  # (N, d)
    if damping:
        G, L = scores.shape
        curv = logistic_curvature_bound(scores, s)  # (G, L)
        if taken is not None:
            curv *= taken
        u2 = np.einsum("gld,gld->gl", u, u)  # (G, L), 0 on padded paths
        window = np.repeat(np.arange(G), n)  # (N,) the window of each context occurrence

        # a context vector's step moves h by 1/n of it (mean) or moves it by 1/n of h's step (sum): either way
        # its curvature along the step is the window's curvature in h divided by n
        def along_in(occ, e):
            gi = window[occ]
            return (curv[gi] * np.einsum("nld,nd->nl", u[gi], e) ** 2).sum(axis=1) / n[gi]

        def along_out(occ, e):  # occurrence g * L + k: scored against the window's h
            gi, ki = np.divmod(occ, L)
            return curv[gi, ki] * np.einsum("nd,nd->n", h[gi], e) ** 2

        f_in = directional_factors(flat, steps, np.repeat((curv * u2).sum(axis=1) / n, n), lr, len(w_in),
                                   along_in)  # (N,)
        h2 = np.einsum("gd,gd->g", h, h)  # (G,)
        f_out = directional_factors(out_ids.reshape(-1), du.reshape(G * L, -1), (curv * h2[:, None]).reshape(-1),
                                    lr, len(w_out), along_out)
        steps *= f_in[:, None].astype(steps.dtype)
        du *= f_out.reshape(G, L, 1).astype(du.dtype)
    _scatter_add(w_in, flat, steps)
    _scatter_add(w_out, rows.reshape(-1), du.reshape(-1, du.shape[2]))
    return loss


def naive_softmax_step(w_in, w_out, targets, contexts, lr, model: str = "skipgram", mean: bool = True) -> float:
    """One minibatch with the full softmax over the vocabulary, applied in place. -> summed loss."""
    if model == "cbow":
        flat, n, h = _window_mean(w_in, contexts, mean)
        batch = len(targets)
        mean_loss, grad_h, (_, grad_rows) = naive_softmax_loss_and_gradient_batch(h, targets, w_out)
        step = np.float32(lr * batch)  # gradients are of the mean loss; SGD steps on every window's own loss
        _spread_to_context(w_in, flat, n, (-step * grad_h).astype(w_in.dtype, copy=False), mean)
        w_out -= (step * grad_rows).astype(w_out.dtype, copy=False)
        return mean_loss * batch
    mask = contexts >= 0
    centers = contexts[mask]  # (B,)
    outside = np.repeat(targets, mask.sum(axis=1))  # (B,)
    batch = len(centers)
    mean_loss, grad_centers, (_, grad_rows) = naive_softmax_loss_and_gradient_batch(w_in[centers], outside, w_out)
    step = np.float32(lr * batch)  # gradients are of the mean loss; SGD steps on every pair's own loss
    _scatter_add(w_in, centers, (-step * grad_centers).astype(w_in.dtype, copy=False))
    w_out -= (step * grad_rows).astype(w_out.dtype, copy=False)
    return mean_loss * batch


def _windows(batches: Iterable[tuple[np.ndarray, np.ndarray]], params: KernelParams, keep_probs: np.ndarray,
             noise: NoiseSampler, rng: np.random.Generator) -> Iterator[tuple]:
    """The task's random stream, chunk by chunk: (raw tokens of the chunk, targets (G,), contexts (G, C) with -1
    padding, context counts (G,) descending, negatives (G, K) or None). Every draw from ``rng`` happens here, in
    the same order whether the chunks are trained (:func:`train_partition`) or only listed (:func:`task_rows`)."""
    for ids, offsets in rechunk(batches):
        kept_ids, kept_offsets = subsample(ids, offsets, keep_probs, rng)
        targets, contexts, counts = windows_by_width(kept_ids, kept_offsets, params.window, rng,
                                                     params.shrink_windows)
        negatives = None
        if params.loss == "neg_sampling":  # the chunk's negatives at once: the numbers of one draw per minibatch
            # with negative_group g, windows i, i + G', i + 2G', ... (G' = ceil(G / g)) share one draw: windows far
            # apart in the chunk, so rarely in one sentence; neighbouring windows share contexts, and sharing
            # among them gave a context row the same negatives again (random walks, 8 partitions, g = 8: model
            # loss +8.7% against +0.4% strided; docs/benchmarks.md, thirteenth stop)
            g = params.negative_group
            negatives = noise.draw(rng, (-(-len(targets) // g), params.num_negatives))  # (G', K)
            if g > 1:
                negatives = np.tile(negatives, (g, 1))[:len(targets)]  # (G, K)
        yield len(ids), targets, contexts, counts, negatives


def task_rows(batches: Iterable[tuple[np.ndarray, np.ndarray]], params: KernelParams, keep_probs: np.ndarray,
              noise: NoiseSampler, rng: np.random.Generator, tree: HuffmanTree | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The rows of w_in and w_out that :func:`train_partition` will read and move with the same arguments ->
    (in_rows, out_rows), ascending int32: the contexts; the targets and their negatives (or the inner nodes on
    their Huffman paths). It replays the task's random draws without training (a task that holds only these
    rows, ``rows=`` of :func:`train_partition`, trains exactly as one that holds the whole matrices)."""
    if params.loss == "naive_softmax":
        raise ValueError("the full softmax reads every output row: it cannot train on a subset of rows")
    seen_in, seen_out = [], []
    for _, targets, contexts, _, negatives in _windows(batches, params, keep_probs, noise, rng):
        if not len(targets):
            continue
        seen_in.append(np.unique(contexts[contexts >= 0]))
        if negatives is not None:
            seen_out.append(np.unique(np.concatenate([targets, negatives.reshape(-1)])))
        else:
            points = tree.points[np.unique(targets)]
            seen_out.append(np.unique(points[points >= 0]))
    empty = np.zeros(0, dtype=np.int32)
    return (np.unique(np.concatenate(seen_in)).astype(np.int32) if seen_in else empty,
            np.unique(np.concatenate(seen_out)).astype(np.int32) if seen_out else empty)


def _row_map(rows: np.ndarray, num_rows: int) -> np.ndarray:
    """Global row number -> position in ``rows``, as an int32 (num_rows + 1,) table whose last entry (what -1
    indexes) is -1, so that padding stays padding."""
    table = np.full(num_rows + 1, -1, dtype=np.int32)
    table[rows] = np.arange(len(rows), dtype=np.int32)
    return table


def train_partition(batches: Iterable[tuple[np.ndarray, np.ndarray]], w_in: np.ndarray, w_out: np.ndarray,
                    params: KernelParams, keep_probs: np.ndarray, noise: NoiseSampler, rng: np.random.Generator,
                    lr_start: float, lr_end: float, planned_words: int,
                    tree: HuffmanTree | None = None,
                    rows: tuple[np.ndarray, np.ndarray] | None = None) -> PartitionResult:
    """Train a private copy of (w_in, w_out) on ``batches`` of sentences; return the touched rows' deltas.

    batches: (ids (N,), offsets (S+1,)) pairs. The learning rate falls linearly from ``lr_start`` to ``lr_end``
    as the raw tokens read go from 0 to ``planned_words`` (and stays at ``lr_end`` after). ``tree`` is required
    by (and only used for) hierarchical softmax.

    ``rows`` = (in_rows, out_rows) from :func:`task_rows`: then w_in (len(in_rows), d) and w_out (len(out_rows),
    d) hold only those rows of the matrices, in that order, and the result (global row numbers) is the same bit
    for bit as a task given the whole matrices.
    """
    if params.loss == "hierarchical_softmax" and tree is None:
        raise ValueError("hierarchical softmax needs the vocabulary's Huffman tree")
    if rows is not None and params.loss == "naive_softmax":
        raise ValueError("the full softmax reads every output row: it cannot train on a subset of rows")
    cbow = params.model == "cbow"
    t0 = time.perf_counter()
    in_map = out_map = None
    if rows is not None:
        in_map, out_map = _row_map(rows[0], len(keep_probs)), _row_map(rows[1], len(keep_probs))
    local_in, local_out = w_in.copy(), w_out.copy()  # (V, d) each, or (len(in_rows), d), (len(out_rows), d)
    touched_in = np.zeros(len(w_in), dtype=bool)
    touched_out = np.zeros(len(w_out), dtype=bool)
    loss_sum, examples, words = 0.0, 0, 0
    measured, step = 0, 0  # examples whose loss was computed; minibatches run
    span = max(int(planned_words), 1)
    for raw, targets, contexts, counts, negatives in _windows(batches, params, keep_probs, noise, rng):
        if len(targets):
            cum = np.cumsum(counts)
            bounds = np.searchsorted(cum, np.arange(params.batch_pairs, cum[-1], params.batch_pairs), side="left")
            bounds = np.unique(np.concatenate([[0], bounds + 1, [len(targets)]]))
            if in_map is not None:
                contexts = in_map[contexts]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                progress = min(1.0, (words + raw * lo / len(targets)) / span)
                lr = np.float32(lr_start + (lr_end - lr_start) * progress)
                t, c = targets[lo:hi], contexts[lo:hi, :counts[lo]]  # the widest window leads the batch
                with_loss = params.loss == "naive_softmax" or step % LOSS_EVERY == 0
                if params.loss == "naive_softmax":
                    loss_sum += naive_softmax_step(local_in, local_out, t, c, lr, params.model, params.cbow_mean)
                    touched_in[c[c >= 0]] = True
                    touched_out[:] = True
                else:
                    if params.loss == "neg_sampling":
                        out_ids, labels = output_rows(t, negatives[lo:hi])
                    else:
                        out_ids, labels = output_rows(t, tree=tree)
                    if out_map is not None:
                        out_ids = out_map[out_ids]
                    if params.sequential:
                        loss_sum += sequential_step(local_in, local_out, c, out_ids, labels, lr, params.model,
                                                    params.cbow_mean, with_loss, params.damping,
                                                    touched=(touched_in, touched_out),
                                                    skip_saturated=params.skip_saturated)
                    elif cbow:
                        loss_sum += cbow_step(local_in, local_out, c, out_ids, labels, lr, params.cbow_mean,
                                              with_loss, params.damping, touched=(touched_in, touched_out),
                                              skip_saturated=params.skip_saturated)
                    else:
                        loss_sum += skipgram_step(local_in, local_out, c, out_ids, labels, lr, with_loss,
                                                  params.damping, touched=(touched_in, touched_out),
                                                  skip_saturated=params.skip_saturated)
                if with_loss:
                    measured += (hi - lo) if cbow else int(cum[hi - 1] - (cum[lo - 1] if lo else 0))
                step += 1
            examples += len(targets) if cbow else int(cum[-1])
        words += raw
    in_local = np.flatnonzero(touched_in).astype(np.int32)
    out_local = np.flatnonzero(touched_out).astype(np.int32)
    in_delta = row_differences(local_in, w_in, in_local)
    out_delta = row_differences(local_out, w_out, out_local)
    if rows is not None:
        in_local, out_local = rows[0][in_local], rows[1][out_local]
    return PartitionResult(
        in_ids=in_local, in_delta=in_delta, out_ids=out_local, out_delta=out_delta,
        loss_sum=loss_sum * examples / measured if measured else 0.0, pairs=examples, words=words,
        seconds=time.perf_counter() - t0)
