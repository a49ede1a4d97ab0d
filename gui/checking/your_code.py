"""Check my code in the window: the user's own backpropagation takes the scratch engine's place
beside torch in the stage list, the card, the network drawing and the sample panel.

The check (engine/usercode.py) runs the user's file in a child process; the parent's part of
it (reading and comparing what came back) runs on a thread of its own, so the window paints and
answers throughout, an endless loop included. One run at a time: a save of the file, new
parameters or data while one runs make it stale, and a new run follows it. The file is
watched: a save checks it again and refreshes the view, keeping the sample and the stage.
Whatever goes wrong in the user's code is shown in the Your code panel, never in a dialog."""

import contextlib
import json
import logging
import os
import signal
import threading
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDockWidget, QMainWindow

from engine.errors import UserInputError
from engine.usercode import (
    TIMEOUT,
    CheckCancelled,
    UserCode,
    UserCodeError,
    check_code,
    file_stamp,
)
from engine.yours import your_values
from gui.checking.code_dialog import CodeDialog
from gui.checking.code_panel import CodePanel
from gui.files.compare_dialog import CompareDialog
from gui.icons import icon
from gui.session_model import SessionModel
from gui.settings import open_settings

log = logging.getLogger(__name__)
LAST_KEY = "check/last"  # the file, function and time limit checked last, for the dialog
SAVE_DELAY_MS = 100     # an editor's save is often two writes: wait for the second
CHANGE_DELAY_MS = 300   # new parameters arrive at the plots' rate while training runs


