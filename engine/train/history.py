"""A bounded history of one value per step, for live plots of runs of millions of steps.

Recent steps are kept at full resolution in a ring; older ones fold into a fixed-size overview
that keeps, for each bucket of `stride` steps, the smallest and the largest finite value, so
spikes survive. When the overview fills, neighbouring buckets merge and the stride doubles.
Memory and the size of what is drawn stay bounded whatever the length of the run, and appending
is vectorised: a batch of records costs a few numpy calls, not a Python loop per value.

`RunHistory` is what a training run leaves to draw and to autosave: a History per curve (each
engine's loss and mean loss per epoch, the gradient difference per parameter, the parameter
drift) and the first step at which the run diverged, taken from batches of StepRecords.
"""

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # records are only read: the history needs neither engine nor torch
    from engine.train.lockstep import StepRecord

RECENT, OVERVIEW = 2048, 1024   # a run's curves: full-resolution steps, min/max buckets of older
ENGINES = ("scratch", "torch")


class History:
    """Values per step; `arrays()` gives at most 2·overview + recent points to draw."""

    def __init__(self, recent: int = 4096, overview: int = 2048):
        self.recent = recent
        self.overview = overview
        self._ring_x = np.zeros(recent, dtype=np.int64)
        self._ring_y = np.zeros(recent)
        self._ring_len = 0
        self._ring_start = 0
        self._ov_x = np.zeros(overview, dtype=np.int64)  # first step of each bucket
        self._ov_lo = np.zeros(overview)
        self._ov_hi = np.zeros(overview)
        self._ov_len = 0
        self.stride = 1
        # the bucket still filling: its first step, how many values, their extremes
        self._partial_x, self._partial_count = 0, 0
        self._partial_lo, self._partial_hi = np.nan, np.nan
        self.count = 0

    def append(self, step: int, value: float) -> None:
        self.extend(np.array([step]), np.array([value], dtype=np.float64))

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Append many (step, value) pairs in step order."""
        steps = np.asarray(steps, dtype=np.int64).ravel()
        values = np.asarray(values, dtype=np.float64).ravel()
        if not len(steps):
            return
        n = len(steps)
        self.count += n
        if n >= self.recent:     # the whole ring and the oldest new values fold
            old_x, old_y = self._ordered_ring()
            self._fold(np.concatenate([old_x, steps[:n - self.recent]]),
                       np.concatenate([old_y, values[:n - self.recent]]))
            self._ring_x[:], self._ring_y[:] = steps[n - self.recent:], values[n - self.recent:]
            self._ring_start, self._ring_len = 0, self.recent
            return
        # what a batch costs is its own size, not the ring's: the values it pushes out fold,
        # the new ones take their places
        spill = max(self._ring_len + n - self.recent, 0)
        if spill:
            gone = (self._ring_start + np.arange(spill)) % self.recent
            self._fold(self._ring_x[gone], self._ring_y[gone])
            self._ring_start = (self._ring_start + spill) % self.recent
            self._ring_len -= spill
        places = (self._ring_start + self._ring_len + np.arange(n)) % self.recent
        self._ring_x[places], self._ring_y[places] = steps, values
        self._ring_len += n

    def _ordered_ring(self) -> tuple[np.ndarray, np.ndarray]:
        order = (self._ring_start + np.arange(self._ring_len)) % self.recent
        return self._ring_x[order], self._ring_y[order]

    def _fold(self, x: np.ndarray, y: np.ndarray) -> None:
        """Turn values leaving the ring into overview buckets of `stride` values each. A bucket
        still filling is kept as its first step, its count and its extremes, never its values."""
        while len(x):
            if self._ov_len == self.overview:
                self._merge()
            take = min(self.stride - self._partial_count, len(x))
            lo, hi = _extremes(y[:take])
            if self._partial_count == 0:
                self._partial_x = int(x[0])
            self._partial_lo = np.fmin(self._partial_lo, lo)
            self._partial_hi = np.fmax(self._partial_hi, hi)
            self._partial_count += take
            x, y = x[take:], y[take:]
            if self._partial_count == self.stride:
                self._close_bucket()
            buckets = min(len(x) // self.stride, self.overview - self._ov_len)
            if buckets:
                used = buckets * self.stride
                lo, hi = _extremes(y[:used].reshape(buckets, self.stride))
                start = self._ov_len
                self._ov_x[start:start + buckets] = x[:used:self.stride]
                self._ov_lo[start:start + buckets], self._ov_hi[start:start + buckets] = lo, hi
                self._ov_len += buckets
                x, y = x[used:], y[used:]

    def _close_bucket(self) -> None:
        if self._ov_len == self.overview:
            self._merge()
        i = self._ov_len
        self._ov_x[i] = self._partial_x
        self._ov_lo[i], self._ov_hi[i] = self._partial_lo, self._partial_hi
        self._ov_len += 1
        self._partial_count, self._partial_lo, self._partial_hi = 0, np.nan, np.nan

    def _merge(self) -> None:
        """Halve the overview: each pair of buckets becomes one, the stride doubles. A bucket
        still filling keeps filling, now towards the new stride."""
        n = self._ov_len // 2
        x, lo, hi = self._ov_x[:2 * n], self._ov_lo[:2 * n], self._ov_hi[:2 * n]
        self._ov_x[:n] = x[0::2]
        self._ov_lo[:n] = np.fmin(lo[0::2], lo[1::2])
        self._ov_hi[:n] = np.fmax(hi[0::2], hi[1::2])
        self._ov_len = n
        self.stride *= 2

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) to draw, copies: the overview as a low and a high point per bucket,
        then every recent step."""
        n = self._ov_len
        ov_x = np.repeat(self._ov_x[:n], 2)
        ov_y = np.empty(2 * n)
        ov_y[0::2], ov_y[1::2] = self._ov_lo[:n], self._ov_hi[:n]
        ring_x, ring_y = self._ordered_ring()
        return (np.concatenate([ov_x, ring_x]).astype(np.float64),
                np.concatenate([ov_y, ring_y]))

    def last(self) -> float:
        if not self._ring_len:
            return float("nan")
        return float(self._ring_y[(self._ring_start + self._ring_len - 1) % self.recent])

    def truncate(self, step: int) -> None:
        """Forget every step after `step` that is still kept at full resolution (a run that
        went back in time and goes on from there); the overview keeps what it folded."""
        ring_x, ring_y = self._ordered_ring()
        keep = ring_x <= step
        self._ring_x[:keep.sum()], self._ring_y[:keep.sum()] = ring_x[keep], ring_y[keep]
        self.count -= int((~keep).sum())
        self._ring_start, self._ring_len = 0, int(keep.sum())


