"""``train.skip_saturated``: products whose score |z| reaches 6 take no step (gensim's training), in every
kernel (skip-gram and CBOW, the minibatch and the sequential step, numpy and compiled); every other product takes
its exact SGD step, and the loss still counts every product."""
import numpy as np
import pytest

from w2vspark import compiled
from w2vspark.config import ConfigError, load_config
from w2vspark.train import task

needs_native = pytest.mark.skipif(not compiled.available("sequential_step"),
                                  reason="w2vspark_native was not built (no C compiler)")
NATIVE = [False, pytest.param(True, marks=needs_native)]

# one window: context row 1 against output rows 0 (label 1, z = 0.2), 2 (label 0, z = 9: saturated on the wrong
# side), 3 (label 0, z = 5.7: large, not saturated) and 4 (label 1, z = -7.5: saturated on the wrong side)
V_1 = [3.0, 0.4, 0.0, 0.0]
U = {0: [0.0, 0.5, 0.0, 0.0], 2: [3.0, 0.0, 0.0, 0.0], 3: [1.9, 0.0, 0.0, 0.0], 4: [-2.5, 0.0, 0.0, 0.0]}
OUT_IDS = np.array([[0, 2, 3, 4]])
LABELS = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=np.float32)
CONTEXTS = np.array([[1]])
LR = 0.1


def _params():
    w_in = np.zeros((5, 4), dtype=np.float32)
    w_out = np.zeros((5, 4), dtype=np.float32)
    w_in[1] = V_1
    for row, u in U.items():
        w_out[row] = u
    return w_in, w_out


def _expected(skip: bool):
    """The pair's SGD step in float64, written out: s_k = lr (label_k - sigmoid(z_k)), 0 for a skipped product;
    v += sum_k s_k u_k, u_k += s_k v."""
    w_in, w_out = (w.astype(np.float64) for w in _params())
    v = w_in[1].copy()
    z = w_out[OUT_IDS[0]] @ v
    steps = LR * (LABELS[0] - 1.0 / (1.0 + np.exp(-z)))
    if skip:
        steps = np.where(np.abs(z) >= 6.0, 0.0, steps)
    w_in[1] += steps @ w_out[OUT_IDS[0]]
    w_out[OUT_IDS[0]] += steps[:, None] * v
    loss = float(np.logaddexp(0.0, -np.where(LABELS[0] >= 0.5, z, -z)).sum())
    return w_in, w_out, loss


def _step(kernel: str, native: bool, skip: bool, damping: bool = False):
    w_in, w_out = _params()
    kw = dict(with_loss=True, damping=damping, native=native, skip_saturated=skip)
    if kernel == "minibatch skipgram":
        loss = task.skipgram_step(w_in, w_out, CONTEXTS, OUT_IDS, LABELS, np.float32(LR), **kw)
    elif kernel == "minibatch cbow":  # one context: h is that row, mean or sum alike
        loss = task.cbow_step(w_in, w_out, CONTEXTS, OUT_IDS, LABELS, np.float32(LR), True, **kw)
    else:
        model = kernel.split()[1]
        loss = task.sequential_step(w_in, w_out, CONTEXTS, OUT_IDS, LABELS, np.float32(LR), model, True, **kw)
    return w_in, w_out, loss


KERNELS = ["minibatch skipgram", "minibatch cbow", "sequential skipgram", "sequential cbow"]


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("skip", [True, False])
def test_saturated_products_take_no_step_and_the_others_their_exact_step(kernel, native, skip):
    """float32 kernels against the float64 step written out (1e-6: float32 rounding of values below 10)."""
    exp_in, exp_out, exp_loss = _expected(skip)
    got_in, got_out, got_loss = _step(kernel, native, skip)
    assert np.allclose(got_in, exp_in, atol=1e-6) and np.allclose(got_out, exp_out, atol=1e-6)
    assert got_loss == pytest.approx(exp_loss, rel=1e-6)  # every product's loss, skipped or not
    start_out = _params()[1]
    moved = [row for row in range(5) if not np.array_equal(got_out[row], start_out[row])]
    assert moved == ([0, 3] if skip else [0, 2, 3, 4])


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("kernel", KERNELS)
def test_damped_steps_skip_the_same_products(kernel, native):
    """With the damping the saturated rows stay where they are and the others still move."""
    got_in, got_out, _ = _step(kernel, native, skip=True, damping=True)
    start_in, start_out = _params()
    assert np.array_equal(got_out[[2, 4]], start_out[[2, 4]])
    assert not np.array_equal(got_out[[0]], start_out[[0]]) and not np.array_equal(got_out[[3]], start_out[[3]])
    assert not np.array_equal(got_in[1], start_in[1])


def test_skip_saturated_setting():
    assert load_config(None).train.skip_saturated is False
    assert load_config(None, ["train.skip_saturated=true"]).train.skip_saturated is True
    with pytest.raises(ConfigError, match="train.skip_saturated"):
        load_config(None, ["train.skip_saturated=true", "train.loss=naive_softmax"])
