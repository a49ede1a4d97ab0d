"""A student's intermediate values, stage by stage, beside torch's: where their pass first
departs (the forward stages first, then backward from the loss), not only which gradients end
up wrong.

    found = compare_stages(spec, params, data, returned)   # returned[k]: {name: value}
    found.first_stage                                      # "dL/dz2", or None

The names are read by engine/check/stage_names.py (z2, a2, y_hat, loss, delta2, dW2, ...);
names that are no stage are left out with a note. Each value is taken in the stage's shape
where it has the same elements ((1, n) for (n,)), a weight gradient also transposed where only
its transpose fits, which a note says.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.check.compare import compare_arrays, dtype_carry
from engine.errors import UserInputError
from engine.files.datasets import Dataset
from engine.net.spec import NetworkSpec
from engine.net.stages import stage_plan

STAGES = "stages"             # the optional function of a user's file that gives them


@dataclass(frozen=True)
class StageRow:
    key: str
    max_abs_diff: float
    max_rel_diff: float
    digits: float
    worst: tuple[int, ...]      # sample (from 1), then the element
    agree: bool


@dataclass
class StageComparison:
    rows: dict[str, StageRow]          # in the pass's order
    first_stage: str | None
    notes: list[str] = field(default_factory=list)
    # what the user's stages() returned, by stage key: (samples, *the stage's shape)
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"first_stage": self.first_stage,
                "stages": {key: {"max_abs_diff": float(r.max_abs_diff),
                                 "max_rel_diff": float(r.max_rel_diff),
                                 "digits": round(float(r.digits), 2), "worst": list(r.worst),
                                 "agree": r.agree} for key, r in self.rows.items()}}

    def lines(self) -> list[str]:
        """The stages compared, as the report's table does the gradients."""
        out = ["", f"Stages ({STAGES}()), in the order of the pass:",
               f"{'stage':<11}{'max |diff|':>12}{'max rel':>12}{'digits':>8}  "
               f"{'worst (sample: element)':<26}verdict"]
        for key, r in self.rows.items():
            sample, *element = r.worst
            where = f"{sample}: {list(element)}" if element else f"{sample}"
            verdict = "agree" if r.agree else "DEPARTS" if key == self.first_stage else \
                "DISAGREE"
            out.append(f"{key:<11}{r.max_abs_diff:>12.3g}{r.max_rel_diff:>12.3g}"
                       f"{r.digits:>8.1f}  {where:<26}{verdict}")
        out.append("first stage that departs from torch: " + (self.first_stage or "none"))
        return out + [f"  - {note}" for note in self.notes]


def compare_stages(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                   returned: Sequence[Mapping[str, np.ndarray]], rtol: float | None = None,
                   atol: float | None = None) -> StageComparison:
    """Each stage the user's stages() returned, over every sample, against torch's value of
    it (tolerances: the run's dtype's unless given)."""
    from engine.check.stage_names import stage_key
    from engine.net.reference import TorchNet  # torch loads when a check runs, not before

    carry = dtype_carry(spec.dtype)
    rtol, atol = carry.rtol if rtol is None else rtol, carry.atol if atol is None else atol
    net = TorchNet(spec, params)
    theirs = [{stage.key: stage.value for stage in net.stages(data.x[k], data.y[k])}
              for k in range(len(data))]
    notes: list[str] = []
    keys: dict[str, str] = {}
    unknown = []
    for name in returned[0] if returned else ():
        key = stage_key(name, spec.n_layers)
        if key is None:
            unknown.append(name)
        elif key in keys.values():
            notes.append(f"{name!r} names {key} again: left out")
        else:
            keys[name] = key
    if unknown:
        notes.append(f"left out, not a stage's name: {', '.join(map(repr, unknown))}")
    rows: dict[str, StageRow] = {}
    values: dict[str, np.ndarray] = {}
    order = [info.key for info in stage_plan(spec)]
    by_key = {key: name for name, key in keys.items()}
    for key in order:
        if key not in by_key:
            continue
        name = by_key[key]
        target = np.shape(theirs[0][key])
        ours = np.stack([_shaped(sample[name], target, name, key, notes, k == 0)
                         for k, sample in enumerate(returned)])
        values[key] = ours
        torch_values = np.stack([np.asarray(t[key]) for t in theirs])
        result = compare_arrays(torch_values.astype(np.float64), ours.astype(np.float64),
                                rtol, atol)
        agree = result.agree or _rounding(result.max_abs_diff, torch_values, carry.rtol)
        if agree and not result.agree:
            notes.append(f"{key}: parts from torch by {result.max_abs_diff:.2g} at most, "
                         f"within the rounding of the stage's largest value "
                         f"({np.abs(torch_values).max():.3g}): agrees")
        sample, *element = result.worst
        rows[key] = StageRow(key, result.max_abs_diff, result.max_rel_diff,
                             min(result.digits, carry.digits), (sample + 1, *element), agree)
    first = next((key for key, row in rows.items() if not row.agree), None)
    if not rows:
        notes.append(f"{STAGES}() returned no value a stage is named by (z1, a1, y_hat, loss, "
                     "dL/dz1, dz1, delta1, dW1, ...)")
    return StageComparison(rows, first, notes, values)


def _rounding(max_abs_diff: float, values: np.ndarray, level: float) -> bool:
    """Whether a difference this small against the stage's largest value over the samples
    is the dtype's rounding showing through a cancellation (a z near 0 summed from terms near
    1), not a mistake: the same test as the gradients' (engine/check/report.py)."""
    largest = float(np.abs(values).max(initial=0.0))
    return np.isfinite(max_abs_diff) and max_abs_diff <= level * largest


def _shaped(value: np.ndarray, target: tuple[int, ...], name: str, key: str,
            notes: list[str], first: bool) -> np.ndarray:
    value = np.asarray(value)
    if value.shape == target:
        return value
    if value.ndim == 2 and value.T.shape == target and len(target) == 2 and \
            target[0] != target[1]:
        if first:
            notes.append(f"{name} ({key}) read transposed: {value.shape}, where the network's "
                         f"layout holds {target}")
        return value.T
    if value.size == int(np.prod(target)) and np.squeeze(value).shape == tuple(
            n for n in target if n != 1):
        return value.reshape(target)
    raise UserInputError(f"{STAGES}() returned {name!r} ({key}) of shape {value.shape}, where "
                         f"{target} was expected")
