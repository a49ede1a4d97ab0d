"""Start-up, timed as a whole process the way a person meets it: `app.py --help`, and `app.py`
until its window first painted (BPX_REPORT_SHOWN makes the window print that, then when torch
was in, and close; gui/launch.py). The window is timed under the offscreen platform and, where
xvfb-run exists, on an X server at 1366x768 (this module re-runs itself under xvfb-run, so the
server's own start is not counted). Each figure is the median of several runs; its verdict
compares it with its target."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
X_SCREEN = "1366x768x24"
UNDER_X = "--under-x"  # the inner run, on the display xvfb-run made


class Figure(NamedTuple):
    """A time in seconds against the most it may take."""

    name: str
    seconds: float
    target: float

    @property
    def verdict(self) -> str:
        return "PASS" if self.seconds <= self.target else "MISS"


def printed(head: list[str], lines: list[str], figures: list[Figure]) -> str:
    """Heading lines, the measurements indented, then each figure against its target, aligned
    (as bench_engine.printed does for ratios)."""
    width = max(len(f.name) for f in figures)
    verdicts = [f"  {f.name:<{width}}  {f.seconds:6.2f} s vs target ≤ {f.target:g} s  "
                f"{f.verdict}" for f in figures]
    return "\n".join([*head, *(f"  {line}" for line in lines), *verdicts])


@dataclass(frozen=True)
class Sizes:
    runs: int = 5  # launches of each kind; tests make it 1


FULL = Sizes()
WINDOW_TARGET, HELP_TARGET = 1.5, 0.5


def _environment(scratch: Path, display: bool) -> dict[str, str]:
    """The app's environment: settings and autosaves of its own (a user's last network would
    change what is timed), offscreen unless on the X server."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(scratch / "config"),
           "BACKPROP_EXPLORER_AUTOSAVE": str(scratch / "autosave")}
    env.pop("QT_QPA_PLATFORM", None)
    if not display:
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _seconds(line: str, what: str) -> float:
    """The seconds of a "<what> 1.234 s after launch" line."""
    if not line.startswith(what):
        raise RuntimeError(f"expected {what!r} from the window, got {line!r}")
    return float(line.removeprefix(what).split()[0])


def window_times(runs: int, display: bool) -> tuple[list[float], list[float]]:
    """Seconds from each launch of `app.py` to its window's first paint, and to torch's
    column filled in."""
    shown, ready = [], []
    with tempfile.TemporaryDirectory() as scratch:
        env = _environment(Path(scratch), display)
        for _ in range(runs):
            env["BPX_REPORT_SHOWN"] = repr(time.time())
            result = subprocess.run([sys.executable, str(APP)], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)
            lines = result.stdout.splitlines()
            if result.returncode != 0 or len(lines) < 2:
                raise RuntimeError(f"app.py exited {result.returncode}: {result.stderr[-2000:]}")
            shown.append(_seconds(lines[0], "window shown"))
            ready.append(_seconds(lines[1], "torch ready"))
    return shown, ready


def help_times(runs: int) -> list[float]:
    """Seconds each `app.py --help` takes, start to exit."""
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        env = _environment(Path(scratch), display=False)
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, str(APP), "--help"], cwd=ROOT, env=env, check=True,
                           capture_output=True, timeout=60)
            times.append(time.perf_counter() - start)
    return times


def x_window_times(runs: int) -> tuple[list[float], list[float]] | None:
    """window_times on an X server started by xvfb-run; None without xvfb-run."""
    if shutil.which("xvfb-run") is None:
        return None
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", f"-screen 0 {X_SCREEN}", sys.executable, "-m",
         "bench.bench_startup", UNDER_X, str(runs)],
        cwd=ROOT, capture_output=True, text=True, timeout=60 + 30 * runs)
    if result.returncode != 0:
        raise RuntimeError(f"under xvfb-run: {result.stderr[-2000:]}")
    shown, ready = json.loads(result.stdout.splitlines()[-1])
    return shown, ready


def _spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f} s)"


def measure(sizes: Sizes = FULL) -> tuple[list[Figure], list[str]]:
    lines, figures = [], []
    helps = help_times(sizes.runs)
    lines.append(f"app.py --help: {_spread(helps)}")
    figures.append(Figure("app.py --help, start to exit", statistics.median(helps),
                          HELP_TARGET))
    platforms = [("offscreen", window_times(sizes.runs, display=False)),
                 (f"X server (Xvfb {X_SCREEN})", x_window_times(sizes.runs))]
    for name, times in platforms:
        if times is None:
            lines.append(f"{name}: not measured (no xvfb-run)")
            continue
        shown, ready = times
        lines.append(f"{name}: window painted {_spread(shown)}; torch's column filled in "
                     f"{_spread(ready)}")
        figures.append(Figure(f"launch to window on screen, {name.split(' (')[0]}",
                              statistics.median(shown), WINDOW_TARGET))
    return figures, lines


def report(sizes: Sizes = FULL) -> str:
    figures, lines = measure(sizes)
    head = [f"bench_startup: python app.py as a whole process, {sizes.runs} launches of each, "
            "default network, settings of its own"]
    return printed(head, lines, figures)


def main(sizes: Sizes = FULL) -> None:
    print(report(sizes), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [UNDER_X]:
        print(json.dumps(window_times(int(sys.argv[2]), display=True)))
    else:
        main()
