"""Export gradients with a progress dialog that can be cancelled.

engine.export.export runs in a worker thread; the GUI thread only updates the progress dialog
from the worker's signals. Cancel sets an Event that the export's progress callback reads: the
engine then raises ExportCancelled before writing anything."""

import logging
import os
import threading
from collections.abc import Mapping

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from engine.datasets import Dataset
from engine.errors import UserInputError
from engine.export import ExportCancelled, Exported, export
from engine.spec import NetworkSpec

log = logging.getLogger(__name__)
SHOW_AFTER_MS = 300   # a quick export never flashes a dialog


class ExportWorker(QObject):
    """Runs one export in the thread it is moved to. Emits progress(done, total) as samples are
    done, then finished(Exported) or finished(None) when cancelled, or failed(message)."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, outdir: str | os.PathLike, spec: NetworkSpec,
                 params: Mapping[str, np.ndarray], data: Dataset, lr: float,
                 cancel: threading.Event):
        super().__init__()
        # copies: the session may replace its arrays while the worker reads these
        self._args = (os.fspath(outdir), spec, {k: np.array(v) for k, v in params.items()},
                      Dataset(data.x.copy(), data.y.copy(), data.name), lr)
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        outdir, spec, params, data, lr = self._args
        try:
            result = export(outdir, spec, params, data, lr=lr, progress=self._progress)
        except ExportCancelled:
            self.finished.emit(None)
        except UserInputError as e:
            self.failed.emit(str(e))
        except OSError as e:
            where = e.filename or outdir
            self.failed.emit(f"{where}: cannot write the export ({e.strerror or e})")
        except Exception as e:
            log.exception("export to %s failed", outdir)
            self.failed.emit(f"The export failed because of a bug ({type(e).__name__}: {e}); "
                             "the details are in the log.")
        else:
            self.finished.emit(result)

    def _progress(self, done: int, total: int) -> bool:
        self.progress.emit(done, total)
        return self._cancel.is_set()


class ExportRunner(QObject):
    """One export: the worker thread, the progress dialog, and the wait for the end."""

    def __init__(self, parent: QWidget | None, outdir: str | os.PathLike, spec: NetworkSpec,
                 params: Mapping[str, np.ndarray], data: Dataset, lr: float = 0.0):
        super().__init__()
        self.parent_widget = parent
        self.outdir = os.fspath(outdir)
        self.cancel = threading.Event()
        self.result: Exported | None = None
        self.error: str | None = None
        self.thread = QThread()
        self.worker = ExportWorker(outdir, spec, params, data, lr, self.cancel)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.thread.finished.connect(self.worker.deleteLater)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self._loop = QEventLoop()

        self.dialog = QProgressDialog(
            f"Computing per-sample gradients of {len(data)} samples with both engines…",
            "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle("Export gradients")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(SHOW_AFTER_MS)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._on_cancel)

    def run(self) -> Exported | None:
        """Start, wait for the worker (the GUI keeps running) and clean up. The Exported, or
        None when cancelled or failed (`error` then holds the message)."""
        self.thread.start()
        self._loop.exec()
        self.thread.quit()
        self.thread.wait()
        self.dialog.close()
        self.dialog.deleteLater()
        return self.result

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self.cancel.is_set():
            self.dialog.setMaximum(total)
            self.dialog.setValue(done)
            if done == total:
                self.dialog.setLabelText(f"Writing the files into {self.outdir}…")

    @Slot()
    def _on_cancel(self) -> None:
        self.cancel.set()
        self.dialog.setLabelText("Cancelling…")

    @Slot(object)
    def _on_finished(self, result: Exported | None) -> None:
        self.result = result
        self._loop.quit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error = message
        self._loop.quit()

    @property
    def cancelled(self) -> bool:
        return self.result is None and self.error is None


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
