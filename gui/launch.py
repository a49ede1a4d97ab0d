"""Starting the window: the Qt application, the session from the last run's network (or the
autosave a crash left), and the screenshot mode that builds the window without a screen, steps
through a sample and saves a PNG of it, or of one of its dialogs.

The window is on screen before torch is imported (a second or more): its session starts with
torch's side of every stage pending, torch is imported on a thread of its own once the window
has painted, and torch's column fills in when it is in (gui/session_model.py).

BPX_REPORT_SHOWN=<the launch's time, seconds since the epoch> (`$(date +%s.%N)`) makes the
window print how long after that it first painted and torch was in, then close: the start-up
benchmark (bench/bench_startup.py) reads those two lines."""

import argparse
import contextlib
import gc
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QEventLoop,
    QObject,
    QSettings,
    QSize,
    QTimer,
    Slot,
)
from PySide6.QtWidgets import QApplication, QDialog

from engine.errors import UserInputError
from engine.session import Session
from engine.usercode import UserCode
from gui.files.recovery import Recovery
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.settings import APPLICATION, ORGANIZATION, last_network, open_settings

SCREENSHOT_SIZE = (1600, 1000)
SCREENSHOT_TRAIN_WAIT_MS = 120_000   # the longest a screenshot's training may take
# the compare dialog's screenshot: the scratch engine wrong in the hidden layers only, so that
# some parameters agree and some do not
SCREENSHOT_MISTAKE = "forgotten_activation_derivative"
REPORT_SHOWN = "BPX_REPORT_SHOWN"
TORCH_AT_THE_LATEST_MS = 3000  # torch's import starts then even if the window has not painted
log = logging.getLogger(__name__)


def _application() -> QApplication:
    """The QApplication, made once; headless Linux gets the offscreen platform."""
    app = QApplication.instance()
    if app is None:
        no_screen = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if sys.platform.startswith("linux") and no_screen:
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(sys.argv[:1])
        app.setOrganizationName(ORGANIZATION)
        app.setApplicationName(APPLICATION)
    return app


def build_window(settings: QSettings | None = None, torch_later: bool = False) -> MainWindow:
    """The window on a new session: the network of the last run when `settings` has one. With
    torch_later, torch is not imported: its side of the stages waits for
    `window.model.load_torch()`."""
    spec = last_network(settings) if settings is not None else None
    model = SessionModel(Session(spec, torch_later=torch_later))
    window = MainWindow(model, settings)
    model.setParent(window)
    return window


