"""Nothing a path can name holds the tool: at every place a file is read (the two files
compared, --model, --data, the model.json and data.csv beside the files, an autosave's
session.json, data and arrays), a link to /dev/zero or /dev/urandom, a named pipe, a link to
one, a folder, and a sparse file one byte over that place's limit are each refused with one
line naming the file (exit 2), or, for a file beside the compared ones that nobody named, left
out with a note while the comparison runs. Every run is in a child process capped in memory,
CPU and wall time (tests/limits.py), so an endless read or a blocked open fails the test
instead of the machine."""

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.autosave import (
    MAX_HISTORY_BYTES,
    MAX_SESSION_BYTES,
    RunSnapshot,
    SessionFolder,
    Snapshot,
)
from engine.errors import printable
from engine.files.datasets import MAX_CSV_BYTES
from engine.files.gradset import MAX_FILE_BYTES
from engine.files.model_file import MAX_MODEL_BYTES
from engine.files.readers import MAX_SIDECAR_BYTES
from engine.files.regularfile import NotRegularFile, open_regular, read_at_most
from engine.session import Session
from engine.train.lockstep import TrainConfig
from tests.limits import CPU_SECONDS, MEMORY_BYTES, ROOT, limited, one_clean_line

pytestmark = pytest.mark.skipif(not (hasattr(os, "mkfifo") and os.path.exists("/dev/zero")),
                                reason="needs named pipes and /dev/zero (POSIX)")

SECONDS = 20     # CPU: a start of the app takes ~2
WALL = 45        # a blocked open uses no CPU: only the wall clock stops it


def _link(target: str) -> Callable[[Path, int], None]:
    return lambda path, limit: path.symlink_to(target)


def _fifo(path: Path, limit: int) -> None:
    os.mkfifo(path)


def _linked_fifo(path: Path, limit: int) -> None:
    pipe = path.with_name(path.name + ".pipe")
    os.mkfifo(pipe)
    path.symlink_to(pipe.name)   # relative, as people make them


def _folder(path: Path, limit: int) -> None:
    path.mkdir()


def _sparse(path: Path, limit: int) -> None:
    with open(path, "wb") as f:
        f.truncate(limit + 1)    # one byte over, and no disk used


KINDS = {"/dev/zero": _link("/dev/zero"), "/dev/urandom": _link("/dev/urandom"),
         "fifo": _fifo, "link to a fifo": _linked_fifo, "folder": _folder,
         "sparse over the limit": _sparse}


def special(path: Path, kind: str, limit: int) -> Path:
    """`path` replaced by a special file of `kind` (made to be one byte over `limit` when it
    is the sparse file)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    KINDS[kind](path, limit)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """An export whose two files disagree (a mistake made on purpose), so that a comparison
    goes on to look for the run behind them in the model.json and data.csv beside them."""
    out = tmp_path_factory.mktemp("export")
    result = limited("export", out, "--samples", "20", "--inject", "dropped_factor_2",
                     timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def copied(exported: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("torch_autograd.dat", "my_autograd.dat", "model.json", "data.csv"):
        (folder / name).write_bytes((exported / name).read_bytes())
    return folder


def refused(result: subprocess.CompletedProcess, path: Path) -> str:
    """One clean line, exit 2, naming `path`."""
    line = one_clean_line(result)
    assert printable(str(path)) in line, line
    return line


# the entry points named on the command line: exit 2 and one line naming the file

GIVEN = {"compare A": MAX_FILE_BYTES, "compare B": MAX_FILE_BYTES, "--model": MAX_MODEL_BYTES,
         "--data": MAX_CSV_BYTES}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("entry", list(GIVEN))
def test_a_special_file_given_is_refused_in_one_line(exported, tmp_path, entry, kind):
    bad = special(tmp_path / "given.file", kind, GIVEN[entry])
    a, b = exported / "torch_autograd.dat", exported / "my_autograd.dat"
    args = {"compare A": [bad, b], "compare B": [a, bad], "--model": [a, b, "--model", bad],
            "--data": [a, b, "--model", exported / "model.json", "--data", bad]}[entry]
    result = limited("compare", *args, seconds=SECONDS, timeout=WALL)
    line = refused(result, bad)
    if kind == "folder":
        assert "is a folder" in line
    elif kind != "sparse over the limit":
        assert "not a regular file" in line


# the files beside the compared ones, which nobody named: left out with a note

BESIDE = {"model.json": MAX_SIDECAR_BYTES, "data.csv": MAX_CSV_BYTES}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", list(BESIDE))
def test_a_special_file_beside_the_compared_ones_is_left_out_with_a_note(exported, tmp_path,
                                                                         name, kind):
    folder = copied(exported, tmp_path / "files")
    bad = special(folder / name, kind, BESIDE[name])
    result = limited("compare", folder / "torch_autograd.dat", folder / "my_autograd.dat",
                     "--json", seconds=SECONDS, timeout=WALL)
    assert result.returncode == 1, result.stderr[-2000:]   # compared: they disagree
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["samples"] == 20 and report["first_disagreement"]
    told = [note for note in report["notes"]
            if f"{printable(str(bad))} beside the file was not used" in note]
    assert len(told) == 2, report["notes"]   # once for each file it was beside


# an autosave left by a crash: refused quickly, whatever its files are

READ_AUTOSAVE = """
import sys
from engine.autosave import AutosaveError, read_autosave
try:
    read_autosave(sys.argv[1])
