"""The explorer's state, free of Qt: a network and its parameters, the data, the current sample
and the current stage, with both engines' stages for that sample. Views subscribe to plain
events and ask this object for every number; it never draws anything.
 The scratch engine may be told to make a classic mistake (engine/check/mistakes.py);
`first_departure` is then where its pass first parts from torch's, as it is wherever the two
disagree.

Every stage is graded by what rounding can explain (engine/check/rounding.py): exact when each
engine is within its dtype's rounding of a right float64 pass at its own parameters; drift when,
after training, the engines' parameters parted by rounding and their values with them; flagged
otherwise, and the first flagged stage is the departure.

torch takes a second or more to import. A session made with `torch_later=True` imports none of
it: each pair's torch side is pending (no torch stage, no comparison, the grade PENDING) until
`torch_loaded()` is called, once `import_reference()` has run (on any thread; the window runs it
on one of its own). From then on every pair is what a session made with torch at once has.

Events, passed to each subscriber as a string:
    "network"  the spec or the parameters changed (everything below changed too)
    "mistake"  the scratch engine makes another mistake, or none (the stages changed)
    "data"     the dataset changed (the sample and the stages changed too)
    "sample"   another sample is current (its stages are new)
    "stage"    another stage of the same sample is current
    "torch"    torch's reference arrived: the same sample's stages now have their torch side
    "no torch" torch could not be imported: its side stays pending, `torch_error` says why
    "yours"    the user's own code (engine/yours.py) takes the scratch engine's place, gives
               new values, failed, or gave the place back (the stages changed)

Your code: once `check_yours(label)` is called, the stages the user's code gives (the gradients,
and with stages() the others it names) stand in the scratch engine's place, graded as its would
be; a stage it does not give keeps the scratch engine's value, graded UNCHECKED. A new network,
parameters or data make its values stale: they are dropped (every stage UNCHECKED, `yours`
None) until `set_yours` brings those of a new run; `stop_yours()` gives the place back.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.check.compare import ArrayComparison, compare_arrays
from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import ACCUMULATE, Injection, inject
from engine.check.rounding import FLAGGED, ROUNDING_DRIFT, grade_pair, parameter_drift, reference
from engine.errors import UserInputError
from engine.files.datasets import Dataset, default_set
from engine.net.numgrad import numerical_gradient
from engine.net.params import Params, init_params, to_layout
from engine.net.scratch import ScratchNet
from engine.net.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.net.stages import Stage

if TYPE_CHECKING:   # the window imports the session at start; the user's code runs later
    from engine.yours import YourValues

Listener = Callable[[str], None]
NETWORK, DATA, SAMPLE, STAGE, MISTAKE = "network", "data", "sample", "stage", "mistake"
TORCH, NO_TORCH, YOURS = "torch", "no torch", "yours"
PENDING = "pending"  # the grade of a stage whose torch side waits for torch to load
UNCHECKED = "unchecked"  # a stage the user's code does not give (or not yet)
SCRATCH, USER = "scratch", "yours"   # whose value a pair's first side is
WALK_CHUNK = 256  # samples per pass when filling the buffers of accumulated_gradients


@dataclass(frozen=True)
class StagePair:
    """One stage of the current sample from both engines, how far apart they are, and their
    grade (check/rounding.py: exact, drift or flagged) with, per element in the stage's shape,
    how far the worse engine sits from the float64 value in units of its rounding tolerance
    (`excess`, at most 1 where rounding explains it). While torch loads, `torch`,
    `comparison` and `excess` are None and the grade is PENDING."""

    scratch: Stage
    torch: Stage | None
    comparison: ArrayComparison | None
    grade: str
    excess: np.ndarray | None
    source: str = SCRATCH   # USER when the value on the first side is the user's code's

    @property
    def key(self) -> str:
        return self.scratch.key

    @property
    def agrees(self) -> bool:
        """Whether rounding explains every difference (the grade is not flagged); a pending
        pair has no difference yet."""
        return self.grade != FLAGGED

    @property
    def pending(self) -> bool:
        """Whether torch's side is still to come (torch is loading)."""
        return self.torch is None


def import_reference() -> None:
    """Import torch's reference, and torch with it: a second or more the first time, nothing
    after. Safe on any thread; a session made with torch_later then needs `torch_loaded()`."""
    from engine.net.reference import TorchNet  # noqa: F401  (the import is the work)


