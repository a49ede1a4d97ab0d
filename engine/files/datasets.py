"""Labelled samples: the seeds' regression set, a two-class set for bce networks, or a CSV.

A dataset holds x (N, inputs) and y (N, outputs) in the network's dtype, and the numbers they
were made from at float64 (`given`: a CSV's values as written, or the generated ones), so that a
run in another dtype converts those once instead of re-rounding x and y.
"""

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from engine.errors import DataError
from engine.files.gradset import clipped
from engine.files.textfile import read_text
from engine.net.spec import NetworkSpec

REGRESSION, CLASSIFICATION = "regression", "classification"
DEFAULT_SAMPLES = 100
# a million rows; parsing costs ~2.5 times the size in memory for typical numbers, ~9 times for
# the shortest ("0,0,0" rows: 5.6 million in 32 MB, read in ~6 s)
MAX_CSV_BYTES = 32 * 1024 * 1024


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
    y = np.repeat(regression_target(x64)[:, None], spec.n_outputs, axis=1)
    return Dataset(x, y.astype(spec.np_dtype),
                   f"regression: y = mean(x²), {n} samples, seed {seed}", (x64, y))


def regression_target(x: np.ndarray) -> np.ndarray:
    """The regression set's label, the mean of the squared inputs ((x1² + x2²)/2 for two), per
    row of x (N, inputs): (N,) float64."""
    return np.mean(np.asarray(x, dtype=np.float64) ** 2, axis=1)


def follows_regression_target(data: Dataset) -> bool:
    """True if every sample's targets are `regression_target` of its inputs, as in the
    regression set (to the data's precision)."""
    rtol = 10 * float(np.finfo(data.y.dtype).eps) if data.y.dtype.kind == "f" else 1e-12
    expected = regression_target(data.x)[:, None]
    return bool(np.allclose(data.y.astype(np.float64), expected, rtol=rtol, atol=rtol))


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
    """The rows of CSV `text`; see `load_csv`. Numbers are read as Python prints them (digits
    0-9, '.', an exponent, a sign; a field may be quoted): float() also takes "1_000", "١٢"
    and "１２", which are refused at their line and column, as is a value the spec's dtype
    cannot hold (1e39 in float32). Rows go into numpy arrays as they are read, so memory stays
    within a few times the text's size."""
    width = spec.n_inputs + spec.n_outputs
    need = f"{_count(spec.n_inputs, 'input')} + {_count(spec.n_outputs, 'target')}"
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")  # old Mac line ends
    rows = _Rows(text, spec, name)
    delimiter: str | None = None
    for start, line in _lines(text):
        if delimiter is None:
            delimiter = rows.delimiter = _delimiter(line)
            fields = _split(line, delimiter)
            if all(not _is_number(f) for f in fields):
                continue  # a header
        else:
            fields = _split(line, delimiter)
        if len(fields) != width:
            rows.check()  # an earlier line's mistake is told first
            raise DataError(f"{name}, line {rows.line_of(start)}: {len(fields)} columns, but "
                            f"{spec.describe()} needs {width} ({need})")
        values = _strict_numbers(line, fields)
        if values is None:
            rows.check()
            column, field = next((c, f) for c, f in enumerate(fields, 1)
                                 if _strict_number(f) is None)
            hint = "" if _number(field) is None else f" {NUMBERS}"
            raise DataError(f"{name}, line {rows.line_of(start)}, column {column}: "
                            f"{clipped(_unquoted(field), 40)!r} is not a number{hint}")
        rows.add(start, values)
    if delimiter is None:
        raise DataError(f"{name}: the file is empty; it needs rows of {need}")
    data = rows.array()
    if not len(data):
        raise DataError(f"{name}: only a header, no samples; it needs rows of {need}")
    x, y = data[:, :spec.n_inputs], data[:, spec.n_inputs:]
    return Dataset(x.astype(spec.np_dtype), y.astype(spec.np_dtype),
                   f"{os.path.basename(name)}, {len(data)} samples", (x, y))


NUMBERS = "(numbers are read as Python prints them: digits 0-9, '.', an exponent, a sign)"
_CHUNK = 65536   # rows gathered as Python floats before they go into an array


