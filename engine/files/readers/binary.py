"""Binary gradient files: .npy, .npz and torch.save files, opened without running anything.

numpy files are loaded with allow_pickle=False after their headers are checked (no object or
structured dtype, no negative length, no size larger than the data). torch files are loaded
with weights_only=True passed explicitly, with numpy's array-rebuilding globals allowed for
that one call only, so numpy float arrays saved inside them load too; anything else in the
pickle (a class, a function) stops the load before it runs.

What a file may expand to is counted from its headers and tensor shapes before a value is
read or copied (a Budget): a header, a stride-0 expand or many views of one storage cannot
make a small file take gigabytes. Each array is checked where it sits: where a gradient belongs
it must hold floats with at least one value; x, y and losses may be integers.
"""

import functools
import math
import pickle
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import printable
from engine.files.gradset import MAX_FILE_BYTES, GradientFileError, shape_text
from engine.files.readers.names import EXTRAS, UNLABELLED, ParamKey, parse_label
from engine.files.readers.tree import MAX_DEPTH, Leaf, Node

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
_NUMBER_KINDS = "fiub"
_GRADIENT_RULE = "gradients must be float32 or float64 (float16 and bfloat16 are read as float32)"

# The values a file may hold in all, over every array and tensor, as they would be read: what a
# file at the size limit holds in float32, the dtype gradients are kept in. Comparing costs about
# 33 bytes a value a file (a (10000, 10000) tensor took 6.5 GB compared with itself), so two files
# at this bound take about 3.5 GB.
MAX_VALUES = MAX_FILE_BYTES // 4
# Every array or number of a file is an object in the tree, the samples and the comparison,
# about 1.3 KB each (250,000 samples of 4 tensors took 2.6 GB and two minutes compared with
# themselves): more than this many is not a file anyone compares.
MAX_ARRAYS = 2**20
# A torch.save file stores each storage once and its tensors view them: the same tensor saved
# twice, or an expand autograd returned, views more than is stored, which is fine in a small
# measure. Beyond twice the bytes stored plus this allowance the file is built to expand (2 KB
# holding torch.zeros(1).expand(10000, 10000) took 6.5 GB to compare).
VIEW_FACTOR = 2
VIEW_ALLOWANCE_BYTES = 16 * 2**20
# A zip's end record sits in its last 22 bytes, after a comment of at most 64 KB
_END_SEARCH_BYTES = 22 + 2**16 + 56 + 20
# What a damaged zip archive raises from zipfile, zlib or np.load as it is opened and read
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error,
               NotImplementedError, RuntimeError, ValueError, struct.error, OverflowError,
               KeyError)
# What torch.load raises on a damaged or hand-made file (a flipped byte in its pickle or zip);
# its loader asserts what it expects of the pickle, and numpy's C code rebuilding a dtype from
# a damaged state raises SystemError
_TORCH_ERRORS = (AssertionError, RuntimeError, EOFError, ValueError, OSError, LookupError,
                 AttributeError, TypeError, IndexError, NotImplementedError, OverflowError,
                 SystemError, struct.error, zlib.error, zipfile.BadZipFile)


