"""A training run that can pause and go on, and the loop a worker runs it with.

The loop is a plain function taking a `state` object (Orange3's pattern): it advances the run,
hands records to `state.report` in batches at most every `report_every` seconds (and once more
before it returns), checks `state.interrupted()` between steps, and stops at a breakpoint.
It knows nothing of threads or Qt, and is tested directly with a mock state.

`train` is the headless run (`app.py train`): a generator of every step's record, whose long
runs overlap the two engines across two processes from the first step (see `train`).
"""

import math
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.check.mistakes import Injection
from engine.files.datasets import Dataset
from engine.net.spec import NetworkSpec
from engine.train.launch import discard
from engine.train.lockstep import (
    Lockstep,
    Schedule,
    ScratchStep,
    StepRecord,
    StepResult,
    TrainConfig,
    batch_arrays,
)
from engine.train.timeline import Timeline
from engine.train.torch_process import Handover, RemoteTorch, ahead, worthwhile

# the most the scratch engine's steps computed ahead of torch's may hold: enough for the
# default net to go on through the helper's start (~1 s) without waiting
AHEAD_BYTES = 32 * 2**20

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
        return _record(self.schedule, self.step, rows, result)

    def close(self) -> None:
        """End the helper process, if any; the run can still go on, in-process."""
        self.handover.close()


def _record(schedule: Schedule, step: int, rows: np.ndarray, result: StepResult) -> StepRecord:
    epoch, epoch_end = schedule.place(step)
    return StepRecord(step=step, epoch=epoch, samples=tuple(int(r) for r in rows),
                      loss_scratch=result.loss_scratch, loss_torch=result.loss_torch,
                      grad_diff=result.grad_diff, drift=result.drift, epoch_end=epoch_end)


def train(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
          config: TrainConfig, lockstep: Lockstep | None = None,
          parallel: bool | None = None) -> Iterator[StepRecord]:
    """SGD over `data` for config.epochs epochs, both engines in lockstep, one record per step.
    Give `lockstep` to keep the engines afterwards (their parameters after the last record).

    A long run (or any, `parallel` True; none, False) has all of torch's steps computed by a
    helper process started at once, while this process runs the scratch engine ahead of it
    and compares each step as torch's numbers come: neither waits for torch's import, and
    this process loads torch only if the helper fails. The records are the same either way."""
    lockstep = lockstep or Lockstep(spec, params, data)
    schedule = Schedule(len(data), config)
    wanted = worthwhile(spec, schedule.total) if parallel is None else parallel
    if not wanted:
        discard()   # one `app.py train` started early, in case the run was long
    remote = ahead(spec, data, config, lockstep.torch_flat()) if wanted else None
    if remote is None:
        for step in range(1, schedule.total + 1):
            rows = schedule.batch(step)
            yield _record(schedule, step, rows, lockstep.step(rows, config.lr))
        return
    yield from _train_ahead(lockstep, schedule, config.lr, remote)


def _train_ahead(lockstep: Lockstep, schedule: Schedule, lr: float,
                 remote: RemoteTorch) -> Iterator[StepRecord]:
    """The records of `schedule`, torch's steps taken from `remote`, the scratch engine's
    computed ahead of them (up to AHEAD_BYTES) whenever torch's next step has not come."""
    lockstep.torch = remote
    spec, data, total = lockstep.spec, lockstep.data, schedule.total
    row_bytes = 2 * spec.n_params * np.dtype(spec.np_dtype).itemsize + 256   # + the objects
    limit = max(1, AHEAD_BYTES // row_bytes)
    pending: deque[ScratchStep] = deque()
    made = 0          # scratch steps taken
    # the scratch engine as the last record left it (at first, as it starts)
    recorded = ScratchStep(np.empty(0, dtype=np.int64), math.nan, np.empty(0),
                           lockstep.scratch.flat_params.copy(), lockstep.buffers())
    try:
        for step in range(1, total + 1):
            while made < total and (not pending or (len(pending) < limit and remote.waiting())):
                made += 1
                pending.append(lockstep.scratch_step(schedule.batch(made), lr))
            ours = pending.popleft()
            theirs = remote.step(*batch_arrays(data, ours.rows), lr)
            record = _record(schedule, step, ours.rows, lockstep.compare(ours, *theirs))
            recorded = ours
            yield record
    finally:
        remote.helper.close()
        if pending:   # stopped early, the scratch engine ahead of the last record
            lockstep.rewind(recorded)


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
