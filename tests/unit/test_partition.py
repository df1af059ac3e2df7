import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.config import load_config
from w2vspark.train.local import pack, split_round_robin, train_local
from w2vspark.losses import (logistic_curvature_bound, naive_softmax_loss_and_gradient,
                              neg_sampling_loss_and_gradient)
from w2vspark.train import task
from w2vspark.train.task import (KernelParams, gather_sentences, naive_softmax_step, neg_sampling_step, native_kernel,
                                native_step,
                                rechunk, trust_region_factors, take_slice, train_partition)
from w2vspark.vocab import NoiseSampler, Vocabulary


def _problem(seed=0, V=8, d=5, G=4, C=4, K=3):
    rng = np.random.default_rng(seed)
    w_in, w_out = rng.normal(size=(V, d)) * 0.5, rng.normal(size=(V, d)) * 0.5
    targets = rng.integers(0, V, size=G)
    contexts = rng.integers(0, V, size=(G, C))
    contexts[0, 2:] = -1  # padding
    contexts[1, 0] = targets[1]  # a word in its own window
    negatives = rng.integers(0, V, size=(G, K))
    negatives[2, :2] = targets[2]  # a negative equal to the target, twice
    return w_in, w_out, targets, contexts, negatives


def test_neg_sampling_kernel_is_minibatch_sgd_on_the_reference_loss():
    w_in, w_out, targets, contexts, negatives = _problem()
    lr = 0.1
    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        for c in contexts[g][contexts[g] >= 0]:
            loss, grad_center, grad_outside = neg_sampling_loss_and_gradient(w_in[c], targets[g], w_out, negatives[g])
            exp_loss += loss
            exp_in[c] -= lr * grad_center
            exp_out -= lr * grad_outside
    got_in, got_out = w_in.copy(), w_out.copy()
    got_loss = neg_sampling_step(got_in, got_out, targets, contexts, negatives, lr, damping=False)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)


def test_trust_region_factors_by_hand():
    # a row whose summed step stays short of its quadratic model's minimum (lr H <= 1) keeps the plain step
    assert trust_region_factors(np.array([3]), np.array([2.0]), 0.1, 10) == pytest.approx([1.0])
    got = trust_region_factors(np.array([1, -1, 1, 4]), np.array([2.5, 9.0, 2.5, 0.0]), 0.1, 10)
    assert got == pytest.approx([1.0, 1.0, 1.0, 1.0])  # row 1: lr H = 0.5; padding and a flat row keep 1
    # past it, the step is cut to the model's minimum: lr H = 4 -> 1/4 for both of row 2's occurrences
    got = trust_region_factors(np.array([2, 5, 2]), np.array([15.0, 1.0, 25.0]), 0.1, 10)
    assert got == pytest.approx([0.25, 1.0, 0.25])
    # a row repeated 100 times on a steep part: lr H = 100
    got = trust_region_factors(np.zeros(100, np.int64), np.full(100, 10.0), 0.1, 10)
    assert got == pytest.approx(np.full(100, 0.01))
    # the dense (small vocabulary) and sorted (large vocabulary) paths agree
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, 50, size=300)
    h = rng.random(300) * 3
    assert np.allclose(trust_region_factors(ids, h, 0.5, 50), trust_region_factors(ids, h, 0.5, 10 ** 6), rtol=1e-12)
    assert trust_region_factors(ids, h, 0.5, 50).min() < 1  # the case really cuts some rows


def _pair_curvatures(w_in, w_out, targets, contexts, negatives, e_in=None, e_out=None):
    """Loop form: for every (context, output) product with score z, the logistic loss's bound curvature
    tanh(z / 2) / (2 z) (1/4 at z = 0) times the other vector's squared length (or, given unit directions
    e_in / e_out per row, its squared component along the row's direction), summed per row of w_in and of
    w_out, with the number of occurrences of each row."""
    h_in, n_in = np.zeros(len(w_in)), np.zeros(len(w_in))
    h_out, n_out = np.zeros(len(w_out)), np.zeros(len(w_out))
    for g in range(len(targets)):
        outs = [targets[g], *negatives[g]]
        ctx = [c for c in contexts[g] if c >= 0]
        for c in ctx:
            n_in[c] += 1
            for o in outs:
                z = w_in[c] @ w_out[o]
                curv = np.tanh(z / 2) / (2 * z) if z != 0 else 0.25
                h_in[c] += curv * (w_out[o] @ w_out[o] if e_in is None else (w_out[o] @ e_in[c]) ** 2)
                h_out[o] += curv * (w_in[c] @ w_in[c] if e_out is None else (w_in[c] @ e_out[o]) ** 2)
        for o in outs:
            n_out[o] += 1
    return h_in, n_in, h_out, n_out


def _unit_rows(delta):
    norm = np.linalg.norm(delta, axis=1, keepdims=True)
    return delta / np.where(norm > 0, norm, 1)


def test_damped_kernel_scales_each_rows_sgd_step_by_its_factor():
    """Each row's damped step is its plain summed step times 1 / max(1, lr H), H the bound curvature along that
    step: sum of c(z) (x . e)^2 over the row's products, e the step's direction, x the other vector."""
    w_in, w_out, targets, contexts, negatives = _problem(2)
    lr = 0.5
    plain_in, plain_out = w_in.copy(), w_out.copy()
    neg_sampling_step(plain_in, plain_out, targets, contexts, negatives, lr, damping=False)
    got_in, got_out = w_in.copy(), w_out.copy()
    neg_sampling_step(got_in, got_out, targets, contexts, negatives, lr, damping=True)
    trace_in, n_in, trace_out, n_out = _pair_curvatures(w_in, w_out, targets, contexts, negatives)
    along_in, _, along_out, _ = _pair_curvatures(w_in, w_out, targets, contexts, negatives,
                                                 _unit_rows(plain_in - w_in), _unit_rows(plain_out - w_out))
    cut, looser = 0, 0
    for h, trace, n, w, plain, got in ((along_in, trace_in, n_in, w_in, plain_in, got_in),
                                       (along_out, trace_out, n_out, w_out, plain_out, got_out)):
        for r in range(len(w)):
            if n[r] == 0:
                assert np.array_equal(got[r], w[r])
                continue
            factor = 1.0 / max(1.0, lr * h[r])
            assert np.allclose(got[r] - w[r], factor * (plain[r] - w[r]), atol=1e-12), r
            cut += factor < 1
            looser += factor > 1.0 / max(1.0, lr * trace[r]) * (1 + 1e-9)  # the trace bound cut it further
    assert cut > 0  # the learning rate is high enough that some rows are cut
    assert looser > 0  # and measuring along the step, not with every x's whole length, matters


