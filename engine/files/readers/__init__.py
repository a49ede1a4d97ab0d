"""Reading gradient files: ours and the ones people's own code wrote.

    from engine.files.readers import read_gradients
    gs = read_gradients("my_autograd.dat")            # a GradientSet

The kind of file is told by its content, not its name: .npy and zip (.npz, torch.save) by
their magic bytes, a pickle is refused, anything else is decoded as text, which is either ours
(it starts with "# backprop-explorer gradients") or printed output of numpy, torch or Python.
Whatever the file, nothing in it is executed, and only a regular file is read (never a device
such as /dev/zero, a named pipe or a folder: engine/files/regularfile.py), up to the limits below
whatever its size says. A model.json in the same folder supplies the layout and network when
the file itself does not state them; one that cannot be used, or a data.csv beside the file that
cannot be read, is left out with a note, never a reason to refuse the file.

Printed text is parsed whole, at about ten times its size in memory, so it is read up to
MAX_TEXT_BYTES. Ours is read up to MAX_FILE_BYTES: one too large to hold as text is read line
by line into arrays sized from its header, in memory about the size of the gradients it holds,
reporting its progress.
"""

import codecs
import contextlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import SpecError, printable
from engine.files.datasets import MAX_CSV_BYTES
from engine.files.gradset import (
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    GradientFileError,
    GradientSet,
    Progress,
    ReadCancelled,
)
from engine.files.readers.binary import (
    NPY_MAGIC,
    ZIP_MAGIC,
    is_pickle,
    number_leaf,
    read_npy,
    read_zip,
)
from engine.files.readers.collect import Collector
from engine.files.readers.dat import is_dat, parse_dat, parse_dat_lines
from engine.files.readers.text import parse_text
from engine.files.readers.tree import Node
from engine.files.regularfile import NotRegularFile, open_regular, read_at_most, size_of
from engine.files.textfile import try_read_text
from engine.net.spec import LAYOUTS, NetworkSpec

SIDECAR = "model.json"
# the samples an export writes beside its files (engine.export.DATA_FILE; export needs torch),
# from which a comparison makes the run behind two files again (engine/check/reproduce.py)
DATA_SIDECAR = "data.csv"
# a model.json states a network and its parameters: 16 MB holds a million parameters as text
MAX_SIDECAR_BYTES = 16 * 2**20
_NOT_CONTROL = bytes(c for c in range(256) if c >= 32 or c in b"\t\n\r\f\v\x1b")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEAD_BYTES = 4096           # enough to see whether a file starts as ours
MAX_LINE_BYTES = 2**20       # in a streamed file: ours wrap after 10 values
REPORT_BYTES = 2**20         # progress is reported every this many bytes
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)   # PowerShell's `>` writes UTF-16


def read_gradients(path: str | os.PathLike[str], *, model_spec: NetworkSpec | None = None,
                   progress: Progress | None = None) -> GradientSet:
    """Read the per-sample gradients in `path`, of any supported kind, checked: complete,
    consistent in shape from sample to sample, finite.

    `model_spec`, when given, helps only where the file is ambiguous (where to cut unnamed
    arrays into samples, how to split a flat vector); GradientSet.spec and .layout come from the
    file or its model.json. Every problem a file can have is a GradientFileError whose message
    starts with `path`. `progress(bytes done, bytes in all)` is called as one of our files too
    large to hold as text is read; returning True stops the read (ReadCancelled)."""
    source = os.fspath(path)
    file = Path(source)
    size = _size(file, source)
    if size > MAX_TEXT_BYTES and _starts_as_dat(file, source):
        return _ours(_stream_dat(file, source, size, progress), *_sidecar(file))
    data = _read_bytes(file, source, size)
    spec, layout, notes, skipped = _sidecar(file)
    if data.startswith(NPY_MAGIC):
        gs = _from_node(read_npy(file), source, model_spec or spec)
    elif data.startswith(ZIP_MAGIC):
        gs = _from_node(read_zip(file), source, model_spec or spec)
    elif is_pickle(data[:2]):
        raise GradientFileError(source, "is a Python pickle; pickles are never opened here "
                                "(loading one can run code). Save gradients with torch.save, "
                                "np.save or np.savez, or print them to a text file")
    else:
        text = _decode(data, source)
        if is_dat(text):
            return _ours(parse_dat(text, source), spec, layout, notes, skipped)
        collector = Collector(source, model_spec or spec)
        for entry in parse_text(text, source):
            collector.add(entry.label or None, entry.node)
        gs = _finish(collector, source)
    gs.notes = skipped + notes + gs.notes
    gs.spec, gs.layout = spec, layout
    # --model states a layout, and so does a model.json beside the file: torch's (out, in)
    # where it names none
    if layout is None and spec is None and model_spec is None:
        gs.notes.append("the file does not state its weight layout (no header, no model.json "
                        "beside it)")
    gs.check()
    return gs


