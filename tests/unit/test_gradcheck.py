import numpy as np
import pytest

from w2vspark.gradcheck import GradientCheckError, gradcheck


def test_accepts_a_correct_gradient():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    worst = gradcheck(lambda v: (float((v ** 3).sum()), 3 * v ** 2), x)
    assert worst < 1e-6
    assert np.array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored after perturbation


def test_raises_with_index_and_values():
    x = np.array([1.0, 2.0, 3.0])

    def wrong(v):
        grad = 2 * v
        grad[2] += 0.01  # one wrong entry
        return float((v ** 2).sum()), grad
    with pytest.raises(GradientCheckError) as err:
        gradcheck(wrong, x)
    assert err.value.index == (2,)
    assert err.value.numerical == pytest.approx(6.0, abs=1e-6)
    assert err.value.analytic == pytest.approx(6.01)
    assert "(2,)" in str(err.value)


def test_tolerance_is_relative_to_magnitude():
    x = np.array([1000.0])
    # error 1e-3 on a gradient of 3e6 is a relative error of 3e-10: accepted
    gradcheck(lambda v: (float(v[0] ** 3), np.array([3 * v[0] ** 2 + 1e-3])), x)
    with pytest.raises(TypeError):
        gradcheck(lambda v: (0.0, v), np.zeros(2, dtype=np.float32))
