"""Our gradient file format (.dat): plain text a person can read and diff, and lossless.

    # backprop-explorer gradients v1
    # engine: torch
    # dtype: float32
    # layout: out_in
    # network: {"sizes": [2, 3, 1], "activations": ["sigmoid", "identity"], ...}
    # samples: 2
    # params: w1 (3, 2), b1 (3,), w2 (1, 3), b2 (1,)

    sample 1
    x (2,): 0.5 -1.25
    y (1,): 0.75
    loss: 0.0123
    w1 (3, 2):
       0.0016410816 -0.00052501
      -0.0013232946 -0.00042334
    ...

Every value is the shortest decimal that reads back to the same float32 or float64, so a file
read back is bit-identical to what was written. Matrices are written one row per line (wrapped
after 10 values); the reader counts values, not lines. engine, layout, network, x, y and loss
are optional; a header line `# note: ...` carries a sentence into GradientSet.notes.

Reading any gradient file, ours or another's, goes through engine.readers.read_gradients; this
module parses the text of ours (`parse_dat`) and writes it (`write_gradients`).
"""

import json
import math
import os
import re

import numpy as np

from engine.atomic import atomic_write_text
from engine.errors import SpecError
from engine.gradset import GradientFileError, GradientSet, param_order, shape_text
from engine.spec import DTYPES, LAYOUTS, NetworkSpec

MAGIC = "# backprop-explorer gradients"
VERSION = 1
FORMAT_LINE = f"{MAGIC} v{VERSION}"
PER_LINE = 10
_HEADER_KEYS = ("engine", "dtype", "layout", "network", "samples", "params", "note")
_ENTRY = re.compile(r"([A-Za-z_]\w*) \(([\d, ]*)\):(.*)")
_SAMPLE = re.compile(r"sample (\d+)")
_LOSS = re.compile(r"loss:(.*)")
_PARAM = re.compile(r"\s*([A-Za-z_]\w*) \(([\d, ]*)\)\s*(?:,|$)")


def write_gradients(path: str | os.PathLike[str], gs: GradientSet) -> None:
    """Write `gs` to `path` in our .dat format, atomically. The set is checked first (complete,
    consistent, finite): a NaN gradient is a GradientFileError naming `path`, sample and
    parameter. Values are written in gs.dtype (or float32 when every array is float32, else
    float64)."""
    atomic_write_text(path, format_gradients(gs, str(path)))


def format_gradients(gs: GradientSet, target: str | None = None) -> str:
    """The text of `gs` in our .dat format; `target` names the file in error messages."""
    try:
        gs.check()
    except GradientFileError as e:
        raise GradientFileError(target or gs.source, e.problem) from None
    dtype = gs.dtype or _common_dtype(gs)
    np_dtype = DTYPES[dtype]
    names = gs.names
    out = [FORMAT_LINE]
    if gs.engine is not None:
        engine = " ".join(str(gs.engine).split())
        out.append(f"# engine: {engine}")
    out.append(f"# dtype: {dtype}")
    if gs.layout is not None:
        out.append(f"# layout: {gs.layout}")
    if gs.spec is not None:
        out.append(f"# network: {json.dumps(gs.spec.to_dict())}")
    out.append(f"# samples: {gs.n_samples}")
    out.append("# params: " + ", ".join(f"{n} {shape_text(gs.shape(n))}" for n in names))
    out.extend(f"# note: {' '.join(note.split())}" for note in gs.notes)
    for k, sample in enumerate(gs.samples):
        out += ["", f"sample {k + 1}"]
        for what, values in (("x", gs.x), ("y", gs.y)):
            if values is not None:
                v = np.asarray(values[k], dtype=np_dtype)
                out.append(f"{what} {shape_text(v.shape)}: {' '.join(_texts(v))}")
        if gs.losses is not None:
            out.append(f"loss: {_texts(np.asarray(gs.losses[k], dtype=np_dtype))[0]}")
        for name in names:
            value = np.asarray(sample[name], dtype=np_dtype)
            out.append(f"{name} {shape_text(value.shape)}:")
            out.extend(_rows(value))
    return "\n".join(out) + "\n"


def _common_dtype(gs: GradientSet) -> str:
    arrays = [v for s in gs.samples for v in s.values()]
    return "float32" if all(a.dtype == np.float32 for a in arrays) else "float64"


