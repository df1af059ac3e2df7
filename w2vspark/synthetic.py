"""Synthetic corpora of known structure, for the stress matrix (tests and ``bench/stress.py``).

Every generator is a pure function of its arguments and ``seed`` and returns a :class:`Synthetic`: sentences
(lists of tokens) and a label per word whose neighbours should share it (glue / function words carry none).
The shapes are the ones Spark users bring besides English prose:

- :func:`planted_classes`: a small, dense vocabulary (a few hundred words) with a heavy head of glue words;
- :func:`planted_walks`: random walks on a planted-community graph, every node about equally frequent
  (DeepWalk / node2vec input; item2vec sessions look alike);
- :func:`zipf_text`: Zipf-distributed words grouped in topics, with a head of function words (text-like),
  with short or long sentences.

:func:`class_purity` measures how much of a model's nearest-neighbour structure recovers the labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Synthetic:
    sentences: list[list[str]]
    labels: dict[str, int]  # word -> planted class; words without a class are absent

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.sentences)


def _zipf_weights(n: int, exponent: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent  # (n,)
    return w / w.sum()


def _split(flat: np.ndarray, lengths: np.ndarray, names: list[str]) -> list[list[str]]:
    """Flat token ids (N,) cut into sentences of ``lengths`` (sum N) -> token lists."""
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [[names[i] for i in flat[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]


def _lengths(rng: np.random.Generator, tokens: int, low: int, high: int) -> np.ndarray:
    """Sentence lengths uniform in low..high summing to exactly ``tokens`` (the last one may be shorter)."""
    lengths = rng.integers(low, high + 1, size=tokens // low + 1)
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), tokens)) + 1]
    lengths[-1] -= int(lengths.sum()) - tokens
    return lengths[lengths > 0]


def planted_classes(tokens: int = 300_000, num_classes: int = 12, class_size: int = 25, num_glue: int = 15,
                    p_class: float = 0.45, p_random: float = 0.15, min_length: int = 8, max_length: int = 15,
                    seed: int = 0) -> Synthetic:
    """A small dense vocabulary: ``num_classes`` classes of ``class_size`` words plus ``num_glue`` glue words.

    Each sentence has a class; each token comes from that class with probability ``p_class`` (Zipf-weighted
    within the class), from a random class with ``p_random`` and from the glue words (Zipf-weighted) otherwise.
    """
    rng = np.random.default_rng([seed, 0xC1A55])
    lengths = _lengths(rng, tokens, min_length, max_length)  # (S,)
    sentence_class = np.repeat(rng.integers(0, num_classes, size=len(lengths)), lengths)  # (N,)
    kind = rng.random(tokens)  # (N,)
    own = rng.choice(class_size, size=tokens, p=_zipf_weights(class_size))
    other = rng.integers(0, num_classes * class_size, size=tokens)
    glue = num_classes * class_size + rng.choice(num_glue, size=tokens, p=_zipf_weights(num_glue))
    flat = np.where(kind < p_class, sentence_class * class_size + own,
                    np.where(kind < p_class + p_random, other, glue))
    names = [f"c{i // class_size}w{i % class_size}" for i in range(num_classes * class_size)]
    names += [f"glue{j}" for j in range(num_glue)]
    labels = {names[i]: i // class_size for i in range(num_classes * class_size)}
    return Synthetic(_split(flat, lengths, names), labels)


def community_graph(num_nodes: int, num_communities: int, degree: int, p_in: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An undirected planted-partition graph: every node draws ``degree`` // 2 partners, each inside its own
    community with probability ``p_in`` and anywhere otherwise. -> (community (n,), CSR offsets (n+1,),
    CSR neighbours (2m,))."""
    community = rng.integers(0, num_communities, size=num_nodes)  # (n,)
    members = [np.flatnonzero(community == c) for c in range(num_communities)]
    half = max(degree // 2, 1)
    src = np.repeat(np.arange(num_nodes), half)  # (n*half,)
    inside = rng.random(len(src)) < p_in
    dst = rng.integers(0, num_nodes, size=len(src))
    for c, nodes in enumerate(members):
        pick = inside & (community[src] == c)
        if len(nodes):
            dst[pick] = nodes[rng.integers(0, len(nodes), size=int(pick.sum()))]
    keep = src != dst
    a = np.concatenate([src[keep], dst[keep]])
    b = np.concatenate([dst[keep], src[keep]])
    order = np.argsort(a, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=num_nodes))])
    return community, offsets, b[order]


