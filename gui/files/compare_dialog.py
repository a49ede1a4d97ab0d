"""The comparison of two gradient files: the report per parameter, the verdict with its diagnosis
and notes, and a sample x element heatmap of the relative differences. Clicking a sample makes
it the explorer's current sample when the files were made from the current data."""

import html
import math
import os

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont, QShowEvent
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
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.check.compare import dtype_digits, elementwise
from engine.check.report import FileComparison, backward_order, compare_files
from engine.files.gradset import GradientSet, ReadCancelled
from engine.net.spec import NetworkSpec
from gui.files.diff_heatmap import DiffHeatmap
from gui.session_model import SessionModel
from gui.task_runner import TaskProgress, TaskRunner

X_MATCH_RTOL, X_MATCH_ATOL = 1e-5, 1e-7   # files printed with fewer digits still match
DISAGREE_BRUSH = QBrush(QColor(248, 215, 218))
DISAGREE_TEXT, AGREE_TEXT = QColor(150, 0, 20), QColor(0, 110, 40)
PARAM_COLUMNS = ("param", "shape", "max |diff|", "max rel", "digits",
                 "worst (sample: element)", "verdict")
SAMPLE_COLUMNS = ("sample", "max rel", "worst element", "verdict")


class CompareDialog(QDialog):
    """Compare gradient files `path_a` and `path_b` (optionally with a model's spec to align
    them). They are read and compared on a worker thread behind a progress dialog that can be
    cancelled (large .dat files take seconds). When the files cannot be read or aligned, a
    message box says why and `ok` is False, as it is when the user cancelled (`cancelled`); the
    dialog is then not meant to be shown. `sampleActivated(index)` (from 0) fires when the user
    clicks a sample in the heatmap or the samples table."""

    sampleActivated = Signal(int)

    def __init__(self, path_a: str | os.PathLike, path_b: str | os.PathLike,
                 model: NetworkSpec | None = None, session_model: SessionModel | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Compare gradient files")
        self.session_model = session_model
        self.error: str | None = None
        self.comparison: FileComparison | None = None
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
        self.resize(1180, 800)

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
        self.details = QTextBrowser()
        self.details.setHtml(self._details_html())
        self.details.setOpenLinks(False)

        self.heatmap = DiffHeatmap()
        self.heatmap.show_values(self.heat, (self.floor, -self.floor), self.offsets, self.names,
                                 self.excess > 1)
        self.heatmap.cellHovered.connect(self._on_cell_hovered)
        self.heatmap.cellClicked.connect(self._on_cell_clicked)
        self.readout = QLabel("Hover over the heatmap to read a value; click a sample to "
                              "show it.")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sample_table = self._sample_table()
        self.membership = QLabel()
        self.membership.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)

        top = QWidget()
        top_layout = QHBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.param_table, 3)
        top_layout.addWidget(self.details, 2)

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
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(heat)
        bottom.addWidget(samples)
        bottom.setSizes([800, 360])

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        # the parameter table shows every row when it can (it has two per layer)
        rows = self.param_table.rowCount() + 1
        top_height = min(rows * self.param_table.verticalHeader().defaultSectionSize() + 8,
                         280)
        splitter.setSizes([top_height, 800 - top_height])
        splitter.setStretchFactor(1, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(self.verdict)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.membership)
        layout.addWidget(self.note)
        layout.addWidget(buttons)

    def _header_html(self) -> str:
        comparison, report = self.comparison, self.comparison.report

        def line(tag: str, gs: GradientSet) -> str:
            engine = gs.engine or "engine not stated"
            return f"<b>{tag}:</b> {html.escape(gs.source)} <i>({html.escape(engine)})</i>"

        rule = (f"{report.samples} samples; agreement: |A − B| ≤ {report.atol:g} + "
                f"{report.rtol:g}·max(|A|, |B|)")
        return "<br>".join([line("A", comparison.a), line("B", comparison.b), rule])

    def _details_html(self) -> str:
        report = self.comparison.report
        parts = ["<b>Diagnosis</b><ul>"]
        parts += [f"<li>{html.escape(s)}</li>" for s in report.diagnosis]
        parts.append("</ul>")
        if report.notes:
            parts.append("<b>Notes</b><ul>")
            parts += [f"<li>{html.escape(n)}</li>" for n in report.notes]
            parts.append("</ul>")
        return "".join(parts)

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


def _table(columns: tuple[str, ...], rows: int) -> QTableWidget:
    table = QTableWidget(rows, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table
