"""What the window knows of a training run that runs in the child (engine/train/child.py).

The child holds the run itself: both engines, the timeline, the torch helper. The window keeps
only what it shows between the child's messages: the run's settings, its schedule (which sample
each step trains on, computed here as in the child: the schedule depends only on the data's
size and the settings), the last step whose record came and the last state (both engines'
parameters and the scratch engine's gradient sums) a snapshot brought. Qt-free: the controller
that feeds it lives in gui/training/controller.py.
"""

from collections.abc import Mapping

import numpy as np

from engine.check.mistakes import Injection
from engine.files.datasets import Dataset
from engine.net.params import Params
from engine.net.spec import NetworkSpec
from engine.train.lockstep import Schedule, StepRecord, TrainConfig
from engine.train.timeline import State


class RemoteRun:
    """A run of `config` on `data` from `params` (engine layout), the scratch engine making
    `mistake` (None: right), as the window sees it. `total` may be lowered (a run the user
    stopped, or whose child died, ends where it is)."""

    def __init__(self, spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                 config: TrainConfig, mistake: Injection | None = None):
        self.spec, self.data, self.config, self.mistake = spec, data, config, mistake
        start = {k: np.array(v, dtype=spec.np_dtype) for k, v in params.items()}
        self.start_params: Params = start
        self.schedule = Schedule(len(data), config)
        self.total = self.schedule.total
        self.step = 0                 # the last step whose record has come
        self.state_step = 0           # the step `state` stands at
        self.state: State = (start, {k: v.copy() for k, v in start.items()}, {})
        self.begun = False            # whether the child has been asked to build it
        # the state the step that hit a breakpoint began from, as the child sends it
        self.broke_from: tuple[int, State] | None = None

    @property
    def done(self) -> bool:
        return self.step >= self.total

    def took(self, records: list[StepRecord]) -> None:
        if records:
            self.step = max(self.step, records[-1].step)

    def reached(self, step: int, state: State) -> None:
        """A snapshot of the run after `step` steps (never moves it back)."""
        if step >= self.state_step:
            self.state_step, self.state = step, state
            self.step = max(self.step, step)

    def params(self) -> tuple[Params, Params]:
        """Copies of both engines' parameters (scratch, torch) at `state_step`."""
        scratch, theirs, _ = self.state
        return _copy(scratch), _copy(theirs)

    def buffers(self) -> Params:
        return _copy(self.state[2])

    def end_here(self) -> None:
        """Nothing more runs: the run ends at the last step whose record came (its state may
        be a few steps older, where the child died between two snapshots)."""
        self.total = self.step


def _copy(params: Mapping[str, np.ndarray]) -> Params:
    return {k: v.copy() for k, v in params.items()}
