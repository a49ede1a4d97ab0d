"""The comparison of two gradient files: the report per parameter, the verdict with its diagnosis
and notes, and a sample x element heatmap of the relative differences. Clicking a sample makes
it the explorer's current sample when the files were made from the current data."""

import html
import math
import os
import re

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont, QShowEvent, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.check.compare import dtype_digits, elementwise
from engine.check.notation import SUBSCRIPT
from engine.check.report import FileComparison, backward_order, compare_files
from engine.files.gradset import GradientSet, ReadCancelled
from engine.net.spec import NetworkSpec
from gui.files.diff_heatmap import DiffHeatmap
from gui.session_model import SessionModel
from gui.stepping.formula import to_html
from gui.task_runner import TaskProgress, TaskRunner

X_MATCH_RTOL, X_MATCH_ATOL = 1e-5, 1e-7   # files printed with fewer digits still match
DISAGREE_BRUSH = QBrush(QColor(248, 215, 218))
DISAGREE_TEXT, AGREE_TEXT = QColor(150, 0, 20), QColor(0, 110, 40)
PARAM_COLUMNS = ("param", "shape", "max |diff|", "max rel", "digits",
                 "worst (sample: element)", "verdict")
SAMPLE_COLUMNS = ("sample", "max rel", "worst element", "verdict")
# the largest the dialog opens at, and what it leaves of the screen for the title bar and a panel
DEFAULT_SIZE = QSize(1280, 820)
SCREEN_MARGIN = QSize(40, 70)
HEATMAP_MIN_HEIGHT = 180
PARAM_TABLE_MAX_HEIGHT = 300
_ASCII = {v: k for k, v in SUBSCRIPT.items()}
_SUBSCRIPT_RUN = re.compile(f"[{''.join(_ASCII)}]+")
_DELTA = re.compile(r"δ(\d+)")


