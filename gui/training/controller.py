"""The training run in its own process, seen from the window's event loop.

`TrainController` owns one engine.train.client.TrainingClient (the child process running the
run, engine/train/child.py), started at the first Start and reused for the runs after. It never
waits for the child: a QSocketNotifier on the pipe from the child wakes it when something came,
another on the pipe to the child while a command is only partly written, and a slow QTimer lets
the client notice a child that hangs. What comes back is turned into signals carrying copies,
and into the RemoteRun that the rest of the window reads (step, total, state, schedule).

A run's end (Paused, Finished) is told in a turn of the event loop of its own when records
came with it: what listens to `stopped` shows the parameters the run reached (10-15 ms), and
together with the last records and their plots one turn would hold the window longer than a
frame.
"""

import logging
from collections import deque

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal, Slot

from engine.train.client import (
    RUNS,
    SILENCE,
    Exited,
    Failed,
    Finished,
    Paused,
    Records,
    Snapshot,
    StateAt,
    TrainingClient,
)
from engine.train.remote import RemoteRun
from engine.train.run import DONE, Breakpoints

log = logging.getLogger(__name__)

WATCH_MS = 100    # how often the client looks for a child that hangs or has died
# how much lower the child's (and its helper's) scheduling priority is than the window's: the
# run keeps both cores of a 2-core machine busy, and the window must get one whenever it has
# work, or its event loop waits for the scheduler (gaps of 50-80 ms seen at equal priority;
# at nice 5 a paint still took up to twice its CPU time, at 10 about 1.5 times). The run still
# gets every cycle the window leaves; only a machine busy with other work slows it more.
CHILD_NICE = 10


