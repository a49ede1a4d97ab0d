"""Bounded plot histories: recent steps exact, older ones as min/max buckets."""

import numpy as np

from engine.train.history import History


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
