"""A small array as a table with a heat colour per cell: values on the diverging scale, or
differences coloured by their agreement grade. A vector shows as a column, as in the notes'
column form; a scalar as one cell. Every cell shows its number in full (the shortest text that
reads back to the same value; a difference in float32 where float32 holds it), in columns
wide enough for it: a table wider than its room scrolls a whole row or column at a time, and
the stage card scrolls its tables together."""

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableView, QWidget

from engine.check.rounding import EXACT
from gui.colors import GRADES, NAN_COLOR, diverging_rgb, text_on
from gui.numbers import cell_text, diff_text, exact, short, widest_cell

VALUES, DIFFS = "values", "diffs"
MAX_ROWS_SHOWN = 10
MIN_ROWS_SHOWN = 3      # however little room the card has (the live plots open below it)
ROW_HEIGHT = 20
CELL_PADDING = 14       # px around a cell's text
MEASURED = 10_000       # arrays up to this size have the width of their own widest text
_Index = QModelIndex | QPersistentModelIndex


def as_matrix(values: np.ndarray) -> np.ndarray:
    """2-D view of a stage value: () → (1, 1), (n,) → (n, 1), (r, c) unchanged."""
    values = np.asarray(values)
    if values.ndim == 0:
        return values.reshape(1, 1)
    return values.reshape(-1, 1) if values.ndim == 1 else values


class ArrayModel(QAbstractTableModel):
    """`values` (any shape up to 2-D) with background colours: for VALUES, the diverging scale
    ending at ±`scale`; for DIFFS, per element: exact where rounding explains the difference
    (its `excess` at most 1), else the stage's grade."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._values = np.zeros((0, 0))
        self._rgb = np.zeros((0, 0, 3))
        self._rel: np.ndarray | None = None
        self._excess: np.ndarray | None = None
        self._over = EXACT
        self._mode = VALUES

    def set_values(self, values: np.ndarray, scale: float) -> None:
        self.beginResetModel()
        self._values, self._mode, self._rel = as_matrix(values), VALUES, None
        self._rgb = diverging_rgb(self._values, scale)
        self.endResetModel()

    def set_diffs(self, diffs: np.ndarray, rel: np.ndarray, excess: np.ndarray,
                  grade: str) -> None:
        """|differences| and their relative sizes; `excess` per element (at most 1: within
        rounding) and the stage's `grade`, which colours the elements beyond rounding."""
        self.beginResetModel()
        self._values, self._mode, self._rel = as_matrix(diffs), DIFFS, as_matrix(rel)
        self._excess, self._over = as_matrix(excess), grade
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else self._values.shape[0]

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._values.shape[1]

    def texts(self) -> list[str]:
        """What the cells show, or for a big array (above MEASURED elements) the widest text
        a value of its dtype can have."""
        if self._values.size > MEASURED:
            return [widest_cell(self._values.dtype)]
        text = diff_text if self._mode == DIFFS else cell_text
        return [text(v) for v in self._values.ravel()]

    def value(self, row: int, column: int) -> np.generic:
        return self._values[row, column]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        value = self._values[row, column]
        if role == Qt.ItemDataRole.DisplayRole:
            return diff_text(value) if self._mode == DIFFS else cell_text(value)
        if role == Qt.ItemDataRole.ToolTipRole:
            text = exact(value)
            if self._mode == DIFFS and self._rel is not None:
                text += f"\nrelative {short(self._rel[row, column])}"
            return text
        color = self._color(row, column)
        if role == Qt.ItemDataRole.BackgroundRole:
            return color
        if role == Qt.ItemDataRole.ForegroundRole:
            return text_on(color)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _color(self, row: int, column: int) -> QColor:
        # made per visible cell: a 4096-wide layer has millions of cells, few of them on screen
        if self._mode == DIFFS and self._excess is not None:
            within = float(self._excess[row, column]) <= 1
            return GRADES[EXACT if within else self._over].background
        r, g, b = self._rgb[row, column]
        return NAN_COLOR if np.isnan(r) else QColor(int(r), int(g), int(b))


class ArrayTable(QTableView):
    """A read-only heat table of one array; see ArrayModel. Its columns are `natural_width`
    wide: the widest of its numbers, whole."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.array_model = ArrayModel(self)
        self.setModel(self.array_model)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        # by whole cells: tables whose columns differ in width still show the same first
        # row and column when the card scrolls them together
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.setFont(font)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(8)
            header.setFont(font)
        self.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.array_model.modelReset.connect(self._fit_columns)

    def set_values(self, values: np.ndarray, scale: float) -> None:
        self.array_model.set_values(values, scale)

    def set_diffs(self, diffs: np.ndarray, rel: np.ndarray, excess: np.ndarray,
                  grade: str) -> None:
        self.array_model.set_diffs(diffs, rel, excess, grade)

    def natural_width(self) -> int:
        """The column width (px) that shows the widest of this table's numbers whole."""
        metrics = QFontMetrics(self.font())
        return max(metrics.horizontalAdvance(t) for t in self.array_model.texts()) + CELL_PADDING

    def _fit_columns(self) -> None:
        self.horizontalHeader().setDefaultSectionSize(self.natural_width())
        self.updateGeometry()

    def _frame_and_headers(self) -> tuple[int, int]:
        frame = 2 * self.frameWidth()
        return (self.verticalHeader().sizeHint().width() + frame,
                self.horizontalHeader().sizeHint().height() + frame)

    def _hint(self, rows_shown: int, columns_shown: int) -> QSize:
        model = self.array_model
        rows, columns = model.rowCount(), model.columnCount()
        side, top = self._frame_and_headers()
        column = self.horizontalHeader().defaultSectionSize()
        # room for the scroll bars whenever the whole table might not fit
        vertical = self.verticalScrollBar().sizeHint().width() if rows > rows_shown else 0
        horizontal = self.horizontalScrollBar().sizeHint().height() if columns > 1 else 0
        return QSize(side + min(columns, columns_shown) * column + vertical,
                     top + min(rows, rows_shown) * ROW_HEIGHT + horizontal)

    def sizeHint(self) -> QSize:
        """As big as the cells (no bigger, up to MAX_ROWS_SHOWN rows): the tables side by side
        stay together and the summary below them stays close."""
        return self._hint(MAX_ROWS_SHOWN, self.array_model.columnCount())

    def minimumSizeHint(self) -> QSize:
        """One column and MIN_ROWS_SHOWN rows: less room scrolls, never cuts a number."""
        return self._hint(MIN_ROWS_SHOWN, 1)
