"""The real thing, end to end: `python app.py` on an X server (Xvfb), driven by real key presses
sent with xdotool. F10 steps through one whole sample, Ctrl+T runs a short training, a
screenshot of the screen is taken, Ctrl+Q asks about the trained network and Alt+D discards
it; the app must exit 0 and say nothing about threads or timers.

What the window did is read from its own autosave (the folder BACKPROP_EXPLORER_AUTOSAVE
names), which records the current stage and the training step: no test hook in the app.

Needs Linux, Xvfb, xdotool and the X libraries Qt's xcb plugin loads. When any is missing
and the tests run as root where apt-get exists, the set-up installs them (once; `apt-get
update` first if the install fails). Otherwise the test is skipped and says why, in the
summary and on a line of its own. Deselect it with `-m "not real_window"`."""

import ctypes.util
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import PySide6
import pytest
from PySide6.QtGui import QImage

from engine.session import Session

ROOT = Path(__file__).resolve().parents[2]
SCREEN = (1400, 900)
XCB_PLUGIN = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
PACKAGES = ("xvfb", "xdotool", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0",
            "libxcb-image0", "libxcb-render-util0", "libxcb-shape0", "libxcb-randr0",
            "libxcb-xinerama0", "libxcb-xkb1", "libxkbcommon-x11-0")
NOISE = ("thread", "timer", "traceback", "destroyed")   # words that must not be on stderr
# one worker of a parallel run takes them all: one X server, one apt-get
pytestmark = [pytest.mark.real_window, pytest.mark.xdist_group("x-server")]

# Grabs the whole X screen with Qt's own xcb platform: no ImageMagick or xwd needed.
GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(["grab", "-platform", "xcb"])
sys.exit(0 if app.primaryScreen().grabWindow(0).save(sys.argv[1], "PNG") else 1)
"""


def missing() -> list[str]:
    """What the real window lacks on this machine, in words."""
    if not sys.platform.startswith("linux"):
        return ["Linux with X11"]
    lacking = [name for name in ("Xvfb", "xdotool") if shutil.which(name) is None]
    ldd = subprocess.run(["ldd", str(XCB_PLUGIN)], capture_output=True, text=True)
    lacking += [line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line]
    if ctypes.util.find_library("xcb-cursor") is None:
        lacking.append("libxcb-cursor.so.0")   # Qt's xcb plugin loads it at run time
    return lacking


def install(report) -> str | None:
    """Install PACKAGES with apt-get; None when it worked, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root with apt-get, so nothing could be installed"
    report(f"real-window test: installing {' '.join(PACKAGES)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    for attempt in (command, ["apt-get", "update"], command):
        result = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        if attempt is command and result.returncode == 0:
            return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return f"apt-get failed: {lines[-1] if lines else result.returncode}"


def start_xvfb(log: Path) -> tuple[subprocess.Popen, str]:
    """Xvfb on a display it picks itself (-displayfd: no race with another server starting
    at the same moment, as in a parallel test run), and that display, once it answers."""
    read, write = os.pipe()
    with open(log, "a") as errors:
        server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                                   f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                                  stdout=subprocess.DEVNULL, stderr=errors, pass_fds=(write,))
    os.close(write)
    told = b""
    with os.fdopen(read, "rb", buffering=0) as pipe:
        deadline = time.monotonic() + 15
        while not told.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([pipe], [], [], max(deadline - time.monotonic(), 0))[0]:
                chunk = pipe.read(64)
                if not chunk:
                    break       # the server ended without a display
                told += chunk
    display = f":{told.strip().decode()}"
    if told.endswith(b"\n") and answers(display):
        return server, display
    server.kill()
    server.wait()
    pytest.fail(f"Xvfb did not start: {log.read_text()[-500:]}")


def answers(display: str) -> bool:
    """Whether an X server answers on `display`."""
    check = subprocess.run(["xdotool", "getdisplaygeometry"], capture_output=True, timeout=10,
                           env={**os.environ, "DISPLAY": display})
    return check.returncode == 0


@pytest.fixture(scope="module")
def display(request, tmp_path_factory):
    """A fresh Xvfb display, installing what is missing when allowed; the server stops
    when this module's tests are done."""
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def report(line: str) -> None:
        """A line on the terminal now, whatever pytest captures."""
        if terminal is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                terminal.write_line(line)

    lacking = missing()
    if lacking and sys.platform.startswith("linux"):
        problem = install(report)
        lacking = missing()
        if lacking and problem:
            lacking.append(problem)
    if lacking:
        reason = f"no real window: missing {', '.join(lacking)}"
        report(f"real-window test SKIPPED: {reason}")
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    server, name = start_xvfb(log)
    yield name
    server.terminate()
    server.wait(timeout=10)


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, f"xdotool {' '.join(args)}: {result.stderr}"
    return result.stdout


def focus(display: str, title: str) -> None:
    """Wait for the visible window called `title` and give it the keyboard."""
    window = xdotool(display, "search", "--sync", "--onlyvisible", "--name", title).split()[0]
    xdotool(display, "windowfocus", "--sync", window)


def autosaved(folder: Path, condition, timeout: float, what: str) -> dict:
    """The app's autosave once `condition(doc)` holds; the app writes it every 2 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob("*/session.json"):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                continue   # being replaced right now
            if condition(doc):
                return doc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for the window to {what}")


def test_keys_step_a_sample_train_and_quit(display, tmp_path):
    autosave = tmp_path / "autosave"
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "BACKPROP_EXPLORER_AUTOSAVE": str(autosave), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("WAYLAND_DISPLAY", None)
    stages = [pair.key for pair in Session().pairs]
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        focus(display, "^Backprop Explorer")
        autosaved(autosave, lambda doc: doc["stage"] == stages[0], 20, "start")

        xdotool(display, "key", "--delay", "30", *["F10"] * (len(stages) - 1))
        doc = autosaved(autosave, lambda doc: doc["stage"] == stages[-1], 10,
                        f"step to {stages[-1]}")
        assert doc["sample"] == 0   # one whole sample, stage by stage

        xdotool(display, "key", "ctrl+t")
        doc = autosaved(autosave, lambda doc: doc["training"] and doc["training"]["step"] > 0,
                        10, "train")
        shot = tmp_path / "real_window.png"
        grab = subprocess.run([sys.executable, "-c", GRAB, str(shot)], env=env,
                              capture_output=True, text=True, timeout=30)
        assert grab.returncode == 0, grab.stderr
        image = QImage(str(shot))
        assert (image.width(), image.height()) == SCREEN
        colours = {image.pixel(x, y) for x in range(0, SCREEN[0], 7)
                   for y in range(0, SCREEN[1], 7)}
        assert len(colours) > 50, "the screenshot shows no window"

        xdotool(display, "key", "ctrl+q")
        focus(display, "^Close Backprop Explorer$")   # the trained network is unsaved
        xdotool(display, "key", "alt+d")
        _, stderr = app.communicate(timeout=20)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, stderr
    noisy = [line for line in stderr.splitlines() if any(w in line.lower() for w in NOISE)]
    assert noisy == [], stderr
    assert list(autosave.iterdir()) == []   # a clean close deletes the autosave