def read_arrays(samples: Sequence[Mapping[str, np.ndarray]], source: str,
                spec: NetworkSpec, layout: str) -> GradientSet:
    """Per-sample gradients given as arrays by name (what a user's gradients() returned for
    each sample), read as a file holding them would be: any name the readers accept, checked
    complete, consistent and finite. `layout` is the one the arrays were asked for."""
    node: Node = [{str(name): number_leaf(np.asarray(values), source)
                   for name, values in sample.items()} for sample in samples]
    gs = _from_node(node, source, spec)
    gs.spec, gs.layout = spec, layout
    gs.check()
    return gs


def _ours(gs: GradientSet, spec: NetworkSpec | None, layout: str | None,
          notes: list[str], skipped: list[str]) -> GradientSet:
    """One of our files, its network and layout completed from a model.json beside it; what
    was left out from beside it is noted whether or not the file needed it."""
    if (gs.spec is None and spec) or (gs.layout is None and layout):
        gs.notes = notes + gs.notes
        gs.spec, gs.layout = gs.spec or spec, gs.layout or layout
    gs.notes = skipped + gs.notes
    return gs


def _from_node(node: Node, source: str, spec: NetworkSpec | None) -> GradientSet:
    collector = Collector(source, spec)
    collector.add(None, node)
    return _finish(collector, source)


def _finish(collector: Collector, source: str) -> GradientSet:
    found = collector.finish()
    return GradientSet(samples=found.samples, source=source, dtype=found.dtype, x=found.x,
                       y=found.y, losses=found.losses, notes=found.notes,
                       printed_digits=found.printed_digits)


def _refused(source: str, problem: str) -> GradientFileError:
    return GradientFileError(printable(source), problem)


def _open(path: Path, source: str) -> BinaryIO:
    """`path` opened for reading when it is a regular file (engine/files/regularfile.py): a device
    or a pipe would be read without end or wait forever."""
    try:
        return open_regular(path)
    except NotRegularFile as e:
        raise _refused(source, e.describe("a file")) from None
    except OSError as e:
        raise _refused(source, f"cannot be read ({e.strerror or e})") from None


def _size(path: Path, source: str) -> int:
    """The file's size; refused when it is not a regular file, missing or over
    MAX_FILE_BYTES."""
    with _open(path, source) as f:
        size = size_of(f)
    if size > MAX_FILE_BYTES:
        raise _refused(source, f"is {_mb(size)} MB; gradient files over "
                       f"{_mb(MAX_FILE_BYTES)} MB are not read")
    return size


def _head(path: Path, source: str) -> bytes:
    try:
        with _open(path, source) as f:
            return f.read(_HEAD_BYTES)
    except OSError as e:
        raise _refused(source, f"cannot be read ({e.strerror or e})") from None


def _starts_as_dat(path: Path, source: str) -> bool:
    head = _head(path, source)
    encoding = "utf-16" if head.startswith(_UTF16_BOMS) else "utf-8"
    return is_dat(head.decode(encoding, errors="replace"))


def _read_bytes(path: Path, source: str, size: int) -> bytes:
    """The whole file, read up to MAX_FILE_BYTES when it starts as binary and MAX_TEXT_BYTES
    otherwise (ours over that is streamed), whatever its size said; text over that is
    refused."""
    try:
        with _open(path, source) as f:
            head = f.read(_HEAD_BYTES)
            binary = head.startswith((NPY_MAGIC, ZIP_MAGIC)) or is_pickle(head[:2])
            limit = MAX_FILE_BYTES if binary else MAX_TEXT_BYTES
            rest = None if size > limit else read_at_most(f, limit - len(head))
    except OSError as e:
        raise _refused(source, f"cannot be read ({e.strerror or e})") from None
    if rest is None and size <= limit:
        raise _refused(source, f"grew past {_mb(limit)} MB as it was read; not read")
    if rest is None and binary:
        raise _refused(source, f"is {_mb(size)} MB; gradient files over "
                       f"{_mb(MAX_FILE_BYTES)} MB are not read")
    if rest is None:
        raise _refused(
            source, f"is {_mb(size)} MB of text; gradient files written as text are read up "
            f"to {_mb(MAX_TEXT_BYTES)} MB (reading takes about ten times their size in "
            f"memory): save more samples with np.save or np.savez, read up to "
            f"{_mb(MAX_FILE_BYTES)} MB")
    data = head + rest
    if not data.strip():
        raise _refused(source, "is empty")
    return data


def _stream_dat(path: Path, source: str, size: int, progress: Progress | None) -> GradientSet:
    """One of our files read line by line: the lines are decoded as _decode would the whole
    text (UTF-16 after its BOM, else UTF-8, else Latin-1; a BOM, CRLF and colour codes
    dropped) and never kept."""
    try:
        with _open(path, source) as f:
            utf16 = f.read(2) in _UTF16_BOMS
            f.seek(0)
            if not utf16:
                return _parse_lines(_utf8_lines(f), source, size, progress)
            # the wrapper takes the BOM, and closes the file with itself
            with io.TextIOWrapper(f, encoding="utf-16", newline="") as text:
                return _parse_lines(_utf16_lines(text, source), source, size, progress)
    except OSError as e:
        raise _refused(source, f"cannot be read ({e.strerror or e})") from None