def is_pickle(head: bytes) -> bool:
    """A pickle starts with PROTO (0x80) and a protocol number 2 to 5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


@dataclass
class Budget:
    """What a file's arrays add up to as they would be read, counted before any is: values and
    arrays in all; for torch files, bytes viewed by tensors against bytes their storages hold."""

    source: str
    values: int = 0
    arrays: int = 0
    viewed: int = 0
    stored: int = 0
    storages: set[tuple[int, int]] = field(default_factory=set)
    widest: tuple[int, str] = (0, "")  # the largest view past its storage, and where it is

    def add(self, count: int, where: str) -> None:
        """One array of `count` values at `where`; refused as soon as a bound is passed."""
        self.values += count
        self.arrays += 1
        if self.values > MAX_VALUES:
            raise GradientFileError(self.source, f"holds more than {MAX_VALUES:,} values in all "
                                    f"(passed at {where}); gradient files are read up to that "
                                    f"many, what {MAX_FILE_BYTES // 2**20} MB of float32 holds")
        if self.arrays > MAX_ARRAYS:
            raise GradientFileError(self.source, f"holds more than {MAX_ARRAYS:,} arrays and "
                                    "numbers; gradient files are read up to that many")

    def view(self, viewed: int, storage: tuple[int, int], where: str) -> None:
        """A tensor viewing `viewed` bytes of the storage (address, bytes)."""
        self.viewed += viewed
        if storage not in self.storages:
            self.storages.add(storage)
            self.stored += storage[1]
        self.widest = max(self.widest, (viewed - storage[1], where))

    def check_views(self) -> None:
        """Refuse tensors that view far more than their storages hold."""
        if self.viewed > VIEW_FACTOR * self.stored + VIEW_ALLOWANCE_BYTES:
            raise GradientFileError(self.source, f"holds tensors viewing {_mb(self.viewed)} MB "
                                    f"of values but stores {_mb(self.stored)} MB (expanded or "
                                    f"repeated views of one storage, such as {self.widest[1]}); "
                                    f"views are read up to {VIEW_FACTOR} times what is stored "
                                    f"plus {_mb(VIEW_ALLOWANCE_BYTES)} MB")


@dataclass
class _Pending:
    """An array or tensor found in a file, checked and counted but not yet read."""

    value: Any


def read_npy(path: Path) -> Node:
    """The array of an .npy file, as a Leaf."""
    source = str(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        shape, dtype = _npy_header(f, size, source, "")
    _check_dtype(dtype, shape, "the array", True, source)
    Budget(source).add(math.prod(shape), "the array")
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GradientFileError(source, f"is a damaged .npy file ({_first_line(e)})") from None
    return number_leaf(values, source)


def read_zip(path: Path) -> Node:
    """An .npz (a dict of its arrays) or a torch.save file (whatever it saved)."""
    source = str(path)
    if _zip_members(path) > MAX_ARRAYS:
        raise GradientFileError(source, f"is a zip archive of more than {MAX_ARRAYS:,} members; "
                                "gradient files are read up to that many arrays")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_FILE_BYTES:
                raise GradientFileError(source, f"unpacks to more than "
                                        f"{MAX_FILE_BYTES // 2**20} MB; not read")
            names = [i.filename for i in infos]
            torch_file = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
            if not torch_file:
                return _read_npz(z, infos, source)
    except GradientFileError:
        raise
    except _ZIP_ERRORS as e:
        raise GradientFileError(source, f"is a damaged zip archive ({_first_line(e)})") from None
    return _read_torch(path)


def _zip_members(path: Path) -> int:
    """At most how many members zipfile makes an object of (about 1 KB each) as it opens `path`:
    the entry signatures in the central directory, counted in the bytes its end record says it
    spans, before any object is made. 0 when there is no end record: zipfile says so."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        tail_at = f.seek(max(0, size - _END_SEARCH_BYTES))
        tail = f.read()
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or end + 22 > len(tail):
            return 0
        directory = int.from_bytes(tail[end + 12:end + 16], "little")
        zip64 = tail.rfind(b"PK\x06\x06", 0, end)
        if zip64 >= 0 and zip64 + 56 <= len(tail):  # zipfile takes the zip64 record's size
            directory = max(directory, int.from_bytes(tail[zip64 + 40:zip64 + 48], "little"))
        # the directory ends where the end records begin; a few bytes more only over-count
        start = f.seek(max(0, tail_at + end - directory - 76))
        return f.read(tail_at + end - start).count(b"PK\x01\x02")


def _read_npz(z: zipfile.ZipFile, infos: list[zipfile.ZipInfo], source: str) -> Node:
    """The arrays of an .npz, by name (a list for np.savez(path, *arrays)); every member's header
    is checked, and the values of all counted, before any is read."""
    if not infos or not all(i.filename.endswith(".npy") for i in infos):
        raise GradientFileError(source, "is a zip archive but neither an .npz of arrays nor a "
                                "torch.save file")
    keys = [i.filename.removesuffix(".npy") for i in infos]
    positional = [re.fullmatch(r"arr_(\d+)", key) for key in keys]
    budget = Budget(source)
    for info, key in zip(infos, keys, strict=True):
        member = f" ({_clip(info.filename)})"
        with z.open(info) as f:
            shape, dtype = _npy_header(f, info.file_size, source, member)
        gradient = all(positional) or _holds_gradients(key)
        _check_dtype(dtype, shape, _clip(key), gradient, source)
        budget.add(math.prod(shape), _clip(key))
    # np.savez(path, *arrays) names them arr_0, arr_1, ...: they are a list
    order = (sorted(range(len(keys)), key=lambda i: int(positional[i][1]))  # type: ignore[index]
             if all(positional) else range(len(keys)))
    arrays = {}
    for i in order:
        with z.open(infos[i]) as f:
            arrays[keys[i]] = number_leaf(np.lib.format.read_array(f, allow_pickle=False), source)
    return list(arrays.values()) if all(positional) else arrays


