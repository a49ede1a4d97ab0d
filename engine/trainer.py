"""Lockstep SGD: the scratch engine and the torch reference start from the same parameters and
each updates with its own gradients. A Qt-free generator of frozen records; it never prints."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from engine.datasets import Dataset
from engine.errors import UserInputError
from engine.mistakes import Injection
from engine.params import Params, flat
from engine.reference import TorchNet
from engine.scratch import ScratchNet
from engine.spec import NetworkSpec


@dataclass(frozen=True)
class TrainConfig:
    """SGD settings: learning rate, epochs, batch size (1 as the seeds), shuffling with a seed."""

    lr: float = 0.1
    epochs: int = 1
    batch_size: int = 1
    shuffle: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, int | float) and np.isfinite(self.lr) and self.lr > 0):
            raise UserInputError(f"the learning rate must be a positive number, not {self.lr!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserInputError(f"{name.replace('_', ' ')} must be a whole number of at "
                                     f"least 1, not {value!r}")


@dataclass(frozen=True)
class StepRecord:
    """One SGD step. loss_*: mean loss of the batch before the update; grad_diff: max
    |g_scratch - g_torch| per parameter of the batch gradients; drift: ||θ_scratch - θ_torch||
    after the update; samples: the dataset rows of the batch."""

    step: int
    epoch: int
    samples: tuple[int, ...]
    loss_scratch: float
    loss_torch: float
    grad_diff: Mapping[str, float]
    drift: float
    epoch_end: bool

    @property
    def max_grad_diff(self) -> float:
        return max(self.grad_diff.values())

    @property
    def finite(self) -> bool:
        """False once either engine's loss or parameters are NaN or infinite (diverged)."""
        return bool(np.isfinite(self.loss_scratch) and np.isfinite(self.loss_torch)
                    and np.isfinite(self.drift))


class Lockstep:
    """Both engines, one SGD step at a time on any batch of rows of `data`. The scratch engine
    makes `mistake` (engine/mistakes.py), continuing from `buffers` (see ScratchNet)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                 torch_params: Mapping[str, np.ndarray] | None = None,
                 mistake: Injection | str | None = None,
                 buffers: Mapping[str, np.ndarray] | None = None):
        self.spec, self.data = spec, data
        self.scratch = ScratchNet(spec, params, mistake, buffers)
        self.torch = TorchNet(spec, params if torch_params is None else torch_params)
        sizes = [int(np.prod(spec.param_shape(n, "out_in"))) for n in spec.param_names]
        self._offsets = np.cumsum([0, *sizes[:-1]])

    @classmethod
    def from_params(cls, spec: NetworkSpec, scratch: Mapping[str, np.ndarray],
                    torch_params: Mapping[str, np.ndarray], data: Dataset,
                    mistake: Injection | str | None = None,
                    buffers: Mapping[str, np.ndarray] | None = None) -> "Lockstep":
        """Engines that have already parted: each starts from its own parameters, and the
        scratch engine, making `mistake`, from the gradient sums `buffers` it had left."""
        return cls(spec, scratch, data, torch_params, mistake, buffers)

    def step(self, rows: np.ndarray, lr: float) -> tuple[float, float, dict[str, float], float]:
        """Update both engines on `rows`; returns (loss_scratch, loss_torch, grad_diff, drift)."""
        # a slice costs less than a gather
        x, y = ((self.data.x[rows[0]:rows[0] + 1], self.data.y[rows[0]:rows[0] + 1])
                if len(rows) == 1 else (self.data.x[rows], self.data.y[rows]))
        # a diverging run overflows on purpose; the record's finiteness reports it
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            losses_a, per_sample = self.scratch.per_sample_gradients(x, y)
            grads_a = {name: g[0] if len(rows) == 1 else g.mean(axis=0)
                       for name, g in per_sample.items()}
            losses_b, grads_b = self.torch.step_gradients(x, y)
            flat_b = self.torch.flatten(grads_b)
            diff = np.maximum.reduceat(np.abs(flat(grads_a) - flat_b), self._offsets)
            self.scratch.sgd_step(grads_a, lr)
            self.torch.apply_update(grads_b, lr)
            distance = np.linalg.norm(flat(self.scratch.params) - self.torch.flat_params())
        return (float(losses_a.mean()), float(losses_b.detach().mean()),
                dict(zip(self.spec.param_names, diff.tolist(), strict=True)), float(distance))

    def params(self) -> tuple[Params, Params]:
        """Copies of (scratch, torch) parameters."""
        return ({k: v.copy() for k, v in self.scratch.params.items()}, self.torch.params())

    def buffers(self) -> Params:
        """Copies of the scratch engine's gradient sums (accumulated_gradients; else empty)."""
        return self.scratch.buffers()


def epoch_batches(n: int, config: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The batches of rows of epoch `epoch` (1-based): in order, or shuffled by a generator
    seeded with (seed, epoch) so any epoch can be replayed on its own."""
    order = np.arange(n)
    if config.shuffle:
        order = np.random.default_rng([config.seed, epoch]).permutation(n)
    return [order[i:i + config.batch_size] for i in range(0, n, config.batch_size)]


def train(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
          config: TrainConfig, lockstep: Lockstep | None = None) -> Iterator[StepRecord]:
    """SGD over `data` for config.epochs epochs, both engines in lockstep, one record per step.
    Give `lockstep` to keep the engines afterwards (their final parameters)."""
    engines = lockstep or Lockstep(spec, params, data)
    step = 0
    for epoch in range(1, config.epochs + 1):
        batches = epoch_batches(len(data), config, epoch)
        for i, rows in enumerate(batches):
            step += 1
            loss_a, loss_b, diff, dist = engines.step(rows, config.lr)
            yield StepRecord(step, epoch, tuple(int(r) for r in rows), loss_a, loss_b, diff,
                             dist, i == len(batches) - 1)
