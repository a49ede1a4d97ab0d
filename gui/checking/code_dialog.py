"""The dialog of File > Check my code…: which file and function to run, and the time limit of
a call, under a plain statement of what running it means (this is the one place the explorer
runs code, and only the file chosen here)."""

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.usercode import DEFAULT_FUNCTION, MEMORY_MB, TIMEOUT
from gui.files.file_dialogs import ask_open_file

PYTHON_FILTER = "Python files (*.py);;All files (*)"
WHAT_RUNS = (
    "<p>The explorer will <b>run the Python file you choose</b>, and only it: its function "
    "(<tt>gradients(params, x, y)</tt> unless you name another) on every sample, and "
    "<tt>stages(params, x, y)</tt> too if the file defines it.</p>"
    f"<p>It runs in a separate process, with the time limit below for each call and at most "
    f"{MEMORY_MB:,} MB of memory; what it prints is shown in the Your code panel. Model, data "
    "and gradient files are never run.</p>"
    "<p>While the check is on, your values stand in the scratch engine's place beside torch, "
    "and every save of the file checks it again.</p>")


class CodeDialog(QDialog):
    """Asks for FILE.py, the function's name and the time limit; `path`, `function` and
    `timeout` hold them once accepted."""

    def __init__(self, parent: QWidget | None = None, path: str = "",
                 function: str = DEFAULT_FUNCTION, timeout: float = TIMEOUT):
        super().__init__(parent)
        self.setWindowTitle("Check my code")
        intro = QLabel(WHAT_RUNS)
        intro.setWordWrap(True)
        self.file = QLineEdit(path)
        self.file.setPlaceholderText("my_backprop.py")
        self.file.setToolTip("The Python file with your gradients(params, x, y)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.file, 1)
        row.addWidget(browse)
        self.function_edit = QLineEdit(function)
        self.function_edit.setToolTip("The function to call: gradients unless you named it "
                                      "otherwise")
        self.timeout_box = QDoubleSpinBox()
        self.timeout_box.setRange(0.1, 3600)
        self.timeout_box.setDecimals(1)
        self.timeout_box.setSuffix(" s")
        self.timeout_box.setValue(timeout)
        self.timeout_box.setToolTip("How long one call may take before it is stopped")
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b3261e")
        self.problem.setWordWrap(True)
        self.problem.hide()
        form = QFormLayout()
        form.addRow("File", row)
        form.addRow("Function", self.function_edit)
        form.addRow("Time limit a call", self.timeout_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run my code")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

    @property
    def path(self) -> str:
        return self.file.text().strip()

    @property
    def function(self) -> str:
        return self.function_edit.text().strip() or DEFAULT_FUNCTION

    @property
    def timeout(self) -> float:
        return self.timeout_box.value()

    def accept(self) -> None:
        """Only a file that is there and a function name Python can call: else say which."""
        problem = ""
        if not self.path:
            problem = "Choose the Python file to run."
        elif not Path(self.path).is_file():
            problem = f"{self.path}: no such file."
        elif not self.function.isidentifier():
            problem = f"{self.function!r} is not a function name."
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        if not problem:
            super().accept()

    def _browse(self) -> None:
        chosen = ask_open_file(self, "Check my code: the Python file to run", PYTHON_FILTER)
        if chosen:
            self.file.setText(chosen)
