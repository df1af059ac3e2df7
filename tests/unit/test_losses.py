"""The math core against the published CS224n assignment 2 values, gradient checks and analytic anchors."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from w2vspark.gradcheck import gradcheck
from w2vspark.losses import (log_sigmoid, logistic_curvature_bound, naive_softmax_loss_and_gradient,
                             naive_softmax_loss_and_gradient_batch,
                             neg_sampling_loss_and_gradient, neg_sampling_loss_and_gradient_batch, sigmoid,
                             sigmoid_grad, skipgram)

REF = json.loads((Path(__file__).parents[1] / "data" / "cs224n_a2_expected.json").read_text())
LOSS_FNS = {"naive_softmax": naive_softmax_loss_and_gradient, "neg_sampling": neg_sampling_loss_and_gradient}


def _reference_case(case):
    vectors = np.array(REF["vectors"])
    center_vectors, outside_vectors = vectors[:5].copy(), vectors[5:].copy()
    tok = REF["tokens"]
    outside_ids = [tok[w] for w in case["outside"]]
    negatives = None
    if case["loss"] == "neg_sampling":
        # each entry is [outside index, K negatives]; the outside index must match the window's word
        assert [n[0] for n in case["negatives"]] == outside_ids
        negatives = [n[1] for n in case["negatives"]]
    return tok[case["center"]], outside_ids, center_vectors, outside_vectors, negatives


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['loss']}-{c['center']}")
def test_skipgram_matches_published_values(case):
    center_idx, outside_ids, center_vectors, outside_vectors, negatives = _reference_case(case)
    loss, grad_center, grad_outside = skipgram(center_idx, outside_ids, center_vectors, outside_vectors,
                                               LOSS_FNS[case["loss"]], negatives)
    assert loss == pytest.approx(case["expect_loss"], rel=1e-12)
    expected_center = np.zeros_like(center_vectors)
    expected_center[center_idx] = case["center_row"]
    assert np.allclose(grad_center, expected_center)
    assert np.allclose(grad_outside, np.array(case["outside_grad"]))
    assert grad_center.shape == center_vectors.shape and grad_outside.shape == outside_vectors.shape


def test_sigmoid_published_values():
    x = np.array(REF["sigmoid"]["x"], dtype=float)
    assert np.allclose(sigmoid(x), REF["sigmoid"]["y"])
    assert sigmoid(0.0) == 0.5 and isinstance(sigmoid(1.0), float)
    assert sigmoid_grad(0.0) == pytest.approx(0.25)


def test_sigmoid_grad_is_derivative():
    x = np.linspace(-8, 8, 33)
    h = 1e-6
    numeric = (sigmoid(x + h) - sigmoid(x - h)) / (2 * h)
    assert np.allclose(sigmoid_grad(x), numeric, atol=1e-8)


def test_logistic_curvature_bound_is_the_tightest_quadratic_above_the_loss():
    """Jaakkola & Jordan: with c = c(z0), q(z) = f(z0) + f'(z0)(z - z0) + c/2 (z - z0)^2 lies above
    f(z) = -log s(z) for every z and touches it again at z = -z0, so no smaller curvature keeps it above."""
    f = lambda z: np.logaddexp(0.0, -z)  # noqa: E731
    z = np.linspace(-40, 40, 2001)
    for z0 in (-30.0, -6.0, -1.0, -1e-5, 0.0, 0.3, 2.0, 9.0):
        c = logistic_curvature_bound(z0)
        q = f(z0) - sigmoid(-z0) * (z - z0) + c / 2 * (z - z0) ** 2
        assert (q - f(z) >= -1e-9).all(), z0
        touch = f(z0) - sigmoid(-z0) * (-2 * z0) + c / 2 * (2 * z0) ** 2
        assert touch == pytest.approx(f(-z0), rel=1e-9, abs=1e-12), z0
        if z0 != 0:  # any smaller curvature dips below the loss at -z0
            assert touch - c / 20 * (2 * z0) ** 2 < f(-z0)
    # closed form tanh(z / 2) / (2 z); even in z; at least the curvature at z itself; float32 stays finite
    z = np.array([-50.0, -10.0, -2.0, -1e-4, 0.0, 1e-4, 0.5, 10.0, 50.0])
    expected = np.where(z == 0, 0.25, np.tanh(z / 2) / (2 * np.where(z == 0, 1, z)))
    assert logistic_curvature_bound(z) == pytest.approx(expected, rel=1e-9)
    assert logistic_curvature_bound(10.0) == pytest.approx(0.04999546, rel=1e-6)  # tanh(5) / 20; s(1 - s) = 4.5e-5
    assert (logistic_curvature_bound(z) >= sigmoid_grad(z) - 1e-15).all()
    z32 = z.astype(np.float32)
    assert logistic_curvature_bound(z32) == pytest.approx(expected, rel=1e-5)
    assert logistic_curvature_bound(z32).dtype == np.float32


def test_stable_at_large_scores():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow warning fails the test
        x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
        s = sigmoid(x)
        assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0
        assert np.all(np.isfinite(log_sigmoid(x))) and log_sigmoid(-1000.0) == pytest.approx(-1000.0)
        assert np.all(np.isfinite(sigmoid(x.astype(np.float32))))
        center = np.array([1000.0, 0.0])
        outside = np.array([[1.0, 0.0], [-1.0, 0.0], [0.5, 0.0]])
        for fn, extra in ((naive_softmax_loss_and_gradient, ()), (neg_sampling_loss_and_gradient, ([1, 2, 0],))):
            for o in range(3):
                loss, gc, go = fn(center, o, outside, *extra)
                assert np.isfinite(loss) and np.all(np.isfinite(gc)) and np.all(np.isfinite(go))
        # the worst case of naive softmax: the true word has the lowest score by 2000
        assert naive_softmax_loss_and_gradient(center, 1, outside)[0] == pytest.approx(2000.0)


def test_analytic_anchors():
    V, d, K = 7, 4, 5
    zeros_c, zeros_o = np.zeros(d), np.zeros((V, d))
    assert naive_softmax_loss_and_gradient(zeros_c, 3, zeros_o)[0] == pytest.approx(np.log(V), rel=1e-14)
    assert neg_sampling_loss_and_gradient(zeros_c, 3, zeros_o, [1, 2, 2, 5, 6])[0] == pytest.approx(
        (K + 1) * np.log(2), rel=1e-14)


def _random_problem(seed, V=6, d=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(V, d)), rng.normal(size=(V, d)), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck_naive_softmax(seed):
    center_vectors, outside_vectors, _ = _random_problem(seed)
    v = center_vectors[2].copy()
    gradcheck(lambda x: naive_softmax_loss_and_gradient(x, 4, outside_vectors)[:2], v)
    gradcheck(lambda x: (naive_softmax_loss_and_gradient(v, 4, x)[0], naive_softmax_loss_and_gradient(v, 4, x)[2]),
              outside_vectors)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck_neg_sampling_with_repeats(seed):
    center_vectors, outside_vectors, _ = _random_problem(seed)
    v = center_vectors[1].copy()
    negatives = [3, 3, 0, 5, 3, 1]  # repeats, and outside word 1 also drawn as a negative
    gradcheck(lambda x: neg_sampling_loss_and_gradient(x, 1, outside_vectors, negatives)[:2], v)

    def wrt_outside(x):
        loss, _, grad = neg_sampling_loss_and_gradient(v, 1, x, negatives)
        return loss, grad
    gradcheck(wrt_outside, outside_vectors)


@pytest.mark.parametrize("loss_name", ["naive_softmax", "neg_sampling"])
def test_gradcheck_skipgram_outside_equal_center(loss_name):
    center_vectors, outside_vectors, rng = _random_problem(7)
    outside_ids = [2, 0, 2, 5]  # the center word 2 is also an outside word
    negatives = rng.integers(0, 6, size=(4, 5)).tolist() if loss_name == "neg_sampling" else None
    fn = LOSS_FNS[loss_name]
    gradcheck(lambda x: skipgram(2, outside_ids, x, outside_vectors, fn, negatives)[:2], center_vectors)
    gradcheck(lambda x: (lambda r: (r[0], r[2]))(skipgram(2, outside_ids, center_vectors, x, fn, negatives)),
              outside_vectors)


def test_repeated_negative_counts_once_per_occurrence():
    center_vectors, outside_vectors, _ = _random_problem(3)
    v = center_vectors[0]
    _, _, once = neg_sampling_loss_and_gradient(v, 1, outside_vectors, [4])
    _, _, twice = neg_sampling_loss_and_gradient(v, 1, outside_vectors, [4, 4])
    expected_row = sigmoid(outside_vectors[4] @ v) * v
    assert np.allclose(once[4], expected_row)
    assert np.allclose(twice[4], 2 * expected_row)


def test_batch_forms_agree_with_single_example():
    rng = np.random.default_rng(11)
    V, d, B, K = 9, 5, 7, 4
    centers = rng.normal(size=(B, d))
    outside_vectors = rng.normal(size=(V, d))
    outside_ids = rng.integers(0, V, size=B)
    negatives = rng.integers(0, V, size=(B, K))
    negatives[0, :2] = outside_ids[0]  # repeats and collisions with the outside word
    for batch_fn, single_fn, extra in (
            (naive_softmax_loss_and_gradient_batch, naive_softmax_loss_and_gradient, [()] * B),
            (neg_sampling_loss_and_gradient_batch, neg_sampling_loss_and_gradient, [(n,) for n in negatives])):
        args = (negatives,) if batch_fn is neg_sampling_loss_and_gradient_batch else ()
        mean_loss, grad_centers, (row_ids, grad_rows) = batch_fn(centers, outside_ids, outside_vectors, *args)
        singles = [single_fn(centers[b], outside_ids[b], outside_vectors, *extra[b]) for b in range(B)]
        assert mean_loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
        assert np.allclose(grad_centers, np.stack([s[1] for s in singles]) / B)
        dense = np.zeros((V, d))
        dense[row_ids] = grad_rows
        assert np.allclose(dense, sum(s[2] for s in singles) / B)
        assert len(np.unique(row_ids)) == len(row_ids)


def test_gradcheck_batch_neg_sampling():
    rng = np.random.default_rng(5)
    V, d, B, K = 6, 3, 4, 3
    centers = rng.normal(size=(B, d))
    outside_vectors = rng.normal(size=(V, d))
    outside_ids = rng.integers(0, V, size=B)
    negatives = rng.integers(0, V, size=(B, K))

    def wrt_outside(x):
        loss, _, (ids, rows) = neg_sampling_loss_and_gradient_batch(centers, outside_ids, x, negatives)
        dense = np.zeros_like(x)
        dense[ids] = rows
        return loss, dense
    gradcheck(wrt_outside, outside_vectors)
    gradcheck(lambda x: neg_sampling_loss_and_gradient_batch(x, outside_ids, outside_vectors, negatives)[:2],
              centers)
