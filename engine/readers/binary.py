"""Binary gradient files: .npy, .npz and torch.save files, opened without running anything.

numpy files are loaded with allow_pickle=False after their headers are checked (no object or
structured dtype, no size larger than the data). torch files are loaded with weights_only=True
passed explicitly, with numpy's array-rebuilding globals allowed for that one call only, so
numpy float arrays saved inside them load too; anything else in the pickle (a class, a
function) stops the load before it runs.
"""

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.gradset import MAX_FILE_BYTES, GradientFileError
from engine.readers.tree import MAX_DEPTH, Leaf, Node

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
_NUMBER_KINDS = "fiub"


def is_pickle(head: bytes) -> bool:
    """A pickle starts with PROTO (0x80) and a protocol number 2 to 5."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_npy(path: Path) -> Node:
    """The array of an .npy file, as a Leaf."""
    size = path.stat().st_size
    with path.open("rb") as f:
        _check_npy_header(f, size, str(path), "")
    return _leaf(np.load(path, allow_pickle=False), str(path))


def read_zip(path: Path) -> Node:
    """An .npz (a dict of its arrays) or a torch.save file (whatever it saved)."""
    source = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_FILE_BYTES:
                raise GradientFileError(source, f"unpacks to more than "
                                        f"{MAX_FILE_BYTES // 2**20} MB; not read")
            names = [i.filename for i in infos]
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                return _read_torch(path)
            if not names or not all(n.endswith(".npy") for n in names):
                raise GradientFileError(source, "is a zip archive but neither an .npz of arrays "
                                        "nor a torch.save file")
            for info in infos:
                with z.open(info) as f:
                    _check_npy_header(f, info.file_size, source, f" ({info.filename})")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise GradientFileError(source, f"is a damaged zip archive ({e})") from None
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: _leaf(npz[key], source) for key in npz.files}
    positional = [re.fullmatch(r"arr_(\d+)", key) for key in arrays]
    if all(positional):  # np.savez(path, *arrays) names them arr_0, arr_1, ...
        return [arrays[m[0]] for m in sorted(positional, key=lambda m: int(m[1]))]  # type: ignore[index]
    return arrays


def _check_npy_header(f: Any, size: int, source: str, member: str) -> None:
    try:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise GradientFileError(source, f"has a damaged numpy header{member}: "
                                f"{str(e).splitlines()[0][:100]}") from None
    if dtype.hasobject:
        raise GradientFileError(source, f"holds Python objects{member} (an object array); "
                                "they are never loaded, since loading them could run code; "
                                "save float arrays instead")
    if dtype.names or dtype.kind not in _NUMBER_KINDS:
        raise GradientFileError(source, f"holds {dtype} values{member}, not numbers")
    if int(np.prod(shape)) * dtype.itemsize > size:
        raise GradientFileError(source, f"is cut short{member}: its header promises "
                                f"{shape} values of {dtype}, more than the file holds")


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
        with torch.serialization.safe_globals(safe):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>", str(e))
        what = f" ({found[1] or found[2]})" if found else ""
        raise GradientFileError(source, f"is a torch.save file holding more than tensors, "
                                f"numbers, lists and dicts{what}; it is not opened, since "
                                "loading it could run code") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError, TypeError,
            IndexError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise GradientFileError(source, f"is not a readable torch.save file ({first})") from None
    return _from_torch(obj, source, 0)


def _from_torch(obj: object, source: str, depth: int) -> Node:
    """Tensors and numpy arrays to Leaves, containers to lists and dicts; the rest to None."""
    import torch

    if depth > MAX_DEPTH:
        raise GradientFileError(source, f"lists or dicts nested more than {MAX_DEPTH} deep; "
                                "this is not a gradient file")
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.is_complex():
            raise GradientFileError(source, f"holds a {obj.layout} {obj.dtype} tensor; only "
                                    "dense real tensors are read")
        t = obj.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return _leaf(t.numpy() if t.is_floating_point() else t.double().numpy(), source)
    if isinstance(obj, np.ndarray | np.generic):
        return _leaf(np.asarray(obj), source)
    if isinstance(obj, bool) or obj is None:
        return None
    if isinstance(obj, int | float):
        return Leaf(np.array(float(obj)), None)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return {str(k): _from_torch(v, source, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_from_torch(v, source, depth + 1) for v in obj]
    return None


def _leaf(values: np.ndarray, source: str) -> Leaf:
    if values.dtype.hasobject or values.dtype.kind not in _NUMBER_KINDS or values.dtype.names:
        raise GradientFileError(source, f"holds {values.dtype} values, not numbers")
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    elif values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return Leaf(values, str(values.dtype), explicit=True)
