"""The network dialog: pick a preset or build a network (sizes, an activation per layer, loss,
dtype, layout, seed) and its data (the regression set, the classification set or a CSV file).

Every check is the engine's: the dialog builds a NetworkSpec and, for a CSV, loads the file, and
shows the message of the UserInputError it gets inline, with OK disabled until it is fixed."""

import os
import re
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.budget import check_network
from engine.errors import UserInputError, printable
from engine.files.datasets import (
    DEFAULT_SAMPLES,
    Dataset,
    classification_set,
    load_csv,
    regression_set,
)
from engine.net.params import Params, init_params
from engine.net.spec import ACTIVATIONS, DTYPES, LAYOUTS, LOSSES, MAX_LAYERS, PRESETS, NetworkSpec
from gui.files.file_dialogs import DATA_FILTER, ask_open_file
from gui.session_model import SessionModel

CUSTOM = "Custom"
REGRESSION, CLASSIFICATION, CSV = "regression", "classification", "csv"
MAX_SAMPLES = 100_000
LAYOUT_TEXT = {"out_in": "out_in: W is (out, in), z = x·Wᵀ + b (torch)",
               "in_out": "in_out: W is (in, out), z = x·W + b"}
_SEPARATORS = re.compile(r"[\s,;]+")


class SizesError(UserInputError):
    """Sizes text that is not a list of whole numbers."""


def parse_sizes(text: str) -> tuple[int, ...]:
    """"2, 10, 10, 1" (or with spaces, or in brackets) as (2, 10, 10, 1). Whether the sizes make
    a network is NetworkSpec's to say."""
    tokens = [t for t in _SEPARATORS.split(text.strip().strip("[]()")) if t]
    if not tokens:
        raise SizesError("write the layer sizes from input to output, such as 2, 10, 10, 1")
    sizes = []
    for token in tokens:
        if not re.fullmatch(r"[+-]?\d+", token):
            raise SizesError(f"{token!r} is not a whole number; write the layer sizes from "
                             "input to output, such as 2, 10, 10, 1")
        sizes.append(int(token))
    return tuple(sizes)


def _fit_activations(old: list[str], n: int) -> list[str]:
    """`old` grown or shrunk to `n` layers: the output layer keeps its activation and new hidden
    layers copy the last hidden one."""
    if not old:
        return [*["sigmoid"] * (n - 1), "identity"]
    if n <= len(old):
        return [*old[:n - 1], old[-1]]
    hidden = old[-2] if len(old) > 1 else "sigmoid"
    return [*old[:-1], *[hidden] * (n - len(old)), old[-1]]


