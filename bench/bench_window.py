"""The window while it trains, as ratios and bounds of one run (issues 5, 7 and 17).

The run is in its own process (engine/train/child.py, torch's half in its helper), the window
draws what it sends.

- Throughput of a run in the window with every plot live (offscreen) against the same run
  headless (TrainingRun in this process, torch in the helper): at least 95%, counted from the
  run's first records to its end (the child is started first, as the app starts it). Each is
  run ROUNDS times, in turns, and the best of each counts: on a shared machine one run's speed
  swings by 20%.
- The event loop never blocked more than 20 ms: the longest gap between the timeouts of a
  10 ms QTimer from pressing Start until the window shows the run's end, over every round.
- Memory of the window's process after 1,000,000 steps within 50 MB of memory after 10,000,
  in one run with every plot live; the event loop's longest gap over that long run too (no
  gap over 50 ms).

Beside each measured run, an idle process of the window's priority times its own 10 ms waits:
the gaps the machine itself made meanwhile (a shared host that stalls every process for 100
ms shows there too, and is not the window's).

Sizes shrink with BENCH_WINDOW_STEPS and BENCH_MEMORY_STEPS (the tests smoke-run it small).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from bench.bench_engine import Ratio, printed
from engine.files.datasets import regression_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from engine.train.lockstep import TrainConfig
from engine.train.run import TrainingRun, run

SAMPLES = 100
ROUNDS = 2      # headless and windowed runs, in turns: the throughput is the best of each


@dataclass(frozen=True)
class Sizes:
    window_steps: int = int(os.environ.get("BENCH_WINDOW_STEPS", 100_000))
    memory_steps: int = int(os.environ.get("BENCH_MEMORY_STEPS", 1_000_000))
    memory_early: int = 10_000


FULL = Sizes()


class _Sink:
    """A RunState for the headless run: never interrupted, keeps nothing."""

    def interrupted(self) -> bool:
        return False

    def report(self, records) -> None:
        pass


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _headless(steps: int) -> float:
    spec = preset(DEFAULT_PRESET)
    data = regression_set(spec, SAMPLES)
    training = TrainingRun(spec, init_params(spec), data,
                           TrainConfig(lr=0.05, epochs=-(-steps // SAMPLES)))
    start = time.perf_counter()
    run(training, _Sink(), max_steps=steps)
    return steps / (time.perf_counter() - start)


def _window(steps: int):
    """A window on the default network and data, its training panel set for `steps` steps,
    its training process started, and an idle process (Control) to watch the run beside it."""
    from gui.files.recovery import Recovery
    from gui.launch import freeze_startup
    from gui.main_window import MainWindow
    from gui.session_model import SessionModel

    app = QApplication.instance() or QApplication([])
    spec = preset(DEFAULT_PRESET)
    window = MainWindow(SessionModel(Session(spec, init_params(spec),
                                             regression_set(spec, SAMPLES))))
    freeze_startup()    # as the app does, autosaving the session every 2 s as it does
    window.recovery = Recovery(window, tempfile.mkdtemp(prefix="bench_autosave_"))
    window.resize(1400, 900)
    window.show()
    panel = window.training.panel
    panel.lr.setText("0.05")
    panel.epochs.setValue(-(-steps // SAMPLES))
    panel.controller.warm()
    control = Control()
    settle = QEventLoop()       # shown and painted, the child up, as when a user presses Start
    QTimer.singleShot(2_000, settle.quit)
    settle.exec()
    return app, window, panel, control


def _until_stopped(panel, max_steps: int) -> None:
    loop = QEventLoop()
    panel.controller.stopped.connect(loop.quit)
    panel.start(max_steps)
    loop.exec()
    panel.controller.stopped.disconnect(loop.quit)


def _close(app, window) -> None:
    window.recovery.finish()
    shutil.rmtree(window.recovery.root, ignore_errors=True)
    window.unsaved.mark_saved()   # a benchmark has nothing to keep: close without asking
    window.close()
    window.deleteLater()
    app.processEvents()


# an idle process's 10 ms waits: a line on its stdin starts them again, its end prints the
# longest (s) since
CONTROL = """
import select, sys, time
longest, last = 0.0, time.perf_counter()
while True:
    if select.select([sys.stdin], [], [], 0.01)[0]:
        if not sys.stdin.readline():
            break
        longest, last = 0.0, time.perf_counter()
        continue
    now = time.perf_counter()
    longest, last = max(longest, now - last), now
