"""Aligning two gradient sets before they are compared: same samples, same parameters, and every
array in the same orientation and shape.

Layouts come from a file's header or its model.json (GradientSet.layout), or from a model given
by the user. Where the two differ, weights are transposed, square ones too, and a note says so.
A file that states no layout was written by one piece of code, so it has one layout: where the
shapes of its non-square weights show it against the other file's (or the model's), it holds for
every weight, square ones included. Where nothing shows it, a matrix that is the transpose of the
other file's is transposed, a flat vector whose length matches the other file's matrix is
reshaped row-major, and the note says the rest is a guess. Everything that was assumed goes into
the notes, and what cannot be aligned is a GradientFileError naming the file.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from engine.files.gradset import GradientFileError, GradientSet, shape_text
from engine.net.spec import NetworkSpec

Shapes = Mapping[str, tuple[int, ...]]
_WORDS = {"out_in": "(out, in)", "in_out": "(in, out)"}
_OTHER = {"out_in": "in_out", "in_out": "out_in"}
_HOW_TO_STATE = ('to state it, put a model.json with "layout" beside the file, give --model, '
                 'or, in one of our .dat files, write the header line "# layout: in_out" '
                 '(or out_in)')


@dataclass
class Aligned:
    """Per parameter, both files' gradients stacked over samples in one orientation:
    a[name] and b[name] are (N, *shape), shape being file A's (or the model's) for one sample.
    layout is the weight layout of those arrays when known, stated or shown by shapes."""

    a: dict[str, np.ndarray]
    b: dict[str, np.ndarray]
    names: list[str]
    samples: int
    layout: str | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """What the shapes of a set's non-square weights say against a reference's: `same` names
    those of the reference's shape, `turned` those of its transpose, `square` the 2-D weights
    whose shape cannot tell."""

    same: tuple[str, ...]
    turned: tuple[str, ...]
    square: tuple[str, ...]

    def layout(self, reference_layout: str) -> str | None:
        """The set's layout, given the reference's; None unless every witness agrees."""
        if (self.same and self.turned) or not (self.same or self.turned):
            return None
        return _OTHER[reference_layout] if self.turned else reference_layout


def evidence(shapes: Shapes, reference: Shapes) -> Evidence:
    """Compare one sample's weight shapes with the reference's, weight by weight; flat vectors
    and shapes that fit neither way show nothing."""
    same, turned, square = [], [], []
    for name, shape in shapes.items():
        want = reference.get(name, ())
        if not name.startswith("w") or len(shape) != 2 or len(want) != 2:
            continue
        if shape[0] == shape[1]:
            square.append(name)
        elif shape == want:
            same.append(name)
        elif shape[::-1] == want:
            turned.append(name)
    return Evidence(tuple(same), tuple(turned), tuple(square))


def align(a: GradientSet, b: GradientSet, model: NetworkSpec | None = None) -> Aligned:
    """Bring `b` into `a`'s orientation (or both into `model`'s); see the module's notes."""
    if a.n_samples != b.n_samples:
        raise GradientFileError(b.source, f"has {b.n_samples} samples but {a.source} has "
                                f"{a.n_samples}; both must hold the same samples in order")
    if set(a.names) != set(b.names):
        raise GradientFileError(b.source, f"holds {', '.join(b.names)} but {a.source} holds "
                                f"{', '.join(a.names)}")
    notes: list[str] = []
    stated_a, stated_b = _layout_of(a), _layout_of(b)
    layout_a, layout_b = stated_a, stated_b
    if model is not None:
        want = {name: model.param_shape(name) for name in a.names}
        if stated_a is None:
            layout_a = _shown(a, want, model.layout, "the model's", notes, given=True)
        if stated_b is None:
            layout_b = _shown(b, want, model.layout, "the model's", notes, given=True)
    elif stated_a is None and stated_b is None:
        notes.append("neither file states its weight layout: both are taken as torch's "
                     "(out, in) unless their shapes show otherwise")
        # A is (out, in) only by that guess: B's shapes show how B stands against A
        if _shown(b, _shapes(a), "out_in", f"{a.source}'s", notes, stated=False) == "in_out":
            layout_a, layout_b = "out_in", "in_out"
    elif stated_b is None:
        layout_b = _shown(b, _shapes(a), stated_a, f"{a.source}'s", notes)
    elif stated_a is None:
        layout_a = _shown(a, _shapes(b), stated_b, f"{b.source}'s", notes, moved=False)
    # without a model the arrays are A's, whose layout is known where either file states one
    known = model.layout if model else layout_a if stated_a or stated_b else None
    aligned = Aligned({}, {}, a.names, a.n_samples, known, notes)
    for name in a.names:
        va, vb = a.stacked(name), b.stacked(name)
        if model is not None:
            want_shape = model.param_shape(name)
            va = _fit(va, want_shape, layout_a, model.layout, a, name, notes, "the model's",
                      told=stated_a is not None)
            vb = _fit(vb, want_shape, layout_b, model.layout, b, name, notes, "the model's",
                      told=stated_b is not None)
        else:
            vb = _fit(vb, va.shape[1:], layout_b, layout_a, b, name, notes, f"{a.source}'s",
                      told=stated_b is not None)
        aligned.a[name], aligned.b[name] = va, vb
    return aligned


