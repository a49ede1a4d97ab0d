"""Reading our .dat gradient format (engine/files/gradfile.py shows it): strict, and line by line.

The header states the sample count and every parameter's shape, so the gradients go straight
into one (N, *shape) array per parameter as the lines come; nothing else of the file is kept.
`parse_dat` reads a text in memory; engine.files.readers feeds `parse_dat_lines` the lines of a file
too large to hold as text. Both give the same GradientSet and the same errors: a wrong count, a
bad shape, a missing parameter or a truncated file is a GradientFileError naming the file and
the line.
"""

import json
import math
import re
from collections.abc import Iterable

import numpy as np

from engine.errors import SpecError
from engine.files.gradfile import FORMAT_LINE, MAGIC, VERSION
from engine.files.gradset import (
    GradientFileError,
    GradientSet,
    StackedSamples,
    clipped,
    param_order,
    shape_text,
)
from engine.files.model_file import load_json
from engine.net.spec import DTYPES, LAYOUTS, MAX_LAYERS, MAX_WIDTH, NetworkSpec

_HEADER_KEYS = ("engine", "dtype", "layout", "network", "samples", "params", "note")
# digits are 0-9 only: int() and float() also read "٣" and "1_000", which we never write
_ENTRY = re.compile(r"([A-Za-z_]\w*) \(([0-9, ]*)\):(.*)")
_SAMPLE = re.compile(r"sample ([0-9]+)")
_LOSS = re.compile(r"loss:(.*)")
_PARAM = re.compile(r"\s*([A-Za-z_]\w*) \(([0-9, ]*)\)\s*(?:,|$)")
_WHOLE = re.compile("[0-9]+")
_LAYER_NUMBER = re.compile("[wb]([1-9][0-9]*)")
# Bounds on what a header states, checked before anything is sized from it. A sample takes at
# least ~30 characters (its heading, w1 and b1 of one value each), so MAX_FILE_BYTES (200 MB)
# holds fewer than 7 million; a weight is 2-D and a bias 1-D, a file converted from another
# may keep a leading axis of 1 (3 at most), each side at most the widest layer a network has;
# zero-size parameters have no gradient.
MAX_SAMPLES = 10_000_000
MAX_NDIM = 3
_EXTRAS = {"x": "x (", "y": "y (", "loss": "loss:"}   # what a sample may record, its heading
Line = tuple[int, str]   # (line number from 1, the line's text stripped)


def is_dat(text: str) -> bool:
    """Whether `text` starts as one of our files do (any version)."""
    return text.lstrip("\ufeff \t\r\n").startswith(MAGIC)


def parse_dat(text: str, source: str) -> GradientSet:
    """Parse the text of one of our files; `source` names it in error messages."""
    return parse_dat_lines(text.replace("\r\n", "\n").split("\n"), source, len(text))


def parse_dat_lines(lines: Iterable[str], source: str, size: int) -> GradientSet:
    """Parse one of our files given as its lines (without line ends), taking each as it comes.
    `size`, the file's length in characters or more, bounds how many samples it can hold:
    arrays are never made larger than that, whatever the header says."""
    reader = _Lines(lines)
    header = _parse_header(reader, source)
    with np.errstate(over="ignore"):   # 1e39 in float32 is inf, which the check names
        return _Body(reader, header, source, size).parse()


def _fail(source: str, line: int | None, problem: str) -> GradientFileError:
    return GradientFileError(source, f"line {line}: {problem}" if line else problem)


