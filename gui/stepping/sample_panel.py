"""The current sample: which one of how many (counted from 1, as people count), its input x
and label y, and each engine's prediction and loss with their difference."""

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGridLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.session import SCRATCH
from gui.numbers import VECTOR_LIMIT, exact, short, vector_text
from gui.session_model import SessionModel
from gui.stepping.pending import torch_mark
from gui.stepping.stage_values import element_diffs, whose

ENGINES = ("scratch", "torch")


def _value_label(tip: str = "") -> QLabel:
    label = QLabel()
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    label.setToolTip(tip)
    return label


class SamplePanel(QWidget):
    """See the module docstring. The spin box moves to another sample."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.index = QSpinBox()
        self.index.setToolTip("The current sample, from 1 (PgUp / PgDown to move)")
        self.index.setKeyboardTracking(False)
        self.index.valueChanged.connect(self._index_chosen)
        self.count = QLabel()
        self.network = _value_label("The network: sizes, activations, loss, dtype, layout")
        self.data = _value_label("Where the samples come from")
        self.x = _value_label("The sample's input, given to both engines")
        self.y = _value_label("The sample's label (target)")
        self.readings: dict[tuple[str, str], QLabel] = {}

        where = QWidget()
        row = QGridLayout(where)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.index, 0, 0)
        row.addWidget(self.count, 0, 1)
        row.setColumnStretch(2, 1)

        form = QFormLayout()
        form.addRow("Sample", where)
        form.addRow("Network", self.network)
        form.addRow("Data", self.data)
        form.addRow("x", self.x)
        form.addRow("label y", self.y)

        # engines as rows, quantities as columns: two columns of numbers fit a narrow dock
        engines = QGridLayout()
        quantities = [("y_hat", "prediction ŷ", "Each engine's output for this sample"),
                      ("loss", "loss L", "Each engine's loss for this sample")]
        for column, (key, name, tip) in enumerate(quantities, start=1):
            engines.addWidget(QLabel(f"<b>{name}</b>"), 0, column)
            for row, part in enumerate((*ENGINES, "diff"), start=1):
                label = _value_label(tip)
                label.setAlignment(Qt.AlignmentFlag.AlignTop)
                self.readings[key, part] = label
                engines.addWidget(label, row, column)
        self.ours_title = QLabel("scratch")
        for row, title in enumerate((self.ours_title, QLabel("torch"), QLabel("|diff|")),
                                    start=1):
            engines.addWidget(title, row, 0, Qt.AlignmentFlag.AlignTop)
        engines.setColumnStretch(1, 1)
        engines.setColumnStretch(2, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(6)
        layout.addLayout(engines)
        layout.addStretch(1)
        # an explicit minimum: one that followed the sample's numbers would resize the window
        self.setMinimumSize(240, 160)
        model.dataChanged.connect(self._data_changed)
        model.sampleChanged.connect(self._show)
        self._data_changed()

    def reading(self, key: str, part: str) -> str:
        """The text shown for `key` ("y_hat" or "loss") and `part` (scratch, torch, diff)."""
        return self.readings[key, part].text()

    def _data_changed(self) -> None:
        session = self._model.session
        self.index.blockSignals(True)
        self.index.setRange(1, session.n_samples)
        self.index.blockSignals(False)
        self.count.setText(f"of {session.n_samples}")
        # zero-width spaces let a long list of activations wrap in a narrow dock
        self.network.setText(session.spec.describe().replace("/", "/\u200b"))
        self.data.setText(session.data.name)
        self._show()

    def _show(self) -> None:
        session = self._model.session
        self.index.blockSignals(True)
        self.index.setValue(session.sample_index + 1)
        self.index.blockSignals(False)
        x, y = session.sample
        self.x.setText(vector_text(x, digits="exact"))
        self.y.setText(vector_text(y, digits="exact"))
        self.ours_title.setText(session.ours_name)
        for key in ("y_hat", "loss"):
            ours, theirs = session.value(key, "scratch"), session.value(key, "torch")
            stand_in = session.checking_yours and whose(session, key) == SCRATCH
            diff = None if theirs is None else element_diffs(ours, theirs)[0]
            for part, value in zip((*ENGINES, "diff"), (ours, theirs, diff), strict=True):
                if value is None:
                    self.readings[key, part].setText(torch_mark(session).text
                                                     if part == "torch" else "…")
                    continue
                # one value per line: the three columns stay aligned in a narrow dock
                flat = np.ravel(value)
                fmt = short if part == "diff" else exact
                text = "\n".join(fmt(v) for v in flat[:VECTOR_LIMIT])
                if flat.size > VECTOR_LIMIT:
                    text += f"\n… {flat.size} values"
                if stand_in and part == ENGINES[0]:
                    text += "\n(scratch's: not in your code)"
                self.readings[key, part].setText(text)

    def _index_chosen(self, value: int) -> None:
        self._model.session.go_to_sample(value - 1)
