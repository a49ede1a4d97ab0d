"""Lockstep SGD of both engines against the plain loop the seeds imply, as ratios of one run.

Target (issue 5): headless lockstep SGD (both engines, per-step differences and drift, the
timeline's snapshots) at least 3x the throughput of the plain loop, aiming at 5x. The plain loop
is the seeds' way, per sample: an nn.Module with fc1..fc3, optim.SGD (zero_grad, backward,
step), a numpy scratch pass written as seed 003 writes it (column vectors, np.dot, a sigmoid
derivative that recomputes the sigmoid), and the per-step max |diff| of every parameter.
"""

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.bench_engine import Ratio, printed
from engine.files.datasets import regression_set
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.train.lockstep import TrainConfig
from engine.train.run import TrainingRun

LR = 0.05


@dataclass(frozen=True)
class Sizes:
    plain_steps: int = 4_000     # timed steps per round of the plain loop
    lockstep_steps: int = 12_000  # timed steps per round of each lockstep contender
    settle_steps: int = 1_500     # untimed steps before those: the helper's buffered steps
    rounds: int = 5
    ready_timeout: float = 60.0   # seconds the helper may take to start


FULL = Sizes()


class SeedNet(nn.Module):
    """The seeds' module: three nn.Linear layers, sigmoid, sigmoid, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 10), nn.Linear(10, 10), nn.Linear(10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.sigmoid(self.fc2(torch.sigmoid(self.fc1(x)))))


def my_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def sigmoid_gradient(z: np.ndarray) -> np.ndarray:
    return my_sigmoid(z) * (1 - my_sigmoid(z))


class PlainLoop:
    """One step per call, as a student's lockstep loop would do it."""

    def __init__(self, params: dict, x: np.ndarray, y: np.ndarray):
        self.net = SeedNet()
        with torch.no_grad():
            for layer, fc in enumerate((self.net.fc1, self.net.fc2, self.net.fc3), start=1):
                fc.weight.copy_(torch.tensor(params[f"w{layer}"]))
                fc.bias.copy_(torch.tensor(params[f"b{layer}"]))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR)
        self.w = [params[f"w{i}"].copy() for i in (1, 2, 3)]
        self.b = [params[f"b{i}"].copy().reshape(-1, 1) for i in (1, 2, 3)]
        self.x, self.y = x, y
        self.xt, self.yt = torch.tensor(x), torch.tensor(y)
        self.i = 0

    def step(self) -> float:
        i = self.i % len(self.x)
        self.i += 1
        # torch
        self.opt.zero_grad()
        loss = ((self.net(self.xt[i:i + 1]) - self.yt[i:i + 1]) ** 2).sum()
        loss.backward()
        torch_grads = [p.grad.numpy().copy() for p in self.net.parameters()]
        self.opt.step()
        # scratch, seed 003's way
        X = self.x[i].reshape(2, 1)
        w1, w2, w3 = self.w
        b1, b2, b3 = self.b
        z1 = np.dot(w1, X) + b1
        z1_act = my_sigmoid(z1)
        z2 = np.dot(w2, z1_act) + b2
        z2_act = my_sigmoid(z2)
        z3 = np.dot(w3, z2_act) + b3
        delta3 = 2 * z3 - 2 * self.y[i].reshape(1, 1)
        delta2 = np.dot(w3.T, delta3) * sigmoid_gradient(z2)
        delta1 = np.dot(w2.T, delta2) * sigmoid_gradient(z1)
        grads = [np.dot(delta1, X.T), delta1[:, 0], np.dot(delta2, z1_act.T), delta2[:, 0],
                 np.dot(delta3, z2_act.T), delta3[:, 0]]
        for param, g in zip((w1, b1, w2, b2, w3, b3), grads, strict=True):
            param -= LR * g.reshape(param.shape)
        # the per-step comparison
        return max(float(np.max(np.abs(a - b))) for a, b in zip(grads, torch_grads, strict=True))


def _timed(step: Callable[[], object], steps: int, settle: int = 0) -> float:
    """Seconds per step over `steps` calls of `step`, after `settle` untimed ones."""
    for _ in range(settle):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def measure(sizes: Sizes = FULL) -> tuple[list[Ratio], list[str]]:
    """The plain loop, the lockstep in-process, and the lockstep with torch's steps in the
    helper process (engine/train/torch_process.py), taking turns within each round; best of the
    rounds. The helper runs ahead of the lockstep by up to a pipe's worth of steps, so each of
    its rounds first takes `settle_steps` untimed steps: what is timed is the steady state."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    spec = preset(DEFAULT_PRESET)
    params = init_params(spec, 0)
    data = regression_set(spec, 100, seed=0)
    config = TrainConfig(lr=LR, epochs=10**9)
    plain = PlainLoop(params, data.x, data.y)
    local = TrainingRun(spec, params, data, config, parallel=False)
    helped = TrainingRun(spec, params, data, config, parallel=True)
    try:
        started = time.perf_counter()
        while not helped.handover.active:
            if time.perf_counter() - started > sizes.ready_timeout:
                raise RuntimeError("the torch helper process did not start")
            helped.advance()
        ready = time.perf_counter() - started
        gc_was_enabled = gc.isenabled()
        gc.disable()
        best = [math.inf] * 3
        turns = [(plain.step, sizes.plain_steps, 0), (local.advance, sizes.lockstep_steps, 0),
                 (helped.advance, sizes.lockstep_steps, sizes.settle_steps)]
        for r in range(sizes.rounds):
            for i in (range(3) if r % 2 == 0 else range(2, -1, -1)):
                best[i] = min(best[i], _timed(*turns[i]))
            gc.collect()
        if gc_was_enabled:
            gc.enable()
    finally:
        helped.close()
        torch.set_num_threads(previous)
    t_plain, t_local, t_helped = best
    ratios = [Ratio("headless lockstep SGD vs the plain loop (aiming at 5x)", t_plain / t_helped,
                    3.0)]
    labels = ["plain loop (nn.Module + optim.SGD + numpy pass + max |diff|)",
              "lockstep, torch in-process (TrainingRun.advance: diffs, drift, timeline)",
              "lockstep, torch in the helper process (the default for long runs)"]
    lines = [f"{label}: {t * 1e6:.1f} µs per step ({1 / t:,.0f} steps/s)"
             for label, t in zip(labels, best, strict=True)]
    lines.append(f"lockstep with torch in-process vs the plain loop: {t_plain / t_local:.2f}x")
    lines.append(f"the helper took over after {ready:.1f} s (the run went on in-process "
                 "meanwhile)")
    return ratios, lines


def results(sizes: Sizes = FULL) -> list[Ratio]:
    return measure(sizes)[0]


def main(sizes: Sizes = FULL) -> None:
    ratios, lines = measure(sizes)
    print(printed([f"bench_training: {DEFAULT_PRESET}, batch size 1, lr {LR}; torch on one "
                   f"thread; best of {sizes.rounds} interleaved rounds"], lines, ratios),
          flush=True)


if __name__ == "__main__":
    main()