class TrainController(QObject):
    """Starts, pauses, steps and stops runs in the child; safe to close mid-run. `command`
    replaces the child's command line (tests start a stand-in)."""

    records = Signal(object)         # list[StepRecord], as they came
    snapshot = Signal(object)        # (step, scratch params, torch params)
    stopped = Signal(str)            # done, interrupted, steps, or a breakpoint's sentence
    failed = Signal(str)             # a bug of ours: the child's traceback, for the log
    refused = Signal(str)            # an error the user caused: the message is for them
    lost = Signal(str)               # the child is gone unasked: why
    travelled = Signal(int, object)  # an answer to travel: step, State
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None, command: list[str] | None = None):
        super().__init__(parent)
        self.command = command
        self.silence = SILENCE     # s a running child may stay silent before it is ended
        self.client: TrainingClient | None = None
        self.training: RemoteRun | None = None
        self.breakpoints = Breakpoints()
        self.running = False
        self._readable: QSocketNotifier | None = None
        self._writable: QSocketNotifier | None = None
        # the state_at asked and not answered yet, in order: (the run asked of, its step)
        self._travels: list[tuple[RemoteRun, int]] = []
        self._inbox: deque = deque()    # received, not dispatched yet: for the next turn
        self._next_turn = QTimer(self)
        self._next_turn.setSingleShot(True)
        self._next_turn.setInterval(0)
        self._next_turn.timeout.connect(self._pump)
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self._pump)

    # the run
    def load(self, training: RemoteRun | None, breakpoints: Breakpoints | None = None) -> None:
        """A new run (None: none); only while nothing runs. The child drops the run it had
        (and its torch helper)."""
        if self.running:
            raise RuntimeError("a run is in progress")
        if self.training is not None and self.training is not training and \
                self.training.begun and self._alive:
            self.client.drop()
        self.training = training
        self.breakpoints = breakpoints or Breakpoints()

    def set_breakpoints(self, breakpoints: Breakpoints) -> None:
        self.breakpoints = breakpoints
        if self.training is not None and self.training.begun and self._alive:
            self.client.set_breakpoints(breakpoints)

    def start(self, max_steps: int = 0) -> None:
        """Run `max_steps` steps (0: until done or a breakpoint or a pause)."""
        training = self.training
        if self.running or training is None or training.done:
            return
        if not self._alive:
            self._connect()
        if not training.begun:
            self.client.begin(training.spec, training.start_params, training.data,
                              training.config, training.mistake, self.breakpoints)
            training.begun = True
        self.client.run(max_steps or None)
        self._set_running(True)
        self._pump()

    def pause(self) -> None:
        """The run pauses after the step it is in; `stopped` says so."""
        if self.running and self._alive:
            self.client.pause()
            self._pump()

    def travel(self, step: int) -> bool:
        """Ask for the exact state after `step` steps; `travelled` brings it. False when no
        child can answer (it stopped)."""
        training = self.training
        if training is None or not training.begun or not self._alive:
            return False
        self._travels.append((training, step))
        self.client.state_at(step)
        self._pump()
        return True

    def warm(self) -> None:
        """Start the child now, before the first Start needs it (it waits for a run)."""
        if not self._alive:
            self._connect()

    def shutdown(self) -> None:
        """End the child (and its helper), waiting up to engine.train.client.CLOSE_WAIT."""
        client = self.client
        self._disconnect()
        if client is not None:
            client.close()
        if self.running:
            self._set_running(False)

    # the child
    @property
    def _alive(self) -> bool:
        return self.client is not None and self.client.alive

    def _connect(self) -> None:
        self._disconnect()
        if self.training is not None:
            self.training.begun = False     # the new child has never seen it
        self.client = TrainingClient(self.command, self.silence, CHILD_NICE)
        self._readable = QSocketNotifier(self.client.fileno(), QSocketNotifier.Type.Read, self)
        self._readable.activated.connect(self._pump)
        self._writable = QSocketNotifier(self.client.write_fileno(),
                                         QSocketNotifier.Type.Write, self)
        self._writable.setEnabled(False)
        self._writable.activated.connect(self._pump)
        self._watch.start()

    def _disconnect(self) -> None:
        """Stop watching the pipes (before the client closes them)."""
        self._watch.stop()
        for notifier in (self._readable, self._writable):
            if notifier is not None:
                notifier.setEnabled(False)
                notifier.deleteLater()
        self._readable = self._writable = None
        self._travels.clear()
        self._inbox.clear()
        self._next_turn.stop()

    @Slot()
    def _pump(self, *_) -> None:
        client = self.client
        if client is None:
            return
        inbox = self._inbox
        inbox.extend(client.receive())
        told = False
        while inbox:
            if told and isinstance(inbox[0], Paused | Finished):
                self._next_turn.start()     # the end of the run, in a turn of its own
                break
            self._dispatch(inbox.popleft())
            if self.client is not client:
                return      # a message ended this child (or the window's closing)
            told = True
        if self.client is not client or self._readable is None:
            return
        if not client.alive:
            # the pipe is at its end: the timer waits for the exit status, not a busy notifier
            self._readable.setEnabled(False)
        self._writable.setEnabled(client.alive and client.unsent > 0)

    def _dispatch(self, message) -> None:
        training = self.training
        if isinstance(message, Records):
            if training is not None:
                training.took(message.records)
            self.records.emit(message.records)
        elif isinstance(message, StateAt):
            self._on_state(message)
        elif isinstance(message, Snapshot):
            if training is not None:
                training.reached(message.step, message.state)
            self.snapshot.emit((message.step, message.scratch, message.torch))
        elif isinstance(message, Paused | Finished):
            self._set_running(False)
            self.stopped.emit(DONE if isinstance(message, Finished) else message.reason)
        elif isinstance(message, Failed):
            self._on_failed(message)
        elif isinstance(message, Exited):
            self._on_exited(message)

    def _on_state(self, message: StateAt) -> None:
        if not self._travels:
            # unasked: a breakpoint's, the state the step that broke began from
            if self.training is not None:
                self.training.broke_from = (message.step, message.state)
            return
        asked, step = self._travels.pop(0)
        if asked is self.training and step == message.step:
            self.travelled.emit(step, message.state)

    def _on_failed(self, message: Failed) -> None:
        if message.command == "state_at" and self._travels:
            self._travels.pop(0)
        was_running = self.running and message.command in ("start", *RUNS)
        # a run never built, or stopped by the failure: nothing more of it will run
        if self.training is not None and (message.command == "start" or was_running):
            self.training.end_here()
        if was_running:
            self._set_running(False)
        if message.user:
            self.refused.emit(message.message)
        else:
            log.error("the training process failed at %r:\n%s", message.command,
                      message.traceback or message.message)
            self.failed.emit(message.traceback or message.message)

    def _on_exited(self, message: Exited) -> None:
        self._disconnect()
        self.client = None
        if message.expected:
            return
        log.warning("%s", message.message)
        if self.training is not None and self.training.begun:
            self.training.end_here()
        if self.running:
            self._set_running(False)
        self.lost.emit(message.message)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.runningChanged.emit(running)