class NetworkDialog(QDialog):
    """Choose a network and its data. After `exec()` returns Accepted, `result_network()` gives
    (spec, params, dataset) and `seed()` the seed both were made from."""

    def __init__(self, spec: NetworkSpec, seed: int, parent: QWidget | None = None,
                 n_samples: int = DEFAULT_SAMPLES):
        super().__init__(parent)
        self.setWindowTitle("Network and data")
        self._activation_boxes: list[QComboBox] = []
        self._activation_labels: list[QLabel] = []
        self._csv_cache: tuple[tuple, Dataset | str] | None = None
        self._spec: NetworkSpec | None = None
        self._data: Dataset | None = None
        self._data_chosen = False   # until the user picks a data source it follows the loss
        # the activations chosen, hidden layers by index and the output's: rows that a typo in
        # the sizes took away come back as they were
        self._hidden: list[str] = []
        self._output = "identity"
        self._build(n_samples, seed)
        self._show_spec(spec)
        self._select_default_data()
        self._validate()

    # layout
    def _build(self, n_samples: int, seed: int) -> None:
        self.preset_box = QComboBox()
        self.preset_box.addItem(CUSTOM)
        for name, spec in PRESETS.items():
            self.preset_box.addItem(name)
            self.preset_box.setItemData(self.preset_box.count() - 1, spec.describe(),
                                        Qt.ItemDataRole.ToolTipRole)
        self.preset_box.setToolTip("A network the seeds use; editing any field makes it custom")
        self.preset_box.currentTextChanged.connect(self._on_preset)

        self.sizes_edit = QLineEdit()
        self.sizes_edit.setPlaceholderText("2, 10, 10, 1")
        self.sizes_edit.setToolTip("Layer widths from input to output, separated by commas")
        self.sizes_edit.textChanged.connect(self._on_sizes)
        self.activations_form = QFormLayout()
        self.activations_form.setContentsMargins(0, 0, 0, 0)
        self.loss_box = self._combo(LOSSES, "The loss of one sample")
        self.dtype_box = self._combo(DTYPES, "The floating-point type both engines compute in")
        self.layout_box = QComboBox()
        for name in LAYOUTS:
            self.layout_box.addItem(LAYOUT_TEXT.get(name, name), name)
        self.layout_box.setToolTip("How weights are shown and stored; the maths is the same")
        self.layout_box.currentIndexChanged.connect(self._on_field)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.seed_box.setValue(seed)
        self.seed_box.setToolTip("Seed of the initial parameters and of a generated data set")

        network = QGroupBox("Network")
        form = QFormLayout(network)
        form.addRow("Preset:", self.preset_box)
        form.addRow("Layer sizes:", self.sizes_edit)
        form.addRow("Activations:", self._wrap(self.activations_form))
        form.addRow("Loss:", self.loss_box)
        form.addRow("dtype:", self.dtype_box)
        form.addRow("Weight layout:", self.layout_box)
        form.addRow("Seed:", self.seed_box)

        self.regression_button = QRadioButton("Regression set: x ~ U[0, 1], y = mean(x²)")
        self.classification_button = QRadioButton(
            "Classification set: x ~ U[-1, 1], y = [x1·x2·… > 0]")
        self.csv_button = QRadioButton("CSV file (inputs, then targets, one sample a row):")
        self.source_group = QButtonGroup(self)
        for button in (self.regression_button, self.classification_button, self.csv_button):
            self.source_group.addButton(button)
        self.source_group.buttonClicked.connect(self._on_source_clicked)
        self.csv_edit = QLineEdit()
        self.csv_edit.setPlaceholderText("path to a .csv file")
        self.csv_edit.textChanged.connect(self._on_field)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip("Choose a CSV file")
        self.browse_button.clicked.connect(self._browse)
        self.samples_box = QSpinBox()
        self.samples_box.setRange(1, MAX_SAMPLES)
        self.samples_box.setValue(min(max(n_samples, 1), MAX_SAMPLES))
        self.samples_box.setToolTip("How many samples the generated set has")
        self.samples_box.valueChanged.connect(self._on_field)

        data = QGroupBox("Data")
        data_layout = QVBoxLayout(data)
        data_layout.addWidget(self.regression_button)
        data_layout.addWidget(self.classification_button)
        data_layout.addWidget(self.csv_button)
        csv_row = QHBoxLayout()
        csv_row.setContentsMargins(24, 0, 0, 0)
        csv_row.addWidget(self.csv_edit, 1)
        csv_row.addWidget(self.browse_button)
        data_layout.addLayout(csv_row)
        samples_row = QFormLayout()
        samples_row.addRow("Samples (generated sets):", self.samples_box)
        data_layout.addLayout(samples_row)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(network)
        layout.addWidget(data)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

    def _combo(self, names, tip: str) -> QComboBox:
        box = QComboBox()
        box.addItems(list(names))
        box.setToolTip(tip)
        box.currentIndexChanged.connect(self._on_field)
        return box

    @staticmethod
    def _wrap(layout: QFormLayout) -> QWidget:
        widget = QWidget()
        widget.setLayout(layout)
        return widget

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # filling the fields
    def _show_spec(self, spec: NetworkSpec) -> None:
        """Put `spec` in the fields without each change re-validating half-built input."""
        widgets = (self.sizes_edit, self.loss_box, self.dtype_box, self.layout_box)
        for widget in widgets:
            widget.blockSignals(True)
        self.sizes_edit.setText(", ".join(map(str, spec.sizes)))
        self._hidden, self._output = list(spec.activations[:-1]), spec.activations[-1]
        self._set_activation_rows(spec.sizes, list(spec.activations))
        self.loss_box.setCurrentText(spec.loss)
        self.dtype_box.setCurrentText(spec.dtype)
        self.layout_box.setCurrentIndex(self.layout_box.findData(spec.layout))
        for widget in widgets:
            widget.blockSignals(False)
        self._sync_preset(spec)

    def _set_activation_rows(self, sizes: tuple[int, ...], activations: list[str]) -> None:
        """One labelled combo per layer; rows are added or removed to match `sizes`."""
        n = len(sizes) - 1
        while len(self._activation_boxes) > n:
            self.activations_form.removeRow(len(self._activation_boxes) - 1)
            self._activation_boxes.pop()
            self._activation_labels.pop()
        while len(self._activation_boxes) < n:
            box = QComboBox()
            box.addItems(list(ACTIVATIONS))
            box.currentIndexChanged.connect(self._on_field)
            label = QLabel()
            self._activation_boxes.append(box)
            self._activation_labels.append(label)
            self.activations_form.addRow(label, box)
        for i, (box, label, name) in enumerate(zip(self._activation_boxes,
                                                   self._activation_labels, activations,
                                                   strict=True)):
            layer = i + 1
            what = "output" if layer == n else f"layer {layer}"
            label.setText(f"{what} ({sizes[i]} → {sizes[i + 1]}):")
            box.setToolTip(f"Activation of {what}")
            box.blockSignals(True)
            box.setCurrentText(name)
            box.blockSignals(False)

    def _sync_preset(self, spec: NetworkSpec | None) -> None:
        name = next((n for n, p in PRESETS.items() if p == spec), CUSTOM)
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentText(name)
        self.preset_box.blockSignals(False)

    def _select_default_data(self) -> None:
        loss = self.loss_box.currentText()
        button = self.classification_button if loss == "bce" else self.regression_button
        button.setChecked(True)

    # reactions
    @Slot(str)
    def _on_preset(self, name: str) -> None:
        if name in PRESETS:
            self._show_spec(PRESETS[name])
            if self.source() != CSV:   # a preset brings the data its loss needs
                self._data_chosen = False
                self._select_default_data()
            self._validate()

    @Slot()
    def _on_sizes(self) -> None:
        try:
            sizes = parse_sizes(self.sizes_edit.text())
        except SizesError:
            sizes = ()
        if 2 <= len(sizes) <= MAX_LAYERS + 1:
            self._set_activation_rows(sizes, self._remembered(len(sizes) - 1))
        self._on_field()

    def _remembered(self, n: int) -> list[str]:
        """Activations for `n` layers from those chosen so far: each hidden layer's own where
        it had one, else the last hidden one's; the output's."""
        hidden = _fit_activations([*self._hidden, self._output], n)[:-1]
        hidden[:len(self._hidden)] = self._hidden[:len(hidden)]
        return [*hidden, self._output]

    def _remember(self) -> None:
        chosen = self._activations()
        if chosen:
            self._hidden[:len(chosen) - 1] = chosen[:-1]
            self._output = chosen[-1]

    @Slot()
    def _on_field(self) -> None:
        self._remember()
        if not self._data_chosen and self.source() != CSV:
            self._select_default_data()
        self._validate()

    @Slot()
    def _on_source_clicked(self) -> None:
        self._data_chosen = True
        self._validate()

    @Slot()
    def _browse(self) -> None:
        path = self._ask_open_file("Open data", DATA_FILTER)
        if path:
            self.csv_button.setChecked(True)
            self._data_chosen = True
            self.csv_edit.setText(path)
            self._validate()

    def _ask_open_file(self, title: str, file_filter: str) -> str | None:
        return ask_open_file(self, title, file_filter)

    # reading the fields
    def _activations(self) -> list[str]:
        return [box.currentText() for box in self._activation_boxes]

    def source(self) -> str:
        """regression, classification or csv."""
        if self.csv_button.isChecked():
            return CSV
        return CLASSIFICATION if self.classification_button.isChecked() else REGRESSION

    def seed(self) -> int:
        return self.seed_box.value()

    def _build_spec(self) -> NetworkSpec:
        return NetworkSpec(parse_sizes(self.sizes_edit.text()), tuple(self._activations()),
                           self.loss_box.currentText(), self.dtype_box.currentText(),
                           self.layout_box.currentData())

    def _csv_data(self, spec: NetworkSpec) -> Dataset:
        """The CSV for `spec`, read again only when the path, the file or the spec changed."""
        path = self.csv_edit.text().strip()
        if not path:
            raise UserInputError("choose a CSV file, or a generated data set")
        try:
            stat = os.stat(path)
            key = (path, stat.st_mtime_ns, stat.st_size, spec)
        except OSError:
            key = (path, None, None, spec)
        if self._csv_cache is None or self._csv_cache[0] != key:
            try:
                self._csv_cache = (key, load_csv(path, spec))
            except UserInputError as e:
                self._csv_cache = (key, str(e))
        result = self._csv_cache[1]
        if isinstance(result, str):
            raise UserInputError(result)
        return result

    def _validate(self) -> None:
        self.csv_edit.setEnabled(self.source() == CSV)
        self.samples_box.setEnabled(self.source() != CSV)
        try:
            spec = self._build_spec()
            check_network(spec)    # the sizes allow 1.7 billion parameters: more than memory
            data = self._csv_data(spec) if self.source() == CSV else None
        except UserInputError as e:
            self._spec, self._data = None, None
            self._sync_preset(None)
            self._show_message(str(e), error=True)
            return
        self._spec, self._data = spec, data
        self._sync_preset(spec)
        n_params = sum(int(np.prod(spec.param_shape(n))) for n in spec.param_names)
        n_samples = len(data) if data is not None else self.samples_box.value()
        self._show_message(f"{spec.describe()}: {n_params} parameters, {n_samples} samples",
                           error=False)

    def _show_message(self, text: str, error: bool) -> None:
        self.message.setText(("⚠ " if error else "") + printable(text))
        self.message.setStyleSheet("color: #b00020;" if error else "")
        self.message.setProperty("error", error)
        self.ok_button.setEnabled(not error)

    def error(self) -> str | None:
        """The message shown for the current input, or None when it is valid."""
        return self.message.text().removeprefix("⚠ ") if self.message.property("error") \
            else None

    # the answer
    def accept(self) -> None:
        if self._spec is not None:
            super().accept()

    def result_network(self) -> tuple[NetworkSpec, Params, Dataset]:
        """(spec, parameters initialised from the seed, the chosen data in the spec's dtype)."""
        if self._spec is None:
            raise RuntimeError("result_network() needs valid input")
        spec, seed = self._spec, self.seed()
        if self.source() == CSV:
            data = self._data
        else:
            make = classification_set if self.source() == CLASSIFICATION else regression_set
            data = make(spec, self.samples_box.value(), seed)
        return spec, init_params(spec, seed), data


def choose_network(parent: QWidget | None, model: SessionModel,
                   confirm: Callable[[], bool] | None = None) -> bool:
    """Run the dialog on the session's network and apply the choice (seed, network, params,
    data). True when the user accepted, and `confirm` (asked once they have) agreed."""
    session = model.session
    dialog = NetworkDialog(session.spec, session.seed, parent, n_samples=session.n_samples)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        if confirm is not None and not confirm():
            return False
        spec, params, data = dialog.result_network()
        session.seed = dialog.seed()
        session.set_network(spec, params, data)
        return True
    finally:
        dialog.deleteLater()
