"""Aligning two gradient sets before they are compared: same samples, same parameters, and every
array in the same orientation and shape.

Layouts come from a file's header or its model.json (GradientSet.layout), or from a model given
by the user. Where the two differ, weights are transposed, square ones too, and a note says so.
Where a layout is unknown, shapes decide: a matrix that is the transpose of the other file's is
transposed, and a flat vector whose length matches the other file's matrix is reshaped
row-major. Everything that was assumed goes into the notes, and what cannot be aligned is a
GradientFileError naming the file.
"""

from dataclasses import dataclass, field

import numpy as np

from engine.gradset import GradientFileError, GradientSet, shape_text
from engine.spec import NetworkSpec


@dataclass
class Aligned:
    """Per parameter, both files' gradients stacked over samples in one orientation:
    a[name] and b[name] are (N, *shape), shape being file A's (or the model's) for one sample.
    layout is the weight layout of those arrays when known."""

    a: dict[str, np.ndarray]
    b: dict[str, np.ndarray]
    names: list[str]
    samples: int
    layout: str | None
    notes: list[str] = field(default_factory=list)


def align(a: GradientSet, b: GradientSet, model: NetworkSpec | None = None) -> Aligned:
    """Bring `b` into `a`'s orientation (or both into `model`'s); see the module's notes."""
    if a.n_samples != b.n_samples:
        raise GradientFileError(b.source, f"has {b.n_samples} samples but {a.source} has "
                                f"{a.n_samples}; both must hold the same samples in order")
    if set(a.names) != set(b.names):
        raise GradientFileError(b.source, f"holds {', '.join(b.names)} but {a.source} holds "
                                f"{', '.join(a.names)}")
    notes: list[str] = []
    layout_a, layout_b = _layout_of(a), _layout_of(b)
    if layout_a is None and layout_b is None and model is None:
        notes.append("neither file states its weight layout: both are taken as torch's "
                     "(out, in) unless their shapes show otherwise")
    aligned = Aligned({}, {}, a.names, a.n_samples, model.layout if model else layout_a, notes)
    for name in a.names:
        va, vb = a.stacked(name), b.stacked(name)
        if model is not None:
            want = model.param_shape(name)
            va = _fit(va, want, layout_a, model.layout, a, name, notes)
            vb = _fit(vb, want, layout_b, model.layout, b, name, notes)
        else:
            vb = _fit(vb, va.shape[1:], layout_b, layout_a, b, name, notes, other=a)
        aligned.a[name], aligned.b[name] = va, vb
    return aligned


def _layout_of(gs: GradientSet) -> str | None:
    if gs.layout is None and gs.spec is not None:
        return gs.spec.layout
    return gs.layout


def _fit(values: np.ndarray, want: tuple[int, ...], have_layout: str | None,
         want_layout: str | None, gs: GradientSet, name: str, notes: list[str],
         other: GradientSet | None = None) -> np.ndarray:
    """`values` (N, *shape) brought to (N, *want), noting each change."""
    shape = values.shape[1:]
    is_weight = name.startswith("w")
    against = f"{other.source}'s" if other else "the model's"
    if is_weight and len(shape) == 2 and have_layout and want_layout and have_layout != want_layout:
        notes.append(f"{gs.source}: {name} is stored {have_layout}; transposed to "
                     f"{want_layout} to align")
        values = values.transpose(0, 2, 1)
        shape = values.shape[1:]
    if shape == want:
        return values
    size = int(np.prod(want))
    if len(shape) == 2 and shape[::-1] == want and is_weight:
        notes.append(f"{gs.source}: {name} is {shape_text(shape)}, the transpose of "
                     f"{against} {shape_text(want)}: transposed to align")
        return values.transpose(0, 2, 1)
    if int(np.prod(shape)) == size and (len(shape) <= 1 or 1 in shape or len(want) <= 1):
        what = "a flat vector" if len(shape) == 1 else f"a {shape_text(shape)} array"
        notes.append(f"{gs.source}: {name} is {what} of {size} values; reshaped row-major to "
                     f"{against} {shape_text(want)}")
        return values.reshape(len(values), *want)
    raise GradientFileError(gs.source, f"{name} has shape {shape_text(shape)}, which cannot be "
                            f"aligned with {against} {shape_text(want)}")
