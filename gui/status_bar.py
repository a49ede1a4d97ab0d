"""The status bar: which sample, which stage, how well the engines agree on it, what is
happening (the stage's meaning, or a message such as a computation under way), and a badge
naming the mistake the scratch engine is made to make, for as long as it makes one."""

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from engine.session import UNCHECKED
from gui.colors import GRADES, grade_text
from gui.numbers import digits_text
from gui.session_model import SessionModel
from gui.stepping.formula import describe, plain_symbol
from gui.stepping.pending import look_style, torch_mark

LAST_STAGE_HINT = " · PgDn: next sample"
MISTAKE_STYLE = ("color: white; background: #b3261e; border-radius: 3px; padding: 0 6px; "
                 "font-weight: bold")


class StatusBar(QStatusBar):
    """Permanent fields for sample, stage and agreement; `say` shows what is happening."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.activity = QLabel()
        self.sample = QLabel()
        self.stage = QLabel()
        self.agreement = QLabel()
        self.mistake = QLabel()
        self.mistake.setStyleSheet(MISTAKE_STYLE)
        self.mistake.setToolTip("The scratch engine makes this mistake on purpose (Tools > "
                                "Inject a mistake > No mistake to stop)")
        self.mistake.hide()
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
        self.addPermanentWidget(self.mistake)
        for label in (self.sample, self.stage, self.agreement):
            self.addPermanentWidget(label)
        model.stageChanged.connect(self._show)
        model.mistakeChanged.connect(self._show_mistake)
        model.networkChanged.connect(self._show_mistake)
        self._show()
        self._show_mistake()

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
        text = describe(pair.scratch.info)
        if session.stage_index == len(session.pairs) - 1 and \
                session.sample_index + 1 < session.n_samples:
            text += LAST_STAGE_HINT    # the pass is done: where to go from here
        self.activity.setText(text)
        self.sample.setText(f"Sample {session.sample_index + 1} of {session.n_samples}")
        self.stage.setText(f"Stage {session.stage_index + 1} of {len(session.pairs)}: "
                           f"{plain_symbol(pair.scratch.info.symbol)}")
        if pair.pending:
            self.agreement.setText(mark.text)
        else:
            grade = grade_text(pair.grade, session.spec.dtype)
            self.agreement.setText(grade if pair.grade == UNCHECKED else
                                   f"{grade}, {digits_text(pair.comparison.digits)} digits")
        self.agreement.setStyleSheet(f"{look_style(look)}; padding: 0 4px")

    def _show_mistake(self) -> None:
        mistake = self._model.session.mistake
        self.mistake.setVisible(mistake is not None)
        if mistake is not None:
            self.mistake.setText(f"Mistake: {mistake.mistake.title}")
