"""Export: per-sample gradients (batch size 1) of a dataset from both engines, written as
torch_autograd.dat and my_autograd.dat beside the model.json and data.csv they came from.

With lr = 0 every sample's gradient is taken at the same parameters; with lr > 0 each engine
takes an SGD step after each sample with its own gradients, and the files record the gradients
along the way.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_text
from engine.datasets import Dataset, to_csv_text
from engine.gradfile import write_gradients
from engine.gradset import GradientSet
from engine.model_file import write_model
from engine.params import Params, to_layout
from engine.reference import TorchNet
from engine.scratch import ScratchNet
from engine.spec import NetworkSpec

TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE = (
    "torch_autograd.dat", "my_autograd.dat", "model.json", "data.csv")
TORCH_ENGINE, SCRATCH_ENGINE = "torch autograd", "scratch (numpy)"

Progress = Callable[[int, int], bool | None]


class ExportCancelled(Exception):
    """The user stopped the export; nothing was written."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote, and the two gradient sets themselves."""

    files: tuple[Path, ...]
    torch: GradientSet
    scratch: GradientSet


def gradient_sets(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                  lr: float = 0.0, progress: Progress | None = None
                  ) -> tuple[GradientSet, GradientSet]:
    """(torch, scratch) gradient sets of every sample of `data`, weights in the spec's layout.
    `progress(done, total)` is called as samples are done; returning True cancels."""
    ours, theirs = ScratchNet(spec, params), TorchNet(spec, params)
    n = len(data)
    if lr == 0:
        loss_a, grads_a = ours.per_sample_gradients(data.x, data.y)
        loss_b, grads_b = theirs.per_sample_gradients(data.x, data.y)
        _report(progress, n, n)
    else:
        per_step: list[tuple[np.ndarray, Params, np.ndarray, Params]] = []
        for i in range(n):
            x, y = data.x[i:i + 1], data.y[i:i + 1]
            la, ga = ours.per_sample_gradients(x, y)
            lb, gb = theirs.batch_gradients(x, y)
            ours.sgd_step({k: v[0] for k, v in ga.items()}, lr)
            theirs.sgd_step(gb, lr)
            per_step.append((la, ga, lb, {k: v[None] for k, v in gb.items()}))
            if i % 50 == 49 or i == n - 1:
                _report(progress, i + 1, n)
        loss_a = np.concatenate([s[0] for s in per_step])
        loss_b = np.concatenate([s[2] for s in per_step])
        grads_a = {k: np.concatenate([s[1][k] for s in per_step]) for k in spec.param_names}
        grads_b = {k: np.concatenate([s[3][k] for s in per_step]) for k in spec.param_names}

    def as_set(engine: str, losses: np.ndarray, grads: Params) -> GradientSet:
        samples = [to_layout({k: g[i] for k, g in grads.items()}, spec.layout) for i in range(n)]
        return GradientSet(samples, engine, spec.layout, spec.dtype, engine, spec,
                           data.x.copy(), data.y.copy(), losses.copy())

    return as_set(TORCH_ENGINE, loss_b, grads_b), as_set(SCRATCH_ENGINE, loss_a, grads_a)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and progress(done, total):
        raise ExportCancelled


def export(outdir: str | os.PathLike, spec: NetworkSpec, params: Mapping[str, np.ndarray],
           data: Dataset, lr: float = 0.0, progress: Progress | None = None) -> Exported:
    """Compute both gradient sets and write the four files into `outdir` (created if missing).
    Each file is written atomically; a cancel (progress returning True) writes nothing."""
    torch_set, scratch_set = gradient_sets(spec, params, data, lr, progress)
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = tuple(folder / name for name in (TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE))
    write_gradients(paths[0], torch_set)
    write_gradients(paths[1], scratch_set)
    write_model(paths[2], spec, params)
    atomic_write_text(paths[3], to_csv_text(data))
    return Exported(paths, torch_set, scratch_set)
