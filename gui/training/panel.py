"""The training panel: SGD settings and breakpoints, Start/Pause/Step/Stop/Reset, progress and
speed, and the time-travel slider over the steps run so far.

It drives a TrainController (the run itself is in a child process) and, whenever the run is not
moving, puts the parameters it stands at into the session, so the stepping view shows exactly
the step the user is looking at."""

import time

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QMouseEvent, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserInputError
from engine.session import NETWORK
from engine.train.lockstep import StepRecord, TrainConfig
from engine.train.remote import RemoteRun
from engine.train.run import DONE, INTERRUPTED, STEPS, Breakpoints
from engine.train.timeline import State
from gui.session_model import SessionModel
from gui.training.controller import TrainController

TRAVEL_MS = 150   # a key held on the slider moves it many steps: the explorer follows the last
SPEED_EVERY = 0.5  # s between two updates of the steps-per-second figure
PROGRESS = "step %v of %m"
FIELD_WIDTH = 160  # px: the fields need no more, and the dock keeps beside the explorer
NO_TRAVEL = "Time travel (after a run: any step of it)"


class ScientificSpinBox(QDoubleSpinBox):
    """A positive number in the notation it reads best in ("1e-05", "0.25"), typed as such;
    the arrows multiply or divide it by 10."""

    def __init__(self, low: float, high: float, value: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(30)         # Qt rounds the value to this many places: keep 1e-30
        self.setRange(low, high)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            value = float(text)
        except ValueError:
            partial = text.strip().lower()
            ok = partial == "" or all(c in "0123456789.e+-" for c in partial)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = (QValidator.State.Acceptable if self.minimum() <= value <= self.maximum()
                 else QValidator.State.Intermediate)
        return state, text, pos

    def stepBy(self, steps: int) -> None:
        value = self.value() or 1e-5
        self.setValue(min(max(value * 10.0 ** steps, self.minimum()), self.maximum()))


class TimeSlider(QSlider):
    """The time-travel slider: a click on its groove puts the handle there (not a page
    further), and from there it drags as usual."""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.maximum() > self.minimum():
            option = QStyleOptionSlider()
            self.initStyleOption(option)
            style = self.style()
            handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                          QStyle.SubControl.SC_SliderHandle, self)
            at = event.position().toPoint()
            if not handle.contains(at):
                groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                              QStyle.SubControl.SC_SliderGroove, self)
                span = max(groove.width() - handle.width(), 1)
                x = at.x() - groove.x() - handle.width() // 2
                self.setValue(QStyle.sliderValueFromPosition(
                    self.minimum(), self.maximum(), min(max(x, 0), span), span,
                    option.upsideDown))
        super().mousePressEvent(event)


