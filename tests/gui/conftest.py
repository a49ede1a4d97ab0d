"""What every window test gets: its own settings, no question that blocks it (unsaved changes
are discarded unless the test answers otherwise), autosaves in its temporary folder and never
the user's, no worker thread outliving it, and the windows it made collected before the next
test starts."""

import contextlib
import gc
import threading

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, QThread
from PySide6.QtWidgets import QMessageBox

from gui.files import recovery, unsaved


@pytest.fixture(autouse=True)
def collected_between_tests():
    """After the test (and qtbot's closing of its widgets): pending deletions done and the
    collector run now, between tests. Left to the collector's own moment, the windows of one
    test were freed in the middle of building the next one's plots, and a pyqtgraph ViewBox
    crashed in itemChange (a segfault seen once in a clean clone's suite)."""
    yield
    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture(autouse=True)
def discard_unsaved(monkeypatch):
    """The question about unsaved changes answers Discard (a closing window would otherwise
    wait for a click); tests of the question replace it again."""
    monkeypatch.setattr(unsaved, "ask", lambda *args: unsaved.DISCARD)


@pytest.fixture(autouse=True)
def autosave_in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv(recovery.ENV, str(tmp_path / "autosave"))


@pytest.fixture(autouse=True)
def no_leaked_threads(qtbot, monkeypatch):
    """After the test (and after pytest-qt closed its widgets), every QThread it started has
    finished and the Python threads are back to what they were."""
    baseline = threading.active_count()
    started: list[QThread] = []
    original = QThread.start

    def start(thread: QThread, *args) -> None:
        started.append(thread)
        original(thread, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield

    def running() -> list[str]:
        # a QThread whose C++ side is gone was finished: deleting a running one aborts
        return [t.objectName() or repr(t) for t in started
                if shiboken6.isValid(t) and t.isRunning()]

    with contextlib.suppress(qtbot.TimeoutError):   # the assertions below say what is left
        qtbot.waitUntil(lambda: not running() and threading.active_count() <= baseline,
                        timeout=3000)
    assert not running(), f"QThreads still running after the test: {running()}"
    assert threading.active_count() <= baseline, (
        f"threads left running: {[t.name for t in threading.enumerate()]}")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    """The window keeps recent files, folders and its layout in the user's settings: point
    them at the test's own folder."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "settings"))


@pytest.fixture
def messages(monkeypatch):
    """Message boxes recorded instead of shown."""
    shown = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text, *a: shown.append((title, text)))
    return shown
