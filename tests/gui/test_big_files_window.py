"""A file of 100 MB picked in the window: comparing a printout, opening it as data or as a model
shows a message box naming the file at once; the window does not freeze and the session is
unchanged. Our own .dat files are read above the text limit on a worker thread, with a progress
dialog that can be cancelled."""

import os
import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QPushButton

import engine.files.readers as readers
from engine.export import SCRATCH_FILE, TORCH_FILE, export
from gui.files import compare_dialog
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from tests.helpers import write_big_csv, write_big_gradient_file, write_big_printout

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]


def test_100_mb_files_get_a_message_box_not_a_freeze(qtbot, tmp_path, monkeypatch):
    window = MainWindow(SessionModel())
    qtbot.addWidget(window)
    window.show()
    session = window.model.session
    before = (session.spec, session.data, session.params["w1"].copy())
    shown = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text, *a: shown.append((title, text)))
    huge_dat, huge_csv = tmp_path / "huge.dat", tmp_path / "huge.csv"
    huge_printout = tmp_path / "huge.txt"
    write_big_printout(huge_printout, 100)
    write_big_gradient_file(huge_dat, 100)
    write_big_gradient_file(tmp_path / "small.dat", 1)
    write_big_csv(huge_csv, session.spec, 100)
    actions = window.file_actions
    for act, title, name in (
            (lambda: actions.compare_files(str(huge_printout), str(tmp_path / "small.dat")),
             "Compare gradient files", huge_printout),
            (lambda: actions.open_data(str(huge_csv)), "Open data", huge_csv),
            (lambda: actions.open_model(str(huge_dat)), "Open model", huge_dat)):
        assert not act()
        assert shown[-1][0] == title
        assert shown[-1][1].startswith(f"{name}: ") and " MB" in shown[-1][1]
    assert len(shown) == 3 and not actions.compare_dialogs
    assert session.spec == before[0] and session.data is before[1]
    assert (session.params["w1"] == before[2]).all()


@pytest.fixture
def streamed_exports(tmp_path, monkeypatch):
    """Both engines' files of the default session, read line by line as files over the text
    limit are, with a progress report every few kilobytes."""
    session = SessionModel().session
    export(tmp_path, session.spec, session.params, session.data)
    monkeypatch.setattr(readers, "MAX_TEXT_BYTES", 0)
    monkeypatch.setattr(readers, "REPORT_BYTES", 4096)
    return str(tmp_path / TORCH_FILE), str(tmp_path / SCRATCH_FILE)


def test_big_dat_files_are_compared_behind_a_progress_dialog(qtbot, streamed_exports,
                                                              monkeypatch, messages):
    window = MainWindow(SessionModel())
    qtbot.addWidget(window)
    window.show()
    reports = []
    real_compare = compare_dialog.compare_files

    def recorded(*args, progress, **kwargs):
        def told(path, done, total):
            reports.append((path, done, total))
            return progress(path, done, total)
        return real_compare(*args, progress=told, **kwargs)

    monkeypatch.setattr(compare_dialog, "compare_files", recorded)
    dialog = window.file_actions.compare_files(*streamed_exports)
    assert dialog is not None and dialog.comparison.report.agree and messages == []
    for path in streamed_exports:
        told = [(done, total) for p, done, total in reports if p == path]
        assert len(told) > 10 and told == sorted(told)
        assert told[-1] == (os.path.getsize(path),) * 2
    assert not any(d.isVisible() for d in window.findChildren(QProgressDialog))


def test_cancelling_the_reading_of_big_files_compares_nothing(qtbot, streamed_exports,
                                                              monkeypatch, messages):
    # the read waits at its first progress report until the user has pressed Cancel, so the
    # cancel lands while it runs; the press itself shows the window's events go on meanwhile
    window = MainWindow(SessionModel())
    qtbot.addWidget(window)
    window.show()
    pressed = threading.Event()
    real_compare = compare_dialog.compare_files

    def gated(*args, progress, **kwargs):
        def told(path, done, total):
            assert pressed.wait(10)
            return progress(path, done, total)
        return real_compare(*args, progress=told, **kwargs)

    def press_cancel():
        window.findChild(QProgressDialog).findChild(QPushButton).click()
        pressed.set()

    monkeypatch.setattr(compare_dialog, "compare_files", gated)
    QTimer.singleShot(0, press_cancel)
    actions = window.file_actions
    assert actions.compare_files(*streamed_exports) is None
    assert pressed.is_set() and messages == [] and not actions.compare_dialogs
    assert window.statusBar().currentMessage() == "Compare cancelled"
    assert actions.recent_files() == []