class TrainingPanel(QWidget):
    """Controls of a training run on `model`'s network and data."""

    runReset = Signal(object)         # the new RemoteRun (or None): plots start over
    message = Signal(str)             # a sentence for the status bar

    def __init__(self, model: SessionModel, controller: TrainController | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.controller = controller or TrainController(self)
        self._start_params = None
        # (step, time) where the steps-per-second figure counts from, and where the run's
        # stretch since Start counts from (None until its first records came)
        self._counted: tuple[int, float] | None = None
        self._stretch: tuple[int, float] | None = None
        self._last: StepRecord | None = None
        self._pending: str | None = None   # what to do once the loop has stopped: stop, reset
        self._travel_to: int | None = None  # the slider's step whose state was asked for
        self._build()
        self.controller.records.connect(self._on_records)
        self.controller.stopped.connect(self._on_stopped)
        self.controller.failed.connect(self._on_failed)
        self.controller.refused.connect(self._on_refused)
        self.controller.lost.connect(self._on_lost)
        self.controller.travelled.connect(self._on_travelled)
        self.controller.runningChanged.connect(self._sync)
        self.model.networkChanged.connect(self._on_network)
        self.model.mistakeChanged.connect(self._on_network)
        self._sync()

    # building
    def _build(self) -> None:
        self.lr = QLineEdit("0.1")
        self.lr.setToolTip("Learning rate of both engines' SGD steps (a positive number)")
        self.epochs = _spin(1, 1_000_000, 5, "Passes over the data")
        self.batch = _spin(1, 100_000, 1, "Samples per SGD step (1 as the seeds)")
        self.shuffle = QCheckBox("Shuffle, seed")
        self.shuffle.setToolTip("Shuffle the samples each epoch, seeded")
        self.seed = _spin(0, 2**31 - 1, 0, "Seed of the shuffling")
        self.threshold_on = QCheckBox("Pause when a gradient difference exceeds")
        self.threshold_on.setToolTip("Breakpoint: max |scratch - torch| of any parameter")
        self.threshold = ScientificSpinBox(0.0, 1e6, 1e-5)
        self.threshold.setToolTip("The gradient-difference threshold of the breakpoint (such "
                                  "as 1e-5; the arrows multiply or divide it by 10)")
        self.nonfinite = QCheckBox("Pause when the loss becomes NaN or infinite")
        self.nonfinite.setChecked(True)
        self.nonfinite.setToolTip("Breakpoint: the run diverged")
        self.epoch_end = QCheckBox("Pause at the end of each epoch")
        self.epoch_end.setToolTip("Breakpoint: after the last step of every epoch")
        for box in (self.threshold_on, self.nonfinite, self.epoch_end):
            box.toggled.connect(self._push_breakpoints)
        self.threshold.valueChanged.connect(self._push_breakpoints)

        form = QFormLayout()
        form.addRow("Learning rate", self.lr)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow(self.shuffle, self.seed)
        form.addRow(self.threshold_on)
        form.addRow("", self.threshold)
        form.addRow(self.nonfinite)
        form.addRow(self.epoch_end)
        for field in (self.lr, self.epochs, self.batch, self.seed, self.threshold):
            field.setMaximumWidth(FIELD_WIDTH)

        self.buttons = {}
        grid = QGridLayout()
        for i, (name, tip) in enumerate((
                ("Start", "Run SGD on both engines until the end or a breakpoint"),
                ("Pause", "Pause after the current step"),
                ("Step", "One SGD step of both engines"),
                ("Stop", "End the run here: the session keeps these parameters"),
                ("Reset", "Discard the run and go back to the parameters it started from"))):
            button = QPushButton(name)
            button.setToolTip(tip)
            grid.addWidget(button, i // 3, i % 3)   # two rows: the dock stays narrow
            self.buttons[name] = button
        self.buttons["Start"].clicked.connect(lambda: self.start(0))
        self.buttons["Step"].clicked.connect(lambda: self.start(1))
        self.buttons["Pause"].clicked.connect(self.controller.pause)
        self.buttons["Stop"].clicked.connect(self.stop)
        self.buttons["Reset"].clicked.connect(self.reset)

        self.progress = QProgressBar()
        self.progress.setFormat("no run")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setToolTip("Steps run of the whole run")
        self.speed = QLabel("")
        self.speed.setToolTip("Steps per second of both engines together")
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        self.smaller = QPushButton("Try a smaller learning rate")
        self.smaller.setToolTip("Divide the learning rate by 10 and start over")
        self.smaller.clicked.connect(self._smaller_lr)
        self.smaller.hide()

        self.slider = TimeSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Time travel: show the stepping view at any step run so far "
                               "(the parameters before that step, and its sample). Drag, "
                               "click, or use the arrows, PgUp/PgDn, Home and End")
        self.slider.setMinimum(1)
        self.slider.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.slider.sliderReleased.connect(self._travel)
        self.slider.valueChanged.connect(self._slider_label)
        self.slider.valueChanged.connect(self._slider_moved)
        self._placing = False      # the panel itself sets the slider: no travel
        self._travel_soon = QTimer(self)
        self._travel_soon.setSingleShot(True)
        self._travel_soon.setInterval(TRAVEL_MS)
        self._travel_soon.timeout.connect(self._travel)
        self.slider_label = QLabel(NO_TRAVEL)
        self.slider_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(grid)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.speed)
        layout.addLayout(progress_row)
        layout.addWidget(self.outcome)
        layout.addWidget(self.smaller)
        layout.addWidget(self.slider_label)   # its title too: a laptop's dock has no row spare
        layout.addWidget(self.slider)
        layout.addStretch(1)
        # rows a little closer than the style's: at 1366x768 with the live plots open, the dock
        # shows every row from the learning rate to the time-travel slider
        layout.setSpacing(4)
        form.setVerticalSpacing(4)
        margins = layout.contentsMargins()
        layout.setContentsMargins(margins.left(), 4, margins.right(), 4)

    # state
    @property
    def training(self) -> RemoteRun | None:
        return self.controller.training

    def config(self) -> TrainConfig:
        """The settings as a TrainConfig; a bad one raises UserInputError with its message."""
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise UserInputError(f"the learning rate {self.lr.text()!r} is not a number") from None
        return TrainConfig(lr=lr, epochs=self.epochs.value(), batch_size=self.batch.value(),
                           shuffle=self.shuffle.isChecked(), seed=self.seed.value())

    def breakpoints(self) -> Breakpoints:
        return Breakpoints(self.threshold.value() if self.threshold_on.isChecked() else None,
                           self.nonfinite.isChecked(), self.epoch_end.isChecked())

    # actions
    def start(self, max_steps: int = 0) -> None:
        """Start or resume (max_steps 0), or take `max_steps` steps."""
        if self.controller.running:
            return
        if self.training is None or self.training.done:
            try:
                config = self.config()
            except UserInputError as e:
                self._say(str(e))
                return
            session = self.model.session
            self._start_params = {k: v.copy() for k, v in session.params.items()}
            training = RemoteRun(session.spec, session.params, session.data, config,
                                 mistake=session.mistake)
            self.controller.load(training, self.breakpoints())
            self.progress.setRange(0, training.total)
            self.progress.setValue(0)
            self.progress.setFormat(PROGRESS)
            self.outcome.setText("")
            self.speed.setText("")
            self.smaller.hide()
            self.runReset.emit(training)
        self._counted = self._stretch = None
        self._say("training…")
        self.controller.start(max_steps)

    def stop(self) -> None:
        """End the run where it is; the session keeps its parameters."""
        if self.controller.running:
            self._pending = "stop"
            self.controller.pause()
            return
        self._finish_run()

    def reset(self) -> None:
        """Discard the run; the session goes back to where the run started."""
        if self.controller.running:
            self._pending = "reset"
            self.controller.pause()
            return
        if self._start_params is not None:
            self.model.session.set_params(self._start_params)
        self._drop_run()
        self._say("reset to the parameters the run started from")

    def _drop_run(self) -> None:
        self.controller.load(None)
        self._start_params, self._last = None, None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no run")
        self.speed.setText("")
        self._place_slider(1)
        self.slider_label.setText(NO_TRAVEL)
        self.outcome.setText("")
        self.smaller.hide()
        self.runReset.emit(None)
        self._sync()

    def _finish_run(self) -> None:
        training = self.training
        if training is not None:
            training.end_here()  # nothing more to run: Start begins a new run
        self._sync()

    # the child's news
    @Slot(object)
    def _on_records(self, records: list[StepRecord]) -> None:
        self._last = records[-1]
        self.progress.setValue(self._last.step)
        now = time.monotonic()
        if self._counted is None:
            self._counted = self._stretch = (self._last.step, now)
            return
        step, since = self._counted
        if now - since >= SPEED_EVERY:
            self._show_speed(self._last.step - step, now - since)
            self._counted = (self._last.step, now)

    def _show_speed(self, steps: int, seconds: float) -> None:
        self.speed.setText(f"{steps / seconds:,.0f} steps/s")

    @Slot(str)
    def _on_stopped(self, outcome: str) -> None:
        pending, self._pending = self._pending, None
        if pending == "reset":
            self.reset()
            return
        training = self.training
        self._place_slider(training.step, training.step)
        if self._stretch is not None:     # the stretch since Start, as a whole
            step, since = self._stretch
            if training.step > step and time.monotonic() - since >= 0.1:
                self._show_speed(training.step - step, time.monotonic() - since)
        current = outcome in (DONE, INTERRUPTED, STEPS)
        if current:
            self._show_current()
            text = {DONE: f"finished: {training.step} steps",
                    INTERRUPTED: f"paused after step {training.step}",
                    STEPS: f"stepped to step {training.step}"}[outcome]
        else:
            self._show_step(training.step)   # the very step that broke
            text = f"paused: {outcome}"
            self.smaller.setVisible(outcome.startswith("diverged"))
        if pending == "stop":
            self._finish_run()
            text = f"stopped after step {training.step}"
        self.outcome.setText(text)
        if current:
            self._say_after_views(text)
        else:
            self._say(text)
        self._sync()

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._pending = None
        self._show_current()
        self.outcome.setText("training stopped by an internal error (see the log); "
                             "the window and your network are unchanged")
        self._sync()

    @Slot(str)
    def _on_refused(self, text: str) -> None:
        self._pending = None
        self.outcome.setText(text)
        self._say(text)
        self._sync()

    @Slot(str)
    def _on_lost(self, text: str) -> None:
        """The child died or hung: the window keeps the last state it received."""
        pending, self._pending = self._pending, None
        if pending == "reset":
            self.reset()
            return
        training = self.training
        if training is not None:
            self._show_current()
            self._place_slider(training.step)
            text += (f"; the window keeps step {training.state_step}, the last state it "
                     "received (Start begins a new run from there)")
        self.outcome.setText(text)
        if training is not None:
            self._say_after_views(text)
        else:
            self._say(text)
        self._sync()

    # the stepping view at a step
    def _show_current(self) -> None:
        """Parameters after the last step, and the sample the next step will train on: the
        session has them now, the views show them in a turn after this one."""
        training = self.training
        if training is None:
            return
        scratch, theirs = training.params()
        sample = None
        if training.state_step < training.schedule.total:
            sample = int(training.schedule.batch(training.state_step + 1)[0])
        session = self.model.session
        # the views refresh in a turn of their own: with the computing, a run's end held the
        # event loop 10-18 ms
        session.set_params(scratch, theirs, training.buffers(), sample, announce=False)
        QTimer.singleShot(0, self, lambda: session.announce(NETWORK))

    def _say_after_views(self, text: str) -> None:
        """Say `text` once the views have shown what `_show_current` gave them (in the order
        of the turns it asked for): they would put the stage's meaning over it."""
        QTimer.singleShot(0, self, lambda: self._say(text))

    def _show_step(self, step: int) -> None:
        """The parameters before step `step` and its sample: stepping shows that very step.
        The state comes from the child: at once when it sent it with a breakpoint, else when
        it answers."""
        training = self.training
        broke = training.broke_from
        if broke is not None and broke[0] == step - 1:
            self._show_state(step, broke[1])
            return
        self._travel_to = step      # first: the answer may come within the call
        if not self.controller.travel(step - 1):
            self._travel_to = None
            self._say("time travel needs the training process, which has stopped; "
                      "Start begins a new run")

    def _show_state(self, step: int, state: State) -> None:
        self.model.session.set_params(*state, int(self.training.schedule.batch(step)[0]))

    def _place_slider(self, maximum: int, value: int | None = None) -> None:
        """The slider over steps 1..maximum (at `value`), set by the panel: no travel."""
        self._placing = True
        try:
            self.slider.setMaximum(max(maximum, 1))
            if value is not None:
                self.slider.setValue(value)
        finally:
            self._placing = False

    @Slot(int)
    def _slider_moved(self, _step: int) -> None:
        """A key or a click moved the slider: travel there once it rests (a drag travels
        when the handle is let go)."""
        if not self._placing and not self.slider.isSliderDown():
            self._travel_soon.start()

    @Slot()
    def _travel(self) -> None:
        self._travel_soon.stop()
        if self.training is not None and not self.controller.running:
            self._show_step(self.slider.value())

    @Slot(int, object)
    def _on_travelled(self, before: int, state: State) -> None:
        step = self._travel_to
        if step is None or step != before + 1 or self.controller.running:
            return    # a slider moved on since, or a run started: that answer is old
        self._travel_to = None
        self._show_state(step, state)
        self._say(f"time travel: before step {step}")

    @Slot(int)
    def _slider_label(self, step: int) -> None:
        training = self.training
        if training is None or step > training.step:
            return
        epoch, _ = training.schedule.place(step)
        sample = int(training.schedule.batch(step)[0]) + 1
        self.slider_label.setText(f"Time travel: step {step} (epoch {epoch}, sample {sample})")

    def _smaller_lr(self) -> None:
        try:
            lr = float(self.lr.text())
        except ValueError:
            return
        self.reset()
        self.lr.setText(f"{lr / 10:g}")
        self._say(f"learning rate now {lr / 10:g}; press Start")

    @Slot()
    def _push_breakpoints(self) -> None:
        self.controller.set_breakpoints(self.breakpoints())

    @Slot()
    def _on_network(self) -> None:
        # a new network or mistake (not new parameters from this run) makes the run meaningless
        training = self.training
        if training is not None and not self.controller.running and (
                training.spec != self.model.session.spec
                or training.data is not self.model.session.data
                or training.mistake != self.model.session.mistake):
            self._drop_run()

    def _sync(self, *_) -> None:
        running = self.controller.running
        has_run = self.training is not None
        if has_run and not running:       # a stopped run ends where it is: "step N of N"
            self.progress.setRange(0, max(self.training.total, 1))
            self.progress.setValue(self.training.step)
        # after a finished or stopped run, Start and Step begin a new one from where it ended
        self.buttons["Start"].setEnabled(not running)
        self.buttons["Step"].setEnabled(not running)
        self.buttons["Pause"].setEnabled(running)
        self.buttons["Stop"].setEnabled(has_run and not self.training.done)
        self.buttons["Reset"].setEnabled(has_run)
        for field in (self.lr, self.epochs, self.batch, self.shuffle, self.seed):
            field.setEnabled(not has_run or (self.training.done and not running))
        self.slider.setEnabled(has_run and not running)

    def _say(self, text: str) -> None:
        self.message.emit(text)

    def shutdown(self) -> None:
        self.controller.shutdown()


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setToolTip(tip)
    return box
