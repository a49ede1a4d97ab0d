"""A set of per-sample gradients read from, or to be written to, a gradient file.

Every reader (our .dat, printed text, torch.save, .npy/.npz) returns a GradientSet, and the
writer takes one. Parameter names are canonical: w1, b1, w2, b2, ... counted from the input side.
Arrays are kept as the file stores them (its layout, its shapes); aligning two sets is the
comparison's job.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn

import numpy as np

from engine.errors import UserInputError, printable
from engine.net.spec import MAX_LAYERS, NetworkSpec

MAX_FILE_BYTES = 200 * 1024 * 1024
# Parsing text costs about nine times its size in memory and 60 ms a megabyte for printed
# arrays of typical numbers, up to ~30 times (and ~1 s a megabyte) for the shortest numbers
# ("0,"): within ~1 GB at this size. What costs more than its size, many tiny arrays and many
# short rows, is bounded by count in engine/files/readers/text.py (MAX_TEXT_ARRAYS, MAX_TEXT_LISTS).
# A 100 MB printout would hold the window for seconds and take a gigabyte. Binary files (.npy,
# .npz, torch.save) cost their size, and may be larger; so may our own .dat files, which are
# read line by line into arrays sized from their header (engine/files/readers/dat.py).
MAX_TEXT_BYTES = 32 * 1024 * 1024
_NAME = re.compile(r"([wb])([1-9]\d*)")
Fail = Callable[[str], NoReturn]
# progress(done, total) as a long read goes on; returning True cancels it (ReadCancelled)
Progress = Callable[[int, int], bool | None]


class GradientFileError(UserInputError):
    """A gradient file that cannot be read or written. The message is one line that starts with
    the file's path and says what is wrong."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ReadCancelled(Exception):
    """The user stopped a read through its progress callback; nothing was read."""


def param_order(names: Iterable[str]) -> list[str]:
    """Canonical names sorted as w1, b1, w2, b2, ...; a name that is not canonical raises
    ValueError (a bug of ours: readers only produce canonical names)."""
    keyed = []
    for name in names:
        m = _NAME.fullmatch(name)
        if not m:
            raise ValueError(f"not a canonical parameter name: {name!r}")
        keyed.append((int(m[2]), m[1] == "b", name))
    return [name for *_, name in sorted(keyed)]


def clipped(text: str, length: int = 40) -> str:
    """`text` as a message may quote it: its first `length` characters, printable (a label of
    5000 digits or with escape codes shows as one short line), "..." where it is cut."""
    return printable(text[:length]) + ("..." if len(text) > length else "")


def shape_text(shape: tuple[int, ...]) -> str:
    """(10, 2), (10,) and () as Python writes them."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class StackedSamples(Sequence[Mapping[str, np.ndarray]]):
    """Samples held as one (N, *shape) array per parameter, as a reader that knows the sample
    count fills them. Sample k is a read-only mapping of views into those arrays: a value
    changed in place changes the set, and no per-sample arrays are made."""

    def __init__(self, arrays: Mapping[str, np.ndarray], n: int):
        self.arrays = dict(arrays)
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k: int | slice) -> Mapping[str, np.ndarray] | list:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._n))]
        if not -self._n <= k < self._n:
            raise IndexError(f"sample {k} of {self._n}")
        return MappingProxyType({name: a[k] for name, a in self.arrays.items()})

    def __iter__(self) -> Iterator[Mapping[str, np.ndarray]]:
        return (self[k] for k in range(self._n))


@dataclass
class GradientSet:
    """Gradients of one loss per sample, batch size 1.

    samples[k][name] is sample k's gradient for w1, b1, ... in the file's own layout and shape.
    x (N, n_in), y (N, n_out) and losses (N,) are there when the file has them. layout, dtype,
    engine and spec are None when the file does not say. notes are plain sentences about what
    the reader assumed, to show the user. printed_digits is, for printed text, the most
    significant digits any of its gradients prints: the precision it was printed with (None
    for binary files and ours, which lose nothing)."""

    samples: Sequence[Mapping[str, np.ndarray]]
    source: str
    layout: str | None = None
    dtype: str | None = None
    engine: str | None = None
    spec: NetworkSpec | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    losses: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    printed_digits: int | None = None

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def names(self) -> list[str]:
        """The parameter names in order w1, b1, w2, ... (those of the first sample)."""
        return param_order(self.samples[0]) if self.samples else []

    def shape(self, name: str) -> tuple[int, ...]:
        """One sample's shape of parameter `name`."""
        return tuple(self.samples[0][name].shape)

    def stacked(self, name: str) -> np.ndarray:
        """Parameter `name` over all samples, shape (N, *shape): a read-only view when the
        samples are held stacked already, else a new array."""
        if isinstance(self.samples, StackedSamples):
            view = self.samples.arrays[name].view()
            view.flags.writeable = False
            return view
        return np.stack([s[name] for s in self.samples])

    def check(self) -> None:
        """Raise GradientFileError unless the set is complete and consistent: at least one
        sample, the same names w1..wL, b1..bL in every sample, the same shape for a name in every
        sample, finite values everywhere, and x, y, losses with one entry per sample."""
        fail = self._fail
        if not self.samples:
            fail("holds no gradients")
        first = self.samples[0]
        names = param_order(first)
        _check_complete(names, fail)
        if isinstance(self.samples, StackedSamples):
            _check_stacked(self.samples, names, fail)
        else:
            _check_each(self.samples, names, fail)
        n = len(self.samples)
        for what, values in (("x", self.x), ("y", self.y), ("losses", self.losses)):
            if values is None:
                continue
            if len(values) != n:
                fail(f"has {len(values)} {what} entries for {n} samples")
            _check_finite(values, what, fail)

    def _fail(self, problem: str) -> NoReturn:
        raise GradientFileError(self.source, problem)


