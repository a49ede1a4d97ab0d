"""A third opinion: the gradient by central differences, always in float64."""

from collections.abc import Mapping

import numpy as np

from engine.net.scratch import ScratchNet
from engine.net.spec import NetworkSpec

# with the loss's rounding ~1e-16, a step of 1e-6 balances truncation (~eps²) and rounding
# (~1e-16/eps): errors near 1e-10
DEFAULT_EPS = 1e-6


def numerical_gradient(spec: NetworkSpec, params: Mapping[str, np.ndarray], x: np.ndarray,
                       y: np.ndarray, name: str, eps: float = DEFAULT_EPS) -> np.ndarray:
    """dL/d`name` for one sample (x (n_0,), y (n_L,)) as (L(θ + eps) - L(θ - eps)) / 2eps per
    element, in float64 whatever the spec's dtype. Shape: the parameter's, engine layout."""
    spec64 = spec.with_options(dtype="float64")
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    net = ScratchNet(spec64, base)
    value = net.params[name]
    result = np.empty_like(value)
    # a diverged network's losses overflow: its differences are inf or NaN, as its stages are
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for index in np.ndindex(value.shape):
            original = value[index]
            value[index] = original + eps
            up = net.forward(x, y).losses[0]
            value[index] = original - eps
            down = net.forward(x, y).losses[0]
            value[index] = original
            result[index] = (up - down) / (2 * eps)
    return result
