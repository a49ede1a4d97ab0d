"""The Your code panel: what the last check of the user's code found, in their terms. A verdict
line (agrees, or where it first disagrees and which mistake makes it), the file watched, and
below, the table `app.py check` prints, or the traceback of their code when it could not run,
with what it printed. Their code's errors are shown here, never in a dialog."""

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.check.rounding import EXACT, FLAGGED
from engine.session import UNCHECKED
from engine.usercode import Checked, report_text, verdict_line
from gui.colors import GRADES
from gui.stepping.pending import look_style

IDLE, RUNNING, AGREES, DISAGREES, FAILED = "idle", "running", "agrees", "disagrees", "failed"
_LOOKS = {AGREES: GRADES[EXACT], DISAGREES: GRADES[FLAGGED], FAILED: GRADES[FLAGGED],
          RUNNING: GRADES[UNCHECKED], IDLE: GRADES[UNCHECKED]}
IDLE_TEXT = ("No code of yours is being checked. File > Check my code… (Ctrl+K) runs your "
             "gradients(params, x, y) on every sample beside torch.")


class CodePanel(QWidget):
    """See the module docstring. Its buttons are public for the controller to connect."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = IDLE
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setStyleSheet("color: #546e7a")
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Your gradients beside torch's, parameter by parameter "
                                       "and sample by sample")
        self.again_button = QPushButton("Run again")
        self.again_button.setToolTip("Check the file again now (a save does it too)")
        self.stop_button = QPushButton("Stop checking")
        self.stop_button.setToolTip("Give the scratch engine its place back")
        buttons = QHBoxLayout()
        for button in (self.compare_button, self.again_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.where)
        layout.addLayout(buttons)
        layout.addWidget(self.text, 1)
        self.setMinimumSize(240, 160)
        self.show_idle()

    def _set(self, state: str, verdict: str, text: str) -> None:
        self.state = state
        self.verdict.setText(verdict)
        self.verdict.setStyleSheet(f"{look_style(_LOOKS[state])}; padding: 4px; "
                                   "font-weight: bold")
        self.text.setPlainText(text)
        self.compare_button.setEnabled(state in (AGREES, DISAGREES))
        self.again_button.setEnabled(state != IDLE)
        self.stop_button.setEnabled(state != IDLE)

    def show_idle(self) -> None:
        self.where.setText("")
        self._set(IDLE, "", IDLE_TEXT)

    def show_watching(self, path: str, timeout: float) -> None:
        self.where.setText(f"Watching {path}: each save checks it again. It runs in a "
                           f"separate process, at most {timeout:g} s a call.")

    def show_running(self, label: str, samples: int) -> None:
        """A run has started; the last result stays below until the new one comes."""
        self._set(RUNNING, f"… running {label} on {samples} samples", self.text.toPlainText())

    def show_checked(self, checked: Checked) -> None:
        agree = checked.comparison.report.agree
        mark = "✓" if agree else "✗"
        text = report_text(checked)
        if checked.run.output.strip():
            text = f"printed by your code:\n{checked.run.output.rstrip()}\n\n{text}"
        self._set(AGREES if agree else DISAGREES, f"{mark} {verdict_line(checked)}", text)

    def show_failed(self, label: str, message: str, output: str) -> None:
        """The user's code could not be run: their traceback (their own code: showing it is
        right), and what it printed before."""
        text = message
        if output.strip():
            text += f"\n\nprinted by your code:\n{output.rstrip()}"
        self._set(FAILED, f"✗ {label} could not be run: {message.strip().splitlines()[-1]}",
                  text)