def _npy_header(f: Any, size: int, source: str, member: str) -> tuple[tuple[int, ...],
                                                                       np.dtype]:
    """The shape and dtype an .npy header states, refused unless `size` bytes can hold them."""
    try:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError) as e:  # a zip's own errors pass
        raise GradientFileError(source, f"has a damaged numpy header{member}: "
                                f"{_first_line(e)}") from None
    if dtype.hasobject:
        raise GradientFileError(source, f"holds Python objects{member} (an object array); "
                                "they are never loaded, since loading them could run code; "
                                "save float arrays instead")
    if dtype.kind == "c":
        raise GradientFileError(source, f"holds {dtype} values{member}; gradients are real "
                                "numbers")
    if dtype.names or dtype.kind not in _NUMBER_KINDS:
        raise GradientFileError(source, f"holds {dtype} values{member}, not numbers")
    if any(n < 0 for n in shape):
        raise GradientFileError(source, f"has a damaged numpy header{member}: its shape "
                                f"{shape_text(shape)} has a negative length")
    # math.prod on Python ints: np.prod would wrap (2**32, 2**32) around to 0 values
    if math.prod(shape) * dtype.itemsize > size:
        raise GradientFileError(source, f"is cut short{member}: its header promises "
                                f"{shape_text(shape)} values of {dtype}, more than the file "
                                "holds")
    return shape, dtype


def _check_dtype(dtype: np.dtype, shape: tuple[int, ...], where: str, gradient: bool,
                 source: str) -> None:
    """A numpy array's dtype and shape, where it sits: a gradient is floats, and more than an
    empty array or a single number."""
    if dtype.kind not in _NUMBER_KINDS:
        raise GradientFileError(source, f"holds {dtype} values ({where}), not real numbers")
    if gradient and dtype.kind != "f":
        raise GradientFileError(source, f"holds {dtype} values ({where}); {_GRADIENT_RULE}")
    if gradient:
        _check_gradient_shape(shape, where, source)


def _check_gradient_shape(shape: tuple[int, ...], where: str, source: str) -> None:
    if not shape:
        raise GradientFileError(source, f"holds a single number ({where}) where an array of "
                                "gradients belongs")
    if math.prod(shape) == 0:
        raise GradientFileError(source, f"holds an empty array ({where}) of shape "
                                f"{shape_text(shape)} where gradients belong")


@functools.lru_cache(maxsize=4096)  # a list of a million items asks of the same label
def _holds_gradients(label: str | None) -> bool:
    """Whether the value the file labels so is read as gradients: a parameter's name, no name
    (an array in a list), or a number ({0: grad_w1, ...}). x, y, losses and values under names
    we skip ("epoch") are not."""
    if label is None or label.isdigit():
        return True
    kind = parse_label(label)
    return kind == UNLABELLED or isinstance(kind, ParamKey)


def _read_torch(path: Path) -> Node:
    import torch  # only here: reading a torch.save file needs torch's own loader

    # Rebuilding a numpy array or scalar takes these globals; they construct arrays of the
    # listed dtypes and nothing else. Allowed for this one load, never globally.
    safe: list[Any] = [np.ndarray, np.dtype, np.zeros(0).__reduce__()[0],
                       np.float64(0).__reduce__()[0]]
    safe += [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                          np.int32, np.int64, np.uint8, np.bool_)]
    source = str(path)
    try:
        # torch warns as it rebuilds prototype layouts (nested, sparse); they are refused below
        with torch.serialization.safe_globals(safe), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>", str(e))
        what = f" ({found[1] or found[2]})" if found else ""
        raise GradientFileError(source, f"is a torch.save file holding more than tensors, "
                                f"numbers, lists and dicts{what}; it is not opened, since "
                                "loading it could run code") from None
    except _TORCH_ERRORS as e:
        raise GradientFileError(source, f"is not a readable torch.save file "
                                f"({_first_line(e)})") from None
    budget = Budget(source)
    found = _survey(obj, None, "", 0, budget)
    budget.check_views()
    return _materialise(found, source)


