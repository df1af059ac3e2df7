"""A minibatch's windows one after another (``train.step = "sequential"``): task.sequential_step and the compiled
sequential_step, skip-gram pair by pair and CBOW window by window."""
import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.config import ConfigError, load_config, sequential_for
from w2vspark.huffman import huffman_tree
from w2vspark.losses import cbow, hierarchical_softmax_loss_and_gradient, neg_sampling_loss_and_gradient
from w2vspark.train import task
from w2vspark.train.task import KernelParams, sequential_step, train_partition
from w2vspark.vocab import NoiseSampler

needs_native = pytest.mark.skipif(not compiled.available("sequential_step"),
                                  reason="w2vspark_native was not built (no C compiler)")
MODELS = [("skipgram", True), ("cbow", True), ("cbow", False)]  # (model, mean): CBOW with the mean, the sum
LOSSES = ["hierarchical_softmax", "neg_sampling"]


def _problem(loss, seed=0, V=9, d=6, G=5, C=4, K=3, scale=0.5, dtype=np.float64):
    """Windows with padded contexts, a word twice in one window and (negative sampling) a negative equal to the
    target, twice: rows that one step meets twice."""
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


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model,mean", MODELS)
def test_each_step_is_sgd_on_the_reference_loss_after_the_steps_before_it(loss, model, mean):
    """Skip-gram pair after pair, CBOW window after window: each step is the exact SGD step of its CS224n loss
    (losses.py, float64; CBOW's context rows with word2vec.c's factor n for the mean, 1 / n for the sum) at the
    parameters the earlier steps left. The minibatch step (every gradient at the minibatch's start) ends
    elsewhere, so the order is what the test checks."""
    w_in, w_out, targets, contexts, negatives, tree, out_ids, labels = _problem(loss)
    lr = 0.3

    def one(center, outside, vectors, g):
        if loss == "hierarchical_softmax":
            return hierarchical_softmax_loss_and_gradient(center, outside, vectors, tree)
        return neg_sampling_loss_and_gradient(center, outside, vectors, negatives[g])

    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        ctx = contexts[g][contexts[g] >= 0]
        if model == "skipgram":
            for c in ctx:
                pair_loss, grad_center, grad_out = one(exp_in[c], targets[g], exp_out, g)
                exp_loss += pair_loss
                exp_in[c] -= lr * grad_center
                exp_out -= lr * grad_out
        else:
            fn = hierarchical_softmax_loss_and_gradient if loss == "hierarchical_softmax" else \
                neg_sampling_loss_and_gradient
            extra = (tree,) if loss == "hierarchical_softmax" else (negatives[g],)
            window_loss, grad_in, grad_out = cbow(targets[g], ctx, exp_in, exp_out, fn, extra, mean)
            exp_loss += window_loss
            exp_in -= lr * (len(ctx) if mean else 1.0 / len(ctx)) * grad_in
            exp_out -= lr * grad_out
    got_in, got_out = w_in.copy(), w_out.copy()
    got_loss = sequential_step(got_in, got_out, contexts, out_ids, labels, lr, model, mean, damping=False)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)
    batch_in, batch_out = w_in.copy(), w_out.copy()
    if model == "skipgram":
        task.skipgram_step(batch_in, batch_out, contexts, out_ids, labels, lr, damping=False)
    else:
        task.cbow_step(batch_in, batch_out, contexts, out_ids, labels, lr, mean, damping=False)
    assert np.abs(batch_in - exp_in).max() > 1e-3  # the minibatch's order gives another result


@needs_native
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model,mean", MODELS)
@pytest.mark.parametrize("damping,lr,G", [(False, 0.05, 40), (True, 0.05, 40), (True, 5.0, 12)])
def test_compiled_steps_match_numpy(loss, model, mean, damping, lr, G):
    """float32, G windows over 12 rows (every row met by many steps, the damping cutting at lr 5): the compiled
    kernel's products sum in another order than numpy's, so the two agree to float32 rounding carried through
    the steps (1e-5 of the parameters' size; the deltas are 0.1-1 of it). At lr 5 each step moves rows by
    about their length and a rounding difference grows with every step that reads the row again (CBOW with the
    mean: 1e-4 after 40 windows), hence fewer windows there."""
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem(loss, seed=3, V=12, d=19, G=G, C=6,
                                                               dtype=np.float32)
    a, b = (w_in.copy(), w_out.copy()), (w_in.copy(), w_out.copy())
    kw = dict(model=model, mean=mean, with_loss=True, damping=damping)
    loss_a = sequential_step(*a, contexts, out_ids, labels, np.float32(lr), native=True, **kw)
    loss_b = sequential_step(*b, contexts, out_ids, labels, np.float32(lr), native=False, **kw)
    size = max(np.abs(w_in).max(), np.abs(w_out).max())
    assert np.abs(a[0] - b[0]).max() <= 1e-5 * size and np.abs(a[1] - b[1]).max() <= 1e-5 * size
    assert np.abs(a[0] - w_in).max() > 0.05 * size  # the rows did move
    assert loss_a == pytest.approx(loss_b, rel=1e-5)