def run_window(args: argparse.Namespace | None = None) -> int:
    """Open the window and run until it closes; the exit status of the event loop. The
    session is autosaved while it runs; a session a crash left behind is offered back first,
    and a clean close deletes the autosave."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = _application()
    window = build_window(open_settings(), torch_later=True)
    freeze_startup()
    recovery = Recovery(window)
    fit_to_screen(window)
    FirstPaint(window, os.environ.get(REPORT_SHOWN))
    # the training process (which imports torch too) starts once the window's torch is in,
    # not beside it: the first Start then finds it ready
    window.model.torchReady.connect(window.training.panel.controller.warm)
    window.show()
    recovery.offer_restore()
    if args is not None and args.check:
        code = UserCode.parse(args.check)
        window.your_code.check_file(code.path, code.function)
    status = app.exec()
    recovery.finish()
    window.model.wait_for_torch()
    _dispose(window)
    return status


def fit_to_screen(window: MainWindow) -> None:
    """Shrink `window` to the screen's free area if it is larger (a 1366x768 laptop, a size
    stored on a bigger screen), never below its minimum size."""
    screen = window.screen()
    if screen is None:
        return
    free = screen.availableGeometry()
    # the frame the window manager adds, which the window's own size leaves out
    width, height = min(window.width(), free.width()), min(window.height(), free.height() - 40)
    if (width, height) != (window.width(), window.height()):
        window.resize(max(width, window.minimumWidth()), max(height, window.minimumHeight()))
        window.move(free.topLeft())


class FirstPaint(QObject):
    """Starts torch's import once `window` has painted for the first time (or after
    `latest_ms` in any case: a window opened where it is not seen may not paint), and, when
    `launched` (seconds since the epoch) is given, prints how long after it the window painted
    and torch was in, then closes the window."""

    def __init__(self, window: MainWindow, launched: str | None = None,
                 latest_ms: int = TORCH_AT_THE_LATEST_MS):
        super().__init__(window)
        self._window = window
        self._launched = float(launched) if launched else None
        window.installEventFilter(self)
        QTimer.singleShot(latest_ms, self, window.model.load_torch)
        model = window.model
        model.torchReady.connect(self._torch_ready)
        model.torchFailed.connect(self._torch_failed)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and watched is self._window:
            self._window.removeEventFilter(self)
            # once this frame is on screen: the import's thread would slow it down
            QTimer.singleShot(0, self._shown)
        return False

    @Slot()
    def _shown(self) -> None:
        self._report("window shown")
        self._window.model.load_torch()

    @Slot()
    def _torch_ready(self) -> None:
        # what torch's import made joins the objects the collector's full passes skip
        freeze_startup()
        if self._report("torch ready"):
            self._window.close()

    @Slot(str)
    def _torch_failed(self, message: str) -> None:
        self._window.status.say(message)
        if self._report("torch failed"):
            self._window.close()

    def _report(self, what: str) -> bool:
        if self._launched is None:
            return False
        print(f"{what} {time.time() - self._launched:.3f} s after launch", flush=True)
        return True


def freeze_startup() -> None:
    """Keep what starting made (torch, Qt, pyqtgraph: some 200,000 objects) out of the cyclic
    garbage collector's full passes, which otherwise stop every thread for about 100 ms now
    and then while a run goes. Garbage made later is collected as ever."""
    gc.collect()
    gc.freeze()


def _dispose(window: MainWindow) -> None:
    """Destroy the window now, while the QApplication lives: pyqtgraph's views crash the
    interpreter on exit when they outlive it."""
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def screenshot(path: str, steps: int = 0, size: tuple[int, int] = SCREENSHOT_SIZE,
               train: int = 0, dialog: str | None = None, mistake: str | None = None,
               check: str | None = None) -> int:
    """Build the window at `size` with default settings, train `train` SGD steps (through the
    training process, so the live plots show), take `steps` steps through the current sample,
    and save the whole window as a PNG at `path`; with `dialog` (one of DIALOGS), that dialog
    as it opens on a screen of `size` instead; with `mistake`, the scratch engine makes that
    catalogued mistake (as Tools > Inject a mistake); with `check` (FILE.py[:NAME]), the
    user's code in its place (as File > Check my code…). 0 when saved, 2 when not."""
    app = _application()
    window = build_window(None)
    window.resize(*size)
    if train > 0:   # before the window exists: its size limits settle once (see MainWindow)
        window.training.plots_dock.show()
        window.layout().activate()
    window.show()
    app.processEvents()
    if mistake:   # once shown: the status bar's message about it hides what it covers
        try:
            window.mistake_actions.choose(mistake)
        except UserInputError as e:
            print(f"backprop-explorer: {e}", file=sys.stderr)
            _close_unasked(window)
            return 2
    if check and not _check_for_screenshot(window, check):
        _close_unasked(window)
        return 2
    if train > 0:
        window.training.show_plots()    # at the height a run's start gives them
        window.training.panel_dock.raise_()     # the run's figures, as Start leaves them
        app.processEvents()
    if train > 0 and not _train_for_screenshot(window, train):
        print(f"backprop-explorer: the training for the screenshot did not finish: "
              f"{window.training.panel.outcome.text()}", file=sys.stderr)
        _close_unasked(window)
        return 2
    for _ in range(max(0, steps)):
        window.model.session.step()
    app.processEvents()
    window.training.plots.redraw()
    app.processEvents()
    if dialog is None:
        image, what = window.grab(), f"stage {window.model.session.stage.key}"
    else:
        with tempfile.TemporaryDirectory(prefix="bpx-screenshot-") as folder:
            image, what = DIALOGS[dialog](window, QSize(*size), Path(folder)).grab(), \
                f"dialog {dialog}"
    saved = image.save(path, "PNG")
    _close_unasked(window)
    if not saved:
        print(f"backprop-explorer: cannot write the screenshot {path}", file=sys.stderr)
        return 2
    print(f"{path}: {image.width()}x{image.height()}, {what}")
    return 0