def _survey(obj: object, label: str | None, where: str, depth: int, budget: Budget) -> Any:
    """The tree of a loaded torch.save object, its tensors and arrays checked and counted but
    left as they are (_Pending); containers as lists and dicts, anything else None."""
    source = budget.source
    if depth > MAX_DEPTH:
        raise GradientFileError(source, f"lists or dicts nested more than {MAX_DEPTH} deep; "
                                "this is not a gradient file")
    shown = where or "the file's only value"
    if isinstance(obj, bool) or obj is None:
        return None
    if isinstance(obj, int | float):
        if _holds_gradients(label):
            _check_gradient_shape((), shown, source)
        budget.add(1, shown)
        try:
            return Leaf(np.array(float(obj)), None)
        except OverflowError:  # a pickle's integers have no bound
            raise GradientFileError(source, f"holds an integer past float64's range ({shown})"
                                    ) from None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        keys = [_key(k) for k in obj]
        return {k: _survey(v, k, _join(where, k), depth + 1, budget)
                for k, v in zip(keys, obj.values(), strict=True)}
    if isinstance(obj, list | tuple):
        if len(obj) == 2 and isinstance(obj[0], str):  # a (name, tensor) pair
            return [obj[0], _survey(obj[1], obj[0], _join(where, obj[0]), depth + 1, budget)]
        items = _item_label(label)
        return [_survey(v, items, f"{where}[{i}]", depth + 1, budget) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray | np.generic):
        values = np.asarray(obj)
        _check_dtype(values.dtype, values.shape, shown, _holds_gradients(label), source)
        budget.add(values.size, shown)
        return _Pending(values)
    import torch  # here, not above: a list of a million numbers never needs it

    if isinstance(obj, torch.Tensor):
        _check_tensor(obj, shown, _holds_gradients(label), source)
        budget.add(obj.numel(), shown)
        storage = obj.untyped_storage()
        budget.view(obj.numel() * obj.element_size(), (storage.data_ptr(), storage.nbytes()),
                    shown)
        return _Pending(obj)
    return None


def _item_label(label: str | None) -> str | None:
    """The label the items of a list under `label` are read with: a parameter's name, or x's,
    carries over ({"w1": [per-sample arrays]}); the items of other lists have none."""
    if label is None:
        return None
    kind = parse_label(label)
    return label if isinstance(kind, ParamKey) or kind in EXTRAS else None


def _check_tensor(t: Any, where: str, gradient: bool, source: str) -> None:
    """Refuse a tensor with no plain values to read: nested, sparse, quantized, on the meta
    device, complex or of a bit type; and, where a gradient belongs, one not of floats, empty
    or a single number."""
    import torch

    dtype = str(t.dtype).removeprefix("torch.")
    if t.is_nested:
        problem, fix = "a nested tensor", "only dense tensors are read: save t.unbind()"
    elif t.layout != torch.strided:
        layout = str(t.layout).removeprefix("torch.")
        problem, fix = f"a {layout} tensor", "only dense tensors are read: save t.to_dense()"
    elif t.is_quantized:
        problem, fix = f"a quantized {dtype} tensor", "save t.dequantize()"
    elif t.device.type == "meta":
        problem, fix = "a tensor on the meta device", "it has a shape but no values"
    else:
        problem = fix = ""
    if problem:
        raise GradientFileError(source, f"holds {problem} ({where}); {fix}")
    floats = t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    if gradient and not floats:
        raise GradientFileError(source, f"holds {_a(dtype)} tensor ({where}); {_GRADIENT_RULE}")
    if not floats and (t.is_complex() or t.is_floating_point() or t.element_size() == 0
                       or dtype.startswith(("bits", "quint", "qint"))):
        raise GradientFileError(source, f"holds {_a(dtype)} tensor ({where}); only real numbers "
                                "of float16 to float64, integers and booleans are read")
    if gradient:
        _check_gradient_shape(tuple(t.shape), where, source)


def _materialise(node: Any, source: str) -> Node:
    """The surveyed tree with every pending tensor or array read into a Leaf."""
    import torch

    if isinstance(node, dict):
        return {k: _materialise(v, source) for k, v in node.items()}
    if isinstance(node, list):
        return [_materialise(v, source) for v in node]
    if not isinstance(node, _Pending):
        return node
    value = node.value
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        elif not t.is_floating_point():
            t = t.double()
        # a stride-0 or overlapping view is copied: a numpy view of it would share its values
        value = t.contiguous().numpy()
    return number_leaf(value, source)


def number_leaf(values: np.ndarray, source: str) -> Leaf:
    if values.dtype.hasobject or values.dtype.kind not in _NUMBER_KINDS or values.dtype.names:
        raise GradientFileError(source, f"holds {values.dtype} values, not numbers")
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    elif values.dtype not in (np.float32, np.float64):
        # a float128 past float64's range turns infinite, which the set's check then names
        with np.errstate(over="ignore", invalid="ignore"):
            values = values.astype(np.float64)
    return Leaf(values, str(values.dtype), explicit=True)


def _key(key: object) -> str:
    """A dict key as text; an integer of more digits than Python writes out is named so."""
    try:
        return str(key)
    except ValueError:
        return f"a {type(key).__name__} too long to write"


def _join(where: str, key: str) -> str:
    return f"{where}/{_clip(key)}" if where else _clip(key)


def _a(dtype: str) -> str:
    return ("an " if dtype[0] in "aeio" else "a ") + dtype


def _clip(text: str, length: int = 40) -> str:
    """A name from the file as a message quotes it: printable, at most `length` characters."""
    return printable(text[:length]) + ("..." if len(text) > length else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return _clip(text.splitlines()[0], 120) if text else type(error).__name__


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")
