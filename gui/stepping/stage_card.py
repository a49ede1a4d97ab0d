"""The current stage up close: its formula in the seeds' notation, the same formula with this
sample's numbers put in, then the scratch value, the torch value and their difference side by
side as heat tables, with the largest difference and the digits that agree. For a weight or
bias gradient, a fourth column on demand: the numerical gradient by central differences.

With a mistake injected, a stage the mistake computes wrongly shows the right formula beside
the one the scratch engine used (and this sample's numbers in the one used); a stage at or after
the first departure from torch says so."""

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.check.compare import compare_arrays
from engine.check.mistakes import UPDATE, UPDATE_KEY, FormulaSwap, Injection
from engine.net.stages import FORWARD
from engine.session import UNCHECKED, Session
from gui.colors import DEPARTED, GRADES, NOT_IN_YOUR_CODE, grade_text, scale_of
from gui.numbers import digits_text, shape_text, short
from gui.session_model import SessionModel
from gui.stepping.array_table import ArrayTable
from gui.stepping.formula import describe, plain_symbol, to_html, with_numbers
from gui.stepping.pending import LOADING, look_style, torch_mark
from gui.stepping.stage_values import element_diffs, ours_title, symbol_value, the_pass

# central differences cost two forward passes per element: beyond this, too slow to wait for
MAX_NUMERICAL = 20_000
COLUMNS = ("scratch", "torch", "difference", "numerical")
TITLES = {"scratch": "Scratch (ours)", "torch": "Torch autograd", "difference": "|difference|",
          "numerical": "Numerical (float64)"}
RIGHT_COLOR, RIGHT_BACKGROUND = GRADES["good"].color.name(), GRADES["good"].background.name()
USED_COLOR, USED_BACKGROUND = GRADES["flagged"].color.name(), GRADES["flagged"].background.name()


def _label(rich: bool = True) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


