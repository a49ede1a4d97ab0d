"""Starting the window: the Qt application, the session from the last run's network (or the
autosave a crash left), and the screenshot mode that builds the window without a screen, steps
through a sample and saves a PNG of it."""

import argparse
import gc
import logging
import os
import sys

from PySide6.QtCore import QCoreApplication, QEvent, QSettings
from PySide6.QtWidgets import QApplication

from engine.session import Session
from gui.files.recovery import Recovery
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from gui.settings import APPLICATION, ORGANIZATION, last_network, open_settings

SCREENSHOT_SIZE = (1280, 800)
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


def build_window(settings: QSettings | None = None) -> MainWindow:
    """The window on a new session: the network of the last run when `settings` has one."""
    spec = last_network(settings) if settings is not None else None
    model = SessionModel(Session(spec) if spec is not None else Session())
    window = MainWindow(model, settings)
    model.setParent(window)
    return window


def run_window(args: argparse.Namespace | None = None) -> int:
    """Open the window and run until it closes; the exit status of the event loop. The
    session is autosaved while it runs; a session a crash left behind is offered back first,
    and a clean close deletes the autosave."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = _application()
    window = build_window(open_settings())
    freeze_startup()
    recovery = Recovery(window)
    window.show()
    recovery.offer_restore()
    status = app.exec()
    recovery.finish()
    _dispose(window)
    return status


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


def screenshot(path: str, steps: int = 0) -> int:
    """Build the window at 1280x800 with default settings, take `steps` steps through the
    first sample and save the whole window as a PNG at `path`. 0 when saved, 2 when not."""
    app = _application()
    window = build_window(None)
    window.resize(*SCREENSHOT_SIZE)
    for _ in range(max(0, steps)):
        window.model.session.step()
    window.show()
    app.processEvents()
    image = window.grab()
    stage = window.model.session.stage.key
    saved = image.save(path, "PNG")
    window.close()
    _dispose(window)
    if not saved:
        print(f"backprop-explorer: cannot write the screenshot {path}", file=sys.stderr)
        return 2
    print(f"{path}: {image.width()}x{image.height()}, stage {stage}")
    return 0
