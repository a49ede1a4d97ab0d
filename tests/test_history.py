"""Bounded plot histories: recent steps exact, older ones as min/max buckets; and a run's
history: its curves, the mean loss of each epoch however the records are batched, the step it
diverged at, and what an autosave keeps of it, each checked against plain numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.autosave import RunSnapshot, SessionFolder, Snapshot, read_autosave
from engine.files.datasets import default_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.history import ENGINES, History, RunHistory
from engine.train.lockstep import StepRecord, TrainConfig
from engine.train.run import train

SPEC = preset(DEFAULT_PRESET)


def test_short_history_is_exact():
    h = History(recent=100, overview=10)
    h.extend(np.arange(1, 51), np.linspace(0, 1, 50))
    x, y = h.arrays()
    assert np.array_equal(x, np.arange(1, 51)) and np.allclose(y, np.linspace(0, 1, 50))
    assert h.last() == 1.0


def test_long_history_stays_bounded_and_keeps_spikes():
    h = History(recent=64, overview=32)
    values = np.ones(1_000_00)
    values[12_345] = 1000.0   # a spike long ago
    values[50_000] = np.nan   # a NaN
    h.extend(np.arange(1, len(values) + 1), values)
    x, y = h.arrays()
    assert len(x) <= 2 * 32 + 64
    assert np.nanmax(y) == 1000.0
    assert x[-1] == len(values) and np.all(np.diff(x) >= 0)
    assert h.stride > 1 and h.count == len(values)


def test_memory_does_not_grow_with_the_run():
    h = History(recent=128, overview=64)
    before = sum(a.nbytes for a in vars(h).values() if isinstance(a, np.ndarray))
    h.extend(np.arange(200_000), np.random.default_rng(0).random(200_000))
    after = sum(a.nbytes for a in vars(h).values() if isinstance(a, np.ndarray))
    assert before == after and len(h.arrays()[0]) <= 2 * 64 + 128


def test_batches_and_single_appends_give_the_same_history():
    rng = np.random.default_rng(3)
    values = rng.random(20_000)
    values[rng.integers(0, 20_000, 50)] = np.nan
    one, many = History(recent=100, overview=16), History(recent=100, overview=16)
    for i, v in enumerate(values[:3000]):
        one.append(i, v)
    for start in range(0, 3000, 77):
        many.extend(np.arange(start, min(start + 77, 3000)), values[start:min(start + 77, 3000)])
    for a, b in zip(one.arrays(), many.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


@given(st.lists(st.integers(1, 300), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_any_batching_gives_the_history_of_one_batch(sizes, seed):
    """The ring takes batches smaller and larger than itself, wrapping anywhere."""
    values = np.random.default_rng(seed).random(sum(sizes))
    whole, batched = History(recent=50, overview=8), History(recent=50, overview=8)
    whole.extend(np.arange(len(values)), values)
    start = 0
    for size in sizes:
        batched.extend(np.arange(start, start + size), values[start:start + size])
        start += size
        assert batched.last() == values[start - 1]
    for a, b in zip(whole.arrays(), batched.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert batched.count == len(values)


def test_buckets_keep_the_extremes_of_what_they_cover():
    h = History(recent=4, overview=1000)
    h.extend(np.arange(104), np.concatenate([np.arange(100.0), [0, 0, 0, 0]]))
    _, y = h.arrays()
    assert np.nanmin(y) == 0 and np.nanmax(y) == 99


def test_truncate_forgets_recent_steps_after_a_point():
    h = History(recent=50, overview=8)
    h.extend(np.arange(1, 31), np.arange(1.0, 31.0))
    h.truncate(20)
    x, _ = h.arrays()
    assert x[-1] == 20 and h.count == 20
    h.extend(np.arange(21, 25), np.zeros(4))
    assert h.arrays()[0][-1] == 24


def records(n: int, per_epoch: int, seed: int = 0, broken: dict[int, float] | None = None,
            drift_broken: dict[int, float] | None = None) -> list[StepRecord]:
    """n records of random losses, an epoch every `per_epoch` steps; `broken` puts a value
    (NaN, inf) into the scratch loss at some steps, `drift_broken` into the drift."""
    rng = np.random.default_rng(seed)
    losses, drift = rng.random((n, 2)), rng.random(n)
    diffs = rng.random((n, len(SPEC.param_names))) * 1e-7
    for step, value in (broken or {}).items():
        losses[step - 1, 0] = value
    for step, value in (drift_broken or {}).items():
        drift[step - 1] = value
    return [StepRecord(step=s, epoch=(s - 1) // per_epoch + 1, samples=(0,),
                       loss_scratch=float(losses[s - 1, 0]), loss_torch=float(losses[s - 1, 1]),
                       grad_diff=dict(zip(SPEC.param_names, diffs[s - 1].tolist(), strict=True)),
                       drift=float(drift[s - 1]), epoch_end=s % per_epoch == 0)
            for s in range(1, n + 1)]


def fed(batch: list[StepRecord], size: int) -> RunHistory:
    history = RunHistory(SPEC.param_names)
    for start in range(0, len(batch), size):
        history.add(batch[start:start + size])
    return history


@pytest.mark.parametrize("size", [1, 7, 30, 37, 1000])
def test_epoch_means_are_the_mean_loss_of_each_epoch_however_records_are_batched(size):
    """Epochs that end inside a batch, span batches, or end on a batch's last record."""
    run = records(300, per_epoch=30)
    history = fed(run, size)
    losses = np.array([(r.loss_scratch, r.loss_torch) for r in run]).reshape(10, 30, 2)
    for column, engine in enumerate(ENGINES):
        steps, means = history.arrays(f"loss/{engine} epoch mean")
        np.testing.assert_array_equal(steps, np.arange(30, 301, 30))
        np.testing.assert_allclose(means, losses[:, :, column].mean(axis=1), rtol=1e-12)
        np.testing.assert_array_equal(history.arrays(f"loss/{engine}")[1],
                                      losses[..., column].ravel())
    for name in SPEC.param_names:
        np.testing.assert_array_equal(history.arrays(f"diff/{name}")[1],
                                      [r.grad_diff[name] for r in run])
    np.testing.assert_array_equal(history.arrays("drift/drift")[1], [r.drift for r in run])


