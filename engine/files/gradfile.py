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

Reading any gradient file, ours or another's, goes through engine.files.readers.read_gradients; this
module writes ours (`write_gradients`) and engine/files/readers/dat.py parses them.
"""

import json
import os

import numpy as np

from engine.files.atomic import atomic_write_text
from engine.files.gradset import GradientFileError, GradientSet, shape_text
from engine.net.spec import DTYPES

MAGIC = "# backprop-explorer gradients"
VERSION = 1
FORMAT_LINE = f"{MAGIC} v{VERSION}"
PER_LINE = 10


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
