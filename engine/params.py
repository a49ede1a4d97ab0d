"""Parameters w1, b1, w2, b2, ... of a network.

Inside the engine a parameter set is a dict name -> array in torch's layout: w_l of shape
(out, in), b_l of shape (out,). The spec's layout (out_in or in_out) only changes how weights are
shown and stored, through `to_layout` and `from_layout`.
"""

from collections.abc import Mapping

import numpy as np

from engine.errors import SpecError
from engine.spec import NetworkSpec

Params = dict[str, np.ndarray]


def init_params(spec: NetworkSpec, seed: int = 0) -> Params:
    """Initialise as torch.nn.Linear does by default: weights and biases uniform in
    ±1/sqrt(fan_in), drawn from a generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    for layer in range(1, spec.n_layers + 1):
        bound = 1 / np.sqrt(spec.sizes[layer - 1])
        for name in (f"w{layer}", f"b{layer}"):
            shape = spec.param_shape(name, "out_in")
            params[name] = rng.uniform(-bound, bound, shape).astype(spec.np_dtype)
    return params


def to_layout(params: Mapping[str, np.ndarray], layout: str) -> Params:
    """Copies of `params` with weights in `layout` ("in_out" transposes them)."""
    return {name: (value.T if name[0] == "w" and layout == "in_out" else value).copy()
            for name, value in params.items()}


def from_layout(spec: NetworkSpec, given: Mapping[str, object],
                layout: str | None = None, dtype: type[np.floating] | None = None) -> Params:
    """Check user-given parameters against `spec` and return them in the engine's layout, in
    `dtype` (the spec's by default), converted once from the float64 they are read at.

    `given` maps w1, b1, ... to nested lists or arrays in `layout` (the spec's by default). A
    bias may be given as (out,) or (1, out), as the seeds print it. Errors say which parameter
    is wrong and what shape it needs."""
    layout = layout or spec.layout
    dtype = dtype or spec.np_dtype
    expected = spec.param_names
    missing = [n for n in expected if n not in given]
    extra = [n for n in given if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(map(str, extra))}")
        raise SpecError(f"parameters do not fit {spec.describe()}: {'; '.join(parts)} "
                        f"(it needs {', '.join(expected)})")
    params: Params = {}
    for name in expected:
        shape = spec.param_shape(name, layout)
        try:
            value = np.asarray(given[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise SpecError(f"parameter {name} is not a {_shape_text(shape)} array of numbers "
                            f"(a ragged or non-numeric list)") from None
        if name[0] == "b" and value.shape == (1, *shape):
            value = value[0]
        if value.shape != shape:
            raise SpecError(f"parameter {name} has shape {_shape_text(value.shape)}; "
                            f"{spec.describe()} needs {_shape_text(shape)}")
        if not np.all(np.isfinite(value)):
            raise SpecError(f"parameter {name} holds NaN or infinite values")
        if name[0] == "w" and layout == "in_out":
            value = value.T
        params[name] = np.ascontiguousarray(value, dtype=dtype)
    return params


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(int(n) for n in shape))


def flat(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """All parameters as one float64 vector, in name order w1, b1, w2, ..."""
    return np.concatenate([np.ravel(v).astype(np.float64) for v in params.values()])


def unflat(spec: NetworkSpec, vectors: np.ndarray) -> Params:
    """The inverse of `flat` along the last axis: vectors (..., P) -> {name: (..., *shape)},
    views, in the engine layout."""
    params: Params = {}
    offset = 0
    for name in spec.param_names:
        shape = spec.param_shape(name, "out_in")
        size = int(np.prod(shape))
        params[name] = vectors[..., offset:offset + size].reshape(*vectors.shape[:-1], *shape)
        offset += size
    return params


def drift(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """||θ_a - θ_b||, the Euclidean distance between two parameter sets."""
    return float(np.linalg.norm(flat(a) - flat(b)))
