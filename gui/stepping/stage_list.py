"""Every stage of the current sample in order, forward then backward, each with how well the
two engines agree on it; the current stage is the selected row, and choosing a row (click or
arrow keys) makes it current. From the first stage where the scratch pass departs from torch
(an injected mistake, or a bug) the rows are red, and that first one says so."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.net.stages import FORWARD
from engine.session import UNCHECKED, StagePair
from gui.colors import (
    DEPARTED,
    DEPARTED_BACKGROUND,
    GRADES,
    NOT_IN_YOUR_CODE,
    grade_icon,
    grade_legend,
)
from gui.numbers import digits_text, short
from gui.session_model import SessionModel
from gui.stepping.formula import describe, plain_symbol
from gui.stepping.pending import TorchMark, blank_icon, torch_mark
from gui.stepping.stage_values import the_pass

DIRECTION, STAGE, AGREEMENT, DIGITS = range(4)
HEADERS = ("", "Stage", "Agreement", "Digits")
ARROWS = {FORWARD: "→", "backward": "←"}
DEPARTS = "◀ departs"  # beside the first stage where the scratch pass departs from torch
ICON_ROLE = Qt.ItemDataRole.UserRole    # which grade's icon a row shows ("" none yet)


class StageList(QTreeWidget):
    """One row per stage: direction, symbol, agreement grade (glyph, word and colour) and the
    digits both engines share."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.setColumnCount(len(HEADERS))
        self.setHeaderLabels(HEADERS)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._set_tooltip()
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(STAGE, QHeaderView.ResizeMode.Stretch)
        for column in (DIRECTION, AGREEMENT, DIGITS):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.headerItem().setToolTip(DIGITS, "Significant digits on which both engines agree")
        self.currentItemChanged.connect(self._row_chosen)
        # a new network is always followed by sampleChanged, whose refresh makes the rows anew
        # when their number changed: filled once, not twice (a run's end holds the window)
        model.networkChanged.connect(self._set_tooltip)
        model.sampleChanged.connect(self._refresh)
        model.stageChanged.connect(self._select_current)
        self._rebuild()

    def _set_tooltip(self) -> None:
        self.setToolTip("Every stage of this sample: forward (→) then backward (←).\n"
                        + grade_legend(self._model.session.spec.dtype).replace(" · ", "\n")
                        + "\nRed from the first stage where scratch departs from torch.\n"
                        "Click a row or use the arrow keys to go to that stage.")

    # what tests and the window may ask
    def current_row(self) -> int:
        item = self.currentItem()
        return self.indexOfTopLevelItem(item) if item is not None else -1

    def row_texts(self, row: int) -> tuple[str, ...]:
        item = self.topLevelItem(row)
        return tuple(item.text(column) for column in range(len(HEADERS)))

    def red_rows(self) -> list[int]:
        """The rows drawn red: from the first departure on."""
        return [row for row in range(self.topLevelItemCount())
                if self.topLevelItem(row).foreground(STAGE).color() == DEPARTED]

    def departure_row(self) -> int | None:
        """The row marked as where the scratch pass departs from torch, or None."""
        return next((row for row in range(self.topLevelItemCount())
                     if self.topLevelItem(row).text(STAGE).endswith(DEPARTS)), None)

    # keeping up with the session
    def _rebuild(self) -> None:
        self._set_tooltip()
        self.blockSignals(True)
        self.clear()
        for _ in self._model.session.pairs:
            QTreeWidgetItem(self)
        self.blockSignals(False)
        self._refresh()

    def _refresh(self) -> None:
        pairs = self._model.session.pairs
        if len(pairs) != self.topLevelItemCount():
            self._rebuild()
            return
        departure = self._model.session.departure_index
        mark = torch_mark(self._model.session)
        # the view told once that every row changed, not at each of a row's twenty settings
        # (each made it measure the rows again: 15 ms a refresh, at a run's end too)
        model = self.model()
        model.blockSignals(True)
        try:
            for row, pair in enumerate(pairs):
                self._fill(self.topLevelItem(row), row, pair, departure, mark)
        finally:
            model.blockSignals(False)
        if pairs:
            model.dataChanged.emit(model.index(0, 0),
                                   model.index(len(pairs) - 1, len(HEADERS) - 1))
        self._select_current()

    def _fill(self, item: QTreeWidgetItem, row: int, pair: StagePair,
              departure: int | None, mark: TorchMark) -> None:
        info, comparison = pair.scratch.info, pair.comparison
        look = mark.look if pair.pending else GRADES[pair.grade]
        item.setText(DIRECTION, ARROWS.get(info.direction, ""))
        first = row == departure
        item.setText(STAGE, f"{plain_symbol(info.symbol)} {DEPARTS}" if first
                     else plain_symbol(info.symbol))
        item.setText(AGREEMENT, look.word)  # the icon carries the glyph: not colour alone
        icon = "" if pair.pending else pair.grade
        if item.data(AGREEMENT, ICON_ROLE) != icon:   # setting one costs what a row's text does
            item.setIcon(AGREEMENT, blank_icon() if pair.pending else grade_icon(pair.grade))
            item.setData(AGREEMENT, ICON_ROLE, icon)
        item.setForeground(AGREEMENT, look.color)
        item.setBackground(AGREEMENT, look.background)
        item.setText(DIGITS, "…" if comparison is None else "–" if pair.grade == UNCHECKED
                     else digits_text(comparison.digits))
        item.setTextAlignment(DIGITS, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        session = self._model.session
        tip = f"{row + 1}. {describe(info)} (key {info.key})\n" + (
            mark.tip if comparison is None else NOT_IN_YOUR_CODE if pair.grade == UNCHECKED else
            f"{look.word}: max |diff| {short(comparison.max_abs_diff)}, "
            f"max relative {short(comparison.max_rel_diff)}, "
            f"{digits_text(comparison.digits)} digits agree")
        departed = departure is not None and row >= departure
        owner = the_pass(session)
        if first:
            tip += f"\n{owner.capitalize()} departs from torch here: the first stage "
            tip += "that disagrees"
        elif departed:
            tip += f"\nAfter the stage where {owner} departed from torch"
        for column in range(len(HEADERS)):
            item.setToolTip(column, tip)
        font = item.font(STAGE)
        font.setBold(first)
        item.setFont(STAGE, font)
        # the agreement column keeps its grade's colours: a later stage may agree again
        for column in (DIRECTION, STAGE, DIGITS):
            item.setData(column, Qt.ItemDataRole.ForegroundRole, DEPARTED if departed else None)
            item.setData(column, Qt.ItemDataRole.BackgroundRole,
                         DEPARTED_BACKGROUND if departed else None)

    def _select_current(self) -> None:
        item = self.topLevelItem(self._model.session.stage_index)
        if item is not None and item is not self.currentItem():
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)
            self.scrollToItem(item)

    def _row_chosen(self, item: QTreeWidgetItem | None, _previous) -> None:
        if item is not None:
            self._model.session.go_to_stage(self.indexOfTopLevelItem(item))


class StageColumn(QWidget):
    """The stage list with, under it, the one line that says what its grades mean."""

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self.list = StageList(model, self)
        self.legend = QLabel(self)
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color: #546e7a; font-size: small")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.legend)
        model.networkChanged.connect(self._show_legend)
        model.yoursChanged.connect(self._show_legend)
        self._show_legend()

    def _show_legend(self) -> None:
        session = self._model.session
        self.legend.setText(grade_legend(session.spec.dtype, session.checking_yours))
