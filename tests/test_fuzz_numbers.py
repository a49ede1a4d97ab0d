"""Numbers a file may spell oddly, in every file a user gives: our .dat header and body, printed
text, model.json and CSV. Generated families of spellings (digits of other scripts, which int()
and float() read; underscores, which they read too; strings, bools and huge integers in JSON;
5000-digit labels and layer numbers past any network; absurd .dat counts and shapes): each is
read to the right value or refused with a UserInputError naming the file and the place, and is
never sized from before it is checked. A sample of each family goes through the command line
under a memory and CPU cap (tests/limits.py): exit 2 and one clean line."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UserInputError
from engine.files.datasets import parse_csv
from engine.files.gradfile import format_gradients
from engine.files.gradset import GradientSet
from engine.files.model_file import model_from_dict, read_model
from engine.files.readers import read_gradients
from engine.files.readers.text import MAX_TEXT_ARRAYS
from engine.net.spec import MAX_LAYERS, NetworkSpec
from tests.limits import limited, one_clean_line

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
# zeros of scripts whose digits int() and float() read: Arabic-Indic, Extended Arabic-Indic,
# Devanagari, Bengali, Thai, full-width
ZEROS = [0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0xFF10]
NET = NetworkSpec((2, 1), ("identity",), dtype="float64")


def foreign(digits: str, zero: int) -> str:
    """`digits` written in the script whose zero is `zero`."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in digits)


def underscored(digits: str) -> str:
    """An underscore after the first digit: float() still reads it."""
    i = next(i for i, c in enumerate(digits) if c.isdigit())
    return digits[:i + 1] + "_" + digits[i + 1:] if i + 1 < len(digits) else digits + "_0"


# A spelling Python reads as a number and no printer writes: another script's digits (with a
# chance of keeping a few ASCII ones), or an underscore.
ODD = st.one_of(
    st.tuples(st.integers(0, 10**6), st.sampled_from(ZEROS)).map(
        lambda t: foreign(str(t[0]), t[1])),
    st.integers(10, 10**6).map(lambda n: underscored(str(n))),
    st.tuples(st.floats(0.01, 100, allow_nan=False), st.sampled_from(ZEROS)).map(
        lambda t: foreign(repr(t[0]), t[1])),
)
# What numpy, torch and Python print
PLAIN = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr)


def refused(call, path: Path, place: str) -> str:
    """The one-line message `call(path)` refuses the file with, which names it and `place`."""
    with pytest.raises(UserInputError) as caught:
        call(path)
    message = str(caught.value)
    assert str(path) in message and place in message, message
    assert "\n" not in message and len(message) < 400, message
    return message


