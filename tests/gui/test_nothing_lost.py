"""Before the window closes, another network is chosen or a model is opened, it asks about a
network changed since it was saved and about a running training: Save, Discard or Cancel.
The question is replaced by a recorder that gives the test's answer."""

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog

import gui.network_dialog as network_dialog
from engine.files.datasets import default_set
from engine.files.model_file import read_model, write_model
from engine.net.params import init_params
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from gui.files import unsaved
from gui.main_window import MainWindow
from gui.session_model import SessionModel
from tests.helpers import gone

SPEC = preset(DEFAULT_PRESET)
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


class Questions:
    """Answers the unsaved-changes question in turn and keeps what it was asked."""

    def __init__(self, monkeypatch):
        self.answers: list[str] = []
        self.asked: list[tuple[str, str, str, bool]] = []
        monkeypatch.setattr(unsaved, "ask", self._ask)

    def _ask(self, parent, title, question, detail, can_save):
        self.asked.append((title, question, detail, can_save))
        return self.answers.pop(0) if self.answers else unsaved.DISCARD  # pytest-qt's close

    def will_answer(self, *answers: str) -> "Questions":
        self.answers += answers
        return self


@pytest.fixture
def questions(monkeypatch):
    return Questions(monkeypatch)


@pytest.fixture
def window(qtbot):
    model = SessionModel(Session(SPEC, init_params(SPEC, 1), default_set(SPEC, 20, seed=1)))
    w = MainWindow(model)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def changed(window: MainWindow) -> dict:
    """Change the parameters as training would; a copy of them."""
    session = window.model.session
    session.set_params({k: v * 0.5 for k, v in session.params.items()})
    return {k: v.copy() for k, v in session.params.items()}


def test_an_untouched_session_closes_without_a_question(window, questions):
    window.model.session.step()           # stepping through a sample changes nothing to save
    window.model.session.next_sample()
    assert window.close()
    assert questions.asked == []


def test_cancel_keeps_the_window_open_and_discard_closes_it(window, questions):
    changed(window)
    questions.will_answer(unsaved.CANCEL)
    assert not window.close()
    assert window.isVisible()
    title, question, detail, can_save = questions.asked[0]
    assert (title, question) == (unsaved.CLOSING.title, unsaved.CLOSING.question)
    assert "changed since they were last saved" in detail and can_save
    questions.will_answer(unsaved.DISCARD)
    assert window.close()
    assert not window.isVisible()


def test_save_writes_the_model_then_closes(window, questions, monkeypatch, tmp_path):
    params = changed(window)
    path = tmp_path / "kept.json"
    monkeypatch.setattr(window.file_actions, "_ask_save_file", lambda *a: str(path))
    questions.will_answer(unsaved.SAVE)
    assert window.close()
    model = read_model(path)
    assert model.spec == SPEC
    for name, value in params.items():
        np.testing.assert_array_equal(model.run()[1][name], value)


def test_a_save_the_user_cancels_keeps_the_window_open(window, questions, monkeypatch):
    changed(window)
    monkeypatch.setattr(window.file_actions, "_ask_save_file", lambda *a: None)
    questions.will_answer(unsaved.SAVE)
    assert not window.close()
    assert window.isVisible() and window.unsaved.dirty


def test_saving_or_opening_makes_the_session_clean(window, questions, monkeypatch, tmp_path):
    changed(window)
    path = tmp_path / "m.json"
    assert window.file_actions.save_model(str(path))
    assert not window.unsaved.dirty
    write_model(path, SPEC, init_params(SPEC, 7))
    changed(window)
    questions.will_answer(unsaved.DISCARD)
    assert window.file_actions.open_model(str(path))
    assert [q[0] for q in questions.asked] == [unsaved.OPENING.title]
    np.testing.assert_array_equal(window.model.session.params["w1"], init_params(SPEC, 7)["w1"])
    assert not window.unsaved.dirty
    assert window.close()
    assert len(questions.asked) == 1      # the opened model is as its file holds it