class CompareDialog(QDialog):
    """Compare gradient files `path_a` and `path_b` (optionally with a model's spec to align
    them), or show a `comparison` made elsewhere (the user's code beside torch). Files are
    read and compared on a worker thread behind a progress dialog that can be cancelled (large
    .dat files take seconds). When the files cannot be read or aligned, a
    message box says why and `ok` is False, as it is when the user cancelled (`cancelled`); the
    dialog is then not meant to be shown. `sampleActivated(index)` (from 0) fires when the user
    clicks a sample in the heatmap or the samples table."""

    sampleActivated = Signal(int)

    def __init__(self, path_a: str | os.PathLike | None = None,
                 path_b: str | os.PathLike | None = None, model: NetworkSpec | None = None,
                 session_model: SessionModel | None = None, parent: QWidget | None = None,
                 comparison: FileComparison | None = None):
        super().__init__(parent)
        self.setWindowTitle("Compare gradient files" if comparison is None else
                            "Compare: your code and torch")
        self.session_model = session_model
        self.error: str | None = None
        self.comparison: FileComparison | None = comparison
        self.cancelled = False
        if comparison is None:   # two files: read and compared behind a progress dialog
            runner = _comparing(parent, path_a, path_b, model)
            self.comparison = runner.run()
            self.cancelled = runner.cancelled
            if runner.error is not None:
                self.error = runner.error
                QMessageBox.warning(parent, "Compare gradient files", self.error)
        if self.comparison is None:
            return
        self._prepare(self.comparison)
        self._build()
        if session_model is not None:
            session_model.networkChanged.connect(self._show_membership)
            session_model.dataChanged.connect(self._show_membership)
        self._show_membership()
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        self.resize(default_size(screen.size()))

    @property
    def ok(self) -> bool:
        return self.comparison is not None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # not the first table: its first cell would look selected
        self.close_button.setFocus()

    # numbers
    def _prepare(self, comparison: FileComparison) -> None:
        """The relative difference of every element of every sample, laid out as the heatmap:
        rows are samples, columns the parameters' elements in order w1, b1, w2, ..."""
        aligned, report = comparison.aligned, comparison.report
        self.names = list(aligned.names)
        self.n_samples = aligned.samples
        rel_blocks, excess_blocks, self.offsets = [], [], [0]
        for name in self.names:
            a = aligned.a[name].reshape(self.n_samples, -1).astype(np.float64)
            b = aligned.b[name].reshape(self.n_samples, -1).astype(np.float64)
            rel, excess = _relative(a, b, report.rtol, report.atol)
            if report.params[name].within_rounding:
                # rounding explains these differences: they count as agreeing, as in the report
                excess = np.minimum(excess, 1.0)
            rel_blocks.append(rel)
            excess_blocks.append(excess)
            self.offsets.append(self.offsets[-1] + a.shape[1])
        self.rel = np.concatenate(rel_blocks, axis=1).astype(np.float32)
        excess = np.concatenate(excess_blocks, axis=1)
        self.sample_agree = np.all(excess <= 1, axis=1)
        self.sample_worst = np.argmax(self.rel, axis=1)
        wide = np.result_type(*(v.dtype for v in aligned.a.values()),
                              *(v.dtype for v in aligned.b.values()), np.float32)
        # one rounding step of the dtype, in tolerances, sits just above the floor
        one_ulp = 10.0 ** -dtype_digits(wide) / report.rtol if report.rtol > 0 else 1e-3
        self.floor = min(-1, math.floor(math.log10(one_ulp)) - 1)
        with np.errstate(divide="ignore"):
            self.heat = np.clip(np.log10(excess), self.floor, -self.floor).astype(np.float32)
        self.excess = excess.astype(np.float32)

    def column(self, name: str, element: tuple[int, ...]) -> int:
        """The heatmap column of `name`'s `element` (numpy index)."""
        shape = self.comparison.aligned.a[name].shape[1:]
        flat = int(np.ravel_multi_index(element, shape)) if shape else 0
        return self.offsets[self.names.index(name)] + flat

    def element_at(self, column: int) -> tuple[str, tuple[int, ...]]:
        """The parameter name and element index of heatmap `column`."""
        i = int(np.searchsorted(self.offsets, column, side="right")) - 1
        name = self.names[i]
        shape = self.comparison.aligned.a[name].shape[1:]
        index = np.unravel_index(column - self.offsets[i], shape) if shape else ()
        return name, tuple(int(k) for k in index)

    # widgets
    def _build(self) -> None:
        """Verdict and diagnosis on top, where they are read first, beside the parameter table;
        the notes under them; the heatmap and the samples share what height is left."""
        report = self.comparison.report
        header = QLabel(self._header_html())
        header.setTextFormat(Qt.TextFormat.RichText)
        header.setWordWrap(True)
        header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict = QLabel()
        font = self.verdict.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.verdict.setFont(font)
        if report.agree:
            exact = f", exact to {report.exact_to}" if report.exact_to else ""
            self.verdict.setText(f"✔ The files agree{exact}")
            self.verdict.setStyleSheet(f"color: {AGREE_TEXT.name()};")
        else:
            self.verdict.setText(f"✘ The files disagree, first at {report.first_disagreement}")
            self.verdict.setStyleSheet(f"color: {DISAGREE_TEXT.name()};")

        self.param_table = self._param_table()
        # the diagnosis is a label, not a scrolled view: it takes the height its text needs
        self.details = _rich_label(self._diagnosis_html())
        self.notes = _rich_label(self._notes_html())
        self.notes.setStyleSheet("color: #455a64")
        self.notes.setVisible(bool(report.notes))

        self.heatmap = DiffHeatmap()
        self.heatmap.setMinimumHeight(HEATMAP_MIN_HEIGHT)
        self.heatmap.show_values(self.heat, (self.floor, -self.floor), self.offsets, self.names,
                                 self.worst_cells())
        self.heatmap.cellHovered.connect(self._on_cell_hovered)
        self.heatmap.cellClicked.connect(self._on_cell_clicked)
        self.readout = QLabel("Colour: how many powers of ten a difference is above the "
                              "tolerance (red to yellow: disagrees) or below it (blue). A ring "
                              "marks the worst cell of each parameter that disagrees. Hover to "
                              "read a value; click a sample to show it.")
        self.readout.setWordWrap(True)
        self.readout.setMinimumHeight(2 * self.readout.fontMetrics().lineSpacing() + 4)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sample_table = self._sample_table()
        self.membership = QLabel()
        self.membership.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setVisible(False)     # until a sample is clicked: no blank line before then

        reading = QVBoxLayout()
        reading.setContentsMargins(0, 0, 0, 0)
        reading.addWidget(self.verdict)
        reading.addWidget(self.details)
        reading.addWidget(self.notes)
        reading.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(reading, 1)
        top.addWidget(self.param_table, 0, Qt.AlignmentFlag.AlignTop)

        heat = QWidget()
        heat_layout = QVBoxLayout(heat)
        heat_layout.setContentsMargins(0, 0, 0, 0)
        heat_layout.addWidget(self.heatmap, 1)
        heat_layout.addWidget(self.readout)
        samples = QWidget()
        samples_layout = QVBoxLayout(samples)
        samples_layout.setContentsMargins(0, 0, 0, 0)
        samples_layout.addWidget(QLabel("Samples (click one to show it):"))
        samples_layout.addWidget(self.sample_table, 1)
        self.sample_table.setMinimumWidth(_table_width(self.sample_table))
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(heat)
        bottom.addWidget(samples)
        bottom.setStretchFactor(0, 1)
        bottom.setSizes([900, _table_width(self.sample_table)])

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addLayout(top)
        layout.addWidget(bottom, 1)
        layout.addWidget(self.membership)
        layout.addWidget(self.note)
        layout.addWidget(buttons)

    def worst_cells(self) -> list[tuple[int, int]]:
        """(sample from 0, heatmap column) of the worst cell of each parameter that
        disagrees: the one ring it gets on the heatmap."""
        cells = []
        for i, _name in enumerate(self.names):
            block = self.excess[:, self.offsets[i]:self.offsets[i + 1]]
            if block.size and block.max() > 1:
                sample, local = np.unravel_index(int(np.argmax(block)), block.shape)
                cells.append((int(sample), self.offsets[i] + int(local)))
        return cells

    def _header_html(self) -> str:
        comparison, report = self.comparison, self.comparison.report

        def line(tag: str, gs: GradientSet) -> str:
            engine = gs.engine or "engine not stated"
            return f"<b>{tag}:</b> {html.escape(gs.source)} <i>({html.escape(engine)})</i>"

        rule = (f"{report.samples} samples; agreement: |A − B| ≤ {report.atol:g} + "
                f"{report.rtol:g}·max(|A|, |B|)")
        return "<br>".join([line("A", comparison.a), line("B", comparison.b), rule])

    def _diagnosis_html(self) -> str:
        return _bullets("Diagnosis", [rich_text(s) for s in self.comparison.report.diagnosis])

    def _notes_html(self) -> str:
        """The notes, formulas as rich text; a note's leading file name is left as written."""
        sources = {gs.source for gs in (self.comparison.a, self.comparison.b)}
        items = []
        for note in self.comparison.report.notes:
            source, sep, rest = note.partition(": ")
            if sep and source in sources:
                items.append(f"{html.escape(source)}: {rich_text(rest)}")
            else:
                items.append(rich_text(note))
        return _bullets("Notes", items)

    def user_texts(self) -> list[str]:
        """Every text the dialog shows a user, as displayed (rich text as its plain text):
        labels, table cells and headers, tooltips, the heatmap's axes and colour bar."""
        texts = [_displayed(w.text(), w.textFormat()) for w in self.findChildren(QLabel)]
        texts.append(self.windowTitle())
        for table in (self.param_table, self.sample_table):
            texts.append(table.toolTip())
            for col in range(table.columnCount()):
                texts.append(table.horizontalHeaderItem(col).text())
                texts += [table.item(row, col).text() for row in range(table.rowCount())]
        plot = self.heatmap.getPlotItem()
        # pyqtgraph draws axis labels as rich text
        axes = [plot.getAxis("left"), plot.getAxis("bottom"), self.heatmap.colorbar.axis]
        texts += [_displayed(axis.labelText, Qt.TextFormat.RichText) for axis in axes]
        texts += [name for _, name in self.heatmap.block_ticks(self.names)]
        return texts

    def _param_table(self) -> QTableWidget:
        report = self.comparison.report
        order = backward_order(list(report.params))
        table = _table(PARAM_COLUMNS, len(order))
        table.setToolTip("In the order the backward pass produces them; double-click a row to "
                         "show its worst sample")
        bold = QFont()
        bold.setBold(True)
        for row, name in enumerate(order):
            p = report.params[name]
            sample, *element = p.worst
            where = f"{sample}: {list(element)}" if element else f"{sample}"
            verdict = ("agree (rounding)" if p.within_rounding else
                       "agree" if p.agree else "DISAGREE")
            if name == report.first_disagreement:
                verdict += " (first)"
            cells = (name, str(list(p.shape)), f"{p.max_abs_diff:.3g}", f"{p.max_rel_diff:.3g}",
                     f"{p.digits:.1f}", where, verdict)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col >= 2 and col <= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if not p.agree:
                    item.setBackground(DISAGREE_BRUSH)
                    item.setForeground(DISAGREE_TEXT)
                    item.setFont(bold)
                elif col == len(cells) - 1:
                    item.setForeground(AGREE_TEXT)
                table.setItem(row, col, item)
        table.resizeColumnsToContents()
        # all of it in view, two rows a layer: the table is read whole beside the diagnosis
        header = table.horizontalHeader().sizeHint().height()
        rows = len(order) * table.verticalHeader().defaultSectionSize()
        table.setFixedHeight(min(header + rows + 2 * table.frameWidth(), PARAM_TABLE_MAX_HEIGHT))
        table.setFixedWidth(_table_width(table))
        table.cellDoubleClicked.connect(self._on_param_double_clicked)
        self._param_order = order
        return table

    def _sample_table(self) -> QTableWidget:
        table = _table(SAMPLE_COLUMNS, self.n_samples)
        max_rel = self.rel.max(axis=1) if self.rel.size else np.zeros(self.n_samples)
        for k in range(self.n_samples):
            name, element = self.element_at(int(self.sample_worst[k]))
            agree = bool(self.sample_agree[k])
            where = f"{name}{list(element)}" if element else name
            cells = (str(k + 1), f"{max_rel[k]:.3g}", where, "agree" if agree else "DISAGREE")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if not agree:
                    item.setBackground(DISAGREE_BRUSH)
                    item.setForeground(DISAGREE_TEXT)
                table.setItem(k, col, item)
        table.resizeColumnsToContents()
        table.cellClicked.connect(self._on_sample_clicked)
        return table

    @Slot(int, int)
    def _on_cell_hovered(self, sample: int, col: int) -> None:
        name, element = self.element_at(col)
        offset = col - self.offsets[self.names.index(name)]
        a = self.comparison.aligned.a[name][sample].reshape(-1)[offset]
        b = self.comparison.aligned.b[name][sample].reshape(-1)[offset]
        where = f"{name}{list(element)}" if element else name
        verdict = "disagrees" if self.excess[sample, col] > 1 else "agrees"
        self.readout.setText(f"sample {sample + 1}, {where}:  A = {a:.9g}   B = {b:.9g}   "
                             f"|A − B| = {abs(float(a) - float(b)):.3g}   "
                             f"relative {self.rel[sample, col]:.3g}   "
                             f"{self.excess[sample, col]:.3g}× the tolerance: {verdict}")

    @Slot(int, int)
    def _on_cell_clicked(self, sample: int, _column: int) -> None:
        self.activate_sample(sample)

    @Slot(int, int)
    def _on_sample_clicked(self, row: int, _column: int) -> None:
        self.activate_sample(row)

    @Slot(int, int)
    def _on_param_double_clicked(self, row: int, _column: int) -> None:
        worst = self.comparison.report.params[self._param_order[row]].worst
        self.activate_sample(worst[0] - 1)

    def activate_sample(self, index: int) -> None:
        """Mark sample `index` (from 0), emit sampleActivated and, when the files' samples are
        the current data's, make it the explorer's current sample."""
        self.heatmap.mark_sample(index)
        self.sample_table.blockSignals(True)
        self.sample_table.selectRow(index)
        self.sample_table.blockSignals(False)
        self.note.setVisible(True)
        self.sampleActivated.emit(index)
        if self.session_model is None:
            self.note.setText(f"Sample {index + 1} selected.")
            return
        belongs, why = self.belongs_to_session()
        if not belongs:
            self.note.setText(f"Sample {index + 1} does not belong to the current data ({why}); "
                              "the explorer stays where it is.")
            return
        self.session_model.session.go_to_sample(index)
        self.note.setText(f"Sample {index + 1} is now the explorer's current sample"
                          + (f" ({why})." if why else "."))

    def belongs_to_session(self) -> tuple[bool, str]:
        """Whether the files' samples are the session's data, and why not (or what was
        assumed)."""
        if self.session_model is None:
            return False, "there is no explorer session"
        data = self.session_model.session.data
        comparison = self.comparison
        if len(data) != self.n_samples:
            return False, (f"the files hold {self.n_samples} samples and the current data "
                           f"{len(data)}")
        x = comparison.a.x if comparison.a.x is not None else comparison.b.x
        if x is None:
            return True, "the files hold no x values, so samples are matched by number only"
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        ours = data.x.astype(np.float64)
        if x.shape != ours.shape or not np.allclose(x, ours, rtol=X_MATCH_RTOL,
                                                    atol=X_MATCH_ATOL):
            return False, "the files' x values are not the current data's"
        return True, ""

    @Slot()
    def _show_membership(self) -> None:
        if self.session_model is None:
            self.membership.setText("")
            return
        belongs, why = self.belongs_to_session()
        if belongs:
            text = "The files' samples are the current data's: clicking a sample shows it in " \
                   "the explorer" + (f" ({why})." if why else ".")
        else:
            text = f"The files' samples are not the current data's ({why}): clicking a sample " \
                   "only marks it here."
        spec = self.comparison.a.spec or self.comparison.b.spec
        current = self.session_model.session.spec
        if belongs and spec is not None and spec != current:
            text += (f" Note: the files were made with {spec.describe()}, the explorer shows "
                     f"{current.describe()}.")
        self.membership.setText(text)


