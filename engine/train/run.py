"""A training run that can pause and go on, and the loop a worker runs it with.

The loop is a plain function taking a `state` object (Orange3's pattern): it advances the run,
hands records to `state.report` in batches at most every `report_every` seconds (and once more
before it returns), checks `state.interrupted()` between steps, and stops at a breakpoint.
It knows nothing of threads or Qt, and is tested directly with a mock state.
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.check.mistakes import Injection
from engine.files.datasets import Dataset
from engine.net.spec import NetworkSpec
from engine.train.lockstep import Lockstep, StepRecord, TrainConfig
from engine.train.timeline import Timeline
from engine.train.torch_process import Handover

DONE, INTERRUPTED, STEPS = "done", "interrupted", "steps"


@dataclass(frozen=True)
class Breakpoints:
    """When a run pauses by itself: a gradient difference above a threshold, a loss that is
    NaN or infinite, the end of each epoch."""

    grad_diff_above: float | None = None
    on_nonfinite: bool = True
    at_epoch_end: bool = False


def breakpoint_reason(record: StepRecord, breakpoints: Breakpoints, lr: float) -> str | None:
    """Why `record` should pause the run, in a sentence for the user; None to go on."""
    if breakpoints.on_nonfinite and not record.finite:
        return (f"diverged at step {record.step}: the loss is {record.loss_scratch:g} (scratch), "
                f"{record.loss_torch:g} (torch) with learning rate {lr:g}; try a smaller one, "
                f"such as {lr / 10:g}")
    threshold = breakpoints.grad_diff_above
    if threshold is not None and record.max_grad_diff > threshold:
        name = max(record.grad_diff, key=lambda k: record.grad_diff[k])
        return (f"step {record.step}: the gradients of {name} differ by "
                f"{record.grad_diff[name]:.3g}, above the breakpoint's {threshold:g}")
    if breakpoints.at_epoch_end and record.epoch_end:
        return f"end of epoch {record.epoch} (step {record.step})"
    return None


class TrainingRun:
    """Both engines training in lockstep from `params`, one step at a time, with a timeline
    of every step run so far; the scratch engine makes `mistake` (None: right). Give
    `lockstep` to train engines that exist already (their mistake is the run's).

    A long run computes torch's steps in a helper process (engine/train/torch_process.py) with the
    same numbers; `parallel` True or False forces it on or off. Call `close` when done with
    a run that may not have finished (it ends the helper; a run that finishes ends it)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                 config: TrainConfig, snapshot_every: int = 256,
                 mistake: Injection | None = None, lockstep: Lockstep | None = None,
                 parallel: bool | None = None):
        start = None
        if lockstep is not None:
            mistake = lockstep.scratch.mistake
            start = (*lockstep.params(), lockstep.buffers())
        self.spec, self.data, self.config, self.mistake = spec, data, config, mistake
        self.lockstep = lockstep or Lockstep(spec, params, data, mistake=mistake)
        self.timeline = Timeline(spec, params, data, config, every=snapshot_every,
                                 mistake=mistake, start=start)
        self.schedule = self.timeline.schedule
        self.step = 0
        self.total = self.schedule.total
        from engine.net.reference import torch_threads  # torch loads when a run starts

        self.handover = Handover(spec, data, config, self.total, torch_threads(), parallel)

    @property
    def done(self) -> bool:
        return self.step >= self.total

    def advance(self) -> StepRecord:
        """One SGD step of both engines; its record."""
        self.handover.poll(self.step, self.lockstep)
        self.step += 1
        rows = self.schedule.batch(self.step)
        result = self.lockstep.step(rows, self.config.lr)
        self.timeline.record(self.step, self.lockstep)
        if self.step >= self.total:
            self.close()
        epoch, epoch_end = self.schedule.place(self.step)
        return StepRecord(step=self.step, epoch=epoch, samples=tuple(int(r) for r in rows),
                          loss_scratch=result.loss_scratch, loss_torch=result.loss_torch,
                          grad_diff=result.grad_diff, drift=result.drift, epoch_end=epoch_end)

    def close(self) -> None:
        """End the helper process, if any; the run can still go on, in-process."""
        self.handover.close()


def train(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
          config: TrainConfig, lockstep: Lockstep | None = None,
          parallel: bool | None = None) -> Iterator[StepRecord]:
    """SGD over `data` for config.epochs epochs, both engines in lockstep, one record per step.
    Give `lockstep` to keep the engines afterwards (their final parameters)."""
    training = TrainingRun(spec, params, data, config, lockstep=lockstep, parallel=parallel)
    try:
        while not training.done:
            yield training.advance()
    finally:
        training.close()


class RunState(Protocol):
    """What the loop needs from whoever runs it."""

    def interrupted(self) -> bool: ...

    def report(self, records: list[StepRecord]) -> None: ...


def run(training: TrainingRun, state: RunState, max_steps: int | None = None,
        breakpoints: Breakpoints = Breakpoints(), report_every: float = 0.04) -> str:
    """Advance `training` until it is done, interrupted, `max_steps` steps were taken, or a
    breakpoint is hit. Returns DONE, INTERRUPTED, STEPS or the breakpoint's sentence."""
    batch: list[StepRecord] = []
    last_report = time.monotonic()
    taken = 0
    outcome = DONE
    try:
        while not training.done:
            if state.interrupted():
                outcome = INTERRUPTED
                break
            if max_steps is not None and taken >= max_steps:
                outcome = STEPS
                break
            record = training.advance()
            taken += 1
            batch.append(record)
            reason = breakpoint_reason(record, breakpoints, training.config.lr)
            if reason:
                outcome = reason
                break
            if time.monotonic() - last_report >= report_every:
                state.report(batch)
                batch, last_report = [], time.monotonic()
    finally:
        # the steps taken before a step that raised are reported too
        if batch:
            state.report(batch)
    return outcome
