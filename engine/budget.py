"""The memory a run needs, counted before it starts, and the bound above which it is refused.

A network inside the spec's limits (MAX_LAYERS x MAX_WIDTH) can hold 1.7 billion parameters,
and an export holds every sample's gradient of both engines: what a run would need is counted
from the spec and the sample count first, so that a run too big for the machine is a one-line
message instead of a MemoryError, a swapping machine or a killed process.

The counts follow the code (engine/export.py, engine/files/gradfile.py, engine/train/lockstep.py,
engine/train/timeline.py) and were checked against the peak resident memory of real runs; they are
estimates of the peak, on the high side.
"""

from dataclasses import dataclass

import numpy as np

from engine.errors import UserInputError
from engine.net.spec import NetworkSpec

# What one run may take beyond the interpreter and torch (~0.4 GB resident): on a laptop of
# 8 GB that leaves room for the window, a browser and the system, and it stays under the
# 3 GiB address space the fuzz suites give a run (tests/limits.py), torch's mapping included.
LIMIT_BYTES = 2_000_000_000

# copies of one sample's gradients an export holds at its peak: the scratch engine's arrays and
# torch's (each as computed, then as the GradientSet's per-sample copies in the file's layout)
EXPORT_ARRAY_COPIES = 4
# bytes of .dat text per gradient value while a file is written: its lines, their join and the
# UTF-8 bytes are held at once (measured 45 and 60 on 15 million values; a fifth to spare)
DAT_TEXT_BYTES = {"float32": 56, "float64": 72}
# what any run adds whatever its size: torch's workspace of a first batched call, the
# interpreter's own growth (measured ~90 MB)
RUN_OVERHEAD = 128 * 2**20
# bytes per parameter while model.json is written: nested lists of Python floats, the indented
# JSON text and its bytes (json.dumps with indent=1 puts each number on its own line)
MODEL_TEXT_BYTES = 96
# parameter-sized arrays a run holds besides snapshots: the given parameters, both engines'
# copies, a step's gradients and parameters from torch, and two float64 differences (x2 each)
RUN_COPIES = 10
# bytes per sample of the data: x and y in the run's dtype and at float64 as given, with the
# generator's float64 draw, per input or output; plus a training schedule's row (a 1-element
# numpy view in a list, ~120 bytes)
DATA_BYTES_PER_VALUE = 24
SCHEDULE_BYTES_PER_SAMPLE = 128
# the timeline keeps at most this many snapshots (Timeline max_snapshots + the start)
MAX_SNAPSHOTS = 513
SNAPSHOT_EVERY = 256


@dataclass(frozen=True)
class Need:
    """What a run would hold at its peak (`bytes`) and, for the message, what holds it."""

    bytes: int
    what: str


def size_text(n_bytes: float) -> str:
    """1.5 GB, 820 MB, 12 kB: decimal units, three significant digits at most."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{int(n_bytes)} bytes"


def _itemsize(spec: NetworkSpec) -> int:
    return np.dtype(spec.np_dtype).itemsize


def _data_bytes(spec: NetworkSpec, n_samples: int) -> int:
    return n_samples * (spec.n_inputs + spec.n_outputs) * DATA_BYTES_PER_VALUE


def network_need(spec: NetworkSpec) -> Need:
    """Building the network at all: its parameters at float64 as drawn or read, and the run's
    copies of them."""
    p = spec.n_params
    return Need(RUN_OVERHEAD + p * (8 + RUN_COPIES * _itemsize(spec)),
                f"its parameters ({p:,} of them, {spec.dtype}, {RUN_COPIES} copies)")


def export_need(spec: NetworkSpec, n_samples: int) -> Need:
    """An export of `n_samples` samples: both engines' per-sample gradients, the text of the
    .dat file being written, model.json's text, the parameters and the data."""
    values = n_samples * spec.n_params
    per_value = EXPORT_ARRAY_COPIES * _itemsize(spec) + DAT_TEXT_BYTES[spec.dtype]
    total = (values * per_value + spec.n_params * MODEL_TEXT_BYTES
             + network_need(spec).bytes + _data_bytes(spec, n_samples))
    return Need(total, f"gradients ({n_samples:,} samples x {spec.n_params:,} parameters x 2 "
                       f"engines, {spec.dtype}, and the text of the files)")


def train_need(spec: NetworkSpec, n_samples: int, steps: int, save_model: bool = False) -> Need:
    """A training run of `steps` steps on `n_samples` samples: the engines' parameters and a
    step's temporaries, the timeline's snapshots (both engines' parameters and, for
    accumulated_gradients, the scratch engine's sums), the data, and model.json's text when
    the run saves one."""
    snapshots = min(steps // SNAPSHOT_EVERY, MAX_SNAPSHOTS - 1) + 1
    per_snapshot = 3 * spec.n_params * _itemsize(spec)
    total = (network_need(spec).bytes + snapshots * per_snapshot
             + _data_bytes(spec, n_samples) + n_samples * SCHEDULE_BYTES_PER_SAMPLE
             + (spec.n_params * MODEL_TEXT_BYTES if save_model else 0))
    return Need(total, f"parameters and {snapshots:,} snapshots of them to step back to "
                       f"({spec.n_params:,} parameters, {spec.dtype}) and {n_samples:,} samples")


def check(need: Need, doing: str, advice: str, limit: int = LIMIT_BYTES) -> None:
    """A UserInputError when `need` is above `limit`: "this export would hold 14.2 GB of
    gradients (...); the limit is 2 GB: fewer samples or a smaller network"."""
    if need.bytes > limit:
        raise UserInputError(f"{doing} would hold {size_text(need.bytes)} of {need.what}; the "
                             f"limit is {size_text(limit)}: {advice}")


def check_network(spec: NetworkSpec, limit: int = LIMIT_BYTES) -> None:
    """Refuse a network whose parameters alone are above the limit."""
    check(network_need(spec), "this network", "a smaller network", limit)


def check_export(spec: NetworkSpec, n_samples: int, limit: int = LIMIT_BYTES) -> None:
    """Refuse an export above the limit."""
    check_network(spec, limit)
    check(export_need(spec, n_samples), "this export", "fewer samples or a smaller network",
          limit)


def check_train(spec: NetworkSpec, n_samples: int, steps: int, save_model: bool = False,
                limit: int = LIMIT_BYTES) -> None:
    """Refuse a training run above the limit."""
    check_network(spec, limit)
    check(train_need(spec, n_samples, steps, save_model), "this training run",
          "fewer samples or epochs, or a smaller network", limit)
