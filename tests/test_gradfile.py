"""Our .dat gradient format: lossless round trips, a readable layout, strict reading with
messages that name the file and the line, and atomic writes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.files.atomic import atomic_write_bytes, atomic_write_text
from engine.files.gradfile import FORMAT_LINE, format_gradients, write_gradients
from engine.files.gradset import GradientFileError, GradientSet
from engine.files.readers import read_gradients
from engine.files.readers.dat import parse_dat
from engine.net.params import init_params, to_layout
from engine.net.spec import NetworkSpec, preset

SPEC = preset("2-2-1-tanh-bce")


def make_set(dtype: str = "float32", n: int = 3, layout: str = "out_in", seed: int = 0,
             extras: bool = True) -> GradientSet:
    """n samples of random gradients for SPEC in `layout`, with x, y and losses."""
    spec = SPEC.with_options(dtype=dtype, layout=layout)
    rng = np.random.default_rng(seed)
    np_dtype = spec.np_dtype
    samples = [to_layout({k: rng.normal(size=v.shape).astype(np_dtype)
                          for k, v in init_params(spec).items()}, layout) for _ in range(n)]
    return GradientSet(
        samples, "memory", layout, dtype, "torch autograd", spec,
        rng.normal(size=(n, 2)).astype(np_dtype) if extras else None,
        rng.uniform(size=(n, 1)).astype(np_dtype) if extras else None,
        rng.uniform(size=n).astype(np_dtype) if extras else None)


def assert_bit_identical(a: GradientSet, b: GradientSet) -> None:
    assert a.n_samples == b.n_samples
    for sa, sb in zip(a.samples, b.samples, strict=True):
        assert list(sa) == list(sb)
        for name in sa:
            assert sa[name].dtype == sb[name].dtype, name
            assert sa[name].shape == sb[name].shape, name
            assert sa[name].tobytes() == sb[name].tobytes(), name
    for what in ("x", "y", "losses"):
        va, vb = getattr(a, what), getattr(b, what)
        assert (va is None) == (vb is None), what
        if va is not None:
            assert va.tobytes() == vb.tobytes(), what


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_round_trip_is_bit_identical(tmp_path, dtype, layout):
    gs = make_set(dtype, layout=layout)
    path = tmp_path / "g.dat"
    write_gradients(path, gs)
    back = read_gradients(path)
    assert_bit_identical(gs, back)
    assert (back.dtype, back.layout, back.engine) == (dtype, layout, "torch autograd")
    assert back.spec == gs.spec
    assert back.notes == []
    assert back.shape("w2") == ((1, 2) if layout == "out_in" else (2, 1))


def test_the_file_reads_as_documented(tmp_path):
    path = tmp_path / "g.dat"
    write_gradients(path, make_set(n=2))
    lines = path.read_text().splitlines()
    assert lines[0] == FORMAT_LINE == "# backprop-explorer gradients v1"
    header = [line for line in lines if line.startswith("#")]
    assert header[1:] == [
        "# engine: torch autograd", "# dtype: float32", "# layout: out_in",
        f"# network: {json.dumps(make_set().spec.to_dict())}", "# samples: 2",
        "# params: w1 (2, 2), b1 (2,), w2 (1, 2), b2 (1,)"]
    body = lines[len(header):]
    assert body[:4] == ["", "sample 1", body[2], body[3]]
    assert body[2].startswith("x (2,): ") and body[3].startswith("y (1,): ")
    assert body[4].startswith("loss: ")
    assert body[5] == "w1 (2, 2):" and len(body[6].split()) == len(body[7].split()) == 2
    assert body[8] == "b1 (2,):" and len(body[9].split()) == 2
    assert "sample 2" in body


def test_minimal_set_without_optional_fields_round_trips(tmp_path):
    gs = make_set(extras=False)
    gs.engine = gs.layout = gs.spec = None
    write_gradients(tmp_path / "g.dat", gs)
    text = (tmp_path / "g.dat").read_text()
    assert "# engine" not in text and "# layout" not in text and "# network" not in text
    back = read_gradients(tmp_path / "g.dat")
    assert_bit_identical(gs, back)
    assert back.layout is None and back.spec is None and back.x is None


def test_notes_travel_in_the_header(tmp_path):
    gs = make_set()
    gs.notes = ["each gradient is taken after the previous sample's SGD step (lr 0.1)"]
    write_gradients(tmp_path / "g.dat", gs)
    assert read_gradients(tmp_path / "g.dat").notes == gs.notes


def test_long_rows_wrap_but_read_back(tmp_path):
    spec = NetworkSpec((23, 2, 1), ("sigmoid", "identity"))
    rng = np.random.default_rng(1)
    sample = {k: rng.normal(size=v.shape) for k, v in init_params(spec).items()}
    gs = GradientSet([sample], "memory", "out_in", "float64", spec=spec)
    write_gradients(tmp_path / "g.dat", gs)
    text = (tmp_path / "g.dat").read_text()
    assert max(len(line.split()) for line in text.splitlines() if line[:1] == " ") == 10
    assert_bit_identical(gs, read_gradients(tmp_path / "g.dat"))


def test_crlf_copy_reads_the_same(tmp_path):
    gs = make_set("float64")
    (tmp_path / "g.dat").write_bytes(format_gradients(gs).replace("\n", "\r\n").encode())
    assert_bit_identical(gs, read_gradients(tmp_path / "g.dat"))


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite64 = st.floats(allow_nan=False, allow_infinity=False)
EXTREMES = {"float32": [np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal,
                        -np.finfo(np.float32).tiny, -0.0, 1 / 3, 16777217.0],
            "float64": [np.finfo(np.float64).max, np.finfo(np.float64).smallest_subnormal,
                        -np.finfo(np.float64).tiny, -0.0, 0.1, 2 ** 53 + 1.0]}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_any_finite_value_round_trips_bit_for_bit(dtype, data):
    values = data.draw(st.lists(finite32 if dtype == "float32" else finite64,
                                min_size=3, max_size=12))
    values = np.array(values + EXTREMES[dtype], dtype=dtype)
    sample = {"w1": values.reshape(1, -1), "b1": values[:1].copy()}
    gs = GradientSet([sample, sample], "memory", None, dtype, losses=values[:2].copy())
    back = parse_dat(format_gradients(gs), "g.dat")
    assert back.samples[1]["w1"].tobytes() == values.tobytes()
    assert back.losses.tobytes() == values[:2].tobytes()


def test_writer_refuses_nan_naming_sample_and_parameter(tmp_path):
    gs = make_set()
    gs.samples[1]["w2"][0, 1] = np.nan
    path = tmp_path / "g.dat"
    with pytest.raises(GradientFileError, match=r"g\.dat: sample 2: w2 holds NaN at \[0, 1\]"):
        write_gradients(path, gs)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_writer_refuses_incomplete_sets(tmp_path):
    gs = make_set()
    del gs.samples[0]["b2"]
    with pytest.raises(GradientFileError, match=r"has w1, b1, w2 but no b2"):
        write_gradients(tmp_path / "g.dat", gs)


def test_write_is_atomic_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "g.dat"
    write_gradients(path, make_set(seed=1))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_gradients(path, make_set(seed=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.dat"]


def test_atomic_write_removes_its_temp_file_when_interrupted(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_replaces_and_keeps_plain_permissions(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one\n")
    atomic_write_text(path, "two\n")
    assert path.read_text() == "two\n"
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# Reading is strict. Each case edits a good file the way a cut download, a hand edit or a
# buggy writer would, and the message must say where and what.
GOOD = format_gradients(make_set(n=2))


def edited(old: str, new: str, count: int = 1) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, count)


def value_line(heading: str, sample: int = 1) -> str:
    """The line after the first line of sample `sample` that starts with `heading`."""
    lines = GOOD.splitlines()
    start = lines.index(f"sample {sample}")
    return next(lines[i + 1] for i in range(start, len(lines)) if lines[i].startswith(heading))


BAD = {
    "cut in the middle": (GOOD[:len(GOOD) // 2], r"cut short"),
    "cut after a sample": (GOOD[:GOOD.index("sample 2")], r"ends after sample 1 but its "
                           r"header says 2 samples; the file looks cut short"),
    "a value missing": (edited(value_line("w1"), value_line("w1").rsplit(" ", 1)[0]),
                        r"line \d+: w1 of sample 1 has 3 values but its shape \(2, 2\) needs 4"),
    "a word for a number": (edited(value_line("b1"), " 0.5 abc"),
                            r"line \d+: 'abc' in b1 of sample 1 is not a number"),
    "NaN": (edited(value_line("b1", 2), " 0.5 nan", 1),
            r"sample 2: b1 holds NaN at \[1\]"),
    "shape differs from header": (edited("w1 (2, 2):", "w1 (4, 1):"),
                                  r"line \d+: w1 of sample 1 has shape \(4, 1\) but the header "
                                  r"says \(2, 2\)"),
    "parameter missing": (edited("b2 (1,):", "c2 (1,):"), r"expected b2 of sample 1"),
    "more samples than said": (edited("# samples: 2", "# samples: 1"),
                               r"has more samples than the 1 its header says"),
    "samples out of order": (edited("sample 2", "sample 3"),
                             r"expected 'sample 2', found 'sample 3'"),
    "newer version": (edited("gradients v1", "gradients v2"),
                      r"line 1: is version 2 of the gradient format; this version of Backprop "
                      r"Explorer reads version 1"),
    "unknown header": (edited("# dtype:", "# colour: red\n# dtype:"),
                       r"unknown header line '# colour: red'"),
    "bad dtype": (edited("# dtype: float32", "# dtype: int8"),
                  r"unknown dtype 'int8'; valid: float32, float64"),
    "no sample count": (edited("# samples: 2\n", ""), r"the header has no '# samples: \.\.\.'"),
    "params out of order": (edited("w1 (2, 2), b1 (2,)", "b1 (2,), w1 (2, 2)"),
                            r"parameters must be listed as w1, b1, w2, b2"),
    "params unlike network": (edited("# params: w1 (2, 2)", "# params: w1 (3, 2)"),
                              r"the header gives w1 shape \(3, 2\) but its network .* "
                              r"needs \(2, 2\)"),
    "broken network JSON": (edited('# network: {"sizes"', '# network: {sizes'),
                            r"the network is not one line of JSON"),
    "x in one sample only": (edited(value_line("sample 2", 1) + "\n", ""),
                             r"1 of its 2 samples have x; it must be all or none"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused_with_a_message(tmp_path, case):
    text, message = BAD[case]
    path = tmp_path / "bad.dat"
    path.write_text(text)
    with pytest.raises(GradientFileError, match=message) as caught:
        read_gradients(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_header_without_layout_takes_the_model_json_beside_it(tmp_path):
    gs = make_set(layout="in_out")
    gs.layout = gs.spec = None
    write_gradients(tmp_path / "g.dat", gs)
    model = {"sizes": [2, 2, 1], "activations": ["tanh", "sigmoid"], "loss": "bce",
             "layout": "in_out"}
    (tmp_path / "model.json").write_text(json.dumps(model))
    back = read_gradients(tmp_path / "g.dat")
    assert back.layout == "in_out" and back.spec.sizes == (2, 2, 1)
    assert any("model.json" in note for note in back.notes)


def test_header_layout_wins_over_model_json(tmp_path):
    write_gradients(tmp_path / "g.dat", make_set(layout="out_in"))
    (tmp_path / "model.json").write_text(json.dumps({"sizes": [2, 2, 1], "layout": "in_out"}))
    back = read_gradients(tmp_path / "g.dat")
    assert back.layout == "out_in" and back.notes == []


def test_reading_and_writing_dat_files_does_not_load_torch(tmp_path):
    """torch takes seconds to import; text files never need it."""
    write_gradients(tmp_path / "g.dat", make_set())
    code = ("import sys; from engine.files.readers import read_gradients; "
            "from engine.files.gradfile import write_gradients; "
            f"gs = read_gradients({str(tmp_path / 'g.dat')!r}); "
            f"write_gradients({str(tmp_path / 'h.dat')!r}, gs); "
            "print('torch' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, check=True)
    assert out.stdout.strip() == "False"
