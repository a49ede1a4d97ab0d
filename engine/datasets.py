"""Labelled samples: the seeds' regression set, a two-class set for bce networks, or a CSV.

A dataset holds x (N, inputs) and y (N, outputs) in the network's dtype, and the numbers they
were made from at float64 (`given`: a CSV's values as written, or the generated ones), so that a
run in another dtype converts those once instead of re-rounding x and y.
"""

import csv
import dataclasses
import io
import math
import os
from dataclasses import dataclass

import numpy as np

from engine.errors import DataError
from engine.spec import NetworkSpec
from engine.textfile import read_text

REGRESSION, CLASSIFICATION = "regression", "classification"
DEFAULT_SAMPLES = 100
MAX_CSV_BYTES = 32 * 1024 * 1024   # a million rows; parsing costs ~15 times the size in memory


@dataclass(frozen=True)
class Dataset:
    """x (N, inputs), y (N, outputs); `name` says where the samples came from; `given` the
    same samples at float64 as the user gave them (None: x and y are those numbers)."""

    x: np.ndarray
    y: np.ndarray
    name: str
    given: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(
        default=None, repr=False, compare=False)

    @property
    def exact(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) at float64 as given: what every conversion to a run's dtype starts from."""
        if self.given is not None:
            return self.given
        return self.x.astype(np.float64), self.y.astype(np.float64)

    def as_dtype(self, dtype: type[np.floating] | np.dtype) -> "Dataset":
        """The same samples in `dtype`, converted once from the numbers as given."""
        if self.x.dtype == dtype and self.y.dtype == dtype:
            return self
        x, y = self.exact
        return Dataset(x.astype(dtype), y.astype(dtype), self.name, (x, y))

    def copy(self) -> "Dataset":
        """A deep copy, for a worker that reads it while the session may replace it."""
        given = None if self.given is None else (self.given[0].copy(), self.given[1].copy())
        return Dataset(self.x.copy(), self.y.copy(), self.name, given)

    def __len__(self) -> int:
        return len(self.x)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The index-th (x, y), each 1-D."""
        return self.x[index], self.y[index]


def regression_set(spec: NetworkSpec, n: int = DEFAULT_SAMPLES, seed: int = 0) -> Dataset:
    """The seeds' set: x ~ U[0,1]^inputs, y = mean of x_i² (for two inputs (x1² + x2²)/2),
    repeated in every output column."""
    _check_count(n)
    # the label comes from x as stored, so it can be checked from the numbers a user sees
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, spec.n_inputs)).astype(spec.np_dtype)
    x64 = x.astype(np.float64)
    y = np.repeat(np.mean(x64**2, axis=1, keepdims=True), spec.n_outputs, axis=1)
    return Dataset(x, y.astype(spec.np_dtype),
                   f"regression: y = mean(x²), {n} samples, seed {seed}", (x64, y))


def classification_set(spec: NetworkSpec, n: int = DEFAULT_SAMPLES, seed: int = 0) -> Dataset:
    """Two classes for bce networks: x ~ U[-1,1]^inputs, y = 1 where the product of the inputs
    is positive (XOR of the quadrants for two inputs), else 0, in every output column."""
    _check_count(n)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, spec.n_inputs)).astype(spec.np_dtype)
    label = (np.prod(x.astype(np.float64), axis=1, keepdims=True) > 0)
    y = np.repeat(label, spec.n_outputs, axis=1).astype(np.float64)
    return Dataset(x, y.astype(spec.np_dtype),
                   f"classification: y = [x1·x2 > 0], {n} samples, seed {seed}")


def default_set(spec: NetworkSpec, n: int = DEFAULT_SAMPLES, seed: int = 0) -> Dataset:
    """The classification set for bce networks, the regression set for every other loss."""
    make = classification_set if spec.loss == "bce" else regression_set
    return make(spec, n, seed)


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"the number of samples must be a whole number of at least 1, not {n!r}")


def load_csv(path: str | os.PathLike, spec: NetworkSpec) -> Dataset:
    """Read rows "inputs then targets" (a header row is optional) for `spec`. Every error names
    the file, the line and the column that is wrong."""
    name = os.fspath(path)
    return parse_csv(read_text(name, MAX_CSV_BYTES, "a data file", DataError), spec, name)


def parse_csv(text: str, spec: NetworkSpec, name: str = "data") -> Dataset:
    """The rows of CSV `text`; see `load_csv`."""
    width = spec.n_inputs + spec.n_outputs
    need = f"{_count(spec.n_inputs, 'input')} + {_count(spec.n_outputs, 'target')}"
    rows: list[list[float]] = []
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{name}: the file is empty; it needs rows of {need}")
    delimiter = _delimiter(lines[0][1])
    for position, (line_no, line) in enumerate(lines):
        fields = next(csv.reader(io.StringIO(line), delimiter=delimiter, skipinitialspace=True))
        if delimiter == " ":
            fields = [f for f in fields if f]
        if position == 0 and fields and all(not _is_number(f) for f in fields):
            continue  # a header
        if len(fields) != width:
            raise DataError(f"{name}, line {line_no}: {len(fields)} columns, but "
                            f"{spec.describe()} needs {width} ({need})")
        row = []
        for column, field in enumerate(fields, start=1):
            value = _number(field)
            if value is None:
                raise DataError(f"{name}, line {line_no}, column {column}: {field.strip()!r} "
                                "is not a number")
            if not math.isfinite(value):
                raise DataError(f"{name}, line {line_no}, column {column}: {field.strip()} is "
                                "not a finite number")
            if spec.loss == "bce" and column > spec.n_inputs and not 0 <= value <= 1:
                raise DataError(f"{name}, line {line_no}, column {column}: target {value:g} is "
                                "outside [0, 1], which binary cross-entropy needs")
            row.append(value)
        rows.append(row)
    if not rows:
        raise DataError(f"{name}: only a header, no samples; it needs rows of {need}")
    data = np.asarray(rows, dtype=np.float64)
    x, y = data[:, :spec.n_inputs], data[:, spec.n_inputs:]
    return Dataset(x.astype(spec.np_dtype), y.astype(spec.np_dtype),
                   f"{os.path.basename(name)}, {len(rows)} samples", (x, y))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _delimiter(line: str) -> str:
    for candidate in (",", ";", "\t"):
        if candidate in line:
            return candidate
    return " "


def _number(field: str) -> float | None:
    try:
        return float(field.strip())
    except ValueError:
        return None


def _is_number(field: str) -> bool:
    return _number(field) is not None


def to_csv_text(dataset: Dataset, given: bool = False) -> str:
    """Rows "x1.., y1.." with a header, each value in the shortest form that reads back
    bit-identical in the dataset's dtype; with `given`, the numbers as given at float64 (what
    an autosave keeps, so that a later run in float64 still has them)."""
    n_in, n_out = dataset.x.shape[1], dataset.y.shape[1]
    header = [f"x{i}" for i in range(1, n_in + 1)] + [f"y{i}" for i in range(1, n_out + 1)]
    lines = [",".join(header)]
    x, y = dataset.exact if given else (dataset.x, dataset.y)
    for xi, yi in zip(x, y, strict=True):
        lines.append(",".join(str(v) for v in (*xi, *yi)))
    return "\n".join(lines) + "\n"