def _layout_of(gs: GradientSet) -> str | None:
    if gs.layout is None and gs.spec is not None:
        return gs.spec.layout
    return gs.layout


def _shapes(gs: GradientSet) -> dict[str, tuple[int, ...]]:
    return {name: gs.shape(name) for name in gs.names}


def _names(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _shown(gs: GradientSet, reference: Shapes, reference_layout: str, against: str,
           notes: list[str], *, given: bool = False, stated: bool = True,
           moved: bool = True) -> str | None:
    """The layout of `gs`, which states none, as its weights' shapes show it against
    `reference` (in `reference_layout`), with one note saying so; None where they do not.
    given: a model gives the layout where shapes do not show it; stated: the reference's
    layout is known, not guessed; moved: gs is the file turned to align (not the other)."""
    found = evidence(_shapes(gs), reference)
    layout = found.layout(reference_layout)
    squares = _names(found.square) if found.square else ""
    if layout is not None:
        shown = f"as its {_names(found.same or found.turned)} " + (
            "shows" if len(found.same or found.turned) == 1 else "show")
        included = f", {squares} included" if squares else ""
        if not moved:
            too = f"; so is its {squares}" if squares else ""
            notes.append(f"{gs.source} is {_WORDS[layout]}, {shown} against {against}{too}")
        elif layout != reference_layout and stated:
            notes.append(f"{gs.source} is {_WORDS[layout]}, {shown}: every weight transposed "
                         f"to {against} {_WORDS[reference_layout]} to align{included}")
        elif layout != reference_layout:
            notes.append(f"{gs.source} is transposed against {against}, {shown}: every weight "
                         f"transposed to align{included}")
        elif not given:
            like = f"{_WORDS[layout]} like {against}" if stated else f"laid out like {against}"
            notes.append(f"{gs.source} is {like}, {shown}: every weight taken as it "
                         f"is{included}")
        return layout
    square = f", square ones ({squares}) as they are" if squares else ""
    if found.same and found.turned:
        notes.append(f"{gs.source}'s weights do not show one layout: {_names(found.same)} as "
                     f"{against}, {_names(found.turned)} transposed; each is aligned by its "
                     f"shape{square}")
    elif not given:
        weights = [name for name in gs.names if name.startswith("w")]
        why = (f"{gs.source}'s weights are all square, so their shapes cannot show its layout"
               if len(found.square) == len(weights) else
               f"no weight of {gs.source} shows its layout by its shape")
        taken = (f"it is taken as {against} {_WORDS[reference_layout]}" if stated
                 else f"it is taken to match {against}")
        notes.append(f"{why}: {taken}, a guess; {_HOW_TO_STATE}")
    return None


def _fit(values: np.ndarray, want: tuple[int, ...], have_layout: str | None,
         want_layout: str | None, gs: GradientSet, name: str, notes: list[str],
         against: str, *, told: bool) -> np.ndarray:
    """`values` (N, *shape) brought to (N, *want), noting each change; a weight whose layout
    differs from want_layout is transposed, each noted when `told` (its layout was stated)."""
    shape = values.shape[1:]
    is_weight = name.startswith("w")
    turn = (is_weight and len(want) == 2 and have_layout is not None
            and want_layout is not None and have_layout != want_layout)
    # the shape the file's own layout gives the weight
    own = want[::-1] if turn else want
    if turn and shape == own:
        if told:
            notes.append(f"{gs.source}: {name} is stored {have_layout}; transposed to "
                         f"{want_layout} to align")
        return values.transpose(0, 2, 1)
    if shape == want:
        if turn:
            notes.append(f"{gs.source}: {name} is {shape_text(shape)} as {against}, though "
                         f"stored {have_layout}: taken as it is")
        return values
    size = int(np.prod(want))
    if len(shape) == 2 and shape[::-1] == want and is_weight:
        notes.append(f"{gs.source}: {name} is {shape_text(shape)}, the transpose of "
                     f"{against} {shape_text(want)}: transposed to align")
        return values.transpose(0, 2, 1)
    if int(np.prod(shape)) == size and (len(shape) <= 1 or 1 in shape or len(want) <= 1):
        what = "a flat vector" if len(shape) == 1 else f"a {shape_text(shape)} array"
        if turn:
            notes.append(f"{gs.source}: {name} is {what} of {size} values; reshaped row-major "
                         f"to {shape_text(own)}, its {have_layout}, and transposed to "
                         f"{against} {shape_text(want)}")
            return values.reshape(len(values), *own).transpose(0, 2, 1)
        notes.append(f"{gs.source}: {name} is {what} of {size} values; reshaped row-major to "
                     f"{against} {shape_text(want)}")
        return values.reshape(len(values), *want)
    raise GradientFileError(gs.source, f"{name} has shape {shape_text(shape)}, which cannot be "
                            f"aligned with {against} {shape_text(want)}")
