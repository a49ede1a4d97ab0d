"""A user's function that takes the whole batch: one call with x of shape (N, n0) and y of
shape (N, nL), returning each gradient (and each stage) with a leading axis of the N samples.

    found = read_gradient_batch(returned, n, param_shapes, "gradients")
    found.samples    # n dicts, what per-sample calls would have returned; None when not so
    found.note       # how the call was read, or why it could not be

Whether a return holds the samples is told by shape alone, and strictly: every array has the
leading axis n, and after it a parameter's own shape (a bias's also as (1, k)), the arrays
covering every parameter once. A sum or a mean over the batch has the parameters' own shapes,
one axis fewer, and is never read so, even where n equals a layer's width. n = 1 cannot be
told apart from one sample's return, so a batch of one is never tried. Stages are read the
same way, each against its stage's number of elements (a z may be (N, n) or (N, 1, n)); a loss
that is one number for the whole batch is left out, with a note, rather than refusing the rest.

Nothing here runs the user's code: engine/usercode_child.py and engine/usercode.py call it,
each under its own rules, and hand what it returned to these readers.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.check.stage_names import stage_key
from engine.net.spec import NetworkSpec
from engine.net.stages import stage_plan

BATCH, PER_SAMPLE = "batch", "per sample"   # how a function was called, as --json says it
LOSS = "loss"


@dataclass(frozen=True)
class BatchReading:
    """What one call with the whole batch gave: the samples (None when the call cannot be read
    as them), a sentence saying how it was read or why not, and whether that sentence explains
    a failure of the calls per sample after it (a function that sums or averages over the
    batch, called with one sample, often fails; any other it would only confuse)."""

    samples: list[dict[str, np.ndarray]] | None
    note: str
    explains: bool = False


def batch_shape(x: np.ndarray, y: np.ndarray) -> str:
    return f"x {tuple(x.shape)}, y {tuple(y.shape)}"


def taken(which: str, x: np.ndarray, y: np.ndarray,
          samples: list[dict[str, np.ndarray]]) -> BatchReading:
    return BatchReading(samples, f"{which}() took the whole batch: one call with "
                                 f"{batch_shape(x, y)}, each array's first axis the samples")


def refused(which: str, x: np.ndarray, y: np.ndarray, why: str,
            explains: bool = False) -> BatchReading:
    return BatchReading(None, f"{which}() was called one sample at a time: called with the "
                              f"whole batch ({batch_shape(x, y)}), {why}", explains)


def raised(which: str, x: np.ndarray, y: np.ndarray, error: BaseException) -> BatchReading:
    """The batch call raised: the function is one for a single sample, most likely."""
    return refused(which, x, y, f"it raised {type(error).__name__}")


def read_gradient_batch(arrays: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                        param_shapes: Sequence[tuple[int, ...]],
                        which: str) -> BatchReading:
    """`arrays` (what gradients() returned for x (n, n0), y (n, nL), by the user's names) read
    as the n samples' gradients when every array is (n, *a parameter's shape), or (n, 1, k)
    for a bias (k,), and they cover every parameter once; otherwise why not."""
    n = len(x)
    shapes = {name: tuple(np.shape(value)) for name, value in arrays.items()}
    if not shapes:
        return refused(which, x, y, "it returned an empty dict")
    # one sample's shapes: a weight's gradient of the whole batch has one axis more than any
    if all(any(shape in _forms(p) for p in param_shapes) for shape in shapes.values()):
        return refused(which, x, y, f"it returned the parameters' own shapes ({_listed(shapes)}): "
                                    "a sum or a mean over the samples, which cannot be split "
                                    "into them", explains=True)
    for name, shape in shapes.items():
        if not shape or shape[0] != n:
            return refused(which, x, y, f"it returned {name!r} of shape {shape}, not "
                                        f"{n} samples' (a first axis of {n})")
    if not _covers([shape[1:] for shape in shapes.values()],
                   [_forms(p) for p in param_shapes]):
        wanted = ", ".join(f"({n}, {', '.join(map(str, p))})" for p in param_shapes)
        return refused(which, x, y, f"it returned {_listed(shapes)}, where {n} samples' "
                                    f"gradients are {wanted}")
    return taken(which, x, y, _split(arrays, n))


def stage_sizes(spec: NetworkSpec) -> dict[str, int]:
    """The number of elements of each stage of one sample, by stage key."""
    sizes = spec.sizes
    found = {}
    for info in stage_plan(spec):
        key = info.key
        if key == LOSS:
            found[key] = 1
        elif key in ("y_hat", "dL/dy_hat"):
            found[key] = sizes[-1]
        else:
            layer = int(re.search(r"(\d+)$", key).group(1))
            found[key] = sizes[layer] * (sizes[layer - 1] if key.startswith("dL/dw") else 1)
    return found


def read_stage_batch(arrays: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                     sizes: Mapping[str, int], n_layers: int,
                     which: str) -> BatchReading:
    """`arrays` (what stages() returned for the whole batch) read as the n samples' stages:
    each stage named has a first axis of n and the stage's number of elements after it. A
    loss of one number is left out (it is the batch's), names that are no stage are kept for
    every sample (the comparison notes and leaves them out)."""
    n = len(x)
    kept, split = {}, {}
    for name, value in arrays.items():
        key = stage_key(name, n_layers)
        shape = tuple(np.shape(value))
        if key is None or (key == LOSS and int(np.size(value)) == 1):
            kept[name] = value
        elif not shape or shape[0] != n or int(np.prod(shape[1:])) != sizes.get(key, -1):
            return refused(which, x, y, f"it returned {name!r} ({key}) of shape {shape}, where "
                                        f"{n} samples' are ({n}, ...) of {sizes.get(key)} "
                                        "each")
        else:
            split[name] = value
    if not split:
        return refused(which, x, y, "it returned no stage with a first axis of the samples")
    reading = taken(which, x, y, [{**sample, **{name: kept[name] for name in kept
                                                if stage_key(name, n_layers) != LOSS}}
                                  for sample in _split(split, n)])
    loss = next((name for name in kept if stage_key(name, n_layers) == LOSS), None)
    if loss is None:
        return reading
    return BatchReading(reading.samples, f"{reading.note}; {loss!r}, one number for the whole "
                                         f"batch, is left out (the samples' losses, shape "
                                         f"({n},), are compared)")


def _forms(shape: Sequence[int]) -> set[tuple[int, ...]]:
    """The shapes one sample's gradient of a parameter of `shape` may have: its own, and a
    bias's (k,) also as (1, k)."""
    shape = tuple(shape)
    return {shape, (1, *shape)} if len(shape) == 1 else {shape}


def _covers(tails: list[tuple[int, ...]], allowed: list[set[tuple[int, ...]]]) -> bool:
    """Whether each parameter (its allowed shapes) gets one of `tails` of its own: a matching
    (Kuhn's augmenting paths), because a (1, k) may be a bias or a one-row weight."""
    owner: dict[int, int] = {}

    def place(tail: int, seen: set[int]) -> bool:
        for param, forms in enumerate(allowed):
            if tails[tail] in forms and param not in seen:
                seen.add(param)
                if param not in owner or place(owner[param], seen):
                    owner[param] = tail
                    return True
        return False

    for tail in range(len(tails)):
        place(tail, set())
    return len(owner) == len(allowed)


def _split(arrays: Mapping[str, np.ndarray], n: int) -> list[dict[str, np.ndarray]]:
    return [{name: np.asarray(value)[k] for name, value in arrays.items()} for k in range(n)]


def _listed(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{name} {shape}" for name, shape in shapes.items())
