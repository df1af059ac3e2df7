"""Random parts of skip-gram training, vectorized: subsampling and dynamic-window grouping.

Sentences travel as one flat id array ``ids`` (N,) plus ``offsets`` (S+1,): sentence s is
``ids[offsets[s]:offsets[s+1]]`` (the layout of an Arrow list column).
"""
from __future__ import annotations

import numpy as np


def subsample(ids: np.ndarray, offsets: np.ndarray, keep_probs: np.ndarray, rng: np.random.Generator):
    """Drop each token with probability 1 - keep_probs[token] (word2vec.c): -> (ids (M,), offsets (S+1,))."""
    keep = rng.random(len(ids)) < keep_probs[ids]  # (N,)
    kept_before = np.concatenate([[0], np.cumsum(keep)])  # (N+1,)
    return ids[keep], kept_before[offsets]


def window_sizes(n: int, window: int, rng: np.random.Generator, shrink: bool = True) -> np.ndarray:
    """Each of n positions' window size (N,) int64: drawn uniformly from 1..window (word2vec.c), or ``window``
    for all without ``shrink``."""
    return rng.integers(1, window + 1, size=n) if shrink else np.full(n, window, dtype=np.int64)


def context_reach(lengths: np.ndarray, window: int) -> int:
    """How far any context lies from its target in sentences of these ``lengths``: min(window, longest - 1), at
    least 1."""
    return min(window, max(int(lengths.max(initial=1)) - 1, 1))


def window_groups(ids: np.ndarray, offsets: np.ndarray, window: int, rng: np.random.Generator,
                  shrink: bool = True):
    """Skip-gram windows: with ``shrink`` (word2vec.c) every position draws a size b uniformly from 1..window,
    without it b = window for every position (no random draw).

    -> targets (G,) int32, contexts (G, 2*w) int32 padded with -1, w = min(window, longest sentence - 1): row g
    holds the words within b positions of targets[g] in the same sentence. Each (context, target) pair is one
    skip-gram pair, the context word's input vector predicting the target's output vector (as word2vec.c trains
    skip-gram). Positions without any context (one-word sentences) are dropped. A window wider than the
    sentences (item2vec's whole-basket window) costs nothing beyond the pairs that exist.
    """
    n = len(ids)
    lengths = np.diff(offsets)  # (S,)
    sentence = np.repeat(np.arange(len(lengths)), lengths)  # (N,)
    b = window_sizes(n, window, rng, shrink)  # (N,)
    reach = context_reach(lengths, window)
    pos = np.arange(n)
    deltas = [d for d in range(-reach, reach + 1) if d != 0]
    contexts = np.full((n, len(deltas)), -1, dtype=np.int32)  # (N, 2*reach)
    for col, delta in enumerate(deltas):
        j = pos + delta
        inside = (j >= 0) & (j < n)
        j = np.clip(j, 0, max(n - 1, 0))
        valid = inside & (abs(delta) <= b) & (sentence[j] == sentence)
        contexts[:, col] = np.where(valid, ids[j], -1)
    has_context = (contexts >= 0).any(axis=1)
    return ids[has_context].astype(np.int32, copy=False), contexts[has_context]


def pair_counts(contexts: np.ndarray) -> np.ndarray:
    """Number of (context, target) pairs in each window row: (G,)."""
    return (contexts >= 0).sum(axis=1)
