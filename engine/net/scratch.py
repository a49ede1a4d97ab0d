"""The scratch engine: forward and backward passes in numpy, written from the chain rule.

The notation is the stage plan's (engine/net/stages.py), whose formulas a user reads beside
these values. Layers are l = 1..L with n_l units (n_0 inputs); w_l is (n_l, n_{l-1}), out_in,
and b_l is (n_l,); y_l = f_l(z_l) is the output of layer l, with y_0 = x and y_L = ŷ; y is the
label and L the loss; δ_l = ∂L/∂z_l.

The plan writes one sample as a row, z_l = y_{l-1}·w_lᵀ + b_l (for out_in weights; an in_out
spec shows each w transposed). The code holds samples as columns, so a batch of N is one
product: z_l = w_l·y_{l-1} + b_l, the same equation transposed, with z_l, y_l and δ_l (n_l, N).
So the plan's ∂L/∂y_{l-1} = ∂L/∂z_l·w_l is w_lᵀ·δ_l here, and its ∂L/∂w_l = (∂L/∂z_l)ᵀ·y_{l-1}
is δ_l·y_{l-1}ᵀ, one per sample. In the code `a[l]` is y_l (a[0] = xᵀ, a[L] = ŷᵀ) and `da[l]`
is ∂L/∂y_l, as the plan's keys "a<l>" and "dL/da<l>" name them, so that `y` is only the label;
`z[l-1]` is z_l, the lists counting from 0.

The backward pass keeps each sample's own gradient, so the per-sample gradients of a whole
dataset need no Python loop over samples; one sample is N = 1.

Each step of backward and sgd_step that a hand-written backprop can get wrong is a method of one
line (bias_gradient, back_through, update): engine/check/mistaken_net.py overrides them to make
a catalogued mistake, and engine/check/mistakes.py hands the wrong derivative or ∂L/∂ŷ in as
the activation or loss strategy.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.net.activations import activation
from engine.net.losses import loss as loss_named
from engine.net.params import Params, unflat
from engine.net.spec import NetworkSpec
from engine.net.stages import Stage, assemble


@dataclass(frozen=True)
class Forward:
    """Columns per sample: z[l-1] = z_l and a[l] = y_l (n_l, N) for l = 1..L, a[0] = xᵀ;
    y (n_L, N) the labels; losses (N,)."""

    z: list[np.ndarray]
    a: list[np.ndarray]
    y: np.ndarray
    losses: np.ndarray

    @property
    def y_hat(self) -> np.ndarray:
        """The predictions as rows, (N, n_L)."""
        return self.a[-1].T


@dataclass(frozen=True)
class Backward:
    """Columns per sample: dy_hat = ∂L/∂ŷ (n_L, N); dz[l-1] = δ_l = ∂L/∂z_l; da[l] = ∂L/∂y_l
    for l = 1..L-1 (da[0], for the input, is never needed and stays None).
    grads: per-sample ∂L/∂w_l (N, n_l, n_{l-1}) and ∂L/∂b_l (N, n_l)."""

    dy_hat: np.ndarray
    dz: list[np.ndarray]
    da: list[np.ndarray | None]
    grads: Params


class ScratchNet:
    """A network of `spec` holding its own copy of `params` (engine layout, spec dtype). It
    makes no mistake: engine/check/mistaken_net.py's scratch_net builds one that does."""

    mistake = None  # the Injection a subclass makes; a plain net makes none

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray]):
        self.spec = spec
        # every parameter is a view of one vector: an SGD step is one operation
        self.flat_params = np.concatenate([np.asarray(params[n], dtype=spec.np_dtype).ravel()
                                           for n in spec.param_names])
        self.params: Params = unflat(spec, self.flat_params)
        self.acts = [activation(name) for name in spec.activations]
        self.loss = loss_named(spec.loss)
        self._names = [(f"w{layer}", f"b{layer}") for layer in range(1, spec.n_layers + 1)]

    def forward(self, x: np.ndarray, y: np.ndarray) -> Forward:
        """x (N, n_0) or (n_0,), y (N, n_L) or (n_L,): every z_l and y_l, and each loss."""
        a = [self._columns(x)]                                        # y_0 = x
        z = []
        for (w, b), act in zip(self._names, self.acts, strict=True):
            z_l = self.params[w] @ a[-1] + self.params[b][:, None]  # z_l = w_l·y_{l-1} + b_l
            z.append(z_l)
            a.append(act.fn(z_l))                                     # y_l = f_l(z_l)
        y = self._columns(y)
        return Forward(z, a, y, self.loss.value(z[-1].T, a[-1].T, y.T))

    def backward(self, fwd: Forward) -> Backward:
        """The chain rule from the loss down, every sample apart:
        δ_L = ∂L/∂z_L from the loss, δ_l = (w_{l+1}ᵀ·δ_{l+1}) ⊙ f'_l(z_l),
        ∂L/∂w_l = δ_l·y_{l-1}ᵀ, ∂L/∂b_l = δ_l."""
        n_layers = self.spec.n_layers
        z, a = fwd.z, fwd.a
        dy_hat = self.loss.grad(fwd.y_hat, fwd.y.T)                    # ∂L/∂ŷ
        delta = self.loss.output_delta(z[-1].T, fwd.y_hat, fwd.y.T,   # δ_L
                                       self.acts[-1], dy_hat).T
        dz: list[np.ndarray] = [delta] * n_layers
        da: list[np.ndarray | None] = [None] * n_layers
        grads: Params = {}
        for layer in range(n_layers, 0, -1):
            w, b = self._names[layer - 1]
            dz[layer - 1] = delta
            # (n_l, n_{l-1}, N): the sample axis last keeps numpy's inner loop long
            outer = delta[:, None, :] * a[layer - 1][None, :, :]       # ∂L/∂w_l = δ_l·y_{l-1}ᵀ
            grads[w] = outer.transpose(2, 0, 1)
            grads[b] = self.bias_gradient(layer, delta)                 # ∂L/∂b_l = δ_l
            if layer > 1:
                da[layer - 1] = self.back_through(layer, delta)         # ∂L/∂y_{l-1} = w_lᵀ·δ_l
                f_prime = self.acts[layer - 2].derivative(z[layer - 2], a[layer - 1])
                delta = da[layer - 1] * f_prime             # δ_{l-1} = ∂L/∂y_{l-1} ⊙ f'(z_{l-1})
        ordered = {name: grads[name] for pair in self._names for name in pair}
        return Backward(dy_hat.T, dz, da, ordered)

    def bias_gradient(self, layer: int, delta: np.ndarray) -> np.ndarray:
        """∂L/∂b_l = δ_l, per sample: delta (n_l, N) -> (N, n_l)."""
        return delta.T

    def back_through(self, layer: int, delta: np.ndarray) -> np.ndarray:
        """∂L/∂y_{l-1} = w_lᵀ·δ_l: delta (n_l, N) -> (n_{l-1}, N)."""
        return self.params[f"w{layer}"].T @ delta

    def buffers(self) -> Params:
        """The gradient sums a mistake of never resetting them has left: none here."""
        return {}

    def per_sample_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Params]:
        """Each sample's loss (N,) and gradients {name: (N, *shape)} at the current
        parameters. The gradients are views with the sample axis first."""
        fwd = self.forward(x, y)
        return fwd.losses, self.backward(fwd).grads

    def gradients_along(self, x: np.ndarray, y: np.ndarray,
                        lr: float = 0.0) -> tuple[np.ndarray, Params]:
        """Each sample's loss (N,) and gradients {name: (N, *shape)} with batch size 1, as an
        export takes them: all at the current parameters when lr is 0; otherwise sample by
        sample, with an SGD step after each one using that sample's gradients."""
        if lr == 0:
            return self.per_sample_gradients(x, y)
        steps = []
        # a diverging run overflows on purpose; the caller sees the values are not finite
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for i in range(len(x)):
                losses, grads = self.per_sample_gradients(x[i:i + 1], y[i:i + 1])
                self.sgd_step({name: g[0] for name, g in grads.items()}, lr)
                steps.append((losses, grads))
        return (np.concatenate([s[0] for s in steps]),
                {name: np.concatenate([s[1][name] for s in steps]) for name in self.params})

    def stages(self, x: np.ndarray, y: np.ndarray) -> list[Stage]:
        """Every stage of one sample's pass; x (n_0,), y (n_L,)."""
        fwd = self.forward(x, y)
        bwd = self.backward(fwd)
        values: dict[str, np.ndarray] = {"loss": fwd.losses[0], "dL/dy_hat": bwd.dy_hat[:, 0]}
        n_layers = self.spec.n_layers
        for layer in range(1, n_layers + 1):
            values[f"z{layer}"] = fwd.z[layer - 1][:, 0]
            values["y_hat" if layer == n_layers else f"a{layer}"] = fwd.a[layer][:, 0]
            values[f"dL/dz{layer}"] = bwd.dz[layer - 1][:, 0]
            values[f"dL/dw{layer}"] = bwd.grads[f"w{layer}"][0]
            values[f"dL/db{layer}"] = bwd.grads[f"b{layer}"][0]
            if layer < n_layers:
                values[f"dL/da{layer}"] = bwd.da[layer][:, 0]
        return assemble(self.spec, values)

    def sgd_step(self, grads: Mapping[str, np.ndarray], lr: float,
                 flat_grads: np.ndarray | None = None) -> None:
        """θ ← θ - lr·∂L/∂θ for every parameter; each gradient has the parameter's shape (a
        batch's mean). `flat_grads`, the same gradients as one vector in the order of
        flat_params, makes it one operation."""
        rate = self.flat_params.dtype.type(lr)
        if flat_grads is not None:
            self.flat_params -= rate * flat_grads
            return
        for layer in range(1, self.spec.n_layers + 1):
            self.update(layer, grads, rate)

    def update(self, layer: int, grads: Mapping[str, np.ndarray], rate: np.floating) -> None:
        """w_l ← w_l - lr·∂L/∂w_l and b_l ← b_l - lr·∂L/∂b_l, in place."""
        for name in self._names[layer - 1]:
            self.params[name] -= rate * grads[name]

    def _columns(self, v: np.ndarray) -> np.ndarray:
        """Samples as columns, (n, N), in the spec's dtype."""
        v = np.asarray(v, dtype=self.spec.np_dtype)
        return v[:, None] if v.ndim == 1 else v.T