class _Rows:
    """The rows read so far, in one float64 array sized for the most rows the text can hold
    (a row is at least `width` one-character numbers and their separators: at most 4 times
    the text's size, in memory only as it fills), each row's start in the text, and the checks
    on their values (finite, in the dtype's range, bce targets in [0, 1]) made _CHUNK rows at a
    time, in file order."""

    def __init__(self, text: str, spec: NetworkSpec, name: str) -> None:
        self.text, self.spec, self.name = text, spec, name
        self.width = spec.n_inputs + spec.n_outputs
        self.values = np.empty((len(text) // (2 * self.width) + 1, self.width))
        self.n = 0
        self.starts: list[np.ndarray] = []
        self.pending: list[float] = []
        self.pending_starts: list[int] = []
        self.checked = 0
        self.delimiter = ","

    def add(self, start: int, values: list[float]) -> None:
        self.pending += values
        self.pending_starts.append(start)
        if len(self.pending_starts) == _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending_starts:
            k = len(self.pending_starts)
            self.values[self.n:self.n + k] = np.array(self.pending).reshape(k, self.width)
            self.n += k
            self.starts.append(np.array(self.pending_starts, np.int64))
            self.pending, self.pending_starts = [], []

    def line_of(self, start: int) -> int:
        return self.text.count("\n", 0, start) + 1

    def check(self) -> None:
        """Refuse the first value read so far that a run cannot use, at its line and column."""
        self._flush()
        spec = self.spec
        for i, starts in enumerate(self.starts[self.checked:], self.checked):
            chunk = self.values[i * _CHUNK:i * _CHUNK + len(starts)]
            bad = ~(np.abs(chunk) <= float(np.finfo(spec.np_dtype).max))
            if spec.loss == "bce":
                targets = chunk[:, spec.n_inputs:]
                bad[:, spec.n_inputs:] |= ~((targets >= 0) & (targets <= 1))
            if bad.any():
                row, column = (int(i) for i in np.argwhere(bad)[0])
                self._refuse(int(starts[row]), column, float(chunk[row, column]))
        self.checked = len(self.starts)

    def _refuse(self, start: int, column: int, value: float) -> NoReturn:
        end = self.text.find("\n", start)
        line = self.text[start:end if end >= 0 else len(self.text)]
        field = _unquoted(_split(line.strip(), self.delimiter)[column])
        where = f"{self.name}, line {self.line_of(start)}, column {column + 1}"
        if not math.isfinite(value):
            raise DataError(f"{where}: {clipped(field, 40)} is not a finite number")
        if abs(value) > float(np.finfo(self.spec.np_dtype).max):
            raise DataError(f"{where}: {clipped(field, 40)} is beyond the range of "
                            f"{self.spec.dtype} (±{float(np.finfo(self.spec.np_dtype).max):.4g})")
        raise DataError(f"{where}: target {value:g} is outside [0, 1], which binary "
                        "cross-entropy needs")

    def array(self) -> np.ndarray:
        """All rows (N, width), checked."""
        self.check()
        # a copy where the text held far fewer rows than it could (blank lines, long numbers)
        rows = self.values[:self.n]
        return rows if 2 * self.n > len(self.values) else rows.copy()


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(start, stripped line) of every non-blank line, without a list of all lines."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        line = text[start:end].strip()
        if line:
            yield start, line
        start = end + 1


def _split(line: str, delimiter: str) -> list[str]:
    return line.split() if delimiter == " " else line.split(delimiter)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _delimiter(line: str) -> str:
    for candidate in (",", ";", "\t"):
        if candidate in line:
            return candidate
    return " "


def _unquoted(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].strip()
    return field


def _strict_numbers(line: str, fields: list[str]) -> list[float] | None:
    """The line's numbers, or None when a field is not one as Python prints numbers."""
    if line.isascii() and "_" not in line:
        try:
            return [float(f) for f in fields]  # the common case: no quotes, nothing odd
        except ValueError:
            pass
    values = [_strict_number(f) for f in fields]
    return None if None in values else values  # type: ignore[return-value]


def _strict_number(field: str) -> float | None:
    field = _unquoted(field)
    if not field.isascii() or "_" in field:
        return None
    return _number(field)


def _number(field: str) -> float | None:
    try:
        return float(_unquoted(field))
    except ValueError:
        return None


def _is_number(field: str) -> bool:
    """Whether a header's field reads as a number, even one refused later ("١٢" is not a
    column name)."""
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