def _texts(values: np.ndarray) -> list[str]:
    """Shortest round-trip decimals: repr of a Python float for float64, numpy's str of the
    scalar for float32 (repr of the float64 would print the widened value's digits)."""
    flat = values.ravel()
    if values.dtype == np.float32:
        return [str(v) for v in flat]
    return [repr(v) for v in flat.tolist()]


def _rows(value: np.ndarray) -> list[str]:
    texts = _texts(value)
    if not texts:
        return []
    width = max(map(len, texts))
    row = value.shape[-1] if value.ndim >= 2 else len(texts)
    lines = []
    for start in range(0, len(texts), row):
        cells = [t.rjust(width) for t in texts[start:start + row]]
        lines += ["  " + " ".join(cells[i:i + PER_LINE])
                  for i in range(0, len(cells), PER_LINE)]
    return lines


def is_dat(text: str) -> bool:
    """Whether `text` starts as one of our files do (any version)."""
    return text.lstrip("\ufeff \t\r\n").startswith(MAGIC)


def parse_dat(text: str, source: str) -> GradientSet:
    """Parse the text of one of our files. Strict: a wrong count, a bad shape, a missing
    parameter or a truncated file is a GradientFileError naming `source` and the line."""
    lines = text.replace("\r\n", "\n").split("\n")
    header, body_start = _parse_header(lines, source)
    return _parse_body(lines, body_start, header, source)


def _fail(source: str, line: int | None, problem: str) -> GradientFileError:
    return GradientFileError(source, f"line {line}: {problem}" if line else problem)


def _parse_header(lines: list[str], source: str) -> tuple[dict, int]:
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = lines[i].strip().lstrip("\ufeff") if i < len(lines) else ""
    if first != FORMAT_LINE:
        m = re.fullmatch(re.escape(MAGIC) + r" v(\d+)", first)
        if m:
            raise _fail(source, i + 1, f"is version {m[1]} of the gradient format; this "
                        f"version of Backprop Explorer reads version {VERSION}")
        raise _fail(source, i + 1, f"does not start with {FORMAT_LINE!r}")
    header: dict = {"note": []}
    i += 1
    while i < len(lines) and lines[i].startswith("#"):
        key, sep, value = lines[i][1:].partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in _HEADER_KEYS:
            raise _fail(source, i + 1, f"unknown header line {lines[i].strip()!r}; known: "
                        + ", ".join(f"'# {k}: ...'" for k in _HEADER_KEYS))
        if key == "note":
            header["note"].append(value)
        elif key in header:
            raise _fail(source, i + 1, f"the header states {key!r} twice")
        else:
            header[key] = _header_value(key, value, source, i + 1)
        i += 1
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
    return header, i


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
            return NetworkSpec.from_dict(json.loads(value))
        except (json.JSONDecodeError, RecursionError):
            raise _fail(source, line, "the network is not one line of JSON") from None
        except SpecError as e:
            raise _fail(source, line, f"the network does not make sense: {e}") from None
    if key == "samples":
        if not value.isdigit():
            raise _fail(source, line, f"the sample count {value!r} is not a whole number")
        return int(value)
    return _parse_params(value, source, line)


def _parse_params(value: str, source: str, line: int) -> dict[str, tuple[int, ...]]:
    params: dict[str, tuple[int, ...]] = {}
    pos = 0
    while pos < len(value):
        m = _PARAM.match(value, pos)
        if not m or m.end() == pos:
            raise _fail(source, line, f"cannot read the parameter list at {value[pos:pos + 20]!r}"
                        " (expected 'w1 (10, 2), b1 (10,), ...')")
        params[m[1]] = _shape(m[2], source, line)
        pos = m.end()
    try:
        order = param_order(params)
    except ValueError:
        raise _fail(source, line, f"parameter names must be w1, b1, w2, ...; got "
                    f"{', '.join(params)}") from None
    if order != list(params):
        raise _fail(source, line, f"parameters must be listed as {', '.join(order)}")
    return params


def _shape(text: str, source: str, line: int) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    if not all(p.isdigit() for p in parts):
        raise _fail(source, line, f"bad shape ({text})")
    return tuple(int(p) for p in parts)


Item = tuple[int, str, list[tuple[int, str]]]


