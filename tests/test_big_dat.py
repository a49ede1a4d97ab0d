"""Our own .dat files above the 32 MB text limit: read line by line straight into one array per
parameter, in memory about the size of those arrays, reporting progress that can stop the
read; the same GradientSet and the same errors as parsing the whole text. On the command line,
compare shows a progress bar per file."""

import codecs
import shutil
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import app
import cli.progress
import engine.files.readers as readers
from engine.files.gradfile import format_gradients, write_gradients
from engine.files.gradset import MAX_TEXT_BYTES, GradientFileError, GradientSet, ReadCancelled
from engine.files.readers import read_gradients
from engine.files.readers.dat import parse_dat
from engine.net.params import init_params, to_layout
from engine.net.spec import NetworkSpec
from tests.helpers import write_tiled_dat
from tests.test_gradfile import BAD

# float64 values print long: a 33 MB file of this network is quick to read even traced
SPEC = NetworkSpec((10, 20, 10), ("tanh", "identity"), "mse", "float64")


def random_set(spec: NetworkSpec, n: int, extras: bool = True, seed: int = 0) -> GradientSet:
    rng = np.random.default_rng(seed)
    dtype = spec.np_dtype
    samples = [to_layout({k: rng.normal(size=v.shape).astype(dtype)
                          for k, v in init_params(spec).items()}, spec.layout) for _ in range(n)]
    x, y, losses = (rng.normal(size=(n, spec.n_inputs)).astype(dtype),
                    rng.normal(size=(n, spec.n_outputs)).astype(dtype),
                    rng.uniform(size=n).astype(dtype))
    return GradientSet(samples, "memory", spec.layout, spec.dtype, "torch autograd", spec,
                       *((x, y, losses) if extras else (None, None, None)))


def streamed(path, **kwargs) -> GradientSet:
    """read_gradients taking the line-by-line path whatever the file's size."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "MAX_TEXT_BYTES", 0)
        return read_gradients(path, **kwargs)


def assert_same_set(a: GradientSet, b: GradientSet) -> None:
    assert (a.n_samples, a.names, a.source, a.layout, a.dtype, a.engine, a.spec, a.notes) == \
        (b.n_samples, b.names, b.source, b.layout, b.dtype, b.engine, b.spec, b.notes)
    for name in a.names:
        va, vb = a.stacked(name), b.stacked(name)
        assert (va.dtype, va.shape) == (vb.dtype, vb.shape) and va.tobytes() == vb.tobytes()
    for what in ("x", "y", "losses"):
        va, vb = getattr(a, what), getattr(b, what)
        assert (va is None) == (vb is None), what
        if va is not None:
            assert (va.dtype, va.shape) == (vb.dtype, vb.shape) and va.tobytes() == vb.tobytes()


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(["float32", "float64"]), n=st.integers(1, 4),
       extras=st.booleans(), layout=st.sampled_from(["out_in", "in_out"]),
       sizes=st.sampled_from([(2, 3, 1), (3, 12, 2), (1, 1)]), crlf=st.booleans(),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be"]),
       seed=st.integers(0, 2**16))
def test_streaming_reads_what_parse_dat_reads(tmp_path_factory, dtype, n, extras, layout, sizes,
                                              crlf, encoding, seed):
    """In UTF-8 with or without a BOM, and in UTF-16 either way round after its BOM, as
    PowerShell's `>` writes it."""
    activations = ("tanh",) * (len(sizes) - 2) + ("identity",)
    spec = NetworkSpec(sizes, activations, "mse", dtype, layout)
    text = format_gradients(random_set(spec, n, extras, seed))
    text = text.replace("\n", "\r\n") if crlf else text
    path = tmp_path_factory.mktemp("eq") / "g.dat"
    path.write_bytes(encoded(text, encoding))
    assert_same_set(streamed(path), parse_dat(text, str(path)))


def encoded(text: str, encoding: str) -> bytes:
    """`text` in `encoding`; UTF-16 with its byte-order mark first."""
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
    return bom.get(encoding, b"") + text.encode(encoding)


# every malformed file of the strict reader's own tests, and what only a file read line by line
# can be: a line far longer than ours ever are
MALFORMED = {**BAD, "a line of a megabyte": (
    format_gradients(random_set(SPEC, 1)).replace("\nw1 (20, 10):\n",
                                                  "\nw1 (20, 10):\n" + "1 " * 2**19 + "\n"),
    r"line 14: is over 1 MB long; gradient files of ours wrap every 10 values")}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_streamed_file_fails_as_its_text_does(tmp_path, case, encoding):
    text, message = MALFORMED[case]
    path = tmp_path / "bad.dat"
    path.write_bytes(encoded(text, encoding))
    with pytest.raises(GradientFileError, match=message) as caught:
        streamed(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    if case in BAD:
        with pytest.raises(GradientFileError) as whole:
            read_gradients(path)
        assert str(caught.value) == str(whole.value)


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda data: data[:-1], "truncated data"),                  # half a character at the end
    (lambda data: data.replace("(".encode("utf-16-le"), b"\x00\xdc", 1), "illegal encoding")])
