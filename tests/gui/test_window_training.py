"""Training inside the window: the panel, the plots and the stepping view work together, and
closing the window mid-run stops and joins the worker."""

import sys
import time

import numpy as np
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.training.worker import SWITCH_INTERVAL, YIELD_FOR, TrainWorker


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


def test_the_loop_waits_while_the_window_handles_an_event_and_goes_on_after(qtbot,
                                                                             monkeypatch):
    """Any event the GUI thread handles while a run runs (a paint, a layout of the plots)
    parks the loop between two steps until the event loop idles (TrainController.park), with
    the GIL's switch interval at 1 ms; once the run stops, events leave the loop alone and the
    interval is Python's again."""
    monkeypatch.setattr("gui.training.worker.PARK_LIMIT", 60.0)   # no step of its own meanwhile
    before = sys.getswitchinterval()
    window = window_on(qtbot)
    docks = window.training
    controller = docks.panel.controller
    docks.panel.epochs.setValue(2_000)        # 40,000 steps: it is paused long before the end
    with qtbot.waitSignal(controller.records, timeout=20_000):
        docks.panel.buttons["Start"].click()
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    go = controller.worker.go
    for receiver, kind in ((window, QEvent.Type.UpdateRequest),
                           (docks.plots, QEvent.Type.LayoutRequest)):
        QApplication.sendEvent(receiver, QEvent(kind))
        assert not go.is_set()
        assert controller.worker.parked.is_set()   # the event waited for it to end its step
        parked_at = _settled(lambda: docks.panel.training.step)
        time.sleep(0.1)                       # no event is processed: it stays parked
        assert docks.panel.training.step == parked_at
        qtbot.waitUntil(lambda at=parked_at: docks.panel.training.step > at, timeout=5_000)
    with qtbot.waitSignal(controller.stopped, timeout=20_000):
        controller.pause()
    QApplication.sendEvent(window, QEvent(QEvent.Type.UpdateRequest))
    assert go.is_set()
    assert sys.getswitchinterval() == before
    window.close()


def test_the_loop_lets_go_of_the_gil_once_every_yield_every(monkeypatch):
    naps = []
    monkeypatch.setattr("gui.training.worker.time.sleep", naps.append)
    monkeypatch.setattr("gui.training.worker.YIELD_EVERY", 3600.0)
    worker = TrainWorker()
    for _ in range(1000):
        worker.interrupted()
    assert naps == [YIELD_FOR]
    monkeypatch.setattr("gui.training.worker.YIELD_EVERY", 0.0)
    worker = TrainWorker()
    for _ in range(5):
        worker.interrupted()
    assert naps == [YIELD_FOR] * 6


def test_a_loop_parked_by_a_gui_thread_that_never_idles_goes_on_by_itself(monkeypatch):
    monkeypatch.setattr("gui.training.worker.PARK_LIMIT", 0.01)
    worker = TrainWorker()
    worker.go.clear()
    assert worker.interrupted() is False    # it waited PARK_LIMIT, then took its step
    assert worker.go.is_set()


def test_pause_before_a_new_run_begins(qtbot):
    """A new run waits REVEAL_MS for the window to lay out its plots; Pause meanwhile stops it
    before its first step."""
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


def _settled(read, timeout=10.0):
    """The value `read` gives once two reads 20 ms apart agree (without processing events)."""
    start, last = time.monotonic(), read()
    while time.monotonic() - start < timeout:
        time.sleep(0.02)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError("the loop never stopped between two steps")
