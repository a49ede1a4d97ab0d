"""The window's side of issue 16: a network or an export too big for memory is refused with its
size before any work, and file names holding newlines or terminal escapes are shown escaped in
message boxes and the status bar."""

import pytest
from PySide6.QtWidgets import QMainWindow

from engine.export import FILES
from engine.files.datasets import default_set
from engine.net.spec import NetworkSpec, preset
from engine.session import Session
from gui.files.file_actions import FileActions
from gui.network_dialog import NetworkDialog
from gui.session_model import SessionModel

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]
HOSTILE = "a\nb\x1b[2J\x1b]0;owned\x07c"


@pytest.fixture
def window(qtbot):
    w = QMainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _actions(window, session: Session, folder: object, monkeypatch) -> tuple[FileActions, list]:
    actions = FileActions(window, SessionModel(session))
    asked: list[str] = []
    monkeypatch.setattr(actions, "_ask_folder", lambda title: asked.append(title) or str(folder))
    monkeypatch.setattr(actions, "_confirm", lambda title, text: True)   # "Create it?": yes
    return actions, asked


def test_an_export_too_big_for_memory_is_one_message_before_any_question(
        window, tmp_path, monkeypatch, messages):
    # 795,010 parameters x 1,000 samples: tens of GB of gradients and their text
    spec = NetworkSpec((784, 1000, 10), ("relu", "identity"), loss="mse")
    actions, asked = _actions(window, Session(spec, data=default_set(spec, 1000)), tmp_path / "out",
                              monkeypatch)
    assert actions.export_gradients() is None
    assert len(messages) == 1 and "this export would hold" in messages[0][1]
    assert "the limit is 2 GB" in messages[0][1]
    assert asked == [] and not (tmp_path / "out").exists()


def test_a_folder_name_with_escapes_shows_escaped(window, tmp_path, monkeypatch, messages):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    actions, _ = _actions(window, Session(preset("2-2-1-tanh-bce")), blocker / HOSTILE,
                          monkeypatch)
    assert actions.export_gradients() is None
    assert len(messages) == 1
    assert all(c.isprintable() for c in messages[0][1]) and "a\\nb\\x1b[2J" in messages[0][1]
    actions, _ = _actions(window, Session(preset("2-2-1-tanh-bce")), tmp_path / HOSTILE,
                          monkeypatch)
    assert actions.export_gradients() is not None
    shown = window.statusBar().currentMessage()
    assert FILES[0] in shown and all(c.isprintable() for c in shown)


def test_the_network_dialog_refuses_a_network_too_big_for_memory(qtbot):
    dialog = NetworkDialog(preset("2-10-10-1-sigmoid-squared"), seed=0)
    qtbot.addWidget(dialog)
    dialog.sizes_edit.setText("4096, 4096, 4096, 4096, 1")   # 50 million parameters
    assert dialog.error() is not None and "the limit is 2 GB" in dialog.error()
    assert not dialog.ok_button.isEnabled()