def _items(lines: list[str], start: int, source: str) -> list[Item]:
    """Split the body into headed items: (line number, heading, [(line number, values text)])."""
    items: list[Item] = []
    for i in range(start, len(lines)):
        text = lines[i].strip()
        if not text:
            continue
        if text[0].isalpha() and (_SAMPLE.fullmatch(text) or _ENTRY.fullmatch(text)
                                  or _LOSS.fullmatch(text)):
            items.append((i + 1, text, []))
        elif not items:
            raise _fail(source, i + 1, f"values before the first 'sample 1': {text[:40]!r}")
        else:
            items[-1][2].append((i + 1, text))
    return items


def _values(item: Item, inline: str, shape: tuple[int, ...], what: str,
            dtype: type[np.floating], source: str, last: bool) -> np.ndarray:
    """The values of one item as an array of `shape` and `dtype`."""
    first_line, _, rest = item
    tokens = [(first_line, t) for t in inline.split()]
    for number, text in rest:
        tokens += [(number, t) for t in text.split()]
    count = math.prod(shape)
    if len(tokens) != count:
        line = tokens[-1][0] if tokens else first_line
        cut = "; the file looks cut short" if last and len(tokens) < count else ""
        raise _fail(source, line, f"{what} has {_plural(len(tokens), 'value')} but its shape "
                    f"{shape_text(shape)} needs {count}{cut}")
    values = []
    for line, token in tokens:
        try:
            values.append(float(token))
        except ValueError:
            raise _fail(source, line, f"{token[:30]!r} in {what} is not a number") from None
    return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _parse_body(lines: list[str], start: int, header: dict, source: str) -> GradientSet:
    dtype = DTYPES[header["dtype"]]
    params: dict[str, tuple[int, ...]] = header["params"]
    n_samples: int = header["samples"]
    samples: list[dict[str, np.ndarray]] = []
    extras: dict[str, list[np.ndarray]] = {"x": [], "y": [], "loss": []}
    items = _items(lines, start, source)
    pos = 0
    while pos < len(items):
        line, text, rest = items[pos]
        m = _SAMPLE.fullmatch(text)
        if not m or int(m[1]) != len(samples) + 1:
            raise _fail(source, line, f"expected 'sample {len(samples) + 1}', found {text!r}")
        if rest:
            raise _fail(source, rest[0][0], f"unexpected values after {text!r}")
        if len(samples) == n_samples:
            raise _fail(source, line, f"has more samples than the {n_samples} its header says")
        pos += 1
        sample: dict[str, np.ndarray] = {}
        samples.append(sample)
        k = len(samples)
        for what in ("x", "y", "loss"):
            prefix = "loss:" if what == "loss" else f"{what} ("
            if pos < len(items) and items[pos][1].startswith(prefix):
                item = items[pos]
                if what == "loss":
                    inline, shape = item[1][len("loss:"):], ()
                else:
                    _, shape_str, inline = _ENTRY.fullmatch(item[1]).groups()  # type: ignore[union-attr]
                    shape = _shape(shape_str, source, item[0])
                pos += 1
                extras[what].append(_values(item, inline, shape, f"{what} of sample {k}",
                                            dtype, source, pos == len(items)))
        for name, shape in params.items():
            if pos >= len(items):
                raise _fail(source, None, f"ends before {name} of sample {k} (the header says "
                            f"{n_samples} samples); the file looks cut short")
            item = items[pos]
            m = _ENTRY.fullmatch(item[1])
            if not m or m[1] != name:
                raise _fail(source, item[0], f"expected {name} of sample {k}, "
                            f"found {item[1][:40]!r}")
            if _shape(m[2], source, item[0]) != shape:
                raise _fail(source, item[0], f"{name} of sample {k} has shape ({m[2]}) but the "
                            f"header says {shape_text(shape)}")
            pos += 1
            sample[name] = _values(item, m[3], shape, f"{name} of sample {k}", dtype, source,
                                   pos == len(items))
    if len(samples) < n_samples:
        raise _fail(source, None, f"ends after sample {len(samples)} but its header says "
                    f"{n_samples} samples; the file looks cut short")
    found = {}
    for what, values in extras.items():
        if values and len(values) != len(samples):
            raise _fail(source, None, f"{len(values)} of its {len(samples)} samples have "
                        f"{what}; it must be all or none")
        found[what] = np.stack(values) if values else None
    gs = GradientSet(samples=samples, source=source, layout=header.get("layout"),
                     dtype=header["dtype"], engine=header.get("engine"),
                     spec=header.get("network"), x=found["x"], y=found["y"],
                     losses=found["loss"], notes=list(header["note"]))
    gs.check()
    return gs
