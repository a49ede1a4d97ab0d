"""A small array as a table with a heat colour per cell: values on the diverging scale, or
differences coloured by their agreement grade. A vector shows as a column, as in the notes'
column form; a scalar as one cell. Wide arrays drop the numbers and keep the colours: each
cell's tooltip still gives its exact value."""

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableView, QWidget

from engine.check.rounding import EXACT
from gui.colors import GRADES, NAN_COLOR, diverging_rgb, text_on
from gui.numbers import exact, short

VALUES, DIFFS = "values", "diffs"
# above this many columns a cell is too narrow for a number
MAX_TEXT_COLUMNS = 4
MAX_ROWS_SHOWN = 10
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

    @property
    def shows_numbers(self) -> bool:
        return self._values.shape[1] <= MAX_TEXT_COLUMNS

    def value(self, row: int, column: int) -> np.generic:
        return self._values[row, column]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        value = self._values[row, column]
        if role == Qt.ItemDataRole.DisplayRole:
            return short(value) if self.shows_numbers else None
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
    """A read-only heat table of one array; see ArrayModel."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.array_model = ArrayModel(self)
        self.setModel(self.array_model)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWordWrap(False)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.setFont(font)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(8)
            header.setFont(font)
        self.verticalHeader().setDefaultSectionSize(20)
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
        self.array_model.modelReset.connect(self._fit_columns)

    def set_values(self, values: np.ndarray, scale: float) -> None:
        self.array_model.set_values(values, scale)

    def set_diffs(self, diffs: np.ndarray, rel: np.ndarray, excess: np.ndarray,
                  grade: str) -> None:
        self.array_model.set_diffs(diffs, rel, excess, grade)

    def _fit_columns(self) -> None:
        width = 78 if self.array_model.shows_numbers else 18
        self.horizontalHeader().setDefaultSectionSize(width)
        self.verticalHeader().setDefaultSectionSize(20 if self.array_model.shows_numbers else 18)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        """As big as the cells (no bigger, up to MAX_ROWS_SHOWN rows): the tables side by side
        stay together and the summary below them stays close."""
        model = self.array_model
        rows = model.rowCount()
        columns = model.columnCount() * self.horizontalHeader().defaultSectionSize()
        frame = 2 * self.frameWidth()
        scroll = self.verticalScrollBar().sizeHint().width() if rows > MAX_ROWS_SHOWN else 0
        width = self.verticalHeader().sizeHint().width() + columns + frame + scroll
        height = (self.horizontalHeader().sizeHint().height() + frame
                  + min(rows, MAX_ROWS_SHOWN) * self.verticalHeader().defaultSectionSize())
        return QSize(width, height)