def _losses(x, u, label):
    """-log s(+-x . u_k) of one step's products, in float64: (n,) one per output row"""
    z = u.astype(np.float64) @ x.astype(np.float64)
    return np.logaddexp(0.0, -np.where(label >= 0.5, z, -z))


def _h(w_in, ctx, mean):
    h = w_in[ctx].astype(np.float64).sum(axis=0)
    return h / len(ctx) if mean else h


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_native)])
@pytest.mark.parametrize("model,mean", MODELS)
def test_a_damped_step_never_raises_its_loss_in_any_row(native, model, mean):
    """One step (one context, or one CBOW window of 3 contexts with a word twice, against a Huffman path) at a
    time, scores of +-10 and a large learning rate: each input row's damped step (the output rows held) and each
    output row's (the inputs held) lower the step's loss; the plain step, the test's control, raises it in many
    of the 200 problems."""
    rng = np.random.default_rng(5)
    V, d = 16, 8
    tree = huffman_tree(rng.integers(1, 100, size=V))
    raised = {False: 0, True: 0}
    for _ in range(200):
        w_in = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)
        w_out = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)
        contexts = rng.integers(0, V, size=(1, 1 if model == "skipgram" else 3))
        if model == "cbow":
            contexts[0, 2] = contexts[0, 0]
        ctx = contexts[0]
        out_ids, labels = task.output_rows(rng.integers(0, V, size=1), tree=tree)
        rows, label = out_ids[0][out_ids[0] >= 0], labels[0][out_ids[0] >= 0]
        before = _losses(_h(w_in, ctx, mean), w_out[rows], label)
        for damping in (False, True):
            a, b = w_in.copy(), w_out.copy()
            sequential_step(a, b, contexts, out_ids, labels, np.float32(2.0), model, mean, False, damping,
                            native=native)
            for c in np.unique(ctx):  # this row moved, the other contexts held
                held = w_in.copy()
                held[c] = a[c]
                raised[damping] += int(_losses(_h(held, ctx, mean), w_out[rows], label).sum()
                                       > before.sum() * (1 + 1e-5) + 1e-6)
            after_u = _losses(_h(w_in, ctx, mean), b[rows], label)
            raised[damping] += int((after_u > before * (1 + 1e-5) + 1e-6).sum())
    assert raised[False] >= 20 and raised[True] == 0, raised


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_native)])
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_steps_mark_exactly_the_rows_they_move(native, model):
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem("hierarchical_softmax", dtype=np.float32)
    marks = np.zeros(len(w_in), bool), np.zeros(len(w_out), bool)
    a, b = w_in.copy(), w_out.copy()
    sequential_step(a, b, contexts, out_ids, labels, np.float32(0.5), model, native=native, touched=marks)
    assert np.array_equal(np.flatnonzero(marks[0]), np.unique(contexts[contexts >= 0]))
    assert np.array_equal(np.flatnonzero(marks[1]), np.unique(out_ids[out_ids >= 0]))
    assert np.array_equal(np.flatnonzero((a != w_in).any(axis=1)), np.flatnonzero(marks[0]))
    assert np.array_equal(np.flatnonzero((b != w_out).any(axis=1)), np.flatnonzero(marks[1]))


