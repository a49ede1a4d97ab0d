"""The stage list, the stage card and the sample panel show the session's numbers, follow its
stage and sample, and move it when a person clicks or types; the formula helpers they use."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.net.spec import NetworkSpec, preset
from engine.session import Session
from gui.colors import GRADES
from gui.numbers import digits_text, exact, short
from gui.session_model import SessionModel
from gui.stepping.array_table import as_matrix
from gui.stepping.formula import plain_symbol, symbol_key, to_html, with_numbers
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
                    "<sup>T</sup> + <i>b</i><sub>2</sub>")
    assert to_html("∂L/∂z3 = ∂L/∂y3 ⊙ [z3 > 0]").startswith("∂<i>L</i>/∂<i>z</i><sub>3</sub>")
    assert "&gt;" in to_html("[z3 > 0]") and "sigmoid" in to_html("sigmoid(z1)")
    assert plain_symbol("∂L/∂w3") == "∂L/∂w₃"


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
