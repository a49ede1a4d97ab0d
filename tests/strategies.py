"""Hypothesis strategies for networks, parameters and samples."""

import numpy as np
from hypothesis import strategies as st

from engine.net.activations import ACTIVATIONS
from engine.net.losses import LOSSES
from engine.net.spec import DTYPES, LAYOUTS, NetworkSpec


@st.composite
def specs(draw, max_layers: int = 4, max_width: int = 8) -> NetworkSpec:
    """Any valid network: depth, widths, activations, loss, dtype and layout."""
    sizes = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=max_layers + 1))
    acts = draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=len(sizes) - 1,
                         max_size=len(sizes) - 1))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    if loss == "bce":
        acts[-1] = "sigmoid"
    return NetworkSpec(tuple(sizes), tuple(acts), loss, draw(st.sampled_from(sorted(DTYPES))),
                       draw(st.sampled_from(LAYOUTS)))


def samples(spec: NetworkSpec, seed: int, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """n inputs in [-2, 2] and targets in [0, 1] (valid for every loss), in the spec's dtype."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, spec.n_inputs)).astype(spec.np_dtype)
    y = rng.uniform(0, 1, (n, spec.n_outputs)).astype(spec.np_dtype)
    return x, y
