"""Fuzzing the binary readers: .npy headers written by hand with any shape and dtype, byte flips
of valid .npz and torch.save files, every torch dtype, layout and device, and files built to
expand (stride-0 views, many views of one storage, members adding up). Each is read or refused
with a GradientFileError of one line naming the file; on the command line, under limits of
memory and CPU, a sample of each ends with exit 2 and that one line."""

import io
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.files.gradset import GradientFileError
from engine.files.readers import binary, read_gradients
from engine.files.readers.binary import MAX_ARRAYS, MAX_VALUES, VIEW_ALLOWANCE_BYTES, VIEW_FACTOR
from tests.limits import limited, one_clean_line

# a warning numpy prints is a second line on the command line's stderr
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def read_or_refused(path: Path) -> str | None:
    """None when `path` is read; the message when it is refused, checked to be one line
    starting with the file's path. Any other exception fails the test."""
    try:
        read_gradients(path)
    except GradientFileError as e:
        message = str(e)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return message
    return None


def grads() -> list[torch.Tensor]:
    """One sample's w1, b1, w2, b2 of a 2-3-1 net."""
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(3, 2, generator=gen), torch.rand(3, generator=gen),
            torch.rand(1, 3, generator=gen), torch.rand(1, generator=gen)]


def save(path: Path, obj: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prototype layouts warn as they are made and saved
        torch.save(obj, path)
    return path


def with_first(tensor: torch.Tensor) -> list[torch.Tensor]:
    """A sample whose w1 is `tensor`: where a gradient belongs."""
    return [tensor, *grads()[1:]]


def as_target(tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """A named sample with `tensor` as its y: where integer labels may be."""
    return dict(zip(("w1", "b1", "w2", "b2"), grads(), strict=True)) | {"y": tensor}


# --- .npy headers written by hand --------------------------------------------------------------

def npy(descr: str, shape: tuple[int, ...], data: bytes, fortran: bool = False) -> bytes:
    """An .npy file (format 1.0) whose header states `descr` and `shape`, whatever `data` is."""
    header = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


DIMENSIONS = st.one_of(st.integers(-3, 6), st.integers(-2**70, 2**70),
                       st.sampled_from([2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64]))
DESCRS = st.sampled_from(["<f8", "<f4", "<f2", ">f8", "|b1", "<i8", "|u1", "<c16", "<U3", "|O",
                          "|V8", "<M8[s]", "<f16"])


@FUZZ
@given(shape=st.lists(DIMENSIONS, max_size=4).map(tuple), descr=DESCRS, fortran=st.booleans(),
       data=st.binary(max_size=512))
def test_npy_headers_of_any_shape_and_dtype_are_read_or_refused(tmp_path, shape, descr,
                                                                 fortran, data):
    path = tmp_path / "g.npy"
    path.write_bytes(npy(descr, shape, data, fortran))
    read_or_refused(path)


@pytest.mark.parametrize("shape, problem", [
    ((-1, -1), r"its shape \(-1, -1\) has a negative length"),
    ((-3, 2), r"its shape \(-3, 2\) has a negative length"),
    ((2**32, 2**32), r"is cut short: its header promises \(4294967296, 4294967296\) values"),
    ((2**62, 4), r"is cut short: its header promises"),
])
def test_negative_and_overflowing_npy_shapes_are_refused(tmp_path, shape, problem):
    """np.prod wraps (2**32, 2**32) round to 0 values and (-1, -1) to 1: both passed the size
    check, and np.load failed with a traceback."""
    path = tmp_path / "g.npy"
    path.write_bytes(npy("<f8", shape, bytes(64)))
    with pytest.raises(GradientFileError, match=r"g\.npy: (has a damaged numpy header: )?"
                                                + problem):
        read_gradients(path)


# --- byte flips of valid .npz and torch.save files ---------------------------------------------

def _valid_binaries(folder: Path) -> dict[str, bytes]:
    arrays = {n: g.numpy() for n, g in zip(("w1", "b1", "w2", "b2"), grads(), strict=True)}
    np.savez(folder / "plain.npz", **arrays)
    np.savez_compressed(folder / "packed.npz", **arrays)
    save(folder / "list.pt", [grads(), grads()])
    save(folder / "named.pt", {"grads": arrays, "epoch": 3})
    return {name: (folder / name).read_bytes()
            for name in ("plain.npz", "packed.npz", "list.pt", "named.pt")}


def _valid() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        return _valid_binaries(Path(folder))


VALID = _valid()


FLIPS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                 max_size=6)


@FUZZ
@given(name=st.sampled_from(["plain.npz", "packed.npz", "list.pt", "named.pt"]), flips=FLIPS,
       keep=st.one_of(st.just(1.0), st.floats(0.5, 1)))  # a cut loses the zip's directory
@example(name="list.pt", flips=[(167, 57)], keep=1.0)  # a storage key made a number: asserted
@example(name="named.pt", flips=[(369, 10)], keep=1.0)  # a numpy dtype's state: SystemError
def test_byte_flips_of_npz_and_torch_files_are_read_or_refused(tmp_path, name, flips, keep):
    data = bytearray(VALID[name])
    for position, bits in flips:
        data[position % len(data)] ^= bits
    path = tmp_path / name
    path.write_bytes(bytes(data[:max(1, int(len(data) * keep))]))
    read_or_refused(path)


def flipped_member(valid: dict[str, bytes], name: str, folder: Path) -> Path:
    """`name` with one byte flipped near the end of its first member's stored data (past the
    .npy header): the zip's directory is intact, the member's CRC or deflate stream is not."""
    path = folder / name
    path.write_bytes(valid[name])
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[0]
    data = bytearray(valid[name])
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size - 2] ^= 0x55
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", ["plain.npz", "packed.npz"])
def test_a_damaged_npz_member_is_refused(tmp_path, name):
    """A flipped byte in a member's data raised BadZipFile (Bad CRC-32) or zlib.error out of
    np.load, a traceback."""
    path = flipped_member(VALID, name, tmp_path)
    with pytest.raises(GradientFileError, match=rf"{name}: is a damaged zip archive"):
        read_gradients(path)


