"""The Huffman tree of hierarchical softmax: by hand, its defining properties, and against gensim's tree."""
import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.huffman import huffman_tree


def _paths(tree):
    return [(tree.points[w, :n].tolist(), tree.codes[w, :n].tolist()) for w, n in enumerate(tree.lengths)]


def test_small_tree_by_hand():
    # counts 5, 3, 2, 1: merge {1, 2} -> 3 (node c), then {c, 3} -> 6 (node b: the merged 3 goes first on a
    # tie), then {5, b} -> 11 (root a). Numbered from the root: a = 0, b = 1, c = 2.
    tree = huffman_tree(np.array([5, 3, 2, 1]))
    assert _paths(tree) == [([0], [0]), ([0, 1], [1, 1]), ([0, 1, 2], [1, 0, 1]), ([0, 1, 2], [1, 0, 0])]
    assert tree.num_inner == 3 and tree.points.dtype == np.int32


def test_two_words_and_errors():
    tree = huffman_tree(np.array([7, 7]))
    assert sorted(_paths(tree)) == [([0], [0]), ([0], [1])]
    with pytest.raises(ValueError, match="at least 2 words"):
        huffman_tree(np.array([3]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_free_complete_and_numbered_from_the_root(seed):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.zipf(1.3, size=200).clip(max=10 ** 6))[::-1].copy()
    counts[-5:] = 0  # words absent from a continued corpus
    tree = huffman_tree(counts)
    codes = ["".join(map(str, c)) for _, c in _paths(tree)]
    assert len(set(codes)) == len(codes)
    assert not any(a != b and b.startswith(a) for a in codes for b in codes)  # prefix-free
    assert sum(2.0 ** -len(c) for c in codes) == pytest.approx(1.0, abs=1e-12)  # Kraft: a full binary tree
    for points, _ in _paths(tree):
        assert points[0] == 0 and points == sorted(points) and len(set(points)) == len(points)
    used = np.unique(tree.points[tree.points >= 0])
    assert used.tolist() == list(range(len(counts) - 1))  # exactly the V - 1 inner nodes
    # a node's subtree count never exceeds its parent's: ids by count as word ids are
    node_count = np.zeros(len(counts) - 1)
    np.add.at(node_count, tree.points[tree.points >= 0], np.repeat(counts, tree.lengths))
    for points, _ in _paths(tree):
        assert all(node_count[a] >= node_count[b] for a, b in zip(points, points[1:]))


def test_code_lengths_are_optimal_as_gensims():
    """Huffman code lengths may differ on ties, the total weighted length may not: compare it with gensim's
    tree (gensim 4's own Huffman construction) on a Zipf vocabulary."""
    from gensim.models.word2vec import Word2Vec

    rng = np.random.default_rng(5)
    counts = np.sort(rng.zipf(1.5, size=3000).clip(max=10 ** 6))[::-1] + 4
    model = Word2Vec(vector_size=4, min_count=1, hs=1, negative=0)
    model.build_vocab_from_freq({f"w{i}": int(c) for i, c in enumerate(counts)})
    code_len = np.array([len(model.wv.get_vecattr(f"w{i}", "code")) for i in range(len(counts))])
    tree = huffman_tree(counts)
    assert int((counts * tree.lengths).sum()) == int((counts * code_len).sum())
    assert tree.lengths.max() == code_len.max()


def test_ties_are_broken_by_word_id():
    a = huffman_tree(np.array([4, 4, 4, 4, 4]))
    b = huffman_tree(np.array([4, 4, 4, 4, 4]))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.codes, b.codes)
    # unsorted counts (a continued vocabulary appends new words) give the tree of the sorted counts, permuted
    counts = np.array([3, 9, 1, 9, 5])
    order = np.argsort(-counts, kind="stable")
    permuted, sorted_tree = huffman_tree(counts), huffman_tree(counts[order])
    assert np.array_equal(permuted.lengths[order], sorted_tree.lengths)


@pytest.mark.skipif(not compiled.available("huffman_paths"),
                    reason="w2vspark_native was not built (no C compiler)")
def test_compiled_tree_equals_pythons():
    """The compiled construction takes the same merges and numbers the nodes the same way: equal arrays, on
    ties (equal counts), zero counts, the smallest vocabularies and a Zipf vocabulary."""
    rng = np.random.default_rng(4)
    cases = [np.array([7, 7]), np.array([5, 3, 2, 1]), np.full(9, 4), rng.integers(0, 3, size=50),
             rng.zipf(1.3, size=3000).clip(max=10 ** 6)]
    for counts in cases:
        by_c, by_python = huffman_tree(counts, native=True), huffman_tree(counts, native=False)
        for field in ("points", "codes", "lengths"):
            got, expected = getattr(by_c, field), getattr(by_python, field)
            assert got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)
    parent, depth = np.empty(5, np.int64), np.empty(5, np.int64)
    with pytest.raises(ValueError, match="must not increase"):
        compiled.helper("huffman_merge", True)(np.array([1, 2, 3]), parent, np.empty(5, np.int8), depth)


def test_a_missing_compiled_helper_is_named(monkeypatch):
    """Forcing the compiled path in a build without it fails with the helper's name, and the default falls back
    to Python with the same tree."""
    expected = huffman_tree(np.array([5, 3, 2, 1]), native=False)
    monkeypatch.setattr(compiled, "_module", None)
    with pytest.raises(RuntimeError, match="huffman_paths is not in this build"):
        huffman_tree(np.array([5, 3, 2, 1]), native=True)
    fallback = huffman_tree(np.array([5, 3, 2, 1]))
    assert np.array_equal(fallback.points, expected.points) and np.array_equal(fallback.codes, expected.codes)
