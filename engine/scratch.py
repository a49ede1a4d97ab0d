"""The scratch engine: forward and backward passes in numpy, written from the chain rule.

Every pass runs on a batch of N samples at once (one sample is N = 1), and the backward pass
keeps each sample's own gradient, so per-sample gradients of a whole dataset need no Python loop
over samples. Shapes: x (N, n_0), z_l and y_l (N, n_l), w_l (n_l, n_{l-1}), b_l (n_l,).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.activations import activation
from engine.losses import loss as loss_named
from engine.params import Params
from engine.spec import NetworkSpec
from engine.stages import Stage, assemble


@dataclass(frozen=True)
class Forward:
    """z[l-1] = z_l and a[l] = y_l for l = 1..L, with a[0] = x; losses (N,)."""

    z: list[np.ndarray]
    a: list[np.ndarray]
    losses: np.ndarray

    @property
    def y_hat(self) -> np.ndarray:
        return self.a[-1]


@dataclass(frozen=True)
class Backward:
    """dL/dŷ (N, n_L); dz[l-1] = dL/dz_l and da[l] = dL/dy_l (da[0], for x, is never needed and
    stays None); grads: per-sample dL/dw_l (N, n_l, n_{l-1}) and dL/db_l (N, n_l)."""

    dy_hat: np.ndarray
    dz: list[np.ndarray]
    da: list[np.ndarray | None]
    grads: Params


class ScratchNet:
    """A network of `spec` holding its own copy of `params` (engine layout, spec dtype)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray]):
        self.spec = spec
        self.params: Params = {n: np.array(params[n], dtype=spec.np_dtype)
                               for n in spec.param_names}
        self.acts = [activation(name) for name in spec.activations]
        self.loss = loss_named(spec.loss)

    def _w(self, layer: int) -> np.ndarray:
        return self.params[f"w{layer}"]

    def _b(self, layer: int) -> np.ndarray:
        return self.params[f"b{layer}"]

    def forward(self, x: np.ndarray, y: np.ndarray) -> Forward:
        """z_l = y_{l-1}·w_lᵀ + b_l, y_l = f_l(z_l); the loss of each sample against y."""
        x, y = self._batch(x), self._batch(y)
        z, a = [], [x]
        for layer, act in enumerate(self.acts, start=1):
            z_l = a[-1] @ self._w(layer).T + self._b(layer)
            z.append(z_l)
            a.append(act.fn(z_l))
        return Forward(z, a, self.loss.value(z[-1], a[-1], y))

    def backward(self, fwd: Forward, y: np.ndarray) -> Backward:
        """The chain rule from the loss down, keeping every sample's gradient apart:
        δ_L = dL/dz_L from the loss, δ_l = (δ_{l+1}·w_{l+1}) ⊙ f'_l(z_l),
        dL/dw_l = δ_lᵀ·y_{l-1}, dL/db_l = δ_l."""
        y = self._batch(y)
        n_layers = self.spec.n_layers
        dy_hat = self.loss.grad(fwd.y_hat, y)
        delta = self.loss.output_delta(fwd.z[-1], fwd.y_hat, y, self.acts[-1])
        dz: list[np.ndarray] = [delta] * n_layers
        da: list[np.ndarray | None] = [None] * n_layers
        da.append(dy_hat)
        grads: Params = {}
        for layer in range(n_layers, 0, -1):
            dz[layer - 1] = delta
            grads[f"w{layer}"] = delta[:, :, None] * fwd.a[layer - 1][:, None, :]
            grads[f"b{layer}"] = delta
            if layer > 1:
                da[layer - 1] = delta @ self._w(layer)
                delta = da[layer - 1] * self.acts[layer - 2].derivative(fwd.z[layer - 2])
        ordered = {name: grads[name] for name in self.spec.param_names}
        return Backward(dy_hat, dz, da, ordered)

    def per_sample_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Params]:
        """Each sample's loss (N,) and gradients {name: (N, *shape)} at the current parameters."""
        fwd = self.forward(x, y)
        return fwd.losses, self.backward(fwd, y).grads

    def stages(self, x: np.ndarray, y: np.ndarray) -> list[Stage]:
        """Every stage of one sample's pass; x (n_0,), y (n_L,)."""
        fwd = self.forward(x, y)
        bwd = self.backward(fwd, y)
        values: dict[str, np.ndarray] = {"loss": fwd.losses[0], "dL/dy_hat": bwd.dy_hat[0]}
        n_layers = self.spec.n_layers
        for layer in range(1, n_layers + 1):
            values[f"z{layer}"] = fwd.z[layer - 1][0]
            values["y_hat" if layer == n_layers else f"a{layer}"] = fwd.a[layer][0]
            values[f"dL/dz{layer}"] = bwd.dz[layer - 1][0]
            values[f"dL/dw{layer}"] = bwd.grads[f"w{layer}"][0]
            values[f"dL/db{layer}"] = bwd.grads[f"b{layer}"][0]
            if layer < n_layers:
                values[f"dL/da{layer}"] = bwd.da[layer][0]
        return assemble(self.spec, values)

    def sgd_step(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        """θ ← θ - lr·g for every parameter; g has the parameter's shape (a batch's mean)."""
        for name, value in self.params.items():
            value -= value.dtype.type(lr) * grads[name]

    def _batch(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=self.spec.np_dtype)
        return v[None, :] if v.ndim == 1 else v
