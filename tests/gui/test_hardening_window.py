"""Divergence in the window, for every activation and loss at a learning rate of 1e6 on inputs
of 1e30: the plots take the records and draw, the training pauses with the message and offers
a smaller learning rate, and the stepping view shows the inf and NaN stages. Nothing raises
(pytest-qt fails a test on an exception in a slot), nothing warns."""

import warnings

import numpy as np
import pytest

from engine.files.datasets import Dataset, default_set
from engine.net.activations import ACTIVATIONS
from engine.net.losses import LOSSES
from engine.net.params import init_params
from engine.net.spec import NetworkSpec, preset
from engine.session import Session
from engine.train.lockstep import TrainConfig
from engine.train.run import train
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.training.plots import TrainingPlots

pytestmark = [pytest.mark.filterwarnings("error"),
              pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]


def network(loss: str, activation: str) -> NetworkSpec:
    output = "sigmoid" if loss == "bce" else "identity"
    return NetworkSpec((2, 3, 3, 1), (activation, activation, output), loss)


def huge(spec: NetworkSpec, n: int = 8, scale: float = 1e30) -> Dataset:
    base = default_set(spec, n, seed=0)
    return Dataset(base.x * spec.np_dtype(scale), base.y, f"inputs ×{scale:g}")


@pytest.fixture(scope="module")
def shared(qapp):
    widget = TrainingPlots()
    widget.resize(1000, 700)
    widget.show()
    yield widget
    widget.close()
    widget.deleteLater()


@pytest.mark.parametrize("loss", list(LOSSES))
def test_the_plots_survive_every_diverging_network(shared, qtbot, loss):
    qtbot.waitExposed(shared)
    for activation in ACTIVATIONS:
        spec = network(loss, activation)
        data = huge(spec)
        # no breakpoint here: the records go on past the divergence, NaN and inf included
        records = list(train(spec, init_params(spec, 0), data, TrainConfig(lr=1e6, epochs=6)))
        broken = next((r.step for r in records if not r.finite), None)
        shared.reset(spec, 1e-6)
        for start in range(0, len(records), 7):
            shared.add_records(records[start:start + 7])
        shared.set_state(spec, init_params(spec, 0), data)
        shared.redraw()
        shared.repaint()
        assert shared.diverged_line.isVisible() == (broken is not None), activation
        if broken is not None:
            assert shared.diverged_line.value() == broken
        again = shared.history()
        shared.restore_history(spec, again)      # what a restored session draws
        assert shared.diverged_line.isVisible() == (broken is not None), activation
        for name, (_, values) in again.items():
            np.testing.assert_array_equal(shared.history()[name][1][-len(values):], values)


@pytest.fixture(params=["squared_error", "bce"])
def diverging_window(qtbot, request):
    spec = (preset("2-10-5-1-sigmoid-squared") if request.param == "squared_error"
            else network("bce", "identity"))   # its ŷ turns NaN, which torch's bce refuses
    model = SessionModel(Session(spec, init_params(spec, 1), huge(spec, n=10)))
    window = MainWindow(model)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.training.panel.lr.setText("1e6")
    return window


def walk_all_stages(window: MainWindow) -> list[str]:
    """Step through the whole sample with the numerical gradient shown; the stages holding
    inf or NaN."""
    session = window.model.session
    window.stage_card.numerical_box.setChecked(True)
    session.reset()
    broken = []
    while True:
        if not np.all(np.isfinite(session.stage.scratch.value)):
            broken.append(session.stage.key)
        if session.stage_index == len(session.pairs) - 1:
            break
        window.run_actions.actions["step"].trigger()
    window.stage_card.numerical_box.setChecked(False)
    return broken


def test_the_window_pauses_says_why_and_offers_a_smaller_rate(qtbot, diverging_window):
    window = diverging_window
    panel = window.training.panel
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000) as stopped:
        window.training.train_action.trigger()
    reason = stopped.args[0]
    assert reason.startswith("diverged at step ") and "try a smaller one, such as 100000" in reason
    assert panel.outcome.text() == f"paused: {reason}"
    assert window.status.activity.text() == f"paused: {reason}"
    assert not panel.smaller.isHidden()
    assert not window.training.plots_dock.isHidden()
    window.training.plots.redraw()
    assert window.training.plots.diverged_line.isVisible()
    walk_all_stages(window)           # the step that broke, from the parameters before it
    panel.smaller.click()
    assert panel.lr.text() == "100000" and panel.training is None


def test_a_run_past_the_divergence_shows_inf_and_nan_stages(qtbot, diverging_window):
    window = diverging_window
    panel = window.training.panel
    panel.nonfinite.setChecked(False)
    panel.epochs.setValue(2)
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000):
        panel.buttons["Start"].click()
    assert panel.outcome.text() == "finished: 20 steps"
    params = window.model.session.params
    assert not all(np.all(np.isfinite(v)) for v in params.values())
    assert walk_all_stages(window), "the stepping view shows where the numbers broke"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        window.model.session.next_sample()
        window.training.plots.redraw()
        window.repaint()
