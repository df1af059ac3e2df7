"""The Huffman tree of hierarchical softmax (Morin & Bengio 2005; Mikolov et al. 2013).

Every word is a leaf of a binary tree built from the vocabulary counts, so frequent words sit near the root.
The probability of a word is the product, along the path from the root to its leaf, of s(u_n . v) for the
steps that go one way (code bit 0) and s(-u_n . v) for the other (bit 1), u_n the output vector of inner node
n: the V leaves' probabilities sum to 1 with only ``len(path)`` ~ log2(V) dot products per word.

The V - 1 inner nodes are numbered from the root (0) down: a node is never numbered before its parent, and a
smaller number means a count at least as large, so inner-node rows are ordered by frequency as word ids are.
The tree is a pure function of the counts (ties broken by word id), so every Spark task builds the same tree
from the counts it already has and nothing else needs to be shipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import compiled


@dataclass(frozen=True)
class HuffmanTree:
    points: np.ndarray  # (V, L) int32: inner nodes on each word's path, root first; -1 pads shorter paths
    codes: np.ndarray  # (V, L) int8: the branch taken at each of those nodes (0 or 1; 0 on padding)
    lengths: np.ndarray  # (V,) int32: path length of each word (its code length)

    @property
    def num_inner(self) -> int:
        return len(self.lengths) - 1


def huffman_tree(counts: np.ndarray, native: bool | None = None) -> HuffmanTree:
    """Build the tree of ``counts`` (V,), V >= 2 (counts may be 0).

    Two-queue construction (leaves in ascending count, merged nodes in creation order, which is ascending
    too): each merge joins the two smallest remaining nodes, the first taken on branch 0 and the second on
    branch 1; a leaf is taken before a merged node only when its count is strictly smaller. ``native``: True
    builds it with the compiled helpers, False in Python (both give the same arrays), None the compiled one when
    built (a million words: about 5 s in Python).
    """
    counts = np.asarray(counts, dtype=np.int64)
    vocab_size = len(counts)
    if vocab_size < 2:
        raise ValueError(f"hierarchical softmax needs at least 2 words, the vocabulary has {vocab_size}")
    order = np.argsort(-counts, kind="stable")  # leaf slot i holds word order[i]: count descending, id ascending
    if compiled.helper("huffman_paths", native) is not None:  # the compiled construction: about 10x faster
        return _compiled_tree(counts[order], order)
    leaf_count = counts[order].tolist()
    merged_count: list[int] = []
    num_nodes = 2 * vocab_size - 1  # slots 0..V-1 leaves, V + m the m-th merged node
    parent = np.zeros(num_nodes, dtype=np.int64)
    branch = np.zeros(num_nodes, dtype=np.int8)
    leaf, merged = vocab_size - 1, 0  # next smallest leaf slot, next unused merged node
    for m in range(vocab_size - 1):
        picked = []
        for _ in range(2):
            if leaf >= 0 and (merged >= m or leaf_count[leaf] < merged_count[merged]):
                picked.append((leaf, leaf_count[leaf]))
                leaf -= 1
            else:
                picked.append((vocab_size + merged, merged_count[merged]))
                merged += 1
        (first, c1), (second, c2) = picked
        merged_count.append(c1 + c2)
        parent[first] = parent[second] = vocab_size + m
        branch[second] = 1
    root = num_nodes - 1
    # walk every leaf up to the root at once, one level per step: (V, depth) columns, leaf end first
    up_points, up_codes = [], []
    node = np.arange(vocab_size)
    active = node != root
    while active.any():
        up_codes.append(np.where(active, branch[node], 0))
        node = np.where(active, parent[node], node)
        up_points.append(np.where(active, root - node, -1))  # merged node m -> inner id V - 2 - m (root = 0)
        active = node != root
    up_p, up_c = np.stack(up_points, axis=1), np.stack(up_codes, axis=1)  # (V, L)
    lengths = (up_p >= 0).sum(axis=1)  # (V,)
    depth = up_p.shape[1]
    k = np.arange(depth)[None, :]
    src = np.clip(lengths[:, None] - 1 - k, 0, depth - 1)  # reverse each path: root first
    pad = k >= lengths[:, None]
    points_sorted = np.where(pad, -1, np.take_along_axis(up_p, src, axis=1)).astype(np.int32)
    codes_sorted = np.where(pad, 0, np.take_along_axis(up_c, src, axis=1)).astype(np.int8)
    points, codes = np.empty_like(points_sorted), np.empty_like(codes_sorted)
    points[order], codes[order] = points_sorted, codes_sorted
    out_lengths = np.empty(vocab_size, dtype=np.int32)
    out_lengths[order] = lengths
    return HuffmanTree(points=points, codes=codes, lengths=out_lengths)


def _compiled_tree(sorted_counts: np.ndarray, order: np.ndarray) -> HuffmanTree:
    """The same construction and numbering in C (``huffman_merge``, ``huffman_paths``)."""
    vocab_size = len(order)
    parent = np.empty(2 * vocab_size - 1, dtype=np.int64)
    branch = np.empty(2 * vocab_size - 1, dtype=np.int8)
    depth = np.empty(2 * vocab_size - 1, dtype=np.int64)
    merge, paths = compiled.helper("huffman_merge", True), compiled.helper("huffman_paths", True)
    width = merge(np.ascontiguousarray(sorted_counts, dtype=np.int64), parent, branch, depth)
    points = np.empty((vocab_size, width), dtype=np.int32)
    codes = np.empty((vocab_size, width), dtype=np.int8)
    lengths = np.empty(vocab_size, dtype=np.int32)
    paths(parent, branch, depth, np.ascontiguousarray(order, dtype=np.int64), points, codes, lengths)
    return HuffmanTree(points=points, codes=codes, lengths=lengths)
