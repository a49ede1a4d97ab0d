"""The File menu through its actions, with the file pickers and message boxes replaced."""

import os
import pickle
import threading

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QProgressDialog, QPushButton

import gui.files.export_dialog as export_dialog
from engine.export import DATA_FILE, MODEL_FILE, SCRATCH_FILE, TORCH_FILE, export
from engine.files.datasets import regression_set, to_csv_text
from engine.files.gradfile import write_gradients
from engine.files.readers import read_gradients
from engine.net.params import init_params
from engine.net.spec import NetworkSpec, preset
from gui.files.file_actions import MAX_RECENT, FileActions
from gui.files.file_dialogs import LAST_FOLDER
from gui.session_model import SessionModel
from gui.settings import open_settings

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]
EXPORTED = (TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE)


class Picker:
    """Answers the file pickers in turn, and remembers what they were asked."""

    def __init__(self, actions: FileActions, monkeypatch):
        self.answers: list[str | None] = []
        self.asked: list[str] = []
        for method in ("_ask_open_file", "_ask_save_file", "_ask_folder"):
            monkeypatch.setattr(actions, method, self._answer)
        # "... does not exist. Create it?" of a folder picked for an export: yes
        monkeypatch.setattr(actions, "_confirm", lambda title, text: True)

    def _answer(self, title, *args):
        self.asked.append(title)
        return self.answers.pop(0)

    def will_answer(self, *paths) -> "Picker":
        self.answers += [str(p) for p in paths]
        return self


@pytest.fixture
def window(qtbot):
    w = QMainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def model():
    return SessionModel()


@pytest.fixture
def actions(window, model):
    a = FileActions(window, model)
    window.menuBar().addMenu(a.menu())
    return a


@pytest.fixture
def picker(actions, monkeypatch):
    return Picker(actions, monkeypatch)