def written(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- our .dat files ---------------------------------------------------------------------------

def dat(samples: str = "1", params: str = "w1 (1, 2), b1 (1,)", w1: str = "0.5 0.25",
        b1: str = "0.125") -> str:
    head = format_gradients(GradientSet(
        samples=[{"w1": np.array([[0.5, 0.25]]), "b1": np.array([0.125])}], source="x",
        dtype="float64")).split("\n\n")[0]
    head = head.replace("# samples: 1", f"# samples: {samples}")
    head = head.replace("# params: w1 (1, 2), b1 (1,)", f"# params: {params}")
    return f"{head}\n\nsample 1\nw1 (1, 2):\n  {w1}\nb1 (1,):\n  {b1}\n"


def test_a_plain_dat_reads(tmp_path):
    gs = read_gradients(written(tmp_path, "g.dat", dat()))
    assert gs.n_samples == 1 and gs.samples[0]["w1"].tolist() == [[0.5, 0.25]]


@FUZZ
@given(count=st.one_of(st.sampled_from(ZEROS).map(lambda z: chr(z + 1)),
                       st.just("\u00b9"), st.just("1_0"), st.just("9" * 5000),
                       st.integers(10**7 + 1, 10**30).map(str), st.just("0"), st.just("-1"),
                       st.just("1.0")))
def test_odd_sample_counts_are_refused_at_the_header_line(tmp_path, count):
    path = written(tmp_path, "g.dat", dat(samples=count))
    refused(read_gradients, path, "line 3: the sample count")


@FUZZ
@given(shape=st.one_of(
    st.integers(4, 100).map(lambda n: ", ".join(["1"] * n)),             # 100-D
    st.sampled_from(["0, 2", "1, 0", "0,"]),                            # zero-size
    st.integers(4097, 10**40).map(lambda n: f"{n}, 2"),                # past any layer
    st.just("9" * 5000 + ", 2"),
    st.sampled_from(ZEROS).map(lambda z: f"{chr(z + 1)}, 2"),            # "٣, 2"
))
def test_odd_header_shapes_are_refused_before_anything_is_allocated(tmp_path, shape):
    path = written(tmp_path, "g.dat", dat(params=f"w1 ({shape}), b1 (1,)"))
    refused(read_gradients, path, "line 4: ")


@FUZZ
@given(layer=st.one_of(st.integers(MAX_LAYERS + 1, 10**12).map(str), st.just("9" * 5000)))
def test_header_layers_past_the_network_limit_are_refused(tmp_path, layer):
    path = written(tmp_path, "g.dat", dat(params=f"w1 (1, 2), b1 (1,), w{layer} (1, 1)"))
    refused(read_gradients, path, "a network has at most 100 layers")


@FUZZ
@given(odd=ODD, where=st.sampled_from(["w1", "b1"]))
def test_odd_spellings_in_dat_values_are_refused_at_their_line(tmp_path, odd, where):
    path = written(tmp_path, "g.dat", dat(**{where: odd if where == "b1" else f"0.5 {odd}"}))
    refused(read_gradients, path, f"line {8 if where == 'w1' else 10}: ")


@FUZZ
@given(a=PLAIN, b=PLAIN)
def test_plain_dat_values_read_exactly(tmp_path, a, b):
    gs = read_gradients(written(tmp_path, "g.dat", dat(w1=f"{a} {b}")))
    assert gs.samples[0]["w1"].tolist() == [[float(a), float(b)]]


# --- printed text ----------------------------------------------------------------------------

@FUZZ
@given(odd=ODD, style=st.sampled_from(["w1 = [[0.5, {}]]\nb1 = [0.1]\n",
                                       "w1 = [[0.5, 0.25]]\nb1 = [{}]\n",
                                       "w1 = tensor([[0.5, {}]])\nb1 = tensor([0.1])\n",
                                       "w1 = [[0.5, 0.25]]\nb1 = {}\n"]))
def test_odd_spellings_in_printouts_are_refused_at_their_line(tmp_path, odd, style):
    text = style.format(odd)
    line = 1 + text.split("\n").index(next(li for li in text.split("\n") if odd in li))
    refused(read_gradients, written(tmp_path, "p.txt", text), f"line {line}: ")


@FUZZ
@given(a=PLAIN, b=PLAIN)
def test_plain_printouts_read_exactly(tmp_path, a, b):
    gs = read_gradients(written(tmp_path, "p.txt", f"w1 = [[{a}, {b}]]\nb1 = [0.1]\n"))
    assert gs.samples[0]["w1"].tolist() == [[float(a), float(b)]]


@FUZZ
@given(layer=st.one_of(st.integers(MAX_LAYERS + 1, 10**15).map(str), st.just("9" * 5000)),
       style=st.sampled_from(["w{}", "b{}", "grad_w{}", "layer{} weight", "weight_{}"]))
def test_labels_past_the_network_limit_are_refused_at_their_line(tmp_path, layer, style):
    text = "w1 = [[0.5, 0.25]]\nb1 = [0.1]\n" + style.format(layer) + " = [[1.0]]\n"
    refused(read_gradients, written(tmp_path, "p.txt", text), "line 3: ")


def test_module_names_of_5000_digits_are_read_in_order(tmp_path):
    """fc<5000 digits>.weight is a module name: ordered by its number, without int()."""
    big = "9" * 5000
    text = (f"fc1.weight = [[0.5, 0.25]]\nfc1.bias = [0.1]\nfc{big}.weight = [[1.0]]\n"
            f"fc{big}.bias = [2.0]\n")
    gs = read_gradients(written(tmp_path, "p.txt", text))
    assert gs.names == ["w1", "b1", "w2", "b2"] and gs.samples[0]["b2"].tolist() == [2.0]


# --- model.json ------------------------------------------------------------------------------

MODEL = {"sizes": [2, 1], "activations": ["identity"], "loss": "squared_error",
         "params": {"w1": [[0.5, 0.25]], "b1": [0.125]}}
JSON_ODD = st.one_of(
    st.floats(-10, 10, allow_nan=False).map(lambda f: (repr(f), f"the string '{f!r}'")),
    st.booleans().map(lambda b: (b, "true" if b else "false")),
    st.none().map(lambda _: (None, "null")),
    st.integers(309, 6000).map(lambda n: (10**n if n < 4000 else None, "too large for a float")),
)


def model_with(place: tuple[str, tuple[int, ...]], value: object, raw: str | None = None) -> str:
    content = json.loads(json.dumps(MODEL))
    name, index = place
    target = content["params"][name]
    for i in index[:-1]:
        target = target[i]
    target[index[-1]] = "@" if raw is not None else value
    return json.dumps(content).replace('"@"', raw) if raw is not None else json.dumps(content)


PLACES = st.sampled_from([("w1", (0, 0)), ("w1", (0, 1)), ("b1", (0,))])


@FUZZ
@given(odd=JSON_ODD, place=PLACES)
def test_odd_numbers_in_model_params_are_refused_at_their_place(tmp_path, odd, place):
    value, what = odd
    raw = ("9" * 5000) if value is None and what == "too large for a float" else None
    text = model_with(place, value, raw)
    name, index = place
    spot = f"params.{name}" + "".join(f"[{i}]" for i in index)
    message = refused(read_model, written(tmp_path, "model.json", text), f"{spot} is ")
    assert what in message


@FUZZ
@given(value=st.one_of(st.integers(-10**300, 10**300),
                       st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)),
       place=PLACES)
