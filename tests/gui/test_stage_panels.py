"""The stage list, the stage card and the sample panel show the session's numbers, follow its
stage and sample, and move it when a person clicks or types; the formula helpers they use."""

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics, QImage
from PySide6.QtWidgets import QLabel

from engine.files.datasets import regression_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.session import Session
from gui.colors import GRADES
from gui.numbers import digits_text, exact, short
from gui.session_model import SessionModel
from gui.stepping.array_table import ROW_HEIGHT, as_matrix
from gui.stepping.formula import (
    TRANSPOSE_HTML,
    plain_symbol,
    symbol_key,
    to_html,
    with_numbers,
)
from gui.stepping.sample_panel import SamplePanel
from gui.stepping.stage_card import StageCard
from gui.stepping.stage_list import AGREEMENT, DIGITS, STAGE, StageList


@pytest.fixture
def model():
    return SessionModel()


def widget(qtbot, w):
    qtbot.addWidget(w)
    w.resize(700, 600)
    w.show()
    qtbot.waitExposed(w)
    return w


def key_index(session: Session, key: str) -> int:
    return next(i for i, p in enumerate(session.pairs) if p.key == key)


# formulas
def test_formulas_become_rich_text_with_subscripts_and_transposes():
    html = to_html("z2 = y1·w2ᵀ + b2")
    assert html == ("<i>z</i><sub>2</sub> = <i>y</i><sub>1</sub>·<i>w</i><sub>2</sub>"
                    f"{TRANSPOSE_HTML} + <i>b</i><sub>2</sub>")
    assert to_html("∂L/∂z3 = ∂L/∂y3 ⊙ [z3 > 0]").startswith("∂<i>L</i>/∂<i>z</i><sub>3</sub>")
    assert "&gt;" in to_html("[z3 > 0]") and "sigmoid" in to_html("sigmoid(z1)")
    assert plain_symbol("∂L/∂w3") == "∂L/∂w₃"