def _extremes(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest finite value along the last axis (NaN where none is)."""
    finite = np.isfinite(block)
    lo = np.where(finite, block, np.inf).min(axis=-1)
    hi = np.where(finite, block, -np.inf).max(axis=-1)
    none = ~finite.any(axis=-1)
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


class RunHistory:
    """The curves of one run of a network whose parameters are `param_names`, each a bounded
    History named "<plot>/<series>": loss/scratch, loss/torch, loss/scratch epoch mean,
    loss/torch epoch mean, diff/<parameter> for each parameter, drift/drift. `diverged_at` is the
    first step whose loss (either engine's) or drift is NaN or infinite (None: none yet)."""

    def __init__(self, param_names: Sequence[str], recent: int = RECENT,
                 overview: int = OVERVIEW):
        self.param_names = tuple(param_names)
        curves = [*(f"loss/{e}" for e in ENGINES), *(f"loss/{e} epoch mean" for e in ENGINES),
                  *(f"diff/{p}" for p in self.param_names), "drift/drift"]
        self.series = {name: History(recent, overview) for name in curves}
        self.diverged_at: int | None = None
        # each engine's loss summed over the steps of the epoch not ended yet, and their count
        self._epoch_sums = np.zeros(len(ENGINES))
        self._epoch_steps = 0
        names = self.param_names
        # a record's gradient differences in parameter order, as a tuple even for one
        self._diffs = (operator.itemgetter(*names) if len(names) > 1
                       else lambda d: tuple(d[name] for name in names))

    def add(self, records: "Sequence[StepRecord]") -> None:
        """Append a batch of records, in step order, continuing the batches before it. One pass
        over the records makes a table; the rest works on its columns."""
        if not records:
            return
        if hasattr(records, "table"):     # rows from the training process: columns already
            table = records.table(self.param_names)
        else:
            table = np.array([(r.step, r.loss_scratch, r.loss_torch, r.drift, r.epoch_end,
                               *self._diffs(r.grad_diff)) for r in records], dtype=np.float64)
        steps = table[:, 0].astype(np.int64)
        losses, drift, ends = table[:, 1:3], table[:, 3], np.flatnonzero(table[:, 4])
        for column, engine in enumerate(ENGINES):
            self.series[f"loss/{engine}"].extend(steps, losses[:, column])
        for column, name in enumerate(self.param_names, start=5):
            self.series[f"diff/{name}"].extend(steps, table[:, column])
        self.series["drift/drift"].extend(steps, drift)
        self._add_epoch_means(steps, losses, ends)
        if self.diverged_at is None:
            # StepRecord.finite, for the whole batch at once
            broken = ~(np.isfinite(losses).all(axis=1) & np.isfinite(drift))
            if broken.any():
                self.diverged_at = int(steps[np.argmax(broken)])

    def _add_epoch_means(self, steps: np.ndarray, losses: np.ndarray, ends: np.ndarray) -> None:
        """Each engine's mean loss of every epoch that ends in this batch (rows `ends` of
        losses (N, 2)); the sums of an epoch not ended yet carry over to the next batch."""
        means, start = [], 0
        with np.errstate(invalid="ignore", over="ignore"):   # a diverged epoch's mean is NaN
            for end in ends:
                self._epoch_sums += losses[start:end + 1].sum(axis=0)
                means.append(self._epoch_sums / (self._epoch_steps + end + 1 - start))
                self._epoch_sums[:] = 0.0
                self._epoch_steps, start = 0, end + 1
            self._epoch_sums += losses[start:].sum(axis=0)
        self._epoch_steps += len(losses) - start
        if means:
            means_array = np.array(means)
            for column, engine in enumerate(ENGINES):
                self.series[f"loss/{engine} epoch mean"].extend(steps[ends],
                                                                means_array[:, column])

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of curve `name` to draw (History.arrays: copies, bounded)."""
        return self.series[name].arrays()

    def saved(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every curve's kept values as (steps, values), by name: what an autosave stores and
        `restored` takes back. Bounded, as the histories are, whatever the length of the run."""
        return {name: history.arrays() for name, history in self.series.items()}

    @classmethod
    def restored(cls, param_names: Sequence[str],
                 saved: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> "RunHistory":
        """The curves `saved()` gave, for a network of `param_names` (a restored session), and
        the step they diverged at; names this network has no curve of are left out. The next
        epoch's mean starts from nothing: a restored run is shown, not continued."""
        history = cls(param_names)
        broken = []
        for name, (steps, values) in saved.items():
            if name not in history.series or not len(steps):
                continue
            history.series[name].extend(steps, values)
            if name in ("loss/scratch", "loss/torch", "drift/drift"):
                bad = ~np.isfinite(values)
                if bad.any():
                    broken.append(int(steps[np.argmax(bad)]))
        history.diverged_at = min(broken, default=None)
        return history