class _Lines:
    """Lines with one of look-ahead; `number` is that of the last line taken."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self._ahead: str | None = None
        self.number = 0

    def peek(self) -> str | None:
        if self._ahead is None:
            self._ahead = next(self._lines, None)
        return self._ahead

    def take(self) -> str | None:
        if self._ahead is None:
            line = next(self._lines, None)
        else:
            line, self._ahead = self._ahead, None
        if line is not None:
            self.number += 1
        return line

    def next_text(self) -> str | None:
        """The next non-blank line, stripped, taken; None at the end."""
        while (line := self.take()) is not None:
            if text := line.strip():
                return text
        return None


def _parse_header(lines: _Lines, source: str) -> dict:
    line = lines.take()
    while line is not None and not line.strip():
        line = lines.take()
    first = line.strip().lstrip("\ufeff") if line is not None else ""
    number = lines.number if line is not None else lines.number + 1
    if first != FORMAT_LINE:
        m = re.fullmatch(re.escape(MAGIC) + r" v(\d+)", first)
        if m:
            raise _fail(source, number, f"is version {m[1]} of the gradient format; this "
                        f"version of Backprop Explorer reads version {VERSION}")
        raise _fail(source, number, f"does not start with {FORMAT_LINE!r}")
    header: dict = {"note": []}
    while (line := lines.peek()) is not None and line.startswith("#"):
        lines.take()
        key, sep, value = line[1:].partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in _HEADER_KEYS:
            raise _fail(source, lines.number, f"unknown header line {line.strip()!r}; known: "
                        + ", ".join(f"'# {k}: ...'" for k in _HEADER_KEYS))
        if key == "note":
            header["note"].append(value)
        elif key in header:
            raise _fail(source, lines.number, f"the header states {key!r} twice")
        else:
            header[key] = _header_value(key, value, source, lines.number)
    for key in ("samples", "params"):
        if key not in header:
            raise _fail(source, None, f"the header has no '# {key}: ...' line")
    header.setdefault("dtype", "float64")
    spec, layout = header.get("network"), header.get("layout")
    if spec is not None and layout is not None:
        for name, shape in header["params"].items():
            if name[1:].isdigit() and int(name[1:]) <= spec.n_layers and \
                    shape != spec.param_shape(name, layout):
                raise _fail(source, None, f"the header gives {name} shape {shape_text(shape)} "
                            f"but its network {spec.describe()} needs "
                            f"{shape_text(spec.param_shape(name, layout))}")
    return header


def _header_value(key: str, value: str, source: str, line: int) -> object:
    if key == "engine":
        return value or None
    if key in ("dtype", "layout"):
        valid = DTYPES if key == "dtype" else LAYOUTS
        if value not in valid:
            raise _fail(source, line, f"unknown {key} {value!r}; valid: {', '.join(valid)}")
        return value
    if key == "network":
        try:
            return NetworkSpec.from_dict(load_json(value))
        except (json.JSONDecodeError, RecursionError):
            raise _fail(source, line, "the network is not one line of JSON") from None
        except SpecError as e:
            raise _fail(source, line, f"the network does not make sense: {e}") from None
    if key == "samples":
        if not _WHOLE.fullmatch(value):
            raise _fail(source, line, f"the sample count {clipped(value)!r} is not a whole "
                        "number (digits 0-9)")
        if len(value) > len(str(MAX_SAMPLES)) or not 1 <= int(value) <= MAX_SAMPLES:
            raise _fail(source, line, f"the sample count {clipped(value, 12)} is not from 1 to "
                        f"{MAX_SAMPLES}, which a gradient file holds at most")
        return int(value)
    return _parse_params(value, source, line)


def _parse_params(value: str, source: str, line: int) -> dict[str, tuple[int, ...]]:
    params: dict[str, tuple[int, ...]] = {}
    pos = 0
    while pos < len(value):
        m = _PARAM.match(value, pos)
        if not m or m.end() == pos:
            raise _fail(source, line, f"cannot read the parameter list at "
                        f"{clipped(value[pos:], 20)!r} (expected 'w1 (10, 2), b1 (10,), ...')")
        name = m[1]
        layer = _LAYER_NUMBER.fullmatch(name)
        if not layer:
            raise _fail(source, line, f"parameter names must be w1, b1, w2, ...; got "
                        f"{clipped(name)!r}")
        if len(layer[1]) > len(str(MAX_LAYERS)) or int(layer[1]) > MAX_LAYERS:
            raise _fail(source, line, f"{clipped(name)} names layer {clipped(layer[1], 12)}; a "
                        f"network has at most {MAX_LAYERS} layers")
        if name in params:
            raise _fail(source, line, f"the parameter list gives {name} twice")
        params[name] = _shape(m[2], source, line, name)
        pos = m.end()
    order = param_order(params)
    if order != list(params):
        raise _fail(source, line, f"parameters must be listed as {', '.join(order)}")
    return params


def _shape(text: str, source: str, line: int, what: str = "") -> tuple[int, ...]:
    """A shape as written, "10, 2" or "10,": at most MAX_NDIM sides of 1 to MAX_WIDTH."""
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    of = f" of {what}" if what else ""
    if len(parts) > MAX_NDIM:
        raise _fail(source, line, f"the shape{of} has {len(parts)} dimensions; a gradient "
                    f"here has at most {MAX_NDIM}")
    if not all(_WHOLE.fullmatch(p) for p in parts):
        raise _fail(source, line, f"bad shape{of} ({clipped(text)})")
    if not all(len(p) <= len(str(MAX_WIDTH)) and 1 <= int(p) <= MAX_WIDTH for p in parts):
        raise _fail(source, line, f"the shape{of} ({clipped(text)}) has a side outside 1 to "
                    f"{MAX_WIDTH}, the widest a layer is")
    return tuple(int(p) for p in parts)


def _is_heading(text: str) -> bool:
    """Whether a (stripped, non-blank) line starts an item: a sample, an entry or the loss."""
    return text[0].isalpha() and bool(_SAMPLE.fullmatch(text) or _ENTRY.fullmatch(text)
                                      or _LOSS.fullmatch(text))


def _strict(text: str) -> bool:
    """Whether every number float() reads in `text` is written as ours are (ASCII, no
    underscores: float() also reads "1_000" and "١٢")."""
    return text.isascii() and "_" not in text


def _bad_token(tokens: list[str]) -> str:
    for token in tokens:
        try:
            float(token)
        except ValueError:
            return token
        if not _strict(token):
            return token
    raise AssertionError("every token is a number")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _Body:
    """The samples after the header: items (a heading line and the value lines under it) read
    one by one into arrays allocated once, the values of each line written where they go."""

    def __init__(self, lines: _Lines, header: dict, source: str, size: int):
        self.lines, self.source, self.size = lines, source, size
        self.dtype = DTYPES[header["dtype"]]
        self.params: dict[str, tuple[int, ...]] = header["params"]
        self.n: int = header["samples"]
        self.header = header
        self.capacity = self._rows(sum(math.prod(s) for s in self.params.values()))
        self.arrays = {name: np.empty((self.capacity, *shape), self.dtype)
                       for name, shape in self.params.items()}
        self.extras: dict[str, tuple[int, np.ndarray]] = {}   # what: (first sample, array)
        self.counts = dict.fromkeys(_EXTRAS, 0)
        self.misshapen: dict[str, GradientFileError] = {}
        self._ahead: Line | None = None

    def _rows(self, values: int) -> int:
        """The most samples of `values` values the text can hold (each value takes a character
        and a separator), and no more than the header says; 0 when not even one fits."""
        if values > self.size:
            return 0
        return min(self.n, self.size // (2 * max(values, 1)) + 1)

    # lines
    def _peek(self) -> Line | None:
        """The next non-blank line, not taken."""
        if self._ahead is None:
            text = self.lines.next_text()
            self._ahead = None if text is None else (self.lines.number, text)
        return self._ahead

    def _heading(self) -> Line | None:
        """The next item's heading, taken; None at the end of the file. Value lines under an
        item are read with it, so only before the first heading can values stand here."""
        line = self._peek()
        self._ahead = None
        if line is not None and not _is_heading(line[1]):
            raise _fail(self.source, line[0], f"values before the first 'sample 1': "
                        f"{line[1][:40]!r}")
        return line

    # items
    def parse(self) -> GradientSet:
        k = 0
        item = self._heading()
        while item is not None:
            number, text = item
            m = _SAMPLE.fullmatch(text)
            if not m or m[1] != str(k + 1):
                raise _fail(self.source, number, f"expected 'sample {k + 1}', found {text!r}")
            ahead = self._peek()
            if ahead is not None and not _is_heading(ahead[1]):
                raise _fail(self.source, ahead[0], f"unexpected values after {text!r}")
            if k == self.n:
                raise _fail(self.source, number, f"has more samples than the {self.n} its "
                            "header says")
            k += 1
            item = self._heading()
            for what, prefix in _EXTRAS.items():
                if item is not None and item[1].startswith(prefix):
                    item = self._extra(item, what, k)
            for name, shape in self.params.items():
                item = self._param(item, name, shape, k)
        return self._finish(k)

    def _param(self, item: Line | None, name: str, shape: tuple[int, ...], k: int) -> Line | None:
        if item is None:
            raise _fail(self.source, None, f"ends before {name} of sample {k} (the header says "
                        f"{self.n} samples); the file looks cut short")
        number, text = item
        m = _ENTRY.fullmatch(text)
        if not m or m[1] != name:
            raise _fail(self.source, number, f"expected {name} of sample {k}, found {text[:40]!r}")
        if _shape(m[2], self.source, number) != shape:
            raise _fail(self.source, number, f"{name} of sample {k} has shape ({m[2]}) but the "
                        f"header says {shape_text(shape)}")
        dest = self.arrays[name][k - 1:k].reshape(-1) if k <= self.capacity else None
        return self._values(number, m[3], shape, dest, f"{name} of sample {k}")

    def _extra(self, item: Line, what: str, k: int) -> Line | None:
        number, text = item
        if what == "loss":
            inline, shape = text[len("loss:"):], ()
        else:
            _, shape_text_, inline = _ENTRY.fullmatch(text).groups()  # type: ignore[union-attr]
            shape = _shape(shape_text_, self.source, number)
        if what not in self.extras:
            self.extras[what] = (k, np.empty((self._rows(math.prod(shape)), *shape), self.dtype))
        first, array = self.extras[what]
        # kept in the order found: when every sample has one (else the file is refused), that
        # is the samples' order
        i = self.counts[what]
        self.counts[what] += 1
        dest = array[i:i + 1].reshape(-1) if i < len(array) else None
        if array.shape[1:] != shape:
            # told at the end, where the samples' entries are put together, as a file that is
            # wrong in other ways as well is told first by them
            self.misshapen.setdefault(what, _fail(
                self.source, number, f"{what} of sample {k} has shape {shape_text(shape)} but "
                f"in sample {first} it has shape {shape_text(array.shape[1:])}"))
            dest = None
        return self._values(number, inline, shape, dest, f"{what} of sample {k}")

    def _values(self, number: int, inline: str, shape: tuple[int, ...], dest: np.ndarray | None,
                what: str) -> Line | None:
        """Read an item's values (`inline`, then the value lines under its heading) into
        `dest`, flat (None: only check them; the text cannot hold them all anyway), and return
        the next heading. The count is checked before the numbers, as the whole item shows."""
        count = math.prod(shape)
        done, last_line, bad = 0, number, None
        lines, text = self.lines, inline
        while True:
            tokens = text.split()
            if tokens:
                end = done + len(tokens)
                last_line = number
                if bad is None and end <= count and not _strict(text):
                    bad = (number, _bad_token(tokens))
                elif bad is None and end <= count:
                    try:
                        # numpy reads str as float() does: the same values, the same errors
                        values = np.array(tokens, dtype=np.float64)
                    except ValueError:
                        bad = (number, _bad_token(tokens))
                    else:
                        if dest is not None:
                            dest[done:end] = values
                done = end
            text = lines.next_text()
            if text is None or (text[0].isalpha() and _is_heading(text)):
                break
            number = lines.number
        self._ahead = None if text is None else (lines.number, text)
        at_end = text is None
        if done != count:
            cut = "; the file looks cut short" if at_end and done < count else ""
            raise _fail(self.source, last_line, f"{what} has {_plural(done, 'value')} but its "
                        f"shape {shape_text(shape)} needs {count}{cut}")
        if bad is not None:
            raise _fail(self.source, bad[0], f"{clipped(bad[1], 30)!r} in {what} is not a number")
        return self._heading()

    def _finish(self, k: int) -> GradientSet:
        if k < self.n:
            raise _fail(self.source, None, f"ends after sample {k} but its header says "
                        f"{self.n} samples; the file looks cut short")
        found: dict[str, np.ndarray | None] = {}
        for what, count in self.counts.items():
            if count and count != k:
                raise _fail(self.source, None, f"{count} of its {k} samples have {what}; it "
                            "must be all or none")
            if what in self.misshapen:
                raise self.misshapen[what]
            found[what] = self.extras[what][1] if count else None
        header = self.header
        gs = GradientSet(samples=StackedSamples(self.arrays, k), source=self.source,
                         layout=header.get("layout"), dtype=header["dtype"],
                         engine=header.get("engine"), spec=header.get("network"), x=found["x"],
                         y=found["y"], losses=found["loss"], notes=list(header["note"]))
        gs.check()
        return gs
