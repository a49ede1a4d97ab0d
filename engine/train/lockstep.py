"""Lockstep SGD: the scratch engine and the torch reference start from the same parameters and
each updates with its own gradients. A Qt-free generator of frozen records; it never prints."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import Injection
from engine.errors import UserInputError
from engine.files.datasets import Dataset
from engine.net.params import Params, unflat
from engine.net.spec import NetworkSpec


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
class StepResult:
    """What one update of both engines gives. loss_*: mean loss of the batch before the
    update; grad_diff: max |g_scratch - g_torch| per parameter of the batch gradients; drift:
    ||θ_scratch - θ_torch|| after the update."""

    loss_scratch: float
    loss_torch: float
    grad_diff: Mapping[str, float]
    drift: float


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One SGD step of a run: its number (from 1), its epoch (from 1) and whether it ends it,
    the dataset rows of the batch (`samples`), and the StepResult's fields."""

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


class TorchSide(Protocol):
    """Where a Lockstep's torch engine runs: here (LocalTorch) or in a process of its own
    (engine/train/torch_process.py), which computes the same numbers."""

    def step(self, x: np.ndarray, y: np.ndarray, lr: float
             ) -> tuple[float, np.ndarray, np.ndarray]:
        """As TorchNet.train_step: (mean loss, flat gradient, flat parameters after)."""
        ...

    def params(self) -> Params:
        """Copies of the current parameters."""
        ...


class LocalTorch:
    """The torch engine in this process."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray]):
        from engine.net.reference import TorchNet  # torch loads when a run starts

        self.net = TorchNet(spec, params)
        self.step = self.net.train_step

    def params(self) -> Params:
        return self.net.params()


def batch_arrays(data: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the rows of `data` a step trains on; one row is a slice, cheaper than a
    gather."""
    if len(rows) == 1:
        i = int(rows[0])   # a Python int slices faster than a numpy one
        return data.x[i:i + 1], data.y[i:i + 1]
    return data.x[rows], data.y[rows]


class ScratchStep(NamedTuple):
    """The scratch engine's half of one step on `rows`: its loss before the update, its
    gradient as one vector (the order of flat_params), its flat parameters after and, when it
    makes a mistake, the gradient sums it keeps after (see ScratchNet.buffers)."""

    rows: np.ndarray
    loss: float
    grads: np.ndarray
    params: np.ndarray
    buffers: Params | None = None


