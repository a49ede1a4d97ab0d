"""Export gradients with a progress dialog that can be cancelled.

engine.export.export runs in a worker thread (gui/task_runner.py); the GUI thread only updates
the progress dialog from the worker's signals. Cancel sets an Event that the export's progress
callback reads: the engine then raises ExportCancelled before writing anything.

The window exports what it shows: the mistake its scratch engine makes, and after a training
run each engine's own parameters (and the scratch engine's gradient sums)."""

import dataclasses
import os
from collections.abc import Mapping

import numpy as np
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.check.mistakes import Injection
from engine.errors import UserInputError, printable
from engine.export import ExportCancelled, Exported, export
from engine.files.datasets import Dataset
from engine.net.spec import NetworkSpec
from gui.task_runner import TaskProgress, TaskRunner


class ExportRunner(TaskRunner):
    """One export: the worker thread, the progress dialog, and the wait for the end. `mistake`,
    `torch_params` and `buffers` are as engine.export.export takes them."""

    def __init__(self, parent: QWidget | None, outdir: str | os.PathLike, spec: NetworkSpec,
                 params: Mapping[str, np.ndarray], data: Dataset, lr: float = 0.0,
                 mistake: Injection | None = None,
                 torch_params: Mapping[str, np.ndarray] | None = None,
                 buffers: Mapping[str, np.ndarray] | None = None):
        self.outdir = os.fspath(outdir)
        # copies: the session may replace its arrays while the worker reads these
        params = {k: np.array(v) for k, v in params.items()}
        data = dataclasses.replace(data, x=data.x.copy(), y=data.y.copy())
        # a plain export stays the call it always was: only what differs from one is passed
        # on (an Injection is frozen, so shared)
        state = {name: value for name, value in (
            ("mistake", mistake), ("torch_params", _copied(torch_params)),
            ("buffers", _copied(buffers))) if value is not None}
        writing = f"Writing the files into {self.outdir}…"

        def task(progress: TaskProgress) -> Exported:
            def told(done: int, total: int) -> bool:
                return progress(done, total, writing if done == total else "")
            try:
                return export(self.outdir, spec, params, data, lr=lr, progress=told, **state)
            except OSError as e:
                where = e.filename or self.outdir
                raise UserInputError(f"{where}: cannot write the export "
                                     f"({e.strerror or e})") from None

        super().__init__(parent, "Export gradients",
                         f"Computing per-sample gradients of {len(data)} samples with both "
                         "engines…", task, (ExportCancelled,), "The export")


def _copied(params: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    return None if params is None else {k: np.array(v) for k, v in params.items()}


def export_with_progress(parent: QWidget | None, outdir: str | os.PathLike, spec: NetworkSpec,
                         params: Mapping[str, np.ndarray], data: Dataset,
                         lr: float = 0.0, mistake: Injection | None = None,
                         torch_params: Mapping[str, np.ndarray] | None = None,
                         buffers: Mapping[str, np.ndarray] | None = None) -> Exported | None:
    """Export both gradient files (and model.json, data.csv) into `outdir` with a cancellable
    progress dialog; the scratch engine makes `mistake`, and after a training run torch starts
    from `torch_params` and the scratch engine from `params` with its gradient sums `buffers`.
    The Exported, or None when the user cancelled (nothing written) or the export failed (a
    message box has said why)."""
    runner = ExportRunner(parent, outdir, spec, params, data, lr, mistake, torch_params,
                          buffers)
    result = runner.run()
    if runner.error is not None:
        # the message names the folder: escaped, so a newline in its name stays on one line
        QMessageBox.warning(parent, "Export gradients", printable(runner.error))
    return result