def planted_walks(num_nodes: int = 2000, num_communities: int = 20, walks_per_node: int = 4,
                  walk_length: int = 20, degree: int = 10, p_in: float = 0.85, seed: int = 0) -> Synthetic:
    """Uniform random walks (DeepWalk) from every node of a :func:`community_graph`; tokens are node ids.

    ``degree = 0``: no graph; each step goes to a uniformly drawn node of the current node's community with
    probability ``p_in`` and to any node otherwise (the walks of a planted partition with complete communities).
    """
    rng = np.random.default_rng([seed, 0x3A1C])
    if degree > 0:
        community, offsets, neighbours = community_graph(num_nodes, num_communities, degree, p_in, rng)
        degrees = np.diff(offsets)  # (n,)
    else:
        community = rng.integers(0, num_communities, size=num_nodes)  # (n,)
        order = np.argsort(community, kind="stable")  # nodes grouped by community
        starts = np.concatenate([[0], np.cumsum(np.bincount(community, minlength=num_communities))])  # (c+1,)
    current = np.tile(np.arange(num_nodes), walks_per_node)  # (W,)
    steps = [current]
    for _ in range(walk_length - 1):
        if degree > 0:
            d = degrees[current]
            pick = (rng.random(len(current)) * np.maximum(d, 1)).astype(np.int64)
            current = np.where(d > 0, neighbours[np.minimum(offsets[current] + pick, len(neighbours) - 1)],
                               current)
        else:
            c = community[current]
            size = starts[c + 1] - starts[c]
            inside = order[starts[c] + (rng.random(len(current)) * size).astype(np.int64)]
            current = np.where(rng.random(len(current)) < p_in, inside, rng.integers(0, num_nodes, len(current)))
        steps.append(current)
    walks = np.stack(steps, axis=1)  # (W, L)
    names = [f"n{i}" for i in range(num_nodes)]
    sentences = [[names[i] for i in walk] for walk in walks]
    return Synthetic(sentences, {names[i]: int(community[i]) for i in range(num_nodes)})


def zipf_text(tokens: int = 300_000, vocab_size: int = 3000, num_topics: int = 10, num_function: int = 50,
              p_function: float = 0.45, min_length: int = 5, max_length: int = 25, seed: int = 0) -> Synthetic:
    """Text-like tokens: ``num_function`` Zipf-weighted function words (no label) taking ``p_function`` of the
    tokens, the rest from the sentence's topic, whose words are Zipf-weighted over the whole ranking
    (word i belongs to topic i mod num_topics), so counts span several orders of magnitude."""
    rng = np.random.default_rng([seed, 0x21BF])
    lengths = _lengths(rng, tokens, min_length, max_length)
    topic = np.repeat(rng.integers(0, num_topics, size=len(lengths)), lengths)  # (N,)
    per_topic = (vocab_size + num_topics - 1) // num_topics
    rank = rng.choice(per_topic, size=tokens, p=_zipf_weights(per_topic))  # (N,)
    content = np.minimum(rank * num_topics + topic, vocab_size - 1)
    function = vocab_size + rng.choice(num_function, size=tokens, p=_zipf_weights(num_function))
    flat = np.where(rng.random(tokens) < p_function, function, content)
    names = [f"t{i % num_topics}r{i // num_topics}" for i in range(vocab_size)]
    names += [f"fn{j}" for j in range(num_function)]
    labels = {names[i]: i % num_topics for i in range(vocab_size)}
    return Synthetic(_split(flat, lengths, names), labels)


def class_purity(words: list[str] | tuple[str, ...], vectors: np.ndarray, labels: dict[str, int], k: int = 5,
                 max_queries: int | None = None, chunk: int = 1024) -> float:
    """Mean fraction of a labelled word's ``k`` nearest labelled words (cosine, itself excluded) that share its
    label. Only words of ``words`` that have a label count; ``max_queries`` scores only the first that many of
    them (the most frequent, when ``words`` is in rank order) against all. Chance level is about 1 / classes.

    vectors (V, d) row-aligned with ``words``; similarities are computed ``chunk`` query rows at a time.
    """
    index = np.array([i for i, w in enumerate(words) if w in labels], dtype=np.int64)  # (n,)
    if len(index) <= k:
        raise ValueError(f"class purity needs more than k={k} labelled words, got {len(index)}")
    y = np.array([labels[words[i]] for i in index])  # (n,)
    v = vectors[index].astype(np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    queries = len(index) if max_queries is None else min(max_queries, len(index))
    hits = 0
    for lo in range(0, queries, chunk):
        hi = min(lo + chunk, queries)
        sims = v[lo:hi] @ v.T  # (c, n)
        sims[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        near = np.argpartition(-sims, k, axis=1)[:, :k]  # (c, k)
        hits += int((y[near] == y[lo:hi, None]).sum())
    return hits / (queries * k)
