"""Skip-gram trained pair by pair (``train.step = "pairs"``): task.skipgram_pairs_step and the compiled pair_steps."""
import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.config import ConfigError, load_config, pairs_for
from w2vspark.huffman import huffman_tree
from w2vspark.losses import hierarchical_softmax_loss_and_gradient, neg_sampling_loss_and_gradient
from w2vspark.train import task
from w2vspark.train.task import KernelParams, skipgram_pairs_step, train_partition
from w2vspark.vocab import NoiseSampler

needs_pairs = pytest.mark.skipif(not compiled.available("pair_steps"),
                                 reason="w2vspark_native was not built (no C compiler)")


def _problem(loss, seed=0, V=9, d=6, G=5, C=4, K=3, scale=0.5, dtype=np.float64):
    """Windows with padded contexts, a word twice in one window and (negative sampling) a negative equal to the
    target, twice: rows that one pair meets twice."""
    rng = np.random.default_rng(seed)
    w_in = (rng.normal(size=(V, d)) * scale).astype(dtype)
    w_out = (rng.normal(size=(V, d)) * scale).astype(dtype)
    targets = rng.integers(0, V, size=G)
    contexts = rng.integers(0, V, size=(G, C))
    contexts[0, 2:] = -1
    contexts[1, 1] = contexts[1, 0]
    tree = huffman_tree(rng.integers(1, 50, size=V))
    negatives = rng.integers(0, V, size=(G, K))
    negatives[2, :2] = targets[2]
    if loss == "hierarchical_softmax":
        out_ids, labels = task.output_rows(targets, tree=tree)
    else:
        out_ids, labels = task.output_rows(targets, negatives)
    return w_in, w_out, targets, contexts, negatives, tree, out_ids, labels


@pytest.mark.parametrize("loss", ["hierarchical_softmax", "neg_sampling"])
def test_each_pair_is_an_sgd_step_on_the_reference_loss_after_the_pairs_before_it(loss):
    """Window after window, context after context: each pair's rows take the exact SGD step of the pair's
    CS224n loss (losses.py, float64), at the parameters the earlier pairs left; the minibatch step (every
    gradient at the minibatch's start) ends elsewhere, so the order is what the test checks."""
    w_in, w_out, targets, contexts, negatives, tree, out_ids, labels = _problem(loss)
    lr = 0.3
    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        for c in contexts[g][contexts[g] >= 0]:
            if loss == "hierarchical_softmax":
                pair_loss, grad_center, grad_out = hierarchical_softmax_loss_and_gradient(exp_in[c], targets[g],
                                                                                          exp_out, tree)
            else:
                pair_loss, grad_center, grad_out = neg_sampling_loss_and_gradient(exp_in[c], targets[g], exp_out,
                                                                                  negatives[g])
            exp_loss += pair_loss
            exp_in[c] -= lr * grad_center
            exp_out -= lr * grad_out
    got_in, got_out = w_in.copy(), w_out.copy()
    got_loss = skipgram_pairs_step(got_in, got_out, contexts, out_ids, labels, lr, damping=False)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)
    batch_in, batch_out = w_in.copy(), w_out.copy()
    task.skipgram_step(batch_in, batch_out, contexts, out_ids, labels, lr, damping=False)
    assert np.abs(batch_in - exp_in).max() > 1e-3  # the minibatch's order gives another result


@needs_pairs
@pytest.mark.parametrize("loss", ["hierarchical_softmax", "neg_sampling"])
@pytest.mark.parametrize("damping,lr", [(False, 0.05), (True, 0.05), (True, 5.0)])
def test_compiled_pairs_match_numpy(loss, damping, lr):
    """float32, 40 windows over 12 rows (every row met by many pairs, the damping cutting at lr 5): the compiled
    kernel's products sum in another order than numpy's, so the two agree to float32 rounding carried through
    the pairs (1e-5 of the parameters' size; the deltas are 0.1-1 of it)."""
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem(loss, seed=3, V=12, d=19, G=40, C=6,
                                                               dtype=np.float32)
    a, b = (w_in.copy(), w_out.copy()), (w_in.copy(), w_out.copy())
    loss_a = skipgram_pairs_step(*a, contexts, out_ids, labels, np.float32(lr), True, damping, native=True)
    loss_b = skipgram_pairs_step(*b, contexts, out_ids, labels, np.float32(lr), True, damping, native=False)
    size = max(np.abs(w_in).max(), np.abs(w_out).max())
    assert np.abs(a[0] - b[0]).max() <= 1e-5 * size and np.abs(a[1] - b[1]).max() <= 1e-5 * size
    assert np.abs(a[0] - w_in).max() > 0.05 * size  # the rows did move
    assert loss_a == pytest.approx(loss_b, rel=1e-5)


