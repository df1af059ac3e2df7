"""Central-difference gradient check (as in CS224n assignment 2), raising on the first mismatch."""
from __future__ import annotations

from typing import Callable

import numpy as np


class GradientCheckError(AssertionError):
    """An analytic gradient entry that disagrees with its numerical estimate."""

    def __init__(self, index: tuple, numerical: float, analytic: float, rel_error: float):
        self.index, self.numerical, self.analytic, self.rel_error = index, numerical, analytic, rel_error
        super().__init__(f"gradient check failed at index {index}: numerical {numerical:.10g}, "
                         f"analytic {analytic:.10g}, relative error {rel_error:.3g}")


def gradcheck(f: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, h: float = 1e-4,
              tolerance: float = 1e-5) -> float:
    """Check the gradient that ``f(x) -> (loss, grad)`` returns against central differences.

    An entry fails when |num - ana| / max(1, |num|, |ana|) > ``tolerance``; the first failure raises
    :class:`GradientCheckError` with its index and both values. ``x`` (float64) is perturbed in place and restored.
    Returns the largest relative error seen.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradcheck needs float64 parameters, got {x.dtype}")
    _, grad = f(x)
    grad = np.array(grad, dtype=np.float64)
    if grad.shape != x.shape:
        raise ValueError(f"gradient shape {grad.shape} differs from parameter shape {x.shape}")
    worst = 0.0
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = f(x)[0]
        x[ix] = old - h
        minus = f(x)[0]
        x[ix] = old
        numerical = (plus - minus) / (2.0 * h)
        analytic = grad[ix]
        rel = abs(numerical - analytic) / max(1.0, abs(numerical), abs(analytic))
        if rel > tolerance:
            raise GradientCheckError(ix, float(numerical), float(analytic), float(rel))
        worst = max(worst, rel)
    return worst
