"""CBOW and hierarchical softmax: gradient checks and anchors that do not come from the code under test."""
from functools import partial

import numpy as np
import pytest

from w2vspark.gradcheck import gradcheck
from w2vspark.huffman import huffman_tree
from w2vspark.losses import (cbow, hierarchical_softmax_loss_and_gradient, log_sigmoid,
                             naive_softmax_loss_and_gradient, neg_sampling_loss_and_gradient, skipgram)


def _problem(seed, V=9, d=5):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 60, size=V)
    return rng.normal(size=(V, d)), rng.normal(size=(V - 1, d)), huffman_tree(counts), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck_hierarchical_softmax(seed):
    center_vectors, node_vectors, tree, _ = _problem(seed)
    v = center_vectors[3].copy()
    for word in range(len(center_vectors)):
        gradcheck(lambda x: hierarchical_softmax_loss_and_gradient(x, word, node_vectors, tree)[:2], v)

        def wrt_nodes(x):
            loss, _, grad = hierarchical_softmax_loss_and_gradient(v, word, x, tree)
            return loss, grad
        gradcheck(wrt_nodes, node_vectors)


@pytest.mark.parametrize("seed", [0, 3])
def test_hierarchical_softmax_is_a_distribution(seed):
    """exp(-J) is P(word | v): over the whole vocabulary it must sum to 1, for any vectors."""
    center_vectors, node_vectors, tree, _ = _problem(seed, V=23, d=4)
    for v in center_vectors[:4] * 3.0:
        probs = [np.exp(-hierarchical_softmax_loss_and_gradient(v, w, node_vectors, tree)[0]) for w in range(23)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)


def test_hierarchical_softmax_of_two_words_is_logistic_regression():
    tree = huffman_tree(np.array([10, 4]))
    v, u = np.array([0.3, -1.2]), np.array([[0.7, 0.4]])
    losses = sorted(hierarchical_softmax_loss_and_gradient(v, w, u, tree)[0] for w in range(2))
    x = float(u[0] @ v)
    assert losses == pytest.approx(sorted([-log_sigmoid(x), -log_sigmoid(-x)]), rel=1e-14)
    # zero node vectors: every word of a V-word tree has probability 2^-len
    tree = huffman_tree(np.array([8, 4, 2, 1, 1]))
    for w in range(5):
        loss = hierarchical_softmax_loss_and_gradient(v, w, np.zeros((4, 2)), tree)[0]
        assert loss == pytest.approx(tree.lengths[w] * np.log(2), rel=1e-14)


def test_skipgram_accepts_hierarchical_softmax():
    center_vectors, node_vectors, tree, _ = _problem(4)
    fn = partial(hierarchical_softmax_loss_and_gradient, tree=tree)
    outside = [1, 5, 1, 2]
    gradcheck(lambda x: skipgram(2, outside, x, node_vectors, fn)[:2], center_vectors)
    gradcheck(lambda x: (lambda r: (r[0], r[2]))(skipgram(2, outside, center_vectors, x, fn)), node_vectors)


def _cbow_loss_fns(tree, rng, V):
    negatives = rng.integers(0, V, size=6)
    negatives[:2] = 4  # repeats, and the target drawn as a negative
    return {"naive_softmax": (naive_softmax_loss_and_gradient, (), None),
            "neg_sampling": (neg_sampling_loss_and_gradient, (negatives,), None),
            "hierarchical_softmax": (hierarchical_softmax_loss_and_gradient, (tree,), V - 1)}


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("loss_name", ["naive_softmax", "neg_sampling", "hierarchical_softmax"])
def test_gradcheck_cbow(loss_name, mean):
    center_vectors, node_vectors, tree, rng = _problem(6)
    V = len(center_vectors)
    fn, extra, rows = _cbow_loss_fns(tree, rng, V)[loss_name]
    outside_vectors = node_vectors if rows else rng.normal(size=(V, 5))
    context = [2, 7, 2, 0]  # a repeated context word
    gradcheck(lambda x: cbow(4, context, x, outside_vectors, fn, extra, mean)[:2], center_vectors)
    gradcheck(lambda x: (lambda r: (r[0], r[2]))(cbow(4, context, center_vectors, x, fn, extra, mean)),
              outside_vectors)


def test_cbow_of_one_context_word_is_the_skipgram_pair():
    center_vectors, node_vectors, tree, rng = _problem(8)
    negatives = [[1, 5, 5]]
    for fn, extra, out in ((neg_sampling_loss_and_gradient, (negatives[0],), rng.normal(size=(9, 5))),
                           (partial(hierarchical_softmax_loss_and_gradient, tree=tree), (), node_vectors)):
        for mean in (True, False):
            got = cbow(6, [3], center_vectors, out, fn, extra, mean)
            want = skipgram(3, [6], center_vectors, out, fn, negatives if extra else None)
            assert got[0] == pytest.approx(want[0], rel=1e-14)
            assert np.allclose(got[1], want[1]) and np.allclose(got[2], want[2])
    with pytest.raises(ValueError, match="at least one context word"):
        cbow(0, [], center_vectors, node_vectors, naive_softmax_loss_and_gradient)


def test_cbow_mean_and_sum_differ_as_defined():
    """The mean's h is the sum's h / C: with the outside vectors scaled by C the mean's loss equals the sum's."""
    center_vectors, _, _, rng = _problem(9)
    out = rng.normal(size=(9, 5))
    context = [1, 2, 3]
    as_sum = cbow(0, context, center_vectors, out, naive_softmax_loss_and_gradient, (), mean=False)
    as_mean = cbow(0, context, center_vectors, 3 * out, naive_softmax_loss_and_gradient, (), mean=True)
    assert as_sum[0] == pytest.approx(as_mean[0], rel=1e-12)
