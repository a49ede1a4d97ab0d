"""Start-up: `app.py --help` and each command's --help never import torch (it takes a second
or more to load); torch loads when an export, a comparison's re-run or a training run needs it."""

import json
import subprocess
import sys
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
