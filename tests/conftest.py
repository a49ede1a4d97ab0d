"""Environment for the whole suite: Qt without a display, and reproducible hypothesis runs."""

import gc
import os
import sys

import pytest
from hypothesis import settings

# before any test module imports Qt: the suite runs headless on CI machines and over ssh
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# no deadline: a shared machine's pauses are not our bugs; derandomize: a failure reproduces
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci")


def _helpers() -> list[int]:
    """Our torch helper processes (engine/train/torch_process.py) still running."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                state, parent = f.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if int(parent) == os.getpid() and state != "Z" and b"engine.train.torch_process" in command:
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_helper_left():
    """After each test, no torch helper process is left running, once what the test dropped
    is collected (collecting a run ends its helper)."""
    yield
    if sys.platform.startswith("linux") and _helpers():
        gc.collect()
        assert not _helpers(), "a torch helper process outlived its test"
