"""The training loop off the GUI thread.

`TrainWorker` lives on its own QThread and runs engine.train.run.run there; the GUI asks it to
stop through a threading.Event (a queued slot would never run while the loop is busy) and hears
back through signals carrying copies. `TrainController` owns the thread, on the GUI thread, and
is all the rest of the window talks to.
"""

import sys
import threading
import time
import traceback

from PySide6.QtCore import (
    QAbstractEventDispatcher,
    QCoreApplication,
    QEvent,
    QObject,
    QThread,
    QTimer,
    Signal,
    Slot,
)

from engine.net.reference import set_torch_threads
from engine.train.lockstep import StepRecord
from engine.train.run import INTERRUPTED, Breakpoints, TrainingRun, run

SNAPSHOT_EVERY = 0.25   # seconds between parameter snapshots sent to the plots
PARK_LIMIT = 0.5        # s: the longest the GUI thread holds the loop, should it never idle
PARK_WAIT = 0.01        # s: the longest the GUI thread waits for the loop to end its step
YIELD_EVERY = 0.002     # s: the loop lets go of the GIL for YIELD_FOR once in this long
YIELD_FOR = 0.0001      # s
SWITCH_INTERVAL = 0.001  # s: the GIL's switch interval while a run runs (Python's is 5 ms)


class TrainWorker(QObject):
    """Runs a TrainingRun's loop when asked; never touches a widget."""

    records = Signal(object)     # list[StepRecord], a new list each time
    snapshot = Signal(object)    # (step, scratch params, torch params), copies
    stopped = Signal(str)        # why the loop returned: done, interrupted, steps, a breakpoint
    failed = Signal(str)         # a bug of ours: the traceback, for the log

    def __init__(self) -> None:
        super().__init__()
        self.training: TrainingRun | None = None
        self.breakpoints = Breakpoints()
        self._interrupt = threading.Event()
        # cleared while the GUI thread handles an event: see TrainController.park
        self.go = threading.Event()
        self.go.set()
        self.parked = threading.Event()   # set while the loop is not in a step
        self.parked.set()
        self._yield_at = 0.0
        self._last_snapshot = 0.0
        self._threads_set = False

    def request_stop(self) -> None:
        """Safe from any thread: the loop stops before its next step."""
        self._interrupt.set()
        self.go.set()

    # the RunState the engine's loop asks
    def interrupted(self) -> bool:
        # between two steps: wait while the GUI thread works (see TrainController.park), but
        # never for good: a GUI thread that never idles gets a step every PARK_LIMIT
        while not self.go.is_set():
            self.parked.set()
            if not self.go.wait(PARK_LIMIT):
                self.go.set()
            self.parked.clear()   # and look again: the GUI thread may have parked it anew
        self._yield()
        return self._interrupt.is_set()

    def _yield(self) -> None:
        """Let go of the GIL for a moment every YIELD_EVERY.

        A step lets go of the GIL and takes it back at once, inside numpy, about once per
        step; the GUI thread, woken each time, finds it taken again and waits on, never waiting
        the whole switch interval that would make the loop hand it over: woken by a timer, it
        could wait 40 ms and more before it ran a line of Python (median 230 ms in a test of
        this alone). Asleep for YIELD_FOR, the loop leaves it to the GUI thread, which then
        parks the loop if it has work. It costs the loop about 5% of its time."""
        now = time.monotonic()
        if now >= self._yield_at:
            time.sleep(YIELD_FOR)
            self._yield_at = now + YIELD_EVERY

    def report(self, records: list[StepRecord]) -> None:
        self.records.emit(list(records))
        now = time.monotonic()
        if now - self._last_snapshot >= SNAPSHOT_EVERY:
            self._last_snapshot = now
            self._send_snapshot()

    def _send_snapshot(self) -> None:
        scratch, theirs = self.training.lockstep.params()
        self.snapshot.emit((self.training.step, scratch, theirs))

    @Slot(int)
    def start(self, max_steps: int) -> None:
        """Advance the run: `max_steps` steps, or until it ends or pauses when 0."""
        if not self._threads_set:
            # one intra-op thread leaves the other core to the GUI
            set_torch_threads(1)
            self._threads_set = True
        self._interrupt.clear()
        self.parked.clear()
        try:
            outcome = run(self.training, self, max_steps or None, self.breakpoints)
            self._send_snapshot()
        except Exception:
            self.failed.emit(traceback.format_exc())
            return
        finally:
            self.parked.set()
        self.stopped.emit(outcome)


