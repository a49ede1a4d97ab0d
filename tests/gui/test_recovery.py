"""Crash recovery: the app killed with SIGKILL mid-training comes back at the next start with
its network, data and both engines' parameters exactly as autosaved; a clean close leaves no
autosave; a refused or unreadable autosave is deleted."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine.autosave import (
    SESSION_FILE,
    RunSnapshot,
    SessionFolder,
    Snapshot,
    orphans,
    read_autosave,
)
from engine.net.spec import preset
from engine.session import Session
from engine.train.lockstep import TrainConfig
from gui.files import recovery
from gui.files.recovery import Recovery
from gui.launch import build_window, run_window
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

# The app as `python app.py` starts it (gui.launch.run_window), with the training started from
# its own Ctrl+T action once the window is up: no hook in the app itself.
DRIVER = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import gui.launch as launch
from gui.main_window import MainWindow

def train():
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
    window.training.panel.epochs.setValue(1_000_000)
    window.training.train_action.trigger()

launch._application()
QTimer.singleShot(0, train)
sys.exit(launch.run_window())
"""


@pytest.fixture
def answers(monkeypatch):
    """The restore question, answered Yes, with what it was asked."""
    asked = []

    def ask(parent, when, detail):
        asked.append((when, detail))
        return True

    monkeypatch.setattr(recovery, "ask_restore", ask)
    return asked


