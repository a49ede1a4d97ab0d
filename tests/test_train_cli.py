"""`app.py train` with torch's half in the helper: the same output and files as in one process,
and this process never loads torch; its whole-process benchmark runs and reports."""

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_train_cli
from bench.__main__ import modules
from engine.train.torch_process import MIN_STEPS

ROOT = Path(__file__).resolve().parent.parent

# app.main in a fresh interpreter, with or without the helper; then which of torch's modules
# this process loaded, on stderr's last line
RUN = """
import json, sys
import engine.train.torch_process as helper
import app
if sys.argv[1] == "in-process":
    helper.MIN_STEPS = 10**12
code = app.main(sys.argv[2:])
print(json.dumps(["torch" in sys.modules, code]), file=sys.stderr)
"""


def train(mode: str, *args: str) -> tuple[str, bool, int]:
    """stdout of `app.py train ARGS`, whether torch was loaded here, the exit code."""
    result = subprocess.run([sys.executable, "-c", RUN, mode, "train", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    loaded, code = json.loads(result.stderr.splitlines()[-1])
    return result.stdout, loaded, code


@pytest.mark.parametrize("options", [
    ["--dtype", "float32"],
    ["--dtype", "float64", "--shuffle", "--seed", "5"],
    ["--dtype", "float32", "--inject", "accumulated_gradients", "--lr", "0.01"],
])
@pytest.mark.parametrize("json_out", [True, False])
def test_train_prints_and_writes_the_same_with_the_helper_and_without(tmp_path, options,
                                                                      json_out):
    epochs = MIN_STEPS // 50   # 50 samples: a run long enough for the helper
    common = ["--samples", "50", "--epochs", str(epochs), "--lr", "0.05", *options,
              *(["--json"] if json_out else [])]
    helped, helped_loaded, helped_code = train(
        "helper", *common, "--save-model", str(tmp_path / "helped.json"))
    local, local_loaded, local_code = train(
        "in-process", *common, "--save-model", str(tmp_path / "local.json"))
    assert helped_code == local_code == 0
    assert not helped_loaded, "the run loaded torch although the helper did torch's half"
    assert local_loaded
    # every loss, difference and drift, printed in full with --json; the files byte for byte
    assert helped.replace("helped.json", "local.json") == local
    assert (tmp_path / "helped.json").read_bytes() == (tmp_path / "local.json").read_bytes()
    if json_out:
        assert json.loads(helped)["steps"] == epochs * 50


def test_a_diverging_run_stops_the_same_way_with_the_helper(tmp_path):
    common = ["--samples", "50", "--epochs", str(MIN_STEPS // 50), "--lr", "1e6", "--json",
              "--save-model", str(tmp_path / "never.json")]
    helped, helped_loaded, helped_code = train("helper", *common)
    local, _, local_code = train("in-process", *common)
    assert helped_code == local_code == 1 and helped == local and not helped_loaded
    assert not (tmp_path / "never.json").exists()


def test_the_whole_process_benchmark_runs_and_reports(capsys):
    bench_train_cli.main(bench_train_cli.Sizes(epochs=2, rounds=1))
    out = capsys.readouterr().out
    assert "app.py train vs a plain-loop script, 200 steps, whole processes" in out
    assert "vs target 3x" in out and ("PASS" in out or "MISS" in out)
    assert "its first row after" in out
    assert "bench.bench_train_cli" in modules()


def test_the_helper_goes_when_train_is_killed():
    """kill -9 of `app.py train` mid-run leaves no helper behind: it sees its pipe close."""
    app = subprocess.Popen([sys.executable, "app.py", "train", "--epochs", "100000"], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):   # the network, the column names, epoch 1: torch's steps came
            app.stdout.readline()
        helpers = [pid for pid in children(app.pid) if b"engine.train.torch_process" in
                   Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(helpers) == 1
        assert killed_leaves(app, helpers[0], within=30), "the helper outlived the app"
    finally:
        app.kill()
        app.wait()
        app.stdout.close()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_command_line_with_its_early_helper_prints_what_an_in_process_run_does(dtype):
    """`python app.py train` starts its helper before it reads its options (see
    engine/train/launch.py); the numbers are those of a run in one process."""
    common = ["--samples", "50", "--epochs", str(MIN_STEPS // 50), "--dtype", dtype, "--json"]
    helped = subprocess.run([sys.executable, "app.py", "train", *common], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    local, _, local_code = train("in-process", *common)
    assert helped.returncode == local_code == 0 and helped.stderr == ""
    assert helped.stdout == local


@pytest.mark.parametrize("args, code", [(["--epochs", "0"], 2), (["--help"], 0),
                                        (["--data", "missing.csv"], 2), (["--epochs", "2"], 0)])
def test_a_train_that_needs_no_helper_leaves_none(args, code, tmp_path):
    """A bad option, --help, a missing file or a short run: nothing of a helper outlives
    `app.py train` (found by a mark in the environment it passes on)."""
    mark = f"BPX_TEST_{os.getpid()}_{tmp_path.name}"
    result = subprocess.run([sys.executable, "app.py", "train", *args], cwd=ROOT, text=True,
                            capture_output=True, timeout=300, env={**os.environ, mark: "1"})
    assert "Traceback" not in result.stderr
    assert result.returncode == code
    assert marked(mark) == []


def test_the_early_helper_goes_when_train_is_killed_at_once():
    """kill -9 of `app.py train` while its helper still imports torch: the helper finds its
    pipe closed when it comes to read and leaves."""
    mark = f"BPX_TEST_{os.getpid()}_killed"
    app = subprocess.Popen([sys.executable, "app.py", "train", "--epochs", "100000"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, env={**os.environ, mark: "1"})
    try:
        found = []
        while not found:      # the helper is started before anything else is imported
            assert app.poll() is None
            found = [pid for pid in marked(mark) if pid != app.pid]
        assert killed_leaves(app, found[0]), "the helper outlived the app"
    finally:
        app.kill()
        app.wait()


def killed_leaves(app: subprocess.Popen, helper: int, within: float = 60.0) -> bool:
    """kill -9 of `app`: whether its `helper` process exits within `within` seconds."""
    gone = os.pidfd_open(helper)
    try:
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        # readable once the process has exited (zombies count: they hold nothing)
        return bool(select.select([gone], [], [], within)[0])
    finally:
        os.close(gone)


def marked(mark: str) -> list[int]:
    """The live processes (not zombies) whose environment holds `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"{mark}=".encode() in (entry / "environ").read_bytes() \
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
