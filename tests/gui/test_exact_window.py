"""The window's Open model and Open data keep the user's numbers: read at float64, converted once
to the dtype the window computes in."""

import json

import numpy as np
import pytest
from PySide6.QtWidgets import QMainWindow

from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from gui.files.file_actions import FileActions
from gui.session_model import SessionModel

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")
PARAMS = {"w1": [[0.15, 0.2], [0.25, 0.3]], "b1": [0.35, 0.35],
          "w2": [[0.4, 0.45], [0.5, 0.55]], "b2": [0.6, 0.6]}


def model_file(path, **extra) -> str:
    path.write_text(json.dumps({"sizes": [2, 2, 2], "activations": ["sigmoid", "sigmoid"],
                                "loss": "half_squared_error", "params": PARAMS, **extra}))
    return str(path)


def actions_on(qtbot, dtype: str) -> FileActions:
    window = QMainWindow()
    qtbot.addWidget(window)
    spec = preset(DEFAULT_PRESET).with_options(dtype=dtype)
    actions = FileActions(window, SessionModel(Session(spec)))
    actions.add_recent = lambda *a: None    # the user's recent files stay as they were
    return actions


def test_a_float64_window_opens_a_model_without_dtype_exactly(qtbot, tmp_path):
    unstated = actions_on(qtbot, "float64")
    stated = actions_on(qtbot, "float64")
    assert unstated.open_model(model_file(tmp_path / "a.json"))
    assert stated.open_model(model_file(tmp_path / "b.json", dtype="float64"))
    a, b = unstated.model.session, stated.model.session
    assert a.spec == b.spec and a.spec.dtype == "float64"
    assert a.params["w1"][0, 0] == 0.15           # not 0.15000000596046448
    for name in a.spec.param_names:
        assert a.params[name].tobytes() == b.params[name].tobytes()
    for pa, pb in zip(a.pairs, b.pairs, strict=True):
        assert pa.scratch.value.tobytes() == pb.scratch.value.tobytes()
        assert pa.torch.value.tobytes() == pb.torch.value.tobytes()


def test_a_model_that_states_float32_runs_in_float32(qtbot, tmp_path):
    actions = actions_on(qtbot, "float64")
    assert actions.open_model(model_file(tmp_path / "m.json", dtype="float32"))
    session = actions.model.session
    assert session.spec.dtype == "float32"
    np.testing.assert_array_equal(session.params["w1"], np.float32(PARAMS["w1"]))


def test_open_data_keeps_the_csvs_float64_numbers(qtbot, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,y\n0.15,0.2,0.1234567890123\n")
    actions = actions_on(qtbot, "float64")
    assert actions.open_data(str(path))
    session = actions.model.session
    np.testing.assert_array_equal(session.data.x, [[0.15, 0.2]])
    np.testing.assert_array_equal(session.data.y, [[0.1234567890123]])
