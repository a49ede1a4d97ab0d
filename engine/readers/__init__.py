"""Reading gradient files: ours and the ones people's own code wrote.

    from engine.readers import read_gradients
    gs = read_gradients("my_autograd.dat")            # a GradientSet

The kind of file is told by its content, not its name: .npy and zip (.npz, torch.save) by
their magic bytes, a pickle is refused, anything else is decoded as text, which is either ours
(it starts with "# backprop-explorer gradients") or printed output of numpy, torch or Python.
Whatever the file, nothing in it is executed. A model.json in the same folder supplies the
layout and network when the file itself does not state them.
"""

import contextlib
import json
import os
import re
from pathlib import Path

from engine.errors import SpecError
from engine.gradfile import is_dat, parse_dat
from engine.gradset import MAX_FILE_BYTES, MAX_TEXT_BYTES, GradientFileError, GradientSet
from engine.readers.binary import NPY_MAGIC, ZIP_MAGIC, is_pickle, read_npy, read_zip
from engine.readers.collect import Collector
from engine.readers.text import parse_text
from engine.readers.tree import Node
from engine.spec import LAYOUTS, NetworkSpec

SIDECAR = "model.json"
_MAX_SIDECAR_BYTES = 16 * 2**20
_NOT_CONTROL = bytes(c for c in range(256) if c >= 32 or c in b"\t\n\r\f\v\x1b")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def read_gradients(path: str | os.PathLike[str], *,
                   model_spec: NetworkSpec | None = None) -> GradientSet:
    """Read the per-sample gradients in `path`, of any supported kind, checked: complete,
    consistent in shape from sample to sample, finite.

    `model_spec`, when given, helps only where the file is ambiguous (where to cut unnamed
    arrays into samples, how to split a flat vector); GradientSet.spec and .layout come from the
    file or its model.json. Every problem a file can have is a GradientFileError whose message
    starts with `path`."""
    source = os.fspath(path)
    data = _read_bytes(Path(source), source)
    spec, layout, notes = _sidecar(Path(source))
    if data.startswith(NPY_MAGIC):
        gs = _from_node(read_npy(Path(source)), source, model_spec or spec)
    elif data.startswith(ZIP_MAGIC):
        gs = _from_node(read_zip(Path(source)), source, model_spec or spec)
    elif is_pickle(data[:2]):
        raise GradientFileError(source, "is a Python pickle; pickles are never opened here "
                                "(loading one can run code). Save gradients with torch.save, "
                                "np.save or np.savez, or print them to a text file")
    else:
        text = _decode(data, source)
        if is_dat(text):
            gs = parse_dat(text, source)
            if (gs.spec is None and spec) or (gs.layout is None and layout):
                gs.notes = notes + gs.notes
                gs.spec, gs.layout = gs.spec or spec, gs.layout or layout
            return gs
        collector = Collector(source, model_spec or spec)
        for entry in parse_text(text, source):
            collector.add(entry.label or None, entry.node)
        gs = _finish(collector, source)
    gs.notes = notes + gs.notes
    gs.spec, gs.layout = spec, layout
    if layout is None:
        gs.notes.append("the file does not state its weight layout (no header, no model.json "
                        "beside it)")
    gs.check()
    return gs


def _from_node(node: Node, source: str, spec: NetworkSpec | None) -> GradientSet:
    collector = Collector(source, spec)
    collector.add(None, node)
    return _finish(collector, source)


def _finish(collector: Collector, source: str) -> GradientSet:
    found = collector.finish()
    return GradientSet(samples=found.samples, source=source, dtype=found.dtype, x=found.x,
                       y=found.y, losses=found.losses, notes=found.notes)


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise GradientFileError(source, "is a folder, not a file")
        if size > MAX_FILE_BYTES:
            raise GradientFileError(source, f"is {_mb(size)} MB; gradient files over "
                                    f"{_mb(MAX_FILE_BYTES)} MB are not read")
        if size > MAX_TEXT_BYTES:
            with path.open("rb") as f:
                head = f.read(len(NPY_MAGIC))
            if not (head.startswith((NPY_MAGIC, ZIP_MAGIC)) or is_pickle(head[:2])):
                raise GradientFileError(
                    source, f"is {_mb(size)} MB of text; gradient files written as text are "
                    f"read up to {_mb(MAX_TEXT_BYTES)} MB (reading takes about ten times their "
                    f"size in memory): save more samples with np.save or np.savez, read up to "
                    f"{_mb(MAX_FILE_BYTES)} MB")
        data = path.read_bytes()
    except OSError as e:
        raise GradientFileError(source, f"cannot be read ({e.strerror or e})") from None
    if not data.strip():
        raise GradientFileError(source, "is empty")
    return data


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def _decode(data: bytes, source: str) -> str:
    """Text as Python, a shell or PowerShell (UTF-16) would have written it, without the colour
    codes a terminal capture may hold."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        with contextlib.suppress(UnicodeDecodeError):
            data = data.decode("utf-16").encode("utf-8")
    controls = len(data.translate(None, _NOT_CONTROL))
    if b"\x00" in data or controls > max(8, len(data) // 100):
        raise GradientFileError(source, "is binary data, but not a .npy, .npz or torch.save "
                                "file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return _ANSI.sub("", text)


def _sidecar(path: Path) -> tuple[NetworkSpec | None, str | None, list[str]]:
    """Network and layout from a model.json beside the file, when there is a usable one."""
    model = path.parent / SIDECAR
    if path.name == SIDECAR or not model.is_file():
        return None, None, []
    try:
        if model.stat().st_size > _MAX_SIDECAR_BYTES:
            raise ValueError("it is too large")
        data = json.loads(model.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
    except (OSError, ValueError, RecursionError) as e:
        return None, None, [f"{model} beside the file was not used: {e}"]
    notes = []
    layout = data.get("layout")
    if layout not in LAYOUTS:
        layout = None
    try:
        spec = NetworkSpec.from_dict(data)
    except SpecError as e:
        spec = None
        notes.append(f"the network in {model} was not used: {e}")
    used = " and ".join(filter(None, [layout and f"layout {layout}", spec and "network"]))
    if used:
        notes.append(f"{used} taken from {model}")
    return spec, layout, notes


__all__ = ["GradientFileError", "GradientSet", "read_gradients"]
