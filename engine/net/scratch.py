"""The scratch engine: forward and backward passes in numpy, written from the chain rule.

Samples are columns, as in the notes' column-vector form: a batch of N samples is a_0 = xᵀ of
shape (n_0, N), and each layer computes z_l = w_l·a_{l-1} + b_l, a_l = f_l(z_l), both (n_l, N).
The backward pass keeps each sample's own gradient, so per-sample gradients of a whole dataset
need no Python loop over samples; one sample is N = 1. w_l is (n_l, n_{l-1}), b_l is (n_l,).

Told to make a mistake (engine/check/mistakes.py), the engine makes it where a hand-written backprop
would: a wrong derivative or dL/dŷ comes with the activation or loss strategy, and the other
steps are replaced right under the line that computes them correctly.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.check.mistakes import ACCUMULATE, BACK, BIAS, UPDATE, Injection, inject
from engine.net.activations import activation
from engine.net.losses import loss as loss_named
from engine.net.params import Params, unflat
from engine.net.spec import NetworkSpec
from engine.net.stages import Stage, assemble


@dataclass(frozen=True)
class Forward:
    """Columns per sample: z[l-1] = z_l and a[l] = a_l (n_l, N) for l = 1..L, a[0] = xᵀ;
    y (n_L, N) the targets; losses (N,)."""

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
    """Columns per sample: dy_hat = dL/dŷ (n_L, N); dz[l-1] = δ_l = dL/dz_l; da[l] = dL/da_l
    for l = 1..L-1 (da[0], for the input, is never needed and stays None).
    grads: per-sample dL/dw_l (N, n_l, n_{l-1}) and dL/db_l (N, n_l)."""

    dy_hat: np.ndarray
    dz: list[np.ndarray]
    da: list[np.ndarray | None]
    grads: Params


class ScratchNet:
    """A network of `spec` holding its own copy of `params` (engine layout, spec dtype), that
    makes `mistake` (an Injection, or a name such as "dropped_factor_2" or
    "untransposed_weight@2") when told to; see engine/check/mistakes.py. `buffers` continues the
    gradient sums another engine left with accumulated_gradients ({name: the parameter's
    shape}, as `buffers()` gives them)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray],
                 mistake: Injection | str | None = None,
                 buffers: Mapping[str, np.ndarray] | None = None):
        self.spec = spec
        # every parameter is a view of one vector: an SGD step is one operation
        self.flat_params = np.concatenate([np.asarray(params[n], dtype=spec.np_dtype).ravel()
                                           for n in spec.param_names])
        self.params: Params = unflat(spec, self.flat_params)
        self.acts = [activation(name) for name in spec.activations]
        self.loss = loss_named(spec.loss)
        self._names = [(f"w{layer}", f"b{layer}") for layer in range(1, spec.n_layers + 1)]
        if isinstance(mistake, Injection) and mistake.spec != spec:
            mistake = mistake.label  # bound to another network: made again for this one
        self.mistake = inject(spec, mistake) if isinstance(mistake, str) else mistake
        # (step, layer) of every step done wrong; empty, and so skipped at once, when right
        self._wrong: frozenset[tuple[str, int]] = frozenset()
        # the never-reset gradient sums of accumulated_gradients
        self._buffers: Params = {n: np.array(v, dtype=spec.np_dtype)
                                 for n, v in (buffers or {}).items()}
        if self.mistake is not None:
            self._wrong = self.mistake.points
            self.acts, self.loss = self.mistake.strategies(self.acts, self.loss)

    def forward(self, x: np.ndarray, y: np.ndarray) -> Forward:
        """x (N, n_0) or (n_0,), y (N, n_L) or (n_L,): every z_l and a_l, and each loss."""
        a = [self._columns(x)]
        z = []
        for (w, b), act in zip(self._names, self.acts, strict=True):
            z_l = self.params[w] @ a[-1] + self.params[b][:, None]  # z_l = w_l·a_{l-1} + b_l
            z.append(z_l)
            a.append(act.fn(z_l))                                     # a_l = f_l(z_l)
        y = self._columns(y)
        return Forward(z, a, y, self.loss.value(z[-1].T, a[-1].T, y.T))

    def backward(self, fwd: Forward) -> Backward:
        """The chain rule from the loss down, every sample apart:
        δ_L = dL/dz_L from the loss, δ_l = (w_{l+1}ᵀ·δ_{l+1}) ⊙ f'_l(z_l),
        dL/dw_l = δ_l·a_{l-1}ᵀ, dL/db_l = δ_l."""
        n_layers = self.spec.n_layers
        z, a = fwd.z, fwd.a
        dy_hat = self.loss.grad(fwd.y_hat, fwd.y.T)
        delta = self.loss.output_delta(z[-1].T, fwd.y_hat, fwd.y.T, self.acts[-1], dy_hat).T
        dz: list[np.ndarray] = [delta] * n_layers
        da: list[np.ndarray | None] = [None] * n_layers
        grads: Params = {}
        for layer in range(n_layers, 0, -1):
            w, b = self._names[layer - 1]
            dz[layer - 1] = delta
            # (n_l, n_{l-1}, N): the sample axis last keeps numpy's inner loop long
            outer = delta[:, None, :] * a[layer - 1][None, :, :]       # dL/dw_l = δ_l·a_{l-1}ᵀ
            grads[w] = outer.transpose(2, 0, 1)
            grads[b] = delta.T                                          # dL/db_l = δ_l
            if self._wrong and (BIAS, layer) in self._wrong:
                grads[b] = self.mistake.wrong(delta)
            if layer > 1:
                da[layer - 1] = self.params[w].T @ delta                # dL/da_{l-1} = w_lᵀ·δ_l
                if self._wrong and (BACK, layer) in self._wrong:
                    da[layer - 1] = self.mistake.wrong(self.params[w], delta)
                act = self.acts[layer - 2]
                delta = da[layer - 1] * act.derivative(z[layer - 2], a[layer - 1])
        ordered = {name: grads[name] for pair in self._names for name in pair}
        if self._wrong and self.mistake.step == ACCUMULATE:
            ordered = self._accumulate(ordered)
        return Backward(dy_hat.T, dz, da, ordered)

    def _accumulate(self, grads: Params) -> Params:
        """The mistake of never resetting the gradient buffers: each sample's gradient is added
        to what they hold, from earlier samples of this call and from earlier calls, and what
        is read is the sum so far. grads {name: (N, *shape)}."""
        summed = dict(grads)
        for layer in self.mistake.layers:
            for name in self._names[layer - 1]:
                running = np.cumsum(grads[name], axis=0)
                if name in self._buffers:
                    running += self._buffers[name]
                self._buffers[name] = running[-1].copy()
                summed[name] = running
        return summed

    def buffers(self) -> Params:
        """Copies of the gradient sums accumulated_gradients has left so far (empty for any
        other mistake, and for none)."""
        return {name: v.copy() for name, v in self._buffers.items()}

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
        """θ ← θ - lr·g for every parameter; g has the parameter's shape (a batch's mean).
        `flat_grads`, the same gradients as one vector in the order of flat_params, makes it
        one operation."""
        rate = self.flat_params.dtype.type(lr)
        if flat_grads is not None and not self._wrong:
            self.flat_params -= rate * flat_grads
            return
        for layer, names in enumerate(self._names, start=1):
            for name in names:
                step = rate * grads[name]
                if self._wrong and (UPDATE, layer) in self._wrong:
                    self.params[name] += step                   # the mistake: θ ← θ + lr·g
                else:
                    self.params[name] -= step

    def _columns(self, v: np.ndarray) -> np.ndarray:
        """Samples as columns, (n, N), in the spec's dtype."""
        v = np.asarray(v, dtype=self.spec.np_dtype)
        return v[:, None] if v.ndim == 1 else v.T