class TrainController(QObject):
    """Starts, pauses, steps and stops a run on the worker thread; safe to close mid-run."""

    records = Signal(object)
    snapshot = Signal(object)
    stopped = Signal(str)
    failed = Signal(str)
    runningChanged = Signal(bool)
    began = Signal()                 # the loop has been asked to run (after start's delay)
    _start = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        # the thread is the controller's child, and the worker goes when the thread finishes:
        # nothing of either is left for Python to destroy after the QApplication
        self.thread = QThread(self)
        self.thread.setObjectName("training")
        self.worker = TrainWorker()
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self._start.connect(self.worker.start)
        self.worker.records.connect(self._on_records)
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.stopped.connect(self._on_stopped)
        self.worker.failed.connect(self._on_failed)
        self.thread.start()
        self.running = False
        self._waiting: int | None = None    # the steps of a start not begun yet

    @property
    def training(self) -> TrainingRun | None:
        return self.worker.training

    def load(self, training: TrainingRun | None, breakpoints: Breakpoints | None = None
             ) -> None:
        """A new run (None: none); only while nothing runs. The run it replaces is closed
        (its torch helper process ends)."""
        if self.running:
            raise RuntimeError("a run is in progress")
        if self.worker.training is not None and self.worker.training is not training:
            self.worker.training.close()
        self.worker.training = training
        self.worker.breakpoints = breakpoints or Breakpoints()

    def set_breakpoints(self, breakpoints: Breakpoints) -> None:
        # a frozen object swapped whole: the worker reads it between steps
        self.worker.breakpoints = breakpoints

    def start(self, max_steps: int = 0, after_ms: int = 0) -> None:
        """Run `max_steps` steps (0: until done or paused), beginning `after_ms` from now: time
        for the window to lay out and paint what a new run shows before the loop runs."""
        if self.running or self.training is None or self.training.done:
            return
        self._set_running(True)
        self._waiting = max_steps
        QTimer.singleShot(after_ms, self._begin)

    @Slot()
    def _begin(self) -> None:
        if self._waiting is not None:
            max_steps, self._waiting = self._waiting, None
            self.began.emit()
            self._start.emit(max_steps)

    def pause(self) -> None:
        if self._waiting is not None:   # asked before the loop began: it never will
            self._waiting = None
            self._on_stopped(INTERRUPTED)
            return
        self.worker.request_stop()

    def park(self) -> None:
        """Hold the loop between two steps until the GUI thread's event loop idles again.

        While a run runs, every event the GUI thread handles parks the loop first (see
        eventFilter): the paints, the plots' redraws, the records taken in, the layouts and
        queued calls of the plots' scenes, the user's clicks and keys; the loop goes on when
        the event loop is about to wait for the next event. A busy loop takes the GIL back each
        time the GUI thread lets go of it, at every one of the hundreds of calls into Qt of a
        paint or a redraw, and each time the GUI thread waits up to the switch interval to have
        it again: a 17 ms repaint took 50-200 ms. Parked, the loop loses the few percent of the
        time the window works, which the torch helper, computing ahead meanwhile, makes up.
        While a run runs the switch interval is SWITCH_INTERVAL, so that the first call into
        Python of each event, the one that parks the loop, waits 1 ms at most, not 5; it then
        waits (the GIL let go) for the loop to end the step it is in."""
        if self.running:
            self.worker.go.clear()
            # a loop still in its step would share the GIL with this thread until the step's
            # end, each taking it from the other at every call into Qt or BLAS, and take ten
            # times as long: let it end its step first (60 µs, most often)
            self.worker.parked.wait(PARK_WAIT)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Installed on the application while a run runs: sees every event of the GUI thread
        before its receiver does."""
        if self.worker.go.is_set():
            self.park()
        return False

    @Slot()
    def _unpark(self) -> None:
        self.worker.go.set()

    def shutdown(self) -> None:
        """Stop the loop and join the thread (closing the window mid-run)."""
        training = self.worker.training
        self.worker.request_stop()
        self.thread.quit()
        self.thread.wait()
        if self.running:
            self._set_running(False)   # its last signals will never be delivered
        if training is not None:
            training.close()

    @Slot(object)
    def _on_records(self, records: list[StepRecord]) -> None:
        self.records.emit(records)

    @Slot(object)
    def _on_snapshot(self, snapshot: tuple) -> None:
        self.snapshot.emit(snapshot)

    @Slot(str)
    def _on_stopped(self, outcome: str) -> None:
        self._set_running(False)
        self.stopped.emit(outcome)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._set_running(False)
        self.failed.emit(text)

    def _set_running(self, running: bool) -> None:
        if running != self.running:
            app = QCoreApplication.instance()
            idle = QAbstractEventDispatcher.instance().aboutToBlock
            if running:
                app.installEventFilter(self)
                idle.connect(self._unpark)
                self._switch_interval = sys.getswitchinterval()
                sys.setswitchinterval(SWITCH_INTERVAL)
            else:
                app.removeEventFilter(self)
                idle.disconnect(self._unpark)
                sys.setswitchinterval(self._switch_interval)
                self.worker.go.set()
        self.running = running
        self.runningChanged.emit(running)
