"""Training in the window: the training panel and the live plots, each in a dock, wired to each
other and to the session. The main window only adds these docks and shuts them down on close."""

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

from engine.train.remote import RemoteRun
from gui.session_model import SessionModel
from gui.training.panel import TrainingPanel
from gui.training.plots import TrainingPlots

PLOTS_SHARE = 0.4   # of the window's height the live plots take when they appear


class TrainingDocks(QObject):
    """The panel (right, beside the sample) and the plots (bottom) of `window`, and
    `train_action` (Ctrl+T), which starts, resumes or pauses the run from anywhere in it."""

    def __init__(self, window: QMainWindow, model: SessionModel):
        super().__init__(window)
        self.model = model
        self.panel = TrainingPanel(model)
        self.plots = TrainingPlots()
        self.panel_dock = _dock(window, "Training", "training_dock", self.panel,
                                "SGD of both engines in lockstep: settings, breakpoints, "
                                "controls and time travel")
        self.plots_dock = _dock(window, "Live plots", "plots_dock", self.plots,
                                "Loss, gradient differences, drift, output surface and "
                                "heatmaps, live while training")
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel_dock)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.plots_dock)
        # the explorer keeps the whole window until a run starts; then the plots show
        self.plots_dock.hide()
        self.train_action = QAction("Start or pause &training", window)
        self.train_action.setShortcut(QKeySequence("Ctrl+T"))
        self.train_action.setToolTip("Start, resume or pause the training run (Ctrl+T)")
        self.train_action.triggered.connect(self._start_or_pause)
        window.addAction(self.train_action)   # the shortcut works wherever the focus is

        controller = self.panel.controller
        controller.records.connect(self.plots.add_records)
        controller.snapshot.connect(self._on_snapshot)
        self.panel.runReset.connect(self._on_run_reset)
        self.panel.threshold_on.toggled.connect(self._push_threshold)
        self.panel.threshold.valueChanged.connect(self._push_threshold)
        model.networkChanged.connect(self._show_session)
        model.sampleChanged.connect(self._show_session)
        self.plots.reset(model.session.spec, self._threshold())
        self._show_session()

    @Slot()
    def _start_or_pause(self) -> None:
        if self.panel.controller.running:
            self.panel.controller.pause()
            return
        self.panel_dock.show()
        self.panel_dock.raise_()
        self.panel.start(0)

    def _threshold(self) -> float | None:
        return self.panel.threshold.value() if self.panel.threshold_on.isChecked() else None

    @Slot()
    def _push_threshold(self, *_) -> None:
        self.plots.set_threshold(self._threshold())

    @Slot(object)
    def _on_run_reset(self, training: RemoteRun | None) -> None:
        self.plots.reset(self.model.session.spec, self._threshold())
        self._show_session()
        if training is not None and self.plots_dock.isHidden():
            # shown, painted and redrawn over a few turns (all at once, they held the event
            # loop 60-130 ms) while the run's first steps come; the rest of the window, laid
            # out anew, repaints in a turn of its own too
            rest = self.parent().centralWidget()
            self.plots.reveal(lambda: (rest.setUpdatesEnabled(False), self.show_plots()),
                              lambda: rest.setUpdatesEnabled(True))
        else:
            self.plots.redraw()

    def show_plots(self) -> None:
        """Show the plots dock at a readable height: PLOTS_SHARE of the window's, at least
        its plots' minimum (as a run's start does; a screenshot after training too)."""
        window = self.parent()
        self.plots_dock.show()
        window.resizeDocks([self.plots_dock], [int(window.height() * PLOTS_SHARE)],
                           Qt.Orientation.Vertical)

    @Slot(object)
    def _on_snapshot(self, snapshot: tuple) -> None:
        _, scratch, _ = snapshot
        session = self.model.session
        self.plots.set_state(session.spec, scratch, session.data, session.sample_index)

    @Slot()
    def _show_session(self) -> None:
        if self.panel.controller.running:
            return  # the child's snapshots are newer than the session
        session = self.model.session
        self.plots.set_state(session.spec, session.params, session.data, session.sample_index)

    def shutdown(self) -> None:
        """Stop a run and end its process (closing the window mid-run)."""
        self.panel.shutdown()


def _dock(window: QMainWindow, title: str, name: str, widget: QWidget, tip: str) -> QDockWidget:
    """A dock holding `widget` in a scroll area, so the dock never forces the window's size."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(widget)
    scroll.setMinimumSize(120, 80)
    dock.setWidget(scroll)
    dock.setToolTip(tip)
    return dock
