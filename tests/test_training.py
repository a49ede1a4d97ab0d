"""The training loop, run directly with a mock state: batches, interruption, breakpoints."""

import pytest

from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.lockstep import TrainConfig
from engine.train.run import (
    DONE,
    INTERRUPTED,
    STEPS,
    Breakpoints,
    TrainingRun,
    run,
    train,
)

SPEC = preset(DEFAULT_PRESET)


class MockState:
    def __init__(self, stop_after: int | None = None):
        self.batches: list[list] = []
        self.stop_after = stop_after

    def interrupted(self) -> bool:
        return self.stop_after is not None and self.steps >= self.stop_after

    def report(self, records) -> None:
        self.batches.append(list(records))

    @property
    def steps(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def records(self) -> list:
        return [r for b in self.batches for r in b]


def make(lr=0.2, epochs=2, n=20):
    config = TrainConfig(lr=lr, epochs=epochs)
    return TrainingRun(SPEC, init_params(SPEC, 1), default_set(SPEC, n, seed=1), config), config


def test_a_whole_run_reports_every_step_once_in_order():
    training, config = make()
    state = MockState()
    assert run(training, state, report_every=0.0) == DONE
    assert [r.step for r in state.records] == list(range(1, 41))
    expected = list(train(SPEC, init_params(SPEC, 1), default_set(SPEC, 20, seed=1), config))
    assert [r.loss_scratch for r in state.records] == [r.loss_scratch for r in expected]
    assert [r.drift for r in state.records] == [r.drift for r in expected]


def test_records_arrive_in_batches_and_the_last_is_flushed():
    training, _ = make(epochs=3)
    state = MockState()
    run(training, state, report_every=3600)
    assert len(state.batches) == 1 and state.steps == 60


def test_steps_then_resume():
    training, _ = make()
    state = MockState()
    assert run(training, state, max_steps=1) == STEPS
    assert run(training, state, max_steps=5) == STEPS
    assert training.step == 6
    assert run(training, state) == DONE
    assert [r.step for r in state.records] == list(range(1, 41))


def test_interruption_acts_within_one_step():
    training, _ = make()
    state = MockState(stop_after=7)
    assert run(training, state, report_every=0.0) == INTERRUPTED
    assert training.step == 7


def test_divergence_pauses_at_the_step_and_says_so():
    training, _ = make(lr=1e6)
    state = MockState()
    outcome = run(training, state)
    assert outcome.startswith(f"diverged at step {training.step}")
    assert "try a smaller one, such as 100000" in outcome
    assert not state.records[-1].finite and all(r.finite for r in state.records[:-1])


def test_threshold_and_epoch_end_breakpoints():
    training, _ = make()
    outcome = run(training, MockState(), breakpoints=Breakpoints(grad_diff_above=0.0))
    assert outcome.startswith("step 1: the gradients of") and "above the breakpoint's 0" in outcome
    training, _ = make()
    state = MockState()
    assert run(training, state, breakpoints=Breakpoints(at_epoch_end=True)) == (
        "end of epoch 1 (step 20)")
    assert run(training, state, breakpoints=Breakpoints(at_epoch_end=True)) == (
        "end of epoch 2 (step 40)")
    assert training.done


@pytest.mark.parametrize("step", [0, 5, 13])
def test_time_travel_from_a_run(step):
    training, _ = make()
    run(training, MockState())
    scratch, torch_params = training.timeline.params_at(step)
    again, _ = make()
    for _ in range(step):
        again.advance()
    ours, theirs = again.lockstep.params()
    assert all((scratch[k] == ours[k]).all() and (torch_params[k] == theirs[k]).all()
               for k in ours)


def test_the_steps_before_a_step_that_raises_are_reported():
    training, _ = make(epochs=3)
    advance = training.advance

    def failing():
        if training.step == 7:
            raise RuntimeError("a bug of ours")
        return advance()

    training.advance = failing
    state = MockState()
    with pytest.raises(RuntimeError, match="a bug of ours"):
        run(training, state, report_every=3600)
    assert [r.step for r in state.records] == list(range(1, 8))
