"""The status bar: which sample, which stage, how well the engines agree on it, and what is
happening (the stage's meaning, or a message such as a computation under way)."""

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from gui.colors import GRADES, grade_text
from gui.numbers import digits_text
from gui.session_model import SessionModel
from gui.stepping.formula import describe, plain_symbol
from gui.stepping.pending import look_style, torch_mark


class StatusBar(QStatusBar):
    """Permanent fields for sample, stage and agreement; `say` shows what is happening."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.activity = QLabel()
        self.sample = QLabel()
        self.stage = QLabel()
        self.agreement = QLabel()
        self.activity.setToolTip("What the current stage computes")
        self.sample.setToolTip("The current sample, counted from 1")
        self.stage.setToolTip("The current stage of this sample")
        self.agreement.setToolTip("How well scratch agrees with torch on this stage")
        # fixed minimum widths: a minimum that followed the text would make the window's
        # minimum size change with every step
        fonts = self.fontMetrics()
        for label, widest in ((self.activity, "Forward: the output"),
                              (self.sample, "Sample 9999 of 9999"),
                              (self.stage, "Stage 99 of 99: ∂L/∂w₉"),
                              (self.agreement, "≈ acceptable, 16.0 digits")):
            label.setMinimumWidth(fonts.horizontalAdvance(widest) + 12)
        self.addWidget(self.activity, 1)
        self.setSizeGripEnabled(False)  # it appears on show and would widen the minimum again
        for label in (self.sample, self.stage, self.agreement):
            self.addPermanentWidget(label)
        model.stageChanged.connect(self._show)
        self._show()

    def say(self, message: str) -> None:
        """Show `message` as what is happening; an empty one goes back to the stage's meaning."""
        if message:
            self.activity.setText(message)
        else:
            self._show()

    def say_now(self, message: str) -> None:
        """`say`, painted at once: the message of a long computation about to hold the GUI
        thread. (A repaint costs a whole frame: not for messages of work done elsewhere.)"""
        self.say(message)
        if message:
            self.repaint()

    def _show(self) -> None:
        session = self._model.session
        pair = session.stage
        mark = torch_mark(session)
        look = mark.look if pair.pending else GRADES[pair.grade]
        self.activity.setText(describe(pair.scratch.info))
        self.sample.setText(f"Sample {session.sample_index + 1} of {session.n_samples}")
        self.stage.setText(f"Stage {session.stage_index + 1} of {len(session.pairs)}: "
                           f"{plain_symbol(pair.scratch.info.symbol)}")
        self.agreement.setText(mark.text if pair.pending else
                               f"{grade_text(pair.grade, session.spec.dtype)}, "
                               f"{digits_text(pair.comparison.digits)} digits")
        self.agreement.setStyleSheet(f"{look_style(look)}; padding: 0 4px")