class Lockstep:
    """Both engines, one SGD step at a time on any batch of rows of `data`. The scratch engine
    makes `mistake` (engine/check/mistakes.py), continuing from `buffers` (see ScratchNet). `torch`
    is where the torch engine runs; it may be swapped between steps for one that goes on
    from the same parameters. It is made when first used: a run whose torch steps are computed
    elsewhere never loads torch here.

    A step is two halves that may run apart: `scratch_step`, which needs nothing of torch, and
    `compare`, which takes torch's numbers of the same step; `step` is both."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                 torch_params: Mapping[str, np.ndarray] | None = None,
                 mistake: Injection | str | None = None,
                 buffers: Mapping[str, np.ndarray] | None = None):
        self.spec, self.data = spec, data
        self.scratch = scratch_net(spec, params, mistake, buffers)
        self._torch_start = {k: np.array(v) for k, v in
                             (params if torch_params is None else torch_params).items()}
        self._torch: TorchSide | None = None
        sizes = [int(np.prod(spec.param_shape(n, "out_in"))) for n in spec.param_names]
        self._offsets = np.cumsum([0, *sizes[:-1]])

    @property
    def torch(self) -> TorchSide:
        if self._torch is None:
            self.torch = LocalTorch(self.spec, self._torch_start)
        return self._torch

    @torch.setter
    def torch(self, side: TorchSide) -> None:
        self._torch = side
        self._torch_start = {}   # the torch side holds them now

    @classmethod
    def from_params(cls, spec: NetworkSpec, scratch: Mapping[str, np.ndarray],
                    torch_params: Mapping[str, np.ndarray], data: Dataset,
                    mistake: Injection | str | None = None,
                    buffers: Mapping[str, np.ndarray] | None = None) -> "Lockstep":
        """Engines that have already parted: each starts from its own parameters, and the
        scratch engine, making `mistake`, from the gradient sums `buffers` it had left."""
        return cls(spec, scratch, data, torch_params, mistake, buffers)

    def step(self, rows: np.ndarray, lr: float) -> StepResult:
        """Update both engines on `rows` (a batch of row indices of the data)."""
        ours = self.scratch_step(rows, lr, copy=False)
        return self.compare(ours, *self.torch.step(*batch_arrays(self.data, rows), lr))

    def scratch_step(self, rows: np.ndarray, lr: float, copy: bool = True) -> ScratchStep:
        """Update the scratch engine on `rows`; its half of the step. `copy` False: the
        parameters in it are the engine's own, valid until its next step."""
        x, y = batch_arrays(self.data, rows)
        # a diverging run overflows on purpose; the record's finiteness reports it
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            losses, per_sample = self.scratch.per_sample_gradients(x, y)
            one = len(rows) == 1
            grads = {name: g[0] if one else g.mean(axis=0) for name, g in per_sample.items()}
            flat = np.concatenate([g.reshape(-1) for g in grads.values()])
            self.scratch.sgd_step(grads, lr, flat)
            loss = float(losses[0] if one else losses.mean())
        if not copy:
            return ScratchStep(rows, loss, flat, self.scratch.flat_params)
        buffers = self.scratch.buffers() if self.scratch.mistake is not None else None
        return ScratchStep(rows, loss, flat, self.scratch.flat_params.copy(), buffers)

    def rewind(self, ours: ScratchStep) -> None:
        """Set the scratch engine back to where the step `ours` (a copy) left it."""
        self.scratch = scratch_net(self.spec, unflat(self.spec, ours.params),
                                   self.scratch.mistake, ours.buffers)

    def compare(self, ours: ScratchStep, loss_torch: float, grads_torch: np.ndarray,
                params_torch: np.ndarray) -> StepResult:
        """The record of a step from both halves: the scratch engine's and torch's (as
        TorchSide.step gives them)."""
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # differences in float64: exact for float32 engines
            diff = np.maximum.reduceat(np.abs(np.subtract(ours.grads, grads_torch,
                                                          dtype=np.float64)), self._offsets)
            apart = np.subtract(ours.params, params_torch, dtype=np.float64)
            distance = math.sqrt(apart @ apart)   # as np.linalg.norm, less its overhead
        return StepResult(loss_scratch=ours.loss, loss_torch=loss_torch,
                          grad_diff=dict(zip(self.spec.param_names, diff.tolist(), strict=True)),
                          drift=distance)

    def params(self) -> tuple[Params, Params]:
        """Copies of (scratch, torch) parameters."""
        return {k: v.copy() for k, v in self.scratch.params.items()}, self.torch_params()

    def torch_params(self) -> Params:
        """Copies of torch's parameters (the ones it starts from, before it is made)."""
        if self._torch is None:
            return {k: np.array(v, dtype=self.spec.np_dtype)
                    for k, v in self._torch_start.items()}
        return self._torch.params()

    def torch_flat(self) -> np.ndarray:
        """torch's parameters as one vector in the order w1, b1, w2, ... (a copy)."""
        params = self.torch_params()
        return np.concatenate([params[n].ravel() for n in self.spec.param_names])

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


class Schedule:
    """Which rows of n samples each step of a run of `config` trains on."""

    def __init__(self, n: int, config: TrainConfig):
        self.n, self.config = n, config
        self._epoch = (1, epoch_batches(n, config, 1))
        self.steps_per_epoch = len(self._epoch[1])
        self.total = config.epochs * self.steps_per_epoch

    def batch(self, step: int) -> np.ndarray:
        """The rows that step `step` (from 1) trains on."""
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        if self._epoch[0] != epoch + 1:  # one epoch's batches at a time, not one per step
            self._epoch = (epoch + 1, epoch_batches(self.n, self.config, epoch + 1))
        return self._epoch[1][index]

    def place(self, step: int) -> tuple[int, bool]:
        """(epoch from 1, whether it ends there) of step `step`."""
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        return epoch + 1, index == self.steps_per_epoch - 1