class YourCode(QObject):
    """The actions (`check_action`, `stop_action`), the Your code dock (`dock`, its `panel`),
    the watch on the file and the runs. `checked` fires after each run's result (values or an
    error) is shown; `message` says what is happening."""

    checked = Signal()
    message = Signal(str)                   # what is happening, for the status bar
    _done = Signal(int, object, str, str)   # from the run's thread: generation, values, error,
    #                                         what the code printed

    def __init__(self, window: QMainWindow, model: SessionModel):
        super().__init__(window)
        self.window, self.model = window, model
        self.code: UserCode | None = None
        self.timeout = TIMEOUT
        self.compare_dialog: CompareDialog | None = None
        self._stamp: tuple | None = None
        self._generation = 0     # bumped by every change that makes a run's result stale
        self._running = False
        self._child: int | None = None   # the process running the user's code, while one does
        self.check_action = QAction(icon("code"), "Check &my code…", window)
        self.check_action.setShortcut(QKeySequence("Ctrl+K"))
        tip = ("Run your own gradients(params, x, y) from a Python file on every sample, in "
               "the scratch engine's place beside torch, and again at every save")
        self.check_action.setToolTip(f"{tip} (Ctrl+K)")
        self.check_action.setStatusTip(tip)
        self.check_action.triggered.connect(self.ask)
        self.stop_action = QAction("Stop checking my code", window)
        self.stop_action.setToolTip("Give the scratch engine its place back")
        self.stop_action.triggered.connect(self.stop)
        self.stop_action.setEnabled(False)

        self.panel = CodePanel()
        self.dock = QDockWidget("Your code", window)
        self.dock.setObjectName("your_code_dock")
        self.dock.setWidget(self.panel)
        self.dock.setToolTip("What the last check of your code found")
        self.panel.compare_button.clicked.connect(self.compare)
        self.panel.again_button.clicked.connect(self.run_again)
        self.panel.stop_button.clicked.connect(self.stop)

        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._file_touched)
        self.watcher.directoryChanged.connect(self._file_touched)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(self._start)
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        model.networkChanged.connect(self._stale)
        model.dataChanged.connect(self._stale)

    @property
    def running(self) -> bool:
        return self._running

    # what the user does
    def ask(self) -> bool:
        """The Check my code dialog, filled in as last time; True when the user chose a file
        to check."""
        dialog = CodeDialog(self.window, *self.last())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        self.check_file(dialog.path, dialog.function, dialog.timeout)
        return True

    def check_file(self, path: str | Path, function: str = "gradients",
                   timeout: float = TIMEOUT) -> None:
        """Check `function` of `path` from now on: run it now, and at every save."""
        self.code, self.timeout = UserCode(Path(path), function), timeout
        resolved = self.code.path.resolve()
        open_settings().setValue(LAST_KEY, json.dumps([str(resolved), function, timeout]))
        self._watch(resolved)
        self._stamp = file_stamp(resolved)
        self.stop_action.setEnabled(True)
        self.model.session.check_yours(self.code.label)
        self.panel.show_watching(str(resolved), timeout)
        self.dock.show()
        self.dock.raise_()
        self._schedule(0)

    @staticmethod
    def last() -> tuple[str, str, float]:
        """The file, function and time limit checked last (in this window or an earlier
        one), or none yet."""
        with contextlib.suppress(TypeError, ValueError):
            path, function, timeout = json.loads(str(open_settings().value(LAST_KEY, "")))
            return str(path), str(function), float(timeout)
        return "", "gradients", TIMEOUT

    def run_again(self) -> None:
        if self.code is not None:
            self._schedule(0)

    def stop(self) -> None:
        """The scratch engine takes its place back; the file is no longer watched."""
        if self.code is None:
            return
        self.code, self._stamp = None, None
        self._generation += 1          # a run still going is dropped when it ends
        self._later.stop()
        self._end_child()
        self._unwatch()
        self.stop_action.setEnabled(False)
        self.panel.show_idle()
        self.model.session.stop_yours()
        self._say("Checking your code stopped: the scratch engine is back beside torch")

    def compare(self) -> CompareDialog | None:
        """The last check's comparison in the Compare dialog: your gradients beside torch's."""
        yours = self.model.session.yours
        if yours is None:
            return None
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        self.compare_dialog = CompareDialog(comparison=yours.checked.comparison,
                                            session_model=self.model, parent=self.window)
        self.compare_dialog.sampleActivated.connect(self.model.session.go_to_sample)
        self.compare_dialog.show()
        return self.compare_dialog

    def shutdown(self) -> None:
        """Before the window goes: the user's code is ended, and no run follows."""
        self.code = None
        self._generation += 1
        self._later.stop()
        self._unwatch()
        self._end_child()

    # the watch
    def _watch(self, path: Path) -> None:
        self._unwatch()
        # the folder too: an editor that saves by writing a new file and renaming it over
        # the old one ends the watch on the file itself
        self.watcher.addPaths([str(path.parent)] + ([str(path)] if path.exists() else []))

    def _unwatch(self) -> None:
        watched = self.watcher.files() + self.watcher.directories()
        if watched:
            self.watcher.removePaths(watched)

    @Slot(str)
    def _file_touched(self, _path: str) -> None:
        if self.code is None:
            return
        path = self.code.path.resolve()
        if str(path) not in self.watcher.files() and path.exists():
            self.watcher.addPath(str(path))
        stamp = file_stamp(path)
        if stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            self._schedule(SAVE_DELAY_MS)

    @Slot()
    def _stale(self) -> None:
        if self.code is not None:
            self._schedule(CHANGE_DELAY_MS)

    # the runs
    def _schedule(self, delay_ms: int) -> None:
        self._generation += 1
        self._later.start(delay_ms)
        self._end_child()    # a run going on is stale: no need to wait for its end

    def _end_child(self) -> None:
        """End the process running the user's code, if one runs (the run then ends stale)."""
        pid = self._child
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def _started(self, generation: int, pid: int) -> None:
        """On the run's thread: the child running the user's code started (again, after a
        call with the whole batch). A run gone stale goes no further."""
        self._child = pid
        if generation != self._generation:
            raise CheckCancelled

    @Slot()
    def _start(self) -> None:
        if self.code is None or self._running:
            return           # the run going on ends stale, and its end starts the next
        session = self.model.session
        generation, code, timeout = self._generation, self.code, self.timeout
        spec, params, data = session.spec, session.params, session.data
        self._running = True
        self.panel.show_running(code.label, len(data))
        self._say(f"Running {code.label} on {len(data)} samples…")

        def run() -> None:
            values, error, output = None, "", ""
            try:
                values = your_values(check_code(
                    code, spec, params, data, timeout,
                    started=lambda pid: self._started(generation, pid)), spec.np_dtype)
            except CheckCancelled:
                pass       # stale: dropped when it arrives
            except UserCodeError as e:
                error, output = str(e), e.output
            except UserInputError as e:
                error = str(e)
            except Exception as e:  # a bug of ours: a message, and the window lives on
                log.exception("checking %s failed", code.label)
                error = (f"the check failed because of a bug in the explorer "
                         f"({type(e).__name__}: {e}); the details are in the log")
            self._child = None
            self._done.emit(generation, values, error, output)

        # a daemon: a window closed while the user's code loops does not wait for it
        threading.Thread(target=run, name="check my code", daemon=True).start()

    @Slot(int, object, str, str)
    def _on_done(self, generation: int, values, error: str, output: str) -> None:
        self._running = False
        if generation != self._generation:
            if self.code is not None and not self._later.isActive():
                self._start()      # something changed while it ran: run again
            return
        session, label = self.model.session, self.code.label
        if values is not None:
            session.set_yours(values)
            self.panel.show_checked(values.checked)
            self._say(self.panel.verdict.text())
        else:
            session.yours_failed(error)
            self.panel.show_failed(label, error, output)
            self._say(f"{label} could not be run: the Your code panel says why")
            self.dock.show()
            self.dock.raise_()
        self.checked.emit()

    def _say(self, text: str) -> None:
        self.message.emit(text)