@needs_native
def test_compiled_step_rejects_bad_input_and_changes_nothing():
    w_in, w_out, _, contexts, _, _, out_ids, labels = _problem("hierarchical_softmax", dtype=np.float32)
    before = w_in.copy(), w_out.copy()
    bad = contexts.copy()
    bad[0, 0] = len(w_in)
    with pytest.raises(IndexError, match="sequential_step: context row 9 out of range"):
        sequential_step(w_in, w_out, bad, out_ids, labels, np.float32(0.1), native=True)
    G, C = contexts.shape
    marks = np.zeros(len(w_in), bool), np.zeros(len(w_out), bool)
    fn = compiled.helper("sequential_step", True)

    def call(ctx, model=0, marks=marks):
        return fn(w_in, w_out, ctx, out_ids.astype(np.int64), labels, *marks, G, C, out_ids.shape[1], len(labels),
                  w_in.shape[1], 0.1, model, True, True)

    with pytest.raises(ValueError, match="shapes or dtypes"):  # int32 contexts
        call(contexts.astype(np.int32))
    with pytest.raises(ValueError, match="shapes or dtypes"):  # no model 3
        call(contexts.astype(np.int64), model=3)
    with pytest.raises(ValueError, match="shapes or dtypes"):  # a mark per row
        call(contexts.astype(np.int64), marks=(marks[0][1:], marks[1]))
    assert not marks[0].any() and not marks[1].any()
    assert np.array_equal(w_in, before[0]) and np.array_equal(w_out, before[1])


def _sentences(seed, V=30, n=120):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V, size=int(rng.integers(3, 15))).astype(np.int32) for _ in range(n)]


@needs_native
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_a_partition_trained_sequentially_compiled_matches_numpy(monkeypatch, loss, model):
    """train_partition with sequential=True, compiled and numpy: the same rows, deltas within float32 rounding
    carried through ~1,300 pairs (or ~600 windows) on 30 rows (1e-5 of the largest delta)"""
    from w2vspark.train.local import pack
    V, d = 30, 8
    rng = np.random.default_rng(0)
    w_in = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    w_out = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    counts = np.arange(V, 0, -1) * 10
    tree = huffman_tree(counts) if loss == "hierarchical_softmax" else None
    params = KernelParams(window=3, num_negatives=4, loss=loss, model=model, batch_pairs=64, sequential=True)

    def run():
        return train_partition([pack(_sentences(3))], w_in, w_out, params, np.full(V, 0.9), NoiseSampler(counts),
                               np.random.default_rng(3), 0.05, 0.01, 4000, tree)

    native = run()
    monkeypatch.setattr(compiled, "_module", None)
    plain = run()
    assert native.pairs == plain.pairs > 500
    for field in ("in_ids", "out_ids"):
        assert np.array_equal(getattr(native, field), getattr(plain, field)), field
    for field in ("in_delta", "out_delta"):
        got, expected = getattr(native, field), getattr(plain, field)
        assert np.abs(expected).max() > 0
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), field
    assert native.loss_sum == pytest.approx(plain.loss_sum, rel=1e-5)


@pytest.mark.parametrize("overrides, sequential", [
    ([], False),
    (["train.loss=hierarchical_softmax"], True),
    (["train.loss=hierarchical_softmax", "train.step=minibatch"], False),
    (["train.step=sequential"], True),
    (["train.model=cbow"], True),
    (["train.model=cbow", "train.loss=hierarchical_softmax"], True),
    (["train.model=cbow", "train.step=minibatch"], False),
    (["train.model=cbow", "train.loss=naive_softmax"], False),
])
def test_auto_step_is_sequential_for_cbow_and_hierarchical_softmax(overrides, sequential):
    if "train.step=sequential" not in overrides and not compiled.available("sequential_step"):
        sequential = False  # "auto" without the compiled helper: the minibatch step
    assert sequential_for(load_config(None, overrides).train) is sequential


def test_auto_step_without_the_compiled_helper_is_the_minibatch_step(monkeypatch):
    """the sequential step's numpy form is a Python loop over the pairs: "auto" does not choose it"""
    monkeypatch.setattr(compiled, "_module", None)
    assert not sequential_for(load_config(None, ["train.loss=hierarchical_softmax"]).train)
    assert sequential_for(load_config(None, ["train.loss=hierarchical_softmax", "train.step=sequential"]).train)


@pytest.mark.parametrize("overrides, message", [
    (["train.step=pairs"], "'train.step' must be one of"),
    (["train.step=sequential", "train.loss=naive_softmax"], "'train.step' must be 'minibatch' or 'auto' with "
                                                            "train.loss = naive_softmax"),
])
def test_bad_step_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