class Session:
    """Network, parameters (engine layout), data, current sample and stage, and the mistake
    the scratch engine makes (an Injection bound to the spec, or None).

    With accumulated_gradients, the scratch engine's gradient buffers hold what the samples
    before the current one left in them (sample k shows the sum of samples 1..k, as an export
    at learning rate 0 does), unless a training run gave its own with `set_params`.

    With torch_later, torch is not imported here: torch's side of every pair is pending until
    `torch_loaded()` (see the module docstring)."""

    def __init__(self, spec: NetworkSpec | None = None, params: Mapping[str, np.ndarray] | None
                 = None, data: Dataset | None = None, seed: int = 0, mistake: str | None = None,
                 torch_later: bool = False):
        self._listeners: list[Listener] = []
        self.torch_ready = not torch_later
        self.torch_error = ""  # why torch could not be imported, when it could not
        self.seed = seed
        self.spec = spec or preset(DEFAULT_PRESET)
        self.params: Params = (self._own(params) if params is not None
                               else init_params(self.spec, seed))
        self.torch_params: Params | None = None  # torch's own, once training has parted them
        self.buffers: Params | None = None       # a training run's scratch gradient sums
        self.mistake: Injection | None = inject(self.spec, mistake) if mistake else None
        self.mistake_note = ""  # why the last change of network dropped the mistake, if it did
        self.data = (data.as_dtype(self.spec.np_dtype) if data is not None
                     else default_set(self.spec, seed=seed))
        self.sample_index = 0
        self.stage_index = 0
        self.pairs: list[StagePair] = []
        self.first_departure: str | None = None
        self.drift = 0.0  # ||θ_scratch - θ_torch|| / ||θ_torch|| once training parted them
        # how far the buffers of accumulated_gradients were filled, and for which parameters,
        # data and mistake: Next sample then adds one sample, not all those before it
        self._walk: tuple[tuple, int, Params] | None = None
        self.yours_label: str | None = None    # the user's code checked, while it is
        self.yours: YourValues | None = None   # its values at these parameters and data
        self.yours_error = ""                  # why its last run gave none, if it did not
        self._compute()

    # events
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event)

    # what is shown
    @property
    def stage(self) -> StagePair:
        return self.pairs[self.stage_index]

    @property
    def n_samples(self) -> int:
        return len(self.data)

    @property
    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The current sample's (x, y), each 1-D."""
        return self.data.sample(self.sample_index)

    @property
    def drifted_by_rounding(self) -> bool:
        """Whether training parted the engines' parameters by no more than rounding does."""
        return 0 < self.drift <= ROUNDING_DRIFT

    @property
    def stage_keys(self) -> dict[str, int]:
        """The index of each stage, by key."""
        return self._keys

    @property
    def departure_index(self) -> int | None:
        """The index of the stage `first_departure` names, or None when every stage agrees."""
        return None if self.first_departure is None else self._keys[self.first_departure]

    @property
    def checking_yours(self) -> bool:
        """Whether the user's code stands in the scratch engine's place."""
        return self.yours_label is not None

    @property
    def ours_name(self) -> str:
        """Who the first side is, for a heading: "scratch" or "yours"."""
        return USER if self.checking_yours else SCRATCH

    def value(self, key: str, engine: str = "scratch") -> np.ndarray | None:
        """The current sample's value of stage `key` from "scratch" (the first side: the
        user's code where it gives the stage) or "torch" (None while torch loads)."""
        pair = self.pairs[self._keys[key]]
        stage = pair.scratch if engine == "scratch" else pair.torch
        return None if stage is None else stage.value

    def numerical(self, key: str | None = None) -> np.ndarray | None:
        """Central differences (float64) for a parameter-gradient stage (dL/dw<l>, dL/db<l>),
        in the spec's layout; None for any other stage. Computed on demand: it costs two
        forward passes per parameter element."""
        pair = self.pairs[self._keys[key]] if key else self.stage
        kind = pair.scratch.info.kind
        if kind not in ("dw", "db"):
            return None
        name = pair.key.removeprefix("dL/d")
        x, y = self.sample
        value = numerical_gradient(self.spec, self.params, x, y, name)
        return to_layout({name: value}, self.spec.layout)[name]

    # changes
    def torch_loaded(self) -> None:
        """torch's reference is imported (`import_reference`): give every stage its torch side,
        and fire "torch". Nothing happens when the stages have it already."""
        if self.torch_ready:
            return
        self.torch_ready = True
        self._compute()
        self._emit(TORCH)

    def torch_failed(self, why: str) -> None:
        """torch could not be imported (`why`): its side of the stages stays pending and
        `torch_error` says why; fires "no torch"."""
        if not self.torch_ready:
            self.torch_error = why
            self._emit(NO_TORCH)

    def set_network(self, spec: NetworkSpec, params: Mapping[str, np.ndarray] | None = None,
                    data: Dataset | None = None) -> None:
        """A new network, with its parameters (initialised from the seed when None) and data
        (the default set for it when None and the current data no longer fits). The mistake
        is kept where this network can make it too; else it is dropped and `mistake_note`
        says why."""
        self.mistake_note = ""
        if self.mistake is not None:
            try:
                self.mistake = inject(spec, self.mistake.label)
            except UserInputError as e:
                self.mistake, self.mistake_note = None, f"no mistake injected any more: {e}"
        self.spec = spec
        self.params = self._own(params) if params is not None else init_params(spec, self.seed)
        self.torch_params, self.buffers, self.drift = None, None, 0.0
        if data is not None:
            self.data = data
        elif self.data.x.shape[1] != spec.n_inputs or self.data.y.shape[1] != spec.n_outputs:
            self.data = default_set(spec, len(self.data), self.seed)
        self.data = self.data.as_dtype(spec.np_dtype)
        self.sample_index = min(self.sample_index, len(self.data) - 1)
        self.stage_index = 0
        self.yours = None
        self._compute()
        self._emit(NETWORK)

    def set_params(self, params: Mapping[str, np.ndarray],
                   torch_params: Mapping[str, np.ndarray] | None = None,
                   buffers: Mapping[str, np.ndarray] | None = None,
                   sample: int | None = None, announce: bool = True) -> None:
        """New parameter values for the same network (a loaded model, a step of training).
        A training run's engines part slowly; `torch_params` gives torch its own, and
        `buffers` the gradient sums its scratch engine holds under accumulated_gradients
        (every sample's stages then start from them). `sample`: the sample to show with them
        (clamped, as go_to_sample does; None: the current one), computed once with them.
        `announce` False: the listeners hear of it only from `announce(NETWORK)`, which a
        window calls in a turn of its own (the computing and the views' refresh took 14 ms
        together)."""
        if sample is not None:
            self.sample_index = max(0, min(sample, len(self.data) - 1))
        self.params = self._own(params)
        self.torch_params = None if torch_params is None else self._own(torch_params)
        # the parameters alone decide it: once here, not on every change of sample
        self.drift = 0.0 if self.torch_params is None else parameter_drift(
            self.params, self.torch_params)
        self.buffers = None if buffers is None else self._own(buffers)
        self.yours = None
        self._compute()
        if announce:
            self._emit(NETWORK)

    def announce(self, event: str) -> None:
        """Tell the listeners of a change made without telling them (set_params)."""
        self._emit(event)

    def set_mistake(self, name: str | None) -> None:
        """Make the scratch engine make the catalogued mistake `name` ("name" or "name@layer";
        None: none). One this network cannot make is a UserInputError saying why, and
        changes nothing. The sample and the stage are kept."""
        mistake = inject(self.spec, name) if name else None
        self.mistake, self.mistake_note, self.buffers = mistake, "", None
        self._compute()
        self._emit(MISTAKE)

    def check_yours(self, label: str) -> None:
        """The user's code `label` (FILE.py:NAME) takes the scratch engine's place; its values
        follow with `set_yours` (until then every stage is UNCHECKED)."""
        self.yours_label, self.yours, self.yours_error = label, None, ""
        self._compute()
        self._emit(YOURS)

    def set_yours(self, values: "YourValues") -> None:
        """What a run of the user's code gave at the current parameters and data. The sample
        and the stage are kept."""
        if values.samples != len(self.data):
            raise ValueError(f"the values are of {values.samples} samples, the data has "
                             f"{len(self.data)}")
        self.yours_label, self.yours, self.yours_error = values.label, values, ""
        self._compute()
        self._emit(YOURS)

    def yours_failed(self, why: str) -> None:
        """The user's code could not be run to the end: no values, and `yours_error` says
        why."""
        self.yours, self.yours_error = None, why
        self._compute()
        self._emit(YOURS)

    def stop_yours(self) -> None:
        """The scratch engine takes its place back."""
        if self.yours_label is not None:
            self.yours_label, self.yours, self.yours_error = None, None, ""
            self._compute()
            self._emit(YOURS)

    def _own(self, params: Mapping[str, np.ndarray]) -> Params:
        return {k: np.array(v, dtype=self.spec.np_dtype) for k, v in params.items()}

    def set_data(self, data: Dataset) -> None:
        """Another dataset for the same network; the first sample becomes current."""
        if data.x.shape[1] != self.spec.n_inputs or data.y.shape[1] != self.spec.n_outputs:
            raise ValueError("the data does not fit the network")
        self.data = data.as_dtype(self.spec.np_dtype)
        self.sample_index, self.stage_index = 0, 0
        self.yours = None
        self._compute()
        self._emit(DATA)

    def go_to_sample(self, index: int) -> None:
        """Make sample `index` (from 0) current, clamped to the data; the stage is kept."""
        index = max(0, min(index, len(self.data) - 1))
        if index != self.sample_index:
            self.sample_index = index
            self._compute()
            self._emit(SAMPLE)

    def go_to_stage(self, index: int) -> None:
        """Make stage `index` (from 0) current, clamped to the sample's stages."""
        index = max(0, min(index, len(self.pairs) - 1))
        if index != self.stage_index:
            self.stage_index = index
            self._emit(STAGE)

    def step(self) -> None:
        self.go_to_stage(self.stage_index + 1)

    def back(self) -> None:
        self.go_to_stage(self.stage_index - 1)

    def run_sample(self) -> None:
        """To the end of the backward pass."""
        self.go_to_stage(len(self.pairs) - 1)

    def next_sample(self) -> None:
        self.go_to_sample(self.sample_index + 1)

    def previous_sample(self) -> None:
        self.go_to_sample(self.sample_index - 1)

    def reset(self) -> None:
        """The first stage of the first sample."""
        changed = self.sample_index != 0
        self.sample_index, self.stage_index = 0, 0
        if changed:
            self._compute()
            self._emit(SAMPLE)
        else:
            self._emit(STAGE)

    def _compute(self) -> None:
        x, y = self.sample
        # parameters from a diverging run overflow on purpose: the stages show inf and NaN
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            walk = self.buffers is None and self.mistake is not None \
                and self.mistake.step == ACCUMULATE
            net = self._walked() if walk else scratch_net(self.spec, self.params, self.mistake,
                                                           self.buffers)
            ours, sources = self._ours(net.stages(x, y))
            self.pairs = self._paired(ours, x, y) if self.torch_ready else [
                StagePair(a, None, None, PENDING, None) for a in ours]
        if self.checking_yours:
            self.pairs = [replace(p, source=source) if source == USER or p.pending else
                          replace(p, source=source, grade=UNCHECKED)
                          for p, source in zip(self.pairs, sources, strict=True)]
        self._keys = {pair.key: i for i, pair in enumerate(self.pairs)}
        self.first_departure = next((p.key for p in self.pairs if not p.agrees), None)
        self.stage_index = min(self.stage_index, len(self.pairs) - 1)

    def _ours(self, scratch: list[Stage]) -> tuple[list[Stage], list[str]]:
        """The first side of each stage and whose it is: the user's code's value where it
        gives one for this sample, else the scratch engine's."""
        if not self.checking_yours:
            return scratch, [SCRATCH] * len(scratch)
        ours, sources = [], []
        for stage in scratch:
            given = None if self.yours is None else self.yours.at(stage.key, self.sample_index)
            ours.append(stage if given is None else Stage(stage.info, given))
            sources.append(SCRATCH if given is None else USER)
        return ours, sources

    def _paired(self, ours: list[Stage], x: np.ndarray, y: np.ndarray) -> list[StagePair]:
        """The scratch stages `ours` of sample (x, y) beside torch's, compared and graded."""
        from engine.net.reference import TorchNet  # torch loads here when nothing loaded it

        theirs_params = self.torch_params or self.params
        theirs = TorchNet(self.spec, theirs_params).stages(x, y)
        ref_ours = reference(self.spec, self.params, x, y)
        ref_theirs = ref_ours if self.torch_params is None else reference(
            self.spec, theirs_params, x, y)
        return [StagePair(a, b, compare_arrays(a.value, b.value),
                          *grade_pair(a.value, b.value, a.key, ref_ours, ref_theirs, self.drift))
                for a, b in zip(ours, theirs, strict=True)]

    def _walked(self) -> ScratchNet:
        """A scratch engine making accumulated_gradients whose buffers hold what the samples
        before the current one left in them, continuing the last walk where it still holds."""
        made_for, index = (self.params, self.data, self.mistake), self.sample_index
        start, buffers = 0, None
        if self._walk is not None and self._walk[1] <= index \
                and all(a is b for a, b in zip(self._walk[0], made_for, strict=True)):
            _, start, buffers = self._walk
        net = scratch_net(self.spec, self.params, self.mistake, buffers)
        for first in range(start, index, WALK_CHUNK):
            rows = slice(first, min(first + WALK_CHUNK, index))
            net.per_sample_gradients(self.data.x[rows], self.data.y[rows])
        self._walk = (made_for, index, net.buffers())
        return net