def _comparing(parent: QWidget | None, path_a: str | os.PathLike, path_b: str | os.PathLike,
               model: NetworkSpec | None) -> TaskRunner:
    """The comparison of two files as a task with progress: while a large file is read, how
    much of it, then that the files are being compared."""
    names = {os.fspath(p): os.path.basename(p) for p in (path_a, path_b)}

    def task(progress: TaskProgress) -> FileComparison:
        def told(path: str, done: int, total: int) -> bool:
            label = f"Reading {names[path]}…" if done < total else "Comparing the files…"
            return progress(done, total, label)
        return compare_files(path_a, path_b, model, progress=told)

    return TaskRunner(parent, "Compare gradient files",
                      f"Reading {' and '.join(dict.fromkeys(names.values()))}…", task,
                      (ReadCancelled,), "The comparison")


def _relative(a: np.ndarray, b: np.ndarray, rtol: float, atol: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise relative difference and excess over the tolerance (engine.check.compare's)."""
    _, rel, excess = elementwise(a, b, rtol, atol)
    return rel, excess


def default_size(available: QSize) -> QSize:
    """The size the dialog opens at on a screen of `available` size: DEFAULT_SIZE, or what the
    screen leaves (a 1366x768 laptop gets 1280x698)."""
    return DEFAULT_SIZE.boundedTo(available - SCREEN_MARGIN)


def rich_text(text: str) -> str:
    """Plain text with formulas as rich text: symbols in italics, layer numbers and Unicode
    subscripts (δₗ₊₁) as <sub>, ᵀ as a superscript T, so that no font has to have the glyphs."""
    rich = _SUBSCRIPT_RUN.sub(lambda m: f"<sub>{''.join(_ASCII[c] for c in m.group(0))}</sub>",
                              to_html(text))
    # to_html knows the letters of the forward pass; δ3 is layer 3's error
    return _DELTA.sub(r"<i>δ</i><sub>\1</sub>", rich)


def _bullets(title: str, items: list[str]) -> str:
    if not items:
        return ""
    rows = "".join(f"<li>{item}</li>" for item in items)
    return f"<b>{title}</b><ul style='margin: 0; -qt-list-indent: 1;'>{rows}</ul>"


def _rich_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _displayed(text: str, text_format: Qt.TextFormat) -> str:
    """What a reader sees of a label's text: rich text as its plain text, any other as it is
    (the dialog marks every label it writes rich text into as RichText)."""
    if text_format != Qt.TextFormat.RichText:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def _table_width(table: QTableWidget) -> int:
    """The width that shows every column without a horizontal scroll bar."""
    return (table.horizontalHeader().length() + 2 * table.frameWidth()
            + table.verticalScrollBar().sizeHint().width())


def _table(columns: tuple[str, ...], rows: int) -> QTableWidget:
    table = QTableWidget(rows, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    # a stretched last section is at least the default section size, wider than its contents
    table.horizontalHeader().setStretchLastSection(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table
