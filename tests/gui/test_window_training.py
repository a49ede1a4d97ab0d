"""Training inside the window: the panel, the plots and the stepping view work together; the
run is in a child process, which closing the window ends, and whose death or silence the
window reports and outlives."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from engine.train.lockstep import TrainConfig
from engine.train.run import TrainingRun
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from tests.helpers import children_of, gone

ROOT = Path(__file__).resolve().parents[2]


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
    scratch, _ = docks.panel.training.params()
    assert all(np.array_equal(window.model.session.params[k], scratch[k]) for k in scratch)
    # said once the views show the trained parameters, which would put the stage's meaning
    # over it
    qtbot.waitUntil(lambda: window.status.activity.text() == "finished: 60 steps",
                    timeout=5000)
    # the stepping view now runs both engines at the trained parameters
    window.model.session.run_sample()
    assert window.stage_list.current_row() == len(window.model.session.pairs) - 1
    child = docks.panel.controller.client.pid
    window.close()
    assert gone(child)


def test_a_runs_end_is_computed_at_once_and_shown_in_a_turn_of_its_own(qtbot):
    """When the run stops the session holds the trained parameters already; its listeners (the
    views) hear of them in a later turn of the event loop, not in the one that computed them."""
    window = window_on(qtbot)
    panel, session = window.training.panel, window.model.session
    panel.epochs.setValue(2)
    heard, at_stop = [], []
    session.subscribe(heard.append)
    panel.controller.stopped.connect(lambda _outcome: at_stop.append(
        (len(heard), {k: v.copy() for k, v in session.params.items()})))
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000):
        panel.buttons["Start"].click()
    (before, params), = at_stop
    scratch, _ = panel.training.params()
    assert all(np.array_equal(params[k], scratch[k]) for k in scratch)
    qtbot.waitUntil(lambda: len(heard) > before, timeout=5000)
    assert heard[before] == "network"
    assert window.stage_list.current_row() == session.stage_index


def test_closing_the_window_mid_run_ends_the_child_and_its_helper(qtbot):
    window = window_on(qtbot)
    docks = window.training
    docks.panel.epochs.setValue(100_000)
    with qtbot.waitSignal(docks.panel.controller.records, timeout=20_000):
        docks.panel.buttons["Start"].click()
    child = docks.panel.controller.client.pid
    qtbot.waitUntil(lambda: len(children_of(child)) == 1, timeout=60_000)   # the helper
    helper = children_of(child)[0]
    window.close()
    assert gone(child) and gone(helper)
    assert docks.panel.training.step < docks.panel.training.total


def test_a_killed_child_is_a_message_and_the_window_keeps_what_it_received(qtbot):
    window = window_on(qtbot)
    panel = window.training.panel
    panel.epochs.setValue(100_000)
    received = []
    panel.controller.records.connect(received.extend)
    with qtbot.waitSignal(panel.controller.snapshot, timeout=20_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: panel.training.state_step > 0, timeout=20_000)
    with qtbot.waitSignal(panel.controller.lost, timeout=20_000) as lost:
        os.kill(panel.controller.client.pid, signal.SIGKILL)
    assert lost.args == ["the training process stopped: it was killed by signal 9 (SIGKILL)"]
    assert "the training process stopped: it was killed by signal 9" in panel.outcome.text()
    # said once the views show the state kept
    qtbot.waitUntil(lambda: window.status.activity.text() == panel.outcome.text(),
                    timeout=5000)
    training = panel.training
    assert not panel.controller.running and training.done
    assert training.step == received[-1].step and training.state_step <= training.step
    # the session stands at the last state received, which is the in-process run's there
    spec = preset(DEFAULT_PRESET)
    expected = TrainingRun(spec, init_params(spec, 1), default_set(spec, 20, seed=1),
                           TrainConfig(lr=0.1, epochs=100_000), parallel=False)
    while expected.step < training.state_step:
        expected.advance()
    scratch, _ = expected.lockstep.params()
    assert all(np.array_equal(window.model.session.params[k], scratch[k]) for k in scratch)
    window.training.plots.redraw()
    x, _ = window.training.plots.loss_plot.series["scratch"].curve.getData()
    assert x[-1] == received[-1].step          # the plots keep every step that came
    # and the window goes on: a new run in a new child
    panel.epochs.setValue(1)
    with qtbot.waitSignal(panel.controller.stopped, timeout=30_000) as stopped:
        panel.buttons["Start"].click()
    assert stopped.args == ["done"] and panel.training.step == 20
    window.close()


def test_a_child_that_stops_answering_is_ended_and_reported(qtbot):
    window = window_on(qtbot)
    panel = window.training.panel
    panel.controller.silence = 1.0
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    child = panel.controller.client.pid
    with qtbot.waitSignal(panel.controller.lost, timeout=20_000) as lost:
        os.kill(child, signal.SIGSTOP)
    assert "it stopped answering (no word in 1 s) and was ended" in lost.args[0]
    assert gone(child) and not panel.controller.running
    assert "the training process stopped" in panel.outcome.text()
    window.close()


def test_pause_before_a_new_run_begins(qtbot):
    """Pause pressed at once, while the child still builds the run, stops it before its first
    step; Start then runs it from there."""
    window = window_on(qtbot)
    panel = window.training.panel
    with qtbot.waitSignal(panel.controller.stopped, timeout=5_000) as stopped:
        panel.buttons["Start"].click()
        assert panel.controller.running
        panel.buttons["Pause"].click()
    assert stopped.args == ["interrupted"]
    assert panel.training.step == 0 and not panel.controller.running
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000):
        panel.buttons["Start"].click()      # resumes: the same run from its start
    assert panel.training.done and panel.training.step == panel.training.total
    window.close()


KILLED_WINDOW = textwrap.dedent("""
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication
    from engine.files.datasets import default_set
    from engine.net.params import init_params
    from engine.net.spec import DEFAULT_PRESET, preset
    from engine.session import Session
    from gui.main_window import MainWindow
    from gui.session_model import SessionModel
    from tests.helpers import children_of
    app = QApplication([])
    spec = preset(DEFAULT_PRESET)
    window = MainWindow(SessionModel(Session(spec, init_params(spec), default_set(spec, 20))))
    window.show()
    panel = window.training.panel
    panel.epochs.setValue(100_000)
    def report(records):
        child = panel.controller.client.pid
        helpers = children_of(child)
        if helpers:      # the helper is up: both pids, then the window waits to be killed
            print(child, helpers[0], flush=True)
            panel.controller.records.disconnect(report)
    panel.controller.records.connect(report)
    panel.start(0)
    app.exec()
""")


def test_killing_the_window_leaves_no_training_process_behind(qtbot):
    window = subprocess.Popen([sys.executable, "-c", KILLED_WINDOW], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        child, helper = map(int, window.stdout.readline().split())
        assert not gone(child) and not gone(helper)
        window.send_signal(signal.SIGKILL)
        window.wait()
        qtbot.waitUntil(lambda: gone(child) and gone(helper), timeout=60_000)
    finally:
        window.kill()
        window.wait()
