"""Export: per-sample gradients (batch size 1) of a dataset from both engines, written as
torch_autograd.dat and my_autograd.dat beside the model.json and data.csv they came from.

With lr = 0 every sample's gradient is taken at the same parameters; with lr > 0 each engine
takes an SGD step after each sample with its own gradients, and the files record the gradients
along the way (a note in both headers gives the learning rate). Told to, the scratch engine
makes a catalogued mistake (engine/check/mistakes.py), and my_autograd.dat's header says so.

After a training run the engines have parted: given torch's own parameters (and the gradient
sums the scratch engine's buffers hold under accumulated_gradients), each file is taken at its
engine's parameters, model.json holds the scratch engine's, and both headers say how far apart
the two are.

The four files are one unit. They are written into a staging folder inside OUTDIR
(.backprop-export-PID-XXXX), then a COMMITTED marker is written there, then each file is renamed
into place and the staging folder removed. Before the marker, an export that dies leaves the
old four files as they were (and a staging folder the next export removes); Ctrl-C is held
during the renames. Only a kill in the microseconds between two renames can leave files of two
runs side by side: the committed staging folder says so, `unfinished_export` finds it (compare
refuses such files) and the next export into OUTDIR replaces all four.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.check.mistaken_net import scratch_net
from engine.check.mistakes import ACCUMULATE, Injection, inject
from engine.check.reproduce import along_the_way_note, injected_note
from engine.errors import UserInputError
from engine.files.atomic import abandoned, fsync_dir, remove_stale_temps, write_durably
from engine.files.datasets import Dataset, to_csv_text
from engine.files.gradfile import format_gradients
from engine.files.gradset import GradientSet
from engine.files.model_file import model_to_dict
from engine.net.params import Params, drift, to_layout, unflat
from engine.net.spec import NetworkSpec

TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE = (
    "torch_autograd.dat", "my_autograd.dat", "model.json", "data.csv")
FILES = (TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE)
TORCH_ENGINE, SCRATCH_ENGINE = "torch autograd", "scratch (numpy)"
STAGING_PREFIX = ".backprop-export-"
_STAGING = re.compile(rf"{re.escape(STAGING_PREFIX)}(\d+)-[A-Za-z0-9_]+")
COMMITTED = "COMMITTED"   # in a staging folder: its four files are whole and moving into place

Progress = Callable[[int, int], bool | None]


class ExportCancelled(Exception):
    """The user stopped the export; nothing was written."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote, and the two gradient sets themselves."""

    files: tuple[Path, ...]
    torch: GradientSet
    scratch: GradientSet


BUFFERS_NOTE = ("accumulated gradients continued: the scratch engine's gradient buffers start "
                "from the sums a training run left in them")


