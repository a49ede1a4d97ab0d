"""Closing the whole window (autosave included) in the middle of a training run: the run's
child process ends, the autosave is deleted, and Qt says nothing about threads, timers or socket
notifiers. Every Qt message is captured by a handler of our own while the window closes and is
destroyed."""

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QtMsgType, qInstallMessageHandler

from engine.autosave import SESSION_FILE
from gui.files.recovery import Recovery
from gui.launch import _dispose, build_window
from tests.helpers import children_of, gone

THREADS_OR_TIMERS = re.compile(r"thread|timer|notifier|socket", re.IGNORECASE)


@pytest.fixture
def qt_messages():
    """Every Qt message from here to the end of the test, as (type, text)."""
    messages: list[tuple[QtMsgType, str]] = []

    def handler(kind, _context, text):
        messages.append((kind, text))

    previous = qInstallMessageHandler(handler)
    yield messages
    qInstallMessageHandler(previous)


def test_closing_mid_run_says_nothing_about_threads_or_timers(qtbot, tmp_path, qt_messages):
    window = build_window(None)
    recovery = Recovery(window, tmp_path / "autosave")
    window.show()
    qtbot.waitExposed(window)
    panel = window.training.panel
    panel.epochs.setValue(1_000_000)
    with qtbot.waitSignal(panel.controller.snapshot, timeout=10_000):
        window.training.train_action.trigger()
    recovery.save_now()
    folder = Path(recovery.folder.path)
    assert (folder / SESSION_FILE).is_file()
    child = panel.controller.client.pid
    processes = [child, *children_of(child)]

    assert window.close()
    assert all(gone(pid) for pid in processes)
    assert 0 < panel.training.step < panel.training.total   # it was stopped, not finished
    recovery.finish()
    assert not folder.exists() and not recovery.timer.isActive()
    _dispose(window)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()

    noisy = [text for kind, text in qt_messages
             if kind != QtMsgType.QtDebugMsg and THREADS_OR_TIMERS.search(text)]
    assert noisy == []


def test_the_handler_hears_qt_warnings(qt_messages):
    """The capture above is live: a timer started without a running thread is reported."""
    from PySide6.QtCore import QObject, QThread

    idle = QThread()
    stray = QObject()
    stray.moveToThread(idle)          # a thread that never started: Qt refuses the timer
    stray.startTimer(10)
    assert any(THREADS_OR_TIMERS.search(text) for _, text in qt_messages), qt_messages
