"""Labelled samples: the seeds' regression set, a two-class set for bce networks, or a CSV.

A dataset holds x (N, inputs) and y (N, outputs) in the network's dtype.
"""

import csv
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
    """x (N, inputs), y (N, outputs); `name` says where the samples came from."""

    x: np.ndarray
    y: np.ndarray
    name: str

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
                   f"regression: y = mean(x²), {n} samples, seed {seed}")


def classification_set(spec: NetworkSpec, n: int = DEFAULT_SAMPLES, seed: int = 0) -> Dataset:
    """Two classes for bce networks: x ~ U[-1,1]^inputs, y = 1 where the product of the inputs
    is positive (XOR of the quadrants for two inputs), else 0, in every output column."""
    _check_count(n)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, spec.n_inputs)).astype(spec.np_dtype)
    label = (np.prod(x.astype(np.float64), axis=1, keepdims=True) > 0)
    y = np.repeat(label, spec.n_outputs, axis=1)
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
    return Dataset(data[:, :spec.n_inputs].astype(spec.np_dtype),
                   data[:, spec.n_inputs:].astype(spec.np_dtype),
                   f"{os.path.basename(name)}, {len(rows)} samples")


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


def to_csv_text(dataset: Dataset) -> str:
    """Rows "x1.., y1.." with a header, each value in the shortest form that reads back
    bit-identical in the dataset's dtype."""
    n_in, n_out = dataset.x.shape[1], dataset.y.shape[1]
    header = [f"x{i}" for i in range(1, n_in + 1)] + [f"y{i}" for i in range(1, n_out + 1)]
    lines = [",".join(header)]
    for xi, yi in zip(dataset.x, dataset.y, strict=True):
        lines.append(",".join(str(v) for v in (*xi, *yi)))
    return "\n".join(lines) + "\n"