def test_numbers_json_means_are_read_as_given(tmp_path, value, place):
    model = read_model(written(tmp_path, "model.json",
                               model_with(place, value).replace('"identity"]', '"identity"],'
                                                                ' "dtype": "float64"')))
    name, index = place
    shown = model.params[name][index]
    assert shown == float(value) and model.params[name].dtype == np.float64


@FUZZ
@given(size=st.one_of(st.just("9" * 5000), st.just('"2"'), st.just("true"), st.just("2.5"),
                      st.integers(4097, 10**300).map(str)))
def test_odd_sizes_are_refused_with_the_layer(tmp_path, size):
    text = json.dumps(MODEL).replace("[2, 1]", f"[2, {size}]")
    refused(read_model, written(tmp_path, "model.json", text), "size of layer 1 is ")


@pytest.mark.parametrize(("value", "dtype", "ok"), [(1e39, "float32", False),
                                                     (-3.5e38, "float32", False),
                                                     (3.4e38, "float32", True),
                                                     (1e39, "float64", True)])
def test_a_value_float32_cannot_hold_is_refused_at_its_place(tmp_path, value, dtype, ok):
    content = {**MODEL, "dtype": dtype, "params": {"w1": [[0.5, value]], "b1": [0.0]}}
    path = written(tmp_path, "model.json", json.dumps(content))
    if ok:
        _, params = read_model(path).run()
        assert np.isfinite(params["w1"]).all()
    else:
        refused(read_model, path, "params.w1[0][1] is ")


def test_a_float64_model_run_in_float32_refuses_what_float32_cannot_hold():
    model = model_from_dict({**MODEL, "dtype": "float64",
                             "params": {"w1": [[0.5, 1e39]], "b1": [0.0]}})
    with pytest.raises(UserInputError, match=r"params\.w1\[0\]\[1\] is 1e\+39, beyond"):
        model.run("float32")


# --- CSV ------------------------------------------------------------------------------------

@FUZZ
@given(odd=ODD, row=st.integers(0, 2), column=st.integers(0, 2), header=st.booleans())
def test_odd_spellings_in_csv_are_refused_at_line_and_column(odd, row, column, header):
    rows = [["0.5", "0.25", "0.125"] for _ in range(3)]
    rows[row][column] = odd
    text = ("x1,x2,y\n" if header else "") + "\n".join(",".join(r) for r in rows) + "\n"
    with pytest.raises(UserInputError) as caught:
        parse_csv(text, NET, "d.csv")
    place = f"d.csv, line {row + 1 + header}, column {column + 1}: "
    assert str(caught.value).startswith(place), str(caught.value)


@FUZZ
@given(values=st.lists(PLAIN, min_size=3, max_size=3), quoted=st.booleans())
def test_plain_csv_values_read_exactly(values, quoted):
    cells = [f'"{v}"' if quoted else v for v in values]
    data = parse_csv(", ".join(cells) + "\n", NET, "d.csv")
    assert data.exact[0].tolist() == [[float(values[0]), float(values[1])]]
    assert data.exact[1].tolist() == [[float(values[2])]]


@pytest.mark.parametrize("length", [131_073, 1_000_000])
def test_a_field_longer_than_the_csv_module_reads_is_a_message(length):
    with pytest.raises(UserInputError, match=r"^d\.csv, line 2, column 2: 'aaaa"):
        parse_csv("0.5,0.5,0.5\n0.5," + "a" * length + ",0.5\n", NET, "d.csv")


def test_a_float32_value_past_its_range_is_refused_at_line_and_column():
    spec = NET.with_options(dtype="float32")
    with pytest.raises(UserInputError, match=r"^d\.csv, line 2, column 3: 1e39 is beyond"):
        parse_csv("0.5,0.5,0.5\n0.5,0.5,1e39\n", spec, "d.csv")
    assert parse_csv("0.5,0.5,0.5\n0.5,0.5,1e39\n", NET, "d.csv").exact[1][1, 0] == 1e39