def test_damping_brings_a_repeated_row_close_to_sequential_sgd():
    """A target word seen 60 times in one minibatch with the same context: sequential SGD (each step at the
    updated row) against the plain minibatch step (60 gradients at the same point) and the damped one."""
    rng = np.random.default_rng(4)
    d, lr, n = 8, 0.5, 60
    w_in = rng.normal(size=(3, d))
    w_out = rng.normal(size=(3, d)) * 0.1
    targets = np.zeros(n, dtype=np.int64)
    contexts = np.full((n, 1), 1)
    negatives = np.full((n, 1), 2)
    seq = w_out.copy()
    for _ in range(n):  # w_in held fixed: follow the output row alone
        _, _, grad_out = neg_sampling_loss_and_gradient(w_in[1], 0, seq, [2])
        seq[0] -= lr * grad_out[0]
    moved = {}
    for damping in (False, True):
        got_in, got_out = w_in.copy(), w_out.copy()
        neg_sampling_step(got_in, got_out, targets, contexts, negatives, lr, damping=damping)
        step, target = got_out[0] - w_out[0], seq[0] - w_out[0]
        assert step @ target / (np.linalg.norm(step) * np.linalg.norm(target)) > 0.99  # same direction
        moved[damping] = np.linalg.norm(step) / np.linalg.norm(target)
    assert moved[False] > 10  # the plain step overshoots by more than 10 times the sequential movement
    # the damped step is of the sequential one's order, shorter: the quadratic model does not see the sigmoid
    # flatten as the score grows, so it errs on the side of the shorter step
    assert 0.3 < moved[True] <= 1.0


def test_naive_softmax_kernel_is_minibatch_sgd_on_the_reference_loss():
    w_in, w_out, targets, contexts, _ = _problem(1)
    lr = 0.05
    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        for c in contexts[g][contexts[g] >= 0]:
            loss, grad_center, grad_outside = naive_softmax_loss_and_gradient(w_in[c], targets[g], w_out)
            exp_loss += loss
            exp_in[c] -= lr * grad_center
            exp_out -= lr * grad_outside
    got_in, got_out = w_in.copy(), w_out.copy()
    got_loss = naive_softmax_step(got_in, got_out, targets, contexts, lr)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)


needs_native = pytest.mark.skipif(not (native_kernel() and native_step()),
                                  reason="w2vspark_native was not built (no C compiler)")


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_native)])
def test_scatter_add_accumulates_repeated_rows(native):
    w = np.zeros((4, 3), np.float32)
    ids = np.array([2, 0, 2, 2], np.int32)
    rows = np.array([[1, 2, 3], [4, 5, 6], [0.5, 0.5, 0.5], [10, 20, 30]], np.float32)
    task._scatter_add(w, ids, rows, native=native)
    assert w.tolist() == [[4, 5, 6], [0, 0, 0], [11.5, 22.5, 33.5], [0, 0, 0]]
    with pytest.raises(IndexError, match="out of range"):
        task._scatter_add(w, np.array([4]), np.ones((1, 3), np.float32), native=native)
    with pytest.raises(IndexError, match="out of range"):
        task._scatter_add(w, np.array([-1]), np.ones((1, 3), np.float32), native=native)
    assert w[3].tolist() == [0, 0, 0]  # a rejected call changes nothing


@needs_native
def test_native_scatter_add_is_bit_identical_to_numpy():
    rng = np.random.default_rng(5)
    ids = rng.zipf(1.3, size=5000) % 900  # many repeats, as frequent words give
    rows = rng.normal(size=(5000, 100)).astype(np.float32) * np.float32(1e-2)
    start = rng.normal(size=(900, 100)).astype(np.float32)
    by_numpy, by_native = start.copy(), start.copy()
    task._scatter_add(by_numpy, ids, rows, native=False)
    task._scatter_add(by_native, ids, rows, native=True)
    assert np.array_equal(by_numpy, by_native)
    assert not np.array_equal(by_numpy, start)


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=pytest.mark.skipif(
    not compiled.available("row_differences"), reason="w2vspark_native was not built (no C compiler)"))])
def test_row_differences_are_the_touched_rows_deltas(native):
    """A task's deltas: a[ids] - b[ids], each row subtracted as it is (b read-only, as the parameters a task
    maps from the round's files are)."""
    rng = np.random.default_rng(8)
    a = rng.normal(size=(30, 7)).astype(np.float32)
    b = (a + rng.normal(size=(30, 7)).astype(np.float32) * np.float32(1e-3)).astype(np.float32)
    b.setflags(write=False)
    ids = np.array([5, 0, 29, 12], np.int32)
    got = task.row_differences(a, b, ids, native=native)
    assert got.dtype == np.float32 and got.shape == (4, 7)
    for i, r in enumerate(ids):
        assert np.array_equal(got[i], np.subtract(a[r], b[r], dtype=np.float32))
    assert task.row_differences(a, b, np.zeros(0, np.int32), native=native).shape == (0, 7)
    if native:
        with pytest.raises(IndexError, match="out of range"):
            task.row_differences(a, b, np.array([30]), native=True)