# --- every torch dtype, layout and device ------------------------------------------------------

def made(dtype: torch.dtype) -> torch.Tensor | None:
    """A (3, 2) tensor of `dtype`, made as torch allows (some only as a view of bytes), or
    None where torch makes none or cannot save it (int1 to int7)."""
    for make in (lambda: torch.ones(3, 2).to(dtype),
                 lambda: torch.zeros(3, 2 * torch.empty(0, dtype=dtype).element_size(),
                                     dtype=torch.uint8).view(dtype)):
        try:
            tensor = make()
            torch.save(tensor, io.BytesIO())
            return tensor
        except (RuntimeError, TypeError, KeyError, pickle.PicklingError):
            continue
    return None


def _dtypes() -> list[torch.dtype]:
    """Every dtype torch has, that it can make a tensor of and save."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex32 is experimental
        found = {getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n),
                                                                      torch.dtype)}
        return sorted((d for d in found if made(d) is not None), key=str)


DTYPES = _dtypes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_torch_dtype_where_gradients_belong(tmp_path, dtype):
    message = read_or_refused(save(tmp_path / "g.pt", with_first(made(dtype))))
    if dtype in FLOATS:
        assert message is None
    else:
        assert message is not None and str(dtype).removeprefix("torch.") in message, message
        assert " tensor ([0]); " in message, message


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_torch_dtype_as_a_target(tmp_path, dtype):
    """Where y is, integers and booleans are read (class labels); nothing escapes."""
    message = read_or_refused(save(tmp_path / "g.pt", as_target(made(dtype)[:1, :1])))
    if dtype in FLOATS or dtype in (torch.int64, torch.int32, torch.uint8, torch.bool):
        assert message is None, message


def _odd_tensors() -> dict[str, torch.Tensor]:
    w1 = grads()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "nested": torch.nested.nested_tensor([torch.rand(2), torch.rand(3)]),
            "nested jagged": torch.nested.nested_tensor([torch.rand(2), torch.rand(3)],
                                                        layout=torch.jagged),
            "sparse coo": w1.to_sparse(),
            "sparse csr": w1.to_sparse_csr(),
            "sparse csc": w1.to_sparse_csc(),
            "sparse bsr": torch.rand(4, 2).to_sparse_bsr((2, 2)),
            "sparse bsc": torch.rand(4, 2).to_sparse_bsc((2, 2)),
            "quantized": torch.quantize_per_tensor(w1, 0.1, 0, torch.qint8),
            "quantized per channel": torch.quantize_per_channel(
                w1, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 0, 0]), 0, torch.quint8),
            "meta": torch.empty(3, 2, device="meta"),
            "0-dim": torch.tensor(1.5),
            "empty": torch.empty(0, 2),
            "empty both": torch.empty(3, 0),
        }


ODD = _odd_tensors()
# what each must be called in its refusal
ODD_WORDS = {"nested": "nested", "sparse": "sparse", "quantized": "quantized", "meta": "meta",
             "0-dim": "single number", "empty": "empty array"}


@pytest.mark.parametrize("kind", sorted(ODD))
def test_odd_torch_layouts_and_devices_are_refused_by_name(tmp_path, kind):
    message = read_or_refused(save(tmp_path / "g.pt", with_first(ODD[kind])))
    assert message is not None and ODD_WORDS[kind.split()[0]] in message, message


@pytest.mark.parametrize("kind", sorted(ODD))
def test_odd_torch_tensors_anywhere_are_read_or_refused(tmp_path, kind):
    for obj in (as_target(ODD[kind]), {"epoch": ODD[kind], "grads": grads()},
                ODD[kind], [grads(), [ODD[kind]]]):
        read_or_refused(save(tmp_path / "g.pt", obj))


@pytest.mark.parametrize("obj", [[10**400], {"loss": 10**400, "w1": torch.ones(1, 1)},
                                 {10**5000: torch.ones(1, 1)}, {"w1": [float("nan")] * 3}],
                         ids=["huge int", "huge loss", "huge key", "nan list"])
def test_python_numbers_and_keys_past_any_range(tmp_path, obj):
    """float(10**400) overflows (it escaped); a 5000-digit key, which Python will not write
    out, and NaNs are refused too."""
    assert read_or_refused(save(tmp_path / "g.pt", obj)) is not None


def test_ordinary_torch_oddities_are_read(tmp_path):
    """What autograd and people do hand over is read: a Parameter, a transposed view, a small
    expand (the gradient of a sum), the same tensor saved twice, an integer step count."""
    w1, b1, w2, b2 = grads()
    sample = [torch.nn.Parameter(w1), b1, w2.t().contiguous().t(), torch.ones(1).expand(1)]
    for obj in (sample, [sample, sample], {"step": torch.tensor(3), "grads": [sample]},
                [torch.zeros(1).expand(3, 2), b1, w2, b2]):
        assert read_or_refused(save(tmp_path / "g.pt", obj)) is None


# --- files built to expand ---------------------------------------------------------------------

def over_bounds(tensors: list[torch.Tensor], stored: int) -> bool:
    values = sum(t.numel() for t in tensors)
    viewed = sum(t.numel() * t.element_size() for t in tensors)
    return values > MAX_VALUES or viewed > VIEW_FACTOR * stored + VIEW_ALLOWANCE_BYTES


@settings(FUZZ, max_examples=25)
@given(shape=st.lists(st.integers(1, 30000), min_size=1, max_size=3).map(tuple),
       copies=st.integers(1, 400), base=st.sampled_from([1, 1000, 10**6]))
def test_expanded_and_repeated_views_are_refused_past_the_bounds(tmp_path, shape, copies, base):
    storage = torch.zeros(base)
    size = min(base, int(np.prod(shape)))
    view = storage[:size].view(-1, 1).expand(-1, max(1, int(np.prod(shape)) // size))
    tensors = [view] * copies
    message = read_or_refused(save(tmp_path / "g.pt", tensors))
    refused_for_size = message is not None and ("values in all" in message
                                                or "viewing" in message)
    assert refused_for_size == over_bounds(tensors, base * 4), message


def test_stride_0_tensor_past_the_view_bound_but_under_the_value_bound(tmp_path):
    path = save(tmp_path / "g.pt", with_first(torch.zeros(1).expand(4000, 4000)))
    with pytest.raises(GradientFileError, match=r"g\.pt: holds tensors viewing 61 MB of values "
                                                r"but stores 0 MB \(expanded or repeated views "
                                                r"of one storage, such as \[0\]\)"):
        read_gradients(path)


def test_npz_members_adding_up_past_the_value_bound(tmp_path):
    """Each member is well under the bound and the file (compressed zeros) is small; together
    they pass it: refused from their headers, nothing decompressed."""
    half = np.zeros(MAX_VALUES // 2 + 1, dtype=np.float16)
    np.savez_compressed(tmp_path / "g.npz", w1=half, b1=half)
    with pytest.raises(GradientFileError, match=rf"g\.npz: holds more than {MAX_VALUES:,} "
                                                r"values in all \(passed at b1\)"):
        read_gradients(tmp_path / "g.npz")


def test_a_million_references_to_one_number(tmp_path):
    path = save(tmp_path / "g.pt", {**dict(zip(("w1", "b1", "w2", "b2"), grads(), strict=True)),
                                    "losses": [0.5] * (MAX_ARRAYS + 1)})
    with pytest.raises(GradientFileError, match=rf"g\.pt: holds more than {MAX_ARRAYS:,} arrays"):
        read_gradients(path)


def test_a_zip_of_more_members_than_arrays_is_refused_before_it_is_opened(tmp_path,
                                                                         monkeypatch):
    """zipfile makes an object of about 1 KB for every member as it opens an archive: 200 MB
    of empty members would take gigabytes before any is read. Shown with a bound of 1000."""
    monkeypatch.setattr(binary, "MAX_ARRAYS", 1000)
    with zipfile.ZipFile(tmp_path / "g.npz", "w") as z:
        for i in range(1001):
            z.writestr(f"w{i}.npy", b"")
    with pytest.raises(GradientFileError, match=r"g\.npz: is a zip archive of more than 1,000 "
                                                r"members"):
        read_gradients(tmp_path / "g.npz")


# --- the command line, under limits ------------------------------------------------------------

def _bad_files(folder: Path) -> dict[str, Path]:
    files = {"npy negative": folder / "negative.npy", "npy overflow": folder / "overflow.npy"}
    files["npy negative"].write_bytes(npy("<f8", (-1, -1), bytes(64)))
    files["npy overflow"].write_bytes(npy("<f8", (2**32, 2**32), bytes(64)))
    files["npy float128"] = folder / "float128.npy"
    np.save(files["npy float128"], np.full((3, 2), np.longdouble("1e4000")))
    valid = _valid_binaries(folder)
    files["npz flipped"] = flipped_member(valid, "plain.npz", folder / "flipped")
    files["npz compressed flipped"] = flipped_member(valid, "packed.npz", folder / "flipped")
    pickled = bytearray(valid["list.pt"])
    pickled[167] ^= 57  # the flip the fuzz above found: a storage's key made a number
    files["pt flipped"] = folder / "flipped" / "list.pt"
    files["pt flipped"].write_bytes(bytes(pickled))
    for kind, tensor in ODD.items():
        files[kind] = save(folder / f"{kind.replace(' ', '_')}.pt", with_first(tensor))
    for dtype in (torch.float8_e4m3fn, torch.complex64, torch.bool, torch.int64):
        files[str(dtype)] = save(folder / f"{dtype}.pt", with_first(made(dtype)))
    return files


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "flipped").mkdir()
    return _bad_files(folder) | {"good": save(folder / "good.pt", grads())}


@pytest.mark.parametrize("kind", ["npy negative", "npy overflow", "npy float128", "npz flipped",
                                  "npz compressed flipped", "pt flipped", "nested", "sparse csr",
                                  "quantized", "meta", "0-dim", "empty", "torch.float8_e4m3fn",
                                  "torch.complex64", "torch.bool", "torch.int64"])
def test_the_command_line_refuses_each_family_in_one_line(bad_files, kind):
    bad = bad_files[kind]
    line = one_clean_line(limited("compare", bad, bad_files["good"], seconds=30))
    assert f"{bad}: " in line, line


@pytest.fixture(scope="module")
def expanding(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("expanding")
    storage = torch.zeros(10**6)
    return {"stride 0": save(folder / "stride0.pt", torch.zeros(1).expand(10000, 10000)),
            "shared": save(folder / "shared.pt", [storage.view(1000, 1000)] * 300)}


@pytest.mark.parametrize("kind", ["stride 0", "shared"])
def test_files_built_to_expand_are_refused_under_a_memory_cap(expanding, kind):
    """Compared with itself, the 2 KB stride-0 file took 6.5 GB and the 4 MB one of 300 views
    of one storage 10.9 GB; under a 3 GB cap they are refused in one line."""
    path = expanding[kind]
    assert path.stat().st_size < 5 * 2**20
    line = one_clean_line(limited("compare", path, path, memory=3 * 2**30, seconds=60))
    assert f"{path}: holds more than {MAX_VALUES:,} values in all" in line, line
