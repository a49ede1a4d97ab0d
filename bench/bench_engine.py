"""The scratch engine against torch on the default 2-10-10-1 network, as ratios of one run.

Targets (issue 2):
- one sample's forward+backward: scratch at least 5x faster than torch's, done the seeds' way
  (module forward, loss, loss.backward(), read .grad);
- per-sample gradients of 10,000 samples: scratch at least 5x faster than torch's batched path
  (torch.func vmap over grad), and that batched path at least 10x faster than a loop of
  backward() calls.

This machine is shared and noisy, so the contenders of a comparison take turns inside each round
and each keeps its best round (the least disturbed, as timeit advises); only ratios between
times taken side by side are reported against targets. torch runs on one thread so that both
engines get one core each.
"""

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from engine.files.datasets import regression_set
from engine.net.params import init_params
from engine.net.reference import TorchNet
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, preset

PRESET = DEFAULT_PRESET


class Ratio(NamedTuple):
    """How many times faster the first contender was than the second, and the target."""

    name: str
    ratio: float
    target: float

    @property
    def verdict(self) -> str:
        return "PASS" if self.ratio >= self.target else "MISS"


def printed(head: list[str], lines: list[str], ratios: list[Ratio]) -> str:
    """A benchmark's report: its heading lines, its measurements indented, then each ratio
    against its target with its verdict, aligned."""
    width = max(len(r.name) for r in ratios)
    verdicts = [f"  {r.name:<{width}}  {r.ratio:7.2f}x vs target {r.target:g}x  {r.verdict}"
                for r in ratios]
    return "\n".join([*head, *(f"  {line}" for line in lines), *verdicts])


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; tests shrink it to smoke-run the benchmark."""

    samples: int = 10_000  # the dataset whose per-sample gradients are taken
    loop_samples: int = 1_000  # the backward() loop is timed on these, then scaled to `samples`
    one_sample_calls: int = 200  # calls per round when timing a single sample
    batch_calls: int = 3  # calls per round of the batched paths
    rounds: int = 9


FULL = Sizes()

@dataclass(frozen=True)
class Contender:
    """One timed thing: `calls` calls of `fn` per round, each call handling `samples` samples."""

    label: str
    fn: Callable[[], object]
    calls: int
    samples: int


def best_times(contenders: list[Contender], rounds: int) -> list[float]:
    """Best seconds per sample of each contender over `rounds` rounds. The contenders take turns
    within each round (in reverse order every other round), so a burst of load on the machine
    lands on all of them alike rather than on whichever happened to run then."""
    for c in contenders:  # warm-up: the first calls pay for allocation and dispatch caches
        c.fn()
    best = [math.inf] * len(contenders)
    order = list(range(len(contenders)))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for i in order if r % 2 == 0 else order[::-1]:
                c = contenders[i]
                start = time.perf_counter()
                for _ in range(c.calls):
                    c.fn()
                elapsed = time.perf_counter() - start
                best[i] = min(best[i], elapsed / (c.calls * c.samples))
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def _networks() -> tuple[ScratchNet, TorchNet]:
    spec = preset(PRESET)
    params = init_params(spec, seed=0)
    return ScratchNet(spec, params), TorchNet(spec, params)


def measure(sizes: Sizes = FULL) -> tuple[list[Ratio], list[str]]:
    """The ratios against their targets, and lines saying what was timed and how long it took."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(sizes)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(sizes: Sizes) -> tuple[list[Ratio], list[str]]:
    scratch, reference = _networks()
    data = regression_set(scratch.spec, sizes.samples, seed=0)
    x, y = data.x, data.y
    x1, y1 = x[:1], y[:1]
    x_loop, y_loop = x[: sizes.loop_samples], y[: sizes.loop_samples]
    n, n_loop = len(x), len(x_loop)

    one = [
        Contender("scratch per_sample_gradients, (1, 2) batch",
                  lambda: scratch.per_sample_gradients(x1, y1), sizes.one_sample_calls, 1),
        Contender("torch gradients_loop, 1 sample (forward, loss, backward(), read .grad)",
                  lambda: reference.gradients_loop(x1, y1), sizes.one_sample_calls, 1),
    ]
    t_scratch_1, t_torch_1 = best_times(one, sizes.rounds)

    many = [
        Contender(f"scratch per_sample_gradients, {n:,} samples",
                  lambda: scratch.per_sample_gradients(x, y), sizes.batch_calls, n),
        Contender(f"torch per_sample_gradients (vmap), {n:,} samples",
                  lambda: reference.per_sample_gradients(x, y), sizes.batch_calls, n),
        Contender(f"torch gradients_loop, {n_loop:,} samples, scaled to {n:,}",
                  lambda: reference.gradients_loop(x_loop, y_loop), 1, n_loop),
    ]
    t_scratch, t_vmap, t_loop = best_times(many, sizes.rounds)

    ratios = [
        Ratio("one sample forward+backward: scratch vs torch", t_torch_1 / t_scratch_1, 5.0),
        Ratio(f"per-sample gradients of {n:,}: scratch vs torch vmap", t_vmap / t_scratch, 5.0),
        Ratio(f"per-sample gradients of {n:,}: torch vmap vs backward() loop",
              t_loop / t_vmap, 10.0),
    ]
    lines = [f"{c.label}: {_duration(t * c.samples)} per call"
             for c, t in zip(one, (t_scratch_1, t_torch_1), strict=True)]
    lines += [f"{c.label}: {_duration(t * n)} for {n:,}"
              for c, t in zip(many, (t_scratch, t_vmap, t_loop), strict=True)]
    lines.append(_agreement(scratch, reference, x, y))
    return ratios, lines


def _agreement(scratch: ScratchNet, reference: TorchNet, x: np.ndarray, y: np.ndarray) -> str:
    """A line saying the timed paths compute the same gradients: a fast wrong answer is no win."""
    _, ours = scratch.per_sample_gradients(x, y)
    _, theirs = reference.per_sample_gradients(x, y)
    worst = max(float(np.max(np.abs(ours[k] - theirs[k]), initial=0.0)) for k in ours)
    return f"scratch and torch vmap per-sample gradients differ by at most {worst:.2g}"


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def results(sizes: Sizes = FULL) -> list[Ratio]:
    """[(name, ratio, target), ...]: how many times faster, measured in this run."""
    return measure(sizes)[0]


def report(sizes: Sizes = FULL) -> str:
    """The benchmark's printed report."""
    ratios, lines = measure(sizes)
    head = [
        f"bench_engine: {PRESET} ({preset(PRESET).describe()})",
        f"torch.set_num_threads(1) for a single-thread comparison; best of {sizes.rounds} "
        "interleaved rounds, time.perf_counter",
        f"the backward() loop is timed on {sizes.loop_samples:,} samples and scaled by "
        f"{sizes.samples / sizes.loop_samples:g} to {sizes.samples:,}",
    ]
    return printed(head, lines, ratios)


def main(sizes: Sizes = FULL) -> None:
    print(report(sizes), flush=True)


if __name__ == "__main__":
    main()
