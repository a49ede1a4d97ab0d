"""The scratch engine told to make a catalogued mistake (engine/check/mistakes.py).

ScratchNet (engine/net/scratch.py) is the chain rule and nothing else; MistakenNet overrides
the one step of it where a hand-written backprop goes wrong, and leaves every other step to it:

    BIAS        bias_gradient   ∂L/∂b_l, in the mistake's layers
    BACK        back_through    ∂L/∂y_{l-1}, in the mistake's layers
    ACCUMULATE  backward        the right gradients, then added to buffers never reset
    UPDATE      update          θ ← θ + lr·∂L/∂θ in the mistake's layers (so never the flat step)

A wrong derivative or ∂L/∂ŷ (DERIVATIVE, LOSS_GRAD) needs no override: it comes with the
activation and loss strategies the Injection hands over.

    scratch_net(spec, params)                           # a plain ScratchNet
    scratch_net(spec, params, "dropped_factor_2")       # a MistakenNet
"""

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from engine.check.mistakes import ACCUMULATE, BACK, BIAS, UPDATE, Injection, inject
from engine.net.params import Params
from engine.net.scratch import Backward, Forward, ScratchNet
from engine.net.spec import NetworkSpec


def scratch_net(spec: NetworkSpec, params: Mapping[str, np.ndarray],
                mistake: Injection | str | None = None,
                buffers: Mapping[str, np.ndarray] | None = None) -> ScratchNet:
    """A scratch engine of `spec` from `params` that makes `mistake` (an Injection, or a name
    such as "dropped_factor_2" or "untransposed_weight@2"), or a plain one when there is none.
    `buffers` continues the gradient sums another engine left with accumulated_gradients
    ({name: the parameter's shape}, as `buffers()` gives them)."""
    if mistake is None:
        return ScratchNet(spec, params)
    if isinstance(mistake, Injection) and mistake.spec != spec:
        mistake = mistake.label  # bound to another network: made again for this one
    injection = inject(spec, mistake) if isinstance(mistake, str) else mistake
    return MistakenNet(spec, params, injection, buffers)


class MistakenNet(ScratchNet):
    """A ScratchNet that makes `mistake` (bound to `spec`) in its layers. `buffers`: see
    scratch_net; they are kept whatever the mistake, and only accumulated_gradients adds to
    them."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], mistake: Injection,
                 buffers: Mapping[str, np.ndarray] | None = None):
        super().__init__(spec, params)
        self.mistake = mistake
        self.acts, self.loss = mistake.strategies(self.acts, self.loss)
        self._wrong = mistake.points  # (step, layer) of every step done wrong
        # the never-reset gradient sums of accumulated_gradients
        self._buffers: Params = {n: np.array(v, dtype=spec.np_dtype)
                                 for n, v in (buffers or {}).items()}

    def bias_gradient(self, layer: int, delta: np.ndarray) -> np.ndarray:
        if (BIAS, layer) in self._wrong:
            return self.mistake.wrong(delta)
        return super().bias_gradient(layer, delta)

    def back_through(self, layer: int, delta: np.ndarray) -> np.ndarray:
        if (BACK, layer) in self._wrong:
            return self.mistake.wrong(self.params[f"w{layer}"], delta)
        return super().back_through(layer, delta)

    def backward(self, fwd: Forward) -> Backward:
        bwd = super().backward(fwd)
        if self.mistake.step != ACCUMULATE:
            return bwd
        return replace(bwd, grads=self._accumulate(bwd.grads))

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
        """Copies of the gradient sums accumulated_gradients has left so far (what was given,
        or nothing, for any other mistake)."""
        return {name: v.copy() for name, v in self._buffers.items()}

    def sgd_step(self, grads: Mapping[str, np.ndarray], lr: float,
                 flat_grads: np.ndarray | None = None) -> None:
        # the flat step is one operation for all layers: it would take every one the right way
        super().sgd_step(grads, lr, None if self.mistake.step == UPDATE else flat_grads)

    def update(self, layer: int, grads: Mapping[str, np.ndarray], rate: np.floating) -> None:
        if (UPDATE, layer) not in self._wrong:
            super().update(layer, grads, rate)
            return
        for name in self._names[layer - 1]:
            self.params[name] += rate * grads[name]             # the mistake: θ ← θ + lr·g