def trained_notes(scratch: Mapping[str, np.ndarray],
                  torch: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """The notes (torch's, the scratch file's) of an export made after a training run parted
    the engines' parameters, `scratch` and `torch` ({name: array})."""
    apart = f"||θ_scratch - θ_torch|| = {drift(scratch, torch):.6g}"
    return (f"after training: torch's gradients are taken at its own parameters, which have "
            f"drifted from the scratch engine's by {apart}; model.json holds the scratch "
            "engine's",
            f"after training: the scratch engine's gradients are taken at its own parameters "
            f"(those model.json holds), which have drifted from torch's by {apart}")


def gradient_sets(spec: NetworkSpec, params: Mapping[str, np.ndarray], data: Dataset,
                  lr: float = 0.0, progress: Progress | None = None,
                  mistake: Injection | str | None = None, *,
                  torch_params: Mapping[str, np.ndarray] | None = None,
                  buffers: Mapping[str, np.ndarray] | None = None
                  ) -> tuple[GradientSet, GradientSet]:
    """(torch, scratch) gradient sets of every sample of `data`, weights in the spec's layout;
    the scratch engine makes `mistake` (a name or an Injection) when one is given.
    After a training run, `torch_params` are torch's own parameters (None: torch's are
    `params`) and `buffers` the scratch engine's gradient sums ({name: the parameter's shape},
    used under accumulated_gradients); both files' notes then say so.
    `progress(done, total)` is called as samples are done; returning True cancels."""
    injection = inject(spec, mistake) if isinstance(mistake, str) else mistake
    # after training the update's mistake shows in how far the parameters have drifted
    if injection is not None and injection.mistake.needs_updates and lr == 0 \
            and torch_params is None:
        raise UserInputError(f"{injection.label} changes only the SGD update, so with a "
                             "learning rate of 0 both files would hold the same gradients: "
                             "export with a learning rate above 0 (--lr)")
    continued = bool(buffers) and injection is not None and injection.step == ACCUMULATE
    ours = scratch_net(spec, params, injection, buffers if continued else None)
    from engine.net.reference import TorchNet  # torch loads when an export runs, not before

    theirs = TorchNet(spec, params if torch_params is None else torch_params)
    n = len(data)
    loss_a, grads_a = ours.gradients_along(data.x, data.y, lr)
    if lr == 0:
        loss_b, grads_b = theirs.per_sample_gradients(data.x, data.y)
        _report(progress, n, n)
    else:
        loss_b = np.empty(n, dtype=spec.np_dtype)
        flat_b = np.empty((n, spec.n_params), dtype=spec.np_dtype)
        for i in range(n):
            loss_b[i], flat_b[i], _ = theirs.train_step(data.x[i:i + 1], data.y[i:i + 1], lr)
            if i % 50 == 49 or i == n - 1:
                _report(progress, i + 1, n)
        grads_b = unflat(spec, flat_b)
    for engine, losses, grads in ((SCRATCH_ENGINE, loss_a, grads_a),
                                  (TORCH_ENGINE, loss_b, grads_b)):
        _check_finite(engine, losses, grads, lr, injection if engine == SCRATCH_ENGINE else None)
    notes = [along_the_way_note(lr)] if lr else []
    torch_notes, scratch_notes = list(notes), list(notes)
    if torch_params is not None:
        trained = trained_notes(params, torch_params)
        torch_notes.append(trained[0])
        scratch_notes.append(trained[1])
    if continued:
        scratch_notes.append(BUFFERS_NOTE)

    def as_set(engine: str, losses: np.ndarray, grads: Params, notes: list[str]) -> GradientSet:
        samples = [to_layout({k: g[i] for k, g in grads.items()}, spec.layout) for i in range(n)]
        return GradientSet(samples, engine, spec.layout, spec.dtype, engine, spec,
                           data.x.copy(), data.y.copy(), losses.copy(), notes)

    scratch_notes += [injected_note(injection)] if injection else []
    return (as_set(TORCH_ENGINE, loss_b, grads_b, torch_notes),
            as_set(SCRATCH_ENGINE, loss_a, grads_a, scratch_notes))


def _check_finite(engine: str, losses: np.ndarray, grads: Params, lr: float,
                  injection: Injection | None) -> None:
    """A UserInputError naming the first sample whose loss or gradients are not finite."""
    finite = np.isfinite(losses)
    for g in grads.values():
        finite &= np.isfinite(g).reshape(len(g), -1).all(axis=1)
    if finite.all():
        return
    k = int(np.argmin(finite)) + 1
    making = f" making the mistake {injection.label}" if injection else ""
    advice = (f" with learning rate {lr:g}; try a smaller one, such as {lr / 10:g}" if lr
              else ": its parameters or samples are too large")
    raise UserInputError(f"the {engine} engine{making} diverged at sample {k} (its loss or "
                         f"gradients are no longer finite){advice}")


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and progress(done, total):
        raise ExportCancelled


def export(outdir: str | os.PathLike, spec: NetworkSpec, params: Mapping[str, np.ndarray],
           data: Dataset, lr: float = 0.0, progress: Progress | None = None,
           mistake: Injection | str | None = None, *,
           torch_params: Mapping[str, np.ndarray] | None = None,
           buffers: Mapping[str, np.ndarray] | None = None) -> Exported:
    """Compute both gradient sets and write the four files into `outdir` (created if missing);
    the scratch engine makes `mistake` when one is given, and after a training run each engine
    starts from its own parameters (see `gradient_sets`); model.json holds `params`, the
    scratch engine's. The four are written as one unit (see the module's docstring); a cancel
    (progress returning True), an error or Ctrl-C writes nothing."""
    torch_set, scratch_set = gradient_sets(spec, params, data, lr, progress, mistake,
                                           torch_params=torch_params, buffers=buffers)
    return write_export(outdir, spec, params, data, torch_set, scratch_set)


def write_export(outdir: str | os.PathLike, spec: NetworkSpec, params: Mapping[str, np.ndarray],
                 data: Dataset, torch_set: GradientSet, scratch_set: GradientSet) -> Exported:
    """Write the four files of an export of these two gradient sets (scratch_set as
    my_autograd.dat: the scratch engine's, or a user's code's), as one unit."""
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = tuple(folder / name for name in FILES)
    for path in paths:
        if path.is_dir():
            raise UserInputError(f"{path}: is a folder; the export writes a file of that name")
    remove_stale_exports(folder)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
    try:
        texts = (lambda: format_gradients(torch_set, str(paths[0])),
                 lambda: format_gradients(scratch_set, str(paths[1])),
                 lambda: json.dumps(model_to_dict(spec, params), indent=1) + "\n",
                 lambda: to_csv_text(data))
        for name, text in zip(FILES, texts, strict=True):
            write_durably(staging / name, text().encode("utf-8"))  # one file's text at a time
        _commit(staging, folder)
    except BaseException:
        if not (staging / COMMITTED).exists():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return Exported(paths, torch_set, scratch_set)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (where the platform can hold them)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _commit(staging: Path, folder: Path) -> None:
    """Mark `staging` committed, rename its four files into `folder`, remove it. If a rename
    fails before any file moved, the marker is taken back and the error raised; after, the
    rest are tried once more, and if they still fail the committed folder stays (the files are
    of two runs: `unfinished_export` says so) and a UserInputError says what happened."""
    write_durably(staging / COMMITTED, ("\n".join(FILES) + "\n").encode())
    fsync_dir(staging)
    moved = 0
    with _signals_held():
        try:
            for name in FILES:
                os.replace(staging / name, folder / name)
                moved += 1
        except OSError as first:
            if moved == 0:
                (staging / COMMITTED).unlink()
                raise
            try:
                for name in FILES[moved:]:
                    os.replace(staging / name, folder / name)
            except OSError:
                raise UserInputError(
                    f"{folder}: the export stopped while moving its files into place "
                    f"({first.strerror or first}); the four files there are from two runs "
                    "until it is exported again") from None
    fsync_dir(folder)
    shutil.rmtree(staging, ignore_errors=True)


def _stagings(folder: Path) -> list[tuple[int, Path]]:
    """(pid, path) of every staging folder of ours in `folder`."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [(int(m[1]), Path(e.path)) for e in entries
            if (m := _STAGING.fullmatch(e.name)) and e.is_dir(follow_symlinks=False)]


def remove_stale_exports(folder: Path) -> None:
    """Remove what exports into `folder` left behind: staging folders of processes that are
    gone (or of this one, whose exports are over) and temporary files of the four files'
    atomic writes."""
    for pid, path in _stagings(folder):
        if pid == os.getpid() or abandoned(pid, path):
            shutil.rmtree(path, ignore_errors=True)
    for name in FILES:
        remove_stale_temps(folder / name)


def unfinished_export(path: str | os.PathLike) -> str | None:
    """Why the export file `path` cannot be trusted, in a sentence naming its folder, when an
    export into that folder stopped between renaming its files (so they are of two runs);
    None when it did not, or `path` is not one of an export's four files."""
    target = Path(path)
    if target.name not in FILES:
        return None
    for _, staging in _stagings(target.parent):
        if (staging / COMMITTED).exists():
            where = target.parent if str(target.parent) else Path(".")
            return (f"{where}: an export into it stopped while moving its four files into "
                    f"place, so {target.name} and the files beside it may be from two "
                    "different runs; export into it again")
    return None