class StageCard(QWidget):
    """See the module docstring. `busy` carries what the card is doing, for the status bar."""

    busy = Signal(str)

    def __init__(self, model: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self._numerical: dict[str, np.ndarray] = {}
        self._swaps: tuple[Injection | None, dict[str, FormulaSwap]] = (None, {})
        self.shown_swap: FormulaSwap | None = None  # the right and used formulas shown now
        self.title = _label()
        self.badge = _label(rich=False)
        self.badge.setWordWrap(False)
        self.description = _label(rich=False)
        self.description.setStyleSheet("color: #546e7a")
        self.formula = _label()
        font = self.formula.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.formula.setFont(font)
        self.swap = _label()  # the card's own font size: two formulas side by side must fit
        self.swap.setToolTip("The formula that is right (torch computes it) beside the one the "
                             "injected mistake makes the scratch engine use (Tools > Inject a "
                             "mistake)")
        self.departure = _label(rich=False)
        self.departure.setStyleSheet(f"color: {DEPARTED.name()}; font-weight: bold")
        self.expanded = _label()
        self.numbers = _label()
        self.summary = _label(rich=False)
        self.numerical_summary = _label(rich=False)
        self.numerical_box = QCheckBox("Numerical gradient")
        self.numerical_box.setToolTip(
            "Add a fourth column: this gradient by central differences in float64,\n"
            "(L(θ + ε) − L(θ − ε)) / 2ε per element, computed now for this stage.\n"
            "Only for ∂L/∂w and ∂L/∂b stages.")
        self.numerical_box.toggled.connect(self._show)
        self.tables = {name: ArrayTable(self) for name in COLUMNS}
        self.tables["scratch"].setToolTip("Our engine's value, on the diverging scale")
        self.tables["torch"].setToolTip("Torch autograd's value, on the same scale")
        self.tables["difference"].setToolTip(
            "|scratch − torch| per element, coloured by its relative size: green < 1e-7, "
            "yellow < 1e-4, red worse")
        self.tables["numerical"].setToolTip("Central differences in float64")
        self._titles = {name: QLabel(f"<b>{TITLES[name]}</b>") for name in COLUMNS}
        self._loading = {name: _label(rich=False) for name in ("torch", "difference")}
        for label in self._loading.values():
            label.setStyleSheet(f"{look_style(LOADING.look)}; padding: 6px")
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._scroll_together()
        self._build_layout()
        # an explicit minimum: one that followed each stage's text would resize the window
        self.setMinimumSize(420, 260)
        model.sampleChanged.connect(self._numerical.clear)
        model.stageChanged.connect(self._show)
        self._show()

    def _build_layout(self) -> None:
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.numerical_box)
        head.addWidget(self.badge)
        grid = QGridLayout()
        for column, name in enumerate(COLUMNS):
            grid.addWidget(self._titles[name], 0, column)
            grid.addWidget(self.tables[name], 1, column)
            if name in self._loading:
                grid.addWidget(self._loading[name], 1, column,
                               Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        for column in range(len(COLUMNS)):   # short of room, the tables share it evenly
            grid.setColumnStretch(column, 1)
        self._grid = grid
        grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.description)
        layout.addWidget(self.departure)
        layout.addWidget(self.formula)
        layout.addWidget(self.swap)
        layout.addWidget(self.expanded)
        layout.addWidget(self.numbers)
        layout.addLayout(grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.numerical_summary)
        layout.addStretch(1)

    def _scroll_together(self) -> None:
        """Scrolling one table (wheel, bar, keys) scrolls the others to the same place: they
        scroll by whole cells, so each shows the same first row and column."""
        tables = list(self.tables.values())
        for table in tables:
            for bar in (table.horizontalScrollBar, table.verticalScrollBar):
                bar().valueChanged.connect(
                    lambda value, which=bar.__name__: self._scroll_all(which, value))

    def _scroll_all(self, which: str, value: int) -> None:
        for table in self.tables.values():
            getattr(table, which)().setValue(value)   # no signal where it is there already

    # what tests may read
    def values_of(self, column: str) -> np.ndarray:
        """The array a table shows now, 2-D (a vector as a column)."""
        model = self.tables[column].array_model
        return np.array([[model.value(r, c) for c in range(model.columnCount())]
                         for r in range(model.rowCount())])

    def shows(self, column: str) -> bool:
        return not self.tables[column].isHidden()

    def says_torch_loading(self) -> bool:
        """Whether torch's column says torch is loading (or unavailable) instead of showing
        its values."""
        return not self._loading["torch"].isHidden()

    def torch_note(self) -> tuple[str, str]:
        """What torch's column says in place of its values, and its tooltip."""
        label = self._loading["torch"]
        return label.text(), label.toolTip()

    # keeping up with the session
    def _show(self) -> None:
        session = self._model.session
        pair = session.stage
        info, comparison = pair.scratch.info, pair.comparison
        direction = "forward" if info.direction == FORWARD else "backward"
        self.title.setText(f"<span style='font-size:large'><b>{to_html(info.symbol)}</b></span>"
                           f"&nbsp;&nbsp;stage {session.stage_index + 1} of "
                           f"{len(session.pairs)}, {direction}")
        mark = torch_mark(session)
        look = mark.look if pair.pending else GRADES[pair.grade]
        grade = mark.text if pair.pending else grade_text(pair.grade, session.spec.dtype)
        self.badge.setText(f" {grade} ")
        self.badge.setStyleSheet(f"{look_style(look)}; border-radius: 3px; padding: 2px")
        title = ours_title(session, pair)
        self._titles["scratch"].setText(f"<b>{title}</b>")
        self.tables["scratch"].setToolTip(
            f"{title}: the value, on the diverging scale" + (
                f"\n{_unchecked_note(session)}" if pair.grade == UNCHECKED else ""))
        self.description.setText(f"{describe(info)}  (key {info.key})")
        self.formula.setText(to_html(info.formula))
        self._show_mistake(session)
        self.expanded.setVisible(info.expanded != info.formula)
        self.expanded.setText("<span style='color:#546e7a'>expanded:</span> "
                              + to_html(info.expanded))
        # a stage the mistake computes wrongly has its numbers put in the formula it used
        swapped = self.shown_swap is not None and self.shown_swap.key == info.key
        numbers = with_numbers(self.shown_swap.used if swapped else info.formula,
                               lambda s: symbol_value(session, s), pair.scratch.value)
        self.numbers.setText(f"<span style='color:#546e7a'>this sample"
                             f"{' (scratch, as it computed it)' if swapped else ''}:</span> "
                             + to_html(numbers))
        ours = pair.scratch.value
        what = f"{shape_text(np.shape(ours))} {np.asarray(ours).dtype}"
        if pair.pending:
            scale = scale_of(np.ravel(ours))
            self.summary.setText(f"{mark.text} · {what}")
        else:
            theirs = pair.torch.value
            scale = scale_of(np.concatenate([np.ravel(ours), np.ravel(theirs)]))
            self.tables["torch"].set_values(theirs, scale)
            self.tables["difference"].set_diffs(*element_diffs(ours, theirs), pair.excess,
                                                pair.grade)
            self.summary.setText(
                f"{_unchecked_note(session)} · {what}" if pair.grade == UNCHECKED else
                f"max |diff| {short(comparison.max_abs_diff)} · max relative "
                f"{short(comparison.max_rel_diff)} · {digits_text(comparison.digits)} digits "
                f"agree · {what}")
        self.tables["scratch"].set_values(ours, scale)
        self._show_torch_loading(pair.pending, mark.text, mark.tip)
        self._show_numerical(scale)

    def _show_torch_loading(self, loading: bool, text: str, tip: str) -> None:
        """While torch loads, its column and the difference say so in place of their tables."""
        for name in ("torch", "difference"):
            self.tables[name].setVisible(not loading)
            self._loading[name].setVisible(loading)
            self._loading[name].setText(text)
            self._loading[name].setToolTip(tip)

    def _show_mistake(self, session: Session) -> None:
        """The right formula beside the used one where the mistake swaps them: on the stages
        it computes wrongly, and for a wrong update on every stage after the departure (the
        parameters they use came from it). Otherwise, whether this stage has departed."""
        key, index = session.stage.key, session.stage_index
        departure = session.departure_index
        departed = departure is not None and index >= departure
        swaps = self._swaps_of(session.mistake)
        update = session.mistake is not None and session.mistake.step == UPDATE
        self.shown_swap = swaps.get(key) or (swaps.get(UPDATE_KEY) if update and departed
                                             else None)
        self.formula.setVisible(self.shown_swap is None)
        self.swap.setVisible(self.shown_swap is not None)
        if self.shown_swap is not None:
            self.swap.setText(_swap_html(self.shown_swap, session.mistake))
        owner = the_pass(session)
        if departed and index == departure:
            text = f"✗ {owner.capitalize()} departs from torch here"
            if session.torch_params is not None and self.shown_swap is None:
                text += ": training has moved the engines' parameters apart"
        elif departed and self.shown_swap is None and not session.stage.agrees:
            first = session.pairs[departure].scratch.info
            text = (f"✗ After {owner} departed from torch at "
                    f"{plain_symbol(first.symbol)} (stage {departure + 1})")
        else:
            text = ""
        self.departure.setText(text)
        self.departure.setVisible(bool(text))

    def _swaps_of(self, mistake: Injection | None) -> dict[str, FormulaSwap]:
        """The mistake's swaps by stage key (the first of several layers' updates), cached."""
        if self._swaps[0] is not mistake:
            swaps: dict[str, FormulaSwap] = {}
            for swap in mistake.swaps() if mistake is not None else ():
                swaps.setdefault(swap.key, swap)
            self._swaps = (mistake, swaps)
        return self._swaps[1]

    def _show_numerical(self, scale: float) -> None:
        session = self._model.session
        pair = session.stage
        gradient = pair.scratch.info.kind in ("dw", "db")
        self.numerical_box.setEnabled(gradient)
        wanted = gradient and self.numerical_box.isChecked()
        self.tables["numerical"].setVisible(wanted)
        self._titles["numerical"].setVisible(wanted)
        self._grid.setColumnStretch(COLUMNS.index("numerical"), int(wanted))  # none if hidden
        self.numerical_summary.setVisible(wanted)
        if not wanted:
            return
        size = np.size(pair.scratch.value)
        if size > MAX_NUMERICAL:
            self.tables["numerical"].setVisible(False)
            self.numerical_summary.setText(
                f"{size} elements: too many for central differences here "
                f"(at most {MAX_NUMERICAL})")
            return
        if pair.key not in self._numerical:
            symbol = plain_symbol(pair.scratch.info.symbol)
            self.busy.emit(f"Computing the numerical gradient of {symbol}…")
            QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                self._numerical[pair.key] = session.numerical(pair.key)
            finally:
                QGuiApplication.restoreOverrideCursor()
            self.busy.emit("")
        numerical = self._numerical[pair.key]
        self.tables["numerical"].set_values(numerical, scale)
        check = compare_arrays(numerical, pair.scratch.value)
        self.numerical_summary.setText(
            f"numerical vs {session.ours_name}: max |diff| {short(check.max_abs_diff)} · max "
            f"relative {short(check.max_rel_diff)} · {digits_text(check.digits)} digits agree "
            f"({GRADES[check.grade].word})")