@needs_native
def test_native_segment_sum_is_bit_identical_to_numpy():
    rng = np.random.default_rng(6)
    w = rng.normal(size=(500, 100)).astype(np.float32)
    n = np.sort(rng.integers(1, 11, size=400))[::-1]  # context words per window, widest first
    contexts = np.full((400, 10), -1, np.int64)
    for g, k in enumerate(n):
        contexts[g, :k] = rng.zipf(1.3, size=k) % 500  # repeated rows inside a window too
    mask = contexts >= 0
    flat = contexts[mask]
    by_numpy = task._segment_sum(w, contexts, mask, flat, n, native=False)
    by_native = task._segment_sum(w, contexts, mask, flat, n, native=True)
    assert np.array_equal(by_numpy, by_native)
    assert np.allclose(by_numpy, [w[contexts[g, :k]].sum(axis=0) for g, k in enumerate(n)], atol=1e-5)


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_native)])
def test_windows_widest_first_by_hand(native):
    # sentences [10 11 12 13], [20], [30 31]; every window 2 wide (no shrinking): the one-word sentence has none
    ids, offsets = np.array([10, 11, 12, 13, 20, 30, 31], np.int32), np.array([0, 4, 5, 7])
    targets, contexts, counts = task.windows_by_width(ids, offsets, 2, np.random.default_rng(0), shrink=False,
                                                           native=native)
    assert targets.tolist() == [11, 12, 10, 13, 30, 31]  # 3, 3, 2, 2, 1, 1 contexts; position order among equals
    assert contexts.tolist() == [[10, 12, 13, -1], [10, 11, 13, -1], [11, 12, -1, -1], [11, 12, -1, -1],
                                 [31, -1, -1, -1], [30, -1, -1, -1]]
    assert counts.tolist() == [3, 3, 2, 2, 1, 1]


@needs_native
@pytest.mark.parametrize("window, shrink", [(1, True), (5, True), (5, False), (10_000, False)])
def test_native_windows_equal_numpys(window, shrink):
    rng = np.random.default_rng(window)
    lengths = rng.integers(0, 30, size=200)  # empty and one-word sentences included
    ids = rng.integers(0, 50, size=int(lengths.sum())).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    by_numpy = task.windows_by_width(ids, offsets, window, np.random.default_rng(1), shrink, native=False)
    by_native = task.windows_by_width(ids, offsets, window, np.random.default_rng(1), shrink, native=True)
    for a, b in zip(by_numpy, by_native):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert len(by_numpy[0]) > 1000
    empty = task.windows_by_width(np.zeros(0, np.int32), np.array([0]), window, np.random.default_rng(1),
                                       shrink, native=True)
    assert [len(a) for a in empty] == [0, 0, 0]


def _sentences(seed=0, n=300, V=30):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V, size=rng.integers(1, 25)).astype(np.int32) for _ in range(n)]


def test_gather_and_slice_pick_the_right_sentences():
    sents = _sentences()
    ids, offsets = pack(sents)
    got_ids, got_offsets = gather_sentences(ids, offsets, np.array([2, 5, 6]))
    assert np.array_equal(got_ids, np.concatenate([sents[2], sents[5], sents[6]]))
    # slicing across two input batches continues the row numbering
    batches = [pack(sents[:101]), pack(sents[101:])]
    sliced = list(take_slice(batches, 1, 3))
    flat = np.concatenate([b[0] for b in sliced])
    assert np.array_equal(flat, np.concatenate(sents[1::3]))


def test_rechunk_keeps_sentences_whole_and_in_order():
    sents = _sentences(1)
    batches = [pack(sents[i:i + 37]) for i in range(0, len(sents), 37)]
    chunks = list(rechunk(batches, chunk_words=200))
    assert all(c[1][-1] >= 200 for c in chunks[:-1])
    rebuilt = [ids[o[i]:o[i + 1]] for ids, o in chunks for i in range(len(o) - 1)]
    assert len(rebuilt) == len(sents) and all(np.array_equal(a, b) for a, b in zip(rebuilt, sents))


def _train(batches, seed=3, loss="neg_sampling", model="skipgram", tree=None):
    V, d = 30, 8
    rng = np.random.default_rng(0)
    w_in = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    w_out = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)  # non-zero, so w_in moves in one step
    counts = np.arange(V, 0, -1) * 10
    params = KernelParams(window=3, num_negatives=4, loss=loss, batch_pairs=64, model=model)
    return train_partition(batches, w_in, w_out, params, np.full(V, 0.9), NoiseSampler(counts),
                           np.random.default_rng(seed), 0.05, 0.01, 4000, tree), w_in


def test_result_does_not_depend_on_input_batching():
    sents = _sentences(2)
    one, _ = _train([pack(sents)])
    many, _ = _train([pack(sents[i:i + 7]) for i in range(0, len(sents), 7)])
    for field in ("in_ids", "in_delta", "out_ids", "out_delta"):
        assert np.array_equal(getattr(one, field), getattr(many, field)), field
    assert one.loss_sum == many.loss_sum and one.pairs == many.pairs > 0
    other_seed, _ = _train([pack(sents)], seed=4)
    assert not np.array_equal(one.in_delta, other_seed.in_delta)


@needs_native
@pytest.mark.parametrize("model,loss", [("skipgram", "neg_sampling"), ("skipgram", "hierarchical_softmax"),
                                        ("cbow", "neg_sampling"), ("cbow", "hierarchical_softmax")])