def _utf8_lines(f: BinaryIO) -> Iterator[tuple[int, str | None]]:
    """(bytes, text) of each line, up to MAX_LINE_BYTES + 1 bytes of it (text None when over)."""
    for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            yield len(raw), None
            return
        try:
            yield len(raw), raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            yield len(raw), raw.decode("latin-1")


def _utf16_lines(text: io.TextIOWrapper, source: str) -> Iterator[tuple[int, str | None]]:
    """As _utf8_lines, for a file read as UTF-16 (two bytes a character, most often)."""
    try:
        for line in iter(lambda: text.readline(MAX_LINE_BYTES // 2 + 1), ""):
            size = 2 * len(line)
            yield size, (line if size <= MAX_LINE_BYTES else None)
    except UnicodeDecodeError as e:
        raise GradientFileError(source, f"is not valid UTF-16 ({e.reason})") from None


def _parse_lines(lines: Iterator[tuple[int, str | None]], source: str, size: int,
                 progress: Progress | None) -> GradientSet:
    return parse_dat_lines(_file_lines(lines, source, size, progress), source, size)


def _file_lines(lines: Iterator[tuple[int, str | None]], source: str, size: int,
                progress: Progress | None) -> Iterator[str]:
    done, report_at = 0, 0
    for number, (length, text) in enumerate(lines, 1):
        if text is None:
            raise GradientFileError(source, f"line {number}: is over {_mb(MAX_LINE_BYTES)} MB "
                                    "long; gradient files of ours wrap every 10 values")
        done += length
        if done > MAX_FILE_BYTES:   # whatever its size said when it was opened
            raise _refused(source, f"grew past {_mb(MAX_FILE_BYTES)} MB as it was read; not "
                           "read")
        if progress is not None and done >= report_at:
            if progress(done, size):
                raise ReadCancelled
            report_at = done + REPORT_BYTES
        # the line end stays: every reader of a line strips it
        yield _ANSI.sub("", text) if "\x1b" in text else text
    if progress is not None:
        progress(done, max(done, size))


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def _decode(data: bytes, source: str) -> str:
    """Text as Python, a shell or PowerShell (UTF-16) would have written it, without the colour
    codes a terminal capture may hold."""
    if data.startswith(_UTF16_BOMS):
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


def _sidecar(path: Path) -> tuple[NetworkSpec | None, str | None, list[str], list[str]]:
    """Network and layout from a model.json beside the file, when there is a usable one, with
    notes on what was taken; and notes on what beside it was left out: a model.json that
    cannot be used, a data.csv that cannot be read (a comparison makes the run behind the
    files again from it). Neither was named by the user: one that cannot be used is never a
    reason to refuse the file."""
    model = path.parent / SIDECAR
    skipped = _unusable_data(path)
    if path.name == SIDECAR or not os.path.lexists(model):
        return None, None, [], skipped
    shown = printable(str(model))
    text, problem = try_read_text(model, MAX_SIDECAR_BYTES, "a model.json found beside a file")
    try:
        if text is None:
            raise ValueError(_it(problem))
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
    except (ValueError, RecursionError) as e:
        return None, None, [], [f"{shown} beside the file was not used: {e}", *skipped]
    notes = []
    layout = data.get("layout")
    if layout not in LAYOUTS:
        layout = None
    try:
        spec = NetworkSpec.from_dict(data)
    except SpecError as e:
        spec = None
        notes.append(f"the network in {shown} was not used: {e}")
    used = " and ".join(filter(None, [layout and f"layout {layout}", spec and "network"]))
    if used:
        notes.append(f"{used} taken from {shown}")
    return spec, layout, notes, skipped


def _it(problem: str) -> str:
    """A problem as a note says it of a file: "is a folder" as "it is a folder"."""
    return f"it {problem}" if problem.startswith("is ") else problem


def _unusable_data(path: Path) -> list[str]:
    """A note when a data.csv beside the file is there but is no regular file of at most
    MAX_CSV_BYTES; its content is read, and checked, only when a comparison needs it."""
    data = path.parent / DATA_SIDECAR
    if path.name == DATA_SIDECAR or not os.path.lexists(data):
        return []
    try:
        with open_regular(data) as f:
            size = size_of(f)
    except NotRegularFile as e:
        problem = _it(e.describe("a data file"))
    except OSError as e:
        problem = f"cannot read it ({e.strerror or e})"
    else:
        if size <= MAX_CSV_BYTES:
            return []
        problem = f"{_mb(size)} MB is more than the {_mb(MAX_CSV_BYTES)} MB a data file may have"
    return [f"{printable(str(data))} beside the file was not used: {problem}"]


__all__ = ["GradientFileError", "GradientSet", "read_gradients"]
