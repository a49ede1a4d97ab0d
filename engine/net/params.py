"""Parameters w1, b1, w2, b2, ... of a network.

Inside the engine a parameter set is a dict name -> array in torch's layout: w_l of shape
(out, in), b_l of shape (out,). The spec's layout (out_in or in_out) only changes how weights are
shown and stored, through `to_layout` and `from_layout`.
"""

from collections.abc import Mapping

import numpy as np

from engine.errors import SpecError, printable
from engine.net.spec import NetworkSpec

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
                layout: str | None = None, dtype: type[np.floating] | None = None,
                where: str = "parameter ") -> Params:
    """Check user-given parameters against `spec` and return them in the engine's layout, in
    `dtype` (the spec's by default), converted once from the float64 they are read at.

    `given` maps w1, b1, ... to nested lists or arrays in `layout` (the spec's by default). A
    bias may be given as (out,) or (1, out), as the seeds print it. Only numbers are numbers:
    a string "0.5", true or false, null or a whole number too large for a float is refused at
    its place ("parameter w1[0][1] is the string '0.5', not a number"; `where` starts the
    place), as is a value that is not finite in `dtype` (1e39 in float32). Errors say which
    parameter is wrong and what shape it needs."""
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
        odd = odd_number(given[name], f"{where}{name}")
        if odd:
            raise SpecError(odd)
        try:
            value = np.asarray(given[name], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise SpecError(f"{where}{name} is not a {_shape_text(shape)} array of numbers "
                            f"(a ragged or non-numeric list)") from None
        if name[0] == "b" and value.shape == (1, *shape):
            value = value[0]
        if value.shape != shape:
            raise SpecError(f"{where}{name} has shape {_shape_text(value.shape)}; "
                            f"{spec.describe()} needs {_shape_text(shape)}")
        beyond = out_of_range(value, dtype)
        if beyond:
            index, number = beyond
            raise SpecError(f"{where}{name}{index} is {number}, "
                            + ("not a finite number" if not np.isfinite(number) else
                               f"beyond the range of {np.dtype(dtype).name} "
                               f"(±{float(np.finfo(dtype).max):.4g})"))
        if name[0] == "w" and layout == "in_out":
            value = value.T
        params[name] = np.ascontiguousarray(value, dtype=dtype)
    return params


def odd_number(value: object, where: str) -> str | None:
    """Where a nested list of numbers holds something else, the refusal that says so at its
    place ("w1[0][1] is the string '0.5', not a number"); None when it is all numbers (ints
    and floats: what JSON means by a number; bools are not). Arrays are numbers already."""
    stack = [value]
    while stack:  # the quick pass: a million numbers in ~15 ms
        item = stack.pop()
        if type(item) is list or type(item) is tuple:
            stack.extend(i for i in item if type(i) is not float)
        elif not _is_number(item):
            return _place_of_odd(value, where)
    return None


def _place_of_odd(value: object, where: str) -> str:
    """The first non-number in `value`, depth first, with its index."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, list | tuple) or not _is_number(item):
                found = _place_of_odd(item, f"{where}[{i}]")
                if found:
                    return found
        return ""
    if isinstance(value, bool):
        return f"{where} is {'true' if value else 'false'}, not a number"
    if isinstance(value, str):
        return f"{where} is the string {printable(value[:40])!r}, not a number"
    if value is None:
        return f"{where} is null, not a number"
    if isinstance(value, dict):
        return f"{where} is an object, not a number"
    if _is_number(value):
        return ""
    return f"{where} is {value}"  # what the JSON reader put for a number it cannot hold


def _is_number(item: object) -> bool:
    return isinstance(item, int | float | np.number | np.ndarray) and not isinstance(item, bool)


def out_of_range(value: np.ndarray, dtype: type[np.floating]) -> tuple[str, float] | None:
    """The first value that is NaN, infinite, or too large for `dtype` (1e39 in float32), as
    ("[0][1]", the value); None when all fit."""
    bad = ~(np.abs(value) <= float(np.finfo(dtype).max))
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return "".join(f"[{i}]" for i in index), float(value[index])


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
