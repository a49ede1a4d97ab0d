"""The explorer's state, free of Qt: a network and its parameters, the data, the current sample
and the current stage, with both engines' stages for that sample. Views subscribe to plain
events and ask this object for every number; it never draws anything.

Events, passed to each subscriber as a string:
    "network"  the spec or the parameters changed (everything below changed too)
    "data"     the dataset changed (the sample and the stages changed too)
    "sample"   another sample is current (its stages are new)
    "stage"    another stage of the same sample is current
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.compare import ArrayComparison, compare_arrays
from engine.datasets import Dataset, default_set
from engine.numgrad import numerical_gradient
from engine.params import Params, init_params, to_layout
from engine.reference import TorchNet
from engine.scratch import ScratchNet
from engine.spec import DEFAULT_PRESET, NetworkSpec, preset
from engine.stages import Stage

Listener = Callable[[str], None]
NETWORK, DATA, SAMPLE, STAGE = "network", "data", "sample", "stage"


@dataclass(frozen=True)
class StagePair:
    """One stage of the current sample from both engines, and how far apart they are."""

    scratch: Stage
    torch: Stage
    comparison: ArrayComparison

    @property
    def key(self) -> str:
        return self.scratch.key


class Session:
    """Network, parameters (engine layout), data, current sample and stage."""

    def __init__(self, spec: NetworkSpec | None = None, params: Mapping[str, np.ndarray] | None
                 = None, data: Dataset | None = None, seed: int = 0):
        self._listeners: list[Listener] = []
        self.seed = seed
        self.spec = spec or preset(DEFAULT_PRESET)
        self.params: Params = dict(params) if params is not None else init_params(self.spec, seed)
        self.torch_params: Params | None = None  # torch's own, once training has parted them
        self.data = data if data is not None else default_set(self.spec, seed=seed)
        self.sample_index = 0
        self.stage_index = 0
        self.pairs: list[StagePair] = []
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

    def value(self, key: str, engine: str = "scratch") -> np.ndarray:
        """The current sample's value of stage `key` from "scratch" or "torch"."""
        pair = self.pairs[self._keys[key]]
        return (pair.scratch if engine == "scratch" else pair.torch).value

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
    def set_network(self, spec: NetworkSpec, params: Mapping[str, np.ndarray] | None = None,
                    data: Dataset | None = None) -> None:
        """A new network, with its parameters (initialised from the seed when None) and data
        (the default set for it when None and the current data no longer fits)."""
        self.spec = spec
        self.params = dict(params) if params is not None else init_params(spec, self.seed)
        self.torch_params = None
        if data is not None:
            self.data = data
        elif self.data.x.shape[1] != spec.n_inputs or self.data.y.shape[1] != spec.n_outputs:
            self.data = default_set(spec, len(self.data), self.seed)
        self.data = _as_dtype(self.data, spec)
        self.sample_index = min(self.sample_index, len(self.data) - 1)
        self.stage_index = 0
        self._compute()
        self._emit(NETWORK)

    def set_params(self, params: Mapping[str, np.ndarray],
                   torch_params: Mapping[str, np.ndarray] | None = None) -> None:
        """New parameter values for the same network (a loaded model, a step of training).
        A training run's engines part slowly; `torch_params` gives torch its own."""
        self.params = self._own(params)
        self.torch_params = None if torch_params is None else self._own(torch_params)
        self._compute()
        self._emit(NETWORK)

    def _own(self, params: Mapping[str, np.ndarray]) -> Params:
        return {k: np.array(v, dtype=self.spec.np_dtype) for k, v in params.items()}

    def set_data(self, data: Dataset) -> None:
        """Another dataset for the same network; the first sample becomes current."""
        if data.x.shape[1] != self.spec.n_inputs or data.y.shape[1] != self.spec.n_outputs:
            raise ValueError("the data does not fit the network")
        self.data = _as_dtype(data, self.spec)
        self.sample_index, self.stage_index = 0, 0
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
            ours = ScratchNet(self.spec, self.params).stages(x, y)
            theirs = TorchNet(self.spec, self.torch_params or self.params).stages(x, y)
            self.pairs = [StagePair(a, b, compare_arrays(a.value, b.value))
                          for a, b in zip(ours, theirs, strict=True)]
        self._keys = {pair.key: i for i, pair in enumerate(self.pairs)}
        self.stage_index = min(self.stage_index, len(self.pairs) - 1)


def _as_dtype(data: Dataset, spec: NetworkSpec) -> Dataset:
    if data.x.dtype == spec.np_dtype:
        return data
    return Dataset(data.x.astype(spec.np_dtype), data.y.astype(spec.np_dtype), data.name)