def test_training_with_the_compiled_step_matches_numpy(monkeypatch, model, loss):
    """The compiled step sums each row's steps before scaling them, numpy scales each occurrence then adds: the
    same arithmetic in another order. Over a whole partition (about 60 minibatches on 30 words, so rows are
    repeated and damped) the deltas agree to 1e-5 of their size, float32 rounding carried through 60 steps."""
    sents = _sentences(3)
    tree = None
    if loss == "hierarchical_softmax":
        from w2vspark.huffman import huffman_tree
        tree = huffman_tree(np.arange(30, 0, -1) * 10)
    native, _ = _train([pack(sents)], loss=loss, model=model, tree=tree)
    monkeypatch.setattr(compiled, "_module", None)
    plain, _ = _train([pack(sents)], loss=loss, model=model, tree=tree)
    for field in ("in_ids", "out_ids"):
        assert np.array_equal(getattr(native, field), getattr(plain, field)), field
    for field in ("in_delta", "out_delta"):
        got, expected = getattr(native, field), getattr(plain, field)
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), field
        assert np.abs(expected).max() > 0
    assert native.loss_sum == pytest.approx(plain.loss_sum, rel=1e-5)


def _float32_problem(seed, V=12, d=16, G=60, C=6, K=4, scale=1.0):
    """A minibatch on a few rows, so that rows repeat many times and the damping cuts some of them."""
    rng = np.random.default_rng(seed)
    w_in = (rng.normal(size=(V, d)) * scale).astype(np.float32)
    w_out = (rng.normal(size=(V, d)) * scale).astype(np.float32)
    contexts = rng.integers(0, V, size=(G, C))
    contexts[::3, C - 2:] = -1  # padded windows
    out_ids, labels = task.output_rows(rng.integers(0, V, size=G), rng.integers(0, V, size=(G, K)))
    return w_in, w_out, contexts, out_ids, labels


def _step(model, *args, **kwargs):
    """skip-gram, or CBOW with the mean ("cbow") or the sum ("cbow_sum") of the context rows"""
    if model == "skipgram":
        return task.skipgram_step(*args, **kwargs)
    return task.cbow_step(*args[:6], model == "cbow", *args[6:], **kwargs)


@needs_native
@pytest.mark.parametrize("model", ["skipgram", "cbow", "cbow_sum"])
@pytest.mark.parametrize("damping,lr,d", [(False, 0.01, 16), (False, 0.5, 16), (True, 0.01, 16), (True, 0.5, 16),
                                          (True, 0.5, 3), (True, 0.5, 37), (True, 0.5, 100)])
def test_compiled_step_matches_the_numpy_step(model, damping, lr, d):
    """d 16 is two runs of 8 floats; the compiled step also works 32 (100 = 3 x 32 + 4), 8, 4 and 1 float at a
    time (37 = 32 + 4 + 1; 3 only singly): each of those paths is checked against numpy."""
    w_in, w_out, contexts, out_ids, labels = _float32_problem(7, d=d)
    contexts = np.take_along_axis(contexts, np.argsort(contexts < 0, axis=1, kind="stable"), axis=1)  # as by_width
    results = {}
    for native in (False, True):
        a, b = w_in.copy(), w_out.copy()
        loss = _step(model, a, b, contexts, out_ids, labels, np.float32(lr), True, damping, native=native)
        results[native] = (a - w_in, b - w_out, loss)
    # numpy adds a row's ~30 occurrence steps to the row one by one, each rounded to half a unit in the last
    # place of the parameter; the compiled step adds their sum once: 64 units of the largest parameter bound it
    tol = 64 * np.finfo(np.float32).eps * max(np.abs(w_in).max(), np.abs(w_out).max())
    for got, expected in zip(results[True][:2], results[False][:2]):
        assert np.abs(got - expected).max() <= tol < 1e-3 * np.abs(expected).max()
    assert results[True][2] == pytest.approx(results[False][2], rel=1e-5)
    if damping and lr == 0.5:  # the case exercises the rows the damping cuts (measured along their step)
        plain_out = w_out.copy()
        _step(model, w_in.copy(), plain_out, contexts, out_ids, labels, np.float32(lr), False, False)
        assert np.abs(results[True][1]).max() < 0.5 * np.abs(plain_out - w_out).max()


@needs_native
def test_compiled_step_scores_extreme_and_tiny_scores_like_float64():
    """One context row against eleven output rows scored from -100 to 100 (past float32's exp range both ways)
    and near 0: each output row's plain step, lr (label - s(z)) times the context row, is s computed in float64
    to float32 precision (the compiled step's own exp flushes exp(-|z|) below 4.5e-38 to 0)."""
    d = 8
    scores = np.array([-100.0, -90.0, -87.5, -50.0, -3.0, -1e-4, 0.0, 1e-4, 3.0, 50.0, 100.0])
    v = np.full(d, 10.0, dtype=np.float32)  # long, so that the steps are not small against the output rows
    w_in = v[None, :].copy()
    w_out = (scores[:, None] / (10.0 * d) * np.ones((1, d))).astype(np.float32)  # u . v = score
    contexts = np.zeros((1, 1), dtype=np.int64)
    out_ids = np.arange(len(scores))[None, :]
    for label in (0.0, 1.0):
        labels = np.full((1, len(scores)), label, dtype=np.float32)
        got = w_out.copy()
        task.skipgram_step(w_in.copy(), got, contexts, out_ids, labels, np.float32(0.1), False, False, native=True)
        z = (w_out.astype(np.float64) @ v.astype(np.float64))  # (11,) the float32 rows' exact scores
        expected = 0.1 * (label - 1.0 / (1.0 + np.exp(-z)))[:, None] * v.astype(np.float64)  # (11, d)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got - w_out, expected, rtol=1e-5, atol=1e-9)


