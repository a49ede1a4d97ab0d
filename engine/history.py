"""A bounded history of one value per step, for live plots of runs of millions of steps.

Recent steps are kept at full resolution in a ring; older ones fold into a fixed-size overview
that keeps, for each bucket of `stride` steps, the smallest and the largest value, so spikes
survive. When the overview fills, neighbouring buckets merge and the stride doubles. Memory and
the size of what is drawn stay bounded whatever the length of the run.
"""

import numpy as np


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
        self._bucket: list[float] = []   # values waiting to fill one overview bucket
        self._bucket_x = 0
        self.count = 0

    def append(self, step: int, value: float) -> None:
        self.extend(np.array([step]), np.array([value], dtype=np.float64))

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Append many (step, value) pairs in step order."""
        for step, value in zip(np.asarray(steps), np.asarray(values, dtype=np.float64),
                               strict=True):
            if self._ring_len == self.recent:
                old = self._ring_start
                self._fold(int(self._ring_x[old]), float(self._ring_y[old]))
                self._ring_start = (old + 1) % self.recent
                self._ring_len -= 1
            end = (self._ring_start + self._ring_len) % self.recent
            self._ring_x[end], self._ring_y[end] = step, value
            self._ring_len += 1
            self.count += 1

    def _fold(self, step: int, value: float) -> None:
        if not self._bucket:
            self._bucket_x = step
        self._bucket.append(value)
        if len(self._bucket) < self.stride:
            return
        finite = [v for v in self._bucket if np.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (np.nan, np.nan)
        if self._ov_len == self.overview:
            self._merge()
        i = self._ov_len
        self._ov_x[i], self._ov_lo[i], self._ov_hi[i] = self._bucket_x, lo, hi
        self._ov_len += 1
        self._bucket = []

    def _merge(self) -> None:
        """Halve the overview: each pair of buckets becomes one, the stride doubles."""
        n = self._ov_len // 2
        x, lo, hi = self._ov_x[:2 * n], self._ov_lo[:2 * n], self._ov_hi[:2 * n]
        with np.errstate(invalid="ignore"):
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
        order = (self._ring_start + np.arange(self._ring_len)) % self.recent
        return (np.concatenate([ov_x, self._ring_x[order]]).astype(np.float64),
                np.concatenate([ov_y, self._ring_y[order]]))

    def last(self) -> float:
        if not self._ring_len:
            return float("nan")
        return float(self._ring_y[(self._ring_start + self._ring_len - 1) % self.recent])