def test_a_broken_utf16_file_of_ours_is_named(tmp_path, damage, problem):
    path = tmp_path / "broken.dat"
    path.write_bytes(damage(encoded(format_gradients(random_set(SPEC, 1)), "utf-16-le")))
    with pytest.raises(GradientFileError, match=rf"is not valid UTF-16 \({problem}\)") as e:
        streamed(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_overflow_and_nan_are_named_as_in_the_text(tmp_path):
    good = format_gradients(random_set(SPEC.with_options(dtype="float32"), 2, seed=3))
    for value, problem in (("1e39", "holds an infinite value"), ("nan", "holds NaN")):
        lines = good.splitlines()
        at = lines.index("sample 2") + lines[lines.index("sample 2"):].index("b1 (20,):") + 1
        tokens = lines[at].split()
        lines[at] = "  " + " ".join([tokens[0], value, *tokens[2:]])
        path = tmp_path / f"{value}.dat"
        path.write_text("\n".join(lines))
        with pytest.raises(GradientFileError, match=r"sample 2: b1 holds .* at \[1\]") as e:
            streamed(path)
        assert problem in str(e.value)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A valid 33 MB .dat of 3,500 samples (SPEC's 50 random ones, tiled), and those 50."""
    tiled = random_set(SPEC, 50, seed=7)
    path = tmp_path_factory.mktemp("big") / "big.dat"
    reps = write_tiled_dat(path, tiled, 33)
    assert path.stat().st_size > MAX_TEXT_BYTES
    return path, tiled, reps


def test_a_33_mb_file_is_read_in_memory_the_size_of_its_arrays(big):
    path, tiled, reps = big
    reports = []
    tracemalloc.start()
    try:
        gs = read_gradients(path, progress=lambda done, total: reports.append((done, total)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = [gs.stacked(name) for name in gs.names] + [gs.x, gs.y, gs.losses]
    # parsing the whole text would take about ten times the file, 330 MB; the arrays are 20 MB
    assert peak < 2 * sum(a.nbytes for a in arrays)
    assert gs.n_samples == 50 * reps and gs.notes == [] and gs.spec == SPEC
    for name in gs.names:
        expected = np.tile(tiled.stacked(name), (reps, 1, 1)[:tiled.stacked(name).ndim])
        np.testing.assert_array_equal(gs.stacked(name), expected, strict=True)
    np.testing.assert_array_equal(gs.losses, np.tile(tiled.losses, reps), strict=True)
    size = path.stat().st_size
    done = [d for d, _ in reports]
    assert len(reports) > 30 and all(total == size for _, total in reports)
    assert done == sorted(done) and done[-1] == size


def test_a_read_stops_when_progress_says_so(big):
    path, *_ = big
    reports = []

    def cancel_at_third(done: int, total: int) -> bool:
        reports.append(done)
        return len(reports) == 3

    with pytest.raises(ReadCancelled):
        read_gradients(path, progress=cancel_at_third)
    assert len(reports) == 3 and reports[-1] < path.stat().st_size / 4


def test_printed_text_over_the_limit_is_still_refused(tmp_path):
    path = tmp_path / "printed.txt"
    write_gradients(tmp_path / "g.dat", random_set(SPEC, 1))
    path.write_text((tmp_path / "g.dat").read_text().split("\n", 1)[1])   # not ours any more
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "MAX_TEXT_BYTES", 1000)
        with pytest.raises(GradientFileError, match=r"MB of text; gradient files written as "
                                                    r"text are read up to 0 MB"):
            read_gradients(path)


def test_compare_of_two_big_exports_shows_progress_and_agrees(big, capsys, monkeypatch):
    path, _, reps = big
    copy = path.with_name("copy.dat")
    shutil.copyfile(path, copy)
    monkeypatch.setattr(cli.progress, "DELAY", 0)   # however fast this machine reads
    assert app.main(["compare", str(path), str(copy)]) == 0
    out, err = capsys.readouterr()
    assert "Verdict: the files agree" in out and f"{50 * reps} samples;" in out
    lines = err.splitlines()
    for name in (path, copy):
        bars = [line for line in lines if line.startswith(f"reading {name}: [")]
        assert len(bars) >= 10 and bars[-1].endswith("] 33/33 MB") and "#" * 30 in bars[-1]