@needs_native
@pytest.mark.parametrize("native", [False, True])
def test_a_row_the_trace_bound_cuts_keeps_its_plain_step_when_flat_along_it(native):
    """Context row 0 is in each of 200 windows against 5 of 400 output rows pointing every way: the trace bound
    sum c(z) |u|^2 cuts it (lr times it is about 3, computed here from the reference bound), but along its summed
    step the loss is far flatter (lr h <= 1), so its damped step is its plain SGD step, by numpy and by the
    compiled step, which stops measuring such a row once its products left unmeasured cannot reach 1 / lr."""
    rng = np.random.default_rng(3)
    G, d, V_out = 200, 32, 400
    w_in = (rng.normal(size=(50, d)) * 0.3).astype(np.float32)
    w_out = (rng.normal(size=(V_out, d)) * 0.3).astype(np.float32)
    contexts = np.stack([np.zeros(G, dtype=np.int64), rng.integers(1, 50, size=G)], axis=1)  # (G, 2)
    out_ids, labels = task.output_rows(rng.integers(0, V_out, size=G), rng.integers(0, V_out, size=(G, 4)))
    u = w_out[out_ids]  # (G, 5, d) row 0's partners
    z = u @ w_in[0]  # (G, 5)
    trace = float((logistic_curvature_bound(z.astype(np.float64)) * (u.astype(np.float64) ** 2).sum(axis=2)).sum())
    lr = np.float32(3.0 / trace)
    steps = {}
    for damping in (False, True):
        a, b = w_in.copy(), w_out.copy()
        task.skipgram_step(a, b, contexts, out_ids, labels, lr, False, damping, native=native)
        steps[damping] = a[0] - w_in[0]
    assert np.abs(steps[False]).max() > 0
    np.testing.assert_allclose(steps[True], steps[False], rtol=0, atol=1e-6 * np.abs(steps[False]).max())


@needs_native
@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("row", ["context", "output"])
def test_a_cbow_row_the_trace_bound_cuts_keeps_its_plain_step_when_flat_along_it(row, native):
    """CBOW: context row 0 (row "context": beside one other context in each of 200 windows scored against 5 of
    400 output rows) or output row 0 (row "output": the first negative of each of 200 windows of two contexts
    out of 400 rows) meets partners pointing every way. The trace bound (context: sum c(z) |u|^2 / n over its
    windows' outputs; output: sum c(z) |h|^2 over its windows), computed here from the reference bound, cuts
    it (lr times it is 3), but along its summed step the loss is far flatter (lr h <= 1), so its damped step is
    its plain step, by numpy and by the compiled step, which stops measuring such a row early."""
    rng = np.random.default_rng(4)
    G, d, V = 200, 32, 400
    w_in = (rng.normal(size=(V, d)) * 0.3).astype(np.float32)
    w_out = (rng.normal(size=(V, d)) * 0.3).astype(np.float32)
    first = np.zeros(G, dtype=np.int64) if row == "context" else rng.integers(1, V, size=G)
    contexts = np.stack([first, rng.integers(1, V, size=G)], axis=1)  # (G, 2)
    negatives = rng.integers(1, V, size=(G, 4))
    if row == "output":
        negatives[:, 0] = 0
    out_ids, labels = task.output_rows(rng.integers(1, V, size=G), negatives)
    h = w_in[contexts].astype(np.float64).mean(axis=1)  # (G, d) each window's mean context vector
    u = w_out[out_ids].astype(np.float64)  # (G, 5, d)
    curv = logistic_curvature_bound(np.einsum("gkd,gd->gk", u, h))  # (G, 5)
    if row == "context":
        trace = float((curv * (u ** 2).sum(axis=2)).sum() / 2)
    else:
        trace = float((curv * (out_ids == 0) * (h ** 2).sum(axis=1)[:, None]).sum())
    lr = np.float32(3.0 / trace)
    steps = {}
    for damping in (False, True):
        a, b = w_in.copy(), w_out.copy()
        task.cbow_step(a, b, contexts, out_ids, labels, lr, True, False, damping, native=native)
        steps[damping] = a[0] - w_in[0] if row == "context" else b[0] - w_out[0]
    assert np.abs(steps[False]).max() > 0
    np.testing.assert_allclose(steps[True], steps[False], rtol=0, atol=1e-6 * np.abs(steps[False]).max())


@needs_native
@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_both_steps_mark_the_rows_they_move(model):
    """rows 12-31 of both matrices appear nowhere in the minibatch: they stay unmarked (and unmoved); the others
    are marked exactly when a valid context or output uses them"""
    w_in, w_out, contexts, out_ids, labels = _float32_problem(5, G=8, C=3, K=2)
    contexts[1, 1:] = -1
    contexts = np.take_along_axis(contexts, np.argsort(contexts < 0, axis=1, kind="stable"), axis=1)
    w_in, w_out = (np.concatenate([w, np.ones((20, w.shape[1]), np.float32)]) for w in (w_in, w_out))
    marks = {}
    for native in (False, True):
        a, b = w_in.copy(), w_out.copy()
        marks[native] = (np.zeros(len(a), dtype=bool), np.zeros(len(b), dtype=bool))
        _step(model, a, b, contexts, out_ids, labels, np.float32(0.1), True, True, native=native,
              touched=marks[native])
        assert np.array_equal(a[12:], w_in[12:]) and np.array_equal(b[12:], w_out[12:])
    for marked, ids in zip(marks[True], (contexts, out_ids)):
        assert set(np.flatnonzero(marked)) == {int(i) for i in ids.reshape(-1) if i >= 0}
        assert 0 < marked.sum() < 12
    assert all(np.array_equal(x, y) for x, y in zip(marks[True], marks[False]))
    with pytest.raises(ValueError, match="touched marks"):
        _step(model, w_in.copy(), w_out.copy(), contexts, out_ids, labels, np.float32(0.1), native=True,
              touched=(np.zeros(len(w_in), np.uint8), marks[True][1]))