def _pair_loss(v, u, label):
    """-sum log s(+-v . u_k) of one pair, in float64: (n,) per output row"""
    z = u.astype(np.float64) @ v.astype(np.float64)
    return np.logaddexp(0.0, -np.where(label >= 0.5, z, -z))


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_pairs)])
def test_a_damped_pair_never_raises_its_loss_in_any_row(native):
    """One pair (one context, one Huffman path) at a time, scores of +-10 and a large learning rate: the
    context row's damped step (the output rows held) and each output row's (the context held) lower the pair's
    loss; the plain step, the test's control, raises it in many of the 200 pairs."""
    rng = np.random.default_rng(5)
    V, d = 16, 8
    tree = huffman_tree(rng.integers(1, 100, size=V))
    raised = {False: 0, True: 0}
    for _ in range(200):
        w_in = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)
        w_out = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)
        contexts = rng.integers(0, V, size=(1, 1))
        out_ids, labels = task.output_rows(rng.integers(0, V, size=1), tree=tree)
        rows, label = out_ids[0][out_ids[0] >= 0], labels[0][out_ids[0] >= 0]
        v, u = w_in[contexts[0, 0]], w_out[rows]
        before = _pair_loss(v, u, label)
        for damping in (False, True):
            a, b = w_in.copy(), w_out.copy()
            skipgram_pairs_step(a, b, contexts, out_ids, labels, np.float32(2.0), False, damping, native=native)
            after_v = _pair_loss(a[contexts[0, 0]], u, label).sum()
            after_u = _pair_loss(v, b[rows], label)
            raised[damping] += int(after_v > before.sum() * (1 + 1e-5) + 1e-6)
            raised[damping] += int((after_u > before * (1 + 1e-5) + 1e-6).sum())
    assert raised[False] >= 20 and raised[True] == 0, raised


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_pairs)])
def test_pairs_mark_exactly_the_rows_they_move(native):
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem("hierarchical_softmax", dtype=np.float32)
    marks = np.zeros(len(w_in), bool), np.zeros(len(w_out), bool)
    a, b = w_in.copy(), w_out.copy()
    skipgram_pairs_step(a, b, contexts, out_ids, labels, np.float32(0.5), native=native, touched=marks)
    assert np.array_equal(np.flatnonzero(marks[0]), np.unique(contexts[contexts >= 0]))
    assert np.array_equal(np.flatnonzero(marks[1]), np.unique(out_ids[out_ids >= 0]))
    assert np.array_equal(np.flatnonzero((a != w_in).any(axis=1)), np.flatnonzero(marks[0]))
    assert np.array_equal(np.flatnonzero((b != w_out).any(axis=1)), np.flatnonzero(marks[1]))


@needs_pairs
def test_compiled_pairs_reject_bad_input_and_change_nothing():
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem("hierarchical_softmax", dtype=np.float32)
    before = w_in.copy(), w_out.copy()
    bad = contexts.copy()
    bad[0, 0] = len(w_in)
    with pytest.raises(IndexError, match="pair_steps: context row 9 out of range"):
        skipgram_pairs_step(w_in, w_out, bad, out_ids, labels, np.float32(0.1), native=True)
    G, C = contexts.shape
    marks = np.zeros(len(w_in), bool), np.zeros(len(w_out), bool)
    pair_steps = compiled.helper("pair_steps", True)
    with pytest.raises(ValueError, match="shapes or dtypes"):  # int32 contexts
        pair_steps(w_in, w_out, contexts.astype(np.int32), out_ids.astype(np.int64), labels, *marks, G, C,
                   out_ids.shape[1], len(labels), w_in.shape[1], 0.1, True, True)
    with pytest.raises(ValueError, match="shapes or dtypes"):  # a mark per row
        pair_steps(w_in, w_out, contexts.astype(np.int64), out_ids.astype(np.int64), labels, marks[0][1:],
                   marks[1], G, C, out_ids.shape[1], len(labels), w_in.shape[1], 0.1, True, True)
    assert not marks[0].any() and not marks[1].any()
    assert np.array_equal(w_in, before[0]) and np.array_equal(w_out, before[1])


def _sentences(seed, V=30, n=120):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V, size=int(rng.integers(3, 15))).astype(np.int32) for _ in range(n)]


@needs_pairs
@pytest.mark.parametrize("loss", ["hierarchical_softmax", "neg_sampling"])
def test_a_partition_trained_pair_by_pair_compiled_matches_numpy(monkeypatch, loss):
    """train_partition with pairs=True, compiled and numpy: the same rows, deltas within float32 rounding
    carried through ~1,300 pairs on 30 rows (1e-5 of the largest delta)"""
    from w2vspark.train.local import pack
    V, d = 30, 8
    rng = np.random.default_rng(0)
    w_in = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    w_out = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    counts = np.arange(V, 0, -1) * 10
    tree = huffman_tree(counts) if loss == "hierarchical_softmax" else None
    params = KernelParams(window=3, num_negatives=4, loss=loss, batch_pairs=64, pairs=True)

    def run():
        return train_partition([pack(_sentences(3))], w_in, w_out, params, np.full(V, 0.9), NoiseSampler(counts),
                               np.random.default_rng(3), 0.05, 0.01, 4000, tree)

    native = run()
    monkeypatch.setattr(compiled, "_module", None)
    plain = run()
    assert native.pairs == plain.pairs > 1000
    for field in ("in_ids", "out_ids"):
        assert np.array_equal(getattr(native, field), getattr(plain, field)), field
    for field in ("in_delta", "out_delta"):
        got, expected = getattr(native, field), getattr(plain, field)
        assert np.abs(expected).max() > 0
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), field
    assert native.loss_sum == pytest.approx(plain.loss_sum, rel=1e-5)


@pytest.mark.parametrize("overrides, pairs", [
    ([], False),
    (["train.loss=hierarchical_softmax"], True),
    (["train.loss=hierarchical_softmax", "train.model=cbow"], False),
    (["train.loss=hierarchical_softmax", "train.step=minibatch"], False),
    (["train.step=pairs"], True),
])
def test_auto_step_is_pairs_for_skipgram_with_hierarchical_softmax(overrides, pairs):
    assert pairs_for(load_config(None, overrides).train) is pairs


@pytest.mark.parametrize("overrides, message", [
    (["train.step=sequential"], "'train.step' must be one of"),
    (["train.step=pairs", "train.model=cbow"], "'train.step' must be 'minibatch' or 'auto' with train.model = cbow"),
    (["train.step=pairs", "train.loss=naive_softmax"], "'train.step' must be 'minibatch' or 'auto' with "
                                                       "train.loss = naive_softmax"),
])
def test_bad_step_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