# --- through the command line, capped ----------------------------------------------------------

@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    return written(folder, "good.dat", dat())


HUGE_LAYER = "w99999999999\n[[1.0]]\nb99999999999\n[1.0]\n"   # 42 bytes


@pytest.mark.parametrize(("name", "text", "place"), [
    ("huge_layer.txt", HUGE_LAYER, "a network has at most 100 layers"),
    ("huge_label.txt", "w" + "9" * 5000 + " = [[1.0]]\nb1 = [1.0]\n", "line 1: "),
    ("arabic.txt", "w1 = [[0.5, ١٢]]\nb1 = [0.1]\n", "line 1: "),
    ("header.dat", dat(samples="٣"), "line 3: the sample count"),
    ("layer.dat", dat(params="w1 (1, 2), b1 (1,), w99999999999 (1, 1)"), "line 4: "),
    ("shape.dat", dat(params="w1 (" + ", ".join(["1"] * 100) + "), b1 (1,)"), "line 4: "),
])
def test_compare_refuses_odd_numbers_in_one_line_under_a_cap(tmp_path, good, name, text, place):
    bad = written(tmp_path, name, text)
    line = one_clean_line(limited("compare", bad, good, memory=3 * 2**30, seconds=30))
    assert str(bad) in line and place in line, line


@pytest.mark.parametrize(("content", "place"), [
    (json.dumps(MODEL).replace("[2, 1]", f"[2, {'9' * 5000}]"), "size of layer 1"),
    (model_with(("w1", (0, 1)), "0.5"), "params.w1[0][1] is the string '0.5'"),
    (model_with(("b1", (0,)), True), "params.b1[0] is true"),
    (model_with(("b1", (0,)), 10**400), "params.b1[0] is a 401-digit number"),
    (model_with(("w1", (0, 0)), 1e39), "params.w1[0][0] is 1e+39, beyond the range of float32"),
])
def test_export_refuses_an_odd_model_in_one_line(tmp_path, content, place):
    bad = written(tmp_path, "model.json", content)
    line = one_clean_line(limited("export", tmp_path / "out", "--model", bad, seconds=30))
    assert str(bad) in line and place in line, line


@pytest.mark.parametrize(("content", "place"), [
    ("0.5,0.5,0.5\n0.5," + "1" * 200_000 + ",0.5\n", "line 2, column 2"),
    ("0.5,１２,0.5\n", "line 1, column 2"),
    ("x1,x2,y\n0.5,1_000,0.5\n", "line 2, column 2"),
    ("0.5,0.5,1e39\n", "line 1, column 3: 1e39 is beyond the range of float32"),
])
def test_train_refuses_odd_data_in_one_line(tmp_path, content, place):
    bad = written(tmp_path, "data.csv", content)
    line = one_clean_line(limited("train", "--data", bad, "--epochs", "1", seconds=30))
    assert str(bad) in line and place in line, line


def test_a_printout_of_many_tiny_arrays_is_refused_within_the_caps(tmp_path, good):
    """31 MB of 'w1 [[0.1]] b1 [0.2]' took 6 GB and 134 s: now refused where it passes
    MAX_TEXT_ARRAYS, within a fraction of the caps."""
    path = tmp_path / "tiny.txt"
    with path.open("w") as f:
        block = "w1\n[[0.1]]\nb1\n[0.2]\n" * 1000
        for _ in range(31 * 2**20 // len(block)):
            f.write(block)
    line = one_clean_line(limited("compare", path, good, memory=3 * 2**30, seconds=40))
    assert f"more than {MAX_TEXT_ARRAYS} arrays" in line and str(path) in line, line


def test_a_32_mb_csv_of_the_shortest_numbers_is_read_within_the_caps(tmp_path):
    """6 bytes a row, 5.6 million rows: parsed took ~2 GB and over a minute; a value float32
    cannot hold on the last line makes train read it all and refuse it there."""
    path = tmp_path / "short.csv"
    rows = 32 * 2**20 // 6 - 2
    with path.open("w") as f:
        block = "0,0,0\n" * 10_000
        for _ in range(rows // 10_000):
            f.write(block)
        f.write("0,0,0\n" * (rows % 10_000) + "0,0,1e39\n")
    line = one_clean_line(limited("train", "--data", path, "--epochs", "1", memory=3 * 2**30,
                                  seconds=40))
    assert f"line {rows + 1}, column 3: 1e39 is beyond" in line, line