print(longest)
"""


class Control:
    """An idle process timing its own 10 ms waits from `start` until `stop`, which gives the
    longest (s). Made before the run it watches: its own start-up is not the run's."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", CONTROL], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def start(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def stop(self) -> float:
        out, _ = self.process.communicate("", timeout=10)
        return float(out)


def _thread_times() -> tuple[float, float]:
    """(s on a core, s waiting for one) of the calling thread so far, where Linux tells them
    (/proc/thread-self/schedstat); (0, 0) elsewhere."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            running, waiting, _ = f.read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(running) / 1e9, int(waiting) / 1e9


class GapMeter:
    """The longest gaps between the timeouts of a 10 ms QTimer while a run of `panel` goes,
    split by when they end: before the first records came (the window shows the plots that
    appear with a new run, the child builds it), from then to the last ("run"), and after it
    (the explorer shows the parameters the run reached). For the longest of all, what the
    window's thread did meanwhile (`spent`): ran, waited for a core, or neither (asleep until
    the timer's time, or blocked: the GIL, a system call)."""

    def __init__(self, panel, control: Control):
        self.panel = panel
        self.gaps = {"start": 0.0, "run": 0.0, "after": 0.0}
        self.began: list[float] = []
        self.control = control
        control.start()
        self.machine = 0.0      # the idle process's longest wait, once stopped
        self.started = self._last = time.perf_counter()
        self._times = _thread_times()
        self.spent = (0.0, 0.0)     # (ran, waited for a core) in the longest gap
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        panel.controller.records.connect(self._begin)

    @property
    def longest(self) -> float:
        return max(self.gaps.values())

    def tick(self) -> None:
        now, times = time.perf_counter(), _thread_times()
        running = self.panel.controller.running
        which = "run" if self.began and running else "after" if self.began else "start"
        gap = now - self._last
        if gap > self.longest:
            self.spent = (times[0] - self._times[0], times[1] - self._times[1])
        self.gaps[which] = max(self.gaps[which], gap)
        self._last, self._times = now, times

    def spent_text(self) -> str:
        """What the window's thread did in the longest gap, for the report."""
        ran, waited = self.spent
        return (f"in the longest the window's thread ran {ran * 1e3:.1f} ms, waited "
                f"{waited * 1e3:.1f} ms for a core, and was off the cores "
                f"{max(self.longest - ran - waited, 0.0) * 1e3:.1f} ms (up to 10 ms of it "
                "asleep for the timer, the rest blocked)")

    def _begin(self, records) -> None:
        if not self.began:
            self.tick()
            self.began.append(time.perf_counter())
            self.first_step = records[0].step

    def stop(self) -> None:
        self.tick()
        self.timer.stop()
        self.panel.controller.records.disconnect(self._begin)
        self.machine = self.control.stop()


def _in_window(steps: int) -> tuple[float, GapMeter, int]:
    """(steps/s, the event loop's longest gaps, steps run) of a run started from the panel."""
    app, window, panel, control = _window(steps)
    meter = GapMeter(panel, control)
    _until_stopped(panel, 0)
    meter.stop()
    elapsed = time.perf_counter() - meter.began[0]
    done = panel.training.step
    _close(app, window)
    return (done - meter.first_step) / elapsed, meter, done


