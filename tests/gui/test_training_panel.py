"""The training panel and the run's child process: Start, Pause, Step, Stop, Reset,
breakpoints, time travel and closing mid-run, waited for with signals, never with sleeps. Every
number is the one an in-process run of the same settings gives."""

import numpy as np
import pytest

from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import TrainingRun, train
from engine.train.torch_process import MIN_STEPS
from gui.session_model import SessionModel
from gui.training.panel import TrainingPanel
from tests.helpers import children_of, gone


@pytest.fixture(scope="module", autouse=True)
def threads_1():
    """The in-process runs compared with run torch on one thread, as the child does."""
    from engine.net.reference import set_torch_threads, torch_threads
    before = torch_threads()
    set_torch_threads(1)
    yield
    set_torch_threads(before)


@pytest.fixture
def panel(qtbot):
    spec = preset(DEFAULT_PRESET)
    model = SessionModel(Session(spec, init_params(spec, 1), default_set(spec, 20, seed=1)))
    widget = TrainingPanel(model)
    qtbot.addWidget(widget)
    widget.batches = []
    widget.controller.records.connect(widget.batches.append)
    widget.children = []      # the child processes the test saw
    yield widget
    widget.shutdown()
    for pid in widget.children + child_pids(widget):
        assert gone(pid), f"process {pid} outlived the panel"


def child_pids(panel) -> list[int]:
    """The training child and its torch helper, while the child runs."""
    client = panel.controller.client
    if client is None:
        return []
    panel.children.append(client.pid)
    return [client.pid, *children_of(client.pid)]


def in_process(panel, steps: int) -> TrainingRun:
    """The run the panel started, taken `steps` steps in this process, torch in-process."""
    spec = preset(DEFAULT_PRESET)
    expected = TrainingRun(spec, init_params(spec, 1), default_set(spec, 20, seed=1),
                           panel.config(), parallel=False)
    while expected.step < steps:
        expected.advance()
    return expected


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


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
    scratch, theirs = in_process(panel, 60).lockstep.params()
    assert same_params(session.params, scratch) and same_params(session.torch_params, theirs)
    assert same_params(panel.training.params()[0], scratch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mistake", [None, "dropped_factor_2", "accumulated_gradients"])
def test_the_window_gives_the_numbers_of_app_py_train(qtbot, dtype, mistake):
    """Every record and the final parameters of both engines, bit for bit, in either dtype,
    with a mistake or none, as `train` in this process gives them."""
    from engine.check.mistakes import inject
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype)
    params, data = init_params(spec, 2), default_set(spec, 20, seed=2)
    injection = inject(spec, mistake) if mistake else None
    model = SessionModel(Session(spec, params, data))
    model.session.set_mistake(mistake)
    widget = TrainingPanel(model)
    qtbot.addWidget(widget)
    widget.epochs.setValue(4)
    got = []
    widget.controller.records.connect(got.extend)
    try:
        assert run_to_stop(qtbot, widget, widget.buttons["Start"].click) == "done"
        lockstep = Lockstep(spec, params, data, mistake=injection)
        expected = list(train(spec, params, data, TrainConfig(lr=0.1, epochs=4),
                              lockstep=lockstep, parallel=False))
        assert got == expected
        for ours, theirs in zip(widget.training.params(), lockstep.params(), strict=True):
            assert same_params(ours, theirs)
            assert all(v.dtype == spec.np_dtype for v in ours.values())
        assert same_params(widget.training.buffers(), lockstep.buffers())
        assert bool(lockstep.buffers()) == (mistake == "accumulated_gradients")
    finally:
        widget.shutdown()


