"""The network dialog builds networks and data through the engine and shows its messages."""

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog

from engine.files.datasets import classification_set, regression_set, to_csv_text
from engine.net.params import init_params
from engine.net.spec import PRESETS, NetworkSpec, preset
from gui.network_dialog import NetworkDialog, choose_network
from gui.session_model import SessionModel

# the offscreen platform says this of every window it shows; it is not ours to fix
pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]


@pytest.fixture
def dialog(qtbot):
    d = NetworkDialog(preset("2-10-10-1-sigmoid-squared"), seed=0)
    qtbot.addWidget(d)
    return d


def set_activations(d: NetworkDialog, names: list[str]) -> None:
    assert len(d._activation_boxes) == len(names)
    for box, name in zip(d._activation_boxes, names, strict=True):
        box.setCurrentText(name)


def test_opens_on_the_given_network_with_its_preset_selected(dialog):
    assert dialog.preset_box.currentText() == "2-10-10-1-sigmoid-squared"
    assert dialog.sizes_edit.text() == "2, 10, 10, 1"
    assert dialog._activations() == ["sigmoid", "sigmoid", "identity"]
    assert dialog.ok_button.isEnabled()
    assert dialog.error() is None


def test_builds_a_relu_deep_net(qtbot, dialog):
    dialog.sizes_edit.setText("3, 16, 16, 16, 1")
    set_activations(dialog, ["relu", "relu", "relu", "identity"])
    dialog.loss_box.setCurrentText("mse")
    dialog.dtype_box.setCurrentText("float64")
    dialog.layout_box.setCurrentIndex(dialog.layout_box.findData("in_out"))
    dialog.seed_box.setValue(7)
    dialog.samples_box.setValue(40)
    assert dialog.preset_box.currentText() == "Custom"
    assert dialog.ok_button.isEnabled(), dialog.error()
    dialog.ok_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted

    spec, params, data = dialog.result_network()
    want = NetworkSpec((3, 16, 16, 16, 1), ("relu", "relu", "relu", "identity"), "mse",
                       "float64", "in_out")
    assert spec == want
    for name, value in init_params(want, 7).items():
        np.testing.assert_array_equal(params[name], value)
    expected = regression_set(want, 40, 7)
    np.testing.assert_array_equal(data.x, expected.x)
    assert data.x.dtype == np.float64 and data.x.shape == (40, 3)


def test_builds_a_bce_net_on_the_classification_set(dialog):
    dialog.sizes_edit.setText("2, 8, 1")
    set_activations(dialog, ["tanh", "sigmoid"])
    dialog.loss_box.setCurrentText("bce")
    # the data source follows the loss until the user picks one
    assert dialog.classification_button.isChecked()
    assert dialog.ok_button.isEnabled(), dialog.error()
    spec, _, data = dialog.result_network()
    assert spec == NetworkSpec((2, 8, 1), ("tanh", "sigmoid"), "bce")
    np.testing.assert_array_equal(data.y, classification_set(spec, 100, 0).y)


def test_a_preset_fills_every_field(dialog):
    dialog.preset_box.setCurrentText("2-2-1-tanh-bce")
    assert dialog.sizes_edit.text() == "2, 2, 1"
    assert dialog._activations() == ["tanh", "sigmoid"]
    assert dialog.loss_box.currentText() == "bce"
    assert dialog.result_network()[0] == PRESETS["2-2-1-tanh-bce"]


def test_activation_rows_follow_the_sizes_and_keep_the_output(dialog):
    dialog.sizes_edit.setText("2, 10, 10, 10, 10, 1")
    assert dialog._activations() == ["sigmoid"] * 4 + ["identity"]
    assert dialog.activations_form.rowCount() == 5
    dialog.sizes_edit.setText("2, 1")
    assert dialog._activations() == ["identity"]
    assert dialog.activations_form.rowCount() == 1
    assert dialog.ok_button.isEnabled()


@pytest.mark.parametrize(("sizes", "message"), [
    ("2, x, 1", "'x' is not a whole number"),
    ("", "write the layer sizes"),
    ("2", "needs at least an input and an output"),
    ("2, 0, 1", "size of layer 1 is 0"),
])
def test_invalid_sizes_show_the_message_and_disable_ok(dialog, sizes, message):
    dialog.sizes_edit.setText(sizes)
    assert message in dialog.error()
    assert message in dialog.message.text()
    assert not dialog.ok_button.isEnabled()
    dialog.ok_button.click()
    assert dialog.result() != QDialog.DialogCode.Accepted
    dialog.sizes_edit.setText("2, 4, 1")
    assert dialog.error() is None and dialog.ok_button.isEnabled()