def _check_each(samples: Sequence[Mapping[str, np.ndarray]], names: list[str],
                fail: Fail) -> None:
    """The same names and shapes in every sample as in the first, finite values everywhere."""
    first = samples[0]
    for k, sample in enumerate(samples, 1):
        if set(sample) != set(first):
            missing = [n for n in names if n not in sample]
            extra = [n for n in param_order(sample) if n not in first]
            what = "; ".join(filter(None, [
                missing and f"no {', '.join(missing)}",
                extra and f"an extra {', '.join(extra)}"]))
            fail(f"sample {k} has {what} (sample 1 has {', '.join(names)})")
        for name in names:
            value = sample[name]
            if value.shape != first[name].shape:
                fail(f"sample {k}: {name} has shape {shape_text(value.shape)} but in "
                     f"sample 1 it has shape {shape_text(first[name].shape)}")
            _check_finite(value, f"sample {k}: {name}", fail)


def _check_stacked(samples: StackedSamples, names: list[str], fail: Fail) -> None:
    """Finite values everywhere, failing as the sample-by-sample check would: at the first
    sample holding a non-finite value, at its first such parameter."""
    first_bad = {}
    for name in names:
        flat = samples.arrays[name].reshape(len(samples), -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            first_bad[name] = int(np.argmax(bad))
    if first_bad:
        k = min(first_bad.values())
        name = next(n for n in names if first_bad.get(n) == k)
        _check_finite(samples.arrays[name][k], f"sample {k + 1}: {name}", fail)


def _check_complete(names: list[str], fail: Fail) -> None:
    if not names:
        fail("holds no parameters")
    layers = {int(n[1:]) for n in names}
    n_layers = max(layers)
    if n_layers > MAX_LAYERS:
        # before listing what is missing: w99999999999 alone would be a list of 2e11 names
        fail(f"has {'w' if f'w{n_layers}' in names else 'b'}{n_layers}, a layer past the "
             f"{MAX_LAYERS} a network has at most")
    expected = [f"{kind}{layer}" for layer in range(1, n_layers + 1) for kind in "wb"]
    missing = [n for n in expected if n not in names]
    if missing:
        layers_text = "1 layer" if n_layers == 1 else f"{n_layers} layers"
        fail(f"has {', '.join(names)} but no {', '.join(missing)}; a network of {layers_text} "
             f"needs {', '.join(expected)}")


def _check_finite(values: np.ndarray, what: str, fail: Fail) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(values[index]) else "an infinite value"
        where = f" at {list(index)}" if index else ""
        fail(f"{what} holds {kind}{where} ({int(bad.sum())} non-finite values in all)")
