"""Start-up: `app.py --help` and each command's --help never import torch (it takes a second
or more to load); torch loads when an export, a comparison's re-run or a training run needs it."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LOADED = """
import contextlib, io, json, sys
import app
for argv in sys.argv[1:]:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        app.main(json.loads(argv))
print(json.dumps(sorted(name for name in ("torch", "PySide6", "pyqtgraph") if name in sys.modules)))
"""


def loaded_after(*argvs: list[str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", LOADED, *map(json.dumps, argvs)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_of_the_app_and_every_command_loads_neither_torch_nor_qt():
    assert loaded_after(["--help"], ["export", "--help"], ["compare", "--help"],
                        ["train", "--help"], ["--version"]) == []


@pytest.mark.parametrize("argv", [
    ["export", "{out}", "--samples", "2"],
    ["train", "--samples", "2", "--epochs", "1"],
])
def test_a_command_that_computes_loads_torch_and_still_no_qt(argv, tmp_path):
    argv = [a.format(out=tmp_path / "out") for a in argv]
    assert loaded_after(argv) == ["torch"]


# The window as `python app.py` opens it (gui.launch.run_window), with BPX_REPORT_SHOWN: it says
# when it painted and torch was in, then closes. What it showed at the first paint is recorded.
WINDOW = """
import json, sys
import gui.launch as launch

painted = []
shown = launch.FirstPaint._shown

def record(self):
    card = self._window.stage_card
    painted.append({"torch imported": "torch" in sys.modules,
                    "torch loading shown": card.says_torch_loading()})
    shown(self)

launch.FirstPaint._shown = record
status = launch.run_window()
print(json.dumps({"status": status, "painted": painted, "torch": "torch" in sys.modules}))
"""

# An export started as the window first paints: its worker waits for torch's import while the
# window's event loop goes on (a 20 ms timer keeps ticking).
EXPORT = """
import json, sys
from PySide6.QtCore import QTimer
import gui.launch as launch

app = launch._application()
window = launch.build_window(None, torch_later=True)
ticks, result = [], {}
timer = QTimer(interval=20)
timer.timeout.connect(lambda: ticks.append(1))

def export():
    timer.start()
    exported = window.file_actions.export_gradients(sys.argv[1])
    timer.stop()
    result.update(files=sorted(p.name for p in exported.files), ticks=len(ticks),
                  torch_ready=window.model.session.torch_ready)
    window.close()

launch.FirstPaint(window)
window.model.torchReady.connect(lambda: result.setdefault("ready", True))
launch.QTimer.singleShot(0, export)
window.show()
app.exec()
window.model.wait_for_torch()
print(json.dumps(result))
"""


def run_app(code: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
                   "XDG_CONFIG_HOME": str(tmp_path / "config"),
                   "BACKPROP_EXPLORER_AUTOSAVE": str(tmp_path / "autosave"), **env}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result


def test_the_window_paints_before_torch_is_imported_then_fills_in_torchs_column(tmp_path):
    result = run_app(WINDOW, tmp_path, BPX_REPORT_SHOWN=str(time.time()))
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"window shown \d+\.\d{3} s after launch", lines[0])
    assert re.fullmatch(r"torch ready \d+\.\d{3} s after launch", lines[1])
    assert json.loads(lines[2]) == {
        "status": 0, "torch": True,
        "painted": [{"torch imported": False, "torch loading shown": True}]}


def test_an_export_started_while_torch_loads_waits_for_it_and_the_window_goes_on(tmp_path):
    out = tmp_path / "out"
    result = json.loads(run_app(EXPORT, tmp_path, str(out)).stdout.splitlines()[-1])
    assert result["files"] == ["data.csv", "model.json", "my_autograd.dat", "torch_autograd.dat"]
    assert result["ticks"] > 0, "the window's event loop stood still while the export waited"
    assert (out / "torch_autograd.dat").stat().st_size > 0


@pytest.mark.xdist_group("x-server")   # xvfb-run -a picks a display by lock files: not at once
def test_the_startup_benchmark_times_help_and_the_window_against_their_targets():
    from bench import bench_startup
    from bench.__main__ import modules

    assert "bench.bench_startup" in modules()
    out = bench_startup.report(bench_startup.Sizes(runs=1))
    assert "app.py --help, start to exit" in out and "vs target ≤ 0.5 s" in out
    assert "launch to window on screen, offscreen" in out and "vs target ≤ 1.5 s" in out
    assert "torch's column filled in median" in out
    windows = 2 if shutil.which("xvfb-run") else 1
    assert out.count("PASS") + out.count("MISS") == 1 + windows
