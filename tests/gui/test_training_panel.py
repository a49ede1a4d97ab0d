"""The training panel and its worker thread: Start, Pause, Step, Stop, Reset, breakpoints,
time travel and closing mid-run, waited for with signals, never with sleeps."""

import numpy as np
import pytest

from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from engine.train.lockstep import TrainConfig
from engine.train.run import TrainingRun, train
from engine.train.torch_process import MIN_STEPS
from gui.session_model import SessionModel
from gui.training.panel import TrainingPanel


@pytest.fixture
def panel(qtbot):
    spec = preset(DEFAULT_PRESET)
    model = SessionModel(Session(spec, init_params(spec, 1), default_set(spec, 20, seed=1)))
    widget = TrainingPanel(model)
    qtbot.addWidget(widget)
    widget.batches = []
    widget.controller.records.connect(widget.batches.append)
    yield widget
    widget.shutdown()
    assert widget.controller.thread.isFinished()


def run_to_stop(qtbot, panel, action, timeout=20_000):
    with qtbot.waitSignal(panel.controller.stopped, timeout=timeout) as blocker:
        action()
    return blocker.args[0]


def test_start_runs_to_the_end_in_batches(qtbot, panel):
    panel.epochs.setValue(3)
    assert run_to_stop(qtbot, panel, panel.buttons["Start"].click) == "done"
    records = [r for batch in panel.batches for r in batch]
    assert [r.step for r in records] == list(range(1, 61))
    assert len(panel.batches) < 60  # batched every ~40 ms, never a signal per step
    assert panel.progress.value() == 60 and "finished: 60 steps" in panel.outcome.text()
    assert panel.buttons["Start"].isEnabled()  # a new run, from where this one ended
    # the window's trainer gives the numbers `app.py train` gives for the same seed
    spec, session = preset(DEFAULT_PRESET), panel.model.session
    expected = list(train(spec, init_params(spec, 1), default_set(spec, 20, seed=1),
                          TrainConfig(lr=0.1, epochs=3)))
    assert [r.loss_scratch for r in records] == [r.loss_scratch for r in expected]
    scratch, _ = panel.training.lockstep.params()
    assert all(np.array_equal(session.params[k], scratch[k]) for k in scratch)


def test_pause_then_resume(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    assert panel.buttons["Pause"].isEnabled() and not panel.buttons["Start"].isEnabled()
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    paused_at = panel.training.step
    assert panel.model.session.sample_index == int(panel.training.timeline.batch(paused_at + 1)[0])
    assert run_to_stop(qtbot, panel, panel.buttons["Step"].click) == "steps"
    assert panel.training.step == paused_at + 1
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    assert run_to_stop(qtbot, panel, panel.buttons["Stop"].click) == "interrupted"
    assert panel.training.done and not panel.buttons["Stop"].isEnabled()
    assert "stopped after step" in panel.outcome.text()
    stopped = {k: v.copy() for k, v in panel.model.session.params.items()}
    assert run_to_stop(qtbot, panel, panel.buttons["Step"].click) == "steps"
    assert panel.training.step == 1  # a new run, from the parameters the last one ended at
    assert all(np.array_equal(panel._start_params[k], stopped[k]) for k in stopped)


def test_step_takes_one_step(qtbot, panel):
    assert run_to_stop(qtbot, panel, panel.buttons["Step"].click) == "steps"
    assert panel.training.step == 1 and panel.progress.value() == 1


def test_reset_restores_the_starting_parameters(qtbot, panel):
    start = {k: v.copy() for k, v in panel.model.session.params.items()}
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    assert not np.array_equal(panel.model.session.params["w1"], start["w1"])
    panel.buttons["Reset"].click()
    assert all(np.array_equal(panel.model.session.params[k], start[k]) for k in start)
    assert panel.training is None and panel.buttons["Start"].isEnabled()


def test_nan_breakpoint_with_a_huge_learning_rate(qtbot, panel):
    panel.lr.setText("1e6")
    outcome = run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    assert outcome.startswith("diverged at step")
    assert "try a smaller one, such as 100000" in panel.outcome.text()
    assert not panel.smaller.isHidden()
    broke = panel.training.step
    # the stepping view stands just before the step that broke, on its sample
    session = panel.model.session
    assert all(np.all(np.isfinite(v)) for v in session.params.values())
    assert session.sample_index == int(panel.training.timeline.batch(broke)[0])
    panel.smaller.click()
    assert panel.lr.text() == "100000" and panel.training is None


def test_threshold_breakpoint(qtbot, panel):
    panel.threshold_on.setChecked(True)
    panel.threshold.setValue(0.0)
    outcome = run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    assert outcome.startswith("step 1: the gradients of") and panel.training.step == 1


def test_time_travel_restores_both_engines_exactly(qtbot, panel):
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    timeline = panel.training.timeline
    panel.slider.setValue(37)
    panel.slider.sliderReleased.emit()
    scratch, theirs = timeline.params_at(36)
    session = panel.model.session
    assert all(np.array_equal(session.params[k], scratch[k]) for k in scratch)
    assert all(np.array_equal(session.torch_params[k], theirs[k]) for k in theirs)
    assert session.sample_index == int(timeline.batch(37)[0])
    assert "step 37 (epoch 2, sample" in panel.slider_label.text()


def test_closing_mid_run_stops_and_joins(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    panel.shutdown()
    assert panel.controller.thread.isFinished()
    assert panel.training.step < panel.training.total


def test_a_bad_learning_rate_is_a_message(qtbot, panel):
    messages = []
    panel.message.connect(messages.append)
    panel.lr.setText("fast")
    panel.buttons["Start"].click()
    assert messages == ["the learning rate 'fast' is not a number"]
    panel.lr.setText("-1")
    panel.buttons["Start"].click()
    assert "learning rate must be a positive number" in messages[-1]
    assert panel.training is None


def test_a_long_run_hands_torch_to_the_helper_with_the_same_numbers(qtbot, panel):
    """Past MIN_STEPS steps, torch's steps come from the helper process (engine/
    torch_process.py); the run gives the numbers of a run without one, and pausing and
    resuming across the handover changes nothing."""
    panel.epochs.setValue(100_000)           # far longer than the helper takes to start
    assert panel.config().epochs * 20 >= MIN_STEPS
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    helper = panel.training.handover.helper
    qtbot.waitUntil(helper.ready, timeout=120_000)
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: panel.training.handover.active, timeout=20_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        pass                                 # some steps from the helper
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    spec = preset(DEFAULT_PRESET)
    expected = TrainingRun(spec, init_params(spec, 1), default_set(spec, 20, seed=1),
                           panel.config(), parallel=False)
    while expected.step < panel.training.step:
        expected.advance()
    for ours, theirs in zip(panel.training.lockstep.params(), expected.lockstep.params(),
                            strict=True):
        assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    panel.reset()                            # a dropped run ends its helper
    assert helper.process.wait(timeout=10) is not None


def test_closing_mid_run_ends_the_helper(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: panel.training.handover.active, timeout=120_000)
    process = panel.training.handover.helper.process
    panel.shutdown()
    assert process.wait(timeout=10) is not None