def test_an_unfinished_epoch_has_no_mean_until_it_ends():
    run = records(45, per_epoch=20)
    history = fed(run, 13)
    steps, means = history.arrays("loss/torch epoch mean")
    assert list(steps) == [20, 40]
    assert means[1] == pytest.approx(np.mean([r.loss_torch for r in run[20:40]]), rel=1e-12)


@pytest.mark.parametrize(("broken", "drift_broken", "expected"), [
    ({}, {}, None),
    ({57: np.nan, 90: np.inf}, {}, 57),
    ({80: np.inf}, {41: np.nan}, 41),        # the drift alone tells it first
    ({}, {100: -np.inf}, 100),
])
@pytest.mark.parametrize("size", [1, 16, 500])
def test_diverged_at_is_the_first_step_with_a_loss_or_drift_not_finite(broken, drift_broken,
                                                                       expected, size):
    run = records(120, per_epoch=40, broken=broken, drift_broken=drift_broken)
    history = fed(run, size)
    table = np.array([(r.loss_scratch, r.loss_torch, r.drift) for r in run])
    bad = np.flatnonzero(~np.isfinite(table).all(axis=1))
    assert history.diverged_at == (int(bad[0]) + 1 if bad.size else None) == expected
    again = RunHistory.restored(SPEC.param_names, history.saved())
    assert again.diverged_at == expected


