"""Long work (an export, reading large gradient files) on a thread of its own, behind a progress
dialog that can be cancelled.

The task is a plain function of one argument, `progress(done, total, label="")`, which it calls
as it goes and which returns True once the user has pressed Cancel; the task then raises its
cancel exception. The GUI thread only updates the dialog from the worker's signals, and waits
for the end in an event loop of its own, so the window keeps painting meanwhile."""

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QProgressDialog, QWidget

from engine.errors import UserInputError

log = logging.getLogger(__name__)
SHOW_AFTER_MS = 300   # quick work never flashes a dialog

TaskProgress = Callable[..., bool]        # (done, total, label="") -> cancel?
Task = Callable[[TaskProgress], object]   # never returns None


class TaskWorker(QObject):
    """Runs one task in the thread it is moved to. Emits progress(done, total, label) as the
    task reports, then finished(result) or finished(None) when cancelled, or failed(message):
    a UserInputError's message, or one saying a bug of ours stopped `what`."""

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, task: Task, cancel: threading.Event,
                 cancelled: tuple[type[Exception], ...], what: str):
        super().__init__()
        self._task, self._cancel, self._cancelled, self._what = task, cancel, cancelled, what

    @Slot()
    def run(self) -> None:
        try:
            result = self._task(self._progress)
        except self._cancelled:
            self.finished.emit(None)
        except UserInputError as e:
            self.failed.emit(str(e))
        except Exception as e:
            log.exception("%s failed", self._what)
            self.failed.emit(f"{self._what} failed because of a bug ({type(e).__name__}: {e}); "
                             "the details are in the log.")
        else:
            self.finished.emit(result)

    def _progress(self, done: int, total: int, label: str = "") -> bool:
        self.progress.emit(done, total, label)
        return self._cancel.is_set()


class TaskRunner(QObject):
    """One task: the worker thread, the progress dialog (titled `title`, saying `label` until
    the task says otherwise), and the wait for the end. The task raises one of `cancelled`
    when told to stop; `what` names it in the message of a bug ("The export")."""

    def __init__(self, parent: QWidget | None, title: str, label: str, task: Task,
                 cancelled: tuple[type[Exception], ...], what: str):
        super().__init__()
        self.cancel = threading.Event()
        self.result: object | None = None
        self.error: str | None = None
        self.thread = QThread()
        self.worker = TaskWorker(task, self.cancel, cancelled, what)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.thread.finished.connect(self.worker.deleteLater)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self._loop = QEventLoop()

        self.dialog = QProgressDialog(label, "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle(title)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(SHOW_AFTER_MS)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._on_cancel)

    def run(self) -> object | None:
        """Start, wait for the worker (the GUI keeps running) and clean up. The task's result,
        or None when cancelled or failed (`error` then holds the message)."""
        self.thread.start()
        self._loop.exec()
        self.thread.quit()
        self.thread.wait()
        self.dialog.close()
        self.dialog.deleteLater()
        return self.result

    @property
    def cancelled(self) -> bool:
        return self.result is None and self.error is None

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, label: str) -> None:
        if not self.cancel.is_set():
            self.dialog.setMaximum(total)
            self.dialog.setValue(done)
            if label:
                self.dialog.setLabelText(label)

    @Slot()
    def _on_cancel(self) -> None:
        self.cancel.set()
        self.dialog.setLabelText("Cancelling…")

    @Slot(object)
    def _on_finished(self, result: object | None) -> None:
        self.result = result
        self._loop.quit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error = message
        self._loop.quit()
