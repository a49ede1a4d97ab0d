"""File > Export from the window writes what the window shows: the mistake its scratch engine
makes (the same four files as `app.py export --inject`), the parameters a training run left
each engine at, and the notes saying so."""

import numpy as np
import pytest

from engine.check.mistaken_net import scratch_net
from engine.export import (
    BUFFERS_NOTE,
    DATA_FILE,
    MODEL_FILE,
    SCRATCH_FILE,
    TORCH_FILE,
    gradient_sets,
)
from engine.files.datasets import default_set
from engine.files.readers import read_gradients
from engine.net.params import drift, init_params
from engine.net.reference import TorchNet
from engine.net.spec import DEFAULT_PRESET, preset
from engine.session import Session
from gui.files.export_dialog import ExportRunner
from gui.main_window import MainWindow
from tests.gui.windows import window_on
from tests.test_cli import app

pytestmark = [pytest.mark.qt_log_level_fail("WARNING"),
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]
EXPORTED = (TORCH_FILE, SCRATCH_FILE, MODEL_FILE, DATA_FILE)




def export_from(window: MainWindow, folder, monkeypatch) -> None:
    """File > Export gradients, the folder picker answering `folder` (made if missing, as
    the user agrees to, unless a test answers otherwise)."""
    monkeypatch.setattr(window.file_actions, "_ask_folder", lambda title: str(folder))
    if "_confirm" not in vars(window.file_actions):     # no answer of the test's own
        monkeypatch.setattr(window.file_actions, "_confirm", lambda title, text: True)
    window.file_actions.export_action.trigger()


def inject(window: MainWindow, label: str) -> None:
    """Tools > Inject a mistake for a whole-network mistake; the session for "name@layer"
    (the menu offers only whole-network ones)."""
    if "@" in label:
        window.model.session.set_mistake(label)
    else:
        window.mistake_actions.actions[label].trigger()
    assert window.model.session.mistake.label == label


