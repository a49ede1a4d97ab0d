"""Naming the mistake behind a gradient file by making it again.

Given the network, its parameters and the samples two files were made from, the scratch engine
runs once right and once with each catalogued mistake (engine/check/mistakes.py), as an export runs
it: batch size 1, and an SGD step after each sample when a file's notes give a learning rate.
The file that a right run does not make is the suspect, and the mistake whose run makes it is
named. Numpy only: torch is not needed to find it.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.check.align import Aligned, evidence
from engine.check.diagnosis import holds
from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import Injection, injections
from engine.check.rounding import WITHIN, rounding_bounds, unit_roundoff
from engine.errors import UserInputError
from engine.files.datasets import Dataset, load_csv
from engine.files.gradset import GradientSet
from engine.files.model_file import read_model
from engine.files.readers import DATA_SIDECAR, SIDECAR
from engine.net.params import Params
from engine.net.spec import NetworkSpec

# a run is first tried on this many samples; only the mistakes that make those are run in full
SCREEN = 64
# a run makes a file when every sample of every parameter is within this much of the sample's
# largest |value|: far above float32 rounding, even grown along an SGD run (where elementwise
# tolerances fail on small values), and far below what any catalogued mistake changes
MAKES_RTOL = 1e-3
# the bounds of every sample's gradients are held at once, several times over: up to ~0.4 GB
MAX_BOUND_VALUES = 10_000_000
_LR_NOTE = ("SGD along the way: after each sample each engine took a step with its own "
            "gradients, learning rate {lr!r}")
_LR = re.compile(r"SGD along the way: .*learning rate (\S+)$")


def along_the_way_note(lr: float) -> str:
    """The note an export made with SGD along the way writes into both files."""
    return _LR_NOTE.format(lr=float(lr))


def learning_rate_in(notes: Sequence[str]) -> float:
    """The learning rate a file's notes give (see `along_the_way_note`), else 0."""
    for note in notes:
        if m := _LR.search(note):
            try:
                return float(m[1])
            except ValueError:
                continue
    return 0.0


def injected_note(injection: Injection) -> str:
    """The note of the scratch file of an export that made a mistake on purpose."""
    return f"injected mistake: {injection.describe()}: {injection.mistake.description}"


@dataclass
class Reproduction:
    """suspect: "A" or "B", the file a right run does not make (None when both or neither);
    reproduced_by: the label of the mistake whose run makes it (None when none does);
    also: other labels that make it just as well; sentences: what to tell the user."""

    suspect: str | None = None
    reproduced_by: str | None = None
    also: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


def reproduce(aligned: Aligned, spec: NetworkSpec, params: Mapping[str, np.ndarray],
              x: np.ndarray, y: np.ndarray, lr: float,
              source: str = "the model and data") -> Reproduction:
    """Run the scratch engine on x (N, n_in), y (N, n_out) right and with every catalogued
    mistake, and say which of the aligned files A and B each run makes. `source` says where
    the network, parameters and samples came from."""
    result = Reproduction()
    if len(x) != aligned.samples:
        result.sentences.append(f"{source} has {len(x)} samples and the files "
                                f"{aligned.samples}: no run was made to name the mistake")
        return result
    lr_text = f" with SGD at learning rate {lr:g} along the way" if lr else ""
    try:
        with np.errstate(all="ignore"):
            right = _run(spec, params, x, y, lr, None, aligned, len(x))
    except (UserInputError, ValueError):
        result.sentences.append(f"{source} does not fit the files' parameters: no run was "
                                "made to name the mistake")
        return result
    sides = {"A": aligned.a, "B": aligned.b}
    made = {side: _makes(right, files) for side, files in sides.items()}
    if made["A"] and made["B"]:
        return result
    suspects = [side for side in sides if not made[side]]
    if len(suspects) == 1:
        result.suspect = suspects[0]
        other = "B" if suspects[0] == "A" else "A"
        result.sentences.append(f"a right run of {source}{lr_text} makes {other} and not "
                                f"{suspects[0]}, so {suspects[0]} holds the mistake")
    else:
        result.sentences.append(f"a right run of {source}{lr_text} makes neither file: they "
                                "may come from other parameters, samples or learning rate")
    candidates = [i for i in injections(spec) if lr or not i.mistake.needs_updates]
    for side in suspects:
        found = _matching(candidates, spec, params, x, y, lr, aligned, sides[side])
        if found:
            result.suspect, result.reproduced_by, result.also = side, found[0].label, [
                i.label for i in found[1:]]
            result.sentences.append(_named(side, found))
            return result
    who = " or ".join(suspects)
    result.sentences.append(f"none of the {len(candidates)} catalogued mistakes (each in the "
                            f"whole network and in single layers) makes {who}: the mistake is "
                            "not one of the catalogue's")
    return result