@needs_native
def test_compiled_hs_step_matches_the_numpy_step_with_padded_paths():
    w_in, w_out, targets, contexts, _, tree = _tree_problem()
    w_in, w_out = w_in.astype(np.float32), w_out.astype(np.float32)
    out_ids, labels = task.output_rows(targets, tree=tree)
    assert (out_ids < 0).any() and labels.shape == out_ids.shape
    results = []
    for native in (False, True):
        a, b = w_in.copy(), w_out.copy()
        loss = task.skipgram_step(a, b, contexts, out_ids, labels, np.float32(2.0), True, True, native=native)
        results.append((a, b, loss))
    assert np.allclose(results[0][0], results[1][0], rtol=0, atol=1e-6)
    assert np.allclose(results[0][1], results[1][1], rtol=0, atol=1e-6)
    assert results[0][2] == pytest.approx(results[1][2], rel=1e-6)
    assert np.array_equal(results[1][1][tree.num_inner:], w_out[tree.num_inner:])  # the spare row is untouched


@needs_native
def test_compiled_step_is_not_misled_by_stale_scratch():
    """The row -> slot scratch is left at -1; if it is not (an interrupted call), the result is still the same."""
    w_in, w_out, contexts, out_ids, labels = _float32_problem(8)
    clean_in, clean_out = w_in.copy(), w_out.copy()
    task.skipgram_step(clean_in, clean_out, contexts, out_ids, labels, np.float32(0.3), native=True)
    assert (task._slots("in", len(w_in)) == -1).all() and (task._slots("out", len(w_out)) == -1).all()
    rng = np.random.default_rng(1)
    task._slots("in", len(w_in))[:] = rng.integers(0, 50, size=len(w_in))
    task._slots("out", len(w_out))[:] = rng.integers(0, 50, size=len(w_out))
    got_in, got_out = w_in.copy(), w_out.copy()
    task.skipgram_step(got_in, got_out, contexts, out_ids, labels, np.float32(0.3), native=True)
    assert np.array_equal(got_in, clean_in) and np.array_equal(got_out, clean_out)


@needs_native
def test_compiled_step_rejects_bad_input_and_changes_nothing():
    w_in, w_out, contexts, out_ids, labels = _float32_problem(9)
    before = w_in.copy(), w_out.copy()
    bad = contexts.copy()
    bad[0, 0] = len(w_in)
    with pytest.raises(IndexError, match="context row 12 out of range"):
        task.skipgram_step(w_in, w_out, bad, out_ids, labels, np.float32(0.1), native=True)
    bad = out_ids.copy()
    bad[1, 1] = -2
    with pytest.raises(IndexError, match="output row -2 out of range"):
        task.skipgram_step(w_in, w_out, contexts, bad, labels, np.float32(0.1), native=True)
    G, C = contexts.shape
    slots = np.full(len(w_in), -1, np.int32)
    marks = (np.zeros(len(w_in), bool), np.zeros(len(w_out), bool))

    def step(ctx, slot_out, model=0, marks=marks):
        minibatch_step = compiled.helper("minibatch_step", True)
        return minibatch_step(w_in, w_out, ctx, out_ids.astype(np.int64), labels, slots, slot_out, *marks, G, C,
                              out_ids.shape[1], 1, w_in.shape[1], 0.1, model, True, True)

    with pytest.raises(ValueError, match="two arrays"):
        step(contexts.astype(np.int64), slots)
    with pytest.raises(ValueError, match="shapes or dtypes"):
        step(contexts.astype(np.int32), slots.copy())
    with pytest.raises(ValueError, match="shapes or dtypes"):  # no model 3
        step(contexts.astype(np.int64), slots.copy(), model=3)
    with pytest.raises(ValueError, match="shapes or dtypes"):  # a mark per row
        step(contexts.astype(np.int64), slots.copy(), marks=(marks[0][1:], marks[1]))
    assert not marks[0].any() and not marks[1].any()
    assert np.array_equal(w_in, before[0]) and np.array_equal(w_out, before[1])


@pytest.mark.parametrize("loss", ["neg_sampling", "naive_softmax"])
def test_deltas_cover_exactly_the_touched_rows(loss):
    sents = [np.array([1, 2, 3, 4], np.int32), np.array([5, 6], np.int32)]
    res, w_in = _train([pack(sents)], loss=loss)
    assert res.in_ids.tolist() == [1, 2, 3, 4, 5, 6]
    assert res.in_delta.shape == (6, 8) and res.in_delta.dtype == np.float32
    assert np.all(np.abs(res.in_delta).sum(axis=1) > 0)
    assert res.words == 6 and res.pairs > 0
    if loss == "naive_softmax":
        assert len(res.out_ids) == 30


def _planted_corpus(classes=4, per_class=8, sentences=1500, length=12, seed=0):
    """Sentences whose words all come from one class: words of a class share their contexts."""
    rng = np.random.default_rng(seed)
    # letters only, so that the text tokenizer keeps each word whole; a word's first two letters are its class
    words = [f"{chr(97 + c) * 2}{chr(97 + i)}" for c in range(classes) for i in range(per_class)]
    lines = []
    for _ in range(sentences):
        c = rng.integers(classes)
        lines.append([words[c * per_class + i] for i in rng.integers(0, per_class, size=length)])
    return words, lines


def planted_class_accuracy(model, words, topn=5):
    hits = total = 0
    for w in words:
        for other, _ in model.most_similar(w, topn):
            hits += other[:2] == w[:2]
            total += 1
    return hits / total


@pytest.mark.parametrize("partitions", [1, 4])
def test_planted_classes_are_recovered(partitions):
    words, lines = _planted_corpus()
    from collections import Counter
    vocab = Vocabulary.from_counts(Counter(t for s in lines for t in s), min_count=1)
    sents = [vocab.encode(s) for s in lines]
    cfg = load_config(None, ["train.dim=16", "train.epochs=3", "train.sample=0", "train.window=3",
                             f"train.num_partitions={partitions}", "train.syncs_per_epoch=2", "train.lr=0.05",
                             "train.batch_pairs=128"])  # 32 words: a large minibatch would sum ~100 updates per row
    model = train_local(cfg, split_round_robin(sents, partitions), vocab)
    # chance level is 7/31 = 0.23: a trained model must put most neighbours in the word's own class
    assert planted_class_accuracy(model, words) > 0.9


