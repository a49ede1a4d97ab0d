"""Time travel: any past step's parameters, exactly, from snapshots plus replay."""

import numpy as np
import pytest

from engine.check.mistakes import inject
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import TrainingRun, train
from engine.train.timeline import Timeline


@pytest.mark.parametrize("config", [TrainConfig(lr=0.3, epochs=3),
                                    TrainConfig(lr=0.3, epochs=3, shuffle=True, seed=7,
                                                batch_size=4)])
def test_every_past_step_is_restored_bit_for_bit(config):
    spec = preset(DEFAULT_PRESET)
    data = default_set(spec, 25, seed=1)
    params = init_params(spec, 2)
    lockstep = Lockstep(spec, params, data)
    timeline = Timeline(spec, params, data, config, every=8, max_snapshots=2)
    seen = {0: lockstep.params()}
    for record in train(spec, params, data, config, lockstep):
        timeline.record(record.step, lockstep)
        seen[record.step] = lockstep.params()
    assert timeline.every > 8 and len(timeline.snapshots) <= 2  # thinned as the run grew
    for step in (0, 1, 7, 8, 9, 17, timeline.last_step - 1, timeline.last_step):
        scratch, torch_params = timeline.params_at(step)
        for name in spec.param_names:
            assert np.array_equal(scratch[name], seen[step][0][name]), (step, name)
            assert np.array_equal(torch_params[name], seen[step][1][name]), (step, name)


def test_batches_follow_the_run():
    spec = preset(DEFAULT_PRESET)
    config = TrainConfig(epochs=2, batch_size=3, shuffle=True, seed=3)
    data = default_set(spec, 10)
    timeline = Timeline(spec, init_params(spec), data, config)
    records = list(train(spec, init_params(spec), data, config))
    assert [tuple(timeline.batch(r.step)) for r in records] == [r.samples for r in records]


def test_steps_outside_the_run_are_refused():
    spec = preset(DEFAULT_PRESET)
    timeline = Timeline(spec, init_params(spec), default_set(spec, 5), TrainConfig())
    with pytest.raises(ValueError, match=r"outside the run's 0\.\.0"):
        timeline.params_at(1)


@pytest.mark.parametrize("name", ["accumulated_gradients", "flipped_update_sign"])
def test_a_run_with_a_mistake_is_restored_bit_for_bit(name):
    """accumulated_gradients carries its gradient buffers from step to step: a replay that
    started from a snapshot without them would part from the run."""
    spec = preset(DEFAULT_PRESET)
    data = default_set(spec, 12, seed=1)
    params = init_params(spec, 2)
    config = TrainConfig(lr=0.05, epochs=3, shuffle=True, seed=7, batch_size=2)
    training = TrainingRun(spec, params, data, config, snapshot_every=4,
                           mistake=inject(spec, name))
    seen = {0: (*training.lockstep.params(), training.lockstep.buffers())}
    while not training.done:
        training.advance()
        seen[training.step] = (*training.lockstep.params(), training.lockstep.buffers())
    # the run made the mistake, as the CLI's lockstep does
    wrong, right = Lockstep(spec, params, data, mistake=name), Lockstep(spec, params, data)
    list(train(spec, params, data, config, wrong))
    list(train(spec, params, data, config, right))
    assert np.array_equal(wrong.params()[0]["w1"], seen[18][0]["w1"])
    assert not np.array_equal(right.params()[0]["w1"], seen[18][0]["w1"])
    assert bool(seen[18][2]) == (name == "accumulated_gradients")
    for step in (0, 3, 4, 5, 9, 17, 18):
        for part, want in zip(training.timeline.state_at(step), seen[step], strict=True):
            assert part.keys() == want.keys(), step
            assert all(np.array_equal(part[k], want[k]) for k in want), step


def test_a_run_of_engines_that_have_parted_travels_from_their_own_start():
    """TrainingRun(lockstep=...) on engines whose parameters differ: step 0 is each engine's
    own start, and every later step replays from there."""
    spec = preset(DEFAULT_PRESET)
    data = default_set(spec, 10, seed=1)
    scratch, theirs = init_params(spec, 2), init_params(spec, 3)
    lockstep = Lockstep.from_params(spec, scratch, theirs, data)
    training = TrainingRun(spec, scratch, data, TrainConfig(lr=0.3, epochs=2),
                           snapshot_every=4, lockstep=lockstep)
    seen = {0: lockstep.params()}
    while not training.done:
        training.advance()
        seen[training.step] = lockstep.params()
    for step in (0, 3, 4, 9, training.step):
        for ours, expected in zip(training.timeline.params_at(step), seen[step], strict=True):
            assert all(np.array_equal(ours[k], expected[k]) for k in expected)