def _unchecked_note(session: Session) -> str:
    """Why a stage is not checked: the user's code does not give it, is running, or failed."""
    if session.yours is not None:
        return NOT_IN_YOUR_CODE
    if session.yours_error:
        return "your code could not be run (the Your code panel says why): not checked"
    return "your code is running…: not checked yet"


def _swap_html(swap: FormulaSwap, mistake: Injection) -> str:
    """The right formula and the one `mistake` used, side by side, each under its heading."""
    where = "updated with" if swap.key == UPDATE_KEY else "used"
    cell = "padding: 4px 10px"
    return (f"<table cellspacing='0'><tr>"
            f"<td style='{cell}; background: {RIGHT_BACKGROUND}; color: {RIGHT_COLOR}'>"
            f"<small><b>✓ right</b> (torch)</small></td>"
            f"<td style='{cell}; background: {USED_BACKGROUND}; color: {USED_COLOR}'>"
            f"<small><b>✗ {where}</b> ({mistake.mistake.title.lower()})</small></td></tr>"
            f"<tr><td style='{cell}; background: {RIGHT_BACKGROUND}'>{to_html(swap.right)}</td>"
            f"<td style='{cell}; background: {USED_BACKGROUND}'>{to_html(swap.used)}</td>"
            f"</tr></table>")