except AutosaveError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
"""


def limited_python(code: str, *args: object) -> subprocess.CompletedProcess:
    """`python -c code *args` under the limits the app runs under here."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_CPU, (SECONDS, SECONDS))

    assert SECONDS <= CPU_SECONDS
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=cap,
                          stdin=subprocess.DEVNULL, timeout=WALL)


@pytest.fixture
def crashed(tmp_path) -> tuple[Path, dict]:
    """An autosave folder as a crashed window leaves it (its lock let go), with a run."""
    session = Session()
    steps = np.arange(1.0, 6.0)
    run = RunSnapshot(TrainConfig(lr=0.2, epochs=2), 5, 200, {"loss/scratch": (steps, steps)})
    folder = SessionFolder.create(tmp_path / "autosave")
    folder.write(Snapshot.of(session, run))
    os.close(folder._lock_fd)
    return folder.path, json.loads((folder.path / "session.json").read_text())


def _arrays_limit(doc: dict) -> int:
    from engine.net.spec import NetworkSpec

    spec = NetworkSpec.from_dict(doc["network"])
    return 2 * spec.n_params * np.dtype(spec.np_dtype).itemsize + MAX_HISTORY_BYTES


AUTOSAVED = {"session.json": lambda doc: ("session.json", MAX_SESSION_BYTES),
             "data file": lambda doc: (doc["data"]["file"], MAX_CSV_BYTES),
             "arrays file": lambda doc: (doc["arrays"], _arrays_limit(doc))}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("entry", list(AUTOSAVED))
def test_a_special_file_in_an_autosave_is_refused_quickly(crashed, entry, kind):
    folder, doc = crashed
    name, limit = AUTOSAVED[entry](doc)
    bad = special(folder / name, kind, limit)
    result = limited_python(READ_AUTOSAVE, folder)
    line = refused(result, bad)
    assert line.startswith(printable(str(folder)))


# what no path check can see: a path swapped after it was checked, a file that grows

@pytest.fixture
def alarm():
    """A blocked open or an endless read in this process fails the test after 10 s."""
    def timed_out(*_):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_path_swapped_after_its_check_is_refused_on_what_was_opened(tmp_path, monkeypatch,
                                                                      alarm, kind):
    regular = tmp_path / "regular"
    regular.write_text("1.0\n")
    swapped = special(tmp_path / "swapped", kind, 0)
    real_stat = os.stat

    def checked_before_the_swap(path, *args, **kwargs):
        return real_stat(regular if Path(path) == swapped else path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", checked_before_the_swap)
    with pytest.raises(NotRegularFile):
        open_regular(swapped)


def test_a_file_that_grows_as_it_is_read_is_read_up_to_its_limit(tmp_path):
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 10)
    with open_regular(path) as f, open(path, "ab") as writer:
        writer.write(b"y" * 100)
        writer.flush()
        f.seek(0, os.SEEK_SET)
        assert read_at_most(f, 50) is None
    with open_regular(path) as f:
        assert read_at_most(f, 110) == b"x" * 10 + b"y" * 100