def test_cancel_keeps_the_session_when_opening_a_model(window, questions, tmp_path):
    params = changed(window)
    path = tmp_path / "other.json"
    write_model(path, preset("2-2-1-tanh-bce"), init_params(preset("2-2-1-tanh-bce")))
    questions.will_answer(unsaved.CANCEL)
    assert not window.file_actions.open_model(str(path))
    assert window.model.session.spec == SPEC
    np.testing.assert_array_equal(window.model.session.params["w2"], params["w2"])


def test_a_model_that_cannot_be_read_asks_nothing(window, questions, tmp_path, monkeypatch):
    changed(window)
    (tmp_path / "bad.json").write_text("{")
    monkeypatch.setattr(window.file_actions, "_error", lambda *a: None)
    assert not window.file_actions.open_model(str(tmp_path / "bad.json"))
    assert questions.asked == []


def test_choosing_a_network_asks_once_the_dialog_is_accepted(window, questions, monkeypatch):
    params = changed(window)
    monkeypatch.setattr(network_dialog.NetworkDialog, "exec",
                        lambda self: QDialog.DialogCode.Accepted)
    questions.will_answer(unsaved.CANCEL)
    assert not window.choose_network()
    np.testing.assert_array_equal(window.model.session.params["w1"], params["w1"])
    questions.will_answer(unsaved.DISCARD)
    assert window.choose_network()
    assert not np.array_equal(window.model.session.params["w1"], params["w1"])
    assert [q[0] for q in questions.asked] == [unsaved.NEW_NETWORK.title] * 2


def start_long_run(qtbot, window: MainWindow):
    panel = window.training.panel
    panel.epochs.setValue(100_000)
    with qtbot.waitSignal(panel.controller.records, timeout=10_000):
        window.training.train_action.trigger()
    return panel


def test_a_running_training_is_asked_about_even_on_a_saved_network(qtbot, window, questions):
    panel = start_long_run(qtbot, window)
    assert not window.unsaved.dirty       # the session has not moved yet: only the run has
    questions.will_answer(unsaved.CANCEL)
    assert not window.close()
    assert panel.controller.running       # cancelling leaves the run alone
    assert "training run is in progress" in questions.asked[0][2]
    child = panel.controller.client.pid
    questions.will_answer(unsaved.DISCARD)
    assert window.close()
    assert gone(child)


def test_save_during_a_run_pauses_it_and_saves_where_it_stopped(qtbot, window, questions,
                                                                  monkeypatch, tmp_path):
    panel = start_long_run(qtbot, window)
    path = tmp_path / "mid_run.json"
    monkeypatch.setattr(window.file_actions, "_ask_save_file", lambda *a: str(path))
    questions.will_answer(unsaved.SAVE)
    assert window.close()
    assert 0 < panel.training.step < panel.training.total
    scratch, _ = panel.training.params()
    saved = read_model(path)
    for name, value in scratch.items():
        np.testing.assert_array_equal(saved.run()[1][name], value)


def test_ctrl_t_starts_and_pauses_the_run(qtbot, window):
    panel = start_long_run(qtbot, window)
    assert not window.training.panel_dock.isHidden()
    with qtbot.waitSignal(panel.controller.stopped, timeout=10_000):
        window.training.train_action.trigger()
    assert not panel.controller.running and 0 < panel.training.step < panel.training.total


def test_opening_a_model_mid_run_stops_the_run_first(qtbot, window, questions, tmp_path):
    panel = start_long_run(qtbot, window)
    path = tmp_path / "other.json"
    write_model(path, SPEC, init_params(SPEC, 5))
    questions.will_answer(unsaved.DISCARD)
    assert window.file_actions.open_model(str(path))
    assert not panel.controller.running
    assert 0 < panel.training.step < panel.training.total    # paused, not finished
    np.testing.assert_array_equal(window.model.session.params["w1"], init_params(SPEC, 5)["w1"])


def test_an_untouched_fresh_preset_asks_nothing_and_a_trained_one_does(window, questions,
                                                                       monkeypatch):
    monkeypatch.setattr(network_dialog.NetworkDialog, "exec",
                        lambda self: QDialog.DialogCode.Accepted)
    questions.will_answer(unsaved.DISCARD)
    changed(window)
    assert window.choose_network()               # asked once: the changed network
    assert len(questions.asked) == 1 and not window.unsaved.dirty
    assert window.close()                        # the fresh preset: closed without a question
    assert len(questions.asked) == 1
