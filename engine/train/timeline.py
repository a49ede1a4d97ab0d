"""Time travel over a training run: both engines' parameters at any past step, exactly.

Snapshots of both parameter sets, and of the gradient sums the scratch engine keeps when it
makes accumulated_gradients (they carry from step to step like parameters), are kept every
`every` steps; any other step is reached by replaying, from the nearest snapshot before it, the
same batches with the same learning rate and the same mistake. Replays are deterministic (the
batch order of an epoch depends only on the seed and the epoch), so a restored step is
bit-identical to the one the run passed through. Memory stays bounded: when `max_snapshots` is
reached every other snapshot is dropped and the interval doubles.
"""

from collections.abc import Mapping

import numpy as np

from engine.check.mistakes import Injection
from engine.files.datasets import Dataset
from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.train.lockstep import Lockstep, Schedule, TrainConfig

State = tuple[Params, Params, Params]  # scratch parameters, torch parameters, scratch buffers


class Timeline:
    """Snapshots of a run of `config` on `data`, starting from `params` for both engines (or
    from the state `start`, for engines that have parted), the scratch engine making
    `mistake` (None: right)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                 config: TrainConfig, every: int = 256, max_snapshots: int = 512,
                 mistake: Injection | str | None = None, start: State | None = None):
        self.spec, self.data, self.config, self.mistake = spec, data, config, mistake
        self.every, self.max_snapshots = every, max_snapshots
        if start is None:
            first = {k: np.array(v, dtype=spec.np_dtype) for k, v in params.items()}
            start = (first, _copy(first), {})
        self.snapshots: dict[int, State] = {0: start}
        self.schedule = Schedule(len(data), config)
        self.batch = self.schedule.batch
        self.last_step = 0

    def record(self, step: int, lockstep: Lockstep) -> None:
        """Note that the run has reached `step`; keep a snapshot when one is due."""
        self.last_step = max(self.last_step, step)
        if step % self.every == 0 and step not in self.snapshots:
            self.snapshots[step] = (*lockstep.params(), lockstep.buffers())
            if len(self.snapshots) > self.max_snapshots:
                self.every *= 2
                self.snapshots = {s: p for s, p in self.snapshots.items() if s % self.every == 0}

    def params_at(self, step: int) -> tuple[Params, Params]:
        """Both engines' parameters (scratch, torch) after `step` steps (0: the start)."""
        scratch, torch, _ = self.state_at(step)
        return scratch, torch

    def state_at(self, step: int) -> State:
        """Both engines' parameters and the scratch engine's gradient sums (empty unless it
        makes accumulated_gradients) after `step` steps (0: the start)."""
        if not 0 <= step <= self.last_step:
            raise ValueError(f"step {step} is outside the run's 0..{self.last_step}")
        base = max(s for s in self.snapshots if s <= step)
        scratch, torch, buffers = self.snapshots[base]
        if base == step:
            return _copy(scratch), _copy(torch), _copy(buffers)
        lockstep = Lockstep.from_params(self.spec, scratch, torch, self.data, self.mistake,
                                        buffers)
        for s in range(base + 1, step + 1):
            lockstep.step(self.batch(s), self.config.lr)
        return (*lockstep.params(), lockstep.buffers())


def _copy(params: Mapping[str, np.ndarray]) -> Params:
    return {k: v.copy() for k, v in params.items()}
