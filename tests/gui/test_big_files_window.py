"""A file of 100 MB picked in the window: comparing it, opening it as data or as a model shows a
message box naming the file at once; the window does not freeze and the session is unchanged."""

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.main_window import MainWindow
from gui.session_model import SessionModel
from tests.helpers import write_big_csv, write_big_gradient_file

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
    write_big_gradient_file(huge_dat, 100)
    write_big_gradient_file(tmp_path / "small.dat", 1)
    write_big_csv(huge_csv, session.spec, 100)
    actions = window.file_actions
    for act, title, name in (
            (lambda: actions.compare_files(str(huge_dat), str(tmp_path / "small.dat")),
             "Compare gradient files", huge_dat),
            (lambda: actions.open_data(str(huge_csv)), "Open data", huge_csv),
            (lambda: actions.open_model(str(huge_dat)), "Open model", huge_dat)):
        start = time.perf_counter()
        assert not act()
        assert time.perf_counter() - start < 2.0
        assert shown[-1][0] == title
        assert shown[-1][1].startswith(f"{name}: ") and " MB" in shown[-1][1]
    assert len(shown) == 3 and not actions.compare_dialogs
    assert session.spec == before[0] and session.data is before[1]
    assert (session.params["w1"] == before[2]).all()