def wait_for(condition, timeout: float, what: str):
    """Poll a file-system condition another process makes true (no Qt signal can tell)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def training_autosave(root: Path) -> dict | None:
    for path in root.glob(f"*/{SESSION_FILE}"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue   # being replaced right now
        if doc["training"] and doc["training"]["step"] > 0:
            return doc | {"folder": str(path.parent)}
    return None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_mid_training_the_session_comes_back_exactly(qtbot, tmp_path, answers):
    root = tmp_path / "autosave"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", recovery.ENV: str(root),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    app = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        doc = wait_for(lambda: training_autosave(root), 60, "an autosave of a running training")
    finally:
        app.kill()   # SIGKILL: no clean-up of any kind runs
        _, stderr = app.communicate(timeout=30)
    assert app.returncode == -signal.SIGKILL, stderr.decode()
    folder = Path(doc["folder"])
    assert orphans(root) == [folder]
    # what the killed app had written last (a write may have landed after `doc` was read)
    doc = json.loads((folder / SESSION_FILE).read_text())
    with np.load(folder / doc["arrays"]) as arrays:
        saved = {key: arrays[key] for key in arrays.files}
    assert 0 < doc["training"]["step"] < doc["training"]["total"]

    window = build_window(None)
    qtbot.addWidget(window)
    restored = Recovery(window, root)
    assert restored.offer_restore()
    session = window.model.session
    assert session.spec.to_dict() == doc["network"]
    for name in session.spec.param_names:
        np.testing.assert_array_equal(session.params[name], saved[f"scratch.{name}"],
                                      strict=True)
        np.testing.assert_array_equal(session.torch_params[name], saved[f"torch.{name}"],
                                      strict=True)
    assert len(session.data) == 100 and session.data.name == doc["data"]["name"]
    assert session.stage.key == doc["stage"]
    loss_steps = saved[f"history.{doc['training']['history'].index('loss/scratch')}.steps"]
    plotted, _ = window.training.plots.loss_plot.series["scratch"].history.arrays()
    assert plotted[-1] == loss_steps[-1] > 0         # the loss curve comes back to its last step
    assert not window.training.plots_dock.isHidden()
    # every panel is drawn, the surface and the heatmaps of the restored parameters included
    plots = window.training.plots
    assert not plots._undrawn
    assert plots.surface.output_image.image is not None
    assert all(image.image is not None for image in plots.heatmaps.weight_images)
    assert float(window.training.panel.lr.text()) == doc["training"]["config"]["lr"]
    when, detail = answers[0]
    assert time.strftime("%H:%M", time.localtime(doc["saved_at"])) in when
    assert "training run had reached step" in detail
    # the crashed folder is gone; this session's own autosave already holds the restored state
    assert not folder.exists()
    own = restored.folder.path
    with np.load(own / json.loads((own / SESSION_FILE).read_text())["arrays"]) as arrays:
        np.testing.assert_array_equal(arrays["scratch.w1"], saved["scratch.w1"])
    restored.finish()
    assert not own.exists() and orphans(root) == []


def test_a_clean_close_leaves_no_autosave(qtbot, tmp_path):
    root = Path(os.environ[recovery.ENV])
    seen = []

    def close_once_autosaved():
        if not list(root.glob(f"*/{SESSION_FILE}")):
            QTimer.singleShot(50, close_once_autosaved)
            return
        seen.extend(root.iterdir())
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                w.close()

    QTimer.singleShot(0, close_once_autosaved)
    assert run_window() == 0
    assert len(seen) == 1 and not seen[0].exists()
    assert list(root.iterdir()) == []


def left_behind(root: Path, session: Session) -> Path:
    """A folder as a crashed window leaves it: written, its lock let go."""
    folder = SessionFolder.create(root)
    folder.write(Snapshot.of(session))
    os.close(folder._lock_fd)   # what the operating system does when the process dies
    return folder.path


def test_no_keeps_the_new_session_and_deletes_the_old(qtbot, tmp_path, monkeypatch):
    root = tmp_path / "autosave"
    crashed = left_behind(root, Session(preset("2-2-1-tanh-bce")))
    monkeypatch.setattr(recovery, "ask_restore", lambda *a: False)
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, root)
    assert not keeper.offer_restore()
    assert window.model.session.spec != preset("2-2-1-tanh-bce")
    assert not crashed.exists()
    keeper.finish()


def test_an_unreadable_autosave_is_deleted_without_a_question(qtbot, tmp_path, answers,
                                                               caplog):
    root = tmp_path / "autosave"
    crashed = left_behind(root, Session())
    (crashed / SESSION_FILE).write_text("{not json")
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, root)
    assert not keeper.offer_restore()
    assert answers == [] and not crashed.exists()
    assert "could not be restored" in caplog.text
    keeper.finish()


def test_autosaving_where_nothing_can_be_written_only_logs(qtbot, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, blocked / "autosave")
    assert keeper.folder is None and not keeper.timer.isActive()
    assert "no autosave" in caplog.text
    keeper.save_now()
    keeper.finish()


def test_the_injected_mistake_comes_back_with_the_session(qtbot, tmp_path, answers):
    root = tmp_path / "autosave"
    session = Session()
    session.set_mistake("untransposed_weight@2")
    session.go_to_sample(5)
    left_behind(root, session)
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, root)
    assert keeper.offer_restore()
    restored = window.model.session
    assert restored.mistake.label == "untransposed_weight@2"
    assert restored.first_departure == session.first_departure == "dL/da1"
    assert window.mistake_actions.actions["untransposed_weight"].isChecked()
    assert "mistake untransposed_weight@2" in answers[0][1]
    own = keeper.folder.path   # this window's own autosave holds it at once
    assert json.loads((own / SESSION_FILE).read_text())["mistake"] == "untransposed_weight@2"
    keeper.finish()


def test_a_garbled_mistake_is_told_and_the_rest_of_the_session_comes_back(qtbot, tmp_path,
                                                                          answers, caplog):
    root = tmp_path / "autosave"
    session = Session(preset("2-2-1-tanh-bce"))
    session.go_to_sample(4)
    crashed = left_behind(root, session)
    doc = json.loads((crashed / SESSION_FILE).read_text())
    doc["mistake"] = {"name": ["untransposed_weight"], "layer": "__import__('os')"}
    (crashed / SESSION_FILE).write_text(json.dumps(doc))
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, root)
    assert keeper.offer_restore()
    restored = window.model.session
    assert restored.spec == preset("2-2-1-tanh-bce") and restored.sample_index == 4
    assert restored.mistake is None
    assert window.mistake_actions.actions[""].isChecked()
    told = "the injected mistake was not restored: the autosave gives {\"name\":"
    assert told in answers[0][1] and told in window.status.activity.text()
    assert told in caplog.text and not crashed.exists()
    keeper.finish()


def crashed_with_a_run(root: Path) -> RunSnapshot:
    """A folder a window left when it crashed during a run; the run."""
    steps = np.arange(1.0, 6.0)
    run = RunSnapshot(TrainConfig(lr=0.25, epochs=3, batch_size=2, shuffle=True, seed=4), 5, 150,
                      {"loss/scratch": (steps, np.linspace(1.0, 0.2, 5))})
    folder = SessionFolder.create(root)
    folder.write(Snapshot.of(Session(), run))
    os.close(folder._lock_fd)
    return run


def test_a_restored_run_survives_a_second_crash(qtbot, tmp_path, answers):
    root = tmp_path / "autosave"
    run = crashed_with_a_run(root)
    window = build_window(None)
    qtbot.addWidget(window)
    first = Recovery(window, root)
    assert first.offer_restore()
    window.model.session.go_to_sample(3)   # a change: the next autosave is written anew
    first.save_now()
    again = read_autosave(first.folder.path).run
    assert again is not None and again.config == run.config
    assert (again.step, again.total) == (5, 150)
    np.testing.assert_array_equal(again.history["loss/scratch"][1], run.history["loss/scratch"][1])
    # the second crash: its autosave is offered as the first one was
    first.timer.stop()
    os.close(first.folder._lock_fd)
    first.folder._lock_fd = None
    second_window = build_window(None)
    qtbot.addWidget(second_window)
    second = Recovery(second_window, root)
    assert second.offer_restore()
    assert "training run had reached step 5 of 150" in answers[1][1]
    assert float(second_window.training.panel.lr.text()) == 0.25
    plotted, _ = second_window.training.plots.loss_plot.series["scratch"].history.arrays()
    assert plotted[-1] == 5.0
    second.finish()


@pytest.mark.parametrize("leave", [
    lambda window: window.training.panel.reset(),
    lambda window: window.model.session.set_network(preset("2-2-1-tanh-bce")),
], ids=["reset", "another network"])
def test_a_restored_run_is_autosaved_until_the_session_leaves_it(qtbot, tmp_path, answers,
                                                                 leave):
    root = tmp_path / "autosave"
    crashed_with_a_run(root)
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, root)
    assert keeper.offer_restore()
    assert read_autosave(keeper.folder.path).run is not None
    leave(window)
    keeper.save_now()
    assert read_autosave(keeper.folder.path).run is None
    keeper.finish()


def test_the_timer_autosaves_off_the_event_loop_and_a_refusing_disk_only_logs(
        qtbot, tmp_path, caplog, monkeypatch):
    window = build_window(None)
    qtbot.addWidget(window)
    keeper = Recovery(window, tmp_path / "autosave")
    window.model.session.go_to_stage(3)
    keeper._on_timer()                    # what the timer does every AUTOSAVE_MS
    keeper.writer.wait()
    assert read_autosave(keeper.folder.path).stage_key == window.model.session.pairs[3].key
    monkeypatch.setattr(keeper.folder, "write",
                        lambda snapshot: (_ for _ in ()).throw(OSError(28, "disk full")))
    window.model.session.go_to_stage(4)
    keeper._on_timer()
    keeper.writer.wait()
    keeper._on_timer()                    # the next tick hears of it
    assert not keeper.timer.isActive() and keeper.writer is None
    assert "autosave stopped" in caplog.text and "disk full" in caplog.text
    keeper.finish()
