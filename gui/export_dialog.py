"""Export gradients with a progress dialog that can be cancelled.

engine.export.export runs in a worker thread (gui/task_runner.py); the GUI thread only updates
the progress dialog from the worker's signals. Cancel sets an Event that the export's progress
callback reads: the engine then raises ExportCancelled before writing anything."""

import os
from collections.abc import Mapping

import numpy as np
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.datasets import Dataset
from engine.errors import UserInputError
from engine.export import ExportCancelled, Exported, export
from engine.spec import NetworkSpec
from gui.task_runner import TaskProgress, TaskRunner


class ExportRunner(TaskRunner):
    """One export: the worker thread, the progress dialog, and the wait for the end."""

    def __init__(self, parent: QWidget | None, outdir: str | os.PathLike, spec: NetworkSpec,
                 params: Mapping[str, np.ndarray], data: Dataset, lr: float = 0.0):
        self.outdir = os.fspath(outdir)
        # copies: the session may replace its arrays while the worker reads these
        params = {k: np.array(v) for k, v in params.items()}
        data = Dataset(data.x.copy(), data.y.copy(), data.name)
        writing = f"Writing the files into {self.outdir}…"

        def task(progress: TaskProgress) -> Exported:
            def told(done: int, total: int) -> bool:
                return progress(done, total, writing if done == total else "")
            try:
                return export(self.outdir, spec, params, data, lr=lr, progress=told)
            except OSError as e:
                where = e.filename or self.outdir
                raise UserInputError(f"{where}: cannot write the export "
                                     f"({e.strerror or e})") from None

        super().__init__(parent, "Export gradients",
                         f"Computing per-sample gradients of {len(data)} samples with both "
                         "engines…", task, (ExportCancelled,), "The export")


def export_with_progress(parent: QWidget | None, outdir: str | os.PathLike, spec: NetworkSpec,
                         params: Mapping[str, np.ndarray], data: Dataset,
                         lr: float = 0.0) -> Exported | None:
    """Export both gradient files (and model.json, data.csv) into `outdir` with a cancellable
    progress dialog. The Exported, or None when the user cancelled (nothing written) or the
    export failed (a message box has said why)."""
    runner = ExportRunner(parent, outdir, spec, params, data, lr)
    result = runner.run()
    if runner.error is not None:
        QMessageBox.warning(parent, "Export gradients", runner.error)
    return result