@dataclass(frozen=True)
class KnownRun:
    """The network, its parameters (engine layout, as given) and the samples x (N, n_in),
    y (N, n_out) two files were made from, the learning rate of an SGD along the way (0: none),
    and `source`, where they came from in words. spec's dtype is the files' where both state
    the same one: the run is made again as they were made."""

    spec: NetworkSpec
    params: Mapping[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    lr: float
    source: str


def known_run(files: tuple[GradientSet, GradientSet], spec: NetworkSpec | None,
              params: Mapping[str, np.ndarray] | None, data: Dataset | None) -> KnownRun | None:
    """What is known of the run behind two files: `spec` with `params`, else a model.json
    beside either file; `data`, else a data.csv beside either file, else the samples a file
    records. None when the network or the samples are not known."""
    folders = list(dict.fromkeys(Path(gs.source).parent for gs in files))

    def beside(folder: Path) -> str:
        holders = [side for side, gs in zip("AB", files, strict=True)
                   if Path(gs.source).parent == folder]
        return "the files" if len(holders) == 2 else holders[0]

    model_text = "the given model"
    if spec is None or params is None:
        spec = params = None
        for folder in folders:
            try:
                found = read_model(folder / SIDECAR)
            except UserInputError:
                continue
            spec, params, model_text = found.spec, found.params, f"{SIDECAR} beside "
            model_text += beside(folder)
            break
    if spec is None or params is None:
        return None
    stated = files[0].dtype
    if stated is not None and stated == files[1].dtype and stated != spec.dtype:
        spec = spec.with_options(dtype=stated)
    x = y = None
    if data is not None:
        x, y, data_text = data.exact[0], data.exact[1], data.name
    for folder in folders if x is None else []:
        try:
            found_data = load_csv(folder / DATA_SIDECAR, spec)
        except UserInputError:
            continue
        x, y = found_data.exact
        data_text = f"{DATA_SIDECAR} beside {beside(folder)}"
        break
    for side, gs in zip("AB", files, strict=True) if x is None else []:
        if gs.x is not None and gs.y is not None:
            x, y, data_text = gs.x, gs.y, f"the samples {side} records"
            break
    if x is None or y is None:
        return None
    model_name, _, model_place = model_text.partition(" beside ")
    data_name, _, data_place = data_text.partition(" beside ")
    source = (f"{model_name} and {data_name} beside {model_place}"
              if model_place and model_place == data_place else f"{model_text}, on {data_text}")
    lr = learning_rate_in(files[0].notes + files[1].notes)
    # the numbers as given, converted once to the dtype the run is made in
    return KnownRun(spec, {k: np.asarray(v).astype(spec.np_dtype) for k, v in params.items()},
                    np.asarray(x, np.float64).astype(spec.np_dtype),
                    np.asarray(y, np.float64).astype(spec.np_dtype), lr, source)


def reproduce_files(aligned: Aligned, files: tuple[GradientSet, GradientSet],
                    spec: NetworkSpec | None, params: Mapping[str, np.ndarray] | None,
                    data: Dataset | None) -> Reproduction:
    """`reproduce` for two files read and aligned, with the run known_run finds; nothing
    known: an empty Reproduction."""
    run = known_run(files, spec, params, data)
    if run is None:
        return Reproduction()
    return reproduce(aligned, run.spec, run.params, run.x, run.y, run.lr, run.source)


def within_rounding(aligned: Aligned, run: KnownRun) -> dict[str, bool] | None:
    """Per parameter, whether every difference of the aligned files is within what rounding
    explains for two correct files of `run` (see rounding_tolerances); None where that cannot
    be told: an SGD along the way, other samples, or files a right run does not make."""
    if run.lr or len(run.x) != aligned.samples \
            or len(run.x) * run.spec.n_params > MAX_BOUND_VALUES:
        return None
    try:
        with np.errstate(all="ignore"):
            right = _run(run.spec, run.params, run.x, run.y, 0.0, None, aligned, len(run.x))
            tolerance = rounding_tolerances(aligned, run)
    except (UserInputError, ValueError):
        return None
    if not (_makes(right, aligned.a) and _makes(right, aligned.b)):
        return None
    within = {}
    for name, limit in tolerance.items():
        a, b = aligned.a[name].astype(np.float64), aligned.b[name].astype(np.float64)
        with np.errstate(invalid="ignore"):
            within[name] = bool(np.all(np.abs(a - b) <= limit))
    return within


def rounding_tolerances(aligned: Aligned, run: KnownRun) -> Params:
    """Per parameter, (N, *shape) as the aligned files hold it: how far two correct files of
    `run` (at learning rate 0) may differ by rounding, the sum of two passes' tolerances
    (engine/check/rounding.py)."""
    with np.errstate(all="ignore"):
        _, bounds = rounding_bounds(run.spec, run.params, run.x, run.y)
    scale = 2 * WITHIN * unit_roundoff(run.spec.np_dtype)
    grads = {name: scale * bounds[f"dL/d{name}"] for name in run.spec.param_names}
    return shaped_like(aligned, run.spec, grads)


def _named(file: str, found: list[Injection]) -> str:
    first = found[0]
    swap = first.swaps()[0]
    sentence = (f"{file} is made again by the scratch engine with the mistake {first.label} "
                f"({first.mistake.title.lower()}): it computes {swap.used} where {swap.right} "
                "is right")
    if len(found) > 1:
        sentence += f" (so do {', '.join(i.label for i in found[1:])})"
    return sentence


def _matching(candidates: list[Injection], spec: NetworkSpec, params: Mapping[str, np.ndarray],
              x: np.ndarray, y: np.ndarray, lr: float, aligned: Aligned,
              target: dict[str, np.ndarray]) -> list[Injection]:
    """The candidates whose run makes `target`: tried on the first SCREEN samples, then in
    full."""
    n = len(x)
    head = {name: values[:SCREEN] for name, values in target.items()}
    found = []
    with np.errstate(all="ignore"):
        for injection in candidates:
            run = _run(spec, params, x, y, lr, injection, aligned, min(n, SCREEN))
            if not _makes(run, head):
                continue
            if n > SCREEN:
                run = _run(spec, params, x, y, lr, injection, aligned, n)
                if not _makes(run, target):
                    continue
            found.append(injection)
    return found


def _run(spec: NetworkSpec, params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
         lr: float, injection: Injection | None, aligned: Aligned, n: int) -> Params:
    """The scratch engine's per-sample gradients of the first n samples, shaped as the aligned
    files hold them (their layout, their shapes)."""
    net = scratch_net(spec, params, injection)
    _, grads = net.gradients_along(x[:n], y[:n], lr)
    return shaped_like(aligned, spec, grads)


def shaped_like(aligned: Aligned, spec: NetworkSpec, grads: Mapping[str, np.ndarray]) -> Params:
    """Per-sample arrays {name: (n, *engine shape)} shaped as the aligned files hold them
    (their layout, their shapes)."""
    layout = _aligned_layout(aligned, spec)
    shaped = {}
    for name, values in grads.items():
        want = aligned.a[name].shape[1:]
        # our runs are (out, in); the files' layout turns every weight, square ones too, and
        # only where no layout is known do the shapes decide, one weight at a time
        turned = values.shape[1:][::-1]
        if name.startswith("w") and (layout == "in_out" or (
                layout is None and values.shape[1:] != want and turned == want)):
            values = values.transpose(0, 2, 1)
        shaped[name] = values.reshape(len(values), *want)
    return shaped


def _aligned_layout(aligned: Aligned, spec: NetworkSpec) -> str | None:
    """The weight layout of the aligned arrays: the one alignment found, else the one their
    non-square weights show against `spec`'s (out, in) shapes, square ones included."""
    if aligned.layout is not None:
        return aligned.layout
    shapes = {name: tuple(values.shape[1:]) for name, values in aligned.a.items()}
    return evidence(shapes, {name: spec.param_shape(name, "out_in") for name in shapes}
                    ).layout("out_in")


def _makes(run: Params, target: Mapping[str, np.ndarray]) -> bool:
    n = len(next(iter(run.values())))
    return all(np.isfinite(run[name]).all() and holds(run[name], target[name][:n], MAKES_RTOL)
               for name in run)
