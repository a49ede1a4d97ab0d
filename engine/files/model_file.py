"""Model files (.json): a network and, optionally, its parameters.

{"sizes": [2, 10, 10, 1], "activations": ["sigmoid", "sigmoid", "identity"],
 "loss": "squared_error", "dtype": "float32", "layout": "out_in",
 "params": {"w1": [[...]], "b1": [...], ...}}

dtype, layout and params are optional; without params the network is initialised from a seed.
Weights are stored in the file's layout. Reading never runs anything from the file.

The numbers are read at float64 and kept so: a run converts them once, to the dtype it computes
in (`Model.run`). A float64 run of a file that states no dtype is then bit-identical to the run
of the same file saying "dtype": "float64", instead of going through float32 on the way.
"""

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import SpecError, UserInputError
from engine.files.atomic import atomic_write_text
from engine.files.textfile import read_text
from engine.net.params import Params, from_layout, init_params, out_of_range, to_layout
from engine.net.spec import SPEC_KEYS, NetworkSpec

MAX_MODEL_BYTES = 50 * 1024 * 1024
MODEL_KEYS = (*SPEC_KEYS, "params")


@dataclass(frozen=True)
class Model:
    """A network and its parameters (engine layout: w_l (out, in)), in float64 as the file
    gives them, or as drawn from the seed where it gives none. `stated` holds which of "dtype"
    and "layout" the file names: where it names none, the spec carries the default."""

    spec: NetworkSpec
    params: Params
    stated: frozenset[str] = frozenset()

    def run(self, dtype: str | None = None, layout: str | None = None
            ) -> tuple[NetworkSpec, Params]:
        """The spec with `dtype` and `layout` applied where given (the file's, else the
        defaults, where not), and the parameters converted once to that dtype. A value that
        dtype cannot hold (1e39 in float32) is a SpecError naming it."""
        changes = {k: v for k, v in (("dtype", dtype), ("layout", layout)) if v}
        spec = self.spec.with_options(**changes) if changes else self.spec
        _check_range(spec, self.params)
        return spec, {k: v.astype(spec.np_dtype) for k, v in self.params.items()}


def model_to_dict(spec: NetworkSpec, params: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The model file's content, weights in the spec's layout, each value the shortest decimal
    that reads back to the same number in the spec's dtype."""
    shown = to_layout(params, spec.layout)
    return {**spec.to_dict(),
            "params": {name: _plain(shown[name]) for name in spec.param_names}}


def _plain(value: np.ndarray) -> Any:
    # str() of a numpy scalar is its shortest round-trip form; float() of it keeps that
    if value.ndim == 0:
        return float(str(value))
    return [_plain(v) for v in value]


def _check_range(spec: NetworkSpec, params: Params) -> None:
    """Refuse a parameter `spec`'s dtype cannot hold, at its place in the file's layout."""
    for name, value in params.items():
        shown = value.T if name[0] == "w" and spec.layout == "in_out" else value
        beyond = out_of_range(shown, spec.np_dtype)
        if beyond:
            index, number = beyond
            raise SpecError(f"params.{name}{index} is {number:g}, beyond the range of "
                            f"{spec.dtype} (±{float(np.finfo(spec.np_dtype).max):.4g})")


def model_from_dict(data: Any, seed: int = 0) -> Model:
    """Check a parsed model file and build it; without params, initialise from `seed`."""
    if not isinstance(data, dict):
        raise SpecError("a model file must hold one JSON object with keys "
                        f"{', '.join(MODEL_KEYS)}")
    unknown = [k for k in data if k not in MODEL_KEYS]
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(map(repr, unknown))}; "
                        f"valid: {', '.join(MODEL_KEYS)}")
    spec = NetworkSpec.from_dict(data)
    stated = frozenset(k for k in ("dtype", "layout") if k in data)
    if "params" not in data:
        # drawn at float64: converted to float32 they are init_params of a float32 spec
        return Model(spec, init_params(spec.with_options(dtype="float64"), seed), stated)
    if not isinstance(data["params"], dict):
        raise SpecError("'params' must be an object mapping w1, b1, ... to arrays")
    params = from_layout(spec, data["params"], dtype=np.float64, where="params.")
    _check_range(spec, params)
    return Model(spec, params, stated)


def read_model(path: str | os.PathLike, seed: int = 0) -> Model:
    """Read a model file; every problem is a UserInputError starting with the file's name."""
    name = os.fspath(path)
    text = read_text(name, MAX_MODEL_BYTES, "a model file", SpecError)
    try:
        return model_from_dict(load_json(text), seed)
    except json.JSONDecodeError as e:
        raise SpecError(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: "
                        f"{e.msg})") from None
    except RecursionError:
        raise SpecError(f"{name}: nested too deeply to be a model file") from None
    except UserInputError as e:
        if str(e).startswith(f"{name}:"):
            raise
        raise SpecError(f"{name}: {e}") from None


def load_json(text: str) -> Any:
    """`text` parsed as JSON, every number as JSON means it: a whole number too long for int()
    (its limit is 4300 digits) or too large for a float, and a decimal beyond float64 (1e999),
    come as an UnreadableNumber, which no check takes for a number and whose repr says what it
    is; NaN and Infinity are a SpecError. Other errors as json.loads raises them."""
    return json.loads(text, parse_constant=_no_constants, parse_int=_whole,
                      parse_float=_decimal)


class UnreadableNumber:
    """A number in a JSON file that no float holds; repr: "a 5000-digit number"."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        digits = len(self.text.lstrip("-"))
        shown = self.text if digits <= 20 else f"a {digits}-digit number"
        return f"{shown}, too large for a float"

    __str__ = __repr__


# 309 digits is the longest a whole number below float64's largest (1.8e308) has
_MAX_INT_DIGITS = 309


def _whole(text: str) -> int | UnreadableNumber:
    if len(text) > _MAX_INT_DIGITS + 1:
        return UnreadableNumber(text)
    value = int(text)
    try:
        float(value)
    except OverflowError:
        return UnreadableNumber(text)
    return value


def _decimal(text: str) -> float | UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else UnreadableNumber(text)


def _no_constants(token: str) -> float:
    raise SpecError(f"{token} is not a number a model may hold")


def write_model(path: str | os.PathLike, spec: NetworkSpec,
                params: Mapping[str, np.ndarray]) -> None:
    """Write a model file atomically (a temp file, then a rename)."""
    atomic_write_text(path, json.dumps(model_to_dict(spec, params), indent=1) + "\n")