def _tree_problem(seed=2, V=8):
    from w2vspark.huffman import huffman_tree
    w_in, w_out, targets, contexts, negatives = _problem(seed, V=V)
    tree = huffman_tree(np.random.default_rng(seed).integers(1, 50, size=V))
    contexts = np.take_along_axis(contexts, np.argsort(contexts < 0, axis=1, kind="stable"), axis=1)  # as by_width
    return w_in, w_out, targets, contexts, negatives, tree


def test_hierarchical_softmax_kernel_is_minibatch_sgd_on_the_reference_loss():
    from w2vspark.losses import hierarchical_softmax_loss_and_gradient
    w_in, w_out, targets, contexts, _, tree = _tree_problem()
    lr = 0.1
    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        for c in contexts[g][contexts[g] >= 0]:
            loss, grad_center, grad_nodes = hierarchical_softmax_loss_and_gradient(w_in[c], targets[g], w_out, tree)
            exp_loss += loss
            exp_in[c] -= lr * grad_center
            exp_out -= lr * grad_nodes
    got_in, got_out = w_in.copy(), w_out.copy()
    out_ids, labels = task.output_rows(targets, tree=tree)
    assert (out_ids < 0).any()  # paths of different lengths: padding is exercised
    got_loss = task.skipgram_step(got_in, got_out, contexts, out_ids, labels, lr, damping=False)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)
    assert np.array_equal(got_out[tree.num_inner:], w_out[tree.num_inner:])  # the spare row stays as it was


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("loss_name", ["neg_sampling", "hierarchical_softmax", "naive_softmax"])
def test_cbow_kernel_is_minibatch_sgd_with_the_word2vec_context_step(loss_name, mean):
    """Output rows take the exact SGD step; each context vector of window g takes n_g x its exact gradient for
    the mean (h's own step, as word2vec.c) and 1 / n_g x for the sum (gensim's cbow_mean=0)."""
    from w2vspark.losses import cbow, hierarchical_softmax_loss_and_gradient
    w_in, w_out, targets, contexts, negatives, tree = _tree_problem(3)
    fn = {"neg_sampling": neg_sampling_loss_and_gradient, "naive_softmax": naive_softmax_loss_and_gradient,
          "hierarchical_softmax": hierarchical_softmax_loss_and_gradient}[loss_name]
    lr = 0.1
    exp_in, exp_out, exp_loss = w_in.copy(), w_out.copy(), 0.0
    for g in range(len(targets)):
        ctx = contexts[g][contexts[g] >= 0]
        extra = {"neg_sampling": (negatives[g],), "hierarchical_softmax": (tree,)}.get(loss_name, ())
        loss, grad_in, grad_out = cbow(targets[g], ctx, w_in, w_out, fn, extra, mean)
        exp_loss += loss
        exp_in -= lr * (len(ctx) if mean else 1.0 / len(ctx)) * grad_in
        exp_out -= lr * grad_out
    got_in, got_out = w_in.copy(), w_out.copy()
    if loss_name == "naive_softmax":
        got_loss = naive_softmax_step(got_in, got_out, targets, contexts, lr, "cbow", mean)
    else:
        out_ids, labels = task.output_rows(targets, negatives if loss_name == "neg_sampling" else None,
                                                tree if loss_name == "hierarchical_softmax" else None)
        got_loss = task.cbow_step(got_in, got_out, contexts, out_ids, labels, lr, mean, damping=False)
    assert got_loss == pytest.approx(exp_loss, rel=1e-12)
    assert np.allclose(got_in, exp_in, atol=1e-12) and np.allclose(got_out, exp_out, atol=1e-12)


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_damped_hs_and_cbow_steps_stop_at_the_quadratic_minimum(model):
    """A row repeated in every window of a minibatch at a learning rate far too large: plain minibatch SGD
    multiplies its length many times over, the damped step keeps it within a small factor."""
    rng = np.random.default_rng(0)
    V, d, G = 6, 4, 200
    from w2vspark.huffman import huffman_tree
    tree = huffman_tree(np.array([50, 20, 10, 5, 3, 1]))
    w_in, w_out = rng.normal(size=(V, d)).astype(np.float32), rng.normal(size=(V, d)).astype(np.float32)
    targets = rng.integers(0, V, size=G)
    contexts = np.stack([np.zeros(G, int), rng.integers(0, V, size=G)], axis=1)  # word 0 in every window
    out_ids, labels = task.output_rows(targets, tree=tree)
    norms = {}
    for damping in (False, True):
        a, b = w_in.copy(), w_out.copy()
        if model == "cbow":
            task.cbow_step(a, b, contexts, out_ids, labels, np.float32(2.0), True, False, damping)
        else:
            task.skipgram_step(a, b, contexts, out_ids, labels, np.float32(2.0), False, damping)
        norms[damping] = np.linalg.norm(a[0]) / np.linalg.norm(w_in[0]), np.linalg.norm(b[0]) / np.linalg.norm(w_out[0])
    assert max(norms[False]) > 20  # the overshoot the damping exists for
    assert max(norms[True]) < 5


@pytest.mark.parametrize("model,loss", [("cbow", "neg_sampling"), ("skipgram", "hierarchical_softmax"),
                                        ("cbow", "hierarchical_softmax")])
