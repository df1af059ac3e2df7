import numpy as np
import pytest

from w2vspark.aggregate import combine, default_task_lr_scale

# row 0 touched by both tasks with equal deltas, row 1 by both with orthogonal deltas, row 2 by task A only
A = (np.array([0, 1, 2]), np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 2.0]], dtype=np.float32))
B = (np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))


def dense(result, rows=4):
    ids, upd = result
    out = np.zeros((rows, 2), dtype=np.float32)
    out[ids] = upd
    return out


def test_sum_and_average_by_hand():
    assert np.array_equal(dense(combine([A, B], 4, 2, "sum")), [[2, 0], [1, 1], [2, 2], [0, 0]])
    assert np.array_equal(dense(combine([A, B], 4, 2, "average")), [[1, 0], [0.5, 0.5], [2, 2], [0, 0]])


def test_scaled_averages_agreement_and_sums_unrelated():
    got = dense(combine([A, B], 4, 2, "scaled"))
    # row 0: |d|^2 sum = 2, |U|^2 = 4 -> f = 0.5 (average); row 1: 2 / 2 = 1 (sum); row 2: one task -> 1
    assert np.allclose(got, [[1, 0], [1, 1], [2, 2], [0, 0]])
    # opposite deltas: |U| = 0 -> the (zero) sum is kept
    C = (np.array([3]), np.array([[1.0, 1.0]], dtype=np.float32))
    D = (np.array([3]), np.array([[-1.0, -1.0]], dtype=np.float32))
    assert np.allclose(dense(combine([C, D], 4, 2, "scaled"))[3], 0)


def test_one_part_is_exact_for_every_rule():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(5, 3)).astype(np.float32)
    for rule in ("sum", "average", "scaled"):
        ids, upd = combine([(np.arange(5), delta)], 5, 3, rule)
        assert np.array_equal(upd, delta), rule
    with pytest.raises(ValueError, match="unknown combine rule"):
        combine([(np.arange(5), delta)], 5, 3, "median")


def test_default_lr_scale():
    assert default_task_lr_scale("scaled", 2) == pytest.approx(2 ** 0.5)
    assert default_task_lr_scale("scaled", 4) == pytest.approx(2.0)
    assert default_task_lr_scale("scaled", 16) == pytest.approx(2.0)
    assert default_task_lr_scale("average", 8) == 1.0
