"""The network specification: layer sizes, one activation per layer, a loss, a dtype and the
weight layout used to show and store weights. Presets name the networks the seeds use."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.errors import SpecError
from engine.net.activations import ACTIVATIONS, activation
from engine.net.losses import LOSSES, loss

DTYPES: dict[str, type[np.floating]] = {"float32": np.float32, "float64": np.float64}
# out_in: W has shape (out, in) and z = x·Wᵀ + b, as torch stores it.
# in_out: W has shape (in, out) and z = x·W + b, as one seed writes it.
LAYOUTS = ("out_in", "in_out")
MAX_WIDTH = 4096
MAX_LAYERS = 100
SPEC_KEYS = ("sizes", "activations", "loss", "dtype", "layout")


def _valid(name: str, value: object, valid: tuple[str, ...] | Mapping[str, object]) -> None:
    if not isinstance(value, str) or value not in valid:
        raise SpecError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class NetworkSpec:
    """A fully connected network: sizes[0] inputs, then one layer per further size, each with
    its activation (len(activations) == len(sizes) - 1), ending in sizes[-1] outputs."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "squared_error"
    dtype: str = "float32"
    layout: str = "out_in"

    def __post_init__(self) -> None:
        sizes, acts = self.sizes, self.activations
        if isinstance(sizes, str | bytes) or not isinstance(sizes, tuple | list):
            raise SpecError(f"sizes must be a list of layer widths such as [2, 10, 10, 1], "
                            f"not {sizes!r}")
        if isinstance(acts, str | bytes) or not isinstance(acts, tuple | list):
            raise SpecError(f"activations must be a list of names, one per layer, not {acts!r}")
        object.__setattr__(self, "sizes", tuple(sizes))
        object.__setattr__(self, "activations", tuple(acts))
        if len(self.sizes) < 2:
            raise SpecError(f"sizes {list(self.sizes)} needs at least an input and an output "
                            "size, such as [2, 1]")
        if len(self.sizes) - 1 > MAX_LAYERS:
            raise SpecError(f"{len(self.sizes) - 1} layers is more than the {MAX_LAYERS} "
                            "this tool draws and checks")
        for i, n in enumerate(self.sizes):
            whole = isinstance(n, int | np.integer) and not isinstance(n, bool)
            if not whole or not 1 <= n <= MAX_WIDTH:
                what = "input size" if i == 0 else f"size of layer {i}"
                raise SpecError(f"{what} is {n!r}; it must be a whole number from 1 to {MAX_WIDTH}")
        object.__setattr__(self, "sizes", tuple(int(n) for n in self.sizes))
        if len(self.activations) != self.n_layers:
            raise SpecError(
                f"sizes {list(self.sizes)} make {self.n_layers} layer(s), so they need "
                f"{self.n_layers} activation(s); got {len(self.activations)}: "
                f"{list(self.activations)}"
            )
        for name in self.activations:
            activation(name)
        loss_ = loss(self.loss)
        _valid("dtype", self.dtype, DTYPES)
        _valid("layout", self.layout, LAYOUTS)
        if loss_.output_activation and self.activations[-1] != loss_.output_activation:
            raise SpecError(
                f"loss {self.loss!r} needs a {loss_.output_activation} output layer, but the "
                f"last activation is {self.activations[-1]!r}; valid losses for it: "
                + ", ".join(n for n, v in LOSSES.items() if v.output_activation is None)
            )

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def np_dtype(self) -> type[np.floating]:
        return DTYPES[self.dtype]

    @property
    def param_names(self) -> tuple[str, ...]:
        """w1, b1, w2, b2, ... from the input side."""
        return tuple(f"{kind}{layer}" for layer in range(1, self.n_layers + 1) for kind in "wb")

    @property
    def n_params(self) -> int:
        """How many numbers the parameters hold in all."""
        return sum(n_in * n_out + n_out for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:],
                                                          strict=True))

    def param_shape(self, name: str, layout: str | None = None) -> tuple[int, ...]:
        """Shape of one parameter in `layout` (the spec's own by default); biases are (out,)."""
        kind, layer = name[0], int(name[1:])
        n_in, n_out = self.sizes[layer - 1], self.sizes[layer]
        if kind == "b":
            return (n_out,)
        return (n_in, n_out) if (layout or self.layout) == "in_out" else (n_out, n_in)

    def describe(self) -> str:
        """One line a person reads: sizes, activations, loss, dtype, layout."""
        return (f"{'-'.join(map(str, self.sizes))} {'/'.join(self.activations)}, "
                f"{self.loss}, {self.dtype}, {self.layout}")

    def with_options(self, **changes: Any) -> "NetworkSpec":
        """A copy with some fields changed, validated again."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "activations": list(self.activations),
                "loss": self.loss, "dtype": self.dtype, "layout": self.layout}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkSpec":
        """Build from a mapping such as a model file's; dtype and layout are optional."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a network must be an object with keys {', '.join(SPEC_KEYS)}")
        for key in ("sizes", "activations", "loss"):
            if key not in data:
                raise SpecError(f"the network has no {key!r}; it needs "
                                "sizes, activations and loss (dtype and layout are optional)")
        return cls(**{key: data[key] for key in SPEC_KEYS if key in data})


PRESETS: dict[str, NetworkSpec] = {
    "2-10-10-1-sigmoid-squared": NetworkSpec((2, 10, 10, 1), ("sigmoid", "sigmoid", "identity")),
    "2-10-5-1-sigmoid-squared": NetworkSpec((2, 10, 5, 1), ("sigmoid", "sigmoid", "identity")),
    "2-2-1-tanh-bce": NetworkSpec((2, 2, 1), ("tanh", "sigmoid"), loss="bce"),
}
DEFAULT_PRESET = "2-10-10-1-sigmoid-squared"


def preset(name: str) -> NetworkSpec:
    """The preset network called `name`; an unknown name lists the valid ones."""
    _valid("preset", name, PRESETS)
    return PRESETS[name]


__all__ = ["ACTIVATIONS", "DEFAULT_PRESET", "DTYPES", "LAYOUTS", "LOSSES", "PRESETS",
           "NetworkSpec", "preset"]
