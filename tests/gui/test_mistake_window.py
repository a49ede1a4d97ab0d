"""Tools > Inject a mistake, as a person uses it: the stage list and the network turn red from
the stage where the scratch pass departs from torch, the card puts the right formula beside the
one the mistake used, training makes the mistake too, and "No mistake" clears it all."""

import pytest
from PySide6.QtGui import QAction

from engine.check.mistakes import MISTAKES, RIGHT_UPDATE, inject
from engine.net.spec import preset
from engine.session import Session
from gui.main_window import MainWindow
from gui.mistake_actions import NO_MISTAKE
from gui.stepping.formula import to_html
from tests.gui.windows import window_on


def inject_menu(window: MainWindow) -> dict[str, QAction]:
    """Tools > Inject a mistake's actions by their text, read from the menu bar."""
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    submenu = next(a.menu() for a in tools.actions() if a.text() == "&Inject a mistake")
    return {a.text(): a for a in submenu.actions() if not a.isSeparator()}


def choose(window: MainWindow, title: str) -> None:
    action = inject_menu(window)[title]
    assert action.isEnabled(), title
    action.trigger()


def go_to(window: MainWindow, key: str) -> None:
    session = window.model.session
    session.go_to_stage(next(i for i, p in enumerate(session.pairs) if p.key == key))


def assert_red_from(window: MainWindow, key: str) -> None:
    """The stage list is red from the stage `key` to the end, and marks `key` as the first."""
    session = window.model.session
    row = next(i for i, p in enumerate(session.pairs) if p.key == key)
    assert window.stage_list.departure_row() == row
    assert window.stage_list.red_rows() == list(range(row, len(session.pairs)))


def assert_card_swaps(window: MainWindow, right: str, used: str) -> None:
    card = window.stage_card
    assert (card.shown_swap.right, card.shown_swap.used) == (right, used)
    assert card.swap.isVisibleTo(card) and not card.formula.isVisibleTo(card)
    assert to_html(right) in card.swap.text() and to_html(used) in card.swap.text()


def assert_cleared(window: MainWindow) -> None:
    card, session = window.stage_card, window.model.session
    assert session.mistake is None and session.first_departure is None
    assert window.stage_list.red_rows() == [] and window.stage_list.departure_row() is None
    assert card.shown_swap is None and card.formula.isVisibleTo(card)
    assert not card.departure.isVisibleTo(card)
    layer = session.stage.scratch.info.layers[0]
    assert window.network_view.node_highlighted(layer, 0)
    assert inject_menu(window)["&No mistake (correct backprop)"].isChecked()


@pytest.mark.parametrize("name", [n for n, m in MISTAKES.items() if m.from_sample == 1])
def test_a_mistake_turns_the_window_red_from_its_first_stage(qtbot, name):
    window = window_on(qtbot)
    mistake = MISTAKES[name]
    choose(window, mistake.title)
    injection = inject(window.model.session.spec, name)
    assert window.mistake_actions.actions[name].isChecked()
    assert_red_from(window, injection.first_stage)
    assert mistake.title in window.statusBar().currentMessage()
    for swap in injection.swaps():
        go_to(window, swap.key)
        assert_card_swaps(window, swap.right, swap.used)
        # the network highlights the stage's columns in red, not in the usual amber
        for column in window.model.session.stage.scratch.info.layers:
            assert window.network_view.node_departed(column, 0)
    go_to(window, "z1")  # before the departure: nothing red on the network or the card
    assert window.network_view.node_highlighted(1, 0)
    assert window.stage_card.shown_swap is None
    choose(window, "&No mistake (correct backprop)")
    assert_cleared(window)


def test_a_mistake_is_not_a_change_of_the_network(qtbot):
    """Choosing one changes no parameter: nothing that follows the network (the unsaved-changes
    guard, the weights drawn) hears of it; what shows the stages does."""
    window = window_on(qtbot)
    model = window.model
    with qtbot.assertNotEmitted(model.networkChanged), qtbot.waitSignals(
            [model.mistakeChanged, model.sampleChanged, model.stageChanged]):
        choose(window, MISTAKES["dropped_factor_2"].title)


def test_accumulated_gradients_show_from_the_next_sample(qtbot):
    window = window_on(qtbot)
    choose(window, MISTAKES["accumulated_gradients"].title)
    assert window.stage_list.red_rows() == []  # sample 1: the buffers were empty
    window.run_actions.actions["next"].trigger()
    assert_red_from(window, "dL/dw3")
    go_to(window, "dL/db2")
    swap = next(s for s in window.model.session.mistake.swaps() if s.key == "dL/db2")
    assert_card_swaps(window, swap.right, swap.used)
    assert "(scratch, as it computed it)" in window.stage_card.numbers.text()
    choose(window, "&No mistake (correct backprop)")
    assert_cleared(window)


def test_a_flipped_update_shows_after_training_with_it(qtbot):
    window = window_on(qtbot)
    choose(window, MISTAKES["flipped_update_sign"].title)
    assert window.stage_list.red_rows() == []  # no update yet: every gradient is right
    panel = window.training.panel
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000):
        panel.buttons["Step"].click()
    assert panel.training.mistake == window.model.session.mistake
    # the views show the run's end in a turn after it: the parameters climbed the loss, and
    # everything departs
    qtbot.waitUntil(lambda: assert_red_from(window, "z1"), timeout=5000)
    assert window.network_view.node_departed(1, 0)
    assert_card_swaps(window, RIGHT_UPDATE, "θ ← θ + lr·∂L/∂θ")
    choose(window, "&No mistake (correct backprop)")
    assert panel.training is None  # the run made another mistake: it is dropped
    # the parameters the run left still differ: the list stays red, and the card says why
    assert_red_from(window, "z1")
    assert "moved the engines' parameters apart" in window.stage_card.departure.text()


def test_a_mistake_this_network_cannot_make_is_disabled_with_the_reason(qtbot):
    window = window_on(qtbot, Session(preset("2-2-1-tanh-bce")))
    actions = inject_menu(window)
    factor = actions[MISTAKES["dropped_factor_2"].title]
    assert not factor.isEnabled() and "no factor 2 to drop" in factor.toolTip()
    assert actions[MISTAKES["forgotten_activation_derivative"].title].isEnabled()
    assert actions["&No mistake (correct backprop)"].isChecked()
    assert len(actions) == len(MISTAKES) + 1


def test_a_new_network_drops_a_mistake_it_cannot_make_and_says_so(qtbot):
    window = window_on(qtbot)
    choose(window, MISTAKES["untransposed_weight"].title)
    window.model.session.set_network(preset("2-10-5-1-sigmoid-squared"))
    assert window.mistake_actions.actions[NO_MISTAKE].isChecked()
    assert not window.mistake_actions.actions["untransposed_weight"].isEnabled()
    assert "untransposed_weight cannot be made" in window.statusBar().currentMessage()
    assert window.stage_list.red_rows() == []
    choose(window, MISTAKES["dropped_factor_2"].title)
    window.model.session.set_network(preset("2-10-10-1-sigmoid-squared"))
    assert window.mistake_actions.actions["dropped_factor_2"].isChecked()
    assert_red_from(window, "dL/dy_hat")
