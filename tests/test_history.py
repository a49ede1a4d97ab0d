"""Bounded plot histories: recent steps exact, older ones as min/max buckets."""

import numpy as np

from engine.history import History


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
