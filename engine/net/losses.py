"""Losses of the scratch engine, looked up by name. A loss is a small strategy object: its value
per sample, dL/dŷ, and the output delta dL/dz_L that starts the backward pass.

Shapes: z, y_hat and y are (N, outputs); values are (N,).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.errors import SpecError
from engine.net.activations import Activation

Array = np.ndarray

# torch's binary_cross_entropy backward divides by max(ŷ(1 - ŷ), 1e-12); we do the same so the
# dL/dŷ stage has an exact twin even where the sigmoid saturates
BCE_EPSILON = 1e-12


@dataclass(frozen=True)
class Loss:
    """`value(z, y_hat, y)` per sample and `grad(y_hat, y)` = dL/dŷ. `text` and `grad_text` write
    them in the seeds' notation, with `{y_hat}` for the output and `{n}` for the number of
    outputs (see `render`). A loss that needs a particular output activation names it."""

    name: str
    value: Callable[[Array, Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    text: str
    grad_text: str
    output_activation: str | None = None

    def output_delta(self, z: Array, y_hat: Array, y: Array, act: Activation,
                     dy_hat: Array) -> Array:
        """dL/dz_L = dL/dŷ ⊙ f'(z_L), given dy_hat = dL/dŷ; shape (N, outputs)."""
        return dy_hat * act.derivative(z, y_hat)

    def delta_text(self, y_hat: str, n: int, act: Activation, z: str) -> str:
        """dL/dz_L written out, as `output_delta` computes it."""
        factor = act.derivative_at(z)
        grad = self.render(self.grad_text, y_hat, n)
        return grad if factor == "1" else f"{grad}·{factor}"

    def render(self, text: str, y_hat: str, n: int) -> str:
        """`text` with the output's symbol and the output count put in; with one output the
        sum and the 1/n factors go away."""
        if n == 1:
            for one in ("(1/{n})", "/{n}", "{n}·", "Σ"):
                text = text.replace(one, "")
        return text.replace("{y_hat}", y_hat).replace("{n}", str(n))


def _squared_error(z: Array, y_hat: Array, y: Array) -> Array:
    return np.sum((y_hat - y) ** 2, axis=-1)


def _squared_error_grad(y_hat: Array, y: Array) -> Array:
    return 2 * (y_hat - y)


def _half_squared_error(z: Array, y_hat: Array, y: Array) -> Array:
    return 0.5 * np.sum((y_hat - y) ** 2, axis=-1)


def _half_squared_error_grad(y_hat: Array, y: Array) -> Array:
    return y_hat - y


def _mse(z: Array, y_hat: Array, y: Array) -> Array:
    return np.mean((y_hat - y) ** 2, axis=-1)


def _mse_grad(y_hat: Array, y: Array) -> Array:
    return 2 * (y_hat - y) / y.shape[-1]


def _bce(z: Array, y_hat: Array, y: Array) -> Array:
    # -(y log σ(z) + (1-y) log(1-σ(z))) = max(z, 0) - y z + log(1 + e^-|z|): no overflow, no log 0
    per_output = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
    return np.mean(per_output, axis=-1)


def _bce_grad(y_hat: Array, y: Array) -> Array:
    denominator = np.maximum(y_hat * (1 - y_hat), y_hat.dtype.type(BCE_EPSILON))
    return (y_hat - y) / denominator / y.shape[-1]


@dataclass(frozen=True)
class SigmoidBCE(Loss):
    """Binary cross-entropy on a sigmoid output: the output delta is taken in its fused form
    dL/dz_L = (ŷ - y)/n, which stays exact where dL/dŷ and σ'(z) under- or overflow."""

    def output_delta(self, z: Array, y_hat: Array, y: Array, act: Activation,
                     dy_hat: Array) -> Array:
        return (y_hat - y) / y.shape[-1]

    def delta_text(self, y_hat: str, n: int, act: Activation, z: str) -> str:
        return self.render("({y_hat} - y)/{n}", y_hat, n)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("squared_error", _squared_error, _squared_error_grad,
             "Σ({y_hat} - y)²", "2({y_hat} - y)"),
        Loss("half_squared_error", _half_squared_error, _half_squared_error_grad,
             "½Σ({y_hat} - y)²", "({y_hat} - y)"),
        Loss("mse", _mse, _mse_grad, "(1/{n})Σ({y_hat} - y)²", "2({y_hat} - y)/{n}"),
        SigmoidBCE("bce", _bce, _bce_grad,
                   "-(1/{n})Σ[y log {y_hat} + (1 - y) log(1 - {y_hat})]",
                   "({y_hat} - y)/({n}·{y_hat}(1 - {y_hat}))", output_activation="sigmoid"),
    )
}


def loss(name: str) -> Loss:
    """The loss registered under `name`; an unknown name lists the valid ones."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):  # TypeError: a list or dict where a name belongs
        raise SpecError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}") from None