def status(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def pretend_trained(session: Session, scale: float = 0.05) -> dict[str, np.ndarray]:
    """What a run leaves: torch's parameters a little apart from the scratch engine's."""
    rng = np.random.default_rng(5)
    theirs = {k: v + scale * rng.standard_normal(v.shape) for k, v in session.params.items()}
    session.set_params(session.params, torch_params=theirs)
    return session.torch_params


def assert_same_files(ours, theirs) -> None:
    for name in EXPORTED:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def assert_holds(path, gs) -> None:
    """The file at `path` holds the gradients of the set `gs`, sample by sample."""
    written = read_gradients(path)
    for name in gs.spec.param_names:
        np.testing.assert_array_equal(written.stacked(name), gs.stacked(name))


def test_a_plain_export_is_the_command_lines(qtbot, tmp_path, monkeypatch):
    window = window_on(qtbot)
    export_from(window, tmp_path / "window", monkeypatch)
    result = app("export", tmp_path / "cli")
    assert result.returncode == 0, result.stderr
    assert_same_files(tmp_path / "window", tmp_path / "cli")
    assert "# note" not in (tmp_path / "window" / SCRATCH_FILE).read_text()
    assert "Exported 100 samples" in status(window) and "mistake" not in status(window)


@pytest.mark.parametrize("label", ["dropped_factor_2", "forgotten_activation_derivative@1",
                                   "accumulated_gradients"])
def test_an_injected_mistake_is_exported_as_the_command_line_exports_it(qtbot, tmp_path,
                                                                        monkeypatch, label):
    window = window_on(qtbot)
    inject(window, label)
    export_from(window, tmp_path / "window", monkeypatch)
    result = app("export", tmp_path / "cli", "--inject", label)
    assert result.returncode == 0, result.stderr
    assert_same_files(tmp_path / "window", tmp_path / "cli")
    scratch_text = (tmp_path / "window" / SCRATCH_FILE).read_text()
    assert f"# note: injected mistake: {label}:" in scratch_text
    assert f"made the mistake {label}" in status(window)


def test_after_training_each_file_is_at_its_engines_parameters(qtbot, tmp_path, monkeypatch):
    window = window_on(qtbot)
    session = window.model.session
    theirs = pretend_trained(session)
    export_from(window, tmp_path, monkeypatch)
    torch_at_theirs, _ = gradient_sets(session.spec, theirs, session.data)
    _, scratch_at_ours = gradient_sets(session.spec, session.params, session.data)
    assert_holds(tmp_path / TORCH_FILE, torch_at_theirs)
    assert_holds(tmp_path / SCRATCH_FILE, scratch_at_ours)
    apart = f"||θ_scratch - θ_torch|| = {drift(session.params, theirs):.6g}"
    for name in (TORCH_FILE, SCRATCH_FILE):
        notes = read_gradients(tmp_path / name).notes
        assert any(n.startswith("after training:") and apart in n for n in notes), name
    assert "at its own parameters after training" in status(window)


def test_a_real_run_with_accumulated_gradients_exports_its_parameters_and_buffers(
        qtbot, tmp_path, monkeypatch):
    spec = preset(DEFAULT_PRESET)
    window = window_on(qtbot, Session(spec, init_params(spec, 1), default_set(spec, 20, 1)))
    inject(window, "accumulated_gradients")
    docks = window.training
    docks.panel.epochs.setValue(2)
    with qtbot.waitSignal(docks.panel.controller.stopped, timeout=20_000):
        docks.panel.buttons["Start"].click()
    session = window.model.session
    assert session.torch_params is not None and session.buffers
    export_from(window, tmp_path, monkeypatch)
    x, y = session.data.x, session.data.y
    _, theirs = TorchNet(spec, session.torch_params).per_sample_gradients(x, y)
    _, ours = scratch_net(spec, session.params, session.mistake,
                          session.buffers).per_sample_gradients(x, y)
    torch_file, mine = (read_gradients(tmp_path / n) for n in (TORCH_FILE, SCRATCH_FILE))
    for name in spec.param_names:
        np.testing.assert_array_equal(torch_file.stacked(name), theirs[name])
        np.testing.assert_array_equal(mine.stacked(name), ours[name])
    assert drift(session.params, session.torch_params) > 0
    assert BUFFERS_NOTE in mine.notes
    assert any(n.startswith("injected mistake: accumulated_gradients") for n in mine.notes)
    assert any(n.startswith("after training:") for n in torch_file.notes)


def test_an_update_mistake_exports_only_after_training(qtbot, tmp_path, monkeypatch, messages):
    window = window_on(qtbot)
    inject(window, "flipped_update_sign")
    export_from(window, tmp_path / "before", monkeypatch)
    assert not (tmp_path / "before").exists()
    assert len(messages) == 1 and "train a few steps first" in messages[0][1]
    pretend_trained(window.model.session)
    export_from(window, tmp_path / "after", monkeypatch)
    notes = read_gradients(tmp_path / "after" / SCRATCH_FILE).notes
    assert any(n.startswith("injected mistake: flipped_update_sign") for n in notes)
    assert len(messages) == 1


def test_the_export_reads_copies_of_the_training_state(qtbot, tmp_path):
    window = window_on(qtbot)
    session = window.model.session
    session.set_mistake("accumulated_gradients")
    theirs = pretend_trained(session)
    buffers = {k: np.full_like(v, 0.5) for k, v in session.params.items()}
    want_torch, want_scratch = gradient_sets(session.spec, session.params, session.data,
                                             mistake=session.mistake, torch_params=theirs,
                                             buffers=buffers)
    runner = ExportRunner(window, tmp_path, session.spec, session.params, session.data,
                          mistake=session.mistake, torch_params=theirs, buffers=buffers)
    # the session moves on (a training step, say) before the worker has read them
    for arrays in (theirs, buffers):
        for v in arrays.values():
            v += 1
    assert runner.run() is not None
    assert_holds(tmp_path / TORCH_FILE, want_torch)
    assert_holds(tmp_path / SCRATCH_FILE, want_scratch)


def test_the_export_says_where_the_files_went_with_a_button_to_open_the_folder(
        qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices
    window = window_on(qtbot)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    folder = tmp_path / "new" / "out"
    asked = []
    monkeypatch.setattr(window.file_actions, "_confirm",
                        lambda title, text: asked.append(text) or True)
    export_from(window, folder, monkeypatch)
    assert asked == [f"{folder} does not exist. Create it?"]
    assert (folder / TORCH_FILE).is_file()
    box = window.file_actions.exported_message
    assert box.isVisible() and not box.isModal() and str(folder) in box.text()
    next(b for b in box.buttons() if b.text() == "Open folder").click()
    assert opened == [str(folder)]


def test_a_missing_folder_the_user_does_not_want_made_gets_nothing(qtbot, tmp_path, monkeypatch):
    window = window_on(qtbot)
    monkeypatch.setattr(window.file_actions, "_confirm", lambda title, text: False)
    export_from(window, tmp_path / "nope", monkeypatch)
    assert not (tmp_path / "nope").exists() and not any(tmp_path.iterdir())
