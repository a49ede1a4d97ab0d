"""A file of 100 MB: text (a gradient printout, a CSV) is refused at once with one line naming
the file, before a byte of it is parsed; what is under the limit is read in memory bounded by
a small multiple of its size. On the command line: exit 2. (Our own .dat files are read above
the limit, line by line: tests/test_big_dat.py.)"""

import re
import tracemalloc

import pytest

import app
from engine.errors import DataError
from engine.files.datasets import MAX_CSV_BYTES, load_csv
from engine.files.gradset import MAX_TEXT_BYTES, GradientFileError
from engine.files.readers import read_gradients
from engine.net.spec import DEFAULT_PRESET, preset
from tests.helpers import write_big_csv, write_big_gradient_file, write_big_printout

SPEC = preset(DEFAULT_PRESET)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    write_big_printout(folder / "huge.txt", 100)
    write_big_csv(folder / "huge.csv", SPEC, 100)
    write_big_gradient_file(folder / "small.dat", 1)
    return folder


def measured(read):
    """(error, peak traced bytes) of a read that must fail: a refusal that read nothing of
    the file costs next to no memory (time is for bench/, never for a test)."""
    tracemalloc.start()
    try:
        read()
    except Exception as e:   # the test checks which
        error = e
    else:
        error = None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


def test_a_100_mb_gradient_printout_is_refused_at_once(big):
    path = big / "huge.txt"
    error, peak = measured(lambda: read_gradients(path))
    assert isinstance(error, GradientFileError)
    assert re.fullmatch(
        re.escape(f"{path}: is ") + r"100(\.\d)? MB" + re.escape(
            " of text; gradient files written as text are read up to 32 MB (reading takes "
            "about ten times their size in memory): save more samples with np.save or "
            "np.savez, read up to 200 MB"), str(error))
    assert peak < 4 * 2**20


def test_a_100_mb_csv_is_refused_at_once(big):
    path = big / "huge.csv"
    error, peak = measured(lambda: load_csv(path, SPEC))
    assert isinstance(error, DataError)
    assert str(error) == f"{path}: 100 MB is more than the 32 MB a data file may have"
    assert peak < 4 * 2**20


def test_text_under_the_limit_is_read_in_bounded_memory(big):
    path = big / "small.dat"
    size = path.stat().st_size
    tracemalloc.start()
    gs = read_gradients(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert gs.n_samples > 400
    # so the largest text read stays within a few hundred MB
    assert peak < 12 * size
    assert 12 * MAX_TEXT_BYTES < 400 * 2**20 and MAX_CSV_BYTES == MAX_TEXT_BYTES


def test_the_command_line_exits_2_with_one_line(big, capsys):
    assert app.main(["compare", str(big / "huge.txt"), str(big / "small.dat")]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"backprop-explorer: {big / 'huge.txt'}: is 100")
    assert "MB of text" in err
    assert len(err.strip().splitlines()) == 1
    assert app.main(["train", "--data", str(big / "huge.csv")]) == 2
    _, err = capsys.readouterr()
    assert err == (f"backprop-explorer: {big / 'huge.csv'}: 100 MB is more than the 32 MB a "
                   "data file may have\n")
