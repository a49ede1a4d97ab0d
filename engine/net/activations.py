"""Activation functions of the scratch engine, looked up by name.

Each activation keeps its derivative right under it, so a reader can check the chain rule factor
f'(z) against the formula text beside it. The derivative is given z and a = f(z), which the
forward pass already holds, and uses whichever is cheaper: σ'(z) = σ(z)(1 - σ(z)) = a(1 - a).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.errors import SpecError

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """f(z) and f'(z, a) applied elementwise, where a = f(z); `text` and `derivative_text` write
    them in the seeds' notation with `{z}` standing for the argument."""

    name: str
    fn: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]
    text: str
    derivative_text: str

    def apply_text(self, z: str) -> str:
        return self.text.format(z=z)

    def derivative_at(self, z: str) -> str:
        return self.derivative_text.format(z=z)


def _sigmoid(z: Array) -> Array:
    # as torch computes it; exp(-z) overflows to inf for very negative z, and 1/(1 + inf) = 0 is
    # the right limit
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


def _sigmoid_derivative(z: Array, a: Array) -> Array:
    return a * (1 - a)


def _tanh_derivative(z: Array, a: Array) -> Array:
    return 1 - a * a


def _relu(z: Array) -> Array:
    return np.maximum(z, 0)


def _relu_derivative(z: Array, a: Array) -> Array:
    # torch takes 0 as the derivative at the kink z = 0
    return (z > 0).astype(z.dtype)


LEAKY_SLOPE = 0.01


def _leaky_relu(z: Array) -> Array:
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def _leaky_relu_derivative(z: Array, a: Array) -> Array:
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(LEAKY_SLOPE))


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _elu_derivative(z: Array, a: Array) -> Array:
    return np.where(z > 0, z.dtype.type(1), np.exp(np.minimum(z, 0)))


# torch.nn.Softplus returns z itself above this threshold; matching it keeps float64 exact
SOFTPLUS_THRESHOLD = 20.0


def _softplus(z: Array) -> Array:
    smooth = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    return np.where(z > SOFTPLUS_THRESHOLD, z, smooth)


def _softplus_derivative(z: Array, a: Array) -> Array:
    return np.where(z > SOFTPLUS_THRESHOLD, z.dtype.type(1), _sigmoid(z))


def _identity(z: Array) -> Array:
    return z


def _identity_derivative(z: Array, a: Array) -> Array:
    return np.ones_like(z)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", _sigmoid, _sigmoid_derivative,
                   "sigmoid({z})", "sigmoid({z})(1 - sigmoid({z}))"),
        Activation("tanh", np.tanh, _tanh_derivative, "tanh({z})", "(1 - tanh²({z}))"),
        Activation("relu", _relu, _relu_derivative, "relu({z})", "[{z} > 0]"),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_derivative,
                   "leaky_relu({z})", "([{z} > 0] + 0.01·[{z} ≤ 0])"),
        Activation("elu", _elu, _elu_derivative, "elu({z})", "([{z} > 0] + exp({z})·[{z} ≤ 0])"),
        Activation("softplus", _softplus, _softplus_derivative,
                   "softplus({z})", "sigmoid({z})"),
        Activation("identity", _identity, _identity_derivative, "{z}", "1"),
    )
}


def activation(name: str) -> Activation:
    """The activation registered under `name`; an unknown name lists the valid ones."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):  # TypeError: a list or dict where a name belongs
        raise SpecError(
            f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}"
        ) from None