@pytest.mark.parametrize("partitions", [1, 4])
def test_planted_classes_are_recovered_by_every_architecture(model, loss, partitions):
    words, lines = _planted_corpus()
    from collections import Counter
    vocab = Vocabulary.from_counts(Counter(t for s in lines for t in s), min_count=1)
    sents = [vocab.encode(s) for s in lines]
    cfg = load_config(None, ["train.dim=16", "train.epochs=3", "train.sample=0", "train.window=3",
                             f"train.num_partitions={partitions}", "train.syncs_per_epoch=2", "train.lr=0.05",
                             "train.batch_pairs=128", f"train.model={model}", f"train.loss={loss}"])
    model_ = train_local(cfg, split_round_robin(sents, partitions), vocab)
    assert planted_class_accuracy(model_, words) > 0.9  # chance 7/31 = 0.23, as above


def _row_losses(w_in, w_out, contexts, out_ids, labels):
    """Loop form: every row's own loss (the sum of its pairs' logistic losses) -> (V_in,), (V_out,)."""
    lin, lout = np.zeros(len(w_in)), np.zeros(len(w_out))
    for g in range(len(contexts)):
        for c in contexts[g]:
            for o, label in zip(out_ids[g], labels[min(g, len(labels) - 1)]):
                if c < 0 or o < 0:
                    continue
                z = float(w_in[c] @ w_out[o]) * (1.0 if label == 1 else -1.0)
                pair = np.logaddexp(0.0, -z)
                lin[c] += pair
                lout[o] += pair
    return lin, lout


@pytest.mark.parametrize("loss", ["neg_sampling", "hierarchical_softmax"])
def test_damped_step_never_raises_a_rows_own_loss(loss):
    """Whatever the scores (saturated wrong ones included), each row's damped step, taken with the other
    matrix held where it was, lowers that row's own loss: the step is sized by a quadratic that lies above the
    loss (:func:`w2vspark.losses.logistic_curvature_bound`). Sized by the curvature at the current scores,
    s (1 - s), it is not: a word scored +10 against its negatives has s (1 - s) = 4.5e-5 and its summed step
    runs far past the minimum (a topic word moved 20 x its length in one minibatch of 150 sentences of 1,000
    tokens at 8 partitions, and training diverged). The plain step, at this learning rate, raises many rows'
    losses (the test's control)."""
    from w2vspark.huffman import huffman_tree
    rng = np.random.default_rng(7)
    V, d, G, C, K = 12, 6, 300, 4, 4
    w_in = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)  # scores of +-10 and more: saturated pairs
    w_out = (rng.normal(size=(V, d)) * 1.5).astype(np.float32)
    targets = rng.integers(0, V, size=G)
    contexts = rng.integers(0, V, size=(G, C))
    contexts[::5, 2:] = -1
    if loss == "neg_sampling":
        out_ids, labels = task.output_rows(targets, rng.integers(0, V, size=(G, K)))
    else:
        out_ids, labels = task.output_rows(targets, tree=huffman_tree(rng.integers(1, 100, size=V)))
    before_in, before_out = _row_losses(w_in, w_out, contexts, out_ids, labels)
    raised = {}
    for damping in (False, True):
        a, b = w_in.copy(), w_out.copy()
        task.skipgram_step(a, b, contexts, out_ids, labels, np.float32(0.5), False, damping)
        after_in = _row_losses(a, w_out, contexts, out_ids, labels)[0]  # w_in's steps, w_out held
        after_out = _row_losses(w_in, b, contexts, out_ids, labels)[1]  # w_out's steps, w_in held
        raised[damping] = int((after_in > before_in * (1 + 1e-5) + 1e-5).sum()
                              + (after_out > before_out * (1 + 1e-5) + 1e-5).sum())
        if damping:
            assert (after_in < before_in).sum() + (after_out < before_out).sum() >= V  # and rows do learn
    assert raised[False] >= 3 and raised[True] == 0, raised


def test_damping_stops_the_step_of_a_row_scored_high_against_its_negatives():
    """Word 0 in 100 windows, target 1 and negative 2 with nearly the same output vector, both scored +5: the
    negatives' gradients (s = 0.993 each) add up while s (1 - s) = 0.0066 says the loss is flat. The row's own
    loss, with w_out held, must go down, and the step must stay within the bound's trust region."""
    w_in = np.array([[5.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    w_out = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.1]])
    targets, contexts = np.ones(100, np.int64), np.zeros((100, 1), np.int64)
    out_ids, labels = task.output_rows(targets, np.full((100, 1), 2))
    lr = 0.5
    row_loss = lambda v: 100 * (np.logaddexp(0, -v @ w_out[1]) + np.logaddexp(0, v @ w_out[2]))  # noqa: E731
    plain, damped = w_in.copy(), w_in.copy()
    task.skipgram_step(plain, w_out.copy(), contexts, out_ids, labels, lr, False, damping=False)
    task.skipgram_step(damped, w_out.copy(), contexts, out_ids, labels, lr, False, damping=True)
    # the plain step: 100 x 0.5 x (0.0067 (1, 0) - 0.993 (1, 0.1)) = (-49.3, -5.0), far past the minimum
    assert plain[0] == pytest.approx([5 - 49.33, -4.97], abs=0.01)
    assert row_loss(plain[0]) > 5 * row_loss(w_in[0])
    # with the bound along the step e = (-49.33, -4.97) / |.|: H = 100 x c(5) x ((u1 . e)^2 + (u2 . e)^2)
    # = 100 x 0.0987 x (0.990 + 1.010) = 19.7 -> step / (0.5 x 19.7)
    e = (plain[0] - w_in[0]) / np.linalg.norm(plain[0] - w_in[0])
    H = 100 * np.tanh(2.5) / 10 * ((w_out[1] @ e) ** 2 + (w_out[2] @ e) ** 2)
    assert damped[0] == pytest.approx(w_in[0] + (plain[0] - w_in[0]) / (lr * H), rel=1e-6)
    assert row_loss(damped[0]) < 0.5 * row_loss(w_in[0])