def test_pause_then_resume(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        panel.buttons["Start"].click()
    assert panel.buttons["Pause"].isEnabled() and not panel.buttons["Start"].isEnabled()
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    paused_at = panel.training.step
    session = panel.model.session
    assert session.sample_index == int(panel.training.schedule.batch(paused_at + 1)[0])
    assert same_params(session.params, in_process(panel, paused_at).lockstep.params()[0])
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
    assert session.sample_index == int(panel.training.schedule.batch(broke)[0])
    assert same_params(session.params, in_process(panel, broke - 1).lockstep.params()[0])
    panel.smaller.click()
    assert panel.lr.text() == "100000" and panel.training is None


def test_threshold_breakpoint(qtbot, panel):
    panel.threshold_on.setChecked(True)
    panel.threshold.setValue(0.0)
    outcome = run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    assert outcome.startswith("step 1: the gradients of") and panel.training.step == 1


def test_time_travel_restores_both_engines_exactly(qtbot, panel):
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    expected = in_process(panel, 100).timeline
    for step in (37, 1, 100):
        panel.slider.setValue(step)
        with qtbot.waitSignal(panel.controller.travelled, timeout=20_000):
            panel.slider.sliderReleased.emit()
        scratch, theirs = expected.params_at(step - 1)
        session = panel.model.session
        assert same_params(session.params, scratch) and same_params(session.torch_params, theirs)
        assert session.sample_index == int(expected.batch(step)[0])
    panel.slider.setValue(37)
    assert "step 37 (epoch 2, sample" in panel.slider_label.text()


def test_an_old_answer_never_moves_the_view(qtbot, panel, monkeypatch):
    """The slider moved twice before the window read the child's answers: only the last move
    is shown."""
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    shown = []
    panel.model.session.subscribe(lambda event: shown.append(panel.model.session.params))
    with monkeypatch.context() as unread:       # both asked before either answer is read
        unread.setattr(panel.controller, "_pump", lambda *args: None)
        for step in (10, 20):
            panel.slider.setValue(step)
            panel.slider.sliderReleased.emit()
    with qtbot.waitSignal(panel.controller.travelled, timeout=20_000,
                          check_params_cb=lambda step, state: step == 19):
        pass
    assert not any(same_params(p, in_process(panel, 9).lockstep.params()[0]) for p in shown)
    expected = in_process(panel, 19).lockstep.params()[0]
    assert same_params(panel.model.session.params, expected)


def test_closing_mid_run_ends_the_child(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    pids = child_pids(panel)
    panel.shutdown()
    assert all(gone(pid) for pid in pids)
    assert panel.training.step < panel.training.total and not panel.controller.running


def test_a_bad_learning_rate_is_a_message(qtbot, panel):
    messages = []
    panel.message.connect(messages.append)
    panel.lr.setText("fast")
    panel.buttons["Start"].click()
    assert messages == ["the learning rate 'fast' is not a number"]
    panel.lr.setText("-1")
    panel.buttons["Start"].click()
    assert "learning rate must be a positive number" in messages[-1]
    assert panel.training is None and panel.controller.client is None   # no child for it


def test_a_long_run_hands_torch_to_the_helper_with_the_same_numbers(qtbot, panel):
    """Past MIN_STEPS steps the child computes torch's steps in its helper process
    (engine/train/torch_process.py); the run gives the numbers of a run without one, and
    pausing and resuming across the handover changes nothing."""
    panel.epochs.setValue(100_000)           # far longer than the helper takes to start
    assert panel.config().epochs * 20 >= MIN_STEPS
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: len(child_pids(panel)) == 2, timeout=60_000)   # the helper is up
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    resumed = panel.training.step
    qtbot.waitUntil(lambda: panel.training.step > max(resumed, MIN_STEPS) + 2_000,
                    timeout=120_000)
    assert run_to_stop(qtbot, panel, panel.buttons["Pause"].click) == "interrupted"
    expected = in_process(panel, panel.training.step)
    for ours, theirs in zip(panel.training.params(), expected.lockstep.params(), strict=True):
        assert same_params(ours, theirs)
    helper = children_of(panel.controller.client.pid)
    panel.reset()                            # a dropped run ends its helper
    qtbot.waitUntil(lambda: all(gone(pid) for pid in helper), timeout=10_000)
    assert not gone(panel.controller.client.pid)    # the child waits for the next run


def test_closing_mid_run_ends_the_helper(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: len(child_pids(panel)) == 2, timeout=60_000)
    pids = child_pids(panel)
    panel.shutdown()
    assert all(gone(pid) for pid in pids)


def test_a_new_run_clears_what_the_last_one_said_and_the_bar_agrees(qtbot, panel):
    assert panel.progress.text() == "no run"
    panel.epochs.setValue(3)
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    assert panel.outcome.text() == "finished: 60 steps" and panel.progress.text() == "step 60 of 60"
    with qtbot.waitSignal(panel.controller.stopped, timeout=20_000):
        panel.buttons["Start"].click()               # a new run from where that one ended
        assert panel.outcome.text() == "" and panel.progress.text() == "step 0 of 60"
    panel.epochs.setValue(100_000)
    panel.buttons["Reset"].click()
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    assert run_to_stop(qtbot, panel, panel.stop) == "interrupted"
    step = panel.training.step
    assert "stopped after step" in panel.outcome.text()
    assert panel.progress.value() == panel.progress.maximum() == step   # not "of 2,000,000"
    panel.buttons["Reset"].click()
    assert panel.progress.text() == "no run" and panel.outcome.text() == ""


def test_the_steps_per_second_figure_is_shown(qtbot, panel):
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=20_000):
        panel.buttons["Start"].click()
    qtbot.waitUntil(lambda: panel.speed.text().endswith(" steps/s"), timeout=20_000)
    assert float(panel.speed.text().split()[0].replace(",", "")) > 0
    run_to_stop(qtbot, panel, panel.buttons["Pause"].click)
    assert float(panel.speed.text().split()[0].replace(",", "")) > 0   # the stretch's mean


def travelled_to(qtbot, panel, act) -> int:
    with qtbot.waitSignal(panel.controller.travelled, timeout=20_000) as blocker:
        act()
    return blocker.args[0] + 1


def test_time_travel_follows_the_keyboard(qtbot, panel):
    from PySide6.QtCore import Qt
    panel.epochs.setValue(5)
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    expected = in_process(panel, 100).timeline
    slider, session = panel.slider, panel.model.session
    for key, step in ((Qt.Key.Key_Home, 1), (Qt.Key.Key_Right, 2), (Qt.Key.Key_End, 100),
                      (Qt.Key.Key_Left, 99), (Qt.Key.Key_PageUp, 100),
                      (Qt.Key.Key_PageDown, 100 - slider.pageStep())):
        assert travelled_to(qtbot, panel, lambda k=key: qtbot.keyClick(slider, k)) == step
        assert slider.value() == step
        assert same_params(session.params, expected.params_at(step - 1)[0]), (key, step)
        assert session.sample_index == int(expected.batch(step)[0])


def test_time_travel_follows_a_click_on_the_groove(qtbot, panel):
    from PySide6.QtCore import QPoint, Qt
    panel.epochs.setValue(5)
    run_to_stop(qtbot, panel, panel.buttons["Start"].click)
    expected = in_process(panel, 100).timeline
    panel.resize(400, panel.sizeHint().height())
    panel.show()
    qtbot.waitExposed(panel)
    slider = panel.slider
    at = QPoint(slider.width() // 4, slider.height() // 2)
    step = travelled_to(qtbot, panel, lambda: qtbot.mouseClick(slider, Qt.MouseButton.LeftButton,
                                                                pos=at))
    assert step == slider.value() and 15 <= step <= 35        # where it was clicked, not a page
    assert same_params(panel.model.session.params, expected.params_at(step - 1)[0])