def _memory(sizes: Sizes) -> tuple[tuple[float, float], tuple[float, float], GapMeter]:
    """RSS (MB) of the window's process and of the training child after `memory_early` and
    after `memory_steps` steps of one run in the window, every plot live, and the event loop's
    longest gaps over the rest of it."""
    app, window, panel, control = _window(sizes.memory_steps)
    child = panel.controller.client.pid
    _until_stopped(panel, sizes.memory_early)
    early = _rss_mb(), _rss_mb(child)
    meter = GapMeter(panel, control)
    _until_stopped(panel, 0)
    meter.stop()
    late = _rss_mb(), _rss_mb(child)
    _close(app, window)
    return early, late, meter


def _rates(rates: list[float]) -> str:
    return " and ".join(f"{rate:,.0f}" for rate in rates)


def _within(value: float, bound: float) -> str:
    return "PASS" if value <= bound else "MISS"


def measure(sizes: Sizes = FULL) -> tuple[list[Ratio], list[str]]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        headless, windowed, meters = [], [], []
        for _ in range(ROUNDS):     # in turns: a machine busier for a while slows both
            headless.append(_headless(sizes.window_steps))
            rate, meter, done = _in_window(sizes.window_steps)
            windowed.append(rate)
            meters.append(meter)
        early, late, long_run = _memory(sizes)
    finally:
        torch.set_num_threads(previous)
    ratios = [Ratio("window with live plots vs headless throughput (best of each)",
                    max(windowed) / max(headless), 0.95)]
    gaps = {which: max(m.gaps[which] for m in meters) for which in meters[0].gaps}
    longest = max(gaps.values())
    first = max(m.began[0] - m.started for m in meters)
    lines = [f"{ROUNDS} rounds, each a headless run then one in the window",
             f"headless: {_rates(headless)} steps/s over {sizes.window_steps:,} steps",
             f"window, every plot live (offscreen): {_rates(windowed)} steps/s over {done:,} "
             "steps",
             f"first records {first * 1e3:.0f} ms after Start at the latest",
             f"longest gap of a 10 ms QTimer from pressing Start until the window shows the "
             f"run's end, over the {ROUNDS} runs: {longest * 1e3:.1f} ms (bound 20 ms): "
             f"{_within(longest, 0.02)}",
             f"  of which before the first records (the plots appear): "
             f"{gaps['start'] * 1e3:.1f} ms; during the steps: {gaps['run'] * 1e3:.1f} ms; "
             f"after the last (the explorer shows the trained parameters): "
             f"{gaps['after'] * 1e3:.1f} ms; an idle process's longest 10 ms wait "
             f"meanwhile: {' and '.join(f'{m.machine * 1e3:.1f}' for m in meters)} ms; "
             f"{max(meters, key=lambda m: m.longest).spent_text()}",
             f"memory of a run in the window: {early[0]:.1f} MB after "
             f"{sizes.memory_early:,} steps, {late[0]:.1f} MB after {sizes.memory_steps:,} "
             f"(growth {late[0] - early[0]:+.1f} MB, bound 50 MB): "
             f"{_within(late[0] - early[0], 50)}",
             f"memory of its training process: {early[1]:.1f} MB, then {late[1]:.1f} MB "
             f"(growth {late[1] - early[1]:+.1f} MB, bound 50 MB): "
             f"{_within(late[1] - early[1], 50)}",
             f"longest gap of the event loop over that run's steps {sizes.memory_early:,} to "
             f"{sizes.memory_steps:,}: {long_run.longest * 1e3:.1f} ms (bound 50 ms): "
             f"{_within(long_run.longest, 0.05)}; an idle process's longest 10 ms wait "
             f"meanwhile: {long_run.machine * 1e3:.1f} ms; {long_run.spent_text()}"]
    return ratios, lines


def results(sizes: Sizes = FULL) -> list[Ratio]:
    return measure(sizes)[0]


def main(sizes: Sizes = FULL) -> None:
    ratios, lines = measure(sizes)
    print(printed([f"bench_window: {DEFAULT_PRESET}, {SAMPLES} samples, batch size 1; torch on "
                   "one thread; offscreen"], lines, ratios), flush=True)


if __name__ == "__main__":
    main()