def test_a_diverged_epoch_has_a_nan_mean_and_no_warning():
    run = records(60, per_epoch=20, broken={25: np.inf, 26: -np.inf})
    with np.errstate(all="raise"):
        history = fed(run, 9)
    _, means = history.arrays("loss/scratch epoch mean")
    assert np.isfinite(means[0]) and np.isnan(means[1]) and np.isfinite(means[2])


def test_a_run_history_stays_bounded():
    run = records(5000, per_epoch=100)
    history = RunHistory(SPEC.param_names, recent=64, overview=16)
    for start in range(0, len(run), 700):
        history.add(run[start:start + 700])
    for name in history.series:
        steps, _ = history.arrays(name)
        assert len(steps) <= 64 + 2 * 16, name
    steps, values = history.arrays("drift/drift")
    assert steps[0] == 1 and steps[-1] == 5000    # the overview reaches back to the start
    np.testing.assert_array_equal(values[-64:], [r.drift for r in run[-64:]])


def test_what_an_autosave_keeps_of_a_run_comes_back_as_it_was(tmp_path):
    """A real run that diverges, its history saved, written, read and restored."""
    data = default_set(SPEC, 30)
    config = TrainConfig(lr=1e4, epochs=3)
    run = list(train(SPEC, init_params(SPEC, 1), data, config))
    assert not run[-1].finite
    history = fed(run, 11)
    saved = history.saved()
    assert list(saved) == list(history.series)
    snapshot = Snapshot(SPEC, init_params(SPEC, 1), None, data, 0, 0, "",
                        RunSnapshot(config, len(run), len(run), saved))
    folder = SessionFolder.create(tmp_path)
    folder.write(snapshot)
    back = read_autosave(folder.path).run.history
    folder.remove()
    again = RunHistory.restored(SPEC.param_names, back)
    first_bad = next(r.step for r in run if not r.finite)
    assert again.diverged_at == history.diverged_at == first_bad
    for name, (steps, values) in saved.items():
        np.testing.assert_array_equal(again.arrays(name)[0], steps, err_msg=name)
        np.testing.assert_array_equal(again.arrays(name)[1], values, err_msg=name)  # NaN, inf
    ends = [r.step for r in run if r.epoch_end]
    steps, means = again.arrays("loss/scratch epoch mean")
    assert list(steps) == ends
    for epoch, mean in enumerate(means, start=1):
        np.testing.assert_allclose(mean, np.mean([r.loss_scratch for r in run
                                                  if r.epoch == epoch]), rtol=1e-12)


def test_a_restored_history_leaves_out_curves_the_network_has_not():
    saved = fed(records(10, per_epoch=5), 4).saved()
    saved["diff/w9"] = (np.arange(1.0, 4.0), np.array([np.nan, 1.0, 2.0]))
    again = RunHistory.restored(SPEC.param_names, saved)
    assert "diff/w9" not in again.series and again.diverged_at is None
    np.testing.assert_array_equal(again.arrays("loss/scratch")[1], saved["loss/scratch"][1])


@pytest.mark.parametrize("size", [1, 37, 1000])
def test_rows_from_the_training_process_give_the_history_records_give(size):
    """The window takes in the child's records as rows (RecordRows): read as columns, they
    make every curve the StepRecords they stand for make."""
    from engine.train.child import RecordLayout
    run = records(300, per_epoch=30)
    layout = RecordLayout(SPEC, 1)
    rows = layout.records(layout.rows(run))
    assert list(rows) == run and rows[5] == run[5] and rows[-3:] == run[-3:]
    from_rows = RunHistory(SPEC.param_names)
    for start in range(0, len(run), size):
        from_rows.add(layout.records(layout.rows(run[start:start + size])))
    expected = fed(run, size)
    for name in expected.series:
        for ours, theirs in zip(from_rows.arrays(name), expected.arrays(name), strict=True):
            np.testing.assert_array_equal(ours, theirs)
    assert from_rows.diverged_at == expected.diverged_at
