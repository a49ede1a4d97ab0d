"""Training inside the window: the panel, the plots and the stepping view work together, and
closing the window mid-run stops and joins the worker."""

import numpy as np

from engine.datasets import default_set
from engine.params import init_params
from engine.session import Session
from engine.spec import DEFAULT_PRESET, preset
from gui.main_window import MainWindow
from gui.session_model import SessionModel


def window_on(qtbot, n=20):
    spec = preset(DEFAULT_PRESET)
    model = SessionModel(Session(spec, init_params(spec, 1), default_set(spec, n, seed=1)))
    window = MainWindow(model)
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_run_feeds_the_plots_and_the_stepping_view(qtbot):
    window = window_on(qtbot)
    docks = window.training
    assert docks.plots_dock.isHidden()  # the explorer has the window until a run starts
    docks.panel.epochs.setValue(3)
    with qtbot.waitSignal(docks.panel.controller.stopped, timeout=20_000):
        docks.panel.buttons["Start"].click()
    assert not docks.plots_dock.isHidden()
    docks.plots.redraw()
    x, _ = docks.plots.loss_plot.series["scratch"].curve.getData()
    assert len(x) == 60 and x[-1] == 60
    scratch, _ = docks.panel.training.lockstep.params()
    assert all(np.array_equal(window.model.session.params[k], scratch[k]) for k in scratch)
    assert window.status.activity.text() == "finished: 60 steps"
    # the stepping view now runs both engines at the trained parameters
    window.model.session.run_sample()
    assert window.stage_list.current_row() == len(window.model.session.pairs) - 1
    window.close()
    assert docks.panel.controller.thread.isFinished()


def test_closing_the_window_mid_run_stops_the_worker(qtbot):
    window = window_on(qtbot)
    docks = window.training
    docks.panel.epochs.setValue(100_000)
    with qtbot.waitSignal(docks.panel.controller.records, timeout=10_000):
        docks.panel.buttons["Start"].click()
    window.close()
    assert docks.panel.controller.thread.isFinished()
    assert docks.panel.training.step < docks.panel.training.total