def test_an_activation_the_loss_cannot_use_shows_the_engines_message(dialog):
    dialog.loss_box.setCurrentText("bce")   # the output is still identity
    assert "needs a sigmoid output layer" in dialog.error()
    assert not dialog.ok_button.isEnabled()
    dialog._activation_boxes[-1].setCurrentText("sigmoid")
    assert dialog.ok_button.isEnabled()


def test_a_csv_file_becomes_the_data(tmp_path, dialog, monkeypatch):
    spec = preset("2-10-10-1-sigmoid-squared")
    source = regression_set(spec, 12, 3)
    path = tmp_path / "samples.csv"
    path.write_text(to_csv_text(source))
    monkeypatch.setattr(dialog, "_ask_open_file", lambda title, flt: str(path))
    dialog.browse_button.click()
    assert dialog.csv_button.isChecked()
    assert dialog.ok_button.isEnabled(), dialog.error()
    assert not dialog.samples_box.isEnabled()
    _, _, data = dialog.result_network()
    np.testing.assert_array_equal(data.x, source.x)
    np.testing.assert_array_equal(data.y, source.y)


def test_a_bad_csv_shows_the_engines_message(tmp_path, dialog):
    path = tmp_path / "bad.csv"
    path.write_text("x1,x2,y\n0.1,0.2,0.3\n0.4,oops,0.5\n")
    dialog.csv_button.click()
    assert "choose a CSV file" in dialog.error()
    dialog.csv_edit.setText(str(path))
    assert "line 3, column 2: 'oops' is not a number" in dialog.error()
    assert not dialog.ok_button.isEnabled()
    # the same file fits a network with another shape: three inputs make the row too short
    path.write_text("0.1,0.2,0.3\n")
    dialog.sizes_edit.setText("3, 4, 1")
    assert "3 columns" in dialog.error() and "needs 4" in dialog.error()
    dialog.sizes_edit.setText("2, 4, 1")
    assert dialog.error() is None


def test_choose_network_applies_the_choice_to_the_session(qtbot):
    model = SessionModel()

    def fill_and_accept():
        d = next(w for w in QApplication.topLevelWidgets() if isinstance(w, NetworkDialog)
                 and w.isVisible())
        d.preset_box.setCurrentText("2-2-1-tanh-bce")
        d.seed_box.setValue(3)
        d.samples_box.setValue(30)
        d.ok_button.click()

    QTimer.singleShot(0, fill_and_accept)
    with qtbot.waitSignal(model.networkChanged):
        assert choose_network(None, model)
    session = model.session
    assert session.spec == PRESETS["2-2-1-tanh-bce"]
    assert session.seed == 3 and session.n_samples == 30
    np.testing.assert_array_equal(session.params["w1"],
                                  init_params(session.spec, 3)["w1"])


def test_a_typo_in_the_sizes_keeps_the_activations_and_fixing_it_restores_them(dialog):
    set_activations(dialog, ["relu", "tanh", "sigmoid"])
    dialog.sizes_edit.setText("2, 10, x, 1")               # a typo: reported, rows kept
    assert not dialog.ok_button.isEnabled()
    assert dialog._activations() == ["relu", "tanh", "sigmoid"]
    for typed in ("2, 1", "2, 10", "2, 10, 1"):            # on the way to the right sizes
        dialog.sizes_edit.setText(typed)
    dialog.sizes_edit.setText("2, 10, 10, 1")
    assert dialog._activations() == ["relu", "tanh", "sigmoid"]
    assert dialog.ok_button.isEnabled()
    dialog.sizes_edit.setText("2, 10, 10, 10, 1")          # a new layer copies the last hidden
    assert dialog._activations() == ["relu", "tanh", "tanh", "sigmoid"]


def test_a_bce_preset_brings_the_two_class_data_and_a_regression_preset_its_own(dialog):
    dialog.preset_box.setCurrentText("2-2-1-tanh-bce")
    assert dialog.source() == "classification"
    spec, _, data = dialog.result_network()
    assert spec == PRESETS["2-2-1-tanh-bce"] and set(np.unique(data.y)) <= {0.0, 1.0}
    dialog.preset_box.setCurrentText("2-10-10-1-sigmoid-squared")
    assert dialog.source() == "regression"
    _, _, data = dialog.result_network()
    assert not set(np.unique(data.y)) <= {0.0, 1.0}