def _laid_out(dialog: QDialog, screen: QSize) -> QDialog:
    """`dialog` laid out at the size it takes, at most `screen`'s, ready to grab; never shown
    (a window of its own would appear on a user's screen, and offscreen Qt complains about
    a dialog's size hints). It goes with the window."""
    dialog.ensurePolished()
    dialog.layout().activate()
    dialog.resize(dialog.size().expandedTo(dialog.minimumSizeHint()).boundedTo(screen))
    dialog.layout().activate()
    QApplication.processEvents()
    return dialog


def _network_dialog(window: MainWindow, screen: QSize, _folder: Path) -> QDialog:
    """The Network and data dialog on the session's network, as Ctrl+N opens it."""
    from gui.network_dialog import NetworkDialog

    session = window.model.session
    return _laid_out(NetworkDialog(session.spec, session.seed, window,
                                   n_samples=session.n_samples), screen)


def _compare_dialog(window: MainWindow, screen: QSize, folder: Path) -> QDialog:
    """The comparison of two files exported into `folder` from the session: torch's gradients
    and the scratch engine's with SCREENSHOT_MISTAKE made, so the dialog has a disagreement
    to show and diagnose."""
    from engine.export import export
    from gui.files.compare_dialog import CompareDialog, default_size

    session = window.model.session
    files = export(folder, session.spec, session.params, session.data,
                   mistake=SCREENSHOT_MISTAKE).files
    with contextlib.chdir(folder):  # the dialog names them as a user's: no temporary folder
        dialog = CompareDialog(files[0].name, files[1].name, session_model=window.model,
                               parent=window)
    if not dialog.ok:
        raise RuntimeError(f"the screenshot's comparison failed: {dialog.error}")
    dialog.resize(default_size(screen))     # what it opens at on a screen of that size
    return _laid_out(dialog, screen)


# what --dialog NAME shows
DIALOGS: dict[str, Callable[[MainWindow, QSize, Path], QDialog]] = {
    "compare": _compare_dialog, "network": _network_dialog}


def _close_unasked(window: MainWindow) -> None:
    """Close and destroy a screenshot's window: a picture has nothing to keep, no question."""
    window.unsaved.mark_saved()
    window.close()
    _dispose(window)


def _check_for_screenshot(window: MainWindow, check: str) -> bool:
    """Check the user's code `check` (FILE.py[:NAME]) and wait for the result; False, with
    the reason on stderr, when it cannot be run."""
    code = UserCode.parse(check)
    loop = QEventLoop()
    window.your_code.checked.connect(loop.quit)
    window.your_code.check_file(code.path, code.function)
    QTimer.singleShot(SCREENSHOT_TRAIN_WAIT_MS, loop.quit)
    loop.exec()
    if window.model.session.yours is None:
        print(f"backprop-explorer: {code.label} could not be checked: "
              f"{window.model.session.yours_error or 'it took too long'}", file=sys.stderr)
        return False
    return True


def _train_for_screenshot(window: MainWindow, steps: int) -> bool:
    """Run `steps` steps of SGD in `window`, waiting in an event loop; whether they ran."""
    panel = window.training.panel
    samples = len(window.model.session.data)
    panel.epochs.setValue(max(1, -(-steps // samples)))
    loop = QEventLoop()
    for signal in (panel.controller.stopped, panel.controller.failed, panel.controller.refused,
                   panel.controller.lost):
        signal.connect(loop.quit)
    QTimer.singleShot(SCREENSHOT_TRAIN_WAIT_MS, loop.quit)
    panel.start(steps)
    loop.exec()
    return panel.training is not None and panel.training.step >= min(steps,
                                                                     panel.training.total)
