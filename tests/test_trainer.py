"""The lockstep trainer: records, batches, shuffling, divergence."""

import numpy as np
import pytest

from engine.errors import UserInputError
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.lockstep import Lockstep, TrainConfig, epoch_batches
from engine.train.run import train


def run(config, name=DEFAULT_PRESET, dtype="float32", n=20):
    spec = preset(name).with_options(dtype=dtype)
    data = default_set(spec, n, seed=3)
    lockstep = Lockstep(spec, init_params(spec, 1), data)
    return list(train(spec, init_params(spec, 1), data, config, lockstep)), lockstep


def test_one_record_per_step_with_epochs_marked():
    records, _ = run(TrainConfig(lr=0.1, epochs=3))
    assert [r.step for r in records] == list(range(1, 61))
    assert [r.epoch for r in records] == [1] * 20 + [2] * 20 + [3] * 20
    assert [r.step for r in records if r.epoch_end] == [20, 40, 60]
    assert records[0].samples == (0,) and records[19].samples == (19,)


def test_engines_stay_in_lockstep_and_learn():
    records, lockstep = run(TrainConfig(lr=0.5, epochs=20), dtype="float64")
    first = np.mean([r.loss_scratch for r in records if r.epoch == 1])
    last = np.mean([r.loss_scratch for r in records if r.epoch == 20])
    assert last < first / 2
    assert max(r.max_grad_diff for r in records) < 1e-12
    assert records[-1].drift < 1e-12
    ours, theirs = lockstep.params()
    assert all(np.allclose(ours[k], theirs[k], atol=1e-12) for k in ours)
    assert all(r.loss_scratch == pytest.approx(r.loss_torch, rel=1e-12) for r in records)


def test_float32_engines_part_slowly():
    records, _ = run(TrainConfig(lr=0.5, epochs=5))
    assert 0 < records[-1].drift < 1e-4


def test_mini_batches_cover_every_row_once_per_epoch():
    records, _ = run(TrainConfig(lr=0.1, epochs=2, batch_size=6, shuffle=True, seed=5))
    assert [len(r.samples) for r in records] == [6, 6, 6, 2] * 2
    for epoch in (1, 2):
        rows = sorted(s for r in records if r.epoch == epoch for s in r.samples)
        assert rows == list(range(20))
    assert records[0].samples != records[4].samples


def test_shuffling_is_seeded_and_differs_by_epoch():
    config = TrainConfig(shuffle=True, seed=9)
    first = [b.tolist() for b in epoch_batches(10, config, 1)]
    assert first == [b.tolist() for b in epoch_batches(10, config, 1)]
    assert first != [b.tolist() for b in epoch_batches(10, config, 2)]
    assert [b.tolist() for b in epoch_batches(4, TrainConfig(), 1)] == [[0], [1], [2], [3]]


def test_a_huge_learning_rate_diverges_into_records_not_exceptions():
    records, _ = run(TrainConfig(lr=1e6, epochs=2))
    assert records[0].finite
    assert not all(r.finite for r in records)


@pytest.mark.parametrize(("fields", "message"), [
    ({"lr": 0}, "learning rate must be a positive number"),
    ({"lr": float("nan")}, "learning rate must be a positive number"),
    ({"epochs": 0}, "epochs must be a whole number of at least 1"),
    ({"batch_size": 2.5}, "batch size must be a whole number"),
])
def test_bad_settings_are_messages(fields, message):
    with pytest.raises(UserInputError, match=message):
        TrainConfig(**fields)
