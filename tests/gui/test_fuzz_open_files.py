"""Open model and Open data with a file whose numbers are odd (5000 digits, a string, true, a
value float32 cannot hold, digits of another script, 1_000, a field longer than the csv
module reads): one message box naming the file and the place, and the session unchanged."""

import json

import pytest

from gui.files.file_actions import FileActions
from gui.session_model import SessionModel

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]

NET = {"sizes": [2, 1], "activations": ["identity"], "loss": "squared_error"}


def _model(**params: object) -> str:
    given = {"w1": [[0.5, 0.25]], "b1": [0.0]}
    return json.dumps({**NET, "params": {**given, **params}})


MODELS = {
    "5000-digit size": json.dumps(NET).replace("[2, 1]", f"[2, {'9' * 5000}]"),
    "huge integer": _model(b1=[10**400]),
    "string": _model(w1=[[0.5, "0.5"]]),
    "true": _model(w1=[[True, 0.5]]),
    "float32 overflow": _model(b1=[1e39]),
    "1e999": _model(w1=[[0.5, 1]]).replace("0.5, 1]", "0.5, 1e999]"),
}
PLACES = {"5000-digit size": "size of layer 1 is a 5000-digit number",
          "huge integer": "params.b1[0] is a 401-digit number",
          "string": "params.w1[0][1] is the string '0.5', not a number",
          "true": "params.w1[0][0] is true, not a number",
          "float32 overflow": "params.b1[0] is 1e+39, beyond the range of float32",
          "1e999": "params.w1[0][1] is 1e999, too large for a float"}
CSVS = {
    "long field": "0.5,0.25," + "1" * 200_000 + "\n",
    "full-width digits": "0.5,１２,0.25\n",
    "arabic digits": "0.5,0.25,٣\n",
    "underscore": "x1,x2,y\n0.5,1_000,0.25\n",
    "float32 overflow": "0.5,0.25,0.1\n1e39,0.5,0.25\n",
}
CSV_PLACES = {"long field": "line 1, column 3: 1111", "full-width digits": "line 1, column 2",
              "arabic digits": "line 1, column 3", "underscore": "line 2, column 2",
              "float32 overflow": "line 2, column 1: 1e39 is beyond the range of float32"}


@pytest.fixture
def actions(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMainWindow
    window = QMainWindow()
    qtbot.addWidget(window)
    actions = FileActions(window, SessionModel())
    answers: list[str] = []
    monkeypatch.setattr(actions, "_ask_open_file", lambda *args: answers.pop(0))
    actions.answers = answers  # type: ignore[attr-defined]
    return actions


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_open_model_with_odd_numbers_is_one_message(tmp_path, actions, messages, kind):
    path = tmp_path / "model.json"
    path.write_text(MODELS[kind], encoding="utf-8")
    session = actions.model.session
    spec, params = session.spec, session.params
    actions.answers.append(str(path))
    actions.open_model_action.trigger()
    assert len(messages) == 1, messages
    title, text = messages[0]
    assert title == "Open model" and text.startswith(f"{path}: ") and "\n" not in text
    assert PLACES[kind] in text and len(text) < 300
    assert session.spec is spec and session.params is params


@pytest.mark.parametrize("kind", sorted(CSVS))
def test_open_data_with_odd_numbers_is_one_message(tmp_path, actions, messages, kind):
    path = tmp_path / "data.csv"
    path.write_text(CSVS[kind], encoding="utf-8")
    session = actions.model.session
    data = session.data
    actions.answers.append(str(path))
    actions.open_data_action.trigger()
    assert len(messages) == 1, messages
    title, text = messages[0]
    assert title == "Open data" and text.startswith(f"{path}, ") and "\n" not in text
    assert CSV_PLACES[kind] in text and len(text) < 300
    assert session.data is data