@pytest.fixture
def runners(monkeypatch):
    """Every ExportRunner made, to check its thread afterwards."""
    made = []

    class Recorded(export_dialog.ExportRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(export_dialog, "ExportRunner", Recorded)
    return made


def test_the_menu_holds_every_action_with_its_shortcut(actions):
    texts = [a.text() for a in actions.menu().actions() if not a.isSeparator()]
    assert texts == ["&Open model…", "&Save model…", "Open &data…", "&Export gradients…",
                     "&Compare gradient files…", "Open &recent", "&Quit"]
    shortcuts = {a.text(): a.shortcut() for a in actions.menu().actions()}
    assert shortcuts["&Open model…"] == QKeySequence("Ctrl+O")
    assert shortcuts["&Save model…"] == QKeySequence("Ctrl+S")
    assert shortcuts["&Export gradients…"] == QKeySequence("Ctrl+E")
    assert shortcuts["&Quit"] == QKeySequence("Ctrl+Q")
    assert all(a.toolTip() for a in actions.menu().actions() if not a.isSeparator())


def test_save_then_open_model_round_trip(tmp_path, model, actions, picker):
    spec = NetworkSpec((3, 5, 4, 1), ("relu", "tanh", "identity"), "mse", "float64", "in_out")
    model.session.set_network(spec, init_params(spec, 11))
    saved = {k: v.copy() for k, v in model.session.params.items()}
    picker.will_answer(tmp_path / "net.json")
    actions.save_model_action.trigger()
    assert (tmp_path / "net.json").is_file()

    model.session.set_network(preset("2-2-1-tanh-bce"))
    picker.will_answer(tmp_path / "net.json")
    actions.open_model_action.trigger()
    assert model.session.spec == spec
    for name, value in saved.items():
        np.testing.assert_array_equal(model.session.params[name], value)
    assert picker.asked == ["Save model", "Open model"]
    assert "Opened net.json" in actions.window.statusBar().currentMessage()
    assert [e.kind for e in actions.recent_files()] == ["model"]


def test_open_data(tmp_path, model, actions, picker):
    data = regression_set(model.session.spec, 17, seed=5)
    (tmp_path / "d.csv").write_text(to_csv_text(data))
    model.session.go_to_sample(9)
    picker.will_answer(tmp_path / "d.csv")
    actions.open_data_action.trigger()
    assert model.session.n_samples == 17 and model.session.sample_index == 0
    np.testing.assert_array_equal(model.session.data.x, data.x)


@pytest.mark.parametrize(("content", "problem"), [
    (bytes(range(256)) * 4, "not a text file"),
    (pickle.dumps({"sizes": [2, 1]}), "not"),
    (b'{"sizes": [2, 1], "activations": ["nope"], "loss": "mse"}', "unknown activation 'nope'"),
])
def test_a_bad_model_file_is_a_message_and_nothing_changes(tmp_path, window, model, actions,
                                                           picker, messages, content, problem):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    spec, params, data = model.session.spec, model.session.params, model.session.data
    picker.will_answer(bad)
    actions.open_model_action.trigger()
    assert len(messages) == 1
    title, text = messages[0]
    assert title == "Open model" and text.startswith(str(bad)) and problem in text
    assert model.session.spec is spec and model.session.params is params
    assert model.session.data is data
    assert window.isVisible() and actions.open_model_action.isEnabled()
    assert actions.recent_files() == []


def test_a_bad_data_file_is_a_message_and_nothing_changes(tmp_path, model, actions, picker,
                                                          messages):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n")
    data = model.session.data
    picker.will_answer(bad)
    actions.open_data_action.trigger()
    assert messages and "line 1: 2 columns" in messages[0][1]
    assert model.session.data is data


def test_export_writes_what_the_engine_writes(tmp_path, model, actions, picker, runners):
    picker.will_answer(tmp_path / "out")
    actions.export_action.trigger()
    session = model.session
    export(tmp_path / "ref", session.spec, session.params, session.data)
    for name in EXPORTED:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert len(runners) == 1 and runners[0].thread.isFinished()
    assert "Exported 100 samples" in actions.window.statusBar().currentMessage()


def test_cancelling_an_export_writes_nothing(tmp_path, window, model, monkeypatch, runners):
    # the export waits at its first progress report until the user has pressed Cancel, so the
    # cancel lands while it runs
    pressed = threading.Event()
    real_export = export_dialog.export

    def export_after_cancel(outdir, spec, params, data, lr=0.0, progress=None):
        def gated(done, total):
            assert pressed.wait(10)
            return progress(done, total)
        return real_export(outdir, spec, params, data, lr=lr, progress=gated)

    def press_cancel():
        dialog = window.findChild(QProgressDialog)
        dialog.findChild(QPushButton).click()
        pressed.set()

    monkeypatch.setattr(export_dialog, "export", export_after_cancel)
    QTimer.singleShot(0, press_cancel)
    session = model.session
    result = export_dialog.export_with_progress(window, tmp_path / "out", session.spec,
                                                session.params, session.data)
    assert result is None
    assert not (tmp_path / "out").exists()
    assert pressed.is_set() and runners[0].cancelled
    assert runners[0].thread.isFinished()


def test_an_export_that_cannot_write_is_a_message(tmp_path, window, actions, picker, runners,
                                                  messages):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the folder should go")
    picker.will_answer(blocker)
    assert actions.export_gradients() is None
    assert len(messages) == 1 and str(blocker) in messages[0][1]
    assert runners[0].thread.isFinished() and window.isVisible()


def test_export_asks_before_replacing_files(tmp_path, actions, picker, monkeypatch, runners):
    (tmp_path / TORCH_FILE).write_text("old")
    questions = []
    monkeypatch.setattr(actions, "_confirm", lambda title, text: questions.append(text))
    picker.will_answer(tmp_path)
    assert actions.export_gradients() is None
    assert TORCH_FILE in questions[0]
    assert (tmp_path / TORCH_FILE).read_text() == "old" and runners == []


@pytest.fixture
def gradient_files(tmp_path, model):
    session = model.session
    export(tmp_path, session.spec, session.params, session.data)
    gs = read_gradients(tmp_path / SCRATCH_FILE)
    gs.samples[4]["b1"][2] += np.float32(0.5)
    write_gradients(tmp_path / "tampered.dat", gs)
    return tmp_path


def test_compare_opens_the_dialog_and_its_clicks_move_the_session(gradient_files, model,
                                                                  actions, picker, qtbot):
    picker.will_answer(gradient_files / TORCH_FILE, gradient_files / "tampered.dat")
    actions.compare_action.trigger()
    dialog, = actions.compare_dialogs
    assert dialog.isVisible() and "first at b1" in dialog.verdict.text()
    dialog.activate_sample(4)
    assert model.session.sample_index == 4
    assert actions.recent_files()[0].kind == "gradients"
    dialog.close_button.click()
    assert actions.compare_dialogs == []


def test_compare_with_a_bad_file_is_a_message(tmp_path, gradient_files, actions, picker,
                                              messages, window):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps([1, 2, 3]))
    picker.will_answer(gradient_files / TORCH_FILE, junk)
    actions.compare_action.trigger()
    assert actions.compare_dialogs == []
    assert len(messages) == 1 and "pickle" in messages[0][1]
    assert window.isVisible()


def test_recent_files_reopen_and_forget_missing_ones(tmp_path, model, actions, picker):
    paths = []
    for i in range(MAX_RECENT + 2):
        path = tmp_path / f"m{i}.json"
        picker.will_answer(path)
        actions.save_model()
        paths.append(path)
    actions._fill_recent_menu()
    entries = [a for a in actions.recent_menu.actions() if a.data()]
    assert len(entries) == MAX_RECENT
    assert "m9.json" in entries[0].text()        # newest first

    os.remove(paths[9])
    actions._fill_recent_menu()
    entries = [a for a in actions.recent_menu.actions() if a.data()]
    assert len(entries) == MAX_RECENT - 1 and "m8.json" in entries[0].text()

    model.session.set_network(preset("2-2-1-tanh-bce"))
    entries[0].trigger()
    assert model.session.spec == preset("2-10-10-1-sigmoid-squared")


def test_pickers_start_in_the_last_folder(tmp_path, window, model, monkeypatch):
    starts = []

    def fake_open(parent, title, folder, file_filter):
        starts.append(folder)
        return str(tmp_path / "sub" / "d.csv"), file_filter

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text(to_csv_text(regression_set(model.session.spec, 3)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_open)
    actions = FileActions(window, model)
    actions.open_data()
    actions.open_data()
    assert open_settings().value(LAST_FOLDER) == str(tmp_path / "sub")
    assert starts[1] == str(tmp_path / "sub")
    assert model.session.n_samples == 3


def test_quit_closes_the_window(window, actions):
    actions.quit_action.trigger()
    assert not window.isVisible()