def ink_rows(html: str, family: str, point_size: float, after: str = "") -> list[int]:
    """How many inked pixels each row of `html` has, drawn in `family` at `point_size`, right
    of where the text `after` (drawn first, in the same label) ends."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    font = QFont(family)
    font.setPointSizeF(point_size)
    label.setFont(font)
    label.setStyleSheet("background: white; color: black")
    label.setText(after + html)
    label.resize(label.sizeHint().width() + 20, label.sizeHint().height() + 10)
    image = label.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    start = QFontMetrics(font).horizontalAdvance(after) + label.margin() + 1 if after else 0
    rows = [sum(image.pixelColor(x, y).value() < 230 for x in range(start, image.width()))
            for y in range(image.height())]
    return [n for n in rows if n]


@pytest.mark.parametrize("point_size", [9.0, 11.7])   # the card's text and its formula
def test_the_transpose_mark_is_a_t_with_its_bar_in_every_font_found(qapp, point_size):
    """At 9 pt Qt's plain <sup>T</sup> lost its bar and read "I" or "|" in most fonts."""
    for family in QFontDatabase.families():
        rows = ink_rows(TRANSPOSE_HTML, family, point_size, after="w")
        assert len(rows) >= 4, family
        bar, stem = max(rows[:2]), min(rows[len(rows) // 2:])
        assert bar >= 2 * stem and bar >= 3, (family, rows)   # a T, not an I


def test_subscripts_draw_in_every_font_found(qapp):
    for family in QFontDatabase.families():
        assert ink_rows(plain_symbol("∂L/∂w2"), family, 9.0), family
        assert ink_rows(to_html("w2"), family, 9.0), family


def test_symbols_name_the_session_keys():
    assert symbol_key("y3", 3) == "y_hat" and symbol_key("y2", 3) == "a2"
    assert symbol_key("∂L/∂y3", 3) == "dL/dy_hat" and symbol_key("∂L/∂y1", 3) == "dL/da1"
    assert symbol_key("y", 3) == "label" and symbol_key("L", 3) == "loss"
    assert symbol_key("w2", 3) == "w2"


def test_numbers_go_into_the_formula():
    values = {"y3": np.array([0.35791]), "y": np.array([0.80131]), "w2": np.ones((10, 10))}
    text = with_numbers("∂L/∂y3 = 2(y3 - y)", values.get, np.array([-0.88680]))
    assert text == "∂L/∂y3 = 2(0.3579 - 0.8013) = -0.8868"
    negative = {"y3": np.array([0.3]), "y": np.array([-0.5])}
    assert with_numbers("∂L/∂y3 = 2(y3 - y)", negative.get, np.array([1.6])) \
        == "∂L/∂y3 = 2(0.3 - (-0.5)) = 1.6"
    big = with_numbers("z3 = y2·w2ᵀ + b3", values.get, np.arange(10.0))
    assert "w2⟨10×10⟩ᵀ" in big and big.endswith("= [0, 1, 2, …] ⟨10⟩")


# the stage list
def test_the_list_has_a_row_per_stage_with_its_agreement(qtbot, model):
    stages = widget(qtbot, StageList(model))
    session = model.session
    assert stages.topLevelItemCount() == len(session.pairs) == 19
    for row, pair in enumerate(session.pairs):
        texts = stages.row_texts(row)
        assert texts[STAGE] == plain_symbol(pair.scratch.info.symbol)
        assert texts[AGREEMENT] == GRADES[pair.grade].word
        assert texts[DIGITS] == digits_text(pair.comparison.digits)
        assert texts[0] == ("→" if pair.scratch.info.direction == "forward" else "←")
    assert stages.row_texts(6)[STAGE] == "L" and stages.row_texts(7)[STAGE] == "∂L/∂y₃"


def test_the_list_follows_the_session_and_moves_it(qtbot, model):
    stages = widget(qtbot, StageList(model))
    session = model.session
    assert stages.current_row() == 0
    session.step()
    session.step()
    assert stages.current_row() == 2
    rect = stages.visualItemRect(stages.topLevelItem(9))
    qtbot.mouseClick(stages.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert session.stage_index == 9 and session.stage.key == "dL/dw3"
    stages.setFocus()
    qtbot.keyClick(stages, Qt.Key.Key_Down)
    assert session.stage_index == 10
    qtbot.keyClick(stages, Qt.Key.Key_Up)
    qtbot.keyClick(stages, Qt.Key.Key_Up)
    assert session.stage_index == 8
    session.next_sample()  # a new sample keeps the row and refreshes the digits
    assert stages.current_row() == 8
    assert stages.row_texts(2)[DIGITS] == digits_text(session.pairs[2].comparison.digits)



def test_new_parameters_fill_the_list_once_and_another_network_rebuilds_it(qtbot, model,
                                                                        monkeypatch):
    """A run's end sets new parameters: the rows are filled once (not once for the network
    and again for the sample), and the view, told once, shows the new digits. A network of
    other stages gets rows of its own, also when their number is the same."""
    stages = widget(qtbot, StageList(model))
    session = model.session
    fills = []
    original = StageList._fill
    monkeypatch.setattr(StageList, "_fill",
                        lambda self, *args: (fills.append(args[1]), original(self, *args)))
    session.set_params({k: v * 0.5 for k, v in session.params.items()})
    assert sorted(fills) == list(range(len(session.pairs)))
    for row, pair in enumerate(session.pairs):
        assert stages.row_texts(row)[DIGITS] == digits_text(pair.comparison.digits)
    shown = stages.visualItemRect(stages.topLevelItem(0))
    assert shown.height() > 0
    for spec in (preset("2-2-1-tanh-bce"), preset(DEFAULT_PRESET).with_options(layout="in_out"),
                 preset("2-10-5-1-sigmoid-squared")):
        session.set_network(spec)
        assert stages.topLevelItemCount() == len(session.pairs)
        for row, pair in enumerate(session.pairs):
            assert stages.row_texts(row)[STAGE] == plain_symbol(pair.scratch.info.symbol)
            assert stages.row_texts(row)[AGREEMENT] == GRADES[pair.grade].word

# the stage card
def test_the_card_shows_both_engines_and_their_difference_at_every_stage(qtbot, model):
    card = widget(qtbot, StageCard(model))
    session = model.session
    for index in range(len(session.pairs)):
        session.go_to_stage(index)
        pair = session.stage
        ours, theirs = pair.scratch.value, pair.torch.value
        np.testing.assert_array_equal(card.values_of("scratch"), as_matrix(ours))
        np.testing.assert_array_equal(card.values_of("torch"), as_matrix(theirs))
        diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
        np.testing.assert_array_equal(card.values_of("difference"), as_matrix(diff))
        assert f"{digits_text(pair.comparison.digits)} digits agree" in card.summary.text()
        assert GRADES[pair.grade].word in card.badge.text()
        assert to_html(pair.scratch.info.formula) == card.formula.text()


def test_the_card_puts_this_samples_numbers_into_the_formula(qtbot, model):
    card = widget(qtbot, StageCard(model))
    session = model.session
    session.go_to_stage(key_index(session, "dL/dy_hat"))
    y_hat, y = session.value("y_hat")[0], session.sample[1][0]
    grad = session.value("dL/dy_hat")[0]
    expected = f"2({short(y_hat)} - {short(y)}) = {short(grad)}"
    assert expected in card.numbers.text()
    assert card.expanded.isHidden()  # the same as the formula
    session.go_to_stage(key_index(session, "dL/dz1"))
    assert not card.expanded.isHidden() and "sigmoid" in card.expanded.text()
    assert "⟨10⟩" in card.numbers.text()  # a 10-vector shows as its shape


def test_the_numerical_gradient_is_a_fourth_column_on_demand(qtbot, model):
    card = widget(qtbot, StageCard(model))
    session = model.session
    assert not card.numerical_box.isEnabled()  # z1 is no parameter gradient
    session.go_to_stage(key_index(session, "dL/dw3"))
    assert card.numerical_box.isEnabled() and not card.shows("numerical")
    with qtbot.waitSignals([card.busy, card.busy]):
        card.numerical_box.setChecked(True)
    assert card.shows("numerical")
    numerical = session.numerical("dL/dw3")
    np.testing.assert_array_equal(card.values_of("numerical"), numerical)
    assert np.allclose(numerical, session.value("dL/dw3"), rtol=1e-4, atol=1e-6)
    assert "numerical vs scratch" in card.numerical_summary.text()
    session.step()  # dL/db3: computed for it too
    np.testing.assert_array_equal(card.values_of("numerical"),
                                  as_matrix(session.numerical("dL/db3")))
    session.step()  # dL/da2: not a parameter, the column goes
    assert not card.shows("numerical") and not card.numerical_box.isEnabled()


def test_the_card_follows_a_network_change(qtbot, model):
    card = widget(qtbot, StageCard(model))
    session = model.session
    session.set_network(preset("2-2-1-tanh-bce"))
    session.go_to_stage(key_index(session, "loss"))
    assert "log" in card.formula.text()
    assert short(session.value("loss")) in card.numbers.text()
    np.testing.assert_array_equal(card.values_of("scratch"), [[session.value("loss")]])


# the sample panel
def test_the_sample_panel_shows_the_sample_and_both_engines(qtbot, model):
    panel = widget(qtbot, SamplePanel(model))
    session = model.session
    assert panel.index.value() == 1 and panel.count.text() == "of 100"
    x, y = session.sample
    assert exact(x[0]) in panel.x.text() and exact(y[0]) in panel.y.text()
    for key in ("y_hat", "loss"):
        for engine in ("scratch", "torch"):
            value = np.ravel(session.value(key, engine))[0]
            assert panel.reading(key, engine) == exact(value)
    session.next_sample()
    assert panel.index.value() == 2
    assert panel.reading("loss", "torch") == exact(session.value("loss", "torch")[()])
    panel.index.setValue(7)  # the spin box moves the session
    assert session.sample_index == 6


def test_the_sample_panel_follows_new_data(qtbot, model):
    panel = widget(qtbot, SamplePanel(model))
    spec = NetworkSpec((3, 4, 2), ("relu", "identity"), loss="mse")
    model.session.set_network(spec)
    assert "3-4-2" in panel.network.text()
    assert panel.reading("y_hat", "scratch").count("\n") == 1  # two outputs, one per line


def card_at(qtbot, dtype: str, key: str = "dL/dw2", size=(700, 600)) -> StageCard:
    spec = dataclasses.replace(preset(DEFAULT_PRESET), dtype=dtype)
    model = SessionModel(Session(spec, init_params(spec), regression_set(spec, 20)))
    card = widget(qtbot, StageCard(model))
    card.resize(*size)
    model.session.go_to_stage(key_index(model.session, key))
    qtbot.waitUntil(lambda: card.tables["scratch"].array_model.rowCount() == 10)
    return card


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_cell_shows_its_whole_number_and_it_reads_back_to_the_value(qtbot, dtype):
    """Matrix stages too (today's 10x10 showed colours only): the text of a cell is the
    shortest that reads back bit for bit, in a column wide enough for it."""
    card = card_at(qtbot, dtype)
    session = card._model.session
    for index in range(len(session.pairs)):
        session.go_to_stage(index)
        pair = session.stage
        diff = np.abs(pair.scratch.value.astype(np.float64) - pair.torch.value.astype(np.float64))
        for name, values, kind in (("scratch", pair.scratch.value, np.dtype(dtype)),
                                   ("torch", pair.torch.value, np.dtype(dtype)),
                                   ("difference", diff, np.dtype(np.float64))):
            table = card.tables[name]
            model, metrics = table.array_model, QFontMetrics(table.font())
            width = table.horizontalHeader().defaultSectionSize()
            values = as_matrix(values)
            for row, column in np.ndindex(values.shape):
                text = model.data(model.index(row, column))
                assert text, (pair.key, name, row, column)
                value = values[row, column].astype(kind)
                read = np.array(text, dtype=np.float64).astype(kind)
                if name == "difference" and read != value:   # a float32 number, as float32
                    read = np.float32(text).astype(kind)
                    assert str(np.float32(value)) == text
                assert read.tobytes() == value.tobytes(), (pair.key, name, text, value)
                assert metrics.horizontalAdvance(text) + 4 <= width, (pair.key, name, text)


def test_the_three_tables_scroll_together(qtbot):
    """By whole cells: each shows the same first row and column."""
    card = card_at(qtbot, "float32", size=(700, 320))
    tables = [card.tables[name] for name in ("scratch", "torch", "difference")]
    for bars in (lambda t: t.horizontalScrollBar(), lambda t: t.verticalScrollBar()):
        qtbot.waitUntil(lambda bars=bars: bars(tables[0]).maximum() > 0)  # it has to scroll
        # (where all can: a table that shows fewer columns at once can scroll further)
        reach = min(bars(t).maximum() for t in tables)
        for moved in tables:
            bars(moved).setValue(reach - tables.index(moved) % (reach + 1))
            assert {bars(t).value() for t in tables} == {bars(moved).value()}


def test_the_tables_keep_three_rows_of_whole_numbers_in_little_room(qtbot):
    """As when the Live plots dock opens below the card."""
    card = card_at(qtbot, "float64", size=(700, 300))
    for table in card.tables.values():
        if not table.isHidden():
            qtbot.waitUntil(lambda t=table: t.viewport().height() >= 3 * ROW_HEIGHT)
            assert table.horizontalHeader().defaultSectionSize() >= table.natural_width()
