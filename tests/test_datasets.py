"""Datasets: the seeds' set, the two-class set, and CSV files with every error they can hold."""

import numpy as np
import pytest

from engine.files.datasets import (
    DataError,
    classification_set,
    default_set,
    load_csv,
    parse_csv,
    regression_set,
    to_csv_text,
)
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset

SEEDS = preset(DEFAULT_PRESET)
BCE = preset("2-2-1-tanh-bce")


def test_regression_set_is_the_seeds_labels():
    data = regression_set(SEEDS)
    assert data.x.shape == (100, 2) and data.y.shape == (100, 1)
    assert data.x.dtype == np.float32 and data.x.min() >= 0 and data.x.max() <= 1
    x = data.x.astype(np.float64)
    np.testing.assert_allclose(data.y[:, 0], (x[:, 0] ** 2 + x[:, 1] ** 2) / 2, rtol=1e-7)


def test_sets_are_seeded():
    assert np.array_equal(regression_set(SEEDS, 10, 3).x, regression_set(SEEDS, 10, 3).x)
    assert not np.array_equal(regression_set(SEEDS, 10, 3).x, regression_set(SEEDS, 10, 4).x)


def test_classification_set_has_two_balanced_classes_of_quadrants():
    data = classification_set(BCE, 400)
    assert set(np.unique(data.y)) == {0.0, 1.0}
    assert 0.4 < data.y.mean() < 0.6
    np.testing.assert_array_equal(data.y[:, 0], (data.x[:, 0] * data.x[:, 1] > 0))


def test_default_set_follows_the_loss():
    assert set(np.unique(default_set(BCE).y)) == {0.0, 1.0}
    assert len(np.unique(default_set(SEEDS).y)) == 100


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_csv_round_trip_is_exact(dtype):
    spec = SEEDS.with_options(dtype=dtype)
    data = regression_set(spec, 50)
    back = parse_csv(to_csv_text(data), spec)
    assert back.x.dtype == data.x.dtype
    np.testing.assert_array_equal(back.x, data.x)
    np.testing.assert_array_equal(back.y, data.y)
    assert to_csv_text(data).startswith("x1,x2,y1\n")


@pytest.mark.parametrize("text", [
    "0.5,0.25,0.15625\n1,0,0.5\n",              # no header
    "a,b,label\r\n0.5,0.25,0.15625\r\n1,0,0.5\r\n",  # header, CRLF
    "0.5;0.25;0.15625\n1;0;0.5\n",              # semicolons
    "0.5\t0.25\t0.15625\n\n1\t0\t0.5\n",         # tabs and a blank line
    "0.5  0.25 0.15625\n1 0 5e-1\n",            # spaces, e-notation
])
def test_csv_styles_read_alike(text):
    data = parse_csv(text, SEEDS)
    np.testing.assert_array_equal(data.x, np.array([[0.5, 0.25], [1, 0]], dtype=np.float32))
    np.testing.assert_array_equal(data.y, np.array([[0.15625], [0.5]], dtype=np.float32))


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty; it needs rows of 2 inputs \\+ 1 target"),
    ("x1,x2,y\n", "only a header, no samples"),
    ("1,2,3\n1,2\n", "line 2: 2 columns, but .* needs 3 \\(2 inputs \\+ 1 target\\)"),
    ("1,2,3\n4,5,6,7\n", "line 2: 4 columns"),
    ("x1,x2,y\n1,2,3\n4,five,6\n", "line 3, column 2: 'five' is not a number"),
    ("1,2,nan\n", "line 1, column 3: nan is not a finite number"),
    ("1,inf,1\n", "line 1, column 2: inf is not a finite number"),
])
def test_bad_csv_names_the_line_and_column(text, message):
    with pytest.raises(DataError, match=f"^data.csv, {message}|^data.csv: {message}"):
        parse_csv(text, SEEDS, "data.csv")


def test_bce_targets_must_be_probabilities():
    with pytest.raises(DataError, match="line 2, column 3: target 2 is outside \\[0, 1\\]"):
        parse_csv("0,0,1\n0,0,2\n", BCE, "d.csv")


def test_width_is_checked_against_a_multi_output_network():
    spec = NetworkSpec((3, 4, 2), ("tanh", "identity"))
    with pytest.raises(DataError, match="needs 5 \\(3 inputs \\+ 2 targets\\)"):
        parse_csv("1,2,3\n", spec)


def test_files_that_are_not_text_are_refused(tmp_path):
    binary = tmp_path / "junk.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    with pytest.raises(DataError, match=r"junk\.csv: not a text file"):
        load_csv(binary, SEEDS)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"1,2,3\x00\n")
    with pytest.raises(DataError, match=r"nul\.csv: not a text file \(it holds NUL bytes\)"):
        load_csv(nul, SEEDS)


def test_a_missing_file_is_a_message(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: cannot read it"):
        load_csv(tmp_path / "nowhere.csv", SEEDS)


def test_load_csv_reads_a_utf8_bom_file(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffx1,x2,y\n0.5,0.5,0.25\n".encode())
    data = load_csv(path, SEEDS)
    assert len(data) == 1 and data.name.startswith("excel.csv")


def test_sample_count_must_be_positive():
    with pytest.raises(DataError, match="at least 1"):
        regression_set(SEEDS, 0)
